"""Headline: agreement of every RM, alignment resistance, the four regimes, truncation and failures."""

from __future__ import annotations

import math

from seal_audit.report import _svg as svg
from seal_audit.report._blocks import (
    Block,
    Bullets,
    Card,
    Cards,
    Div,
    Door,
    Heading,
    Legend,
    LegendItem,
    NotComputed,
    Note,
    Raw,
    Section,
    Stat,
    figure,
    table,
)
from seal_audit.report._data import skip_reason
from seal_audit.report._html import Markup, fmt_int
from seal_audit.report._svg import pct
from seal_audit.report.sections._common import REGIME_LABEL, REGIMES, Ctx, ok, rate_estimate

GUIDE = (
    "How often each reward model ranks the human-chosen response above the rejected one (50% = chance), "
    "and the share of D the post-D RM still gets wrong: its alignment resistance."
)


def build(ctx: Ctx) -> Section:
    if ctx.data.result is None:
        n = len(ctx.data.pairs) if ctx.data.pairs is not None else None
        only = Cards((Card("Pairs in the run", fmt_int(n), "pairs", ""),))
        return Section("headline", "Headline", GUIDE, (only, NotComputed(ctx.data.stats_missing or "")))
    res = ctx.result
    inp = res.inputs
    cards = [Card("Pairs analysed", fmt_int(inp.n_pairs), "n_pairs", str(inp.n_pairs))]
    agree = res.agreement
    post, pre = ctx.post, ctx.pre
    if post and post in agree:
        a = agree[post].agreement.rate
        cards.append(
            Card(f"Agreement, post-D ({post})", pct(a), f"agreement:{post}", str(a), door=wrong(ctx, post))
        )
    if pre and pre in agree:
        a = agree[pre].agreement.rate
        cards.append(
            Card(f"Agreement, pre-D ({pre})", pct(a), f"agreement:{pre}", str(a), door=wrong(ctx, pre))
        )
    resist = ok(res.resistance)
    if resist is not None:
        sub = f"{ctx.level()} CI {pct(resist.ci_low)} – {pct(resist.ci_high)}"
        door = Door(f"the {resist.k:,} pairs", {"agree": f"{post}:0"}, resist.k) if post else None
        cards.append(
            Card("Alignment resistance", pct(resist.rate), "resistance", str(resist.rate), sub, door)
        )
    for rm, ag in agree.items():
        if ag.is_baseline:
            a = ag.agreement.rate
            cards.append(
                Card(f"Length-only baseline ({rm})", pct(a), f"agreement:{rm}", str(a), door=wrong(ctx, rm))
            )
    parts: list[Block] = [Cards(tuple(cards))]

    # agreement of every RM with CI, baselines beside the RMs
    order = {"post": 0, "pre": 1, "extra": 2, "baseline": 3}
    items = [
        (ctx.rm_label(rm), rate_estimate(agree[rm].agreement), ctx.rm_class(rm))
        for rm in sorted(agree, key=lambda r: (order.get(ctx.roles.get(r, "extra"), 2), r))
    ]
    if items:
        lo = min(0.4, *(e.low for _, e, _ in items if math.isfinite(e.low)))
        parts.append(
            figure(
                svg.interval_dots(
                    items, label="Agreement with the human label per RM", lo=math.floor(lo * 10) / 10, hi=1.0
                ),
                f"Agreement δ = 1[r(t_c) > r(t_r)] (ties count as failures) with exact {ctx.level()} Clopper–Pearson intervals; "
                "the dashed line is chance.",
                "half",
            )
        )
    reg = ok(res.regimes)
    if reg is not None:
        shares = [(REGIME_LABEL[k], reg.shares[k].rate, f"r-{k}") for k in REGIMES]
        legend = Legend(
            tuple(
                LegendItem(
                    f"r-{k}",
                    REGIME_LABEL[k],
                    Stat(pct(reg.shares[k].rate), f"regime:{k}", str(reg.shares[k].rate), tag="b"),
                    door=Door(f"{reg.counts.get(k, 0):,} pairs", {"regime": k}, reg.counts.get(k, 0)),
                )
                for k in REGIMES
            )
        )
        parts.append(
            Div(
                "regimes half",
                (
                    Heading("The four regimes, pre-D → post-D"),
                    Raw(Markup(svg.stacked_bar(shares, label="Regimes pre-D to post-D"))),
                    legend,
                ),
            )
        )
    else:
        parts.append(Note(f"Regimes not computed: {skip_reason(res.regimes)}"))
    parts.append(Div("half", (Heading("Truncation and failures"), _failures(ctx))))
    if inp.notes:
        parts.append(Div("notes", (Heading("Notes from the analysis"), Bullets(inp.notes))))
    return Section("headline", "Headline", GUIDE, (Div("grid", tuple(parts)),))


def wrong(ctx: Ctx, rm: str) -> Door | None:
    """The pairs an RM ranks against the human label (ties count as failures, as in δ)."""
    ag = ctx.result.agreement.get(rm)
    if ag is None or rm not in ctx.payload.get("agree", {}):
        return None
    k = ag.agreement.n - ag.agreement.k
    return Door(f"the {k:,} pairs it gets wrong", {"agree": f"{rm}:0"}, k)


def _failures(ctx: Ctx) -> Block:
    res = ctx.result
    inp = res.inputs
    rows: list[list[object]] = []
    trunc = inp.n_truncated
    for rm in sorted(set(trunc) | {r for r, role in ctx.roles.items() if role in ("pre", "post")}):
        rows.append(
            [f"texts truncated to {rm}'s input limit", Stat(fmt_int(trunc.get(rm, 0)), f"truncated:{rm}")]
        )
    for rm in sorted(res.agreement):
        ex = res.exclusions.get(f"agreement:{rm}")
        if ex is not None and ex.n_excluded:
            rows.append([f"pairs without both rewards of {rm} (excluded)", fmt_int(ex.n_excluded)])
    feats = ctx.data.features
    if feats is not None and "status" in feats.columns:
        n_fail = int((feats["status"].astype(str) == "failed").sum())
        rows.append(["feature labels failed (after retries)", Stat(fmt_int(n_fail), "label_failures")])
    rob = ok(res.robustness)
    for t, rr in (rob or {}).items():
        d = rr.drift
        if d is not None:
            rows.append(
                [
                    f"rewrites failed / rejected / drifted ({t})",
                    f"{fmt_int(d.n_failed)} / {fmt_int(d.n_rejected)} / {fmt_int(d.n_drifted)}",
                ]
            )
    rows.append(["pairs with diverging contexts (kept, flagged)", fmt_int(inp.n_context_diverges)])
    for tbl, k in sorted(inp.unknown_pair_ids.items()):
        if k:
            rows.append([f"rows of {tbl} with an unknown pair_id (ignored)", fmt_int(k)])
    return table(["what", "count"], rows, numeric=[1])  # type: ignore[arg-type]
