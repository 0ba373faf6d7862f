"""CR2 (Bell–McCaffrey) against dense hand-coded matrices and statsmodels' HC2; adjusted intervals
that never contradict the verdict; the automatic covariance choice."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import linalg

from seal_audit.stats.regression import (
    CR2_MAX_CLUSTERS,
    choose_cluster_cov,
    ols,
)


def _cr2_dense(y: np.ndarray, x: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Textbook CR2 and Bell–McCaffrey df with n × n matrices (Imbens & Kolesár 2016, eq. 8–9)."""
    n, k = x.shape
    b = np.linalg.inv(x.T @ x)
    u = y - x @ (b @ x.T @ y)
    h = x @ b @ x.T
    m = np.eye(n) - h
    meat = np.zeros((k, k))
    blocks = {}
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        a = np.real(linalg.sqrtm(np.linalg.inv(np.eye(idx.size) - h[np.ix_(idx, idx)])))
        blocks[g] = (idx, a)
        s = x[idx].T @ a @ u[idx]
        meat += np.outer(s, s)
    cov = b @ meat @ b
    df = np.empty(k)
    for j in range(k):
        cols = []
        for idx, a in blocks.values():
            full = np.zeros(n)
            full[idx] = a @ x[idx] @ b[:, j]
            cols.append(m @ full)
        gm = np.column_stack(cols)
        lam = np.linalg.eigvalsh(gm.T @ gm)
        df[j] = lam.sum() ** 2 / (lam**2).sum()
    return cov, df


def _clustered(n_groups: int, seed: int, sizes: tuple[int, ...] = (1, 2, 3)) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    size = rng.choice(sizes, n_groups)
    groups = np.repeat(np.arange(n_groups), size)
    rng.shuffle(groups)  # clusters need not be contiguous
    n = groups.size
    x = np.column_stack([(rng.random(n) < 0.08).astype(float), rng.normal(size=n), rng.integers(-1, 2, n)])
    y = (
        x @ np.array([1.0, -0.5, 0.3])
        + rng.normal(0, 1, n_groups)[groups]
        + rng.normal(0, 1, n) * (1 + x[:, 0])
    )
    return y, x, groups


def test_cr2_and_bell_mccaffrey_df_match_dense_matrices() -> None:
    y, x, groups = _clustered(70, seed=5)
    ours = ols(y, x, ["rare", "cont", "ord"], cov_type="CR2", groups=groups)
    cov, df = _cr2_dense(y, np.column_stack([np.ones(y.size), x]), groups)
    np.testing.assert_allclose(ours.cov, cov, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose([c.df for c in ours.coefficients], df, rtol=1e-8)
    assert ours.n_clusters == 70 and ours.cov_type == "CR2"
    # p-values and CIs use t(df) per coefficient
    c = ours.coefficients[1]
    assert c.df is not None and c.df < 60
    from scipy import stats as sps

    assert c.p_value == pytest.approx(2 * sps.t.sf(abs(c.estimate / c.se), c.df), rel=1e-10)
    assert c.ci_high - c.estimate == pytest.approx(sps.t.ppf(0.975, c.df) * c.se, rel=1e-10)
    # and CR2 is larger than CR1 for the rare regressor here (the bias it corrects), so this can fail
    cr1 = ols(y, x, ["rare", "cont", "ord"], cov_type="cluster", groups=groups)
    assert ours.coefficients[1].se != pytest.approx(cr1.coefficients[1].se, rel=1e-3)


def test_cr2_with_clusters_larger_than_the_design_matches_dense_matrices() -> None:
    """Clusters of up to 40 rows (more rows than parameters, where A_g is built from its low-rank
    part), a cluster-level regressor (X_g rank-deficient within every cluster) and singletons."""
    rng = np.random.default_rng(11)
    size = rng.choice([1, 4, 9, 40], 45)
    groups = np.repeat(np.arange(45), size)
    rng.shuffle(groups)
    n = groups.size
    level = rng.normal(size=45)[groups]  # constant within each cluster
    x = np.column_stack([(rng.random(n) < 0.1).astype(float), rng.normal(size=n), level])
    y = x @ np.array([0.8, -0.4, 0.2]) + rng.normal(0, 1, 45)[groups] + rng.normal(0, 1, n)
    ours = ols(y, x, ["rare", "cont", "level"], cov_type="CR2", groups=groups)
    cov, df = _cr2_dense(y, np.column_stack([np.ones(n), x]), groups)
    np.testing.assert_allclose(ours.cov, cov, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose([c.df for c in ours.coefficients], df, rtol=1e-8)


def test_cr2_with_one_row_per_cluster_is_statsmodels_hc2() -> None:
    rng = np.random.default_rng(6)
    x = np.column_stack([(rng.random(300) < 0.05).astype(float), rng.normal(size=300)])
    y = x @ np.array([0.7, 0.2]) + rng.normal(size=300) * (1 + 2 * x[:, 0])
    ours = ols(y, x, ["a", "b"], intercept=False, cov_type="CR2", groups=np.arange(300))
    ref = sm.OLS(y, x).fit(cov_type="HC2")
    np.testing.assert_allclose([c.se for c in ours.coefficients], ref.bse, rtol=1e-9)
    hc2 = ols(y, x, ["a", "b"], intercept=False, cov_type="HC2")
    np.testing.assert_allclose([c.se for c in hc2.coefficients], ref.bse, rtol=1e-9)


def test_bell_mccaffrey_df_of_a_mean_over_balanced_clusters_is_g_minus_1() -> None:
    groups = np.repeat(np.arange(12), 3)
    y = np.random.default_rng(7).normal(size=groups.size)
    res = ols(y, np.zeros((groups.size, 0)), [], cov_type="CR2", groups=groups)
    assert res.coefficients[0].df == pytest.approx(11.0, rel=1e-10)


@pytest.mark.parametrize("correction", ["bonferroni", "holm"])
def test_adjusted_interval_never_contradicts_the_verdict(correction: str) -> None:
    rng = np.random.default_rng(8)
    n_checked = 0
    n_sig = n_not = 0
    for rep in range(40):
        n, k = 300, 8
        x = rng.normal(size=(n, k))
        beta = rng.choice([0.0, 0.05, 0.12, 0.2, 0.4], k)
        y = x @ beta + rng.normal(size=n)
        res = ols(y, x, [f"f{j}" for j in range(k)], cov_type="HC1", correction=correction)  # type: ignore[arg-type]
        for c in res.coefficients:
            if c.term == "intercept":
                assert np.isnan(c.ci_low_adjusted)
                continue
            excludes = c.ci_low_adjusted > 0 or c.ci_high_adjusted < 0
            assert excludes == c.significant, (rep, c)
            assert c.ci_low_adjusted <= c.ci_low and c.ci_high_adjusted >= c.ci_high
            n_checked += 1
            n_sig += c.significant
            n_not += not c.significant
        assert res.family_size == k and correction.capitalize()[:4] in res.adjusted_ci
    assert n_checked == 320 and n_sig > 20 and n_not > 20


def test_bonferroni_interval_equals_statsmodels_at_alpha_over_m() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(500, 6))
    y = x @ np.array([0.0, 0.1, 0.2, 0.0, -0.3, 0.05]) + rng.normal(size=500)
    ours = ols(y, x, [f"f{j}" for j in range(6)], cov_type="HC1")
    ref = sm.OLS(y, sm.add_constant(x)).fit(cov_type="HC1")
    lo, hi = ref.conf_int(alpha=0.05 / 6).T
    np.testing.assert_allclose([c.ci_low_adjusted for c in ours.coefficients[1:]], lo[1:], rtol=1e-9)
    np.testing.assert_allclose([c.ci_high_adjusted for c in ours.coefficients[1:]], hi[1:], rtol=1e-9)


def test_auto_covariance_choice() -> None:
    rng = np.random.default_rng(10)
    common = (rng.random((4000, 1)) < 0.4).astype(float)
    groups = np.repeat(np.arange(2000), 2)
    assert choose_cluster_cov(common, ["c"], groups)[0] == "cluster"
    few = common[: 2 * (CR2_MAX_CLUSTERS - 1)]
    kind, note = choose_cluster_cov(few, ["c"], groups[: few.shape[0]])
    assert kind == "CR2" and "clusters" in note[0]
    rare = np.column_stack([common, np.zeros(4000)])
    rare[:30, 1] = 1.0  # set in 15 clusters
    kind, note = choose_cluster_cov(rare, ["c", "rare"], groups)
    assert kind == "CR2" and "'rare'" in note[0]
    assert choose_cluster_cov(rare, ["c", "rare"], groups, "cluster")[0] == "cluster"


def test_cr2_undefined_falls_back_to_cr1_with_a_note() -> None:
    """A feature set in a single text: that cluster has leverage 1, CR2 is undefined; the imprint
    still fits (CR1) and says why, instead of failing the whole analysis."""
    from seal_audit.stats import imprint_fe, imprint_pooled

    rng = np.random.default_rng(11)
    n = 300
    xc = (rng.random((n, 2)) < 0.4).astype(float)
    xr = (rng.random((n, 2)) < 0.4).astype(float)
    xc[:, 1] = 0.0
    xr[:, 1] = 0.0
    xc[7, 1] = 1.0
    r = np.column_stack([xc @ [1.0, 0.5], xr @ [1.0, 0.5]]) + rng.normal(size=(n, 2))
    for fn in (imprint_pooled, imprint_fe):
        fit = fn(r, xc, xr, ["common", "once"], correction="bonferroni", alpha=0.05)
        assert fit.cov_type == "cluster"
        assert any("CR2 undefined" in note for note in fit.notes), fit.notes
