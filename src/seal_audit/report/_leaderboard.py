"""The leaderboard: every RM of the run in one table (HTML section and report.md), plus the imprints of
every non-baseline RM side by side.

One view-model (``leaderboard_view``) is built from stats.json's ``leaderboard`` read back typed; the
HTML and the Markdown render the same rows and the same words, so the two surfaces cannot disagree.
The page's only script is the explorer's (its CSP admits one script by hash), so sorting is done
without script: the table is rendered once per sort key, each in a ``<details>`` element, the first
one open. The explorer has no URL-hash filter, so cells link to the explorer section itself (not to a
filtered view of it); the RM column names the RM to pick there.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from seal_audit.report import _svg as svg
from seal_audit.report._data import ReportData
from seal_audit.report._html import Markup, figure, join, not_computed, note, tag

EXPLORER = "#explorer"
MAX_FOREST_PANELS = 6
"""RMs shown side by side in the imprint comparison figure (more would not fit the page width)."""


@dataclasses.dataclass(frozen=True)
class Cell:
    text: str
    sort: float
    """Sort key of the column (NaN sorts last)."""


@dataclasses.dataclass(frozen=True)
class Row:
    rm: str
    role: str
    cells: tuple[Cell, ...]


@dataclasses.dataclass(frozen=True)
class LeaderboardView:
    """What both surfaces show: headers, one row per RM, the sort keys and the caption."""

    headers: tuple[str, ...]
    rows: tuple[Row, ...]
    sort_keys: tuple[tuple[str, int, bool], ...]
    """(label, column, descending) of each rendering of the table."""
    caption: str
    imprints: dict[str, dict[str, svg.Estimate]]
    """RM → term → imprint (first estimator), for the side-by-side forest."""
    estimator: str


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if math.isfinite(x) else "n/a"


def _num(x: float | None, digits: int = 3) -> str:
    return f"{x:.{digits}g}" if x is not None and math.isfinite(x) else "n/a"


def _f(x: float | None) -> float:
    return float(x) if x is not None and math.isfinite(x) else math.nan


def leaderboard_view(stats: dict[str, Any]) -> LeaderboardView | str:
    """The view-model, or the reason there is none (old stats.json, not computed)."""
    from seal_audit.stats._common import from_jsonable
    from seal_audit.stats.compare import Leaderboard

    doc = stats.get("leaderboard")
    if not isinstance(doc, dict):
        return "this stats.json has no leaderboard (written before issue 20: re-run `seal analyze RUN`)"
    board: Leaderboard = from_jsonable(Leaderboard, doc, "stats.json.leaderboard")
    alpha = stats.get("options", {}).get("alpha", 0.05)
    level = f"{100 * (1 - float(alpha)):g}%"
    headers = (
        "RM",
        "role",
        f"agreement [{level} CI]",
        "ECE",
        "Brier",
        f"r(reward, {board.length_feature})",
        "top imprints [adjusted CI]",
        "flip rate by rewrite",
    )
    rows: list[Row] = []
    imprints: dict[str, dict[str, svg.Estimate]] = {}
    estimator = ""
    for r in board.rows:
        if r.status != "ok":
            blank = Cell("n/a", math.nan)
            rows.append(
                Row(r.rm, r.role, (Cell(f"absent: {r.reason}", math.nan), blank, blank, blank, blank, blank))
            )
            continue
        ag = r.agreement
        agree = Cell(
            f"{_pct(ag.rate)} [{_pct(ag.ci_low)}, {_pct(ag.ci_high)}]" if ag else "n/a",
            _f(ag.rate if ag else None),
        )
        tops = "; ".join(
            f"{t.term} {t.estimate:+.3g} [{_num(t.ci_low_adjusted)}, {_num(t.ci_high_adjusted)}]"
            + ("*" if t.significant else "")
            for t in r.top_imprints
        )
        flips = "; ".join(f"{f.transform} {_pct(f.flipped.rate)}" for f in r.flip_rates)
        max_flip = max((f.flipped.rate for f in r.flip_rates), default=math.nan)
        lc = r.length_correlation
        rows.append(
            Row(
                r.rm,
                r.role,
                (
                    agree,
                    Cell(_num(r.ece), _f(r.ece)),
                    Cell(_num(r.brier), _f(r.brier)),
                    Cell(_num(lc, 2), abs(_f(lc))),
                    Cell(tops or "n/a", max((abs(t.estimate) for t in r.top_imprints), default=math.nan)),
                    Cell(flips or "n/a", _f(max_flip)),
                ),
            )
        )
        if r.top_imprints:
            estimator = estimator or r.imprint_estimator
    imprints = _imprints(stats, [r.rm for r in board.rows if r.status == "ok"])
    caption = (
        f"Every RM of the run. Agreement with the exact {level} interval; ECE and Brier of σ(margin); "
        f"Pearson r of the reward with '{board.length_feature}' over all texts"
        + ("" if board.length_feature_found else " (feature not labeled in this run: n/a)")
        + f"; the {board.n_top_imprints} largest imprints (|β|, {estimator or 'first'} estimator) with "
        f"their adjusted intervals, * = significant after {board.correction}; flip rates per rewrite. "
        f"Multiple-testing family: {board.correction_family} (each RM's regressions are corrected "
        "on their own, not across RMs). Cells link to the pair explorer (it has no URL filter: pick the "
        "RM there)."
    )
    keys = (
        ("agreement (highest first)", 0, True),
        ("ECE (lowest first)", 1, False),
        ("|length correlation| (lowest first)", 3, False),
        ("largest imprint (largest first)", 4, True),
        ("worst flip rate (lowest first)", 5, False),
    )
    return LeaderboardView(headers, tuple(rows), keys, caption, imprints, estimator)


def _imprints(stats: dict[str, Any], rms: Sequence[str]) -> dict[str, dict[str, svg.Estimate]]:
    out: dict[str, dict[str, svg.Estimate]] = {}
    per_rm = stats.get("per_rm") or {}
    ests = list(stats.get("options", {}).get("estimators") or ["pooled"])
    for rm in rms:
        imp = (per_rm.get(rm) or {}).get("imprint")
        if not isinstance(imp, dict) or imp.get("status") in ("skipped", "failed"):
            continue
        res = imp.get(ests[0]) or {}
        reg = res.get("regression") if isinstance(res, dict) else None
        if not isinstance(reg, dict):
            continue
        vals: dict[str, svg.Estimate] = {}
        for c in reg.get("coefficients") or []:
            if c.get("term") == "intercept" or c.get("estimate") is None:
                continue
            lo, hi = c.get("ci_low_adjusted"), c.get("ci_high_adjusted")
            lo = c.get("ci_low") if lo is None else lo
            hi = c.get("ci_high") if hi is None else hi
            if lo is None or hi is None:
                continue
            vals[str(c["term"])] = svg.Estimate(
                float(c["estimate"]), float(lo), float(hi), bool(c.get("significant"))
            )
        out[rm] = vals
    return out


def _sorted(rows: Sequence[Row], col: int, desc: bool) -> list[Row]:
    def key(r: Row) -> tuple[bool, float, str]:
        v = r.cells[col].sort
        bad = not math.isfinite(v)
        return (bad, (-v if desc else v) if not bad else 0.0, r.rm)

    return sorted(rows, key=key)


def _html_table(view: LeaderboardView, rows: Sequence[Row]) -> Markup:
    head = join(tag("th", h) for h in view.headers)
    body = []
    for r in rows:
        cells = [tag("td", tag("a", r.rm, href=EXPLORER)), tag("td", r.role)]
        cells += [tag("td", tag("a", c.text, href=EXPLORER), cls="num") for c in r.cells]
        body.append(tag("tr", join(cells)))
    return Markup('<div class="table-wrap"><table class="data leaderboard">') + (
        tag("thead", tag("tr", head)) + tag("tbody", join(body)) + Markup("</table></div>")
    )


def section(ctx: Any) -> Any:
    """The report section (a ``_sections.Section``); hooked into report/_build.py's builders."""
    from seal_audit.report._sections import Section

    guide = (
        "Every RM side by side. Each table below is the same rows in another order; open one to sort "
        "by that column."
    )
    view = leaderboard_view(ctx.stats)
    if isinstance(view, str):
        return Section("leaderboard", "Leaderboard", guide, not_computed(view))
    parts: list[object] = []
    for i, (label, col, desc) in enumerate(view.sort_keys):
        inner = _html_table(view, _sorted(view.rows, col, desc))
        opened = " open" if i == 0 else ""
        parts.append(
            Markup(f"<details{opened}><summary>")
            + tag("span", f"sorted by {label}")
            + Markup("</summary>")
            + inner
            + Markup("</details>")
        )
    parts.append(note(view.caption))
    if len(view.imprints) > 1:
        rms = list(view.imprints)[:MAX_FOREST_PANELS]
        terms = sorted({t for rm in rms for t in view.imprints[rm]})
        fig = svg.forest(
            [svg.ForestRow(t, ctx.role_of.get(t, "spoiler")) for t in terms],
            [svg.Panel(rm, view.imprints[rm]) for rm in rms],
            x_title="Δ reward (raw logit units)",
            label="Imprints of every RM",
        )
        cap = (
            f"Imprints ({view.estimator or 'first'} estimator) of {len(rms)} RMs on one scale, adjusted "
            "intervals; solid = significant."
        )
        if len(view.imprints) > MAX_FOREST_PANELS:
            cap += f" First {MAX_FOREST_PANELS} of {len(view.imprints)} RMs; all are in stats.json per_rm."
        parts.append(figure(fig, cap, "wide"))
    return Section("leaderboard", "Leaderboard", guide, join(parts))


def markdown_lines(data: ReportData, st: dict[str, Any], level: str) -> list[str]:
    """The leaderboard in report.md (same rows and caption as the HTML; sorted by agreement)."""
    view = leaderboard_view(st)
    if isinstance(view, str):
        return ["## Leaderboard", "", f"_Not computed: {view}._", ""]
    esc: Callable[[str], str] = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["## Leaderboard", ""]
    lines.append("| " + " | ".join(view.headers) + " |")
    lines.append("|" + "---|" * len(view.headers))
    label, col, desc = view.sort_keys[0]
    for r in _sorted(view.rows, col, desc):
        lines.append("| " + " | ".join(esc(x) for x in (r.rm, r.role, *(c.text for c in r.cells))) + " |")
    lines += ["", f"_Sorted by {label}. {view.caption}_", ""]
    return lines
