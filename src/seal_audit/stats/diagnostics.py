"""Beyond the paper: calibration, resistance by feature presence, suspicious pairs for relabeling."""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import special
from scipy import stats as sps

from seal_audit.stats._common import BoolArray, FloatArray, IntArray, StrArray, no_json
from seal_audit.stats.inference import (
    RateEstimate,
    cluster_rate_estimate,
    clustered_mean_variance,
    rate_estimate,
)


@dataclasses.dataclass(frozen=True)
class ReliabilityBin:
    """One bin of the reliability diagram: mean predicted probability vs observed frequency."""

    bin: int
    lower: float
    upper: float
    n: int
    mean_predicted: float
    observed: float


@dataclasses.dataclass(frozen=True)
class CalibrationResult:
    """How well σ(r(t_c) − r(t_r)) works as P(human prefers t_c) (not in the paper).

    Every pair is counted in both orientations (t_c vs t_r with outcome 1, t_r vs t_c with outcome
    0, probability 1 − p): with only 'chosen wins' outcomes a reliability diagram is degenerate, and
    the symmetric form is the standard one for pairwise preference models. Brier score and log loss
    are identical in both forms; ECE is computed on the symmetric one.
    """

    rm: str
    n: int
    brier: float
    log_loss: float
    ece: float
    """Expected calibration error: Σ_bins (n_b / 2N) |mean p − observed|."""
    mean_probability: float
    """Mean σ(margin) over pairs: the RM's average confidence in the human's choice."""
    bins: tuple[ReliabilityBin, ...]
    brier_ci_low: float = float("nan")
    """t-interval (level 1 − alpha, G − 1 df) of the Brier score with the CR1 variance of a mean over
    the clusters (groups of pairs that share a prompt, or pairs: ``n_clusters``)."""
    brier_ci_high: float = float("nan")
    log_loss_ci_low: float = float("nan")
    """The same interval for the log loss."""
    log_loss_ci_high: float = float("nan")
    n_clusters: int = 0
    """G: clusters behind the intervals (= n when pairs are independent)."""


def _mean_ci(v: FloatArray, alpha: float, clusters: IntArray | None) -> tuple[float, float, int]:
    var, g = clustered_mean_variance(v, clusters)
    if not (np.isfinite(var) and g >= 2):
        return float("nan"), float("nan"), g
    half = float(sps.t.isf(alpha / 2, g - 1)) * float(np.sqrt(var))
    m = float(v.mean())
    return m - half, m + half, g


def calibration(
    rm: str,
    rewards: FloatArray,
    n_bins: int = 10,
    *,
    alpha: float = 0.05,
    clusters: IntArray | None = None,
) -> CalibrationResult:
    """Brier, log loss, ECE and the reliability table of σ(r(t_c) − r(t_r)) (rewards: (n, 2)); the
    Brier and log-loss intervals cluster by ``clusters`` (a group code per pair) when given."""
    margin = rewards[:, 0] - rewards[:, 1]
    p = special.expit(margin)
    n = int(p.size)
    brier_i = (1 - p) ** 2
    loss_i = -special.log_expit(margin)
    brier = float(np.mean(brier_i))
    log_loss = float(np.mean(loss_i))
    b_lo, b_hi, g = _mean_ci(brier_i, alpha, clusters)
    l_lo, l_hi, _ = _mean_ci(loss_i, alpha, clusters)
    probs = np.concatenate([p, 1 - p])
    outcome = np.concatenate([np.ones(n), np.zeros(n)])
    idx = np.minimum((probs * n_bins).astype(np.int64), n_bins - 1)
    cnt = np.bincount(idx, minlength=n_bins)
    sum_p = np.bincount(idx, weights=probs, minlength=n_bins)
    sum_y = np.bincount(idx, weights=outcome, minlength=n_bins)
    bins = []
    ece = 0.0
    for b in range(n_bins):
        c = int(cnt[b])
        mp = sum_p[b] / c if c else float("nan")
        ob = sum_y[b] / c if c else float("nan")
        if c:
            ece += c / (2 * n) * abs(mp - ob)
        bins.append(
            ReliabilityBin(
                bin=b,
                lower=b / n_bins,
                upper=(b + 1) / n_bins,
                n=c,
                mean_predicted=float(mp),
                observed=float(ob),
            )
        )
    return CalibrationResult(
        rm=rm,
        n=n,
        brier=brier,
        log_loss=log_loss,
        ece=float(ece),
        mean_probability=float(p.mean()) if n else float("nan"),
        bins=tuple(bins),
        brier_ci_low=b_lo,
        brier_ci_high=b_hi,
        log_loss_ci_low=l_lo,
        log_loss_ci_high=l_hi,
        n_clusters=g,
    )


@dataclasses.dataclass(frozen=True)
class FeatureResistance:
    """Resistance (post-D misalignment) among pairs with / without a binary feature on one side."""

    feature: str
    side: str
    present: RateEstimate
    absent: RateEstimate
    difference: float
    """present − absent misalignment rate."""


def resistance_by_feature(
    delta_post: BoolArray, features: dict[str, FloatArray], *, alpha: float, clusters: IntArray | None = None
) -> tuple[FeatureResistance, ...]:
    """Break the resistance down by each binary feature's presence on the chosen and rejected side;
    pairs whose feature value is missing are left out of that feature's rows only. ``clusters``
    (group codes): Korn–Graubard intervals by group."""
    out = []
    for name in sorted(features):
        arr = features[name]
        for s, side in enumerate(("chosen", "rejected")):
            v = arr[:, s]
            ok = np.isfinite(v)
            on = ok & (v == 1)
            off = ok & (v == 0)
            pres = cluster_rate_estimate(
                ~delta_post[on], alpha, clusters[on] if clusters is not None else None
            )
            abs_ = cluster_rate_estimate(
                ~delta_post[off], alpha, clusters[off] if clusters is not None else None
            )
            out.append(
                FeatureResistance(
                    feature=name, side=side, present=pres, absent=abs_, difference=pres.rate - abs_.rate
                )
            )
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class SuspiciousPairs:
    """Pairs that every available judge (post-D RM, pre-D RM, LM-labeler) thinks are mislabeled,
    ranked by the post-D margin r1(t_c) − r1(t_r), most negative first: candidates for relabeling."""

    criterion: str
    n: int
    top: tuple[str, ...]
    """The first ``max_listed_ids`` pair_ids of the ranking (the table has all of them)."""
    order: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros(0, np.int64), metadata=no_json(), repr=False
    )
    """Row indices (into the analysed pairs) of the ranking, not in JSON."""


def suspicious_pairs(
    pair_ids: StrArray,
    post_margin: FloatArray,
    pre_margin: FloatArray | None,
    gamma: StrArray | None,
    *,
    max_listed: int,
) -> SuspiciousPairs:
    """Flag pairs where the post-D RM, the pre-D RM (if any) and the LM (γ = r, if any) all disagree
    with the human; NaN margins/unknown γ never flag a pair."""
    flag = post_margin <= 0
    parts = ["post-D RM disagrees"]
    if pre_margin is not None:
        flag &= pre_margin <= 0
        parts.append("pre-D RM disagrees")
    if gamma is not None:
        flag &= gamma == "r"
        parts.append("LM-labeler prefers the rejected response (γ = r)")
    idx = np.flatnonzero(flag)
    # stable order: margin ascending, ties by pair_id, so the ranking is reproducible
    keys = np.lexsort((pair_ids[idx].astype(str), post_margin[idx]))
    order = idx[keys]
    return SuspiciousPairs(
        criterion=" and ".join(parts) + "; ranked by post-D margin, most negative first",
        n=int(order.size),
        top=tuple(str(p) for p in pair_ids[order[:max_listed]]),
        order=order,
    )


# --- issue 15: caveats as data --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LabelNoise:
    """A label-noise ceiling estimate: pairs that every judge disputes are likely mislabeled, and no
    RM can agree with a mislabeled pair's human label while being right about it.

    It is a heuristic, not an unbiased estimate: a judge trained on D (in-sample) rarely disputes a
    label it was fitted to, so the share is then a lower bound on the noise; judges that err
    together over-count it.
    """

    criterion: str
    n: int
    disputed: RateEstimate
    """Pairs every judge disputes, among the ``n`` pairs all judges scored (exact CI)."""
    agreement_ceiling: float
    """1 − disputed.rate: the agreement attainable if the disputed pairs are mislabeled."""
    agreement_ceiling_ci_low: float
    agreement_ceiling_ci_high: float


def label_noise_ceiling(n_disputed: int, n: int, criterion: str, *, alpha: float) -> LabelNoise:
    """The ceiling 1 − k/n with the mirrored Clopper–Pearson interval of k/n."""
    d = rate_estimate(n_disputed, n, alpha)
    return LabelNoise(
        criterion=criterion,
        n=n,
        disputed=d,
        agreement_ceiling=1 - d.rate,
        agreement_ceiling_ci_low=1 - d.ci_high,
        agreement_ceiling_ci_high=1 - d.ci_low,
    )


@dataclasses.dataclass(frozen=True)
class Caveats:
    """What limits how the headline numbers may be read, as data (the report states them)."""

    in_sample: dict[str, bool | None]
    """Per RM: trained on D (its agreement on D is training accuracy), not, or None = not stated."""
    post_in_sample: bool | None
    n_truncated: dict[str, int]
    """Per RM: original texts whose scoring input was truncated (the RM saw part of the text)."""
    truncated_share: dict[str, float]
    """n_truncated / texts scored (2 × pairs with both rewards)."""
    label_noise: LabelNoise | None
    notes: tuple[str, ...]
    """The caveats in words, most important first."""


def caveats(
    *,
    rms: tuple[str, ...],
    post: str,
    in_sample: dict[str, bool] | None,
    n_truncated: dict[str, int],
    n_texts: dict[str, int],
    label_noise: LabelNoise | None,
    post_agreement: float | None = None,
) -> Caveats:
    """Assemble the caveats and their plain-language notes."""
    given = in_sample or {}
    ins: dict[str, bool | None] = {rm: (bool(given[rm]) if rm in given else None) for rm in rms}
    notes: list[str] = []
    post_ins = ins.get(post)
    agree_txt = (
        f" ({post_agreement:.1%})" if post_agreement is not None and np.isfinite(post_agreement) else ""
    )
    if post_ins is True:
        notes.append(
            f"the post-D RM {post!r} was trained on D: its agreement on D{agree_txt} is in-sample "
            "(training accuracy), not a held-out estimate"
        )
    elif post_ins is None:
        notes.append(f"whether the post-D RM {post!r} was trained on D is not recorded")
    unknown = sorted(rm for rm, v in ins.items() if v is None and rm != post)
    if unknown:
        notes.append(f"training on D not recorded for: {', '.join(map(repr, unknown))}")
    unscored = sorted(set(given) - set(rms))
    if unscored:
        notes.append(f"in_sample names RM(s) without scores (ignored): {', '.join(map(repr, unscored))}")
    share: dict[str, float] = {}
    for rm in rms:
        k = int(n_truncated.get(rm, 0))
        t = int(n_texts.get(rm, 0))
        share[rm] = k / t if t else float("nan")
        if k:
            notes.append(f"{rm!r} saw a truncated input for {k} of {t} texts ({share[rm]:.1%})")
    if label_noise is not None and label_noise.n:
        notes.append(
            f"{label_noise.disputed.rate:.1%} of pairs are disputed by every judge "
            f"({label_noise.criterion}); if they are mislabeled, agreement above "
            f"{label_noise.agreement_ceiling:.1%} is not attainable"
        )
    return Caveats(
        in_sample=ins,
        post_in_sample=post_ins,
        n_truncated={rm: int(n_truncated.get(rm, 0)) for rm in rms},
        truncated_share=share,
        label_noise=label_noise,
        notes=tuple(notes),
    )
