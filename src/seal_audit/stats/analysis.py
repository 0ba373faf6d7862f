"""``analyze``: every SEAL statistic from one set of inputs, as one frozen, serialisable result.

This module only routes: it prepares one ``Context`` and calls one function per analysis
(``analyses.py``); each analysis succeeds or fails on its own, and a failure is recorded under its
own key with the cause and the features involved, so one constant feature or one degenerate
regression never takes the other analyses down with it. Numbers are computed in the metric modules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

from seal_audit.data.errors import InputError
from seal_audit.stats import analyses as A
from seal_audit.stats._common import Exclusions, Skipped, canonical_json, to_jsonable
from seal_audit.stats._context import Context, frame, resolve_specs, usable
from seal_audit.stats.diagnostics import CalibrationResult, Caveats, FeatureResistance, SuspiciousPairs
from seal_audit.stats.imprint import ImprintResult
from seal_audit.stats.inference import McNemarResult, RateEstimate
from seal_audit.stats.misalignment import MisalignmentResult
from seal_audit.stats.options import AnalysisInputs, AnalysisOptions
from seal_audit.stats.prepare import prepare
from seal_audit.stats.regression import RegressionResult, VifRow
from seal_audit.stats.resistance import AgreementResult, GammaResult, RegimeResult
from seal_audit.stats.robustness import RobustnessResult
from seal_audit.stats.shift import ShiftResult

SCHEMA = "seal-audit/stats/2"
"""Schema 2: every skipped or failed analysis is ``{"status", "reason", "features"}`` and ``status``
lists every analysis' outcome."""


@dataclasses.dataclass(frozen=True)
class FeatureInfo:
    """A feature as the analysis used it."""

    name: str
    kind: str
    role: str
    regressor: bool
    """True when it enters the imprint / misalignment regressions."""
    n_missing_pairs: int
    """Pairs with a missing value on at least one side (original texts)."""


@dataclasses.dataclass(frozen=True)
class InputSummary:
    """What went into the analysis: sizes, RM roles, features, dropped or unmatched rows."""

    n_pairs: int
    n_context_diverges: int
    """Pairs whose chosen and rejected contexts differ (kept and flagged, §1)."""
    post: str
    pre: str | None
    rms: tuple[str, ...]
    baselines: tuple[str, ...]
    features: tuple[FeatureInfo, ...]
    variants: tuple[str, ...]
    unknown_pair_ids: dict[str, int]
    n_truncated: dict[str, int]
    notes: tuple[str, ...]
    n_groups: int = 0
    """Groups of pairs that share a prompt (the pairs table's ``group_id``; = n_pairs without it)."""
    largest_group: int = 0
    """Pairs in the largest group."""


@dataclasses.dataclass(frozen=True)
class AnalysisOutcome:
    """Whether one analysis produced numbers; the reason and features when it did not."""

    status: str
    reason: str = ""
    features: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, eq=False)
class AnalysisResult:
    """Every SEAL number of one analysis. ``to_json`` is stats.json; ``tables`` the per-analysis tables."""

    options: AnalysisOptions
    inputs: InputSummary
    agreement: dict[str, AgreementResult]
    resistance: RateEstimate | Skipped
    regimes: RegimeResult | Skipped
    lm_agreement: GammaResult | Skipped
    mcnemar: tuple[McNemarResult, ...] | Skipped
    reward_shift: ShiftResult | Skipped
    theta_regression: RegressionResult | Skipped
    imprint: dict[str, dict[str, ImprintResult | Skipped]] | Skipped
    vif: tuple[VifRow, ...] | Skipped
    misalignment: MisalignmentResult | Skipped
    robustness: dict[str, RobustnessResult] | Skipped
    calibration: dict[str, CalibrationResult]
    resistance_by_feature: tuple[FeatureResistance, ...] | Skipped
    suspicious_pairs: SuspiciousPairs | Skipped
    exclusions: dict[str, Exclusions]
    """Per analysis: pairs left out for missing rewards or features (count, ids, reason)."""
    caveats: Caveats | None = None
    """In-sample RMs, truncation, the label-noise ceiling (docs/results.md)."""
    status: dict[str, AnalysisOutcome] = dataclasses.field(default_factory=dict)
    """Every analysis by its stats.json key (``imprint.fe.pre`` for nested ones): ok, skipped or failed."""
    table_data: dict[str, pd.DataFrame] = dataclasses.field(
        default_factory=dict, metadata={"json": False}, repr=False
    )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_jsonable(self)
        out["schema"] = SCHEMA
        return out

    def to_json(self) -> str:
        """stats.json: deterministic text (sorted keys, 12 significant digits, NaN → null)."""
        return canonical_json(self.to_dict())

    def tables(self) -> dict[str, pd.DataFrame]:
        """One DataFrame per analysis (copies; every per-pair table carries pair_id)."""
        return {k: v.copy() for k, v in self.table_data.items()}

    @classmethod
    def from_json(cls, text: str, source: str = "stats.json") -> AnalysisResult:
        """Read stats.json back into the same typed records that wrote it (tables not included:
        they live in ``analysis/*.parquet``). A file of another schema is refused with its name."""
        import json

        from seal_audit.data.errors import SealError
        from seal_audit.stats._common import from_jsonable

        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise SealError(f"{source}: not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            found = doc.get("schema") if isinstance(doc, dict) else None
            raise SealError(
                f"{source}: schema {found!r}, this seal-audit reads {SCHEMA!r}; "
                "re-run `seal analyze RUN` to rewrite it"
            )
        doc.pop("schema")
        try:
            out: AnalysisResult = from_jsonable(cls, doc, source)
        except (TypeError, ValueError, KeyError) as exc:
            raise SealError(f"{source}: does not match the result schema: {exc}") from None
        return out

    def not_computed(self) -> dict[str, AnalysisOutcome]:
        """The analyses that failed (could not be computed from these inputs), by key."""
        return {k: v for k, v in self.status.items() if v.status == "failed"}


T = TypeVar("T")


def _guard(ctx: Context, key: str, fn: Callable[[], T]) -> T | Skipped:
    """Run one analysis; a data problem becomes its ``failed`` record, never the whole run's end.

    Any exception is caught (not only SealError): an unexpected one is still a failure of this
    analysis alone, and its type is named in the reason so that it can be reported as a bug.
    """
    out: T | Skipped
    try:
        out = fn()
    except Exception as exc:
        from seal_audit.data.errors import SealError

        reason = str(exc) if isinstance(exc, SealError) else f"{type(exc).__name__}: {exc}"
        out = Skipped(reason=reason, status="failed", features=tuple(getattr(exc, "features", ())))
    _record(ctx, key, out)
    return out


def _record(ctx: Context, key: str, out: Any) -> None:
    status: dict[str, AnalysisOutcome] = ctx.status
    if isinstance(out, Skipped):
        status[key] = AnalysisOutcome(out.status, out.reason, out.features)
    else:
        fit = getattr(out, "regression", None) or getattr(out, "lpm", None) or out
        dropped = tuple(getattr(fit, "dropped_terms", ()) or ())
        reason = f"left out constant feature(s) {list(dropped)}" if dropped else ""
        status[key] = AnalysisOutcome("ok", reason, dropped)


def analyze(inputs: AnalysisInputs, options: AnalysisOptions | None = None) -> AnalysisResult:
    """Run every SEAL analysis (SEAL-METHOD.md §3–5 and the extras) on the given inputs.

    Raises only for inputs no analysis can use (tables that do not parse, a post-D RM without
    scores); everything else is recorded per analysis in ``status``.
    """
    opt = options or AnalysisOptions()
    data = prepare(inputs)
    notes: list[str] = list(inputs.notes)
    if inputs.post not in data.rms:
        raise InputError(
            f"post-D RM {inputs.post!r} has no scores; RMs in the scores: {list(data.rms)}",
            file="scores",
            field="rm",
        )
    pre = inputs.pre
    if pre is not None and pre not in data.rms:
        notes.append(f"pre-D RM {pre!r} has no scores: pre-D analyses skipped")
        pre = None
    baselines = tuple(b for b in inputs.baselines if b in data.rms)
    specs = resolve_specs(inputs, data, notes)
    regressors = tuple(
        s.name for s in specs if s.in_regression and not s.list_valued and s.name in data.feature_names
    )
    ctx = Context(inputs, opt, data, specs, regressors, pre, baselines, notes)
    notes.append(ctx.clustering.note)
    g = _guard

    agree = A.agreement_all(ctx)
    _record(ctx, "agreement", agree)
    res = g(ctx, "resistance", lambda: A.resistance_post(ctx, agree))
    A.gamma_labels(ctx)
    reg = g(ctx, "regimes", lambda: A.regime_table(ctx))
    gam = g(ctx, "lm_agreement", lambda: A.gamma_table(ctx))
    mc = g(ctx, "mcnemar", lambda: A.mcnemar_all(ctx))
    shift = g(ctx, "reward_shift", lambda: A.shift_table(ctx))
    theta = g(ctx, "theta_regression", lambda: A.theta_table(ctx))
    imprint: dict[str, dict[str, ImprintResult | Skipped]] | Skipped
    if regressors:
        imprint = {
            est: {
                model: g(ctx, f"imprint.{est}.{model}", lambda e=est, m=model: A.imprint_one(ctx, e, m))  # type: ignore[misc]
                for model in ("post", "pre", "post_minus_pre")
            }
            for est in opt.estimators
        }
        ctx.tables["imprint"] = A.imprint_rows(imprint)
    else:
        imprint = Skipped(A.NO_FEATURES)
        _record(ctx, "imprint", imprint)
    vif = g(ctx, "vif", lambda: A.vif_table(ctx))
    mis = g(ctx, "misalignment", lambda: A.misalignment_table(ctx))
    robust = g(ctx, "robustness", lambda: A.robustness_all(ctx))
    calib = A.calibration_all(ctx)
    _record(ctx, "calibration", calib)
    rbf = g(ctx, "resistance_by_feature", lambda: A.resistance_by_feature_table(ctx))
    susp = g(ctx, "suspicious_pairs", lambda: A.suspicious_table(ctx))
    cav = A.caveats_all(ctx, agree, susp)
    A.pair_diagnostics(ctx)
    ctx.tables["exclusions"] = frame(
        [
            {"analysis": k, "pair_id": p, "reason": e.reason}
            for k, e in sorted(ctx.excl.items())
            for p in e.all_excluded
        ],
        columns=["analysis", "pair_id", "reason"],
    )
    feature_info = tuple(
        FeatureInfo(
            name=s.name,
            kind=s.kind,
            role=s.role,
            regressor=s.name in regressors,
            n_missing_pairs=int(data.n - usable(ctx.feat_c.get(s.name), data.n).sum())
            if s.name in ctx.feat_c
            else data.n,
        )
        for s in specs
    )
    summary = InputSummary(
        n_pairs=data.n,
        n_context_diverges=int(data.context_diverges.sum()),
        post=inputs.post,
        pre=pre,
        rms=data.rms,
        baselines=baselines,
        features=feature_info,
        variants=data.variants,
        unknown_pair_ids=dict(data.unknown_pair_ids),
        n_truncated=dict(data.n_truncated),
        notes=tuple(notes),
        n_groups=ctx.clustering.n_groups,
        largest_group=ctx.clustering.largest_group,
    )
    return AnalysisResult(
        options=opt.model_copy(update={"cluster": ctx.clustering.kind}),  # the clustering used
        inputs=summary,
        agreement=agree,
        resistance=res,
        regimes=reg,
        lm_agreement=gam,
        mcnemar=mc,
        reward_shift=shift,
        theta_regression=theta,
        imprint=imprint,
        vif=vif,
        misalignment=mis,
        robustness=robust,
        calibration=calib,
        resistance_by_feature=rbf,
        suspicious_pairs=susp,
        exclusions=ctx.excl,
        caveats=cav,
        status=dict(ctx.status),
        table_data=ctx.tables,
    )
