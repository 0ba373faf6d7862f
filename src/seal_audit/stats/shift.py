"""Reward vectors and the reward shift θ (SEAL-METHOD.md §3), in an offset-invariant form by default.

A Bradley–Terry RM is identified only up to an additive constant, so any per-pair quantity that is
meant to describe what training changed must not move when a constant is added to all rewards of
either RM. Adding c to both rewards moves the reward vector along the diagonal; the only
offset-invariant coordinate of a single pair is therefore its margin m = r(t_c) − r(t_r). Three
variants are computed (docs/results.md, "reward_shift", says why the default is the default):

- ``margin`` (the default θ): atan(m1 / s1) − atan(m0 / s0) in degrees, s = SD of the RM's margins
  over the analysed pairs. atan(m / s) is the angle between the reward vector, slid along the
  diagonal to a fixed reference distance, and the diagonal itself; so θ is the turn of the vector
  towards (positive) or away from (negative) the chosen axis. Invariant to adding a constant to either
  RM and to rescaling either RM; positive for every 'got aligned' pair and negative for every
  'reversed' pair by construction.
- ``centered``: the paper's angle after centring each RM's rewards on its mean over D's texts.
  Offset-invariant too, but pairs whose centred vector lies in the both-negative quadrant still get
  the sign of a turn inverted, so it is kept as a diagnostic only.
- ``paper`` (``theta_paper``): the paper's signed angle between the raw vectors.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from seal_audit.stats._common import BoolArray, FloatArray, IntArray, StrArray, no_json
from seal_audit.stats.inference import MeanEstimate, RateEstimate, cluster_rate_estimate, mean_estimate

ThetaDefinition = Literal["margin", "centered", "paper"]
THETA_DEFAULT: ThetaDefinition = "margin"
"""The θ that ``reward_shift.overall`` / ``by_regime`` / ``by_gamma`` and the per-pair ``theta`` use."""

THETA_DESCRIPTIONS: dict[str, str] = {
    "margin": (
        "offset-invariant reward shift: atan(m1/s1) - atan(m0/s0) in degrees, m = r(t_c) - r(t_r), "
        "s = SD of that RM's margins over the analysed pairs; positive = the post-D RM prefers the "
        "chosen response more than the pre-D RM did (towards alignment)"
    ),
    "centered": (
        "the paper's angle after centring each RM's rewards on its mean over D's texts "
        "(offset-invariant; sign still inverted for pairs whose centred vectors are both negative)"
    ),
    "paper": (
        "the paper's signed angle between u = (r0(t_c), r0(t_r)) and v = (r1(t_c), r1(t_r)); depends "
        "on each RM's arbitrary reward offset (its sign flips for pairs with negative rewards)"
    ),
}


def reward_shift(pre: FloatArray, post: FloatArray) -> FloatArray:
    """θ_paper in degrees: the signed angle from u_i = (r0(t_c), r0(t_r)) to v_i = (r1(t_c), r1(t_r))
    (§3), positive when v_i is turned towards the chosen axis, i.e. towards alignment.

    SEAL-METHOD.md calls θ counter-clockwise positive; its published signs (got aligned +18°,
    stayed +8°, resisted −8°, reversed −10°, overall mean +6.5°) hold only if the angle is measured
    with the rejected reward on the x-axis — in the (chosen, rejected) plane a turn towards alignment
    (below the diagonal) is clockwise. We follow the published numbers: θ = atan2(v × u, u · v),
    counter-clockwise positive in the (rejected, chosen) plane. Exact in every quadrant, never
    divides by a norm; a zero vector gives 0. Not offset-invariant: see ``margin_shift``.
    """
    cross = pre[:, 1] * post[:, 0] - pre[:, 0] * post[:, 1]
    dot = pre[:, 0] * post[:, 0] + pre[:, 1] * post[:, 1]
    theta: FloatArray = np.degrees(np.arctan2(cross, dot))
    return theta


theta_paper = reward_shift


def _margin_scale(rewards: FloatArray) -> float:
    m = rewards[:, 0] - rewards[:, 1]
    s = float(m.std(ddof=1)) if m.size > 1 else 0.0
    if not np.isfinite(s) or s <= 0:
        # all margins equal: any positive scale keeps the sign; the mean |margin| (or 1) keeps units
        s = float(np.mean(np.abs(m))) or 1.0
    return s


def margin_shift(pre: FloatArray, post: FloatArray) -> FloatArray:
    """The default θ (degrees): atan(m1 / s1) − atan(m0 / s0), see the module docstring.

    Uses only margins (invariant to adding a constant to all rewards of either RM) divided by the
    RM's own margin SD (invariant to rescaling either RM, as the paper's angle is)."""
    m0 = (pre[:, 0] - pre[:, 1]) / _margin_scale(pre)
    m1 = (post[:, 0] - post[:, 1]) / _margin_scale(post)
    theta: FloatArray = np.degrees(np.arctan(m1) - np.arctan(m0))
    return theta


def centered_shift(pre: FloatArray, post: FloatArray) -> FloatArray:
    """The paper's angle after subtracting each RM's mean reward over the analysed texts."""
    return reward_shift(pre - float(pre.mean()), post - float(post.mean()))


SHIFT_FUNCTIONS = {"margin": margin_shift, "centered": centered_shift, "paper": reward_shift}


@dataclasses.dataclass(frozen=True)
class ThetaSummary:
    """θ summaries of one definition: all pairs, per regime, per γ."""

    overall: MeanEstimate
    by_regime: dict[str, MeanEstimate]
    by_gamma: dict[str, MeanEstimate]


@dataclasses.dataclass(frozen=True)
class QuadrantShares:
    """Where one RM's reward vectors lie: the paper's θ changes meaning between these quadrants."""

    rm: str
    n: int
    both_positive: RateEstimate
    both_negative: RateEstimate
    """r(t_c) ≤ 0 and r(t_r) ≤ 0: the paper's θ has the opposite sign of the same turn here."""
    chosen_positive_only: RateEstimate
    rejected_positive_only: RateEstimate


@dataclasses.dataclass(frozen=True)
class ShiftResult:
    """θ summaries overall, per regime and per γ (§3): the default (offset-invariant) θ in
    ``overall`` / ``by_regime`` / ``by_gamma``, the paper's and the centred one beside it."""

    n: int
    overall: MeanEstimate
    by_regime: dict[str, MeanEstimate]
    by_gamma: dict[str, MeanEstimate]
    definition: str = THETA_DEFAULT
    """Which θ the three summaries above use (``margin``: see ``description``)."""
    description: str = THETA_DESCRIPTIONS[THETA_DEFAULT]
    sign_convention: str = "positive = towards alignment (the post-D RM prefers t_c more than the pre-D RM)"
    theta_paper: ThetaSummary | None = None
    """The paper's θ, offset-dependent: kept for comparison with the reference's numbers."""
    theta_centered: ThetaSummary | None = None
    quadrants: dict[str, QuadrantShares] = dataclasses.field(default_factory=dict)
    """Per role (``pre``, ``post``): share of pairs in each quadrant of the reward plane."""
    sign_disagreement: RateEstimate | None = None
    """Share of pairs where θ_paper and the default θ have opposite signs (both non-zero)."""
    margin_scales: dict[str, float] = dataclasses.field(default_factory=dict)
    """s per role: the SD of the RM's margins that the default θ divides by."""
    theta: FloatArray = dataclasses.field(default_factory=lambda: np.zeros(0), metadata=no_json(), repr=False)
    """Per-pair default θ."""
    theta_paper_values: FloatArray = dataclasses.field(
        default_factory=lambda: np.zeros(0), metadata=no_json(), repr=False
    )
    theta_centered_values: FloatArray = dataclasses.field(
        default_factory=lambda: np.zeros(0), metadata=no_json(), repr=False
    )


def _summaries(
    theta: FloatArray,
    regime: StrArray,
    gamma: StrArray | None,
    alpha: float,
    clusters: IntArray | None = None,
) -> ThetaSummary:
    def sub(m: BoolArray) -> IntArray | None:
        return clusters[m] if clusters is not None else None

    by_regime = {
        str(r): mean_estimate(theta[regime == r], alpha, sub(regime == r))
        for r in sorted(set(regime.tolist()))
    }
    by_gamma: dict[str, MeanEstimate] = {}
    if gamma is not None:
        for g in ("c", "i", "r"):
            m = gamma == g
            if m.any():
                by_gamma[g] = mean_estimate(theta[m], alpha, sub(m))
    return ThetaSummary(overall=mean_estimate(theta, alpha, clusters), by_regime=by_regime, by_gamma=by_gamma)


def shift_summary(
    theta: FloatArray, regime: StrArray, gamma: StrArray | None, *, alpha: float
) -> ShiftResult:
    """Summarise one per-pair θ for all pairs and within each regime and each γ value."""
    s = _summaries(theta, regime, gamma, alpha)
    return ShiftResult(
        n=int(theta.size), overall=s.overall, by_regime=s.by_regime, by_gamma=s.by_gamma, theta=theta
    )


def quadrant_shares(
    rm: str, rewards: FloatArray, alpha: float, clusters: IntArray | None = None
) -> QuadrantShares:
    """Counts of pairs per quadrant of (r(t_c), r(t_r)); zero counts as not positive."""
    c, r = rewards[:, 0] > 0, rewards[:, 1] > 0
    n = int(c.size)
    return QuadrantShares(
        rm=rm,
        n=n,
        both_positive=cluster_rate_estimate(c & r, alpha, clusters),
        both_negative=cluster_rate_estimate(~c & ~r, alpha, clusters),
        chosen_positive_only=cluster_rate_estimate(c & ~r, alpha, clusters),
        rejected_positive_only=cluster_rate_estimate(~c & r, alpha, clusters),
    )


def reward_shift_analysis(
    pre: FloatArray,
    post: FloatArray,
    regime: StrArray,
    gamma: StrArray | None,
    *,
    alpha: float,
    pre_name: str = "pre",
    post_name: str = "post",
    clusters: IntArray | None = None,
) -> ShiftResult:
    """Every θ variant with its summaries, the quadrant mix of both RMs and how often the paper's θ
    and the default θ disagree in sign (pre, post: (n, 2) rewards of the same pairs). ``clusters``
    (group codes): the mean and rate intervals cluster by group."""
    default = margin_shift(pre, post)
    paper = reward_shift(pre, post)
    centered = centered_shift(pre, post)
    d = _summaries(default, regime, gamma, alpha, clusters)
    opposite = (np.sign(paper) * np.sign(default)) < 0
    return ShiftResult(
        n=int(default.size),
        overall=d.overall,
        by_regime=d.by_regime,
        by_gamma=d.by_gamma,
        theta_paper=_summaries(paper, regime, gamma, alpha, clusters),
        theta_centered=_summaries(centered, regime, gamma, alpha, clusters),
        quadrants={
            "pre": quadrant_shares(pre_name, pre, alpha, clusters),
            "post": quadrant_shares(post_name, post, alpha, clusters),
        },
        sign_disagreement=cluster_rate_estimate(opposite, alpha, clusters),
        margin_scales={"pre": _margin_scale(pre), "post": _margin_scale(post)},
        theta=default,
        theta_paper_values=paper,
        theta_centered_values=centered,
    )
