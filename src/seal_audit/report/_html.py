"""HTML rendering: Jinja2 templates with autoescape, and the few formatting helpers they share.

All dataset- and user-derived text is escaped by the template engine; only values wrapped in
:class:`Markup` (HTML we generated ourselves: the SVG figures) pass through unchanged. Escaping by
default, rather than remembering to escape, is what keeps a ``<script>`` inside a transcript from
ever running. Templates live in ``report/templates`` (package data) and decide markup only; the
section modules decide content, as small typed view-models (``report/_blocks.py``).
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import jinja2
from markupsafe import Markup

__all__ = ["Markup", "fmt_int", "fmt_p", "pretty_json", "render"]


@functools.cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("seal_audit.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["attr_json"] = lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    return env


def render(template: str, **values: Any) -> Markup:
    """Render one template (autoescaped) to Markup."""
    return Markup(_env().get_template(template).render(**values))


def fmt_p(p: float | None) -> str:
    """p-values as researchers read them: 3 significant digits, '< 1e-16' at the floor."""
    if p is None or isinstance(p, bool) or not math.isfinite(p):
        return "–"
    if p < 1e-16:
        return "< 1e-16"
    if p < 0.001:
        return f"{p:.1e}"
    return f"{p:.3f}"


def fmt_int(x: float | int | None) -> str:
    if x is None or isinstance(x, bool) or not math.isfinite(x):
        return "–"
    return f"{int(x):,}"


def pretty_json(obj: Any) -> str:
    """A settings object as indented JSON text (escaped by the template: settings may hold user strings)."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str)
