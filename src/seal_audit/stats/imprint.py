"""Feature imprint (SEAL-METHOD.md §4): rewards regressed on text features, pooled and pair-FE."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

import numpy as np

from seal_audit.stats._common import Exclusions, FloatArray, IntArray
from seal_audit.stats.inference import Correction
from seal_audit.stats.regression import ClusterCov, RegressionResult, VifRow, clustered_ols, vif

ImprintModel = Literal["post", "pre", "post_minus_pre"]


@dataclasses.dataclass(frozen=True)
class ImprintResult:
    """One imprint regression: which estimator, which reward, the fit and the pairs it used."""

    estimator: Literal["pooled", "fe"]
    model: ImprintModel
    """post = r1 (β), pre = r0 (β0), post_minus_pre = r1 − r0 (what training on D changed)."""
    rm: str
    description: str
    regression: RegressionResult
    exclusions: Exclusions


def stack_texts(chosen: FloatArray, rejected: FloatArray) -> FloatArray:
    """Interleave chosen and rejected rows: row 2i is t_c of pair i, row 2i + 1 is t_r."""
    out = np.empty((2 * chosen.shape[0], *chosen.shape[1:]), dtype=np.float64)
    out[0::2] = chosen
    out[1::2] = rejected
    return out


def imprint_pooled(
    rewards: FloatArray,
    x_chosen: FloatArray,
    x_rejected: FloatArray,
    names: Sequence[str],
    *,
    correction: Correction,
    alpha: float,
    drop_constant: bool = True,
    cov_type: ClusterCov = "auto",
    clusters: IntArray | None = None,
) -> RegressionResult:
    """Pooled OLS r(t) = α + Σ β_τ t(τ) + ε over the 2N stacked texts (§4, the released R script's
    model) with pair-clustered standard errors (what the reference intended but did not apply):
    CR2 with Bell–McCaffrey df for few pairs or rare features, else CR1 (``choose_cluster_cov``).
    ``clusters`` (a group code per pair) clusters by group instead: pairs that share a prompt share
    texts and reward noise, so their rows are one cluster."""
    n = rewards.shape[0]
    y = stack_texts(rewards[:, 0], rewards[:, 1])
    x = stack_texts(x_chosen, x_rejected)
    groups = np.repeat(_pair_or_group(n, clusters), 2)
    return clustered_ols(
        y,
        x,
        names,
        groups,
        intercept=True,
        cov_type=cov_type,
        correction=correction,
        alpha=alpha,
        drop_constant=drop_constant,
        context="imprint (pooled OLS)",
    )


def imprint_fe(
    rewards: FloatArray,
    x_chosen: FloatArray,
    x_rejected: FloatArray,
    names: Sequence[str],
    *,
    correction: Correction,
    alpha: float,
    drop_constant: bool = True,
    cov_type: ClusterCov = "auto",
    clusters: IntArray | None = None,
) -> RegressionResult:
    """Pair fixed effects (§4, the paper's α_i): with two texts per pair the within estimator is the
    regression of r(t_c) − r(t_r) on the feature differences without intercept. Clustering by pair
    leaves one row per cluster, so the pair-clustered SE is exactly the HC1 robust SE (CR1) or the
    HC2 one with Bell–McCaffrey df (CR2, chosen as in ``imprint_pooled``). With ``clusters`` the
    difference rows of one group form a cluster (the fixed effects stay per pair)."""
    n = rewards.shape[0]
    x = x_chosen - x_rejected
    groups = _pair_or_group(n, clusters)
    return clustered_ols(
        rewards[:, 0] - rewards[:, 1],
        x,
        names,
        groups,
        intercept=False,
        cov_type=cov_type,
        correction=correction,
        alpha=alpha,
        drop_constant=drop_constant,
        context="imprint (pair fixed effects)",
    )


def _pair_or_group(n: int, clusters: IntArray | None) -> IntArray:
    """Cluster codes of n pairs: their group codes, else one cluster per pair."""
    if clusters is None:
        return np.arange(n, dtype=np.int64)
    codes = np.asarray(clusters, dtype=np.int64)
    if codes.shape != (n,):
        raise ValueError(f"clusters: {codes.shape[0]} codes for {n} pairs")
    return codes


def imprint_vif(x_chosen: FloatArray, x_rejected: FloatArray, names: Sequence[str]) -> tuple[VifRow, ...]:
    """VIF of the imprint regressors over the stacked texts: large values (> 10) warn that an
    imprint is poorly separated from another feature's."""
    return vif(stack_texts(x_chosen, x_rejected), names)
