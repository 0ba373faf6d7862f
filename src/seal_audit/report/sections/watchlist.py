"""Suspicious pairs: where every judge available disagrees with the human label."""

from __future__ import annotations

import math

from seal_audit.report._blocks import Block, Cell, Door, NotComputed, Note, PairLink, Para, Section, table
from seal_audit.report._html import fmt_int
from seal_audit.report._svg import num
from seal_audit.report.sections._common import Ctx, ok

GUIDE = (
    "Pairs where the judges this run has disagree with the human label (the criterion is below): the first "
    "candidates for relabeling. Click a row to read it; ‹ › in the explorer then walk the watchlist."
)
WATCHLIST_ROWS = 20
WATCH_VIEW = {"susp": "1", "sort": "rank"}
"""The explorer view a watchlist pair opens in: the whole watchlist in rank order, so that
"next ›" goes to the next suspicious pair."""


def _snip(t: str) -> str:
    t = " ".join(t.split())
    t = t[len("Assistant:") :].lstrip() if t.startswith("Assistant:") else t
    return t[:110] + ("…" if len(t) > 110 else "")


def _float(v: object) -> float:
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def build(ctx: Ctx) -> Section:
    why = ctx.missing("suspicious_pairs")
    sp = ok(ctx.result.suspicious_pairs) if why is None else None
    if sp is None:
        return Section("watchlist", "Suspicious pairs", GUIDE, (NotComputed(why or ""),))
    tbl = ctx.data.table("suspicious_pairs")
    margins: dict[str, tuple[float, float]] = {}
    if tbl is not None and "pair_id" in tbl.columns:
        head = tbl.head(WATCHLIST_ROWS)
        ids = head["pair_id"].astype(str).tolist()
        for _, r in head.iterrows():
            margins[str(r["pair_id"])] = (_float(r.get("post_margin")), _float(r.get("pre_margin")))
    else:
        ids = list(sp.top)[:WATCHLIST_ROWS]
    texts: dict[str, tuple[str, str]] = {}
    pairs = ctx.data.pairs
    if pairs is not None and ids:
        sub = pairs[pairs["pair_id"].astype(str).isin(ids)]
        texts = {str(r.pair_id): (str(r.chosen), str(r.rejected)) for r in sub.itertuples()}
    rows: list[list[Cell]] = []
    for i, pid in enumerate(ids, 1):
        ch, rj = texts.get(pid, ("", ""))
        pm, pr = margins.get(pid, (math.nan, math.nan))
        rows.append([str(i), PairLink(pid, WATCH_VIEW), num(pm, 2), num(pr, 2), _snip(ch), _snip(rj)])
    body: tuple[Block, ...] = (
        Para((Door(f"{fmt_int(sp.n)} pairs flagged", WATCH_VIEW, sp.n), f". Criterion: {sp.criterion}.")),
        table(
            ["#", "pair", "post-D margin", "pre-D margin", "chosen (start)", "rejected (start)"],
            rows,
            cls="data watch",
            numeric=[0, 2, 3],
        )
        if rows
        else Note("No pair is flagged."),
    )
    if sp.n > len(rows):
        body += (
            Note(
                f"First {len(rows)} shown; the full ranking is analysis/suspicious_pairs.parquet and the explorer's “suspicious” filter."
            ),
        )
    return Section("watchlist", "Suspicious pairs", GUIDE, body)
