"""Feature imprint: what each feature adds to a text's reward, pre-D, post-D and the change."""

from __future__ import annotations

import math

import numpy as np

from seal_audit.report import _svg as svg
from seal_audit.report._blocks import Block, Cell, Details, Heading, NotComputed, Note, Section, figure, table
from seal_audit.report._data import skip_reason
from seal_audit.report._explorer import feature_values
from seal_audit.report._svg import num
from seal_audit.report.sections._common import (
    Ctx,
    coef_estimate,
    differs_door,
    feature_rows,
    ok,
    regression_caption,
    sig_legend,
    terms,
    verdict,
)
from seal_audit.stats.imprint import ImprintResult

GUIDE = (
    "Reward units a feature adds to a text, all else equal (β). Right of zero: the RM rewards it. "
    "Compare pre-D with post-D to see what training on D imprinted."
)
MODEL_LABEL = {
    "pre": "pre-D RM (β₀)",
    "post": "post-D RM (β)",
    "post_minus_pre": "post − pre (what D changed)",
}
ESTIMATOR_LABEL = {
    "pooled": "pooled OLS over the 2N stacked texts, pair-clustered standard errors",
    "fe": "pair fixed effects (r(t_c) − r(t_r) on feature differences), pair-clustered (= HC1) standard errors",
}


def _sd(ctx: Ctx, feature: str) -> float:
    """SD of a feature over the 2N texts (the explorer's values): the unit of the standardised β."""
    fv = ctx.payload.get("fv", {}).get(feature)
    if fv is None:
        return math.nan
    vals = np.concatenate(feature_values(fv))  # missing → NaN, left out below
    vals = vals[np.isfinite(vals)]
    return float(vals.std(ddof=1)) if vals.size > 1 else math.nan


def _table(ctx: Ctx, fit: ImprintResult, est: str) -> Details:
    """The post-D imprint as rows: raw β with the interval that matches the verdict, β per SD of the
    feature (so a length effect in characters is comparable with a binary flag), and the pairs
    where the feature differs (the pairs that carry the estimate), each a link."""
    coefs = terms(fit.regression)
    rows: list[list[Cell]] = []
    for fr in feature_rows(ctx, list(coefs)):
        c = coefs[fr.label]
        adj = math.isfinite(c.ci_low_adjusted) and math.isfinite(c.ci_high_adjusted)
        lo, hi = (c.ci_low_adjusted, c.ci_high_adjusted) if adj else (c.ci_low, c.ci_high)
        sd = _sd(ctx, c.term)
        door = differs_door(ctx, c.term)
        rows.append(
            [
                c.term,
                fr.group,
                f"{num(c.estimate)} [{num(lo)}, {num(hi)}]",
                num(c.estimate * sd) if math.isfinite(sd) else "–",
                verdict(c),
                door if door is not None else "–",
            ]
        )
    return Details(
        f"Post-D imprint as a table ({est}): raw and standardised β, and the pairs behind each feature",
        (
            table(
                [
                    "feature",
                    "role",
                    "β [adjusted CI]" if fit.regression.adjusted_ci else "β [CI]",
                    "β × SD(τ)",
                    "verdict",
                    "pairs where it differs",
                ],
                rows,
                numeric=[2, 3, 5],
            ),
            Note(
                "β × SD(τ): the reward change for one standard deviation of the feature over the 2N texts, "
                "so features on different scales (characters, counts, flags) can be compared."
            ),
        ),
        open=True,
    )


def build(ctx: Ctx) -> Section:
    why = ctx.missing("imprint")
    imp = ok(ctx.result.imprint) if why is None else None
    if why or imp is None:
        return Section("imprint", "Feature imprint", GUIDE, (NotComputed(why or ""),))
    order: list[str] = [*ctx.result.options.estimators] or [*imp]
    ests = [e for e in order if e in imp]
    parts: list[Block] = [sig_legend(ctx)]
    for i, est in enumerate(ests):
        models = imp[est]
        panels = []
        captions = []
        names: list[str] = []
        for model in ("pre", "post", "post_minus_pre"):
            res = models.get(model)
            fit = ok(res)
            if fit is None:
                captions.append(f"{MODEL_LABEL[model]}: not computed ({skip_reason(res)})")
                continue
            coefs = terms(fit.regression)
            names += list(coefs)
            panels.append(
                svg.Panel(
                    f"{MODEL_LABEL[model]}"
                    + (f" · {fit.rm}" if model != "post_minus_pre" and fit.rm else ""),
                    {k: coef_estimate(c) for k, c in coefs.items()},
                )
            )
        if not panels:
            parts.append(NotComputed("; ".join(captions)))
            continue
        fits = [m for m in models.values() if isinstance(m, ImprintResult)]
        post_fit = ok(models.get("post")) or fits[0]
        cap = regression_caption(post_fit.regression, f"Estimator: {ESTIMATOR_LABEL.get(est, est)}")
        if captions:
            cap += " " + " ".join(captions)
        fig = figure(
            svg.forest(
                feature_rows(ctx, names),
                panels,
                x_title="Δ reward (raw logit units)",
                label=f"Feature imprint, {est}",
            ),
            cap,
            "wide",
        )
        title = (
            f"Estimator: {'pooled OLS' if est == 'pooled' else 'pair fixed effects' if est == 'fe' else est}"
        )
        if i == 0:
            parts += [Heading(title), fig]
            post_ok = ok(models.get("post"))
            if post_ok is not None:
                parts.append(_table(ctx, post_ok, est))
        else:
            parts.append(Details(title, (fig,), summary_heading=True))
    vif = ok(ctx.result.vif) if "vif" not in ctx.data.unreadable else None
    if vif is not None:
        high = [v for v in vif if v.vif > 10]
        if high:
            parts.append(
                Note(
                    "Collinearity warning (VIF > 10): "
                    + ", ".join(f"{v.term} ({num(v.vif, 1)})" for v in high)
                )
            )
        rows = [[v.term, num(v.vif, 2)] for v in vif]
        parts.append(Details("Variance inflation factors", (table(["regressor", "VIF"], rows, numeric=[1]),)))
    return Section("imprint", "Feature imprint", GUIDE, tuple(parts))
