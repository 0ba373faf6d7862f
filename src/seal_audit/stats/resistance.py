"""Alignment resistance (SEAL-METHOD.md §3): agreement, regimes, LM agreement γ, McNemar tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from seal_audit.stats._common import BoolArray, FloatArray, IntArray, StrArray, no_json
from seal_audit.stats.inference import (
    McNemarResult,
    RateEstimate,
    bootstrap_cells,
    cluster_rate_estimate,
    complement,
    design_effect,
    mcnemar_exact,
    rate_estimate,
    rng_for,
)

REGIMES: tuple[str, ...] = ("stayed_aligned", "got_aligned", "resisted_alignment", "reversed_alignment")
"""Regime names in the order of §3: (r0, r1) agreement = (1,1), (0,1), (0,0), (1,0)."""
GAMMAS: tuple[str, ...] = ("c", "i", "r")


@dataclasses.dataclass(frozen=True)
class AgreementResult:
    """Agreement δ of one RM with the human label (§3): strict >, so a tie counts as a failure."""

    rm: str
    is_baseline: bool
    n: int
    n_agree: int
    n_ties: int
    """Pairs with r(t_c) == r(t_r): counted as disagreement, reported because they are not errors of
    direction (typical of length baselines)."""
    agreement: RateEstimate
    delta: BoolArray = dataclasses.field(
        default_factory=lambda: np.zeros(0, bool), metadata=no_json(), repr=False
    )
    """Per-pair δ over the pairs used (not in JSON)."""


def boot_shares(draws: IntArray) -> FloatArray | None:
    """Bootstrap cell counts → shares per replicate (row totals vary when groups are resampled)."""
    if not draws.size:
        return None
    tot = draws.sum(axis=1, keepdims=True).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = draws / tot
    return out


def agreement(
    rm: str,
    rewards: FloatArray,
    *,
    alpha: float,
    n_bootstrap: int,
    seed: int,
    is_baseline: bool = False,
    clusters: IntArray | None = None,
) -> AgreementResult:
    """δ_i(R) = 1[R(t_c) > R(t_r)] and its rate over pairs with both rewards (§3).

    ``rewards`` is (n, 2) with no NaN (the caller excludes pairs with a missing side). ``clusters``
    (a group code per pair) makes the exact interval Korn–Graubard's and the bootstrap resample
    groups; None treats pairs as independent.
    """
    delta = rewards[:, 0] > rewards[:, 1]
    ties = int(np.sum(rewards[:, 0] == rewards[:, 1]))
    k, n = int(delta.sum()), int(delta.size)
    draws = bootstrap_cells(
        (~delta).astype(np.int64), 2, n_bootstrap, rng_for(seed, f"agreement:{rm}"), clusters
    )
    shares = boot_shares(draws)
    return AgreementResult(
        rm=rm,
        is_baseline=is_baseline,
        n=n,
        n_agree=k,
        n_ties=ties,
        agreement=cluster_rate_estimate(delta, alpha, clusters, shares[:, 0] if shares is not None else None),
        delta=delta,
    )


def resistance(post: AgreementResult) -> RateEstimate:
    """Alignment resistance = 1 − agreement of the post-D RM (§3), intervals mirrored."""
    return complement(post.agreement)


@dataclasses.dataclass(frozen=True)
class RegimeResult:
    """The four regimes pre-D → post-D (§3) with shares, exact and bootstrap CIs."""

    n: int
    counts: dict[str, int]
    shares: dict[str, RateEstimate]
    agreement_pre: float
    """stayed + reversed: pairs r0 gets right."""
    agreement_post: float
    """stayed + got: pairs r1 gets right."""
    resistance: float
    """1 − agreement_post = resisted + reversed."""


def regime_codes(delta_pre: BoolArray, delta_post: BoolArray) -> IntArray:
    """Regime index per pair in ``REGIMES`` order."""
    codes = np.empty(delta_pre.size, dtype=np.int64)
    codes[delta_pre & delta_post] = 0
    codes[~delta_pre & delta_post] = 1
    codes[~delta_pre & ~delta_post] = 2
    codes[delta_pre & ~delta_post] = 3
    return codes


def regimes_from_counts(
    counts: Sequence[int],
    *,
    alpha: float = 0.05,
    boot: IntArray | None = None,
    deffs: Sequence[float] | None = None,
    n_clusters: int | None = None,
) -> RegimeResult:
    """Regimes from their four counts (in ``REGIMES`` order); also reproduces published shares.
    ``deffs`` (per regime) and ``n_clusters`` give the clustered exact intervals."""
    c = np.asarray(counts, dtype=np.int64)
    n = int(c.sum())
    shares = {}
    bs = boot_shares(boot) if boot is not None else None
    for j, name in enumerate(REGIMES):
        b = bs[:, j] if bs is not None else None
        d = float(deffs[j]) if deffs is not None else 1.0
        shares[name] = rate_estimate(int(c[j]), n, alpha, b, deff=d, n_clusters=n_clusters)
    return RegimeResult(
        n=n,
        counts={name: int(c[j]) for j, name in enumerate(REGIMES)},
        shares=shares,
        agreement_pre=(c[0] + c[3]) / n if n else float("nan"),
        agreement_post=(c[0] + c[1]) / n if n else float("nan"),
        resistance=(c[2] + c[3]) / n if n else float("nan"),
    )


def regimes(
    delta_pre: BoolArray,
    delta_post: BoolArray,
    *,
    alpha: float,
    n_bootstrap: int,
    seed: int,
    clusters: IntArray | None = None,
) -> RegimeResult:
    """Cross the pre-D and post-D agreement indicators into the four regimes of §3 (``clusters``:
    group-clustered intervals and a group bootstrap, as in ``agreement``)."""
    codes = regime_codes(delta_pre, delta_post)
    counts = np.bincount(codes, minlength=4)
    boot = bootstrap_cells(codes, 4, n_bootstrap, rng_for(seed, "regimes"), clusters)
    deffs, g = _deffs(codes, 4, clusters)
    return regimes_from_counts([int(c) for c in counts], alpha=alpha, boot=boot, deffs=deffs, n_clusters=g)


def _deffs(codes: IntArray, n_cells: int, clusters: IntArray | None) -> tuple[list[float] | None, int | None]:
    """The design effect of each cell's share (None, None for independent pairs)."""
    if clusters is None:
        return None, None
    out = [design_effect(codes == j, clusters) for j in range(n_cells)]
    return [d for d, _ in out], out[0][1] if out else None


def lm_agreement(chosen: FloatArray, rejected: FloatArray) -> StrArray:
    """γ_i (§2): compare the chosen and rejected feature tuples lexicographically (first column
    first; SEAL: harmless then helpful). 'c' = chosen ranks higher, 'r' = lower, 'i' = equal.

    ``chosen``/``rejected`` are (n, m) arrays in priority order; rows with a NaN get '' (unknown).
    """
    n = chosen.shape[0]
    out = np.full(n, "i", dtype=object)
    decided = np.zeros(n, dtype=bool)
    for j in range(chosen.shape[1]):
        d = chosen[:, j] - rejected[:, j]
        out[~decided & (d > 0)] = "c"
        out[~decided & (d < 0)] = "r"
        decided |= d != 0
    out[~(np.isfinite(chosen).all(axis=1) & np.isfinite(rejected).all(axis=1))] = ""
    return out


@dataclasses.dataclass(frozen=True)
class GammaGroup:
    """Agreement of both RMs and the regime mix among pairs with one γ value."""

    gamma: str
    n: int
    share: RateEstimate
    misalignment_post: RateEstimate
    """1 − δ(r1) among these pairs (reference: c 10%, i 27%, r 44%)."""
    misalignment_pre: RateEstimate | None
    regime_counts: dict[str, int] | None


@dataclasses.dataclass(frozen=True)
class ThreeWay:
    """Human / LM / RM agreement among pairs where the LM has an opinion (γ ∈ {c, r}), §3."""

    rm: str
    n: int
    all_agree: int
    """LM and RM both side with the human."""
    lm_only: int
    """LM agrees with the human, the RM does not."""
    rm_only: int
    """RM agrees with the human, the LM does not."""
    neither: int
    """Both disagree with the human (candidates for relabeling)."""
    shares: dict[str, float]


@dataclasses.dataclass(frozen=True)
class GammaResult:
    """LM agreement γ and its breakdowns (§2–3)."""

    features: tuple[str, ...]
    n: int
    groups: tuple[GammaGroup, ...]
    three_way: tuple[ThreeWay, ...]


def three_way(rm: str, gamma: StrArray, delta: BoolArray) -> ThreeWay:
    """Count the four human/LM/RM agreement patterns among pairs where γ ∈ {c, r}."""
    op = (gamma == "c") | (gamma == "r")
    lm = gamma[op] == "c"
    d = delta[op]
    n = int(op.sum())
    counts = {
        "all_agree": int(np.sum(lm & d)),
        "lm_only": int(np.sum(lm & ~d)),
        "rm_only": int(np.sum(~lm & d)),
        "neither": int(np.sum(~lm & ~d)),
    }
    return ThreeWay(
        rm=rm, n=n, shares={k: (v / n if n else float("nan")) for k, v in counts.items()}, **counts
    )


def gamma_breakdown(
    gamma: StrArray,
    delta_post: BoolArray,
    delta_pre: BoolArray | None,
    *,
    features: tuple[str, ...],
    post: str,
    pre: str | None,
    alpha: float,
    n_bootstrap: int,
    seed: int,
    clusters: IntArray | None = None,
) -> GammaResult:
    """Shares of γ, misalignment and regimes per γ, and the three-way agreement (§3).

    All arrays cover the same pairs (those with known γ and the needed rewards); ``clusters`` as in
    ``agreement``.
    """
    n = int(gamma.size)
    gcodes = np.full(n, 0, dtype=np.int64)
    for j, g in enumerate(GAMMAS):
        gcodes[gamma == g] = j
    boot = bootstrap_cells(gcodes, len(GAMMAS), n_bootstrap, rng_for(seed, "gamma"), clusters)
    bs = boot_shares(boot)
    codes = regime_codes(delta_pre, delta_post) if delta_pre is not None else None
    groups = []
    for j, g in enumerate(GAMMAS):
        m = gamma == g
        sub = clusters[m] if clusters is not None else None
        mis_pre = cluster_rate_estimate(~delta_pre[m], alpha, sub) if delta_pre is not None else None
        groups.append(
            GammaGroup(
                gamma=g,
                n=int(m.sum()),
                share=cluster_rate_estimate(m, alpha, clusters, bs[:, j] if bs is not None else None),
                misalignment_post=cluster_rate_estimate(~delta_post[m], alpha, sub),
                misalignment_pre=mis_pre,
                regime_counts=(
                    {name: int(np.sum(codes[m] == r)) for r, name in enumerate(REGIMES)}
                    if codes is not None
                    else None
                ),
            )
        )
    tw = [three_way(post, gamma, delta_post)]
    if delta_pre is not None and pre is not None:
        tw.insert(0, three_way(pre, gamma, delta_pre))
    return GammaResult(features=features, n=n, groups=tuple(groups), three_way=tuple(tw))


def mcnemar_tests(
    indicators: dict[str, BoolArray], lm: BoolArray | None, lm_mask: BoolArray | None
) -> tuple[McNemarResult, ...]:
    """Exact McNemar tests between every two RM agreement indicators (all on the same pairs), and
    between the LM (γ = c) and each RM among pairs where the LM has an opinion (§3)."""
    names = sorted(indicators)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            out.append(mcnemar_exact(a, b, indicators[a], indicators[b]))
    if lm is not None and lm_mask is not None:
        for a in names:
            out.append(mcnemar_exact("lm", a, lm, indicators[a][lm_mask]))
    return tuple(out)
