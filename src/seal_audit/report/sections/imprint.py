"""Feature imprint: what each feature adds to a text's reward, pre-D, post-D and the change."""

from __future__ import annotations

from seal_audit.report import _svg as svg
from seal_audit.report._blocks import Block, Details, Heading, NotComputed, Note, Section, figure, table
from seal_audit.report._data import skip_reason
from seal_audit.report._svg import num
from seal_audit.report.sections._common import (
    Ctx,
    coef_estimate,
    feature_rows,
    ok,
    regression_caption,
    sig_legend,
    terms,
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
