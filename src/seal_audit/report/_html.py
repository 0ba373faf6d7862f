"""Small HTML building blocks: escaped-by-default text, tables, notices.

All dataset- and user-derived text is escaped here by default; only values wrapped in
:class:`Markup` (HTML we generated ourselves) pass through unchanged. Escaping by default, rather
than remembering to escape, is what keeps a ``<script>`` inside a transcript from ever running.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from seal_audit.report._svg import esc


class Markup(str):
    """HTML produced by this package: inserted verbatim (everything else is escaped)."""

    __slots__ = ()

    def __add__(self, other: object) -> Markup:
        """Concatenation stays Markup and escapes the non-Markup side (so it cannot smuggle HTML)."""
        return Markup(str.__add__(self, h(other)))

    def __radd__(self, other: object) -> Markup:
        return Markup(h(other) + str(self))


def h(value: object) -> str:
    """HTML for a value: Markup as is, anything else escaped."""
    if isinstance(value, Markup):
        return str(value)
    return esc(value)


def tag(name: str, content: object = "", cls: str = "", **attrs: object) -> Markup:
    """An element with escaped attributes; ``content`` is escaped unless it is Markup."""
    a = f' class="{esc(cls)}"' if cls else ""
    for k, v in attrs.items():
        if v is None or v is False:
            continue
        key = k.rstrip("_").replace("_", "-")
        a += f" {key}" if v is True else f' {key}="{esc(v)}"'
    return Markup(f"<{name}{a}>{h(content)}</{name}>")


def join(parts: Iterable[object]) -> Markup:
    return Markup("".join(h(p) for p in parts))


def table(
    headers: Sequence[object],
    rows: Iterable[Sequence[object]],
    cls: str = "data",
    numeric: Sequence[int] = (),
) -> Markup:
    """A plain table; columns listed in ``numeric`` are right-aligned with tabular figures."""
    num = set(numeric)
    right = ' class="num"'
    head = "".join(f"<th{right if i in num else ''}>{h(x)}</th>" for i, x in enumerate(headers))
    thead = f"<thead><tr>{head}</tr></thead>" if any(str(x) for x in headers) else ""
    body = []
    for row in rows:
        cells = "".join(f"<td{right if i in num else ''}>{h(x)}</td>" for i, x in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return Markup(
        f'<div class="table-wrap"><table class="{esc(cls)}">{thead}<tbody>{"".join(body)}</tbody></table></div>'
    )


def not_computed(reason: str) -> Markup:
    """The visible stand-in for an analysis a run did not compute (never a silent omission)."""
    return tag("p", Markup(f"<strong>not computed:</strong> {esc(reason)}"), cls="skipped")


def note(text: object) -> Markup:
    return tag("p", text, cls="note")


def figure(svg: str, caption: object = "", cls: str = "") -> Markup:
    cap = tag("figcaption", caption) if caption else ""
    return Markup(f'<figure class="{esc(cls)}">{svg}{cap}</figure>')


def fmt_p(p: Any) -> str:
    """p-values as researchers read them: 3 significant digits, '< 1e-16' at the floor."""
    if not isinstance(p, int | float) or isinstance(p, bool) or not math.isfinite(p):
        return "–"
    if p < 1e-16:
        return "< 1e-16"
    if p < 0.001:
        return f"{p:.1e}"
    return f"{p:.3f}"


def fmt_int(x: Any) -> str:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return "–"
    return f"{int(x):,}"


def pretty_json(obj: Any) -> Markup:
    """A settings object as indented JSON inside <pre> (escaped: settings may hold user strings)."""
    return tag("pre", json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str), cls="json")
