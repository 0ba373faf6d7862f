"""Pair-once reliability: the RM's confidence in the response it prefers against how often the human
preferred that response.

The symmetric reliability table of :func:`seal_audit.stats.diagnostics.calibration` counts every
pair twice (p and 1 − p), so a bin of it is not a set of pairs one can look at. Folding it at
p = 0.5 gives the same picture once per pair: each pair sits at q = max(p, 1 − p) = σ(|margin|), the
probability the RM gives to the response it ranks higher, and the observed frequency is the share of
the bin whose higher-ranked response is the chosen one (the RM agrees with the human). Folded bin j
holds exactly the pairs of symmetric bins k/2 + j and its mirror, so the expected calibration error
is the symmetric one (same bin width). A tie (margin 0) sits at q = 0.5 and counts as a disagreement,
as agreement δ is strict everywhere in SEAL.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import special

from seal_audit.stats._common import FloatArray, IntArray
from seal_audit.stats.diagnostics import ReliabilityBin


@dataclasses.dataclass(frozen=True)
class WinnerReliability:
    """The folded (pair-once) reliability table of one RM."""

    rm: str
    n: int
    """Pairs with both rewards (every one is in exactly one bin)."""
    bins: tuple[ReliabilityBin, ...]
    """Bin j covers q in [lower, upper) (the last one includes 1); ``observed`` is the share of its
    pairs where the RM agrees with the human."""
    ece: float
    """Σ_bins (n_b / n) |mean q − observed|."""


def folded_bins(n_bins: int) -> int:
    """Bins over q ∈ [0.5, 1] that have the width of the ``n_bins`` symmetric bins over [0, 1]."""
    return max(1, n_bins // 2)


def winner_bin(margin: FloatArray, n_bins: int) -> IntArray:
    """Folded bin of every pair (−1 where the margin is missing), from unrounded margins."""
    k = folded_bins(n_bins)
    m = np.asarray(margin, dtype=float)
    ok = np.isfinite(m)
    q = special.expit(np.abs(np.where(ok, m, 0.0)))
    idx = np.minimum(np.floor((q - 0.5) * 2 * k).astype(np.int64), k - 1)
    idx = np.maximum(idx, 0)
    return np.where(ok, idx, -1).astype(np.int64)


def winner_reliability(rm: str, rewards: FloatArray, n_bins: int = 10) -> WinnerReliability:
    """The pair-once reliability table of ``rewards`` ((n, 2): chosen, rejected); pairs with a
    missing reward are left out (they are in no bin and not in ``n``)."""
    r = np.asarray(rewards, dtype=float)
    margin = r[:, 0] - r[:, 1]
    idx = winner_bin(margin, n_bins)
    ok = idx >= 0
    k = folded_bins(n_bins)
    q = special.expit(np.abs(margin[ok]))
    agree = (margin[ok] > 0).astype(float)
    cnt = np.bincount(idx[ok], minlength=k)
    sum_q = np.bincount(idx[ok], weights=q, minlength=k)
    sum_y = np.bincount(idx[ok], weights=agree, minlength=k)
    n = int(ok.sum())
    bins = []
    ece = 0.0
    for j in range(k):
        c = int(cnt[j])
        mq = float(sum_q[j] / c) if c else float("nan")
        ob = float(sum_y[j] / c) if c else float("nan")
        if c:
            ece += c / n * abs(mq - ob)
        bins.append(
            ReliabilityBin(
                bin=j,
                lower=0.5 + j / (2 * k),
                upper=0.5 + (j + 1) / (2 * k),
                n=c,
                mean_predicted=mq,
                observed=ob,
            )
        )
    return WinnerReliability(rm=rm, n=n, bins=tuple(bins), ece=float(ece))
