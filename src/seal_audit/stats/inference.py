"""Inference primitives: exact binomial CIs, the vectorised bootstrap, exact McNemar, p-value correction.

The bootstrap here never re-samples rows. Every bootstrapped SEAL quantity (agreement, resistance,
regime shares, γ shares, flip rates) is a function of the counts of a few categorical cells, and
re-sampling N rows with replacement gives cell counts that are exactly Multinomial(N, observed
shares). Drawing those counts directly is the same bootstrap distribution at O(B × cells) cost
instead of O(B × N), which is what keeps 1,000 draws over 160,800 pairs far under a second.

Clustered data (several pairs of one prompt, ``AnalysisOptions.cluster``): the bootstrap resamples
whole groups. A group enters the cell counts only through its own vector of cell counts (its
*pattern*), so resampling G groups with replacement draws the number of groups of each pattern from
Multinomial(G, pattern shares) — the same trick one level up, exact, and identical to the pair
bootstrap when every group is one pair. The exact intervals become Korn–Graubard intervals:
Clopper–Pearson at the effective sample size n / deff (deff = clustered over independent-pairs
variance of the rate, never below 1, with the t(n − 1)/t(G − 1) degrees-of-freedom adjustment).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import special
from scipy import stats as sps

from seal_audit.stats._common import BoolArray, FloatArray, IntArray

Correction = Literal["bonferroni", "holm"]


@dataclasses.dataclass(frozen=True)
class RateEstimate:
    """A proportion k/n with its exact (Clopper–Pearson) and bootstrap percentile intervals."""

    k: int
    n: int
    rate: float
    ci_low: float
    """Clopper–Pearson lower bound at level 1 − alpha (exact, conservative)."""
    ci_high: float
    boot_ci_low: float
    """Percentile bootstrap lower bound (NaN when the bootstrap is off)."""
    boot_ci_high: float
    design_effect: float = 1.0
    """Variance of the rate with clustered pairs over its variance with independent pairs (at least
    1; 1 under pair clustering). The exact interval is Clopper–Pearson at n / design_effect
    (Korn–Graubard)."""


@dataclasses.dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test between two paired agreement indicators (SEAL-METHOD.md §3)."""

    a: str
    b: str
    n: int
    both: int
    only_a: int
    """Pairs where indicator ``a`` is 1 and ``b`` is 0 (discordant)."""
    only_b: int
    neither: int
    p_value: float
    """Two-sided exact binomial p-value on the discordant pairs (statsmodels ``mcnemar(exact=True)``)."""


@dataclasses.dataclass(frozen=True)
class MeanEstimate:
    """Mean, median and spread of a continuous per-pair quantity (e.g. the reward shift θ)."""

    n: int
    mean: float
    median: float
    sd: float
    ci_low: float
    """t-interval for the mean at level 1 − alpha."""
    ci_high: float


def rng_for(seed: int, name: str) -> np.random.Generator:
    """A generator keyed by (seed, analysis name), so one analysis' draws never depend on which other
    analyses ran before it (adding an analysis cannot change an existing number)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def _beta_quantile(q: float, a: float, b: float) -> float:
    """The Beta(a, b) quantile: the ufunc ``scipy.stats.beta.ppf`` evaluates (bit-identical), without
    its per-call argument checks, which dominated the cost of the hundreds of exact intervals of a
    many-RM analysis (issue 20)."""
    return float(special.betaincinv(a, b, q))


def clopper_pearson(k: int, n: int, alpha: float) -> tuple[float, float]:
    """Exact binomial interval; (NaN, NaN) when n == 0."""
    if n == 0:
        return (float("nan"), float("nan"))
    lo = 0.0 if k == 0 else _beta_quantile(alpha / 2, k, n - k + 1)
    hi = 1.0 if k == n else _beta_quantile(1 - alpha / 2, k + 1, n - k)
    return (lo, hi)


def bootstrap_cell_counts(counts: IntArray, n_boot: int, rng: np.random.Generator) -> IntArray:
    """B bootstrap replicates of categorical cell counts: rows of Multinomial(N, counts / N)."""
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    if n_boot <= 0 or n == 0:
        return np.zeros((0, counts.size), dtype=np.int64)
    draws: IntArray = rng.multinomial(n, counts / n, size=n_boot).astype(np.int64)
    return draws


def percentile_interval(draws: FloatArray, alpha: float) -> tuple[float, float]:
    """Percentile interval of bootstrap draws, ignoring NaN draws (empty subgroups).

    When every draw is equal (a rate of 0/n or n/n, a drop with no discordant pair) the percentile
    interval would be zero-width, which no reader should take as certainty: it is then undefined
    (NaN, null in stats.json) and the exact interval beside it is the one to read."""
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    if lo == hi:
        return (float("nan"), float("nan"))
    return (float(lo), float(hi))


def has_clusters(clusters: IntArray | None) -> bool:
    """Whether ``clusters`` (a cluster code per row) groups some rows together; None or all
    singletons mean independent rows, for which every function here gives the pair-level answer."""
    return clusters is not None and int(np.unique(clusters).size) < int(np.asarray(clusters).size)


def cluster_index(clusters: IntArray) -> tuple[IntArray, int]:
    """Codes 0..G−1 of arbitrary cluster labels, and G."""
    uniq, inv = np.unique(np.asarray(clusters), return_inverse=True)
    return np.asarray(inv, dtype=np.int64).reshape(-1), int(uniq.size)


def clustered_mean_variance(
    y: FloatArray, clusters: IntArray | None, n_clusters: int | None = None
) -> tuple[float, int]:
    """Variance of the mean of ``y`` with the CR1 sandwich over clusters,
    G/(G − 1) Σ_g (Σ_{i∈g} (y_i − ȳ))² / n², and G. With one row per cluster this is s²/n.
    ``n_clusters`` given: ``clusters`` are already codes 0..G−1."""
    y = np.asarray(y, dtype=np.float64)
    n = int(y.size)
    if n < 2:
        return float("nan"), n
    dev = y - y.mean()
    if clusters is None:
        return float(dev @ dev) / (n - 1) / n, n
    codes, g = (np.asarray(clusters), n_clusters) if n_clusters is not None else cluster_index(clusters)
    if g < 2:
        return float("nan"), g
    sums = np.bincount(codes, weights=dev, minlength=g)
    return g / (g - 1) * float(sums @ sums) / n**2, g


def design_effect(y: BoolArray, clusters: IntArray | None) -> tuple[float, int]:
    """deff of a rate (clustered over binomial variance, floored at 1) and the number of clusters."""
    yf: FloatArray = np.asarray(y, dtype=np.float64)
    n = int(yf.size)
    if clusters is None or n < 2:
        return 1.0, n
    codes, g = cluster_index(clusters)
    if g >= n:  # every cluster one pair
        return 1.0, n
    var_c, g = clustered_mean_variance(yf, codes, g)
    p = float(yf.mean())
    var_srs = p * (1 - p) / n
    if var_srs <= 0 or not np.isfinite(var_c):
        return 1.0, g
    return max(1.0, var_c / var_srs), g


def clopper_pearson_clustered(
    k: int, n: int, alpha: float, deff: float, n_clusters: int
) -> tuple[float, float]:
    """Korn–Graubard interval: Clopper–Pearson at the effective size n* = n / deff × (t_{n−1}/t_{G−1})²
    (capped at n), with k* = (k/n) n*. Equals Clopper–Pearson when deff = 1 and G = n."""
    if n == 0:
        return (float("nan"), float("nan"))
    n_eff = n / max(deff, 1.0)
    if 1 < n_clusters < n:
        # -stdtrit(df, q) is sps.t.isf(q, df) bit for bit, without the per-call argument checks
        t_n, t_g = -special.stdtrit(n - 1, alpha / 2), -special.stdtrit(n_clusters - 1, alpha / 2)
        n_eff *= (float(t_n) / float(t_g)) ** 2
    n_eff = min(float(n), n_eff)
    if n_eff >= n:
        return clopper_pearson(k, n, alpha)
    k_eff = k / n * n_eff
    lo = 0.0 if k == 0 else _beta_quantile(alpha / 2, k_eff, n_eff - k_eff + 1)
    hi = 1.0 if k == n else _beta_quantile(1 - alpha / 2, k_eff + 1, n_eff - k_eff)
    return (lo, hi)


def bootstrap_cells(
    cells: IntArray, n_cells: int, n_boot: int, rng: np.random.Generator, clusters: IntArray | None = None
) -> IntArray:
    """B bootstrap replicates of the counts of ``n_cells`` categorical cells (``cells``: the cell of
    each row). Independent rows: ``bootstrap_cell_counts`` of the counts. With ``clusters``, whole
    clusters are resampled: the number of clusters of each distinct count vector (pattern) is drawn
    from Multinomial(G, pattern shares), and the replicate is the patterns weighted by those numbers
    (the row total then varies between replicates: divide by each row's sum for a rate)."""
    cells = np.asarray(cells, dtype=np.int64)
    if not has_clusters(clusters):
        return bootstrap_cell_counts(np.bincount(cells, minlength=n_cells), n_boot, rng)
    assert clusters is not None
    codes, g = cluster_index(clusters)
    if n_boot <= 0 or cells.size == 0:
        return np.zeros((0, n_cells), dtype=np.int64)
    per = np.bincount(codes * n_cells + cells, minlength=g * n_cells).reshape(g, n_cells)
    patterns, freq = np.unique(per, axis=0, return_counts=True)
    out = np.empty((n_boot, n_cells), dtype=np.int64)
    chunk = max(1, 4_000_000 // max(1, patterns.shape[0]))  # bounded memory: chunk × patterns ints
    for b0 in range(0, n_boot, chunk):
        m = min(chunk, n_boot - b0)
        draws = rng.multinomial(g, freq / g, size=m)
        out[b0 : b0 + m] = draws @ patterns
    return out


def cluster_rate_estimate(
    y: BoolArray, alpha: float, clusters: IntArray | None = None, boot_rates: FloatArray | None = None
) -> RateEstimate:
    """The rate of indicator ``y``: exact interval (Korn–Graubard with ``clusters``), bootstrap draws
    as given, and the design effect."""
    y = np.asarray(y, dtype=bool)
    deff, g = design_effect(y, clusters)
    return rate_estimate(int(y.sum()), int(y.size), alpha, boot_rates, deff=deff, n_clusters=g)


def rate_estimate(
    k: int,
    n: int,
    alpha: float,
    boot_rates: FloatArray | None = None,
    *,
    deff: float = 1.0,
    n_clusters: int | None = None,
) -> RateEstimate:
    """Assemble a RateEstimate from a count, its exact CI and (optionally) bootstrap draws of the rate;
    with a design effect the exact CI is Korn–Graubard's (``clopper_pearson_clustered``)."""
    if deff == 1.0 and (n_clusters is None or n_clusters >= n):
        lo, hi = clopper_pearson(k, n, alpha)
    else:
        lo, hi = clopper_pearson_clustered(k, n, alpha, deff, n if n_clusters is None else n_clusters)
    blo, bhi = (
        percentile_interval(boot_rates, alpha)
        if boot_rates is not None and boot_rates.size
        else (float("nan"), float("nan"))
    )
    return RateEstimate(
        k=int(k),
        n=int(n),
        rate=k / n if n else float("nan"),
        ci_low=lo,
        ci_high=hi,
        boot_ci_low=blo,
        boot_ci_high=bhi,
        design_effect=float(deff),
    )


def complement(r: RateEstimate) -> RateEstimate:
    """1 − rate with the intervals mirrored: resistance is the complement of post-D agreement."""
    return RateEstimate(
        k=r.n - r.k,
        n=r.n,
        rate=1 - r.rate,
        ci_low=1 - r.ci_high,
        ci_high=1 - r.ci_low,
        boot_ci_low=1 - r.boot_ci_high,
        boot_ci_high=1 - r.boot_ci_low,
        design_effect=r.design_effect,
    )


def mcnemar_exact(a_name: str, b_name: str, a: np.ndarray, b: np.ndarray) -> McNemarResult:
    """Exact McNemar test (SEAL-METHOD.md §3): binomial test of the discordant pairs at p = 1/2."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(~a & b))
    m = only_a + only_b
    p = 1.0 if m == 0 else min(1.0, 2.0 * float(sps.binom.cdf(min(only_a, only_b), m, 0.5)))
    return McNemarResult(
        a=a_name,
        b=b_name,
        n=int(a.size),
        both=int(np.sum(a & b)),
        only_a=only_a,
        only_b=only_b,
        neither=int(np.sum(~a & ~b)),
        p_value=p,
    )


def adjust_pvalues(p: Sequence[float] | FloatArray, method: Correction) -> FloatArray:
    """Family-wise correction over one regression's coefficients (NaN p-values are left out)."""
    pv = np.asarray(p, dtype=np.float64)
    out = np.full(pv.shape, np.nan)
    ok = np.isfinite(pv)
    m = int(ok.sum())
    if m == 0:
        return out
    q = pv[ok]
    if method == "bonferroni":
        out[ok] = np.minimum(q * m, 1.0)
        return out
    if method == "holm":
        order = np.argsort(q, kind="stable")
        stepped = (m - np.arange(m)) * q[order]
        adj = np.minimum(np.maximum.accumulate(stepped), 1.0)
        res = np.empty(m)
        res[order] = adj
        out[ok] = res
        return out
    raise ValueError(f"unknown correction {method!r}")


def mean_estimate(x: FloatArray, alpha: float, clusters: IntArray | None = None) -> MeanEstimate:
    """Mean with a t-interval, median and SD of a continuous per-pair quantity; with ``clusters``
    (some shared) the interval uses the CR1 variance of the mean and t(G − 1)."""
    ok = np.isfinite(x)
    if clusters is not None and has_clusters(clusters[ok]):
        xs = x[ok]
        var, g = clustered_mean_variance(xs, clusters[ok])
        base = mean_estimate(xs, alpha)
        if not (np.isfinite(var) and g >= 2):
            return dataclasses.replace(base, ci_low=float("nan"), ci_high=float("nan"))
        half = float(sps.t.ppf(1 - alpha / 2, g - 1)) * float(np.sqrt(var))
        return dataclasses.replace(base, ci_low=base.mean - half, ci_high=base.mean + half)
    x = x[ok]
    n = int(x.size)
    if n == 0:
        nan = float("nan")
        return MeanEstimate(n=0, mean=nan, median=nan, sd=nan, ci_low=nan, ci_high=nan)
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if n > 1 else float("nan")
    if n > 1:
        half = float(sps.t.ppf(1 - alpha / 2, n - 1)) * sd / np.sqrt(n)
        lo, hi = mean - half, mean + half
    else:
        lo = hi = float("nan")
    return MeanEstimate(n=n, mean=mean, median=float(np.median(x)), sd=sd, ci_low=lo, ci_high=hi)
