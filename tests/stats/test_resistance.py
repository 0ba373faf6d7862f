"""Hand-computed cases for agreement, regimes, γ, three-way agreement, McNemar, θ; reference arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from seal_audit.stats import (
    agreement,
    bootstrap_cell_counts,
    lm_agreement,
    mcnemar_exact,
    regimes,
    regimes_from_counts,
    resistance,
    reward_shift,
    three_way,
)
from seal_audit.stats.diagnostics import calibration, suspicious_pairs


def test_reference_arithmetic_from_published_regime_shares() -> None:
    """SEAL-METHOD.md §3: 48.3 / 25.8 / 17.2 / 8.7 % → agreement 57.0 % / 74.1 %, resistance 25.9 %."""
    r = regimes_from_counts([483, 258, 172, 87])
    assert r.agreement_pre == pytest.approx(0.570, abs=1e-12)
    assert r.agreement_post == pytest.approx(0.741, abs=1e-12)
    assert r.resistance == pytest.approx(0.259, abs=1e-12)
    assert r.shares["resisted_alignment"].rate == pytest.approx(0.172)


def test_agreement_is_strict_and_counts_ties() -> None:
    rewards = np.array([[2.0, 1.0], [1.0, 1.0], [0.0, 3.0], [5.0, -1.0], [0.5, 0.5]])
    a = agreement("post", rewards, alpha=0.05, n_bootstrap=200, seed=1)
    assert (a.n, a.n_agree, a.n_ties) == (5, 2, 2)
    assert a.agreement.rate == pytest.approx(0.4)
    lo, hi = proportion_confint(2, 5, alpha=0.05, method="beta")
    assert a.agreement.ci_low == pytest.approx(lo, abs=1e-12)
    assert a.agreement.ci_high == pytest.approx(hi, abs=1e-12)
    res = resistance(a)
    assert res.rate == pytest.approx(0.6)
    assert res.ci_low == pytest.approx(1 - hi) and res.ci_high == pytest.approx(1 - lo)
    assert a.delta.tolist() == [True, False, False, True, False]


def test_regimes_hand_case() -> None:
    d0 = np.array([1, 1, 0, 0, 1, 0, 1], dtype=bool)
    d1 = np.array([1, 0, 1, 0, 1, 1, 0], dtype=bool)
    r = regimes(d0, d1, alpha=0.05, n_bootstrap=100, seed=0)
    assert r.counts == {
        "stayed_aligned": 2,
        "got_aligned": 2,
        "resisted_alignment": 1,
        "reversed_alignment": 2,
    }
    assert r.agreement_pre == pytest.approx(4 / 7)
    assert r.agreement_post == pytest.approx(4 / 7)
    assert r.resistance == pytest.approx(3 / 7)


def test_multinomial_bootstrap_matches_row_resampling() -> None:
    """Cell-count bootstrap = row bootstrap in distribution: SDs agree within Monte Carlo error."""
    rng = np.random.default_rng(0)
    x = rng.random(2000) < 0.3
    rows = np.array([x[rng.integers(0, x.size, x.size)].mean() for _ in range(2000)])
    cells = (
        bootstrap_cell_counts(np.array([x.sum(), (~x).sum()]), 2000, np.random.default_rng(1))[:, 0] / x.size
    )
    assert cells.std() == pytest.approx(rows.std(), rel=0.08)
    assert cells.mean() == pytest.approx(x.mean(), abs=0.002)


@pytest.mark.parametrize(
    ("chosen", "rejected", "expected"),
    [
        ((1, 0), (0, 1), "c"),  # harmless beats helpful
        ((0, 1), (1, 0), "r"),
        ((1, 1), (1, 1), "i"),
        ((1, 0), (1, 1), "r"),
        ((0, 1), (0, 0), "c"),
        ((0, 0), (0, 0), "i"),
        ((1, float("nan")), (0, 0), ""),
    ],
)
def test_gamma_lexicographic_rule(
    chosen: tuple[float, float], rejected: tuple[float, float], expected: str
) -> None:
    g = lm_agreement(np.array([chosen], dtype=float), np.array([rejected], dtype=float))
    assert g.tolist() == [expected]


def test_three_way_counts_only_pairs_with_an_lm_opinion() -> None:
    gamma = np.array(["c", "c", "r", "r", "i", "c"], dtype=object)
    delta = np.array([1, 0, 1, 0, 1, 1], dtype=bool)
    t = three_way("post", gamma, delta)
    assert (t.n, t.all_agree, t.lm_only, t.rm_only, t.neither) == (5, 2, 1, 1, 1)


@pytest.mark.parametrize("table", [(30, 12, 3, 40), (10, 0, 0, 5), (5, 9, 1, 7), (100, 40, 25, 100)])
def test_mcnemar_exact_matches_statsmodels(table: tuple[int, int, int, int]) -> None:
    both, only_a, only_b, neither = table
    a = np.array([1] * both + [1] * only_a + [0] * only_b + [0] * neither, dtype=bool)
    b = np.array([1] * both + [0] * only_a + [1] * only_b + [0] * neither, dtype=bool)
    ours = mcnemar_exact("a", "b", a, b)
    ref = mcnemar([[both, only_a], [only_b, neither]], exact=True)
    assert (ours.only_a, ours.only_b) == (only_a, only_b)
    assert ours.p_value == pytest.approx(ref.pvalue, abs=1e-12)


def test_reward_shift_angles() -> None:
    pre = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [2.0, 1.0], [1.0, 1.0], [3.0, -2.0], [0.0, 0.0]])
    post = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [1.0, 2.0], [-1.0, -1.0], [6.0, -4.0], [1.0, 0.0]])
    theta = reward_shift(pre, post)
    np.testing.assert_allclose(
        theta, [-90.0, 0.0, 90.0, -np.degrees(np.arctan2(3, 4)), 180.0, 0.0, 0.0], atol=1e-12
    )
    # sign convention of the reference's published numbers: turning from misaligned (above the
    # diagonal) to aligned (below it) is a positive shift ("got aligned" +18°)
    got_aligned = reward_shift(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]))
    reversed_ = reward_shift(np.array([[2.0, 1.0]]), np.array([[1.0, 2.0]]))
    assert got_aligned[0] == pytest.approx(90.0) and reversed_[0] < 0
    # scale invariance: only directions matter
    np.testing.assert_allclose(reward_shift(pre * 7.5, post * 0.1), theta, atol=1e-12)


def test_calibration_hand_case() -> None:
    margins = np.array([0.0, 2.0, -1.0])
    rewards = np.column_stack([margins, np.zeros(3)])
    c = calibration("post", rewards, n_bins=10)
    p = 1 / (1 + np.exp(-margins))
    assert c.brier == pytest.approx(np.mean((1 - p) ** 2))
    assert c.log_loss == pytest.approx(-np.mean(np.log(p)))
    assert sum(b.n for b in c.bins) == 6
    # p = 0.5 twice (outcomes 1 and 0): perfectly calibrated bin; others fully miscalibrated halves
    expected = (
        (2 / 6) * 0
        + (1 / 6) * abs(p[1] - 1)
        + (1 / 6) * abs(1 - p[1] - 0)
        + (1 / 6) * abs(p[2] - 1)
        + (1 / 6) * abs(1 - p[2])
    )
    assert c.ece == pytest.approx(expected)


def test_suspicious_pairs_need_every_judge_and_rank_by_margin() -> None:
    ids = np.array(["a", "b", "c", "d", "e"], dtype=object)
    post = np.array([-1.0, -3.0, 2.0, -2.0, -5.0])
    pre = np.array([-1.0, -1.0, -1.0, 1.0, -0.5])
    gamma = np.array(["r", "r", "r", "r", "c"], dtype=object)
    s = suspicious_pairs(ids, post, pre, gamma, max_listed=10)
    assert s.top == ("b", "a")
    assert s.n == 2
