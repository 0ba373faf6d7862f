"""Alignment resistance: regimes × LM agreement γ, reward vectors and the reward shift θ."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from seal_audit.report import _svg as svg
from seal_audit.report._blocks import (
    Block,
    Cell,
    Details,
    Div,
    Door,
    Heading,
    Legend,
    LegendItem,
    NotComputed,
    Note,
    Raw,
    Section,
    Strong,
    figure,
    table,
)
from seal_audit.report._html import Markup, fmt_int, fmt_p
from seal_audit.report._svg import num, pct
from seal_audit.report.sections._common import (
    GAMMA_LABEL,
    REGIME_LABEL,
    REGIMES,
    Ctx,
    ok,
    rate_text,
    regime_legend,
)
from seal_audit.stats.inference import MeanEstimate
from seal_audit.stats.shift import ShiftResult

GUIDE = (
    "Where the post-D RM still sides against the human: by regime (how the pre-D RM did) and by the "
    "LM-labeler's verdict γ; reward vectors below the diagonal are aligned."
)
SCATTER_MAX_POINTS = 2500
"""Points drawn per reward-vector scatter: beyond this a scatter is ink, not information, and the
page weight grows with N. The subsample is a deterministic hash of pair_id (same run, same dots)."""


def build(ctx: Ctx) -> Section:
    parts: list[Block] = [*_gamma(ctx), *_mcnemar(ctx), *_scatter(ctx), *_theta(ctx)]
    return Section("resistance", "Alignment resistance", GUIDE, tuple(parts))


def _gamma(ctx: Ctx) -> list[Block]:
    why_lm = ctx.missing("lm_agreement")
    lm = ok(ctx.result.lm_agreement) if why_lm is None else None
    if lm is None:
        return [Heading("Regimes × LM agreement γ"), NotComputed(why_lm or "")]
    parts: list[Block] = []
    reg = ok(ctx.result.regimes) if "regimes" not in ctx.data.unreadable else None
    groups = lm.groups
    has_regimes = all(g.regime_counts is not None for g in groups)
    rows: list[list[Cell]] = []
    cols: list[tuple[str, float, list[tuple[str, float, str]]]] = []
    for g in groups:
        rc = g.regime_counts or {}
        row: list[Cell] = [
            f"γ = {g.gamma} · {GAMMA_LABEL.get(g.gamma, '')}",
            Door(fmt_int(g.n), {"gamma": g.gamma}, g.n),
            pct(g.share.rate),
        ]
        if has_regimes:
            row += [
                Door(
                    f"{fmt_int(rc.get(k))} ({pct(rc.get(k, 0) / g.n if g.n else math.nan, 0)})",
                    {"gamma": g.gamma, "regime": k},
                    rc.get(k, 0),
                )
                for k in REGIMES
            ]
        mp = g.misalignment_post
        row.append(
            Door(rate_text(mp), {"gamma": g.gamma, "agree": f"{ctx.post}:0"}, mp.k)
            if ctx.post
            else rate_text(mp)
        )
        rows.append(row)
        cols.append(
            (g.gamma, g.share.rate, [(REGIME_LABEL[k], float(rc.get(k, 0)), f"r-{k}") for k in REGIMES])
        )
    if has_regimes and reg is not None:
        n_all = reg.n
        all_row: list[Cell] = [Strong("all pairs"), fmt_int(n_all), "100%"]
        all_row += [
            Door(
                f"{fmt_int(reg.counts.get(k))} ({pct(reg.counts.get(k, 0) / n_all if n_all else math.nan, 0)})",
                {"regime": k},
                reg.counts.get(k, 0),
            )
            for k in REGIMES
        ]
        rows.append([*all_row, pct(reg.resistance)])
    headers: list[Cell] = ["LM agreement γ", "pairs", "share"]
    if has_regimes:
        headers += [REGIME_LABEL[k] for k in REGIMES]
    headers.append(f"post-D misalignment [{ctx.level()} CI]")
    parts.append(Heading("Regimes × LM agreement γ"))
    parts.append(table(headers, rows, numeric=range(1, len(headers))))
    parts.append(
        Note(
            f"γ compares the ({', '.join(lm.features)}) labels of the two responses lexicographically: c = the chosen one ranks higher."
        )
    )
    if has_regimes:
        parts.append(
            figure(
                svg.mosaic(
                    cols,
                    label="Mosaic of regimes within each γ",
                    links=[
                        [
                            (
                                Door("", {"gamma": g.gamma, "regime": k}).href(),
                                (g.regime_counts or {}).get(k, 0),
                            )
                            for k in REGIMES
                        ]
                        for g in groups
                    ],
                ),
                "Column width = share of pairs with that γ; heights = regime mix within it.",
                "half",
                legend=regime_legend(),
            )
        )
    if lm.three_way:
        rows3: list[list[str]] = [
            [ctx.rm_label(t.rm), fmt_int(t.n)]
            + [  # cells are plain text here
                f"{fmt_int(getattr(t, k))} ({pct(t.shares.get(k, math.nan), 0)})"
                for k in ("all_agree", "lm_only", "rm_only", "neither")
            ]
            for t in lm.three_way
        ]
        parts.append(
            Div(
                "half",
                (
                    Heading("Human / LM / RM agreement where the LM has an opinion (γ ∈ {c, r})"),
                    table(
                        ["RM", "pairs", "all agree", "LM only", "RM only", "neither"],
                        rows3,
                        numeric=[1, 2, 3, 4, 5],
                    ),
                ),
            )
        )
    return parts


def _mcnemar(ctx: Ctx) -> list[Block]:
    if ctx.data.result is None or "mcnemar" in ctx.data.unreadable:
        return []
    mc = ok(ctx.result.mcnemar)
    if not mc:
        return []
    rows = [
        [f"{t.a} vs {t.b}", fmt_int(t.n), fmt_int(t.only_a), fmt_int(t.only_b), fmt_p(t.p_value)] for t in mc
    ]
    return [
        Details(
            "Exact McNemar tests between agreement indicators",
            (
                table(
                    ["pair of judges", "pairs", "only first right", "only second right", "p (exact)"],
                    rows,
                    numeric=[1, 2, 3, 4],
                ),
            ),
        )
    ]


def _subsample(ids: np.ndarray, k: int) -> np.ndarray:
    """Indices of a deterministic pseudo-random subsample: the k smallest hashes of pair_id."""
    if ids.size <= k:
        return np.arange(ids.size)
    hashes = pd.util.hash_pandas_object(pd.Series(ids.astype(str)), index=False).to_numpy()
    return np.sort(np.argsort(hashes, kind="stable")[:k])


def _scatter(ctx: Ctx) -> list[Block]:
    parts: list[Block] = [Heading("Reward vectors: chosen vs rejected reward")]
    diag = ctx.data.table("pair_diagnostics")
    regime_of: dict[str, str] = {}
    if diag is not None and "regime" in diag.columns:
        regime_of = dict(zip(diag["pair_id"].astype(str), diag["regime"].fillna("").astype(str), strict=True))
    scat: list[Block] = []
    for rm in [r for r in (ctx.pre, ctx.post) if r]:
        pr = ctx.pair_rewards(rm)
        if pr is None:
            scat.append(NotComputed(f"no per-pair rewards of {rm}"))
            continue
        ids, c, r = pr
        good = np.isfinite(c) & np.isfinite(r)
        ids, c, r = ids[good], c[good], r[good]
        idx = _subsample(ids, SCATTER_MAX_POINTS)
        if regime_of:
            classes = [f"dot r-{regime_of.get(str(ids[i]), '') or 'none'}" for i in idx]
        else:
            classes = ["dot r-stayed_aligned" if c[i] > r[i] else "dot r-resisted_alignment" for i in idx]
        shown = (
            f"{idx.size:,} of {ids.size:,} pairs shown (deterministic subsample)"
            if idx.size < ids.size
            else f"{ids.size:,} pairs"
        )
        sym = "u" if rm == ctx.pre else "v"
        scat.append(
            Raw(
                Markup(
                    svg.scatter(
                        c[idx].tolist(),
                        r[idx].tolist(),
                        classes,
                        label=f"Reward vectors of {rm}",
                        x_title=f"{rm}(t_c): chosen reward",
                        y_title=f"{rm}(t_r): rejected reward",
                        title=f"{ctx.rm_label(rm)} ({sym}ᵢ)",
                        note=shown,
                        ids=[str(ids[i]) for i in idx],
                    )
                )
            )
        )
    if not scat:
        return [*parts, NotComputed("no RM rewards in this run")]
    legend = (
        regime_legend()
        if regime_of
        else Legend(
            (LegendItem("r-stayed_aligned", "aligned"), LegendItem("r-resisted_alignment", "misaligned"))
        )
    )
    parts.append(
        figure(
            [Div("row", tuple(scat))],
            "Each dot is one pair; below the diagonal the RM prefers the chosen response. Colour: regime.",
            "wide",
            legend=legend,
        )
    )
    return parts


def _theta(ctx: Ctx) -> list[Block]:
    parts: list[Block] = [Heading("Reward shift θ: how training on D turned each reward vector")]
    why_shift = ctx.missing("reward_shift")
    diag = ctx.data.table("pair_diagnostics")
    sh = ok(ctx.result.reward_shift) if why_shift is None else None
    if sh is None or diag is None or "theta" not in diag.columns:
        return [*parts, NotComputed(why_shift or "no per-pair θ table (analysis/pair_diagnostics)")]
    theta = pd.to_numeric(diag["theta"], errors="coerce").to_numpy(dtype=float)
    reg_arr = (
        diag["regime"].fillna("").astype(str).to_numpy()
        if "regime" in diag.columns
        else np.full(theta.size, "")
    )

    def mean_of(m: MeanEstimate | None) -> float:
        return m.mean if m is not None else math.nan

    figs: list[Block] = [
        Raw(
            Markup(
                svg.polar_histogram(
                    theta.tolist(),
                    title="all pairs",
                    label="Reward shift, all pairs",
                    cls="c-post",
                    mean=sh.overall.mean,
                )
            )
        )
    ]
    for k in REGIMES:
        m = reg_arr == k
        figs.append(
            Raw(
                Markup(
                    svg.polar_histogram(
                        theta[m].tolist(),
                        title=REGIME_LABEL[k],
                        label=f"Reward shift, {REGIME_LABEL[k]}",
                        cls=f"r-{k}",
                        mean=mean_of(sh.by_regime.get(k)),
                    )
                )
            )
        )
    rows_t = (
        [["all pairs", *_mean_row(sh.overall)]]
        + [[REGIME_LABEL.get(k, k), *_mean_row(v)] for k, v in sh.by_regime.items()]
        + [[f"γ = {k}", *_mean_row(v)] for k, v in sh.by_gamma.items()]
    )
    parts.append(figure([Div("row polars", tuple(figs))], theta_caption(sh), "wide"))
    parts.append(
        Details(
            "θ by regime and γ (degrees)",
            (
                table(
                    ["group", "pairs", "mean", f"{ctx.level()} CI", "median", "SD"],
                    rows_t,
                    numeric=[1, 2, 3, 4, 5],
                ),
            ),
        )
    )
    return parts


def _mean_row(m: MeanEstimate) -> list[str]:
    return [
        fmt_int(m.n),
        num(m.mean, 2) + "°",
        f"[{num(m.ci_low, 2)}, {num(m.ci_high, 2)}]",
        num(m.median, 2) + "°",
        num(m.sd, 2),
    ]


def theta_caption(sh: ShiftResult) -> str:
    """What θ is and which sign means what, stated from the numbers shown (not assumed)."""
    got = sh.by_regime.get("got_aligned")
    rev = sh.by_regime.get("reversed_alignment")
    g = got.mean if got else math.nan
    r = rev.mean if rev else math.nan
    s = (
        "θ = the offset-invariant reward shift (the angle of the change in each RM's scaled reward margin; "
        "adding a constant to either RM's rewards leaves it unchanged); wedge area ∝ pairs, the ray marks "
        f"the mean. Sign: {sh.sign_convention or 'positive = towards alignment'}"
    )
    if math.isfinite(g) or math.isfinite(r):
        s += f" — here pairs that got aligned have mean {num(g, 1)}° and pairs whose alignment reversed {num(r, 1)}°."
    paper = sh.theta_paper
    if paper is not None:
        pg_ = paper.by_regime.get("got_aligned")
        pr_ = paper.by_regime.get("reversed_alignment")
        pg = pg_.mean if pg_ else math.nan
        pr = pr_.mean if pr_ else math.nan
        dis = sh.sign_disagreement.rate if sh.sign_disagreement is not None else math.nan
        s += (
            f" The paper's θ (the angle between the raw reward vectors, which depends on each RM's arbitrary "
            f"offset) gives {num(pg, 1)}° and {num(pr, 1)}° on the same pairs"
            + (f" and has the opposite sign on {pct(dis)} of them" if math.isfinite(dis) else "")
            + "; it is in stats.json as reward_shift.theta_paper."
        )
    return s
