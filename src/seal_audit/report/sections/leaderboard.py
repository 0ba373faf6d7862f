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
from seal_audit.report.sections._common import Ctx, differs

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
        body.append(figure(fig, cap, "wide"))
    return Section("leaderboard", "Leaderboard", GUIDE, tuple(body))
