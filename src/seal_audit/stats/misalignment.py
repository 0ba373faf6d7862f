"""What drives misalignment (SEAL-METHOD.md §3): one row per pair, 2×K side features as regressors."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

import numpy as np

from seal_audit.stats._common import BoolArray, Exclusions, FloatArray, IntArray, Skipped
from seal_audit.stats.inference import Correction
from seal_audit.stats.power import LOGIT_EFFECT_OF_INTEREST, POWER, per_sd_effects, with_power
from seal_audit.stats.regression import RegressionResult, clustered_ols, ols, robust_logit


def side_design(
    x_chosen: FloatArray, x_rejected: FloatArray, names: Sequence[str]
) -> tuple[FloatArray, tuple[str, ...]]:
    """[chosen features | rejected features] with terms named ``chosen:τ`` and ``rejected:τ``."""
    x = np.column_stack([x_chosen, x_rejected])
    terms = tuple(f"chosen:{n}" for n in names) + tuple(f"rejected:{n}" for n in names)
    return x, terms


@dataclasses.dataclass(frozen=True)
class MisalignmentResult:
    """LPM (the reference's model) and logit of 1 − δ(r1) on the side features."""

    rm: str
    n: int
    misaligned: int
    lpm: RegressionResult
    """OLS with HC1 robust SEs (group-clustered under group clustering): coefficients are changes in
    the probability of misalignment."""
    logit: RegressionResult | Skipped
    """Logit with HC0 sandwich SEs (statsmodels' robust logit; CR1 by group under group
    clustering); odds ratios per term."""
    exclusions: Exclusions


def misalignment_drivers(
    delta_post: BoolArray,
    x_chosen: FloatArray,
    x_rejected: FloatArray,
    names: Sequence[str],
    *,
    rm: str,
    exclusions: Exclusions,
    correction: Correction,
    alpha: float,
    max_iter: int = 100,
    drop_constant: bool = True,
    effect_of_interest: float | None = None,
    power: float = POWER,
    numeric: Collection[str] = (),
    clusters: IntArray | None = None,
) -> MisalignmentResult:
    """Regress 1 − δ_i(r1) on the 2×K side features (§3 'what drives misalignment').

    Side columns that never vary (e.g. a feature never present on the rejected side) are dropped and
    named; genuine collinearity raises. A logit that cannot be fitted (separation) is reported as
    skipped with the reason while the LPM stands. Every coefficient carries its MDE at ``power``;
    with ``effect_of_interest`` (probability units) a non-significant one is flagged underpowered
    when its MDE exceeds it (the logit against an odds ratio of 2); for ``numeric`` features both are
    per SD of the feature. ``clusters`` (a group code per pair): group-clustered SEs (CR2 or CR1 as
    ``choose_cluster_cov`` picks; CR1 for the logit) instead of HC1 / HC0.
    """
    y = (~delta_post).astype(np.float64)
    x, terms = side_design(x_chosen, x_rejected, names)
    lpm = _side_ols(y, x, terms, clusters, correction, alpha, drop_constant, "misalignment LPM")
    lg = robust_logit(
        y,
        x,
        terms,
        correction=correction,
        alpha=alpha,
        max_iter=max_iter,
        context="misalignment logit",
        groups=clusters,
    )
    num_terms = {f"{side}:{f}" for f in numeric for side in ("chosen", "rejected")}
    lpm_p = with_power(
        lpm,
        effect_of_interest,
        power,
        per_sd_effects(effect_of_interest, x, terms, num_terms) if effect_of_interest is not None else None,
    )
    assert isinstance(lpm_p, RegressionResult)
    lg = with_power(
        lg,
        LOGIT_EFFECT_OF_INTEREST if effect_of_interest is not None else None,
        power,
        per_sd_effects(LOGIT_EFFECT_OF_INTEREST, x, terms, num_terms)
        if effect_of_interest is not None
        else None,
    )
    return MisalignmentResult(
        rm=rm, n=int(y.size), misaligned=int(y.sum()), lpm=lpm_p, logit=lg, exclusions=exclusions
    )


def theta_regression(
    theta: FloatArray,
    x_chosen: FloatArray,
    x_rejected: FloatArray,
    names: Sequence[str],
    *,
    correction: Correction,
    alpha: float,
    drop_constant: bool = True,
    clusters: IntArray | None = None,
) -> RegressionResult:
    """OLS of the reward shift θ_i on the 2×K side features with HC1 robust SEs (§3), or
    group-clustered ones with ``clusters``."""
    x, terms = side_design(x_chosen, x_rejected, names)
    return _side_ols(theta, x, terms, clusters, correction, alpha, drop_constant, "reward-shift OLS")


def _side_ols(
    y: FloatArray,
    x: FloatArray,
    terms: Sequence[str],
    clusters: IntArray | None,
    correction: Correction,
    alpha: float,
    drop_constant: bool,
    context: str,
) -> RegressionResult:
    """One row per pair: HC1 (= CR1 with one pair per cluster) for independent pairs, else the
    group-clustered fit."""
    if clusters is None:
        return ols(
            y,
            x,
            terms,
            cov_type="HC1",
            correction=correction,
            alpha=alpha,
            drop_constant=drop_constant,
            context=context,
        )
    return clustered_ols(
        y,
        x,
        terms,
        np.asarray(clusters, dtype=np.int64),
        intercept=True,
        cov_type="auto",
        correction=correction,
        alpha=alpha,
        drop_constant=drop_constant,
        context=context,
    )
