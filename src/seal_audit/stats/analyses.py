"""One function per SEAL analysis, each over the shared ``Context``.

Each returns its result record or a ``Skipped`` (status ``skipped`` when it does not apply to these
inputs). Data problems inside an analysis (constant or collinear regressors, no rows, separation) are
raised as ``SealError`` and turned into ``Skipped(status="failed")`` by the router in
``analysis.py``, so one analysis that cannot be computed never hides another's numbers. Features
constant within one analysis are dropped from that analysis only (named in its ``dropped``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from seal_audit.stats._common import BoolArray, Skipped
from seal_audit.stats._context import Context, coef_rows, frame, rate_cols, usable
from seal_audit.stats.diagnostics import (
    CalibrationResult,
    Caveats,
    FeatureResistance,
    SuspiciousPairs,
    calibration,
    caveats,
    label_noise_ceiling,
    resistance_by_feature,
    suspicious_pairs,
)
from seal_audit.stats.gate import drift_gate
from seal_audit.stats.imprint import (
    ImprintModel,
    ImprintResult,
    imprint_fe,
    imprint_pooled,
    imprint_vif,
    stack_texts,
)
from seal_audit.stats.inference import McNemarResult, RateEstimate
from seal_audit.stats.misalignment import MisalignmentResult, misalignment_drivers, theta_regression
from seal_audit.stats.power import per_sd_effects, with_power
from seal_audit.stats.prepare import ORIGINAL
from seal_audit.stats.regression import RegressionResult, VifRow
from seal_audit.stats.resistance import (
    REGIMES,
    AgreementResult,
    GammaResult,
    RegimeResult,
    agreement,
    gamma_breakdown,
    lm_agreement,
    mcnemar_tests,
    regime_codes,
    regimes,
    resistance,
)
from seal_audit.stats.robustness import (
    DriftGate,
    RobustnessResult,
    accuracy_change,
    robustness_scores,
    robustness_status,
)
from seal_audit.stats.shift import ShiftResult, reward_shift_analysis

NO_PRE = "no pre-D RM"
NO_FEATURES = "no regressor features"


def agreement_all(ctx: Context) -> dict[str, AgreementResult]:
    """δ(R) for every RM (any role): the one analysis every run has."""
    o = ctx.opt
    out: dict[str, AgreementResult] = {}
    for rm in ctx.data.rms:
        r = ctx.data.reward(rm)
        assert r is not None
        ok = usable(r, ctx.n)
        ctx.exclusions(f"agreement:{rm}", ok, f"missing reward of {rm!r} for a side")
        out[rm] = agreement(
            rm,
            r[ok],
            alpha=o.alpha,
            n_bootstrap=o.n_bootstrap,
            seed=o.seed,
            is_baseline=rm in ctx.baselines,
            clusters=ctx.clustering.of(ok),
        )
    ctx.tables["agreement"] = frame(
        [
            {
                "rm": ag.rm,
                "role": ctx.role(ag.rm),
                "is_baseline": ag.is_baseline,
                "n_ties": ag.n_ties,
                "n_excluded": ctx.excl[f"agreement:{ag.rm}"].n_excluded,
                **rate_cols("agreement", ag.agreement),
            }
            for ag in out.values()
        ]
    )
    return out


def resistance_post(ctx: Context, agree: dict[str, AgreementResult]) -> RateEstimate | Skipped:
    return resistance(agree[ctx.post])


def gamma_labels(ctx: Context) -> None:
    """γ per pair from the γ features (§2); stored on the context for the breakdowns that use it."""
    feats = ctx.opt.gamma_features
    if not feats:
        ctx.gamma_skip = "γ switched off (gamma_features = [])"
        return
    missing = [f for f in feats if f not in ctx.data.feature_names]
    if missing:
        ctx.gamma_skip = f"no features {missing} for the LM agreement γ"
        return
    gc = np.column_stack([ctx.feat_c[f][:, 0] for f in feats])
    gr = np.column_stack([ctx.feat_c[f][:, 1] for f in feats])
    ctx.gamma = lm_agreement(gc, gr)


def regime_table(ctx: Context) -> RegimeResult | Skipped:
    if ctx.both is None or ctx.pre_r is None:
        return Skipped(NO_PRE)
    o, both = ctx.opt, ctx.both
    ctx.exclusions("regimes", both, "missing pre-D or post-D reward for a side")
    d0 = ctx.pre_r[both, 0] > ctx.pre_r[both, 1]
    d1 = ctx.post_r[both, 0] > ctx.post_r[both, 1]
    res = regimes(
        d0, d1, alpha=o.alpha, n_bootstrap=o.n_bootstrap, seed=o.seed, clusters=ctx.clustering.of(both)
    )
    assert ctx.regime is not None
    ctx.regime[both] = np.asarray(REGIMES, dtype=object)[regime_codes(d0, d1)]
    ctx.tables["regimes"] = frame(
        [{"regime": k, "count": res.counts[k], **rate_cols("share", res.shares[k])} for k in REGIMES]
    )
    return res


def gamma_table(ctx: Context) -> GammaResult | Skipped:
    if ctx.gamma is None:
        return Skipped(ctx.gamma_skip or "no γ")
    o = ctx.opt
    m = ctx.ok_post & (ctx.gamma != "")
    if ctx.both is not None:
        m &= ctx.both
    ctx.exclusions("lm_agreement", m, "missing γ feature value or reward")
    res = gamma_breakdown(
        ctx.gamma[m],
        ctx.post_r[m, 0] > ctx.post_r[m, 1],
        (ctx.pre_r[m, 0] > ctx.pre_r[m, 1]) if ctx.pre_r is not None else None,
        features=o.gamma_features,
        post=ctx.post,
        pre=ctx.pre,
        alpha=o.alpha,
        n_bootstrap=o.n_bootstrap,
        seed=o.seed,
        clusters=ctx.clustering.of(m),
    )
    ctx.tables["lm_agreement"] = frame(
        [
            {
                "gamma": g.gamma,
                "n": g.n,
                **rate_cols("share", g.share),
                **rate_cols("misalignment_post", g.misalignment_post),
                **rate_cols("misalignment_pre", g.misalignment_pre),
                **{f"regime_{k}": v for k, v in (g.regime_counts or {}).items()},
            }
            for g in res.groups
        ]
    )
    ctx.tables["three_way"] = frame([dataclasses.asdict(t) | {"shares": None} for t in res.three_way]).drop(
        columns="shares"
    )
    return res


def mcnemar_all(ctx: Context) -> tuple[McNemarResult, ...] | Skipped:
    rms = list(ctx.data.rms)
    if len(rms) < 2 and ctx.gamma is None:
        return Skipped("only one RM and no γ")
    common = np.ones(ctx.n, dtype=bool)
    for rm in rms:
        common &= usable(ctx.data.reward(rm), ctx.n)
    ctx.exclusions("mcnemar", common, "missing reward of some RM for a side")
    inds: dict[str, BoolArray] = {}
    for rm in rms:
        r = ctx.data.reward(rm)
        assert r is not None
        inds[rm] = r[common, 0] > r[common, 1]
    lm = lm_mask = None
    if ctx.gamma is not None:
        gsub = ctx.gamma[common]
        lm_mask = (gsub == "c") | (gsub == "r")
        lm = gsub[lm_mask] == "c"
    res = mcnemar_tests(inds, lm, lm_mask)
    ctx.tables["mcnemar"] = frame([dataclasses.asdict(t) for t in res])
    return res


def shift_table(ctx: Context) -> ShiftResult | Skipped:
    """Reward shift θ (§3): the offset-invariant default, with the paper's θ and the centred θ
    beside it (their summaries, quadrant mix and sign disagreement: docs/results.md)."""
    if ctx.both is None or ctx.pre_r is None:
        return Skipped(NO_PRE)
    both = ctx.both
    assert ctx.theta is not None and ctx.regime is not None
    assert ctx.theta_paper is not None and ctx.theta_centered is not None
    ctx.exclusions("reward_shift", both, "missing pre-D or post-D reward for a side")
    if not both.any():
        return Skipped("no pair has both pre-D and post-D rewards", status="failed")
    res = reward_shift_analysis(
        ctx.pre_r[both],
        ctx.post_r[both],
        ctx.regime[both],
        ctx.gamma[both] if ctx.gamma is not None else None,
        alpha=ctx.opt.alpha,
        pre_name=ctx.pre or "",
        post_name=ctx.post,
        clusters=ctx.clustering.of(both),
    )
    ctx.theta[both] = res.theta
    ctx.theta_paper[both] = res.theta_paper_values
    ctx.theta_centered[both] = res.theta_centered_values
    rows: list[dict[str, Any]] = []
    for definition, summ in (("default", res), ("paper", res.theta_paper), ("centered", res.theta_centered)):
        if summ is None:
            continue
        label = res.definition if definition == "default" else definition
        rows.append(
            {"definition": label, "group_type": "overall", "group": "all", **dataclasses.asdict(summ.overall)}
        )
        rows += [
            {"definition": label, "group_type": "regime", "group": k, **dataclasses.asdict(v)}
            for k, v in summ.by_regime.items()
        ]
        rows += [
            {"definition": label, "group_type": "gamma", "group": k, **dataclasses.asdict(v)}
            for k, v in summ.by_gamma.items()
        ]
    ctx.tables["reward_shift"] = frame(rows)
    return res


def theta_table(ctx: Context) -> RegressionResult | Skipped:
    if ctx.both is None:
        return Skipped(NO_PRE)
    if not ctx.regressors:
        return Skipped(NO_FEATURES)
    assert ctx.theta is not None
    mt = ctx.both & ctx.feat_ok & np.isfinite(ctx.theta)
    ctx.exclusions("theta_regression", mt, "missing reward or regressor feature value")
    xc, xr = ctx.design(mt)
    o = ctx.opt
    res = theta_regression(
        ctx.theta[mt],
        xc,
        xr,
        ctx.regressors,
        correction=o.correction,
        alpha=o.alpha,
        drop_constant=o.drop_constant,
        clusters=ctx.clustering.of(mt),
    )
    ctx.tables["theta_regression"] = frame(coef_rows(res))
    return res


IMPRINT_DESCRIPTIONS = {
    "pooled": "pooled OLS over the stacked chosen and rejected texts, pair-clustered SEs",
    "fe": "pair fixed effects: r(t_c) - r(t_r) on feature differences, no intercept, pair-clustered (= HC1) SEs",
}
IMPRINT_DESCRIPTIONS_GROUP = {
    "pooled": "pooled OLS over the stacked chosen and rejected texts, group-clustered SEs (pairs sharing a prompt)",
    "fe": "pair fixed effects: r(t_c) - r(t_r) on feature differences, no intercept, group-clustered SEs",
}


def imprint_one(ctx: Context, estimator: str, model: ImprintModel) -> ImprintResult | Skipped:
    """One imprint regression (§4): ``estimator`` pooled or fe, ``model`` post, pre or post − pre."""
    if not ctx.regressors:
        return Skipped(NO_FEATURES)
    if model == "post":
        rm_name, rew, ok = ctx.post, ctx.post_r, ctx.ok_post
    elif ctx.pre_r is None or ctx.ok_pre is None or ctx.both is None:
        return Skipped(NO_PRE)
    elif model == "pre":
        rm_name, rew, ok = str(ctx.pre), ctx.pre_r, ctx.ok_pre
    else:
        rm_name, rew, ok = f"{ctx.post}-{ctx.pre}", ctx.post_r - ctx.pre_r, ctx.both
    use = ok & ctx.feat_ok
    ex = ctx.exclusions(f"imprint:{estimator}:{model}", use, "missing reward or regressor feature value")
    xc, xr = ctx.design(use)
    o = ctx.opt
    fit = (imprint_pooled if estimator == "pooled" else imprint_fe)(
        rew[use],
        xc,
        xr,
        ctx.regressors,
        correction=o.correction,
        alpha=o.alpha,
        drop_constant=o.drop_constant,
        clusters=ctx.clustering.of(use),
    )
    # MDE at the stated power and an 'underpowered' verdict; numeric features per SD
    effects = per_sd_effects(o.effect_of_interest_imprint, stack_texts(xc, xr), ctx.regressors, ctx.numeric)
    powered = with_power(fit, o.effect_of_interest_imprint, o.power, effects)
    assert isinstance(powered, RegressionResult)
    fit = powered
    return ImprintResult(
        estimator=estimator,  # type: ignore[arg-type]
        model=model,
        rm=rm_name,
        description=(IMPRINT_DESCRIPTIONS_GROUP if ctx.clustering.kind == "group" else IMPRINT_DESCRIPTIONS)[
            estimator
        ],
        regression=fit,
        exclusions=ex,
    )


def imprint_rows(imprint: dict[str, dict[str, ImprintResult | Skipped]]) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for est, models in imprint.items():
        for model, res in models.items():
            if isinstance(res, ImprintResult):
                rows += coef_rows(res.regression, estimator=est, model=model, rm=res.rm)
    return frame(rows)


def vif_table(ctx: Context) -> tuple[VifRow, ...] | Skipped:
    if not ctx.regressors:
        return Skipped(NO_FEATURES)
    xc, xr = ctx.design(ctx.ok_post & ctx.feat_ok)
    res = imprint_vif(xc, xr, ctx.regressors)
    ctx.tables["vif"] = frame([dataclasses.asdict(v) for v in res])
    return res


def misalignment_table(ctx: Context) -> MisalignmentResult | Skipped:
    if not ctx.regressors:
        return Skipped(NO_FEATURES)
    mm = ctx.ok_post & ctx.feat_ok
    ex = ctx.exclusions("misalignment", mm, "missing post-D reward or regressor feature value")
    xc, xr = ctx.design(mm)
    o = ctx.opt
    res = misalignment_drivers(
        ctx.post_r[mm, 0] > ctx.post_r[mm, 1],
        xc,
        xr,
        ctx.regressors,
        rm=ctx.post,
        exclusions=ex,
        correction=o.correction,
        alpha=o.alpha,
        max_iter=o.logit_max_iter,
        drop_constant=o.drop_constant,
        effect_of_interest=o.effect_of_interest_misalignment,
        power=o.power,
        numeric=ctx.numeric,
        clusters=ctx.clustering.of(mm),
    )
    if ctx.wants("misalignment"):
        ctx.tables["misalignment"] = misalignment_rows(res)
    return res


def misalignment_rows(res: MisalignmentResult) -> pd.DataFrame:
    """The misalignment table: LPM and logit coefficients."""
    rows = coef_rows(res.lpm, model="lpm")
    if isinstance(res.logit, RegressionResult):
        rows += coef_rows(res.logit, model="logit")
    return frame(rows)


def calibration_all(ctx: Context) -> dict[str, CalibrationResult]:
    out: dict[str, CalibrationResult] = {}
    for rm in ctx.data.rms:
        if rm in ctx.baselines:
            continue
        r = ctx.data.reward(rm)
        assert r is not None
        ok = usable(r, ctx.n)
        if ok.any():
            out[rm] = calibration(
                rm, r[ok], ctx.opt.calibration_bins, alpha=ctx.opt.alpha, clusters=ctx.clustering.of(ok)
            )
    ctx.tables["calibration"] = frame(
        [{k: v for k, v in dataclasses.asdict(c).items() if k != "bins"} for c in out.values()]
    )
    ctx.tables["calibration_bins"] = frame(
        [{"rm": c.rm, **dataclasses.asdict(b)} for c in out.values() for b in c.bins]
    )
    return out


def calibration_one(ctx: Context, rm: str) -> CalibrationResult | Skipped:
    """Calibration of one RM (any role: baselines too), on its usable pairs."""
    r = ctx.data.reward(rm)
    assert r is not None
    ok = usable(r, ctx.n)
    if not ok.any():
        return Skipped(f"no pair has both rewards of {rm!r}", status="failed")
    return calibration(rm, r[ok], ctx.opt.calibration_bins)


def resistance_by_feature_table(ctx: Context) -> tuple[FeatureResistance, ...] | Skipped:
    binaries = [
        s.name
        for s in ctx.specs
        if s.kind == "binary" and not s.list_valued and s.name in ctx.data.feature_names
    ]
    if not binaries:
        return Skipped("no binary features")
    ok = ctx.ok_post
    res = resistance_by_feature(
        ctx.post_r[ok, 0] > ctx.post_r[ok, 1],
        {f: ctx.feat_c[f][ok] for f in binaries},
        alpha=ctx.opt.alpha,
        clusters=ctx.clustering.of(ok),
    )
    if not ctx.wants("resistance_by_feature"):
        return res
    ctx.tables["resistance_by_feature"] = frame(
        [
            {
                "feature": r_.feature,
                "side": r_.side,
                "difference": r_.difference,
                **rate_cols("present", r_.present),
                **rate_cols("absent", r_.absent),
            }
            for r_ in res
        ]
    )
    return res


def suspicious_table(ctx: Context) -> SuspiciousPairs | Skipped:
    margin_post = ctx.post_r[:, 0] - ctx.post_r[:, 1]
    margin_pre = (ctx.pre_r[:, 0] - ctx.pre_r[:, 1]) if ctx.pre_r is not None else None
    mask = ctx.ok_post & (ctx.ok_pre if ctx.ok_pre is not None else True)
    ctx.exclusions("suspicious_pairs", mask, "missing reward for a side")
    sub = suspicious_pairs(
        ctx.ids[mask],
        margin_post[mask],
        margin_pre[mask] if margin_pre is not None else None,
        ctx.gamma[mask] if ctx.gamma is not None else None,
        max_listed=ctx.opt.max_listed_ids,
    )
    rows_idx = np.flatnonzero(mask)[sub.order]
    ctx.suspicious_rows = rows_idx
    ctx.suspicious_mask = mask
    ctx.tables["suspicious_pairs"] = pd.DataFrame(
        {
            "rank": np.arange(1, rows_idx.size + 1),
            "pair_id": ctx.ids[rows_idx].astype(str),
            "post_margin": margin_post[rows_idx],
            "pre_margin": margin_pre[rows_idx] if margin_pre is not None else np.full(rows_idx.size, np.nan),
            "gamma": ctx.gamma[rows_idx].astype(str) if ctx.gamma is not None else np.full(rows_idx.size, ""),
        }
    )
    return sub


def pair_diagnostics(ctx: Context) -> None:
    """The per-pair table: every RM's rewards, margin and agreement, regime, γ, θ, watchlist flag."""
    n = ctx.n
    per_pair: dict[str, Any] = {"pair_id": ctx.ids.astype(str), "context_diverges": ctx.data.context_diverges}
    for rm in ctx.data.rms:
        r = ctx.data.reward(rm)
        assert r is not None
        per_pair[f"{rm}_chosen"] = r[:, 0]
        per_pair[f"{rm}_rejected"] = r[:, 1]
        per_pair[f"{rm}_margin"] = r[:, 0] - r[:, 1]
        agree_col = pd.array((r[:, 0] > r[:, 1]).tolist(), dtype="boolean")
        agree_col[~usable(r, n)] = pd.NA
        per_pair[f"{rm}_agree"] = agree_col
    assert ctx.regime is not None and ctx.theta is not None
    per_pair["regime"] = ctx.regime.astype(str)
    per_pair["gamma"] = ctx.gamma.astype(str) if ctx.gamma is not None else np.full(n, "")
    per_pair["theta"] = ctx.theta
    per_pair["theta_paper"] = ctx.theta_paper
    per_pair["theta_centered"] = ctx.theta_centered
    flag = np.zeros(n, dtype=bool)
    if ctx.suspicious_rows is not None:
        flag[ctx.suspicious_rows] = True
    per_pair["suspicious"] = flag
    ctx.tables["pair_diagnostics"] = pd.DataFrame(per_pair)


def _drift_gate(
    rewrites: pd.DataFrame, transform: str, index: pd.Index, exclude_drifted: bool
) -> tuple[DriftGate, BoolArray, BoolArray]:
    """Per transform: which pairs have rewrite rows, which pass the gate, and the gate's counts
    (``stats.gate``, shared with the report's rewrite viewer)."""
    g = drift_gate(rewrites, transform, index, exclude_drifted)
    return g.gate, g.has, g.passes


def robustness_all(ctx: Context) -> dict[str, RobustnessResult] | Skipped:
    """Per transform (§5): accuracy change and flip rates of every scored RM of the pair, and the
    robustness scores π of the spoiler-feature change indicators."""
    inputs, opt, data, spec_by, tables = ctx.inputs, ctx.opt, ctx.data, ctx.spec_by, ctx.tables
    exclusions = ctx.exclusions
    transforms = set(data.variants)
    if inputs.rewrites is not None and len(inputs.rewrites) and "transform" in inputs.rewrites.columns:
        transforms |= set(inputs.rewrites["transform"].astype(str))
    transforms.discard(ORIGINAL)
    if not transforms:
        return Skipped("no rewrites")
    n = data.n
    index = pd.Index(data.pair_ids)
    out: dict[str, RobustnessResult] = {}
    summary_rows: list[dict[str, Any]] = []
    post = inputs.post
    orig_post = data.reward(post)
    assert orig_post is not None
    spoilers = [
        s
        for s in sorted(spec_by.values(), key=lambda s: s.name)
        if s.role == "spoiler"
        and s.in_regression
        and not s.list_valued
        and (ORIGINAL, s.name) in data.features
    ]
    kinds: dict[str, str] = {}
    if inputs.rewrites is not None and "kind" in inputs.rewrites.columns and len(inputs.rewrites):
        for t, k in (
            inputs.rewrites[["transform", "kind"]].drop_duplicates("transform").itertuples(index=False)
        ):
            kinds[str(t)] = str(k)
    for t in sorted(transforms):
        rew_post = data.reward(post, t)
        if rew_post is None:
            continue
        gate: DriftGate | None = None
        universe = usable(rew_post, n)
        passes = np.ones(n, dtype=bool)
        if inputs.rewrites is not None and len(inputs.rewrites):
            key = ("drift_gate", t, opt.exclude_drifted)
            if key not in ctx.shared:  # the same for every RM: computed once per transform
                ctx.shared[key] = _drift_gate(inputs.rewrites, t, index, opt.exclude_drifted)
            gate, has, passes = ctx.shared[key]
            universe = universe | has
        use = universe & passes & usable(rew_post, n) & usable(orig_post, n)
        ex = exclusions(
            f"robustness:{t}", use, "rewrite failed/rejected/drifted, or a reward is missing", universe
        )
        acc = [
            accuracy_change(
                post,
                orig_post[use],
                rew_post[use],
                alpha=opt.alpha,
                n_bootstrap=opt.n_bootstrap,
                seed=opt.seed,
                transform=t,
                clusters=ctx.clustering.of(use),
            )
        ]
        if ctx.pre is not None:
            o0, r0 = data.reward(ctx.pre), data.reward(ctx.pre, t)
            if o0 is not None and r0 is not None:
                u0 = use & usable(o0, n) & usable(r0, n)
                acc.insert(
                    0,
                    accuracy_change(
                        ctx.pre,
                        o0[u0],
                        r0[u0],
                        alpha=opt.alpha,
                        n_bootstrap=opt.n_bootstrap,
                        seed=opt.seed,
                        transform=t,
                        clusters=ctx.clustering.of(u0),
                    ),
                )
        have = [s for s in spoilers if (t, s.name) in data.features]
        use_reg = use.copy()
        tols: dict[str, float] = {}
        for s in have:
            use_reg &= usable(data.features[(ORIGINAL, s.name)], n) & usable(data.features[(t, s.name)], n)
        sp = {}
        for s in have:
            o = data.features[(ORIGINAL, s.name)]
            tol = 0.0
            if s.kind == "numeric":
                sd = float(np.nanstd(o)) if np.isfinite(o).any() else 0.0
                tol = opt.numeric_tolerance_sd * sd
                tols[s.name] = tol
            sp[s.name] = (o[use_reg], data.features[(t, s.name)][use_reg], s.kind, tol)
        exclusions(
            f"robustness:{t}:scores",
            use_reg,
            "no usable rewrite or a spoiler feature value missing",
            universe,
        )
        lpm, lg, counts = robustness_scores(
            orig_post[use_reg],
            rew_post[use_reg],
            sp,
            correction=opt.correction,
            alpha=opt.alpha,
            max_iter=opt.logit_max_iter,
            effect_of_interest=opt.effect_of_interest_robustness,
            power=opt.power,
            clusters=ctx.clustering.of(use_reg),
        )
        if not have:
            lpm = lg = Skipped("no spoiler features labeled on the rewritten texts")
        status, reasons = robustness_status(int(use_reg.sum()), acc[-1].became_misaligned.k, lpm, counts)
        res = RobustnessResult(
            transform=t,
            kind=kinds.get(t, "unknown"),
            rm=post,
            n=int(use.sum()),
            drift=gate,
            accuracy=tuple(acc),
            indicators=counts,
            lpm=lpm,
            logit=lg,
            exclusions=ex,
            numeric_tolerances=tols,
            status=status,
            reasons=reasons,
        )
        out[t] = res
        for ac in acc:
            summary_rows.append(
                {
                    "transform": t,
                    "kind": kinds.get(t, "unknown"),
                    "rm": ac.rm,
                    "n": ac.n,
                    "status": status,
                    "drop": ac.drop,
                    "drop_ci_low": ac.drop_ci_low,
                    "drop_ci_high": ac.drop_ci_high,
                    "drop_exact_ci_low": ac.drop_exact_ci_low,
                    "drop_exact_ci_high": ac.drop_exact_ci_high,
                    "mcnemar_p": ac.mcnemar.p_value,
                    **rate_cols("agreement_original", ac.agreement_original),
                    **rate_cols("agreement_rewritten", ac.agreement_rewritten),
                    **rate_cols("became_misaligned", ac.became_misaligned),
                    **rate_cols("flipped", ac.flipped),
                    **(dataclasses.asdict(gate) if gate else {}),
                }
            )
    if not out:
        return Skipped(f"rewrites present but no rewritten texts were scored by {post!r}")
    if ctx.wants("robustness"):
        tables["robustness"] = robustness_rows(out)
    tables["robustness_summary"] = frame(summary_rows)
    return out


def robustness_rows(out: dict[str, RobustnessResult]) -> pd.DataFrame:
    """The robustness table: LPM and logit coefficients of every transform, with how often each
    indicator fired."""
    rows: list[dict[str, Any]] = []
    for t, res in out.items():
        cnt = {c.term: c.n for c in res.indicators}
        for model, reg in (("lpm", res.lpm), ("logit", res.logit)):
            if isinstance(reg, RegressionResult):
                for row in coef_rows(reg, transform=t, model=model):
                    row["kind"] = res.kind
                    row["n_changed"] = cnt.get(str(row["term"]))
                    rows.append(row)
    return frame(rows, columns=["transform", "model", "term"])


def caveats_all(ctx: Context, agree: dict[str, AgreementResult], susp: SuspiciousPairs | Skipped) -> Caveats:
    """What the reader must know to read the numbers (in-sample RMs, truncation, the label-noise
    ceiling estimated from the pairs every judge disputes)."""
    n_susp = int(ctx.suspicious_mask.sum()) if ctx.suspicious_mask is not None else 0
    noise = (
        label_noise_ceiling(susp.n, n_susp, susp.criterion.split(";")[0], alpha=ctx.opt.alpha)
        if isinstance(susp, SuspiciousPairs) and n_susp
        else None
    )
    return caveats(
        rms=tuple(rm for rm in ctx.data.rms if rm not in ctx.baselines),  # baselines are not trained
        post=ctx.post,
        in_sample=ctx.inputs.in_sample,
        n_truncated=dict(ctx.data.n_truncated),
        n_texts={rm: 2 * ag.n for rm, ag in agree.items()},
        label_noise=noise,
        post_agreement=agree[ctx.post].agreement.rate,
    )
