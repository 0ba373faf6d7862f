"""Feature imprint (SEAL-METHOD.md §4): rewards regressed on text features, pooled and pair-FE."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

import numpy as np

from seal_audit.stats._common import Exclusions, FloatArray
from seal_audit.stats.inference import Correction
from seal_audit.stats.regression import RegressionResult, VifRow, ols, vif

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
) -> RegressionResult:
    """Pooled OLS r(t) = α + Σ β_τ t(τ) + ε over the 2N stacked texts (§4, the released R script's
    model) with pair-clustered standard errors (what the reference intended but did not apply)."""
    n = rewards.shape[0]
    y = stack_texts(rewards[:, 0], rewards[:, 1])
    x = stack_texts(x_chosen, x_rejected)
    groups = np.repeat(np.arange(n, dtype=np.int64), 2)
    return ols(
        y,
        x,
        names,
        intercept=True,
        cov_type="cluster",
        groups=groups,
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
) -> RegressionResult:
    """Pair fixed effects (§4, the paper's α_i): with two texts per pair the within estimator is the
    regression of r(t_c) − r(t_r) on the feature differences without intercept. Clustering by pair
    leaves one row per cluster, so the pair-clustered SE is exactly the HC1 robust SE."""
    n = rewards.shape[0]
    return ols(
        rewards[:, 0] - rewards[:, 1],
        x_chosen - x_rejected,
        names,
        intercept=False,
        cov_type="cluster",
        groups=np.arange(n, dtype=np.int64),
        correction=correction,
        alpha=alpha,
        drop_constant=drop_constant,
        context="imprint (pair fixed effects)",
    )


def imprint_vif(x_chosen: FloatArray, x_rejected: FloatArray, names: Sequence[str]) -> tuple[VifRow, ...]:
    """VIF of the imprint regressors over the stacked texts: large values (> 10) warn that an
    imprint is poorly separated from another feature's."""
    return vif(stack_texts(x_chosen, x_rejected), names)
