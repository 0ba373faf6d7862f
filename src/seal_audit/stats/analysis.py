"""``analyze``: every SEAL statistic from one set of inputs, as one frozen, serialisable result.

This module only routes: it picks, for each analysis, the pairs that have what that analysis needs
(stating the others as exclusions), calls the pure metric functions, and records skips with their
reason. Numbers are computed in the metric modules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from seal_audit.data.records import FeatureSpec
from seal_audit.stats._common import (
    BoolArray,
    Exclusions,
    FloatArray,
    Skipped,
    StrArray,
    canonical_json,
    make_exclusions,
    to_jsonable,
)
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
from seal_audit.stats.options import AnalysisInputs, AnalysisOptions
from seal_audit.stats.power import per_sd_effects, with_power
from seal_audit.stats.prepare import ORIGINAL, PreparedData, infer_feature_specs, prepare
from seal_audit.stats.regression import RegressionResult, VifRow, check_design
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

SCHEMA = "seal-audit/stats/2"  # issue 15: reward_shift.overall etc. are the offset-invariant θ


@dataclasses.dataclass(frozen=True)
class FeatureInfo:
    """A feature as the analysis used it."""

    name: str
    kind: str
    role: str
    regressor: bool
    """True when it enters the imprint / misalignment regressions."""
    n_missing_pairs: int
    """Pairs with a missing value on at least one side (original texts)."""


@dataclasses.dataclass(frozen=True)
class InputSummary:
    """What went into the analysis: sizes, RM roles, features, dropped or unmatched rows."""

    n_pairs: int
    n_context_diverges: int
    """Pairs whose chosen and rejected contexts differ (kept and flagged, §1)."""
    post: str
    pre: str | None
    rms: tuple[str, ...]
    baselines: tuple[str, ...]
    features: tuple[FeatureInfo, ...]
    variants: tuple[str, ...]
    unknown_pair_ids: dict[str, int]
    n_truncated: dict[str, int]
    notes: tuple[str, ...]


@dataclasses.dataclass(frozen=True, eq=False)
class AnalysisResult:
    """Every SEAL number of one analysis. ``to_json`` is stats.json; ``tables`` the per-analysis tables."""

    options: AnalysisOptions
    inputs: InputSummary
    agreement: dict[str, AgreementResult]
    resistance: RateEstimate | Skipped
    regimes: RegimeResult | Skipped
    lm_agreement: GammaResult | Skipped
    mcnemar: tuple[McNemarResult, ...] | Skipped
    reward_shift: ShiftResult | Skipped
    theta_regression: RegressionResult | Skipped
    imprint: dict[str, dict[str, ImprintResult | Skipped]] | Skipped
    vif: tuple[VifRow, ...] | Skipped
    misalignment: MisalignmentResult | Skipped
    robustness: dict[str, RobustnessResult] | Skipped
    calibration: dict[str, CalibrationResult]
    resistance_by_feature: tuple[FeatureResistance, ...] | Skipped
    suspicious_pairs: SuspiciousPairs | Skipped
    exclusions: dict[str, Exclusions]
    """Per analysis: pairs left out for missing rewards or features (count, ids, reason)."""
    caveats: Caveats | None = None
    """Issue 15: in-sample RMs, truncation, the label-noise ceiling (docs/results.md)."""
    table_data: dict[str, pd.DataFrame] = dataclasses.field(
        default_factory=dict, metadata={"json": False}, repr=False
    )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_jsonable(self)
        out["schema"] = SCHEMA
        return out

    def to_json(self) -> str:
        """stats.json: deterministic text (sorted keys, 12 significant digits, NaN → null)."""
        return canonical_json(self.to_dict())

    def tables(self) -> dict[str, pd.DataFrame]:
        """One DataFrame per analysis (copies; every per-pair table carries pair_id)."""
        return {k: v.copy() for k, v in self.table_data.items()}


# ---------------------------------------------------------------------------------------------
# helpers


def _ok(arr: FloatArray | None, n: int) -> BoolArray:
    if arr is None:
        return np.zeros(n, dtype=bool)
    ok: BoolArray = np.asarray(np.isfinite(arr).all(axis=1), dtype=bool)
    return ok


def _coef_rows(reg: RegressionResult, **extra: Any) -> list[dict[str, Any]]:
    rows = []
    for c in reg.coefficients:
        row = dict(extra)
        row.update(dataclasses.asdict(c))
        row.update(
            model_type=reg.model,
            cov_type=reg.cov_type,
            correction=reg.correction,
            n_obs=reg.n_obs,
            n_clusters=reg.n_clusters,
        )
        rows.append(row)
    return rows


def _rate_cols(prefix: str, r: RateEstimate | None) -> dict[str, Any]:
    if r is None:
        return {}
    return {
        f"{prefix}": r.rate,
        f"{prefix}_k": r.k,
        f"{prefix}_n": r.n,
        f"{prefix}_ci_low": r.ci_low,
        f"{prefix}_ci_high": r.ci_high,
        f"{prefix}_boot_ci_low": r.boot_ci_low,
        f"{prefix}_boot_ci_high": r.boot_ci_high,
    }


def _frame(rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None) -> pd.DataFrame:
    rows = list(rows)
    if not rows and columns is not None:
        return pd.DataFrame({c: [] for c in columns})
    return pd.DataFrame(rows)


def _resolve_specs(inputs: AnalysisInputs, data: PreparedData, notes: list[str]) -> tuple[FeatureSpec, ...]:
    specs = tuple(inputs.specs)
    if not specs and data.feature_names and inputs.features is not None:
        specs = infer_feature_specs(inputs.features)
        notes.append("no feature specs given: kinds inferred from values, every feature treated as a spoiler")
    names = {s.name for s in specs}
    unspecified = sorted(set(data.feature_names) - names)
    if unspecified:
        notes.append(f"features without a spec are not analysed: {unspecified}")
    absent = sorted(s.name for s in specs if s.name not in data.feature_names)
    if absent and data.feature_names:
        notes.append(f"specified features absent from the feature table: {absent}")
    return specs


# ---------------------------------------------------------------------------------------------


def analyze(inputs: AnalysisInputs, options: AnalysisOptions | None = None) -> AnalysisResult:
    """Run every SEAL analysis (SEAL-METHOD.md §3–5 and the extras) on the given inputs."""
    opt = options or AnalysisOptions()
    data = prepare(inputs)
    n = data.n
    ids = data.pair_ids
    notes: list[str] = []
    excl: dict[str, Exclusions] = {}
    tables: dict[str, pd.DataFrame] = {}
    a, B, seed, corr = opt.alpha, opt.n_bootstrap, opt.seed, opt.correction

    def exclusions(name: str, used: BoolArray, reason: str, universe: BoolArray | None = None) -> Exclusions:
        if universe is None:
            e = make_exclusions(ids, used, reason, opt.max_listed_ids)
        else:
            e = make_exclusions(ids[universe], used[universe], reason, opt.max_listed_ids)
        excl[name] = e
        return e

    if inputs.post not in data.rms:
        from seal_audit.data.errors import InputError

        raise InputError(
            f"post-D RM {inputs.post!r} has no scores; RMs in the scores: {list(data.rms)}",
            file="scores",
            field="rm",
        )
    pre = inputs.pre
    if pre is not None and pre not in data.rms:
        notes.append(f"pre-D RM {pre!r} has no scores: pre-D analyses skipped")
        pre = None
    baselines = (
        inputs.baselines
        if inputs.baselines is not None
        else tuple(r for r in data.rms if r.startswith("length"))
    )
    specs = _resolve_specs(inputs, data, notes)
    spec_by = {s.name: s for s in specs}
    regressors = tuple(
        s.name for s in specs if s.in_regression and not s.list_valued and s.name in data.feature_names
    )

    post_r = data.reward(inputs.post)
    assert post_r is not None
    ok_post = _ok(post_r, n)
    pre_r = data.reward(pre) if pre else None
    ok_pre = _ok(pre_r, n) if pre_r is not None else None
    feat_c = {f: data.features[(ORIGINAL, f)] for f in data.feature_names}
    feat_ok: BoolArray = np.ones(n, dtype=bool)
    for f in regressors:
        feat_ok &= _ok(feat_c[f], n)
    design = _Design(feat_c, regressors, n)
    if regressors:
        # One up-front check on the imprint design, so a constant or collinear feature is reported
        # once, by name, before any analysis runs (rather than by whichever regression hits it first).
        xc0, xr0 = design(feat_ok)
        _, kept, dropped = check_design(
            stack_texts(xc0, xr0),
            regressors,
            intercept=True,
            drop_constant=opt.drop_constant,
            context="imprint regressors",
        )
        if dropped:
            notes.append(f"constant feature(s) left out of the regressions: {list(dropped)}")
            regressors = tuple(kept)
            design = _Design(feat_c, regressors, n)
    feature_info = tuple(
        FeatureInfo(
            name=s.name,
            kind=s.kind,
            role=s.role,
            regressor=s.name in regressors,
            n_missing_pairs=int(n - _ok(feat_c.get(s.name), n).sum()) if s.name in feat_c else n,
        )
        for s in specs
    )

    # --- agreement, resistance -----------------------------------------------------------------
    agree: dict[str, AgreementResult] = {}
    for rm in data.rms:
        r = data.reward(rm)
        assert r is not None
        ok = _ok(r, n)
        exclusions(f"agreement:{rm}", ok, f"missing reward of {rm!r} for a side")
        agree[rm] = agreement(rm, r[ok], alpha=a, n_bootstrap=B, seed=seed, is_baseline=rm in baselines)
    res: RateEstimate | Skipped = resistance(agree[inputs.post])
    tables["agreement"] = _frame(
        [
            {
                "rm": ag.rm,
                "role": _role(ag.rm, inputs.post, pre),
                "is_baseline": ag.is_baseline,
                "n_ties": ag.n_ties,
                "n_excluded": excl[f"agreement:{ag.rm}"].n_excluded,
                **_rate_cols("agreement", ag.agreement),
            }
            for ag in agree.values()
        ]
    )

    # --- γ -------------------------------------------------------------------------------------
    gamma_all: StrArray | None = None
    missing_g = [f for f in opt.gamma_features if f not in data.feature_names]
    if not missing_g:
        gc = np.column_stack([feat_c[f][:, 0] for f in opt.gamma_features])
        gr = np.column_stack([feat_c[f][:, 1] for f in opt.gamma_features])
        gamma_all = lm_agreement(gc, gr)
    gamma_skip = f"no features {missing_g} for the LM agreement γ" if missing_g else ""

    # --- regimes -------------------------------------------------------------------------------
    reg_res: RegimeResult | Skipped
    both = ok_post & ok_pre if ok_pre is not None else None
    regime_str = np.full(n, "", dtype=object)
    if both is not None and pre_r is not None:
        exclusions("regimes", both, "missing pre-D or post-D reward for a side")
        d0 = pre_r[both, 0] > pre_r[both, 1]
        d1 = post_r[both, 0] > post_r[both, 1]
        reg_res = regimes(d0, d1, alpha=a, n_bootstrap=B, seed=seed)
        regime_str[both] = np.asarray(REGIMES, dtype=object)[regime_codes(d0, d1)]
        tables["regimes"] = _frame(
            [
                {"regime": k, "count": reg_res.counts[k], **_rate_cols("share", reg_res.shares[k])}
                for k in REGIMES
            ]
        )
    else:
        reg_res = Skipped("no pre-D RM")

    # --- γ breakdown ---------------------------------------------------------------------------
    gamma_res: GammaResult | Skipped
    if gamma_all is not None:
        m = ok_post & (gamma_all != "")
        if both is not None:
            m &= both
        exclusions("lm_agreement", m, "missing γ feature value or reward")
        gamma_res = gamma_breakdown(
            gamma_all[m],
            post_r[m, 0] > post_r[m, 1],
            (pre_r[m, 0] > pre_r[m, 1]) if pre_r is not None else None,
            features=opt.gamma_features,
            post=inputs.post,
            pre=pre,
            alpha=a,
            n_bootstrap=B,
            seed=seed,
        )
        tables["lm_agreement"] = _frame(
            [
                {
                    "gamma": g.gamma,
                    "n": g.n,
                    **_rate_cols("share", g.share),
                    **_rate_cols("misalignment_post", g.misalignment_post),
                    **_rate_cols("misalignment_pre", g.misalignment_pre),
                    **{f"regime_{k}": v for k, v in (g.regime_counts or {}).items()},
                }
                for g in gamma_res.groups
            ]
        )
        tables["three_way"] = _frame(
            [dataclasses.asdict(t) | {"shares": None} for t in gamma_res.three_way]
        ).drop(columns="shares")
    else:
        gamma_res = Skipped(gamma_skip)

    # --- McNemar -------------------------------------------------------------------------------
    mc: tuple[McNemarResult, ...] | Skipped
    rm_list = [rm for rm in data.rms]
    common = np.ones(n, dtype=bool)
    for rm in rm_list:
        common &= _ok(data.reward(rm), n)
    if len(rm_list) >= 2 or gamma_all is not None:
        exclusions("mcnemar", common, "missing reward of some RM for a side")
        inds = {rm: _delta(data.reward(rm), common) for rm in rm_list}
        lm = lm_mask = None
        if gamma_all is not None:
            gsub = gamma_all[common]
            lm_mask = (gsub == "c") | (gsub == "r")
            lm = gsub[lm_mask] == "c"
        mc = mcnemar_tests(inds, lm, lm_mask)
        tables["mcnemar"] = _frame([dataclasses.asdict(t) for t in mc])
    else:
        mc = Skipped("only one RM and no γ")

    # --- reward shift θ ------------------------------------------------------------------------
    shift: ShiftResult | Skipped
    theta_all = np.full(n, np.nan)
    theta_paper_all = np.full(n, np.nan)
    theta_centered_all = np.full(n, np.nan)
    theta_reg: RegressionResult | Skipped
    if both is not None and pre_r is not None:
        exclusions("reward_shift", both, "missing pre-D or post-D reward for a side")
        # issue 15: the default θ is offset-invariant (margin angle); θ_paper and θ_centred beside it
        shift = reward_shift_analysis(
            pre_r[both],
            post_r[both],
            regime_str[both],
            gamma_all[both] if gamma_all is not None else None,
            alpha=a,
            pre_name=pre or "",
            post_name=inputs.post,
        )
        theta_all[both] = shift.theta
        theta_paper_all[both] = shift.theta_paper_values
        theta_centered_all[both] = shift.theta_centered_values
        rows = []
        for definition, summ in (
            (shift.definition, shift),
            ("paper", shift.theta_paper),
            ("centered", shift.theta_centered),
        ):
            assert summ is not None
            rows += [
                {
                    "definition": definition,
                    "group_type": "overall",
                    "group": "all",
                    **dataclasses.asdict(summ.overall),
                }
            ]
            rows += [
                {"definition": definition, "group_type": "regime", "group": k, **dataclasses.asdict(v)}
                for k, v in summ.by_regime.items()
            ]
            rows += [
                {"definition": definition, "group_type": "gamma", "group": k, **dataclasses.asdict(v)}
                for k, v in summ.by_gamma.items()
            ]
        tables["reward_shift"] = _frame(rows)
        if regressors:
            mt = both & feat_ok
            exclusions("theta_regression", mt, "missing reward or regressor feature value")
            xc, xr = design(mt)
            theta_reg = theta_regression(theta_all[mt], xc, xr, regressors, correction=corr, alpha=a)
            tables["theta_regression"] = _frame(_coef_rows(theta_reg))
        else:
            theta_reg = Skipped("no features")
    else:
        shift = Skipped("no pre-D RM")
        theta_reg = Skipped("no pre-D RM")

    # --- imprint -------------------------------------------------------------------------------
    imprint: dict[str, dict[str, ImprintResult | Skipped]] | Skipped
    vif_res: tuple[VifRow, ...] | Skipped
    numeric = {f for f in regressors if spec_by[f].kind == "numeric"}  # issue 15
    if regressors:
        imprint = {}
        models: list[tuple[ImprintModel, str, FloatArray | None, BoolArray | None]] = [
            ("post", inputs.post, post_r, ok_post),
            ("pre", pre or "", pre_r, ok_pre),
            ("post_minus_pre", f"{inputs.post}-{pre}", (post_r - pre_r) if pre_r is not None else None, both),
        ]
        rows = []
        for est in opt.estimators:
            imprint[est] = {}
            for model, rm_name, rew, model_ok in models:
                if rew is None or model_ok is None:
                    imprint[est][model] = Skipped("no pre-D RM")
                    continue
                use = model_ok & feat_ok
                ex = exclusions(f"imprint:{est}:{model}", use, "missing reward or regressor feature value")
                xc, xr = design(use)
                fit = (imprint_pooled if est == "pooled" else imprint_fe)(
                    rew[use], xc, xr, regressors, correction=corr, alpha=a
                )
                fit_p = with_power(  # issue 15: MDE and verdict; numeric features per SD
                    fit,
                    opt.effect_of_interest_imprint,
                    opt.power,
                    per_sd_effects(opt.effect_of_interest_imprint, stack_texts(xc, xr), regressors, numeric),
                )
                assert isinstance(fit_p, RegressionResult)
                fit = fit_p
                desc = (
                    "pooled OLS over the stacked chosen and rejected texts, pair-clustered SEs"
                    if est == "pooled"
                    else "pair fixed effects: r(t_c) - r(t_r) on feature differences, no intercept, pair-clustered (= HC1) SEs"
                )
                imprint[est][model] = ImprintResult(
                    estimator=est, model=model, rm=rm_name, description=desc, regression=fit, exclusions=ex
                )
                rows += _coef_rows(fit, estimator=est, model=model, rm=rm_name)
        tables["imprint"] = _frame(rows)
        xc, xr = design(ok_post & feat_ok)
        vif_res = imprint_vif(xc, xr, regressors)
        tables["vif"] = _frame([dataclasses.asdict(v) for v in vif_res])
    else:
        imprint = Skipped("no features")
        vif_res = Skipped("no features")

    # --- misalignment drivers ------------------------------------------------------------------
    mis: MisalignmentResult | Skipped
    if regressors:
        mm = ok_post & feat_ok
        ex = exclusions("misalignment", mm, "missing post-D reward or regressor feature value")
        xc, xr = design(mm)
        mis = misalignment_drivers(
            post_r[mm, 0] > post_r[mm, 1],
            xc,
            xr,
            regressors,
            rm=inputs.post,
            exclusions=ex,
            correction=corr,
            alpha=a,
            max_iter=opt.logit_max_iter,
            effect_of_interest=opt.effect_of_interest_misalignment,  # issue 15
            power=opt.power,
            numeric=numeric,
        )
        rows = _coef_rows(mis.lpm, model="lpm")
        if isinstance(mis.logit, RegressionResult):
            rows += _coef_rows(mis.logit, model="logit")
        tables["misalignment"] = _frame(rows)
    else:
        mis = Skipped("no features")

    # --- robustness ----------------------------------------------------------------------------
    robust = _robustness(inputs, opt, data, spec_by, exclusions, tables)

    # --- calibration, baselines, breakdowns, suspicious pairs ----------------------------------
    calib: dict[str, CalibrationResult] = {}
    for rm in data.rms:
        if rm in baselines:
            continue
        r = data.reward(rm)
        assert r is not None
        ok = _ok(r, n)
        calib[rm] = calibration(rm, r[ok], opt.calibration_bins)
    tables["calibration"] = _frame(
        [{k: v for k, v in dataclasses.asdict(c).items() if k != "bins"} for c in calib.values()]
    )
    tables["calibration_bins"] = _frame(
        [{"rm": c.rm, **dataclasses.asdict(b)} for c in calib.values() for b in c.bins]
    )

    binaries = [
        s.name for s in specs if s.kind == "binary" and not s.list_valued and s.name in data.feature_names
    ]
    rbf: tuple[FeatureResistance, ...] | Skipped
    if binaries:
        rbf = resistance_by_feature(
            post_r[ok_post, 0] > post_r[ok_post, 1], {f: feat_c[f][ok_post] for f in binaries}, alpha=a
        )
        tables["resistance_by_feature"] = _frame(
            [
                {
                    "feature": r_.feature,
                    "side": r_.side,
                    "difference": r_.difference,
                    **_rate_cols("present", r_.present),
                    **_rate_cols("absent", r_.absent),
                }
                for r_ in rbf
            ]
        )
    else:
        rbf = Skipped("no binary features")

    margin_post = post_r[:, 0] - post_r[:, 1]
    margin_pre = (pre_r[:, 0] - pre_r[:, 1]) if pre_r is not None else None
    susp_mask = ok_post & (ok_pre if ok_pre is not None else True)
    exclusions("suspicious_pairs", susp_mask, "missing reward for a side")
    susp_sub = suspicious_pairs(
        ids[susp_mask],
        margin_post[susp_mask],
        margin_pre[susp_mask] if margin_pre is not None else None,
        gamma_all[susp_mask] if gamma_all is not None else None,
        max_listed=opt.max_listed_ids,
    )
    rows_idx = np.flatnonzero(susp_mask)[susp_sub.order]
    susp: SuspiciousPairs | Skipped = susp_sub
    tables["suspicious_pairs"] = pd.DataFrame(
        {
            "rank": np.arange(1, rows_idx.size + 1),
            "pair_id": ids[rows_idx].astype(str),
            "post_margin": margin_post[rows_idx],
            "pre_margin": margin_pre[rows_idx] if margin_pre is not None else np.full(rows_idx.size, np.nan),
            "gamma": gamma_all[rows_idx].astype(str) if gamma_all is not None else np.full(rows_idx.size, ""),
        }
    )

    # --- per-pair diagnostics -------------------------------------------------------------------
    per_pair: dict[str, Any] = {"pair_id": ids.astype(str), "context_diverges": data.context_diverges}
    for rm in data.rms:
        r = data.reward(rm)
        assert r is not None
        per_pair[f"{rm}_chosen"] = r[:, 0]
        per_pair[f"{rm}_rejected"] = r[:, 1]
        per_pair[f"{rm}_margin"] = r[:, 0] - r[:, 1]
        agree_col = pd.array((r[:, 0] > r[:, 1]).tolist(), dtype="boolean")
        agree_col[~_ok(r, n)] = pd.NA
        per_pair[f"{rm}_agree"] = agree_col
    per_pair["regime"] = regime_str.astype(str)
    per_pair["gamma"] = gamma_all.astype(str) if gamma_all is not None else np.full(n, "")
    per_pair["theta"] = theta_all
    per_pair["theta_paper"] = theta_paper_all
    per_pair["theta_centered"] = theta_centered_all
    flag = np.zeros(n, dtype=bool)
    flag[rows_idx] = True
    per_pair["suspicious"] = flag
    tables["pair_diagnostics"] = pd.DataFrame(per_pair)
    tables["exclusions"] = _frame(
        [
            {"analysis": k, "pair_id": p, "reason": e.reason}
            for k, e in sorted(excl.items())
            for p in e.all_excluded
        ],
        columns=["analysis", "pair_id", "reason"],
    )

    # --- issue 15: caveats as data --------------------------------------------------------------
    cav = caveats(
        rms=data.rms,
        post=inputs.post,
        in_sample=inputs.in_sample,
        n_truncated=dict(data.n_truncated),
        n_texts={rm: 2 * ag.n for rm, ag in agree.items()},
        label_noise=label_noise_ceiling(
            susp_sub.n, int(susp_mask.sum()), susp_sub.criterion.split(";")[0], alpha=a
        )
        if int(susp_mask.sum())
        else None,
        post_agreement=agree[inputs.post].agreement.rate,
    )

    summary = InputSummary(
        n_pairs=n,
        n_context_diverges=int(data.context_diverges.sum()),
        post=inputs.post,
        pre=pre,
        rms=data.rms,
        baselines=tuple(b for b in baselines if b in data.rms),
        features=feature_info,
        variants=data.variants,
        unknown_pair_ids=dict(data.unknown_pair_ids),
        n_truncated=dict(data.n_truncated),
        notes=tuple(notes),
    )
    return AnalysisResult(
        options=opt,
        inputs=summary,
        agreement=agree,
        resistance=res,
        regimes=reg_res,
        lm_agreement=gamma_res,
        mcnemar=mc,
        reward_shift=shift,
        theta_regression=theta_reg,
        imprint=imprint,
        vif=vif_res,
        misalignment=mis,
        robustness=robust,
        calibration=calib,
        resistance_by_feature=rbf,
        suspicious_pairs=susp,
        exclusions=excl,
        caveats=cav,
        table_data=tables,
    )


def _role(rm: str, post: str, pre: str | None) -> str:
    if rm == post:
        return "post"
    if rm == pre:
        return "pre"
    return "baseline" if rm.startswith("length") else "other"


def _delta(r: FloatArray | None, mask: BoolArray) -> BoolArray:
    assert r is not None
    d: BoolArray = r[mask, 0] > r[mask, 1]
    return d


class _Design:
    """The regressors as two (N, K) matrices, built once and row-subset per analysis."""

    def __init__(self, feat: Mapping[str, FloatArray], names: tuple[str, ...], n: int) -> None:
        self.xc = np.empty((n, len(names)))
        self.xr = np.empty((n, len(names)))
        for j, f in enumerate(names):
            self.xc[:, j] = feat[f][:, 0]
            self.xr[:, j] = feat[f][:, 1]

    def __call__(self, mask: BoolArray) -> tuple[FloatArray, FloatArray]:
        return self.xc[mask], self.xr[mask]


def _drift_gate(
    rewrites: pd.DataFrame, transform: str, index: pd.Index, exclude_drifted: bool
) -> tuple[DriftGate, BoolArray, BoolArray]:
    """Per transform: which pairs have rewrite rows, which pass the gate, and the gate's counts."""
    n = len(index)
    rw = rewrites[rewrites["transform"].astype(str) == transform]
    pos = index.get_indexer(pd.Index(rw["pair_id"].astype(str)))
    rw = rw[pos >= 0]
    pos = pos[pos >= 0]
    status = rw["status"].astype(str).to_numpy() if "status" in rw.columns else np.full(len(rw), "ok")
    drifted = (
        rw["drifted"].fillna(False).astype(bool).to_numpy()
        if "drifted" in rw.columns
        else np.zeros(len(rw), bool)
    )
    sim = (
        pd.to_numeric(rw["similarity"], errors="coerce").to_numpy(dtype=float)
        if "similarity" in rw.columns
        else np.full(len(rw), np.nan)
    )
    has = np.zeros(n, dtype=bool)
    has[pos] = True
    bad_row = (status != "ok") | (drifted if exclude_drifted else np.zeros(len(rw), bool))
    bad = np.zeros(n, dtype=bool)
    bad[pos[bad_row]] = True
    ok_sim = sim[(status == "ok") & np.isfinite(sim)]
    gate = DriftGate(
        n_pairs_with_rewrites=int(has.sum()),
        n_rows=len(rw),
        n_ok=int(np.sum(status == "ok")),
        n_rejected=int(np.sum(status == "rejected")),
        n_failed=int(np.sum(status == "failed")),
        n_drifted=int(drifted.sum()),
        mean_similarity=float(ok_sim.mean()) if ok_sim.size else float("nan"),
        exclude_drifted=exclude_drifted,
        n_pairs_excluded=int((has & bad).sum()),
    )
    return gate, has, has & ~bad


def _robustness(
    inputs: AnalysisInputs,
    opt: AnalysisOptions,
    data: PreparedData,
    spec_by: Mapping[str, FeatureSpec],
    exclusions: Any,
    tables: dict[str, pd.DataFrame],
) -> dict[str, RobustnessResult] | Skipped:
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
    coef_rows: list[dict[str, Any]] = []
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
        universe = _ok(rew_post, n)
        passes = np.ones(n, dtype=bool)
        if inputs.rewrites is not None and len(inputs.rewrites):
            gate, has, passes = _drift_gate(inputs.rewrites, t, index, opt.exclude_drifted)
            universe = universe | has
        use = universe & passes & _ok(rew_post, n) & _ok(orig_post, n)
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
            )
        ]
        if inputs.pre is not None:
            o0, r0 = data.reward(inputs.pre), data.reward(inputs.pre, t)
            if o0 is not None and r0 is not None:
                u0 = use & _ok(o0, n) & _ok(r0, n)
                acc.insert(
                    0,
                    accuracy_change(
                        inputs.pre,
                        o0[u0],
                        r0[u0],
                        alpha=opt.alpha,
                        n_bootstrap=opt.n_bootstrap,
                        seed=opt.seed,
                        transform=t,
                    ),
                )
        have = [s for s in spoilers if (t, s.name) in data.features]
        use_reg = use.copy()
        tols: dict[str, float] = {}
        for s in have:
            use_reg &= _ok(data.features[(ORIGINAL, s.name)], n) & _ok(data.features[(t, s.name)], n)
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
            effect_of_interest=opt.effect_of_interest_robustness,  # issue 15
            power=opt.power,
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
        cnt = {c.term: c.n for c in counts}
        for model, reg in (("lpm", lpm), ("logit", lg)):
            if isinstance(reg, RegressionResult):
                for row in _coef_rows(reg, transform=t, model=model):
                    row["kind"] = kinds.get(t, "unknown")
                    row["n_changed"] = cnt.get(str(row["term"]))
                    coef_rows.append(row)
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
                    **_rate_cols("agreement_original", ac.agreement_original),
                    **_rate_cols("agreement_rewritten", ac.agreement_rewritten),
                    **_rate_cols("became_misaligned", ac.became_misaligned),
                    **_rate_cols("flipped", ac.flipped),
                    **(dataclasses.asdict(gate) if gate else {}),
                }
            )
    if not out:
        return Skipped("rewrites present but no rewritten texts were scored by the post-D RM")
    tables["robustness"] = _frame(coef_rows, columns=["transform", "model", "term"])
    tables["robustness_summary"] = _frame(summary_rows)
    return out
