"""The leaderboard: every RM of the run in one table (HTML section and report.md), plus the imprints of
every non-baseline RM side by side.

One view-model (``leaderboard_view``) is built from stats.json's ``leaderboard`` read back typed; the
HTML section (``report/sections/leaderboard.py``) and the Markdown render the same rows and the same
words, so the two surfaces cannot disagree.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

from seal_audit.report import _svg as svg
from seal_audit.report._data import ReportData
from seal_audit.stats import AnalysisResult
from seal_audit.stats._common import Skipped

MAX_FOREST_PANELS = 6
"""RMs the overlaid imprint forest shows on opening when ``[report] forest_rms`` names none (more
overlaid estimates per row stop being readable; the page's checkboxes add any others)."""

_FAMILY_DEFAULT = "each RM's regressions are corrected on their own, not across RMs"
"""Caption words for a stats.json written before ``correction_detail`` existed (issue 20)."""


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
    wrong: int | None = None
    """Pairs this RM gets wrong (n − k of its agreement): what the RM's cells open in the explorer."""
    imprints: tuple[tuple[str, str], ...] = ()
    """(feature, text) of each top imprint, for one door each."""
    flips: tuple[tuple[str, int, str], ...] = ()
    """(transform, pairs flipped, text) of each rewrite, for one door each."""


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


def leaderboard_view(res: AnalysisResult) -> LeaderboardView | str:
    """The view-model from the typed results, or the reason there is none (old stats.json)."""
    board = res.leaderboard
    if board is None:
        return "this stats.json has no leaderboard (written before issue 20: re-run `seal analyze RUN`)"
    level = f"{100 * (1 - res.options.alpha):g}%"
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
        top_parts = tuple(
            (
                t.term,
                f"{t.term} {t.estimate:+.3g} [{_num(t.ci_low_adjusted)}, {_num(t.ci_high_adjusted)}]"
                + ("*" if t.significant else ""),
            )
            for t in r.top_imprints
        )
        flip_parts = tuple(
            (f.transform, f.flipped.k, f"{f.transform} {_pct(f.flipped.rate)}") for f in r.flip_rates
        )
        tops = "; ".join(text for _, text in top_parts)
        flips = "; ".join(text for _, _, text in flip_parts)
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
                wrong=(ag.n - ag.k) if ag else None,
                imprints=top_parts,
                flips=flip_parts,
            )
        )
        if r.top_imprints:
            estimator = estimator or r.imprint_estimator
    imprints = _imprints(res, [r.rm for r in board.rows if r.status == "ok"])
    caption = (
        f"Every RM of the run. Agreement with the exact {level} interval; ECE and Brier of σ(margin); "
        f"Pearson r of the reward with '{board.length_feature}' over all texts"
        + ("" if board.length_feature_found else " (feature not labeled in this run: n/a)")
        + f"; the {board.n_top_imprints} largest imprints (|β|, {estimator or 'first'} estimator) with "
        f"their adjusted intervals, * = significant after {board.correction}; flip rates per rewrite. "
        f"Multiple-testing family: {board.correction_family} ({board.correction_detail or _FAMILY_DEFAULT}). "
        "Each cell opens the pair explorer on its pairs: the pairs the RM "
        "gets wrong (RM, agreement, ECE, Brier and length cells), the pairs where a top-imprint feature "
        "differs, the pairs a rewrite flipped."
    )
    keys = (
        ("agreement (highest first)", 0, True),
        ("ECE (lowest first)", 1, False),
        ("|length correlation| (lowest first)", 3, False),
        ("largest imprint (largest first)", 4, True),
        ("worst flip rate (lowest first)", 5, False),
    )
    return LeaderboardView(headers, tuple(rows), keys, caption, imprints, estimator)


def _imprints(res: AnalysisResult, rms: Sequence[str]) -> dict[str, dict[str, svg.Estimate]]:
    """RM → term → imprint of the first estimator (adjusted interval where there is one)."""
    out: dict[str, dict[str, svg.Estimate]] = {}
    est = res.options.estimators[0] if res.options.estimators else "pooled"
    for rm in rms:
        m = res.per_rm.get(rm)
        imp = m.imprint if m is not None else None
        if not isinstance(imp, dict):
            continue
        fit = imp.get(est)
        if fit is None or isinstance(fit, Skipped):
            continue
        vals: dict[str, svg.Estimate] = {}
        for c in fit.regression.coefficients:
            if c.term == "intercept" or c.estimate is None:
                continue
            lo = c.ci_low if c.ci_low_adjusted is None else c.ci_low_adjusted
            hi = c.ci_high if c.ci_high_adjusted is None else c.ci_high_adjusted
            if lo is None or hi is None:
                continue
            vals[c.term] = svg.Estimate(float(c.estimate), float(lo), float(hi), bool(c.significant))
        out[rm] = vals
    return out


def sorted_rows(rows: Sequence[Row], col: int, desc: bool) -> list[Row]:
    def key(r: Row) -> tuple[bool, float, str]:
        v = r.cells[col].sort
        bad = not math.isfinite(v)
        return (bad, (-v if desc else v) if not bad else 0.0, r.rm)

    return sorted(rows, key=key)


def markdown_lines(data: ReportData, res: AnalysisResult, level: str) -> list[str]:
    """The leaderboard in report.md (same rows and caption as the HTML; sorted by agreement)."""
    view = leaderboard_view(res)
    if isinstance(view, str):
        return ["## Leaderboard", "", f"_Not computed: {view}._", ""]
    esc: Callable[[str], str] = lambda s: svg.visible_controls(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["## Leaderboard", ""]
    lines.append("| " + " | ".join(view.headers) + " |")
    lines.append("|" + "---|" * len(view.headers))
    label, col, desc = view.sort_keys[0]
    for r in sorted_rows(view.rows, col, desc):
        lines.append(
            "| " + " | ".join(esc(x) for x in (svg.md_code(r.rm), r.role, *(c.text for c in r.cells))) + " |"
        )
    lines += ["", f"_Sorted by {label}. {view.caption}_", ""]
    return lines
