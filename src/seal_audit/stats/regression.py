"""Least squares and logit with the standard errors SEAL needs, checked against statsmodels in tests.

Why our own code rather than statsmodels: statsmodels is a dev-only dependency, and the reference's
main failure was that the intended pair-clustered standard errors were never applied. Here the
covariance is an explicit argument whose name is written into every output.

Covariances (n rows, k regressors, G clusters, bread B = (X'X)^-1, residuals u):

- ``nonrobust``: s² B with s² = u'u / (n − k); t(n − k) p-values.
- ``HC0`` / ``HC1``: B X' diag(u²) X B, HC1 multiplied by n / (n − k); normal p-values.
- ``HC3``: u_i² replaced by u_i² / (1 − h_ii)², the leverage-corrected form that keeps its
  coverage when an indicator is set for only a few dozen rows (robustness scores on a 1% rewrite
  sample); normal p-values.
- ``cluster``: B (Σ_g X_g'u_g u_g'X_g) B × G/(G − 1) × (n − 1)/(n − k), i.e. statsmodels'
  ``cov_type="cluster"`` with its default small-sample correction; normal p-values, as statsmodels.
  With one row per cluster this equals HC1 exactly (G = n), which is what the pair fixed-effects
  estimator (one difference row per pair) uses.
- ``CR2``: the Bell–McCaffrey bias-reduced cluster-robust covariance, B (Σ_g X_g'A_g u_g u_g'A_g X_g) B
  with A_g = (I − H_gg)^(-1/2), H_gg = X_g B X_g' (no further factor; with one row per cluster it is
  HC2). p-values and intervals use t with the Bell–McCaffrey Satterthwaite degrees of freedom of each
  coefficient (working model: independent homoskedastic errors), which is what keeps the coverage of
  a rare feature's coefficient near nominal when only a few dozen clusters carry it.
  ``choose_cluster_cov`` picks CR2 over ``cluster`` below ``CR2_MAX_CLUSTERS`` clusters or when a
  regressor varies in fewer than ``CR2_MIN_FEATURE_CLUSTERS`` clusters.

Every fit also carries the interval that matches its verdict (``ci_low_adjusted`` /
``ci_high_adjusted``): with ``correction = bonferroni`` the simultaneous Bonferroni interval (per-term
level α/m over the m non-intercept terms), which excludes 0 exactly when ``significant``; with
``holm`` the Holm step-down intervals (the term rejected at step j at level α/(m − j + 1), every
non-rejected term at the level of the first non-rejected step), which exclude 0 exactly when Holm
rejects. ``adjusted_ci`` names which one it is.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
from scipy import linalg as sla
from scipy import special
from scipy import stats as sps

from seal_audit.data.errors import SealError
from seal_audit.stats._common import BoolArray, FloatArray, IntArray, Skipped, no_json
from seal_audit.stats.inference import Correction, adjust_pvalues

CovType = Literal["nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster", "CR2"]
ClusterCov = Literal["auto", "cluster", "CR2"]
INTERCEPT = "intercept"

CR2_MAX_CLUSTERS = 1000
"""Below this many clusters the clustered fits use CR2 with Bell–McCaffrey df (``choose_cluster_cov``)."""
_CR2_CHUNK_ROWS = 32768
"""Rows of equal-size clusters processed at once by ``_cr2_design`` (keeps its temporaries at a few
tens of MB whatever N and cluster size)."""
CR2_MIN_FEATURE_CLUSTERS = 200
"""... and also when some regressor differs from its most common value in fewer clusters than this
(a 3–5 % prevalence feature at a few thousand pairs): the CR1 ``cluster`` SE of such a coefficient
rests on a few dozen clusters and is biased down."""


_MEMO: contextvars.ContextVar[dict[Hashable, Any] | None] = contextvars.ContextVar(
    "design_memo", default=None
)
_T = TypeVar("_T")


def _digest(*arrays: Any) -> bytes:
    """A content key of arrays (shape, dtype and bytes): equal keys mean equal designs."""
    h = hashlib.sha1(usedforsecurity=False)
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        arr = np.ascontiguousarray(a)
        h.update(f"{arr.dtype.str}{arr.shape};".encode())
        h.update(arr.reshape(-1).view(np.uint8).data)
    return h.digest()


@contextlib.contextmanager
def design_memo() -> Iterator[None]:
    """Within this block, what depends only on a regression's design is computed once per design.

    Issue 20: every RM of a run is regressed on the same features, so with ten RMs the design checks,
    the Cholesky factor, the CR2 adjustment matrices and the Bell–McCaffrey df would otherwise be
    recomputed ten times although only the outcome changes. ``analyze`` opens one block per call;
    the memo is dropped at its end, so nothing is kept between analyses. Keys are the content of the
    inputs, so a hit returns exactly what the computation would.
    """
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def _memo(key_of: Callable[[], Hashable], make: Callable[[], _T]) -> _T:
    """``make()``, remembered under the key ``key_of()`` inside a ``design_memo`` block (outside one,
    computed every time and no key is built)."""
    memo = _MEMO.get()
    if memo is None:
        return make()
    key = key_of()
    if key not in memo:
        memo[key] = make()
    out: _T = memo[key]
    return out


def _readonly(*arrays: FloatArray) -> None:
    """Memoised arrays are shared between calls: nobody may write to them."""
    for a in arrays:
        a.setflags(write=False)


class CollinearityError(SealError):
    """Regressors are constant or perfectly collinear; the message names them, ``features`` lists them."""

    def __init__(self, message: str, features: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.features = tuple(features)


class SeparationError(SealError):
    """A logit has no finite maximum-likelihood estimate (perfect or quasi-complete separation)."""


@dataclasses.dataclass(frozen=True)
class Coefficient:
    """One regression coefficient with its inference (raw and family-wise corrected p-values)."""

    term: str
    estimate: float
    se: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    p_bonferroni: float
    """Bonferroni over the regression's non-intercept terms (NaN for the intercept)."""
    p_holm: float
    """Holm step-down over the same family."""
    significant: bool
    """Corrected p-value (the result's ``correction``) below alpha."""
    odds_ratio: float | None = None
    """exp(estimate), logit only."""
    odds_ratio_ci_low: float | None = None
    odds_ratio_ci_high: float | None = None
    ci_low_adjusted: float = float("nan")
    """The interval that matches ``significant`` (see the result's ``adjusted_ci``); NaN for the
    intercept, which is not in the corrected family."""
    ci_high_adjusted: float = float("nan")
    df: float | None = None
    """Degrees of freedom of the t reference (CR2: Bell–McCaffrey; nonrobust: n − k); None = normal."""
    mde: float | None = None
    """Minimum detectable effect at the result's ``power`` and per-term level ``mde_alpha`` (|β|
    detected with that probability), in the coefficient's units; set by ``power.with_power``."""
    verdict: str | None = None
    """``significant``, ``not significant`` (MDE ≤ the effect of interest: an effect that size would
    likely have been seen), ``underpowered`` (MDE > the effect of interest: absence not shown), or
    None without a stated effect of interest (``power.with_power``)."""


@dataclasses.dataclass(frozen=True, eq=False)
class RegressionResult:
    """A fitted linear or logit model: coefficients, the covariance used, and what was dropped."""

    model: Literal["ols", "logit"]
    cov_type: CovType
    n_obs: int
    n_clusters: int | None
    n_params: int
    correction: Correction
    alpha: float
    coefficients: tuple[Coefficient, ...]
    dropped_terms: tuple[str, ...] = ()
    """Regressors dropped before fitting because they never vary (named, never silent)."""
    r_squared: float | None = None
    log_likelihood: float | None = None
    iterations: int | None = None
    family_size: int = 0
    """m: the non-intercept terms the correction runs over."""
    adjusted_ci: str = ""
    """What ``ci_low_adjusted`` / ``ci_high_adjusted`` are, in words (method, family size, levels)."""
    notes: tuple[str, ...] = ()
    """Plain-language notes on the fit: covariance choice and fallbacks (e.g. HC3 undefined)."""
    power: float | None = None
    """Power at which ``mde`` is computed (``power.with_power``; None before)."""
    mde_alpha: float | None = None
    """Per-term two-sided level of the MDE: the level that decides ``significant`` (α/m)."""
    effect_of_interest: float | None = None
    """The stated effect size that separates ``underpowered`` from ``not significant``."""
    term_effects: dict[str, float] = dataclasses.field(default_factory=dict, metadata=no_json())
    """Per-term effects of interest that override ``effect_of_interest`` (numeric regressors per SD),
    kept so that a verdict can be redone when the correction family changes (``stats.family``)."""
    params: FloatArray = dataclasses.field(default_factory=lambda: np.zeros(0), metadata=no_json())
    cov: FloatArray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)), metadata=no_json())

    def coefficient(self, term: str) -> Coefficient:
        """The coefficient named ``term`` (KeyError naming the known terms otherwise)."""
        for c in self.coefficients:
            if c.term == term:
                return c
        raise KeyError(f"no term {term!r}; terms: {[c.term for c in self.coefficients]}")


def check_design(
    x: FloatArray, names: Sequence[str], *, intercept: bool, drop_constant: bool, context: str
) -> tuple[FloatArray, tuple[str, ...], tuple[str, ...]]:
    """Find constant and perfectly collinear regressors before fitting.

    Returns the (possibly reduced) matrix, the kept names and the dropped names. Constant columns
    (all-zero when there is no intercept) are dropped when ``drop_constant`` and otherwise raise;
    perfectly collinear groups always raise, naming every column of the group, because silently
    dropping one of them would change what the other coefficients mean.
    """
    kept: tuple[str, ...] = tuple(names)
    if x.shape[1] != len(kept):
        raise ValueError("column names do not match the design matrix")
    finite = np.asarray(np.isfinite(x).all(axis=0), dtype=bool)
    if not finite.all():
        nonfinite = [n for n, ok in zip(kept, finite.tolist(), strict=True) if not ok]
        raise SealError(f"{context}: non-finite values in regressor(s) {nonfinite}")
    if x.shape[0] == 0:
        raise SealError(f"{context}: no rows to fit")
    const = np.asarray(np.ptp(x, axis=0) == 0 if intercept else np.all(x == 0, axis=0), dtype=bool)
    dropped: tuple[str, ...] = ()
    if const.any():
        bad = tuple(n for n, c in zip(kept, const.tolist(), strict=True) if c)
        if not drop_constant:
            what = "constant" if intercept else "all-zero (no within-pair variation)"
            raise CollinearityError(
                f"{context}: {what} feature(s) {list(bad)}; drop them from the regression "
                "(FeatureSpec.in_regression = false) or check the labels",
                bad,
            )
        dropped = bad
        x = x[:, ~const]
        kept = tuple(n for n, c in zip(kept, const.tolist(), strict=True) if not c)
    if x.shape[1] == 0:
        return x, kept, dropped
    full = np.column_stack([np.ones(x.shape[0]), x]) if intercept else x
    full_names = (INTERCEPT, *kept) if intercept else kept
    gram = full.T @ full
    norms = np.sqrt(np.diag(gram))
    evals, evecs = np.linalg.eigh(gram / np.outer(norms, norms))
    tol = 1e-10 * max(float(evals.max()), 1.0)
    null = evals < tol
    if null.any():
        groups: list[list[str]] = []
        for j in np.flatnonzero(null):
            v = evecs[:, j]
            members = [full_names[i] for i in np.flatnonzero(np.abs(v) > 1e-6)]
            if members not in groups:
                groups.append(members)
        raise CollinearityError(
            f"{context}: perfectly collinear regressors: "
            + "; ".join(" ~ ".join(g) for g in groups)
            + ". Drop one of each group from the regression (FeatureSpec.in_regression = false)",
            [n for g in groups for n in g],
        )
    return x, kept, dropped


def _checked_copy(
    x: FloatArray, names: Sequence[str], intercept: bool, drop_constant: bool, context: str
) -> tuple[FloatArray, tuple[str, ...], tuple[str, ...]]:
    """``check_design`` on a private, read-only copy (the memo must not hold the caller's array)."""
    xc, kept, dropped = check_design(
        np.array(x), names, intercept=intercept, drop_constant=drop_constant, context=context
    )
    _readonly(xc)
    return xc, kept, dropped


def adjusted_levels(p: FloatArray, family: BoolArray, correction: Correction, alpha: float) -> FloatArray:
    """Per-term two-sided levels of the intervals that match the corrected verdicts (NaN off-family).

    Bonferroni: α/m for every term. Holm: the term rejected at step j (1-based, p ascending) gets
    α/(m − j + 1); every term Holm does not reject gets the level of the first step that failed, so
    its interval contains 0 (its p is at least that step's p, which failed its threshold).
    """
    out = np.full(p.shape, np.nan)
    ok = family & np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return out
    if correction == "bonferroni":
        out[ok] = alpha / m
        return out
    idx = np.flatnonzero(ok)
    order = idx[np.argsort(p[idx], kind="stable")]
    thresholds = alpha / (m - np.arange(m))
    failed = np.flatnonzero(p[order] >= thresholds)
    stop = int(failed[0]) if failed.size else m
    out[order[:stop]] = thresholds[:stop]
    if stop < m:
        out[order[stop:]] = thresholds[stop]
    return out


def adjusted_label(correction: Correction, alpha: float, m: int, scope: str = "") -> str:
    """What the adjusted intervals are, in words; ``scope`` names a family wider than one regression."""
    terms = f"the {m} non-intercept terms{scope}"
    if correction == "bonferroni":
        return (
            f"Bonferroni simultaneous {1 - alpha:.0%} intervals over {terms} "
            f"(each at level {1 - alpha / max(m, 1):.4%}); they exclude 0 exactly when 'significant'"
        )
    return (
        f"Holm step-down intervals over {terms} (term rejected at step j at "
        f"level 1 - {alpha:g}/(m - j + 1); non-rejected terms at the level of the first failed step); "
        "they exclude 0 exactly when 'significant'"
    )


def crit_values(level: FloatArray, df: FloatArray | None) -> FloatArray:
    """Two-sided critical values at per-term levels (t with per-term df where given, else normal)."""
    with np.errstate(invalid="ignore"):
        if df is None:
            c: FloatArray = -special.ndtri(level / 2)  # = sps.norm.isf, bit for bit, without its checks
        else:
            c = np.where(
                np.isfinite(df), -special.stdtrit(np.where(np.isfinite(df), df, 1.0), level / 2), np.nan
            )
    return c


def _finish(
    *,
    model: Literal["ols", "logit"],
    names: tuple[str, ...],
    beta: FloatArray,
    cov: FloatArray,
    cov_type: CovType,
    n: int,
    n_clusters: int | None,
    df_resid: float | FloatArray | None,
    correction: Correction,
    alpha: float,
    dropped: tuple[str, ...],
    r_squared: float | None = None,
    log_likelihood: float | None = None,
    iterations: int | None = None,
    notes: tuple[str, ...] = (),
) -> RegressionResult:
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    k = len(names)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = beta / se
    df_arr: FloatArray | None = None
    if df_resid is not None:
        df_arr = np.broadcast_to(np.asarray(df_resid, dtype=np.float64), (k,)).copy()
        p = 2 * sps.t.sf(np.abs(stat), df_arr)
    else:
        p = 2 * sps.norm.sf(np.abs(stat))
    crit = crit_values(np.full(k, alpha), df_arr)
    family = np.array([t != INTERCEPT for t in names])
    p_family = np.where(family, p, np.nan)
    p_bonf = adjust_pvalues(p_family, "bonferroni")
    p_holm = adjust_pvalues(p_family, "holm")
    chosen = p_bonf if correction == "bonferroni" else p_holm
    levels = adjusted_levels(p_family, family, correction, alpha)
    crit_adj = crit_values(np.where(np.isfinite(levels), levels, 0.5), df_arr)
    m = int((family & np.isfinite(p)).sum())
    label = adjusted_label(correction, alpha, m)
    coefs = []
    for i, term in enumerate(names):
        lo, hi = float(beta[i] - crit[i] * se[i]), float(beta[i] + crit[i] * se[i])
        odds: tuple[float | None, float | None, float | None] = (None, None, None)
        if model == "logit":
            with np.errstate(over="ignore"):
                odds = (float(np.exp(beta[i])), float(np.exp(lo)), float(np.exp(hi)))
        if np.isfinite(levels[i]):
            alo, ahi = float(beta[i] - crit_adj[i] * se[i]), float(beta[i] + crit_adj[i] * se[i])
        else:
            alo = ahi = float("nan")
        coefs.append(
            Coefficient(
                term=term,
                estimate=float(beta[i]),
                se=float(se[i]),
                statistic=float(stat[i]),
                p_value=float(p[i]),
                ci_low=lo,
                ci_high=hi,
                p_bonferroni=float(p_bonf[i]),
                p_holm=float(p_holm[i]),
                significant=bool(np.isfinite(chosen[i]) and chosen[i] < alpha),
                ci_low_adjusted=alo,
                ci_high_adjusted=ahi,
                df=float(df_arr[i]) if df_arr is not None else None,
                odds_ratio=odds[0],
                odds_ratio_ci_low=odds[1],
                odds_ratio_ci_high=odds[2],
            )
        )
    return RegressionResult(
        model=model,
        cov_type=cov_type,
        n_obs=n,
        n_clusters=n_clusters,
        n_params=len(names),
        correction=correction,
        alpha=alpha,
        coefficients=tuple(coefs),
        dropped_terms=dropped,
        r_squared=r_squared,
        log_likelihood=log_likelihood,
        iterations=iterations,
        family_size=m,
        adjusted_ci=label,
        notes=notes,
        params=beta,
        cov=cov,
    )


def _cluster_sums(scores: FloatArray, groups: IntArray) -> FloatArray:
    """Per-cluster column sums of the score matrix (clusters need not be contiguous)."""
    if groups.size > 1 and bool(np.all(groups[1:] >= groups[:-1])):
        g, s = groups, scores  # already sorted (the stacked-texts layout): no copy
    else:
        order = np.argsort(groups, kind="stable")
        g, s = groups[order], scores[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    if starts.size == g.size:
        return s
    sums: FloatArray = np.add.reduceat(s, starts, axis=0)
    return sums


def _sandwich(
    bread: FloatArray, scores: FloatArray, cov_type: CovType, n: int, k: int, groups: IntArray | None
) -> tuple[FloatArray, int | None]:
    if cov_type == "cluster":
        if groups is None:
            raise ValueError("cluster covariance needs groups")
        sums = _cluster_sums(scores, groups)
        g = sums.shape[0]
        if g < 2:
            raise SealError("clustered standard errors need at least two clusters")
        meat = sums.T @ sums
        factor = g / (g - 1) * (n - 1) / (n - k)
        cov: FloatArray = bread @ meat @ bread * factor
        return cov, g
    meat = scores.T @ scores
    factor = n / (n - k) if cov_type == "HC1" else 1.0
    cov = bread @ meat @ bread * factor
    return cov, None


@dataclasses.dataclass(frozen=True, eq=False)
class _CR2Design:
    """What CR2 needs from the design alone: the clusters' rows, their adjustment matrices A_g in
    low-rank form and the Bell–McCaffrey df (the outcome enters only through the meat, ``_cr2``)."""

    order: IntArray
    blocks: tuple[tuple[IntArray, FloatArray, FloatArray], ...]
    """Per block of equal-size clusters: row indices (into the rows sorted by ``order``), U_g and c_g
    with A_g = I + U_g diag(c_g) U_g' (``_cr2_design``)."""
    df: FloatArray
    n_groups: int


def _adjust(u: FloatArray, c: FloatArray, v: FloatArray) -> FloatArray:
    """A_g v for a batch of clusters, A_g = I + U diag(c) U' (U: (G, s, m), c: (G, m), v: (G, s, j))."""
    out: FloatArray = v + u @ (c[:, :, None] * (u.transpose(0, 2, 1) @ v))
    return out


def _cr2_design(
    full: FloatArray, bread: FloatArray, groups: IntArray, context: str
) -> _CR2Design | SealError:
    """The outcome-free part of ``_cr2``, or the error that makes CR2 undefined (returned so that a
    memoised design remembers it too).

    A_g = (I − H_gg)^(-1/2) with H_gg = X_g B X_g' of rank m ≤ min(s_g, k): with the thin QR
    X_g = Q R and R B R' = V diag(λ) V', H_gg = U diag(λ) U' for the orthonormal U = Q V, so
    A_g = I + U diag((1 − λ)^(-1/2) − 1) U' exactly. That costs O(s_g k²) per cluster instead of the
    O(s_g³) eigendecomposition of the s_g × s_g matrix, which made CR2 superlinear in N when clusters
    are large (hundreds of pairs per prompt), and A_g is never formed.

    For coefficient j write a_g = A_g X_g B e_j (cluster g's rows) and G the n × G matrix whose
    column g is M a_g, M = I − X B X'. Under independent homoskedastic errors the CR2 variance is
    σ² Σ λ χ²_1 with λ the eigenvalues of G'G, so df = (tr G'G)² / tr((G'G)²). Since
    G'G = diag(d) − E'BE with d_g = |a_g|², E_g = X_g' a_g, both traces come from per-cluster sums
    and one k × k matrix per coefficient, O(G k³) without ever forming the G × G matrix.
    """
    k = full.shape[1]
    order = np.argsort(groups, kind="stable")
    gs = groups[order]
    starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
    sizes = np.diff(np.r_[starts, gs.size])
    n_groups = int(starts.size)
    if n_groups < 2:
        return SealError("clustered standard errors need at least two clusters")
    x = full[order]
    outer = np.zeros((k, k, k))
    sum_d = np.zeros(k)
    sum_d2 = np.zeros(k)
    sum_dq = np.zeros(k)
    sum_q = np.zeros(k)
    blocks: list[tuple[IntArray, FloatArray, FloatArray]] = []
    for size in np.unique(sizes).tolist():
        all_starts = starts[sizes == size]
        chunk = max(1, _CR2_CHUNK_ROWS // size)
        for c0 in range(0, all_starts.size, chunk):  # O(chunk rows × k) temporaries per step
            rows = all_starts[c0 : c0 + chunk][:, None] + np.arange(size)[None, :]
            xg = x[rows]  # (G_s, s, k)
            q, r = np.linalg.qr(xg)  # (G_s, s, m), (G_s, m, k)
            lam, v = np.linalg.eigh(r @ bread @ r.transpose(0, 2, 1))
            if np.any(1 - lam <= 1e-10):
                return SealError(
                    f"{context}: a cluster has leverage 1 (a regressor set in a single cluster); "
                    "CR2 is undefined"
                )
            u = q @ v
            c = (1 - lam) ** -0.5 - 1
            blocks.append((rows, u, c))
            xb = xg @ bread
            axb = _adjust(u, c, xb)  # column j: a_g of coefficient j
            d = np.einsum("gsj,gsj->gj", axb, axb)
            ee = xg.transpose(0, 2, 1) @ axb  # (G_s, k, k): ee[g, :, j] = X_g' a_g of coefficient j
            qq = np.einsum("gaj,gaj->gj", ee, bread @ ee)
            eet = ee.transpose(2, 0, 1)  # (k_j, G_s, k)
            outer += eet.transpose(0, 2, 1) @ eet
            sum_d += d.sum(axis=0)
            sum_d2 += (d * d).sum(axis=0)
            sum_dq += (d * qq).sum(axis=0)
            sum_q += qq.sum(axis=0)
    bp = np.einsum("ab,jbc->jac", bread, outer)
    tr1 = sum_d - sum_q
    tr2 = sum_d2 - 2 * sum_dq + np.einsum("jab,jba->j", bp, bp)
    with np.errstate(divide="ignore", invalid="ignore"):
        df: FloatArray = np.where(tr2 > 0, tr1 * tr1 / tr2, np.nan)
    return _CR2Design(order=order, blocks=tuple(blocks), df=df, n_groups=n_groups)


def _cr2(
    design: _CR2Design, full: FloatArray, bread: FloatArray, resid: FloatArray
) -> tuple[FloatArray, FloatArray, int]:
    """CR2 covariance B (Σ_g X_g'A_g u_g u_g'A_g X_g) B and the Bell–McCaffrey df of every coefficient."""
    k = bread.shape[0]
    x, u = full[design.order], resid[design.order]
    meat = np.zeros((k, k))
    for rows, ug, c in design.blocks:
        xg = x[rows]
        au = _adjust(ug, c, u[rows][:, :, None])
        e = (xg.transpose(0, 2, 1) @ au)[:, :, 0]
        meat += e.T @ e
    cov: FloatArray = bread @ meat @ bread
    return cov, design.df, design.n_groups


def choose_cluster_cov(
    x: FloatArray, names: Sequence[str], groups: IntArray, requested: ClusterCov = "auto"
) -> tuple[CovType, tuple[str, ...]]:
    """Which cluster-robust covariance a clustered fit uses, and a note saying why.

    ``auto``: CR2 (Bell–McCaffrey) below ``CR2_MAX_CLUSTERS`` clusters, or when some regressor
    differs from its most common value in fewer than ``CR2_MIN_FEATURE_CLUSTERS`` clusters (the
    clusters that identify its coefficient); otherwise CR1 (``cluster``, statsmodels' default),
    whose small-sample bias is negligible there. ``cluster`` / ``CR2`` force one.
    """
    if requested != "auto":
        return requested, (f"cluster covariance {requested} (requested)",)
    return _memo(
        lambda: ("choose_cluster_cov", _digest(x, groups), tuple(names)),
        lambda: _choose_auto(x, names, groups),
    )


def _choose_auto(x: FloatArray, names: Sequence[str], groups: IntArray) -> tuple[CovType, tuple[str, ...]]:
    n_groups = int(np.unique(groups).size)
    fewest, fewest_name = n_groups, ""
    for j, name in enumerate(names):
        col = x[:, j]
        vals, counts = np.unique(col, return_counts=True)
        off = col != vals[int(np.argmax(counts))]
        c = int(np.unique(groups[off]).size)
        if c < fewest:
            fewest, fewest_name = c, str(name)
    if n_groups < CR2_MAX_CLUSTERS:
        return "CR2", (f"CR2 with Bell-McCaffrey df: {n_groups} clusters < {CR2_MAX_CLUSTERS}",)
    if fewest < CR2_MIN_FEATURE_CLUSTERS:
        return "CR2", (
            f"CR2 with Bell-McCaffrey df: regressor {fewest_name!r} varies in only {fewest} clusters "
            f"(< {CR2_MIN_FEATURE_CLUSTERS})",
        )
    return "cluster", (
        f"CR1 cluster covariance: {n_groups} clusters, every regressor varies in >= {fewest} clusters",
    )


@dataclasses.dataclass(frozen=True, eq=False)
class _OLSDesign:
    """An OLS design after ``check_design``, with its Cholesky factor and bread (X'X)^-1."""

    full: FloatArray
    terms: tuple[str, ...]
    dropped: tuple[str, ...]
    factor: tuple[FloatArray, bool]
    bread: FloatArray
    n: int
    k: int


def _ols_design(
    x: FloatArray, names: Sequence[str], intercept: bool, drop_constant: bool, context: str
) -> _OLSDesign:
    x, kept, dropped = check_design(
        x, names, intercept=intercept, drop_constant=drop_constant, context=context
    )
    full = np.column_stack([np.ones(x.shape[0]), x]) if intercept else np.array(x)
    terms = (INTERCEPT, *kept) if intercept else kept
    n, k = full.shape
    if n <= k:
        raise SealError(f"{context}: {n} rows for {k} parameters")
    # Normal equations with a Cholesky factor: check_design has ruled out (near-)singular designs,
    # and X'X is k × k, so this is several times faster than a QR of the n × k matrix at the same
    # accuracy for SEAL designs (agreement with statsmodels' pinv to ~1e-12 in the tests).
    factor = sla.cho_factor(full.T @ full)
    bread: FloatArray = sla.cho_solve(factor, np.eye(k))
    _readonly(full, bread, factor[0])
    return _OLSDesign(full, terms, dropped, factor, bread, n, k)


def ols(
    y: FloatArray,
    x: FloatArray,
    names: Sequence[str],
    *,
    intercept: bool = True,
    cov_type: CovType = "HC1",
    groups: IntArray | None = None,
    correction: Correction = "bonferroni",
    alpha: float = 0.05,
    drop_constant: bool = False,
    context: str = "regression",
    notes: tuple[str, ...] = (),
) -> RegressionResult:
    """Ordinary least squares via QR with the named covariance (see module docstring)."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64).reshape(len(y), -1)
    if not np.isfinite(y).all():
        raise SealError(f"{context}: non-finite outcome values")
    memo_on = _MEMO.get() is not None
    dkey = ("ols", _digest(x), tuple(names), intercept, drop_constant, context) if memo_on else None
    d = _memo(lambda: dkey, lambda: _ols_design(x, names, intercept, drop_constant, context))
    full, terms, dropped, bread, n, k = d.full, d.terms, d.dropped, d.bread, d.n, d.k
    beta: FloatArray = sla.cho_solve(d.factor, full.T @ y)
    resid = y - full @ beta
    df_resid: float | FloatArray | None = None
    n_clusters: int | None = None
    if cov_type == "nonrobust":
        cov = bread * float(resid @ resid) / (n - k)
        df_resid = float(n - k)
    elif cov_type in ("HC2", "HC3"):
        lev = _memo(lambda: (dkey, "leverage"), lambda: np.einsum("ij,jk,ik->i", full, bread, full))
        if np.any(lev >= 1 - 1e-10):
            raise SealError(
                f"{context}: a row has leverage 1 (an indicator set for a single pair); {cov_type} is undefined"
            )
        scale = 1 - lev if cov_type == "HC3" else np.sqrt(1 - lev)
        cov, n_clusters = _sandwich(bread, full * (resid / scale)[:, None], "HC0", n, k, groups)
    elif cov_type == "CR2":
        if groups is None:
            raise ValueError("CR2 covariance needs groups")
        g = np.asarray(groups, dtype=np.int64)
        cr2 = _memo(lambda: (dkey, "CR2", _digest(g)), lambda: _cr2_design(full, bread, g, context))
        if isinstance(cr2, SealError):
            raise SealError(str(cr2))
        cov, df_resid, n_clusters = _cr2(cr2, full, bread, resid)
    else:
        cov, n_clusters = _sandwich(bread, full * resid[:, None], cov_type, n, k, groups)
    centered = y - y.mean() if intercept else y
    tss = float(centered @ centered)
    r2 = 1 - float(resid @ resid) / tss if tss > 0 else float("nan")
    return _finish(
        model="ols",
        names=terms,
        beta=beta,
        cov=cov,
        cov_type=cov_type,
        n=n,
        n_clusters=n_clusters,
        df_resid=df_resid,
        correction=correction,
        alpha=alpha,
        dropped=dropped,
        r_squared=r2,
        notes=notes,
    )


def clustered_ols(
    y: FloatArray,
    x: FloatArray,
    names: Sequence[str],
    groups: IntArray,
    *,
    intercept: bool,
    cov_type: ClusterCov,
    correction: Correction,
    alpha: float,
    context: str,
    drop_constant: bool = True,
) -> RegressionResult:
    """OLS with the cluster covariance ``choose_cluster_cov`` picks (or ``cov_type``). CR2 is
    undefined when a cluster has leverage 1 (a feature set in a single pair or group); the fit then
    falls back to CR1 with a note rather than failing, and that feature's SE is not to be trusted
    (the note names the cause)."""
    cov, notes = choose_cluster_cov(x, names, groups, cov_type)

    def fit(cov: CovType, notes: tuple[str, ...]) -> RegressionResult:
        return ols(
            y,
            x,
            names,
            intercept=intercept,
            cov_type=cov,
            groups=groups,
            correction=correction,
            alpha=alpha,
            context=context,
            notes=notes,
            drop_constant=drop_constant,
        )

    if cov != "CR2":
        return fit(cov, notes)
    try:
        return fit("CR2", notes)
    except SealError as exc:
        if "leverage 1" not in str(exc):
            raise
        return fit("cluster", (*notes, f"CR2 undefined ({exc}); CR1 cluster SEs used instead"))


def _separating_columns(y: FloatArray, x: FloatArray, names: Sequence[str]) -> list[str]:
    """Binary regressors whose 'on' rows all share one outcome: the usual cause of separation."""
    out = []
    for j, name in enumerate(names):
        col = x[:, j]
        vals = np.unique(col)
        if vals.size == 2:
            for v in vals:
                yy = y[col == v]
                if yy.size and (yy.min() == yy.max()):
                    out.append(f"{name}={v:g} (outcome always {yy[0]:g}, {yy.size} rows)")
    return out


def _separation_message(context: str, culprits: Sequence[str]) -> str:
    hint = f"; separating regressor(s): {list(culprits)}" if culprits else ""
    return (
        f"{context}: no finite maximum-likelihood estimate (perfect or quasi-complete "
        f"separation){hint}. Use the LPM coefficients instead"
    )


def logit(
    y: FloatArray,
    x: FloatArray,
    names: Sequence[str],
    *,
    intercept: bool = True,
    cov_type: CovType = "nonrobust",
    correction: Correction = "bonferroni",
    alpha: float = 0.05,
    drop_constant: bool = False,
    max_iter: int = 100,
    tol: float = 1e-10,
    context: str = "logit",
    groups: IntArray | None = None,
) -> RegressionResult:
    """Binary logit by Newton–Raphson (= IRLS); model-based, sandwich (HC0/HC1) or cluster-robust
    (``cluster`` with ``groups``) covariance.

    Separation has no finite MLE: rather than report a huge coefficient with a meaningless SE, it
    raises SeparationError naming the regressors that predict the outcome perfectly.
    """
    y = np.asarray(y, dtype=np.float64)
    if not np.isin(y, (0.0, 1.0)).all():
        raise SealError(f"{context}: outcome must be 0/1")
    if y.min() == y.max():
        raise SeparationError(f"{context}: the outcome is always {y[0]:g}; a logit cannot be fitted")
    x = np.asarray(x, dtype=np.float64).reshape(len(y), -1)
    x, kept, dropped = _memo(
        lambda: ("logit", _digest(x), tuple(names), intercept, drop_constant, context),
        lambda: _checked_copy(x, names, intercept, drop_constant, context),
    )
    culprits = _separating_columns(y, x, kept) if intercept else []
    if culprits:
        # A binary regressor one of whose values always has the same outcome: with an intercept the
        # likelihood rises without bound along that value's indicator, so Newton could only run
        # until |β| > 30 and end in this same error (issue 20: ~30 wasted steps per RM and transform).
        raise SeparationError(_separation_message(context, culprits))
    full = np.column_stack([np.ones(len(y)), x]) if intercept else x
    terms = (INTERCEPT, *kept) if intercept else kept
    n, k = full.shape
    beta = np.zeros(k)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        eta = full @ beta
        p = special.expit(eta)
        w = p * (1 - p)
        grad = full.T @ (y - p)
        hess = full.T @ (full * w[:, None])
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        beta = beta + step
        if np.max(np.abs(step)) < tol * (1 + np.max(np.abs(beta))):
            converged = True
            break
        if np.max(np.abs(beta)) > 30:  # issue 20: diverging (separation, raised below); under
            break  # separation |β| grows ~1 per Newton step, so this saves ~70 of 100 iterations
    eta = full @ beta
    if not converged or np.max(np.abs(eta)) > 30 or np.max(np.abs(beta)) > 30:
        raise SeparationError(_separation_message(context, _separating_columns(y, x, kept)))
    p = special.expit(eta)
    w = p * (1 - p)
    bread = np.linalg.inv(full.T @ (full * w[:, None]))
    if cov_type == "nonrobust":
        cov = bread
        n_clusters = None
    else:
        cov, n_clusters = _sandwich(bread, full * (y - p)[:, None], cov_type, n, k, groups)
    ll = float(np.sum(y * np.log(p) + (1 - y) * np.log1p(-p)))
    return _finish(
        model="logit",
        names=terms,
        beta=beta,
        cov=cov,
        cov_type=cov_type,
        n=n,
        n_clusters=n_clusters,
        df_resid=None,
        correction=correction,
        alpha=alpha,
        dropped=dropped,
        log_likelihood=ll,
        iterations=it,
    )


@dataclasses.dataclass(frozen=True)
class VifRow:
    """Variance inflation factor of one regressor: how much collinearity widens its CI (as variance)."""

    term: str
    vif: float


def vif(x: FloatArray, names: Sequence[str]) -> tuple[VifRow, ...]:
    """VIF_j = 1 / (1 − R²_j) of regressor j on the others with an intercept = diag of the inverse
    correlation matrix (equals statsmodels' ``variance_inflation_factor`` with a constant column)."""
    if x.shape[1] == 0:
        return ()
    varies = np.ptp(x, axis=0) > 0 if x.shape[0] else np.zeros(x.shape[1], dtype=bool)
    vals = np.full(x.shape[1], np.nan)  # a constant column has no VIF (it is left out of the fits)
    k = int(varies.sum())
    if k == 1:
        vals[varies] = 1.0
    elif k > 1:
        corr = np.corrcoef(x[:, varies], rowvar=False)
        try:
            vals[varies] = np.diag(np.linalg.inv(corr))
        except np.linalg.LinAlgError:
            vals[varies] = np.inf
    if x.shape[1] == 1 and k == 1:
        return (VifRow(term=names[0], vif=1.0),)
    return tuple(VifRow(term=n, vif=float(v)) for n, v in zip(names, vals, strict=True))


def robust_logit(
    y: FloatArray,
    x: FloatArray,
    names: Sequence[str],
    *,
    correction: Correction,
    alpha: float,
    max_iter: int,
    context: str,
    groups: IntArray | None = None,
) -> RegressionResult | Skipped:
    """The logit companion of an LPM (HC0 sandwich SEs, constant regressors dropped, as statsmodels
    fits it; CR1 cluster-robust SEs with ``groups``); separation or a singular design is reported as
    skipped with the reason, because the LPM next to it stays valid and is the primary estimate."""
    try:
        return logit(
            y,
            x,
            names,
            cov_type="HC0" if groups is None else "cluster",
            groups=groups,
            correction=correction,
            alpha=alpha,
            drop_constant=True,
            max_iter=max_iter,
            context=context,
        )
    except SealError as exc:
        return Skipped(reason=str(exc), status="failed", features=getattr(exc, "features", ()))
