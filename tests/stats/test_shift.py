"""The reward shift θ: the paper's angle, and the offset-invariant default that replaces it."""

from __future__ import annotations

import numpy as np
import pytest

from seal_audit.stats import AnalysisOptions, SimulationSpec, analyze, simulate
from seal_audit.stats.resistance import REGIMES, regime_codes
from seal_audit.stats.shift import (
    ShiftResult,
    centered_shift,
    margin_shift,
    reward_shift,
    reward_shift_analysis,
)


def _planted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rewards straddling zero; pairs 0..n/2 'got aligned' by construction (pre margin < 0 < post)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 2, (n, 1))
    m0 = rng.normal(0, 1, n)
    m1 = m0 + rng.normal(0.8, 1, n)
    half = n // 2
    m0[:half] = -np.abs(m0[:half]) - 0.01
    m1[:half] = np.abs(m1[:half]) + 0.01
    pre = np.column_stack([base[:, 0] + m0 / 2, base[:, 0] - m0 / 2])
    post = np.column_stack([base[:, 0] + 0.3 + m1 / 2, base[:, 0] + 0.3 - m1 / 2])
    return pre, post


def _regimes(pre: np.ndarray, post: np.ndarray) -> np.ndarray:
    return np.asarray(REGIMES, dtype=object)[regime_codes(pre[:, 0] > pre[:, 1], post[:, 0] > post[:, 1])]


@pytest.mark.parametrize("c0", [-7.0, -1.5, 0.0, 3.0, 50.0])
@pytest.mark.parametrize("c1", [-20.0, -0.5, 0.0, 2.0])
def test_default_theta_summaries_do_not_move_with_offsets(c0: float, c1: float) -> None:
    pre, post = _planted(400, 1)
    reg = _regimes(pre, post)
    gamma = np.asarray(np.random.default_rng(2).choice(["c", "i", "r"], 400), dtype=object)
    base = reward_shift_analysis(pre, post, reg, gamma, alpha=0.05)
    moved = reward_shift_analysis(pre + c0, post + c1, reg, gamma, alpha=0.05)
    for a, b in [
        (base.overall, moved.overall),
        *zip(base.by_regime.values(), moved.by_regime.values(), strict=True),
    ]:
        assert a.mean == pytest.approx(b.mean, abs=1e-9)
        assert a.ci_low == pytest.approx(b.ci_low, abs=1e-9)
        assert a.median == pytest.approx(b.median, abs=1e-9)
    for g in base.by_gamma:
        assert base.by_gamma[g].mean == pytest.approx(moved.by_gamma[g].mean, abs=1e-9)
    assert base.theta_centered is not None and moved.theta_centered is not None
    assert base.theta_centered.overall.mean == pytest.approx(moved.theta_centered.overall.mean, abs=1e-9)
    # got aligned pairs: positive mean (and every single one positive) whatever the offsets
    got = moved.by_regime["got_aligned"]
    assert got.mean > 0 and got.n >= 200
    assert (moved.theta[:200] > 0).all()


def test_paper_theta_does_move_with_offsets_so_the_invariance_test_can_fail() -> None:
    pre, post = _planted(400, 1)
    reg = _regimes(pre, post)
    a = reward_shift_analysis(pre, post, reg, None, alpha=0.05)
    b = reward_shift_analysis(pre - 10, post - 10, reg, None, alpha=0.05)
    assert a.theta_paper is not None and b.theta_paper is not None
    # all rewards negative: the paper's got-aligned mean flips sign
    assert a.theta_paper.by_regime["got_aligned"].mean * b.theta_paper.by_regime["got_aligned"].mean < 0
    assert b.quadrants["pre"].both_negative.rate == 1.0


def test_margin_shift_by_hand_and_scale_invariance() -> None:
    pre = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.5]])
    post = np.array([[2.0, -1.0], [1.0, 0.0], [0.0, 0.0]])
    m0, m1 = np.array([1.0, -2.0, -0.5]), np.array([3.0, 1.0, 0.0])
    want = np.degrees(np.arctan(m1 / m1.std(ddof=1)) - np.arctan(m0 / m0.std(ddof=1)))
    np.testing.assert_allclose(margin_shift(pre, post), want, atol=1e-12)
    np.testing.assert_allclose(margin_shift(3 * pre + 1, 0.2 * post - 4), want, atol=1e-12)
    # paper angle by hand: u = (1, 0), v = (2, -1): v turned towards the chosen axis by atan(1/2)
    assert reward_shift(pre[:1], post[:1])[0] == pytest.approx(np.degrees(np.arctan2(1, 2)))
    c = centered_shift(pre, post)
    np.testing.assert_allclose(c, reward_shift(pre - pre.mean(), post - post.mean()))


def test_quadrants_and_sign_disagreement_by_hand() -> None:
    pre = np.array([[1.0, 2.0], [-1.0, -2.0], [1.0, -1.0], [-1.0, 1.0]])
    post = pre + np.array([[0.5, 0.0]])
    res = reward_shift_analysis(pre, post, _regimes(pre, post), None, alpha=0.05)
    q = res.quadrants["pre"]
    assert (q.both_positive.k, q.both_negative.k, q.chosen_positive_only.k, q.rejected_positive_only.k) == (
        1,
        1,
        1,
        1,
    )
    # every pair's margin grew by 0.5: default θ positive for all, paper θ negative for the (-,-) pair
    assert (res.theta > 0).all()
    assert res.theta_paper_values[1] < 0
    assert res.sign_disagreement is not None and res.sign_disagreement.k >= 1


def test_simulated_regime_signs_match_the_paper_at_every_offset() -> None:
    """Planted data through analyze(): got aligned > 0 > reversed for the default θ, even after
    shifting one RM's rewards far negative (where the paper's θ reverses)."""
    data = simulate(SimulationSpec(n_pairs=1500, seed=3, rewrite_fraction=0.0, truth_mc_pairs=1000))
    base: dict[str, float] = {}
    for offset, post_offset in ((0.0, 0.0), (-8.0, 3.0), (8.0, -30.0)):
        sc = data.scores.copy()
        sc.loc[sc["rm"] == "pre", "reward"] += offset
        sc.loc[sc["rm"] == "post", "reward"] += post_offset
        inputs = data.inputs()
        inputs = type(inputs)(**{**inputs.__dict__, "scores": sc})
        res = analyze(inputs, AnalysisOptions(n_bootstrap=0))
        sh = res.reward_shift
        assert isinstance(sh, ShiftResult)
        assert sh.by_regime["got_aligned"].mean > 0 > sh.by_regime["reversed_alignment"].mean
        assert sh.definition == "margin"
        js = res.to_dict()["reward_shift"]
        assert {"theta_paper", "theta_centered", "quadrants", "sign_disagreement"} <= set(js)
        diag = res.tables()["pair_diagnostics"]
        assert {"theta", "theta_paper", "theta_centered"} <= set(diag.columns)
        tr = res.theta_regression
        assert not hasattr(tr, "skipped")
        now = {
            "overall": sh.overall.mean,
            "sd": sh.overall.sd,
            **{k: v.mean for k, v in sh.by_regime.items()},
            **{f"g{k}": v.mean for k, v in sh.by_gamma.items()},
            **{c.term: c.estimate for c in tr.coefficients},  # type: ignore[union-attr]
        }
        if not base:
            base = now
        assert now == pytest.approx(base, abs=1e-9)
