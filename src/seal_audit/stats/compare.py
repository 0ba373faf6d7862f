"""Many RMs side by side: every SEAL measure per RM, any two RMs compared as pre/post, a leaderboard.

The paper audits one pre-D/post-D pair; researchers compare dozens of RMs on one dataset. Rather than
a second implementation of each analysis, every per-RM measure is the post-D analysis of a *view* of
the shared ``Context`` in which that RM plays post-D, and every comparison A:B is the pre/post
analysis of a view in which A plays pre-D and B post-D. The paper's pre/post comparison is the
default entry and is the main context itself, so its numbers are the top-level ones, not a copy
computed twice. Views share the prepared arrays and the γ labels; each has its own exclusions and
tables, which the router files under the RM's or the comparison's name.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from seal_audit.stats._common import Skipped
from seal_audit.stats._context import Context, usable
from seal_audit.stats.diagnostics import CalibrationResult, FeatureResistance
from seal_audit.stats.imprint import ImprintResult
from seal_audit.stats.inference import McNemarResult, RateEstimate
from seal_audit.stats.misalignment import MisalignmentResult
from seal_audit.stats.resistance import AgreementResult, GammaResult, RegimeResult, mcnemar_tests
from seal_audit.stats.robustness import RobustnessResult
from seal_audit.stats.shift import ShiftResult

BASELINE_ONLY = "baseline RM: agreement and calibration only (a baseline is not trained on D)"

CORRECTION_FAMILIES = {
    "per_regression": (
        "per regression",
        "{c} over the coefficients of each regression separately (per RM, per estimator, per transform, "
        "per comparison); not across RMs",
    ),
    "across_rms": (
        "across RMs",
        "{c} over the coefficients of every RM's regressions of the same kind together (all RMs' imprints "
        "of one estimator, all RMs' misalignment LPMs, all RMs' misalignment logits, all RMs' robustness "
        "LPMs or logits of one transform); comparisons and the θ regression per regression",
    ),
}
"""``AnalysisOptions.correction_family`` → (short name, sentence), stated in stats.json
(``multiple_testing``), the leaderboard, report.md, the terminal and the benchmark."""
CORRECTION_FAMILY = CORRECTION_FAMILIES["per_regression"][0]
"""The default family's short name."""


@dataclasses.dataclass(frozen=True)
class MultipleTesting:
    """Which correction decides 'significant', and over which family of tests."""

    correction: str
    family: str
    detail: str
    option: str = "per_regression"
    """The ``correction_family`` option that chose the family."""


def multiple_testing(correction: str, family: str = "per_regression") -> MultipleTesting:
    short, sentence = CORRECTION_FAMILIES[family]
    return MultipleTesting(
        correction=correction, family=short, detail=sentence.format(c=correction), option=family
    )


@dataclasses.dataclass(frozen=True)
class RMMeasures:
    """Every SEAL measure of one RM, as if it were the post-D RM (baselines: agreement, calibration)."""

    rm: str
    role: str
    agreement: AgreementResult
    calibration: CalibrationResult | Skipped
    resistance: RateEstimate | Skipped
    """1 − agreement on D (the alignment resistance had this RM been the post-D RM)."""
    imprint: dict[str, ImprintResult | Skipped] | Skipped
    """By estimator (pooled, fe)."""
    misalignment: MisalignmentResult | Skipped
    robustness: dict[str, RobustnessResult] | Skipped
    """By transform; ``accuracy`` lists this RM (and, for the post-D RM, the pre-D RM beside it)."""
    resistance_by_feature: tuple[FeatureResistance, ...] | Skipped


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Two RMs compared as pre-D (``a``) and post-D (``b``): regimes, γ, McNemar, θ, imprint B − A."""

    a: str
    b: str
    regimes: RegimeResult | Skipped
    lm_agreement: GammaResult | Skipped
    mcnemar: tuple[McNemarResult, ...] | Skipped
    """A vs B on the pairs both scored, and the LM vs each of them where the LM has an opinion."""
    reward_shift: ShiftResult | Skipped
    imprint_difference: dict[str, ImprintResult | Skipped] | Skipped
    """By estimator: the imprint of r_B − r_A (clustered as the run: by group or pair), model ``post_minus_pre``."""


def comparison_key(a: str, b: str) -> str:
    return f"{a}:{b}"


def view(ctx: Context, post: str, pre: str | None) -> Context:
    """The context with ``post``/``pre`` in the post-D/pre-D roles: shared arrays and γ, own
    exclusions, tables and status (the router files them under the view's name)."""
    inputs = dataclasses.replace(ctx.inputs, post=post, pre=pre)
    v = dataclasses.replace(
        ctx,
        inputs=inputs,
        pre=pre,
        excl={},
        tables={},
        status={},
        suspicious_mask=None,
        suspicious_rows=None,
    )
    v.gamma, v.gamma_skip = ctx.gamma, ctx.gamma_skip
    return v


def pair_mcnemar(ctx: Context, a: str, b: str) -> tuple[McNemarResult, ...]:
    """Exact McNemar of A vs B (and the LM vs each) on the pairs both RMs scored."""
    ra, rb = ctx.data.reward(a), ctx.data.reward(b)
    assert ra is not None and rb is not None
    common = usable(ra, ctx.n) & usable(rb, ctx.n)
    ctx.exclusions("mcnemar", common, f"missing reward of {a!r} or {b!r} for a side")
    inds = {a: ra[common, 0] > ra[common, 1], b: rb[common, 0] > rb[common, 1]}
    lm = lm_mask = None
    if ctx.gamma is not None:
        gsub = ctx.gamma[common]
        lm_mask = (gsub == "c") | (gsub == "r")
        lm = gsub[lm_mask] == "c"
    return mcnemar_tests(inds, lm, lm_mask)


# --- the leaderboard ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TopImprint:
    term: str
    estimate: float
    ci_low: float
    ci_high: float
    ci_low_adjusted: float
    ci_high_adjusted: float
    significant: bool


@dataclasses.dataclass(frozen=True)
class FlipRate:
    transform: str
    kind: str
    flipped: RateEstimate
    became_misaligned: RateEstimate


@dataclasses.dataclass(frozen=True)
class LeaderboardRow:
    """One RM's headline numbers (the report's sortable table, report.md and stats.json agree)."""

    rm: str
    role: str
    status: str
    """``ok``, or ``absent`` for an RM that was named but has no scores (``reason`` says why)."""
    reason: str = ""
    agreement: RateEstimate | None = None
    ece: float | None = None
    brier: float | None = None
    length_correlation: float | None = None
    """Pearson correlation of the reward with the length feature over all 2N texts."""
    top_imprints: tuple[TopImprint, ...] = ()
    """The largest |β| of the first estimator, with their (and the adjusted) intervals."""
    imprint_estimator: str = ""
    flip_rates: tuple[FlipRate, ...] = ()


@dataclasses.dataclass(frozen=True)
class Leaderboard:
    """All RMs, one row each, in the order they were scored (the report sorts on request)."""

    rows: tuple[LeaderboardRow, ...]
    length_feature: str
    length_feature_found: bool
    correction: str
    correction_family: str
    n_top_imprints: int
    correction_detail: str = ""
    """The family in a sentence (``MultipleTesting.detail``): what 'significant' is corrected over."""


def length_correlation(reward: np.ndarray, length: np.ndarray | None) -> float | None:
    """Pearson r of reward and length over the stacked texts with both finite (None if undefined)."""
    if length is None:
        return None
    r, x = reward.ravel(), length.ravel()
    ok = np.isfinite(r) & np.isfinite(x)
    if ok.sum() < 3 or np.std(r[ok]) == 0 or np.std(x[ok]) == 0:
        return None
    c = float(np.corrcoef(r[ok], x[ok])[0, 1])
    return c if math.isfinite(c) else None


def _top(imp: Any, k: int) -> tuple[str, tuple[TopImprint, ...]]:
    if not isinstance(imp, Mapping):
        return "", ()
    for est, res in imp.items():
        if isinstance(res, ImprintResult):
            coefs = [
                c
                for c in res.regression.coefficients
                if c.term not in ("intercept", "const") and math.isfinite(c.estimate)
            ]
            coefs.sort(key=lambda c: (-abs(c.estimate), c.term))
            return est, tuple(
                TopImprint(
                    c.term,
                    c.estimate,
                    c.ci_low,
                    c.ci_high,
                    c.ci_low_adjusted,
                    c.ci_high_adjusted,
                    bool(c.significant),
                )
                for c in coefs[:k]
            )
    return "", ()


def leaderboard(
    ctx: Context,
    per_rm: Mapping[str, RMMeasures],
    absent: Mapping[str, str],
    roles: Mapping[str, str],
    k: int = 3,
) -> Leaderboard:
    feat = ctx.opt.length_feature
    length = ctx.feat_c.get(feat)
    mt = multiple_testing(ctx.opt.correction, ctx.opt.correction_family)
    rows: list[LeaderboardRow] = []
    for rm, m in per_rm.items():
        r = ctx.data.reward(rm)
        assert r is not None
        est, top = _top(m.imprint, k)
        flips = tuple(
            FlipRate(t, res.kind, ac.flipped, ac.became_misaligned)
            for t, res in (m.robustness.items() if isinstance(m.robustness, Mapping) else ())
            for ac in res.accuracy
            if ac.rm == rm
        )
        cal = m.calibration
        rows.append(
            LeaderboardRow(
                rm=rm,
                role=m.role,
                status="ok",
                agreement=m.agreement.agreement,
                ece=cal.ece if isinstance(cal, CalibrationResult) else None,
                brier=cal.brier if isinstance(cal, CalibrationResult) else None,
                length_correlation=length_correlation(r, length),
                top_imprints=top,
                imprint_estimator=est,
                flip_rates=flips,
            )
        )
    for rm, why in absent.items():
        rows.append(LeaderboardRow(rm=rm, role=roles.get(rm, "not scored"), status="absent", reason=why))
    return Leaderboard(
        rows=tuple(rows),
        length_feature=feat,
        length_feature_found=length is not None,
        correction=ctx.opt.correction,
        correction_family=mt.family,
        n_top_imprints=k,
        correction_detail=mt.detail,
    )
