"""MDE and power verdicts by hand; pairs_needed checked by running the real estimator on planted data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from seal_audit.stats.power import mde, pairs_needed, simulated_power, with_power
from seal_audit.stats.regression import ols


def test_power_at_the_mde_is_the_stated_power() -> None:
    se, level = 0.3, 0.05 / 15
    d = mde(se, level, 0.8)
    z = sps.norm.isf(level / 2)
    achieved = sps.norm.sf(z - d / se) + sps.norm.cdf(-z - d / se)
    assert achieved == pytest.approx(0.8, abs=1e-4)
    assert mde(se, level, 0.8, df=12) > d  # t quantiles are wider


def test_with_power_flags_underpowered_and_keeps_significant() -> None:
    rng = np.random.default_rng(1)
    n = 120
    x = np.column_stack([rng.normal(size=n), (rng.random(n) < 0.05).astype(float), rng.normal(size=n)])
    y = 1.5 * x[:, 0] + rng.normal(size=n)
    reg = with_power(ols(y, x, ["big", "rare", "null"], cov_type="HC1"), effect_of_interest=0.5)
    assert not hasattr(reg, "skipped")
    by = {c.term: c for c in reg.coefficients}  # type: ignore[union-attr]
    assert by["big"].verdict == "significant"
    assert by["rare"].verdict == "underpowered" and by["rare"].mde is not None and by["rare"].mde > 0.5
    assert by["null"].verdict == "not significant" and by["null"].mde is not None and by["null"].mde <= 0.5
    want = (sps.norm.isf(0.05 / 3 / 2) + sps.norm.ppf(0.8)) * by["null"].se
    assert by["null"].mde == pytest.approx(want)
    assert by["intercept"].verdict is None
    assert reg.mde_alpha == pytest.approx(0.05 / 3) and reg.power == 0.8  # type: ignore[union-attr]


def test_pairs_needed_closed_form_by_hand() -> None:
    plan = pairs_needed(0.5, 0.05, estimator="fe", residual_sd=1.0, alpha=0.05, n_tests=15)
    z = sps.norm.isf(0.05 / 15 / 2) + sps.norm.ppf(0.8)
    v = 0.05 * 0.95
    assert plan.n_pairs == math.ceil(2 * (z / 0.5) ** 2 / (2 * v))
    pooled = pairs_needed(0.5, 0.05, estimator="pooled", residual_sd=1.0, pair_sd=1.0, n_tests=15)
    assert pooled.n_pairs == math.ceil((1 + 1) / (2 * v) * (z / 0.5) ** 2)
    # rarer features and smaller effects need more pairs
    assert pairs_needed(0.5, 0.02).n_pairs > plan.n_pairs > pairs_needed(1.0, 0.05).n_pairs


@pytest.mark.parametrize(
    ("estimator", "prevalence", "prevalence_rejected"),
    [("fe", 0.1, None), ("pooled", 0.1, None), ("fe", 0.05, 0.1)],
)
def test_pairs_needed_gives_the_stated_power_in_simulation(
    estimator: str, prevalence: float, prevalence_rejected: float | None
) -> None:
    plan = pairs_needed(
        0.5,
        prevalence,
        prevalence_rejected=prevalence_rejected,
        estimator=estimator,
        n_tests=15,  # type: ignore[arg-type]
    )
    checked = simulated_power(plan, reps=300, seed=3)
    assert checked.simulated_power is not None
    se = math.sqrt(0.8 * 0.2 / 300)
    assert abs(checked.simulated_power - 0.8) < 3.5 * se, (plan.n_pairs, checked.simulated_power)
    # and at half the pairs the power is clearly lower, so the check can fail
    half = simulated_power(plan, reps=300, seed=4, n_pairs=plan.n_pairs // 2)
    assert half.simulated_power is not None and half.simulated_power < 0.65
