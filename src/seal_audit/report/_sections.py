"""The report's sections, each built from stats.json and the analysis tables of one run.

A section renders only what the run computed. Anything absent or skipped becomes a visible
"not computed: <reason>" line, using the reason stats.json states, because a report that silently
leaves a figure out is read as "nothing to see there".
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from seal_audit.report import _svg as svg
from seal_audit.report._data import ReportData, dig, fnum, inum, rm_roles, skip_reason
from seal_audit.report._html import (
    Markup,
    figure,
    fmt_int,
    fmt_p,
    join,
    not_computed,
    note,
    pretty_json,
    table,
    tag,
)
from seal_audit.report._svg import esc, num, pct

REGIMES = ("stayed_aligned", "got_aligned", "resisted_alignment", "reversed_alignment")
REGIME_LABEL = {
    "stayed_aligned": "stayed aligned (1→1)",
    "got_aligned": "got aligned (0→1)",
    "resisted_alignment": "resisted alignment (0→0)",
    "reversed_alignment": "reversed alignment (1→0)",
}
GAMMA_LABEL = {"c": "LM agrees with human", "i": "LM indifferent", "r": "LM disagrees"}
MODEL_LABEL = {
    "pre": "pre-D RM (β₀)",
    "post": "post-D RM (β)",
    "post_minus_pre": "post − pre (what D changed)",
}
ESTIMATOR_LABEL = {
    "pooled": "pooled OLS over the 2N stacked texts, pair-clustered standard errors",
    "fe": "pair fixed effects (r(t_c) − r(t_r) on feature differences), pair-clustered (= HC1) standard errors",
}
SCATTER_MAX_POINTS = 2500
"""Points drawn per reward-vector scatter: beyond this a scatter is ink, not information, and the
page weight grows with N. The subsample is a deterministic hash of pair_id (same run, same dots)."""


@dataclasses.dataclass(frozen=True)
class Section:
    """One report section: its anchor, title, one-line reading guide and body HTML."""

    id: str
    title: str
    guide: str
    body: Markup


class Ctx:
    """What every section builder needs: the data and a few derived lookups computed once."""

    def __init__(self, data: ReportData) -> None:
        self.data = data
        self.stats = data.stats
        self.roles = rm_roles(data)
        self.post = (
            str(
                dig(self.stats, "inputs", "post")
                or next((r for r, v in self.roles.items() if v == "post"), "")
            )
            or None
        )
        self.pre = (
            str(
                dig(self.stats, "inputs", "pre") or next((r for r, v in self.roles.items() if v == "pre"), "")
            )
            or None
        )
        feats = dig(self.stats, "inputs", "features") or []
        self.features: list[dict[str, Any]] = [f for f in feats if isinstance(f, dict)]
        self.role_of = {str(f.get("name")): str(f.get("role", "spoiler")) for f in self.features}
        self.correction = str(dig(self.stats, "options", "correction") or "bonferroni")
        self.alpha = fnum(dig(self.stats, "options", "alpha"))
        if not math.isfinite(self.alpha):
            self.alpha = 0.05

    def missing(self, key: str) -> str | None:
        """Why stats.json has nothing for ``key`` (no stats.json, skipped with a reason, absent)."""
        if self.data.stats_missing:
            return self.data.stats_missing
        return skip_reason(self.stats.get(key))

    def rm_label(self, rm: str) -> str:
        role = self.roles.get(rm, "extra")
        return {"post": "post-D", "pre": "pre-D", "baseline": "baseline"}.get(role, "RM") + f" · {rm}"

    def level(self) -> str:
        return f"{100 * (1 - self.alpha):g}%"

    def correction_text(self) -> str:
        return f"{self.correction.capitalize()}-corrected p < {self.alpha:g}"

    def pair_rewards(self, rm: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(pair_ids, chosen, rejected) rewards of ``rm`` on the original texts."""
        diag = self.data.table("pair_diagnostics")
        if diag is not None and f"{rm}_chosen" in diag.columns and f"{rm}_rejected" in diag.columns:
            return (
                diag["pair_id"].astype(str).to_numpy(),
                pd.to_numeric(diag[f"{rm}_chosen"], errors="coerce").to_numpy(dtype=float),
                pd.to_numeric(diag[f"{rm}_rejected"], errors="coerce").to_numpy(dtype=float),
            )
        sc = self.data.scores
        if sc is None or not {"pair_id", "side", "rm", "reward"} <= set(sc.columns):
            return None
        s = sc[sc["rm"].astype(str) == rm]
        if "variant" in s.columns:
            s = s[s["variant"].fillna("original").astype(str) == "original"]
        if s.empty:
            return None
        wide = s.pivot_table(index="pair_id", columns="side", values="reward", aggfunc="first")
        if "chosen" not in wide.columns or "rejected" not in wide.columns:
            return None
        return (
            wide.index.astype(str).to_numpy(),
            wide["chosen"].to_numpy(dtype=float),
            wide["rejected"].to_numpy(dtype=float),
        )


def _rate(r: Any) -> svg.Estimate:
    """A stats.json RateEstimate as a plot estimate (exact Clopper–Pearson interval)."""
    est = fnum(dig(r, "rate"))
    lo, hi = fnum(dig(r, "ci_low")), fnum(dig(r, "ci_high"))
    tip = f"{pct(est)} [{pct(lo)}, {pct(hi)}], {fmt_int(dig(r, 'k'))}/{fmt_int(dig(r, 'n'))}"
    return svg.Estimate(est, lo, hi, True, tip)


def _rate_text(r: Any) -> str:
    return f"{pct(fnum(dig(r, 'rate')))} [{pct(fnum(dig(r, 'ci_low')))}, {pct(fnum(dig(r, 'ci_high')))}]"


def _coefs(reg: Any) -> dict[str, dict[str, Any]]:
    coefs = dig(reg, "coefficients") or []
    return {str(c.get("term")): c for c in coefs if isinstance(c, dict)}


def _est(c: Mapping[str, Any] | None, unit: str = "") -> svg.Estimate | None:
    if c is None:
        return None
    e = fnum(c.get("estimate"))
    lo, hi = fnum(c.get("ci_low")), fnum(c.get("ci_high"))
    alo, ahi = fnum(c.get("ci_low_adjusted")), fnum(c.get("ci_high_adjusted"))
    p = c.get("p_bonferroni") if c.get("p_bonferroni") is not None else c.get("p_value")
    sig = bool(c.get("significant"))
    verdict = str(c.get("verdict") or ("significant" if sig else "not significant"))
    mde = fnum(c.get("mde"))
    tip = f"{c.get('term')}: {num(e)}{unit}, corrected p = {fmt_p(p)}, {verdict}"
    if math.isfinite(alo) and math.isfinite(ahi):
        # the drawn interval is the adjusted one, so that no verdict contradicts the bar beside it
        tip += f"; adjusted (simultaneous) CI [{num(alo)}, {num(ahi)}], unadjusted [{num(lo)}, {num(hi)}]"
        lo, hi = alo, ahi
    else:
        tip += f"; CI [{num(lo)}, {num(hi)}]"
    if math.isfinite(mde):
        tip += f"; minimum detectable effect {num(mde)}{unit}"
    return svg.Estimate(e, lo, hi, sig, tip)


def _feature_rows(ctx: Ctx, names: Sequence[str]) -> list[svg.ForestRow]:
    """Rows of a forest plot: target features first, then spoilers, each in stats.json's order."""
    known = [str(f.get("name")) for f in ctx.features]
    order = {n: i for i, n in enumerate(known)}
    uniq = sorted(
        dict.fromkeys(names),
        key=lambda n: (ctx.role_of.get(n, "spoiler") != "target", order.get(n, 10**6), n),
    )
    return [svg.ForestRow(n, ctx.role_of.get(n, "spoiler")) for n in uniq]


def _sig_legend(ctx: Ctx) -> Markup:
    return Markup(
        '<div class="legend">'
        '<span><i class="sw g-target"></i>target feature</span>'
        '<span><i class="sw g-spoiler"></i>spoiler feature</span>'
        f'<span><i class="sw solid"></i>significant ({esc(ctx.correction_text())})</span>'
        '<span><i class="sw faded"></i>not significant</span>'
        "</div>"
    )


def _or_ci(c: Mapping[str, Any]) -> str:
    """The odds-ratio interval that matches the verdict: exp of the adjusted log-odds interval."""
    lo, hi = fnum(c.get("ci_low_adjusted")), fnum(c.get("ci_high_adjusted"))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = (
            math.log(max(fnum(c.get("odds_ratio_ci_low")), 1e-300)),
            math.log(max(fnum(c.get("odds_ratio_ci_high")), 1e-300)),
        )
    return f"[{num(math.exp(min(lo, 700.0)), 2)}, {num(math.exp(min(hi, 700.0)), 2)}]"


def _theta_caption(sh: Any) -> str:
    """What θ is and which sign means what, stated from the numbers shown (not assumed)."""
    got = fnum(dig(sh, "by_regime", "got_aligned", "mean"))
    rev = fnum(dig(sh, "by_regime", "reversed_alignment", "mean"))
    conv = str(dig(sh, "sign_convention") or "positive = towards alignment")
    s = (
        "θ = the offset-invariant reward shift (the angle of the change in each RM's scaled reward margin; "
        "adding a constant to either RM's rewards leaves it unchanged); wedge area ∝ pairs, the ray marks "
        f"the mean. Sign: {conv}"
    )
    if math.isfinite(got) or math.isfinite(rev):
        s += f" — here pairs that got aligned have mean {num(got, 1)}° and pairs whose alignment reversed {num(rev, 1)}°."
    paper = dig(sh, "theta_paper")
    if isinstance(paper, Mapping):
        pg = fnum(dig(paper, "by_regime", "got_aligned", "mean"))
        pr = fnum(dig(paper, "by_regime", "reversed_alignment", "mean"))
        dis = fnum(dig(sh, "sign_disagreement", "rate"))
        s += (
            f" The paper's θ (the angle between the raw reward vectors, which depends on each RM's arbitrary "
            f"offset) gives {num(pg, 1)}° and {num(pr, 1)}° on the same pairs"
            + (f" and has the opposite sign on {pct(dis)} of them" if math.isfinite(dis) else "")
            + "; it is in stats.json as reward_shift.theta_paper."
        )
    return s


def _regression_caption(reg: Any, what: str) -> str:
    n_obs, n_cl = dig(reg, "n_obs"), dig(reg, "n_clusters")
    cov = dig(reg, "cov_type") or "?"
    corr = str(dig(reg, "correction") or "bonferroni")
    dropped = dig(reg, "dropped_terms") or []
    k = len([c for c in dig(reg, "coefficients") or [] if dig(c, "term") != "intercept"])
    s = (
        f"{what}; {fmt_int(n_obs)} rows"
        + (f", {fmt_int(n_cl)} clusters" if n_cl else "")
        + f"; covariance {cov}; "
    )
    adjusted = dig(reg, "adjusted_ci")
    if adjusted:
        s += (
            f"{corr.capitalize()} correction over {k} coefficients; the intervals drawn are the adjusted "
            f"ones ({adjusted}), so they agree with the verdicts."
        )
    else:
        s += f"{corr.capitalize()} correction over {k} coefficients; intervals are unadjusted {100 * (1 - fnum(dig(reg, 'alpha') or 0.05)):g}% CIs."
    if dig(reg, "power") is not None:
        s += (
            f" 'Underpowered' marks a non-significant coefficient whose minimum detectable effect at "
            f"{100 * fnum(dig(reg, 'power')):g}% power exceeds the effect of interest "
            f"({num(fnum(dig(reg, 'effect_of_interest')))}): not evidence of no effect."
        )
    notes = dig(reg, "notes") or []
    if notes:
        s += " " + " ".join(str(n) for n in notes)
    if dropped:
        s += f" Dropped (never vary): {', '.join(map(str, dropped))}."
    return s


# ---------------------------------------------------------------------------------------------
# headline


def headline(ctx: Ctx) -> Section:
    guide = (
        "How often each reward model ranks the human-chosen response above the rejected one (50% = chance), "
        "and the share of D the post-D RM still gets wrong: its alignment resistance."
    )
    st = ctx.stats
    if ctx.data.stats_missing:
        n = len(ctx.data.pairs) if ctx.data.pairs is not None else None
        body = join(
            [_cards([("Pairs in the run", fmt_int(n), "pairs", "")]), not_computed(ctx.data.stats_missing)]
        )
        return Section("headline", "Headline", guide, body)
    inp = st.get("inputs") or {}
    cards: list[tuple[str, str, str, str]] = [
        ("Pairs analysed", fmt_int(inp.get("n_pairs")), "n_pairs", str(inp.get("n_pairs")))
    ]
    agree = st.get("agreement") or {}
    post, pre = ctx.post, ctx.pre
    if post and post in agree:
        a = dig(agree, post, "agreement", "rate")
        cards.append((f"Agreement, post-D ({post})", pct(fnum(a)), f"agreement:{post}", str(a)))
    if pre and pre in agree:
        a = dig(agree, pre, "agreement", "rate")
        cards.append((f"Agreement, pre-D ({pre})", pct(fnum(a)), f"agreement:{pre}", str(a)))
    res = st.get("resistance")
    if skip_reason(res) is None:
        r = fnum(dig(res, "rate"))
        sub = f"{ctx.level()} CI {pct(fnum(dig(res, 'ci_low')))} – {pct(fnum(dig(res, 'ci_high')))}"
        cards.append(("Alignment resistance", pct(r), "resistance", str(dig(res, "rate")), sub))  # type: ignore[arg-type]
    for rm, ag in agree.items():
        if dig(ag, "is_baseline"):
            a = dig(ag, "agreement", "rate")
            cards.append((f"Length-only baseline ({rm})", pct(fnum(a)), f"agreement:{rm}", str(a)))
    parts: list[object] = [_cards(cards)]

    # agreement of every RM with CI, baselines beside the RMs
    items = []
    order = {"post": 0, "pre": 1, "extra": 2, "baseline": 3}
    for rm in sorted(agree, key=lambda r: (order.get(ctx.roles.get(r, "extra"), 2), r)):
        cls = {"post": "c-post", "pre": "c-pre", "baseline": "c-base"}.get(
            ctx.roles.get(rm, "extra"), "c-other"
        )
        items.append((ctx.rm_label(rm), _rate(dig(agree, rm, "agreement")), cls))
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
    reg = st.get("regimes")
    if skip_reason(reg) is None:
        shares = [(REGIME_LABEL[k], fnum(dig(reg, "shares", k, "rate")), f"r-{k}") for k in REGIMES]
        counts = dig(reg, "counts") or {}
        legend = "".join(
            f'<span><i class="sw r-{k}"></i>{esc(REGIME_LABEL[k])}: <b data-stat="regime:{k}" data-value="{esc(dig(reg, "shares", k, "rate"))}">'
            f"{pct(fnum(dig(reg, 'shares', k, 'rate')))}</b> ({fmt_int(counts.get(k))})</span>"
            for k in REGIMES
        )
        parts.append(
            Markup('<div class="regimes half"><h3>The four regimes, pre-D → post-D</h3>')
            + Markup(svg.stacked_bar(shares, label="Regimes pre-D to post-D"))
            + Markup(f'<div class="legend">{legend}</div></div>')
        )
    else:
        parts.append(note(f"Regimes not computed: {skip_reason(reg)}"))
    # truncation and failures
    rows: list[list[object]] = []
    trunc = inp.get("n_truncated") or {}
    for rm in sorted(set(trunc) | {r for r, role in ctx.roles.items() if role in ("pre", "post")}):
        k = trunc.get(rm, 0)
        rows.append(
            [
                f"texts truncated to {rm}'s input limit",
                Markup(f'<span data-stat="truncated:{esc(rm)}">{fmt_int(k)}</span>'),
            ]
        )
    for rm in sorted(agree):
        ex = dig(st, "exclusions", f"agreement:{rm}", "n_excluded")
        if ex:
            rows.append([f"pairs without both rewards of {rm} (excluded)", fmt_int(ex)])
    feats = ctx.data.features
    if feats is not None and "status" in feats.columns:
        n_fail = int((feats["status"].astype(str) == "failed").sum())
        rows.append(
            [
                "feature labels failed (after retries)",
                Markup(f'<span data-stat="label_failures">{fmt_int(n_fail)}</span>'),
            ]
        )
    for t, rr in (
        (st.get("robustness") or {}).items()
        if isinstance(st.get("robustness"), dict) and skip_reason(st.get("robustness")) is None
        else []
    ):
        d = dig(rr, "drift")
        if d:
            rows.append(
                [
                    f"rewrites failed / rejected / drifted ({t})",
                    f"{fmt_int(d.get('n_failed'))} / {fmt_int(d.get('n_rejected'))} / {fmt_int(d.get('n_drifted'))}",
                ]
            )
    rows.append(["pairs with diverging contexts (kept, flagged)", fmt_int(inp.get("n_context_diverges"))])
    for tbl, k in sorted((inp.get("unknown_pair_ids") or {}).items()):
        if k:
            rows.append([f"rows of {tbl} with an unknown pair_id (ignored)", fmt_int(k)])
    parts.append(
        Markup('<div class="half"><h3>Truncation and failures</h3>')
        + table(["", "count"], rows, numeric=[1])
        + Markup("</div>")
    )
    notes = inp.get("notes") or []
    if notes:
        parts.append(
            Markup('<div class="notes"><h3>Notes from the analysis</h3><ul>')
            + join(tag("li", n) for n in notes)
            + Markup("</ul></div>")
        )
    return Section(
        "headline", "Headline", guide, Markup('<div class="grid">') + join(parts) + Markup("</div>")
    )


def _cards(cards: Sequence[tuple[str, ...]]) -> Markup:
    out = []
    for c in cards:
        title, value, key, raw = c[0], c[1], c[2], c[3]
        sub = c[4] if len(c) > 4 else ""
        out.append(
            f'<div class="card"><div class="card-title">{esc(title)}</div>'
            f'<div class="card-value" data-stat="{esc(key)}" data-value="{esc(raw)}">{esc(value)}</div>'
            + (f'<div class="card-sub">{esc(sub)}</div>' if sub else "")
            + "</div>"
        )
    return Markup(f'<div class="cards">{"".join(out)}</div>')


# ---------------------------------------------------------------------------------------------
# imprint


def imprint(ctx: Ctx) -> Section:
    guide = (
        "Reward units a feature adds to a text, all else equal (β). Right of zero: the RM rewards it. "
        "Compare pre-D with post-D to see what training on D imprinted."
    )
    why = ctx.missing("imprint")
    if why:
        return Section("imprint", "Feature imprint", guide, not_computed(why))
    imp = ctx.stats["imprint"]
    ests = [e for e in (dig(ctx.stats, "options", "estimators") or list(imp)) if e in imp]
    parts: list[object] = [_sig_legend(ctx)]
    for i, est in enumerate(ests):
        models = imp[est]
        panels = []
        captions = []
        names: list[str] = []
        for model in ("pre", "post", "post_minus_pre"):
            res = models.get(model)
            if skip_reason(res) is not None:
                captions.append(f"{MODEL_LABEL[model]}: not computed ({skip_reason(res)})")
                continue
            coefs = {k: v for k, v in _coefs(dig(res, "regression")).items() if k != "intercept"}
            names += list(coefs)
            rm = dig(res, "rm") or ""
            panels.append(
                svg.Panel(
                    f"{MODEL_LABEL[model]}" + (f" · {rm}" if model != "post_minus_pre" and rm else ""),
                    {k: e for k, c in coefs.items() if (e := _est(c)) is not None},
                )
            )
        if not panels:
            parts.append(not_computed("; ".join(captions)))
            continue
        post_res = (
            models.get("post")
            if skip_reason(models.get("post")) is None
            else next(m for m in models.values() if skip_reason(m) is None)
        )
        cap = _regression_caption(dig(post_res, "regression"), f"Estimator: {ESTIMATOR_LABEL.get(est, est)}")
        if captions:
            cap += " " + " ".join(captions)
        fig = figure(
            svg.forest(
                _feature_rows(ctx, names),
                panels,
                x_title="Δ reward (raw logit units)",
                label=f"Feature imprint, {est}",
            ),
            cap,
            "wide",
        )
        title = tag(
            "h3",
            f"Estimator: {'pooled OLS' if est == 'pooled' else 'pair fixed effects' if est == 'fe' else est}",
        )
        if i == 0:
            parts += [title, fig]
        else:
            parts.append(
                Markup("<details><summary>") + title + Markup("</summary>") + fig + Markup("</details>")
            )
    vif = ctx.stats.get("vif")
    if skip_reason(vif) is None and isinstance(vif, list):
        high = [v for v in vif if fnum(dig(v, "vif")) > 10]
        if high:
            parts.append(
                note(
                    "Collinearity warning (VIF > 10): "
                    + ", ".join(f"{v.get('term')} ({num(fnum(v.get('vif')), 1)})" for v in high)
                )
            )
        rows = [[v.get("term"), num(fnum(v.get("vif")), 2)] for v in vif]
        parts.append(
            Markup("<details><summary>Variance inflation factors</summary>")
            + table(["regressor", "VIF"], rows, numeric=[1])
            + Markup("</details>")
        )
    return Section("imprint", "Feature imprint", guide, join(parts))


# ---------------------------------------------------------------------------------------------
# resistance


def _subsample(ids: np.ndarray, k: int) -> np.ndarray:
    """Indices of a deterministic pseudo-random subsample: the k smallest hashes of pair_id."""
    if ids.size <= k:
        return np.arange(ids.size)
    hashes = pd.util.hash_pandas_object(pd.Series(ids.astype(str)), index=False).to_numpy()
    return np.sort(np.argsort(hashes, kind="stable")[:k])


def resistance(ctx: Ctx) -> Section:
    guide = (
        "Where the post-D RM still sides against the human: by regime (how the pre-D RM did) and by the "
        "LM-labeler's verdict γ; reward vectors below the diagonal are aligned."
    )
    parts: list[object] = []
    st = ctx.stats
    lm = st.get("lm_agreement")
    reg = st.get("regimes")
    why_lm = ctx.missing("lm_agreement")
    # regimes × γ table and mosaic
    if why_lm is None:
        groups = [g for g in dig(lm, "groups") or [] if isinstance(g, dict)]
        has_regimes = all(isinstance(g.get("regime_counts"), dict) for g in groups)
        rows: list[list[object]] = []
        cols: list[tuple[str, float, list[tuple[str, float, str]]]] = []
        for g in groups:
            gname = str(g.get("gamma"))
            rc = g.get("regime_counts") or {}
            n_g = inum(g.get("n")) or 0
            row: list[object] = [
                f"γ = {gname} · {GAMMA_LABEL.get(gname, '')}",
                fmt_int(n_g),
                pct(fnum(dig(g, "share", "rate"))),
            ]
            if has_regimes:
                row += [
                    f"{fmt_int(rc.get(k))} ({pct(rc.get(k, 0) / n_g if n_g else math.nan, 0)})"
                    for k in REGIMES
                ]
            row.append(_rate_text(g.get("misalignment_post")))
            rows.append(row)
            cols.append(
                (
                    gname,
                    fnum(dig(g, "share", "rate")),
                    [(REGIME_LABEL[k], float(rc.get(k, 0)), f"r-{k}") for k in REGIMES],
                )
            )
        if has_regimes and skip_reason(reg) is None:
            cnt = dig(reg, "counts") or {}
            n_all = inum(dig(reg, "n")) or 0
            all_row: list[object] = [Markup("<b>all pairs</b>"), fmt_int(n_all), "100%"]
            rows.append(
                all_row
                + [
                    f"{fmt_int(cnt.get(k))} ({pct(cnt.get(k, 0) / n_all if n_all else math.nan, 0)})"
                    for k in REGIMES
                ]
                + [pct(fnum(dig(reg, "resistance")))]
            )
        headers: list[object] = ["LM agreement γ", "pairs", "share"]
        if has_regimes:
            headers += [REGIME_LABEL[k] for k in REGIMES]
        headers.append(f"post-D misalignment [{ctx.level()} CI]")
        feats = ", ".join(map(str, dig(lm, "features") or []))
        parts.append(tag("h3", "Regimes × LM agreement γ"))
        parts.append(table(headers, rows, numeric=list(range(1, len(headers)))))
        parts.append(
            note(
                f"γ compares the ({feats}) labels of the two responses lexicographically: c = the chosen one ranks higher."
            )
        )
        if has_regimes:
            legend = "".join(f'<span><i class="sw r-{k}"></i>{esc(REGIME_LABEL[k])}</span>' for k in REGIMES)
            parts.append(
                figure(
                    svg.mosaic(cols, label="Mosaic of regimes within each γ"),
                    Markup(
                        f'Column width = share of pairs with that γ; heights = regime mix within it.<div class="legend">{legend}</div>'
                    ),
                    "half",
                )
            )
        tw = [t for t in dig(lm, "three_way") or [] if isinstance(t, dict)]
        if tw:
            rows3 = [
                [ctx.rm_label(str(t.get("rm"))), fmt_int(t.get("n"))]
                + [
                    f"{fmt_int(t.get(k))} ({pct(fnum(dig(t, 'shares', k)), 0)})"
                    for k in ("all_agree", "lm_only", "rm_only", "neither")
                ]
                for t in tw
            ]
            parts.append(
                Markup('<div class="half">')
                + tag("h3", "Human / LM / RM agreement where the LM has an opinion (γ ∈ {c, r})")
                + table(
                    ["RM", "pairs", "all agree", "LM only", "RM only", "neither"],
                    rows3,
                    numeric=[1, 2, 3, 4, 5],
                )
                + Markup("</div>")
            )
    else:
        parts.append(tag("h3", "Regimes × LM agreement γ"))
        parts.append(not_computed(why_lm))
    mc = st.get("mcnemar")
    if skip_reason(mc) is None and isinstance(mc, list) and mc:
        rowsm = [
            [
                f"{t.get('a')} vs {t.get('b')}",
                fmt_int(t.get("n")),
                fmt_int(t.get("only_a")),
                fmt_int(t.get("only_b")),
                fmt_p(t.get("p_value")),
            ]
            for t in mc
            if isinstance(t, dict)
        ]
        parts.append(
            Markup("<details><summary>Exact McNemar tests between agreement indicators</summary>")
            + table(
                ["pair of judges", "pairs", "only first right", "only second right", "p (exact)"],
                rowsm,
                numeric=[1, 2, 3, 4],
            )
            + Markup("</details>")
        )

    # reward-vector scatter for both RMs
    parts.append(tag("h3", "Reward vectors: chosen vs rejected reward"))
    diag = ctx.data.table("pair_diagnostics")
    regime_of: dict[str, str] = {}
    if diag is not None and "regime" in diag.columns:
        regime_of = dict(zip(diag["pair_id"].astype(str), diag["regime"].fillna("").astype(str), strict=True))
    scat: list[str] = []
    for rm in [r for r in (ctx.pre, ctx.post) if r]:
        pr = ctx.pair_rewards(rm)
        if pr is None:
            scat.append(not_computed(f"no per-pair rewards of {rm}"))
            continue
        ids, c, r = pr
        ok = np.isfinite(c) & np.isfinite(r)
        ids, c, r = ids[ok], c[ok], r[ok]
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
            svg.scatter(
                c[idx].tolist(),
                r[idx].tolist(),
                classes,
                label=f"Reward vectors of {rm}",
                x_title=f"{rm}(t_c): chosen reward",
                y_title=f"{rm}(t_r): rejected reward",
                title=f"{ctx.rm_label(rm)} ({sym}ᵢ)",
                note=shown,
            )
        )
    if scat:
        legend = (
            "".join(f'<span><i class="sw r-{k}"></i>{esc(REGIME_LABEL[k])}</span>' for k in REGIMES)
            if regime_of
            else (
                '<span><i class="sw r-stayed_aligned"></i>aligned</span><span><i class="sw r-resisted_alignment"></i>misaligned</span>'
            )
        )
        parts.append(
            figure(
                Markup('<div class="row">') + join(Markup(s) for s in scat) + Markup("</div>"),
                Markup(
                    f'Each dot is one pair; below the diagonal the RM prefers the chosen response. Colour: regime.<div class="legend">{legend}</div>'
                ),
                "wide",
            )
        )
    else:
        parts.append(not_computed("no RM rewards in this run"))

    # θ polar histograms
    parts.append(tag("h3", "Reward shift θ: how training on D turned each reward vector"))
    why_shift = ctx.missing("reward_shift")
    if why_shift is None and diag is not None and "theta" in diag.columns:
        theta = pd.to_numeric(diag["theta"], errors="coerce").to_numpy(dtype=float)
        reg_arr = (
            diag["regime"].fillna("").astype(str).to_numpy()
            if "regime" in diag.columns
            else np.full(theta.size, "")
        )
        sh = ctx.stats["reward_shift"]
        figs = [
            svg.polar_histogram(
                theta.tolist(),
                title="all pairs",
                label="Reward shift, all pairs",
                cls="c-post",
                mean=fnum(dig(sh, "overall", "mean")),
            )
        ]
        for k in REGIMES:
            m = reg_arr == k
            figs.append(
                svg.polar_histogram(
                    theta[m].tolist(),
                    title=REGIME_LABEL[k],
                    label=f"Reward shift, {REGIME_LABEL[k]}",
                    cls=f"r-{k}",
                    mean=fnum(dig(sh, "by_regime", k, "mean")),
                )
            )
        rows_t = (
            [["all pairs", *_mean_row(dig(sh, "overall"))]]
            + [[REGIME_LABEL.get(k, k), *_mean_row(v)] for k, v in (dig(sh, "by_regime") or {}).items()]
            + [[f"γ = {k}", *_mean_row(v)] for k, v in (dig(sh, "by_gamma") or {}).items()]
        )
        parts.append(
            figure(
                Markup('<div class="row polars">') + join(Markup(f) for f in figs) + Markup("</div>"),
                _theta_caption(sh),
                "wide",
            )
        )
        parts.append(
            Markup("<details><summary>θ by regime and γ (degrees)</summary>")
            + table(
                ["group", "pairs", "mean", f"{ctx.level()} CI", "median", "SD"],
                rows_t,
                numeric=[1, 2, 3, 4, 5],
            )
            + Markup("</details>")
        )
    else:
        parts.append(not_computed(why_shift or "no per-pair θ table (analysis/pair_diagnostics)"))
    return Section("resistance", "Alignment resistance", guide, join(parts))


def _mean_row(m: Any) -> list[str]:
    return [
        fmt_int(dig(m, "n")),
        num(fnum(dig(m, "mean")), 2) + "°",
        f"[{num(fnum(dig(m, 'ci_low')), 2)}, {num(fnum(dig(m, 'ci_high')), 2)}]",
        num(fnum(dig(m, "median")), 2) + "°",
        num(fnum(dig(m, "sd")), 2),
    ]


# ---------------------------------------------------------------------------------------------
# misalignment drivers


def _side_forest(
    ctx: Ctx, reg: Any, label: str, x_title: str, transform: Callable[[str], tuple[str, str] | None]
) -> str:
    """A coefficient plot with one panel per side: ``transform`` maps a term to (row, panel)."""
    coefs = {k: v for k, v in _coefs(reg).items() if k != "intercept"}
    rows: list[str] = []
    panels: dict[str, dict[str, svg.Estimate]] = {}
    for term, c in coefs.items():
        key = transform(term)
        if key is None:
            continue
        row, panel = key
        rows.append(row)
        e = _est(c)
        if e is not None:
            panels.setdefault(panel, {})[row] = e
    for t in dig(reg, "dropped_terms") or []:  # named in the caption; a row of n/a says nothing
        key = transform(str(t))
        if key:
            panels.setdefault(key[1], {})
    ordered = sorted(panels, key=lambda p: (not p.startswith("chosen"), p))
    frows = []
    base_rows = _feature_rows(ctx, [r.split(" ·")[0] for r in rows])
    for fr in base_rows:
        for r in dict.fromkeys(rows):
            if r.split(" ·")[0] == fr.label:
                frows.append(svg.ForestRow(r, fr.group))
    return svg.forest(frows, [svg.Panel(p, panels[p]) for p in ordered], x_title=x_title, label=label)


def _side_term(term: str) -> tuple[str, str] | None:
    side, _, feat = term.partition(":")
    if side not in ("chosen", "rejected") or not feat:
        return None
    return feat, f"{side} response's feature"


def misalignment(ctx: Ctx) -> Section:
    guide = (
        "Which features of the chosen or rejected response make the post-D RM side against the human: "
        "right of zero = makes the RM more likely to rank the rejected response first."
    )
    why = ctx.missing("misalignment")
    parts: list[object] = []
    if why:
        parts.append(not_computed(why))
    else:
        mis = ctx.stats["misalignment"]
        parts.append(_sig_legend(ctx))
        parts.append(
            figure(
                _side_forest(
                    ctx, dig(mis, "lpm"), "Misalignment drivers (LPM)", "Δ P(misaligned)", _side_term
                ),
                _regression_caption(
                    dig(mis, "lpm"),
                    f"Linear probability model of 1 − δ(r₁) for {dig(mis, 'rm')} ({fmt_int(dig(mis, 'misaligned'))} of {fmt_int(dig(mis, 'n'))} pairs misaligned), as in the reference",
                ),
                "wide",
            )
        )
        lg = dig(mis, "logit")
        if skip_reason(lg) is None:
            parts.append(
                Markup("<details><summary>Logit of the same model (log-odds)</summary>")
                + figure(
                    _side_forest(
                        ctx, lg, "Misalignment drivers (logit)", "Δ log-odds of misalignment", _side_term
                    ),
                    _regression_caption(lg, "Logit, robust SEs"),
                    "wide",
                )
                + Markup("</details>")
            )
        else:
            parts.append(note(f"Logit not computed: {skip_reason(lg)}"))
    parts.append(tag("h3", "What drives the reward shift θ"))
    why_t = ctx.missing("theta_regression")
    if why_t:
        parts.append(not_computed(why_t))
    else:
        tr = ctx.stats["theta_regression"]
        parts.append(
            figure(
                _side_forest(ctx, tr, "Reward shift drivers", "Δ θ (degrees)", _side_term),
                _regression_caption(tr, "OLS of θᵢ on the side features"),
                "wide",
            )
        )
    rbf = ctx.stats.get("resistance_by_feature")
    if skip_reason(rbf) is None and isinstance(rbf, list):
        rows = [
            [
                r.get("feature"),
                r.get("side"),
                _rate_text(r.get("present")),
                _rate_text(r.get("absent")),
                num(100 * fnum(r.get("difference")), 1) + " pp",
            ]
            for r in rbf
            if isinstance(r, dict)
        ]
        parts.append(
            Markup("<details><summary>Resistance with and without each binary feature</summary>")
            + table(
                ["feature", "side", "misaligned when present", "when absent", "difference"], rows, numeric=[4]
            )
            + Markup("</details>")
        )
    return Section("misalignment", "What drives misalignment", guide, join(parts))


# ---------------------------------------------------------------------------------------------
# robustness


def _robust_term(term: str) -> tuple[str, str] | None:
    bits = term.split(":")
    if len(bits) != 3 or bits[0] not in ("chosen", "rejected"):
        return None
    side, feat, d = bits
    direction = "weaker" if d == "D+" else "stronger" if d == "D-" else d
    return f"{feat} · {direction}", f"{side} response rewritten"


def robustness(ctx: Ctx) -> Section:
    guide = (
        "Does rewording a text (meaning kept) flip the post-D RM's verdict? Accuracy drop and flip rates per "
        "transform, the drift gate, and which feature changes drive new misalignments (robustness score π)."
    )
    why = ctx.missing("robustness")
    if why:
        return Section("robustness", "Alignment robustness", guide, not_computed(why))
    rob = ctx.stats["robustness"]
    parts: list[object] = []
    bars_drop: list[tuple[str, float, float, float, str]] = []
    bars_flip: list[tuple[str, float, float, float, str]] = []
    acc_rows: list[list[object]] = []
    gate_rows: list[list[object]] = []
    for t, rr in sorted(rob.items()):
        for ac in dig(rr, "accuracy") or []:
            rm = str(ac.get("rm"))
            cls = "c-post" if ctx.roles.get(rm) == "post" else "c-pre"
            lab = f"{t} · {rm}"
            bars_drop.append(
                (lab, fnum(ac.get("drop")), fnum(ac.get("drop_ci_low")), fnum(ac.get("drop_ci_high")), cls)
            )
            bars_flip.append(
                (
                    lab,
                    fnum(dig(ac, "flipped", "rate")),
                    fnum(dig(ac, "flipped", "ci_low")),
                    fnum(dig(ac, "flipped", "ci_high")),
                    cls,
                )
            )
            acc_rows.append(
                [
                    _transform_label(t, rr),
                    ctx.rm_label(rm),
                    fmt_int(ac.get("n")),
                    pct(fnum(dig(ac, "agreement_original", "rate"))),
                    pct(fnum(dig(ac, "agreement_rewritten", "rate"))),
                    f"{pct(fnum(ac.get('drop')))} [{pct(fnum(ac.get('drop_ci_low')))}, {pct(fnum(ac.get('drop_ci_high')))}]",
                    pct(fnum(dig(ac, "became_misaligned", "rate"))),
                    pct(fnum(dig(ac, "became_aligned", "rate"))),
                    pct(fnum(dig(ac, "flipped", "rate"))),
                    fmt_p(dig(ac, "mcnemar", "p_value")),
                ]
            )
        d = dig(rr, "drift")
        if isinstance(d, dict):
            gate_rows.append(
                [
                    t,
                    fmt_int(d.get("n_pairs_with_rewrites")),
                    fmt_int(d.get("n_rows")),
                    fmt_int(d.get("n_ok")),
                    fmt_int(d.get("n_rejected")),
                    fmt_int(d.get("n_failed")),
                    fmt_int(d.get("n_drifted")),
                    num(fnum(d.get("mean_similarity")), 3),
                    "yes" if d.get("exclude_drifted") else "no",
                    fmt_int(d.get("n_pairs_excluded")),
                ]
            )
    parts.append(tag("h3", "Accuracy drop and flip rates per transform"))
    parts.append(
        table(
            [
                "transform",
                "RM",
                "pairs",
                "agreement, original",
                "rewritten",
                f"drop [{ctx.level()} CI]",
                "became misaligned",
                "became aligned",
                "flipped",
                "McNemar p",
            ],
            acc_rows,
            numeric=[2, 3, 4, 5, 6, 7, 8, 9],
        )
    )
    if bars_drop:
        parts.append(
            Markup('<div class="row">')
            + figure(
                svg.hbars(
                    bars_drop,
                    label="Accuracy drop per transform",
                    x_title="agreement drop (original − rewritten)",
                ),
                "Accuracy drop with paired Wald CI.",
                "half",
            )
            + figure(
                svg.hbars(
                    bars_flip, label="Flip rate per transform", x_title="share of pairs whose verdict flipped"
                ),
                "Flip rate (either direction) with exact CI.",
                "half",
            )
            + Markup("</div>")
        )
    parts.append(tag("h3", "Drift gate"))
    if gate_rows:
        parts.append(
            table(
                [
                    "transform",
                    "pairs rewritten",
                    "rewrites",
                    "ok",
                    "rejected",
                    "failed",
                    "drifted",
                    "mean similarity",
                    "drifted excluded",
                    "pairs excluded",
                ],
                gate_rows,
                numeric=list(range(1, 10)),
            )
        )
        parts.append(
            note(
                "Similarity: embedding cosine between original and rewritten text (reference ≈ 0.96); rejected = empty, identical or lost the turn markers."
            )
        )
    else:
        parts.append(not_computed("no rewrite bookkeeping (rewrites table) in this run"))
    for t, rr in sorted(rob.items()):
        parts.append(
            tag("h3", f"Robustness scores π · transform “{_transform_label(t, rr)}” · {dig(rr, 'rm')}")
        )
        lpm = dig(rr, "lpm")
        if skip_reason(lpm) is not None:
            parts.append(not_computed(str(skip_reason(lpm))))
            continue
        parts.append(_sig_legend(ctx))
        parts.append(
            figure(
                _side_forest(
                    ctx, lpm, f"Robustness scores, {t}", "Δ P(aligned pair becomes misaligned)", _robust_term
                ),
                _regression_caption(
                    lpm,
                    f"LPM of Mᵢ = 1[aligned before, misaligned after] on the change indicators (weaker = D+, stronger = D−), {fmt_int(dig(rr, 'n'))} pairs",
                ),
                "wide",
            )
        )
        lg = dig(rr, "logit")
        if skip_reason(lg) is None:
            rows = [
                [
                    c.get("term"),
                    num(fnum(c.get("estimate"))),
                    num(fnum(c.get("odds_ratio")), 2),
                    _or_ci(c),
                    fmt_p(c.get("p_value")),
                    str(c.get("verdict") or ("significant" if c.get("significant") else "not significant")),
                ]
                for c in dig(lg, "coefficients") or []
                if isinstance(c, dict) and c.get("term") != "intercept"
            ]
            parts.append(
                Markup(
                    "<details><summary>Logit: log-odds and odds ratios (as the paper reads them)</summary>"
                )
                + table(
                    ["term", "log-odds", "odds ratio", "OR CI (adjusted, as the verdict)", "p", "verdict"],
                    rows,
                    numeric=[1, 2, 3, 4],
                )
                + Markup("</details>")
            )
    return Section("robustness", "Alignment robustness", guide, join(parts))


# ---------------------------------------------------------------------------------------------
# calibration, watchlist, manifest


def calibration(ctx: Ctx) -> Section:
    guide = "Is σ(r(t_c) − r(t_r)) a trustworthy probability that the human prefers t_c? On the diagonal = calibrated; lower Brier and ECE are better."
    why = ctx.missing("calibration")
    cal = ctx.stats.get("calibration")
    if why or not isinstance(cal, dict) or not cal:
        return Section("calibration", "Calibration", guide, not_computed(why or "no RM to calibrate"))
    series = []
    rows = []
    for rm, c in sorted(cal.items(), key=lambda kv: (kv[0] != ctx.post, kv[0])):
        cls = (
            "c-post" if ctx.roles.get(rm) == "post" else "c-pre" if ctx.roles.get(rm) == "pre" else "c-other"
        )
        bins = [
            (fnum(b.get("mean_predicted")), fnum(b.get("observed")), inum(b.get("n")) or 0)
            for b in c.get("bins") or []
            if isinstance(b, dict)
        ]
        series.append((ctx.rm_label(rm), cls, bins))
        rows.append(
            [
                ctx.rm_label(rm),
                fmt_int(c.get("n")),
                num(fnum(c.get("brier")), 4),
                num(fnum(c.get("log_loss")), 4),
                num(fnum(c.get("ece")), 4),
                pct(fnum(c.get("mean_probability"))),
            ]
        )
    body = (
        Markup('<div class="row">')
        + figure(
            svg.reliability(series, label="Reliability diagram"),
            "Each pair counted in both orientations (p and 1 − p); point area ∝ pairs in the bin.",
            "half",
        )
        + Markup('<div class="half">')
        + table(["RM", "pairs", "Brier", "log loss", "ECE", "mean P(chosen)"], rows, numeric=[1, 2, 3, 4, 5])
        + Markup("</div></div>")
    )
    return Section("calibration", "Calibration", guide, body)


WATCHLIST_ROWS = 20


def watchlist(ctx: Ctx) -> Section:
    guide = "Pairs where every judge available disagrees with the human label: the first candidates for relabeling. Click a row to read it."
    why = ctx.missing("suspicious_pairs")
    if why:
        return Section("watchlist", "Suspicious pairs", guide, not_computed(why))
    sp = ctx.stats["suspicious_pairs"]
    tbl = ctx.data.table("suspicious_pairs")
    ids: list[str]
    margins: dict[str, tuple[float, float]] = {}
    if tbl is not None and "pair_id" in tbl.columns:
        head = tbl.head(WATCHLIST_ROWS)
        ids = head["pair_id"].astype(str).tolist()
        for _, r in head.iterrows():
            margins[str(r["pair_id"])] = (fnum(r.get("post_margin")), fnum(r.get("pre_margin")))
    else:
        ids = [str(x) for x in (sp.get("top") or [])][:WATCHLIST_ROWS]
    texts: dict[str, tuple[str, str]] = {}
    pairs = ctx.data.pairs
    if pairs is not None and ids:
        sub = pairs[pairs["pair_id"].astype(str).isin(ids)]
        texts = {str(r.pair_id): (str(r.chosen), str(r.rejected)) for r in sub.itertuples()}

    def snip(t: str) -> str:
        t = " ".join(t.split())
        t = t[len("Assistant:") :].lstrip() if t.startswith("Assistant:") else t
        return t[:110] + ("…" if len(t) > 110 else "")

    rows = []
    for i, pid in enumerate(ids, 1):
        ch, rj = texts.get(pid, ("", ""))
        pm, pr = margins.get(pid, (math.nan, math.nan))
        link = Markup(f'<a href="#explorer" class="pair-link" data-pair="{esc(pid)}">{esc(pid)}</a>')
        rows.append([str(i), link, num(pm, 2), num(pr, 2), snip(ch), snip(rj)])
    body = join(
        [
            note(f"{fmt_int(sp.get('n'))} pairs flagged. Criterion: {sp.get('criterion', '')}."),
            table(
                ["#", "pair", "post-D margin", "pre-D margin", "chosen (start)", "rejected (start)"],
                rows,
                cls="data watch",
                numeric=[0, 2, 3],
            )
            if rows
            else note("No pair is flagged."),
        ]
    )
    if (inum(sp.get("n")) or 0) > len(rows):
        body = body + note(
            f"First {len(rows)} shown; the full ranking is analysis/suspicious_pairs.parquet and the explorer's “suspicious” filter."
        )
    return Section("watchlist", "Suspicious pairs", guide, body)


def manifest(ctx: Ctx) -> Section:
    guide = "How this run was made: versions, models, featurizers, prompts, seeds and timings — enough to regenerate every number here."
    m = ctx.data.manifest
    parts: list[object] = []
    rows: list[list[object]] = [
        ["seal-audit version", m.get("seal_audit_version", "–")],
        ["created / updated", f"{m.get('created', '–')} / {m.get('updated', '–')}"],
        ["run seed", m.get("seed") if m.get("seed") is not None else "–"],
        ["run directory", ctx.data.root],
    ]
    if ctx.stats:
        rows.append(["stats.json schema", ctx.stats.get("schema", "–")])
        analysis_opts = ctx.stats.get("options") or {}
        rows.append(["analysis options", ", ".join(f"{k}={v}" for k, v in sorted(analysis_opts.items()))])
    parts.append(table(["", ""], rows, cls="data kv"))
    inputs = m.get("inputs") or []
    if inputs:
        parts.append(tag("h3", "Inputs"))
        parts.append(
            table(
                ["path", "format", "sha256"],
                [
                    [i.get("path"), i.get("format"), Markup(f"<code>{esc(i.get('sha256') or '–')}</code>")]
                    for i in inputs
                ],
            )
        )
    rms = m.get("rms")
    parts.append(tag("h3", "Reward models"))
    if isinstance(rms, dict) and rms:
        rrows = []
        for name, info in sorted(rms.items()):
            info = info if isinstance(info, dict) else {"spec": info}
            opts: dict[str, Any] = info["options"] if isinstance(info.get("options"), dict) else {}
            ident: dict[str, Any] = info["identity"] if isinstance(info.get("identity"), dict) else {}
            rrows.append(
                [
                    name,
                    info.get("role", ctx.roles.get(name, "")),
                    info.get("spec", ""),
                    ident.get("revision") or opts.get("revision") or "–",
                    ident.get("format") or opts.get("format") or "–",
                    ", ".join(f"{k}={v}" for k, v in sorted(opts.items()) if k not in ("format", "revision")),
                ]
            )
        parts.append(table(["name", "role", "model id / spec", "revision", "input format", "options"], rrows))
    else:
        parts.append(
            note(
                "No RM settings recorded in the manifest."
                + (f" RMs in the scores: {', '.join(ctx.roles)}." if ctx.roles else "")
            )
        )
    stages = m.get("stages") or {}
    if stages:
        parts.append(tag("h3", "Stages"))
        srows = []
        for name, info in stages.items():
            info = dict(info) if isinstance(info, dict) else {}
            counters: dict[str, Any] = info["counters"] if isinstance(info.get("counters"), dict) else {}
            timing = {"seconds": info.get("seconds")} if info.get("seconds") is not None else {}
            srows.append(
                [
                    name,
                    info.get("status", "–") + (f": {info['message']}" if info.get("message") else ""),
                    info.get("finished", "–"),
                    _kv(timing),
                    _kv(counters),
                ]
            )
        parts.append(table(["stage", "status", "finished", "timings", "counts"], srows))
        for name, info in stages.items():
            if isinstance(info, dict) and info.get("options"):
                parts.append(
                    Markup(f"<details><summary>Options of the {esc(name)} stage</summary>")
                    + pretty_json(info["options"])
                    + Markup("</details>")
                )
    if m.get("config"):
        parts.append(
            Markup("<details><summary>The run's config</summary>")
            + pretty_json(m["config"])
            + Markup("</details>")
        )
    return Section("manifest", "Run manifest", guide, join(parts))


def _kv(d: Mapping[str, Any]) -> str:
    def one(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        if isinstance(v, dict):
            return "{" + _kv(v) + "}"
        return str(v)

    return ", ".join(f"{k}={one(v)}" for k, v in sorted(d.items()))


def exclusions(ctx: Ctx) -> Section | None:
    """Per-analysis exclusions: shown only when some analysis left pairs out."""
    ex = ctx.stats.get("exclusions")
    if not isinstance(ex, dict):
        return None
    rows = [
        [k, fmt_int(v.get("n_used")), fmt_int(v.get("n_excluded")), v.get("reason", "")]
        for k, v in sorted(ex.items())
        if isinstance(v, dict) and v.get("n_excluded")
    ]
    if not rows:
        return None
    return Section(
        "exclusions",
        "Exclusions",
        "Pairs an analysis had to leave out (missing rewards or feature values), by analysis — never silently; ids are in analysis/exclusions.parquet.",
        table(["analysis", "pairs used", "pairs excluded", "reason"], rows, numeric=[1, 2]),
    )


BUILDERS: tuple[Callable[[Ctx], Section | None], ...] = (
    headline,
    imprint,
    resistance,
    misalignment,
    robustness,
    calibration,
    watchlist,
)


def _transform_label(name: str, result: Any) -> str:
    """Transform name with the kind of test it is (paraphrase, directed, controlled): paraphrase and
    directed rewrites answer different questions, so every output names which one it shows."""
    kind = dig(result, "kind")
    return f"{name} ({kind})" if isinstance(kind, str) and kind != "unknown" else name
