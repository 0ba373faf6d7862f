"""Reward vectors and the reward shift θ (SEAL-METHOD.md §3)."""

from __future__ import annotations

import dataclasses

import numpy as np

from seal_audit.stats._common import FloatArray, StrArray, no_json
from seal_audit.stats.inference import MeanEstimate, mean_estimate


def reward_shift(pre: FloatArray, post: FloatArray) -> FloatArray:
    """θ_i in degrees: the signed angle from u_i = (r0(t_c), r0(t_r)) to v_i = (r1(t_c), r1(t_r)) (§3),
    positive when v_i is turned towards the chosen axis, i.e. towards alignment.

    SEAL-METHOD.md calls θ counter-clockwise positive; its published signs (got aligned +18°,
    stayed +8°, resisted −8°, reversed −10°, overall mean +6.5°) hold only if the angle is measured
    with the rejected reward on the x-axis — in the (chosen, rejected) plane a turn towards alignment
    (below the diagonal) is clockwise. We follow the published numbers: θ = atan2(v × u, u · v),
    counter-clockwise positive in the (rejected, chosen) plane. Exact in every quadrant, never
    divides by a norm; a zero vector gives 0.
    """
    cross = pre[:, 1] * post[:, 0] - pre[:, 0] * post[:, 1]
    dot = pre[:, 0] * post[:, 0] + pre[:, 1] * post[:, 1]
    theta: FloatArray = np.degrees(np.arctan2(cross, dot))
    return theta


@dataclasses.dataclass(frozen=True)
class ShiftResult:
    """θ summaries overall, per regime and per γ (§3)."""

    n: int
    overall: MeanEstimate
    by_regime: dict[str, MeanEstimate]
    by_gamma: dict[str, MeanEstimate]
    theta: FloatArray = dataclasses.field(default_factory=lambda: np.zeros(0), metadata=no_json(), repr=False)


def shift_summary(
    theta: FloatArray, regime: StrArray, gamma: StrArray | None, *, alpha: float
) -> ShiftResult:
    """Summarise θ for all pairs and within each regime and each γ value."""
    by_regime = {str(r): mean_estimate(theta[regime == r], alpha) for r in sorted(set(regime.tolist()))}
    by_gamma: dict[str, MeanEstimate] = {}
    if gamma is not None:
        for g in ("c", "i", "r"):
            m = gamma == g
            if m.any():
                by_gamma[g] = mean_estimate(theta[m], alpha)
    return ShiftResult(
        n=int(theta.size),
        overall=mean_estimate(theta, alpha),
        by_regime=by_regime,
        by_gamma=by_gamma,
        theta=theta,
    )
