"""Imprint estimators against statsmodels on real-sized data; FE = difference regression = within."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from seal_audit.stats import CollinearityError, imprint_fe, imprint_pooled, stack_texts


def _data(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xc = (rng.random((n, k)) < rng.uniform(0.2, 0.8, k)).astype(float)
    xr = (rng.random((n, k)) < rng.uniform(0.2, 0.8, k)).astype(float)
    beta = rng.normal(0, 1, k)
    u = rng.normal(0, 2, n)
    r = np.column_stack([xc @ beta, xr @ beta]) + u[:, None] + rng.normal(0, 1, (n, 2))
    return r, xc, xr


def test_pooled_imprint_equals_statsmodels_cluster_at_5000_pairs() -> None:
    r, xc, xr = _data(5000, 15, seed=11)
    names = [f"f{j}" for j in range(15)]
    ours = imprint_pooled(r, xc, xr, names, correction="bonferroni", alpha=0.05)
    y = stack_texts(r[:, 0], r[:, 1])
    x = sm.add_constant(stack_texts(xc, xr))
    ref = sm.OLS(y, x).fit(cov_type="cluster", cov_kwds={"groups": np.repeat(np.arange(5000), 2)})
    np.testing.assert_allclose(ours.params, ref.params, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose([c.se for c in ours.coefficients], ref.bse, rtol=1e-8, atol=1e-8)
    lo, hi = ref.conf_int().T
    np.testing.assert_allclose([c.ci_low for c in ours.coefficients], lo, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose([c.ci_high for c in ours.coefficients], hi, rtol=1e-8, atol=1e-8)
    assert ours.cov_type == "cluster" and ours.n_clusters == 5000


def test_fe_equals_difference_regression_and_within_estimator() -> None:
    r, xc, xr = _data(3000, 8, seed=12)
    names = [f"f{j}" for j in range(8)]
    fe = imprint_fe(r, xc, xr, names, correction="holm", alpha=0.05)
    diff = sm.OLS(r[:, 0] - r[:, 1], xc - xr).fit(cov_type="HC1")
    np.testing.assert_allclose(fe.params, diff.params, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose([c.se for c in fe.coefficients], diff.bse, rtol=1e-8, atol=1e-8)
    cl = sm.OLS(r[:, 0] - r[:, 1], xc - xr).fit(cov_type="cluster", cov_kwds={"groups": np.arange(3000)})
    np.testing.assert_allclose([c.se for c in fe.coefficients], cl.bse, rtol=1e-8, atol=1e-8)
    # the within (pair-demeaned) estimator on the stacked texts gives the same coefficients
    y = stack_texts(r[:, 0], r[:, 1])
    x = stack_texts(xc, xr)
    y_w = y - np.repeat(r.mean(axis=1), 2)
    x_w = x - np.repeat((xc + xr) / 2, 2, axis=0)
    within = sm.OLS(y_w, x_w).fit()
    np.testing.assert_allclose(fe.params, within.params, rtol=1e-9, atol=1e-9)
    assert all(c.term != "intercept" for c in fe.coefficients)


def test_fe_names_features_without_within_pair_variation() -> None:
    r, xc, xr = _data(200, 4, seed=13)
    xr[:, 2] = xc[:, 2]  # conversation-level feature: same value on both sides
    with pytest.raises(CollinearityError, match="f2"):
        imprint_fe(
            r, xc, xr, ["f0", "f1", "f2", "f3"], correction="bonferroni", alpha=0.05, drop_constant=False
        )
    fit = imprint_fe(r, xc, xr, ["f0", "f1", "f2", "f3"], correction="bonferroni", alpha=0.05)
    assert fit.dropped_terms == ("f2",) and [c.term for c in fit.coefficients] == ["f0", "f1", "f3"]


def test_pooled_names_collinear_features() -> None:
    r, xc, xr = _data(200, 4, seed=14)
    xc[:, 3], xr[:, 3] = xc[:, 0] + xc[:, 1], xr[:, 0] + xr[:, 1]
    with pytest.raises(CollinearityError, match=r"f0.*f1.*f3|f3.*f0"):
        imprint_pooled(r, xc, xr, ["f0", "f1", "f2", "f3"], correction="bonferroni", alpha=0.05)
