"""Our OLS / logit / corrections against statsmodels (the independent implementation)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.outliers_influence import variance_inflation_factor

from seal_audit.stats.inference import adjust_pvalues
from seal_audit.stats.regression import CollinearityError, SeparationError, logit, ols, vif


def _pair_data(n_pairs: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (rng.random((2 * n_pairs, k)) < rng.uniform(0.1, 0.9, k)).astype(float)
    x[:, -1] = rng.integers(-1, 2, 2 * n_pairs)  # an ordinal column
    groups = np.repeat(np.arange(n_pairs), 2)
    pair_effect = rng.normal(0, 1.5, n_pairs)[groups]
    y = 0.3 + x @ rng.normal(0, 1, k) + pair_effect + rng.normal(0, 1, 2 * n_pairs) * (1 + x[:, 0])
    return y, x, groups


def _close(a: np.ndarray, b: np.ndarray, tol: float = 1e-8) -> None:
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_cluster_ols_matches_statsmodels_at_5000_pairs() -> None:
    y, x, groups = _pair_data(5000, 15, seed=1)
    names = [f"f{j}" for j in range(x.shape[1])]
    ours = ols(y, x, names, cov_type="cluster", groups=groups)
    ref = sm.OLS(y, sm.add_constant(x)).fit(cov_type="cluster", cov_kwds={"groups": groups})
    _close(ours.params, ref.params)
    _close(np.array([c.se for c in ours.coefficients]), ref.bse)
    _close(np.array([c.p_value for c in ours.coefficients]), ref.pvalues, tol=1e-7)
    _close(ours.cov, ref.cov_params())
    assert ours.n_clusters == 5000
    # the clustered SE must differ from the naive one here (pair effects), so the test can fail
    naive = sm.OLS(y, sm.add_constant(x)).fit()
    assert np.max(np.abs(naive.bse / ref.bse - 1)) > 0.05


@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC3", "nonrobust"])
def test_robust_ols_matches_statsmodels(cov_type: str) -> None:
    y, x, _ = _pair_data(2500, 8, seed=2)
    ours = ols(y, x, [f"f{j}" for j in range(8)], cov_type=cov_type)  # type: ignore[arg-type]
    ref = sm.OLS(y, sm.add_constant(x)).fit(cov_type=cov_type)
    _close(ours.params, ref.params)
    _close(np.array([c.se for c in ours.coefficients]), ref.bse)
    _close(np.array([c.p_value for c in ours.coefficients]), ref.pvalues, tol=1e-7)
    assert ours.r_squared is not None
    assert abs(ours.r_squared - ref.rsquared) < 1e-10


def test_one_row_per_cluster_is_hc1() -> None:
    y, x, _ = _pair_data(3000, 6, seed=3)
    names = [f"f{j}" for j in range(6)]
    a = ols(y, x, names, intercept=False, cov_type="cluster", groups=np.arange(len(y)))
    b = ols(y, x, names, intercept=False, cov_type="HC1")
    _close(a.cov, b.cov, tol=1e-12)
    ref = sm.OLS(y, x).fit(cov_type="cluster", cov_kwds={"groups": np.arange(len(y))})
    _close(a.params, ref.params)
    _close(np.array([c.se for c in a.coefficients]), ref.bse)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0"])
def test_logit_matches_statsmodels(cov_type: str) -> None:
    rng = np.random.default_rng(4)
    n, k = 5000, 10
    x = (rng.random((n, k)) < 0.4).astype(float)
    eta = -1 + x @ rng.normal(0, 0.5, k)
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    ours = logit(y, x, [f"f{j}" for j in range(k)], cov_type=cov_type)  # type: ignore[arg-type]
    ref = sm.Logit(y, sm.add_constant(x)).fit(disp=0, cov_type=cov_type, tol=1e-12, maxiter=100)
    _close(ours.params, ref.params)
    _close(np.array([c.se for c in ours.coefficients]), ref.bse)
    assert ours.log_likelihood is not None
    assert abs(ours.log_likelihood - ref.llf) < 1e-8
    c = ours.coefficients[1]
    assert c.odds_ratio == pytest.approx(np.exp(c.estimate))


def test_logit_separation_names_the_regressor() -> None:
    rng = np.random.default_rng(5)
    x = (rng.random((400, 3)) < 0.5).astype(float)
    y = (rng.random(400) < 0.3).astype(float)
    y[x[:, 1] == 1] = 1.0
    with pytest.raises(SeparationError, match="b="):
        logit(y, x, ["a", "b", "c"])


def test_constant_and_collinear_features_raise_naming_them() -> None:
    rng = np.random.default_rng(6)
    x = (rng.random((200, 4)) < 0.5).astype(float)
    y = rng.normal(size=200)
    x_const = x.copy()
    x_const[:, 2] = 1.0
    with pytest.raises(CollinearityError, match="is_eloquent"):
        ols(y, x_const, ["a", "b", "is_eloquent", "d"])
    x_col = x.copy()
    x_col[:, 3] = 1 - x_col[:, 0]  # d = 1 - a: collinear with the intercept
    with pytest.raises(CollinearityError, match=r"intercept ~ a ~ d|a ~ d"):
        ols(y, x_col, ["a", "b", "c", "d"])
    res = ols(y, x_const, ["a", "b", "is_eloquent", "d"], drop_constant=True)
    assert res.dropped_terms == ("is_eloquent",)


def test_vif_matches_statsmodels() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(1000, 4))
    x[:, 3] += 0.8 * x[:, 0]
    ours = [r.vif for r in vif(x, ["a", "b", "c", "d"])]
    exog = sm.add_constant(x)
    ref = [variance_inflation_factor(exog, j) for j in range(1, 5)]
    _close(np.array(ours), np.array(ref), tol=1e-9)


@pytest.mark.parametrize("method", ["bonferroni", "holm"])
def test_pvalue_corrections_match_multipletests(method: str) -> None:
    rng = np.random.default_rng(8)
    p = np.concatenate([rng.random(20) ** 3, [0.0, 1.0, 0.5, 0.5]])
    ours = adjust_pvalues(p, method)  # type: ignore[arg-type]
    ref = multipletests(p, method=method)[1]
    _close(ours, ref, tol=1e-14)


def test_regression_corrections_are_over_non_intercept_terms() -> None:
    y, x, _ = _pair_data(300, 4, seed=9)
    res = ols(y, x, ["a", "b", "c", "d"], cov_type="HC1", correction="holm")
    raw = np.array([c.p_value for c in res.coefficients[1:]])
    _close(np.array([c.p_holm for c in res.coefficients[1:]]), multipletests(raw, method="holm")[1])
    _close(np.array([c.p_bonferroni for c in res.coefficients[1:]]), np.minimum(raw * 4, 1))
    assert np.isnan(res.coefficients[0].p_holm)
    assert res.correction == "holm"
