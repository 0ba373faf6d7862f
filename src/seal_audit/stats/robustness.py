"""Alignment robustness (SEAL-METHOD.md §5): does rewriting a text flip the post-D RM's verdict?"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
from scipy import stats as sps

from seal_audit.data.errors import SealError
from seal_audit.data.records import FeatureKind
from seal_audit.stats._common import BoolArray, Exclusions, FloatArray, IntArray, Skipped
from seal_audit.stats.inference import (
    Correction,
    McNemarResult,
    RateEstimate,
    bootstrap_cells,
    clustered_mean_variance,
    design_effect,
    has_clusters,
    mcnemar_exact,
    percentile_interval,
    rate_estimate,
    rng_for,
)
from seal_audit.stats.power import LOGIT_EFFECT_OF_INTEREST, POWER, with_power
from seal_audit.stats.regression import RegressionResult, clustered_ols, ols, robust_logit

SIDE_NAMES = ("chosen", "rejected")

ROBUSTNESS_MIN_PAIRS = 100
"""Below this many usable rewritten pairs a transform's robustness is 'inconclusive': with ~30
spoiler indicators the LPM has fewer than ~3 pairs per parameter, and a flip-rate interval spans
more than ±10 points."""
ROBUSTNESS_MIN_EVENTS = 10
"""... or when fewer pairs than this became misaligned (M_i = 1): the LPM has nothing to explain."""
ROBUSTNESS_MIN_INDICATOR_PAIRS = 5
"""... or when no indicator is set for at least this many pairs (no score is estimable)."""


@dataclasses.dataclass(frozen=True)
class DriftGate:
    """Bookkeeping of the rewrites of one transform: how many exist, failed, drifted (§5)."""

    n_pairs_with_rewrites: int
    n_rows: int
    n_ok: int
    n_rejected: int
    n_failed: int
    n_drifted: int
    mean_similarity: float
    """Mean embedding cosine similarity of ok rewrites (reference ≈ 0.96); NaN without similarities."""
    exclude_drifted: bool
    n_pairs_excluded: int
    """Pairs left out because a side's rewrite failed, was rejected or (if excluded) drifted."""


@dataclasses.dataclass(frozen=True)
class AccuracyChange:
    """Agreement of one RM on original vs rewritten texts of the same pairs (paired)."""

    rm: str
    n: int
    agreement_original: RateEstimate
    agreement_rewritten: RateEstimate
    drop: float
    """agreement_original − agreement_rewritten (reference r1: 73.2% → 70.1%)."""
    drop_ci_low: float
    """Paired Wald interval of the drop; the bootstrap percentile interval is beside it."""
    drop_ci_high: float
    drop_boot_ci_low: float
    drop_boot_ci_high: float
    mcnemar: McNemarResult
    became_misaligned: RateEstimate
    """Share of pairs with δ(original) = 1 and δ(rewritten) = 0: the outcome M_i."""
    became_aligned: RateEstimate
    flipped: RateEstimate
    drop_exact_ci_low: float = float("nan")
    """Exact (conservative) interval of the drop: Clopper–Pearson intervals of the two discordant
    cells at level α/2 each, combined (U_b − L_c ≥ drop ≥ L_b − U_c); never zero-width for n > 0."""
    drop_exact_ci_high: float = float("nan")


@dataclasses.dataclass(frozen=True)
class IndicatorCount:
    """How many pairs have a given change indicator set (a score is only meaningful if > 0)."""

    term: str
    feature: str
    side: str
    direction: str
    """D+ = the feature got weaker (Δ = original − rewritten > 0), D− = it got stronger."""
    n: int


@dataclasses.dataclass(frozen=True)
class RobustnessResult:
    """Robustness of the post-D RM to one rewrite transform (§5)."""

    transform: str
    kind: str
    """What kind of test this is: ``paraphrase`` (the reference's test: meaning kept, wording
    changed), ``directed`` (an LM rewrite meant to move a feature), ``controlled`` (a deterministic
    edit), or ``unknown`` when the rewrites table does not say. Paraphrase and directed rewrites answer
    different questions and are never pooled."""
    rm: str
    n: int
    drift: DriftGate | None
    accuracy: tuple[AccuracyChange, ...]
    indicators: tuple[IndicatorCount, ...]
    lpm: RegressionResult | Skipped
    """Robustness scores π: LPM of M_i on all D+/D− indicators, HC3 robust SEs (an indicator is often
    set for only a few dozen rewritten pairs, where HC0/HC1 understate the SE)."""
    logit: RegressionResult | Skipped
    """The same regression as a logit (HC0 robust SEs; odds ratios), as the paper reads them."""
    exclusions: Exclusions
    numeric_tolerances: dict[str, float]
    """For numeric features: the |Δ| beyond which a change counts (tolerance_sd × SD of originals)."""
    status: str = "ok"
    """``ok`` or ``inconclusive`` (``robustness_status``): too few pairs, events or indicator
    changes, or a degenerate design; the numbers are still given, ``reasons`` says why not to read
    them as a robustness verdict."""
    reasons: tuple[str, ...] = ()


def change_indicators(
    original: FloatArray, rewritten: FloatArray, kind: FeatureKind, tolerance: float = 0.0
) -> tuple[BoolArray, BoolArray]:
    """D+ and D− for one feature, (n, 2) each (§5). Binary/ordinal: sign of Δ = original − rewritten
    (for a binary feature Δ ∈ {−1, 0, 1}, so this is exactly 1[Δ = ±1]; an ordinal jump of two levels
    also counts). Numeric: Δ beyond ±tolerance, so that rounding noise is not a 'change'."""
    d = original - rewritten
    tol = tolerance if kind == "numeric" else 0.0
    return d > tol, d < -tol


def accuracy_change(
    rm: str,
    original: FloatArray,
    rewritten: FloatArray,
    *,
    alpha: float,
    n_bootstrap: int,
    seed: int,
    transform: str,
    clusters: IntArray | None = None,
) -> AccuracyChange:
    """Paired agreement before/after rewriting, flip rates and the exact McNemar test. With
    ``clusters`` (group codes of the rewritten pairs, some shared) the bootstrap resamples groups,
    the drop's normal interval uses the CR1 variance and the exact ones Korn–Graubard's."""
    a = original[:, 0] > original[:, 1]
    b = rewritten[:, 0] > rewritten[:, 1]
    n = int(a.size)
    code = np.where(a, np.where(b, 0, 1), np.where(b, 2, 3)).astype(np.int64)
    cells = np.bincount(code, minlength=4).astype(np.int64)
    grouped = has_clusters(clusters)
    cl = clusters if grouped else None
    boot = bootstrap_cells(code, 4, n_bootstrap, rng_for(seed, f"robustness:{transform}:{rm}"), cl)
    drop = (cells[1] - cells[2]) / n if n else float("nan")
    if n and grouped:
        var, _g = clustered_mean_variance((code == 1).astype(np.float64) - (code == 2), cl)
        half = float(sps.norm.ppf(1 - alpha / 2)) * float(np.sqrt(max(var, 0.0)))
    elif n:
        var = ((cells[1] + cells[2]) / n - drop**2) / n
        half = float(sps.norm.ppf(1 - alpha / 2)) * float(np.sqrt(max(var, 0.0)))
    else:
        half = float("nan")
    tot = boot.sum(axis=1) if boot.size else np.zeros(0)
    if boot.size:
        bd = (boot[:, 1] - boot[:, 2]) / tot
        blo, bhi = percentile_interval(bd.astype(np.float64), alpha)
    else:
        blo = bhi = float("nan")

    def rate(cols: tuple[int, ...], level: float = alpha, with_boot: bool = True) -> RateEstimate:
        """The share of the cells ``cols``: exact (Korn–Graubard when grouped) and bootstrap."""
        ind = np.isin(code, cols)
        k = int(cells[list(cols)].sum())
        draws = boot[:, list(cols)].sum(axis=1) / tot if (boot.size and with_boot) else None
        if not grouped:
            return rate_estimate(k, n, level, draws)
        d, g = design_effect(ind, cl)
        return rate_estimate(k, n, level, draws, deff=d, n_clusters=g)

    b_mis, c_al = rate((1,), alpha / 2, False), rate((2,), alpha / 2, False)
    lb, ub, lc, uc = b_mis.ci_low, b_mis.ci_high, c_al.ci_low, c_al.ci_high
    return AccuracyChange(
        rm=rm,
        n=n,
        agreement_original=rate((0, 1)),
        agreement_rewritten=rate((0, 2)),
        drop=float(drop),
        drop_ci_low=float(drop - half),
        drop_ci_high=float(drop + half),
        drop_boot_ci_low=blo,
        drop_boot_ci_high=bhi,
        mcnemar=mcnemar_exact("original", "rewritten", a, b),
        became_misaligned=rate((1,)),
        became_aligned=rate((2,)),
        flipped=rate((1, 2)),
        drop_exact_ci_low=float(lb - uc),
        drop_exact_ci_high=float(ub - lc),
    )


def robustness_scores(
    post_original: FloatArray,
    post_rewritten: FloatArray,
    spoilers: Mapping[str, tuple[FloatArray, FloatArray, FeatureKind, float]],
    *,
    correction: Correction,
    alpha: float,
    max_iter: int = 100,
    effect_of_interest: float | None = None,
    power: float = POWER,
    clusters: IntArray | None = None,
) -> tuple[RegressionResult | Skipped, RegressionResult | Skipped, tuple[IndicatorCount, ...]]:
    """Regress M_i = 1[δ(original) = 1 and δ(rewritten) = 0] on every D+/D− indicator of every
    spoiler feature on both sides (§5). Indicators that never fire are dropped and named. With
    ``clusters`` in which rewritten pairs share a group, the LPM's SEs are group-clustered (CR2, CR1
    where CR2 is undefined) instead of HC3, and the logit's CR1."""
    m = ((post_original[:, 0] > post_original[:, 1]) & ~(post_rewritten[:, 0] > post_rewritten[:, 1])).astype(
        np.float64
    )
    cols: list[np.ndarray] = []
    terms: list[str] = []
    counts: list[IndicatorCount] = []
    for name in sorted(spoilers):
        orig, rew, kind, tol = spoilers[name]
        dp, dm = change_indicators(orig, rew, kind, tol)
        for s, side in enumerate(SIDE_NAMES):
            for direction, ind in (("D+", dp), ("D-", dm)):
                term = f"{side}:{name}:{direction}"
                cols.append(ind[:, s].astype(np.float64))
                terms.append(term)
                counts.append(
                    IndicatorCount(
                        term=term, feature=name, side=side, direction=direction, n=int(ind[:, s].sum())
                    )
                )
    if not cols:
        skip = Skipped(reason="no spoiler features labeled on both original and rewritten texts")
        return skip, skip, ()
    x = np.column_stack(cols)
    grouped = has_clusters(clusters)
    groups = np.asarray(clusters, dtype=np.int64) if grouped else None
    lpm = _robust_lpm(m, x, terms, correction=correction, alpha=alpha, groups=groups)
    lg = robust_logit(
        m,
        x,
        terms,
        correction=correction,
        alpha=alpha,
        max_iter=max_iter,
        context="robustness logit",
        groups=groups,
    )
    lpm = with_power(lpm, effect_of_interest, power)
    lg = with_power(lg, LOGIT_EFFECT_OF_INTEREST if effect_of_interest is not None else None, power)
    return lpm, lg, tuple(counts)


def _robust_lpm(
    m: FloatArray,
    x: FloatArray,
    terms: list[str],
    *,
    correction: Correction,
    alpha: float,
    groups: IntArray | None = None,
) -> RegressionResult | Skipped:
    """The robustness LPM with HC3 SEs. An indicator set for a single pair gives that pair leverage
    1, where HC3 (and HC2) are undefined and HC0/HC1 give the term a zero SE: such indicators are
    dropped and named. If some leverage is still 1 (a combination of indicators isolates a pair),
    the fit falls back to HC1 with a note instead of failing."""
    single = [t for j, t in enumerate(terms) if int(np.count_nonzero(x[:, j])) == 1]
    notes: list[str] = []
    if single:
        keep = [j for j, t in enumerate(terms) if t not in single]
        x = x[:, keep]
        terms = [terms[j] for j in keep]
        notes.append(f"indicator(s) set for a single pair dropped (score not estimable): {single}")
    if groups is not None:
        try:
            fit = clustered_ols(
                m,
                x,
                terms,
                groups,
                intercept=True,
                cov_type="auto",
                correction=correction,
                alpha=alpha,
                drop_constant=True,
                context="robustness LPM",
            )
        except SealError as exc:
            return Skipped(reason=str(exc), status="failed", features=getattr(exc, "features", ()))
        fit = dataclasses.replace(fit, notes=(*notes, *fit.notes))
        if single:
            fit = dataclasses.replace(fit, dropped_terms=(*fit.dropped_terms, *single))
        return fit
    try:
        fit = ols(
            m,
            x,
            terms,
            cov_type="HC3",
            correction=correction,
            alpha=alpha,
            drop_constant=True,
            context="robustness LPM",
            notes=tuple(notes),
        )
    except SealError as exc:
        if "leverage 1" not in str(exc):
            return Skipped(reason=str(exc), status="failed", features=getattr(exc, "features", ()))
        notes.append(
            f"HC3 undefined ({exc}); HC1 SEs used instead, which understate the SE of rare indicators"
        )
        try:
            fit = ols(
                m,
                x,
                terms,
                cov_type="HC1",
                correction=correction,
                alpha=alpha,
                drop_constant=True,
                context="robustness LPM",
                notes=tuple(notes),
            )
        except SealError as exc2:
            return Skipped(reason=str(exc2), status="failed", features=getattr(exc2, "features", ()))
    if single:
        fit = dataclasses.replace(fit, dropped_terms=(*fit.dropped_terms, *single))
    return fit


def robustness_status(
    n_pairs: int,
    n_became_misaligned: int,
    lpm: RegressionResult | Skipped,
    indicators: tuple[IndicatorCount, ...],
    *,
    min_pairs: int = ROBUSTNESS_MIN_PAIRS,
    min_events: int = ROBUSTNESS_MIN_EVENTS,
    min_indicator_pairs: int = ROBUSTNESS_MIN_INDICATOR_PAIRS,
) -> tuple[str, tuple[str, ...]]:
    """``ok`` or ``inconclusive`` with every reason, so that a transform with a handful of usable
    rewrites or a degenerate design reads as 'cannot tell', never as 'robust'."""
    reasons: list[str] = []
    if n_pairs < min_pairs:
        reasons.append(f"only {n_pairs} usable rewritten pairs (< {min_pairs})")
    if n_became_misaligned < min_events:
        reasons.append(f"only {n_became_misaligned} pairs became misaligned (< {min_events})")
    if indicators and max(c.n for c in indicators) < min_indicator_pairs:
        reasons.append(f"no spoiler change indicator is set for {min_indicator_pairs} or more pairs")
    if isinstance(lpm, Skipped):
        reasons.append(f"robustness LPM not estimable: {lpm.skipped}")
    else:
        reasons.extend(f"LPM: {note}" for note in lpm.notes if "HC3 undefined" in note)
    return ("inconclusive" if reasons else "ok"), tuple(reasons)
