"""The leaderboard: every RM of the run side by side (issue 20), each cell a door into the explorer.

The page's only script is the explorer's (its CSP admits one script by hash), so sorting needs no
script: the same rows are rendered once per sort key, each in a ``<details>``, the first one open.
The view-model is ``report/_leaderboard.leaderboard_view``, shared with report.md.
"""

from __future__ import annotations

from seal_audit.report import _svg as svg
from seal_audit.report._blocks import (
    Block,
    Cell,
    Details,
    Door,
    Inline,
    NotComputed,
    Note,
    Picker,
    Section,
    Table,
    figure,
)
from seal_audit.report._leaderboard import (
    MAX_FOREST_PANELS,
    LeaderboardView,
    Row,
    leaderboard_view,
    sorted_rows,
)
from seal_audit.report.sections._common import Ctx, differs, feature_rows

GUIDE = (
    "Every RM side by side. Each table below is the same rows in another order; open one to sort by that "
    "column. A cell opens the pairs behind it."
)


def _wrong(rm: str, text: str, row: Row) -> Cell:
    if row.wrong is None:
        return text
    return Door(text, {"agree": f"{rm}:0"}, row.wrong)


def _cells(ctx: Ctx, view: LeaderboardView, row: Row) -> tuple[Cell, ...]:
    if row.wrong is None and not row.flips:  # an absent RM: its reason, no pairs
        return (row.rm, row.role, *(c.text for c in row.cells))
    agree, ece, brier, length, tops, flips = (c.text for c in row.cells)
    imprint_cells: list[Cell] = []
    for feature, text in row.imprints:
        n = differs(ctx, feature)
        imprint_cells.append(
            Door(text, {"f": feature, "fside": "diff", "fop": "!=", "fval": "0"}, n)
            if n is not None
            else text
        )
    flip_cells: list[Cell] = [
        Door(text, {"t": t, "rw": "flipped", "rwrm": row.rm}, k) for t, k, text in row.flips
    ]
    return (
        _wrong(row.rm, row.rm, row),
        row.role,
        _wrong(row.rm, agree, row),
        _wrong(row.rm, ece, row),
        _wrong(row.rm, brier, row),
        _wrong(row.rm, length, row),
        Inline(tuple(imprint_cells)) if imprint_cells else tops,
        Inline(tuple(flip_cells)) if flip_cells else flips,
    )


def forest_choice(ctx: Ctx, rms: list[str]) -> tuple[list[str], list[str]]:
    """The RMs the overlaid forest shows on opening (``[report] forest_rms`` / ``--forest-rm``, in
    the run's RM order; default: the first six) and the requested names this run has no imprint for."""
    asked = list(ctx.options.forest_rms)
    unknown = [r for r in asked if r not in rms]
    chosen = [r for r in rms if r in asked] if asked else rms[:MAX_FOREST_PANELS]
    return chosen, unknown


def _forest(ctx: Ctx, view: LeaderboardView) -> list[Block]:
    """Every RM's imprints on one scale, overlaid; checkboxes choose which (the URL keeps them)."""
    rms = list(view.imprints)
    chosen, unknown = forest_choice(ctx, rms)
    shown = [k for k, rm in enumerate(rms) if rm in chosen]
    terms = sorted({t for rm in rms for t in view.imprints[rm]})
    fig = svg.forest_overlay(
        feature_rows(ctx, terms),
        [(rm, view.imprints[rm]) for rm in rms],
        shown,
        x_title="Δ reward (raw logit units)",
        label="Imprints of every RM, overlaid: the checkboxes above choose which show",
    )
    cap = (
        f"Imprints ({view.estimator or 'first'} estimator) of the chosen RMs overlaid on one scale, adjusted "
        f"intervals; solid = significant, faded = not. Showing {len(shown)} of {len(rms)} RMs on opening"
        + (
            f" ([report] forest_rms / --forest-rm: {', '.join(chosen)})"
            if ctx.options.forest_rms
            else f" (the first {min(MAX_FOREST_PANELS, len(rms))}; [report] forest_rms or --forest-rm choose others)"
        )
        + "; tick any RMs above the figure to overlay them."
    )
    out: list[Block] = []
    if unknown:
        ctx.warnings.append(
            f"forest_rms: no imprint for {', '.join(unknown)} in this run (RMs: {', '.join(rms)})"
        )
        out.append(
            Note(
                f"forest_rms names RMs this run has no imprint for: {', '.join(unknown)} (RMs: {', '.join(rms)})."
            )
        )
    out.append(
        Picker(
            "forest",
            "RMs in the imprint forest",
            tuple((rm, rm, f"ov-{k % svg.OVERLAY_COLOURS}", rm in chosen) for k, rm in enumerate(rms)),
        )
    )
    out.append(figure(fig, cap, "wide forest-overlay"))
    return out


def build(ctx: Ctx) -> Section:
    why = ctx.missing("leaderboard")
    if why is not None:
        return Section("leaderboard", "Leaderboard", GUIDE, (NotComputed(why),))
    view = leaderboard_view(ctx.result)
    if isinstance(view, str):
        return Section("leaderboard", "Leaderboard", GUIDE, (NotComputed(view),))
    body: list[Block] = []
    for i, (label, col, desc) in enumerate(view.sort_keys):
        rows = tuple(_cells(ctx, view, r) for r in sorted_rows(view.rows, col, desc))
        tbl = Table(tuple(view.headers), rows, cls="data leaderboard", numeric=frozenset(range(2, 8)))
        body.append(Details(f"sorted by {label}", (tbl,), open=i == 0))
    body.append(Note(view.caption))
    if len(view.imprints) > 1:
        body += _forest(ctx, view)
    return Section("leaderboard", "Leaderboard", GUIDE, tuple(body))
