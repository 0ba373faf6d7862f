"""``analyze``: every SEAL statistic from one set of inputs, as one frozen, serialisable result.

This module only routes: it prepares one ``Context`` and calls one function per analysis
(``analyses.py``); each analysis succeeds or fails on its own, and a failure is recorded under its
own key with the cause and the features involved, so one constant feature or one degenerate
regression never takes the other analyses down with it. Numbers are computed in the metric modules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import pandas as pd

from seal_audit.data.errors import InputError
from seal_audit.stats import analyses as A
from seal_audit.stats._common import (
    ANALYSIS_BLAS_THREADS,
    Exclusions,
    Skipped,
    blas_threads,
    canonical_json,
    to_jsonable,
)
from seal_audit.stats._context import Context, frame, resolve_specs, usable
from seal_audit.stats.compare import (
    BASELINE_ONLY,
    Comparison,
    Leaderboard,
    MultipleTesting,
    RMMeasures,
    comparison_key,
    leaderboard,
    multiple_testing,
    pair_mcnemar,
    view,
)
from seal_audit.stats.diagnostics import CalibrationResult, Caveats, FeatureResistance, SuspiciousPairs
from seal_audit.stats.family import ACROSS_RMS, refamily
from seal_audit.stats.imprint import ImprintResult
from seal_audit.stats.inference import McNemarResult, RateEstimate
from seal_audit.stats.misalignment import MisalignmentResult
from seal_audit.stats.options import AnalysisInputs, AnalysisOptions
from seal_audit.stats.prepare import prepare
from seal_audit.stats.regression import RegressionResult, VifRow, design_memo
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
    absent_rms: dict[str, str] = dataclasses.field(default_factory=dict)
    """RMs named for this run that have no scores (failed to load or score), with the reason."""
    comparisons: tuple[str, ...] = ()
    """The ``a:b`` keys of ``comparisons``, the run's own pre:post first."""


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
    per_rm: dict[str, RMMeasures] = dataclasses.field(default_factory=dict)
    """Every scored RM's measures by RM name (status keys ``per_rm.<rm>.<analysis>``). The top-level
    keys above stay: they are the post-D / pre-D / pre:post entries and the same numbers."""
    comparisons: dict[str, Comparison | Skipped] = dataclasses.field(default_factory=dict)
    """By ``a:b``: a read as pre-D, b as post-D (status keys ``compare.<a:b>.<analysis>``)."""
    leaderboard: Leaderboard | None = None
    """One row per RM (absent ones included) with the headline numbers the report's table shows."""
    multiple_testing: MultipleTesting | None = None
    """The correction and its family (per regression, not across RMs), stated once for every output."""
    table_data: dict[str, pd.DataFrame] = dataclasses.field(
        default_factory=dict, metadata={"json": False}, repr=False
    )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_jsonable(self)
        out["schema"] = SCHEMA
        return out

    def to_json(self) -> str:
        """stats.json: deterministic text (sorted keys, 12 significant digits, NaN → null)."""
        fields = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("json", True)
        }
        return canonical_json({**fields, "schema": SCHEMA})  # = canonical_json(self.to_dict()), one pass

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
    with blas_threads(ANALYSIS_BLAS_THREADS), design_memo():
        return _analyze(inputs, options)


def _analyze(inputs: AnalysisInputs, options: AnalysisOptions | None) -> AnalysisResult:
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
    top = {"resistance": res, "misalignment": mis, "robustness": robust, "resistance_by_feature": rbf}
    per_rm = _per_rm(ctx, agree, calib, imprint, top)
    if opt.correction_family == ACROSS_RMS:
        imprint, top = _top_level_family(ctx, per_rm, imprint, top)
        mis, robust = post_level(top)
    comps = _comparisons(ctx, reg, gam, shift, imprint)
    board = leaderboard(
        ctx, per_rm, inputs.absent, {rm: m.role for rm, m in per_rm.items()}, opt.leaderboard_top_imprints
    )
    ctx.tables["leaderboard"] = _board_rows(board)
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
        absent_rms={k: v for k, v in inputs.absent.items() if k not in data.rms},
        comparisons=tuple(comps),
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
        per_rm=per_rm,
        comparisons=comps,
        leaderboard=board,
        multiple_testing=multiple_testing(opt.correction, opt.correction_family),
        table_data=ctx.tables,
    )


def _merge(ctx: Context, v: Context, prefix: str) -> None:
    """File a view's exclusions under ``prefix`` in the run's record (its status is filed by _guard)."""
    for k, e in v.excl.items():
        ctx.excl[f"{prefix}:{k}"] = e


def _with_rm(df: pd.DataFrame, **cols: str) -> pd.DataFrame:
    """The table with the RM's (or the comparison's) name in leading columns."""
    out = df.copy()
    for i, (k, val) in enumerate(cols.items()):
        if k in out.columns:
            out[k] = val
        else:
            out.insert(i, k, val)
    return out


def _per_rm(
    ctx: Context,
    agree: dict[str, AgreementResult],
    calib: dict[str, CalibrationResult],
    imprint: dict[str, dict[str, ImprintResult | Skipped]] | Skipped,
    top: dict[str, Any],
) -> dict[str, RMMeasures]:
    """Every scored RM's measures. The post-D RM's are the top-level results (computed once); every
    other non-baseline RM gets the same analyses on a view where it plays post-D; baselines get
    agreement and calibration."""
    g = _guard
    out: dict[str, RMMeasures] = {}
    tabs: dict[str, list[pd.DataFrame]] = {k: [] for k in ("imprint", "misalignment", "robustness_summary")}
    for rm in ctx.data.rms:
        key = f"per_rm.{rm}"
        role = ctx.role(rm)
        cal: CalibrationResult | Skipped
        if rm in calib:
            cal = calib[rm]
            _record(ctx, f"{key}.calibration", cal)
        else:
            cal = g(ctx, f"{key}.calibration", partial(A.calibration_one, ctx, rm))
        if role == "baseline":
            skip = Skipped(BASELINE_ONLY)
            for name in ("resistance", "imprint", "misalignment", "robustness", "resistance_by_feature"):
                _record(ctx, f"{key}.{name}", skip)
            out[rm] = RMMeasures(rm, role, agree[rm], cal, skip, skip, skip, skip, skip)
            continue
        if rm == ctx.post:
            imp: dict[str, ImprintResult | Skipped] | Skipped = (
                {est: m["post"] for est, m in imprint.items()} if isinstance(imprint, dict) else imprint
            )
            parts = dict(top)
            for name, val in parts.items():
                _record(ctx, f"{key}.{name}", val)
            if isinstance(imp, dict):
                for est, val in imp.items():
                    _record(ctx, f"{key}.imprint.{est}", val)
            else:
                _record(ctx, f"{key}.imprint", imp)
            src = ctx.tables
        else:
            v = view(ctx, post=rm, pre=None)
            v.unused_tables = frozenset({"misalignment", "resistance_by_feature", "robustness"})
            parts = {
                "resistance": g(ctx, f"{key}.resistance", partial(A.resistance_post, v, agree)),
                "misalignment": g(ctx, f"{key}.misalignment", partial(A.misalignment_table, v)),
                "robustness": g(ctx, f"{key}.robustness", partial(A.robustness_all, v)),
                "resistance_by_feature": g(
                    ctx, f"{key}.resistance_by_feature", partial(A.resistance_by_feature_table, v)
                ),
            }
            if ctx.regressors:
                imp = {
                    est: g(ctx, f"{key}.imprint.{est}", partial(A.imprint_one, v, est, "post"))
                    for est in ctx.opt.estimators
                }
            else:
                imp = Skipped(A.NO_FEATURES)
                _record(ctx, f"{key}.imprint", imp)
            _merge(ctx, v, f"per_rm:{rm}")
            src = v.tables
        if "robustness_summary" in src:
            rs = src["robustness_summary"]
            tabs["robustness_summary"].append(rs[rs["rm"].astype(str) == rm])
        out[rm] = RMMeasures(
            rm,
            role,
            agree[rm],
            cal,
            parts["resistance"],
            imp,
            parts["misalignment"],
            parts["robustness"],
            parts["resistance_by_feature"],
        )
    if ctx.opt.correction_family == ACROSS_RMS:
        out = _across_rms(out)
    for rm, meas in out.items():  # after the family is applied: the tables show the final verdicts
        if isinstance(meas.imprint, dict):
            rows = A.imprint_rows({k: {"post": x} for k, x in meas.imprint.items()})
            tabs["imprint"].append(_with_rm(rows, rm=rm))
        if isinstance(meas.misalignment, MisalignmentResult):
            tabs["misalignment"].append(_with_rm(A.misalignment_rows(meas.misalignment), rm=rm))
    for name, dfs in tabs.items():
        dfs = [d for d in dfs if len(d)]
        if dfs:
            ctx.tables[f"per_rm_{name}"] = pd.concat(dfs, ignore_index=True)
    cals = [m.calibration for m in out.values() if isinstance(m.calibration, CalibrationResult)]
    ctx.tables["per_rm_calibration"] = frame(
        [{k: x for k, x in dataclasses.asdict(c).items() if k != "bins"} for c in cals],
        columns=["rm", "n", "brier", "log_loss", "ece", "mean_probability"],
    )
    return out


def _across_rms(out: dict[str, RMMeasures]) -> dict[str, RMMeasures]:
    """Every RM's regressions of one kind corrected as one family (``correction_family =
    across_rms``): imprints per estimator, misalignment LPM and logit, robustness LPM and logit per
    transform."""
    slots: dict[str, list[tuple[str, Callable[[RMMeasures, RegressionResult], RMMeasures], RegressionResult]]]
    slots = {}

    def add(kind: str, rm: str, fit: Any, put: Callable[[RMMeasures, RegressionResult], RMMeasures]) -> None:
        if isinstance(fit, RegressionResult):
            slots.setdefault(kind, []).append((rm, put, fit))

    for rm, meas in out.items():
        if isinstance(meas.imprint, dict):
            for est, imp in meas.imprint.items():
                if isinstance(imp, ImprintResult):
                    add(f"{est} imprint", rm, imp.regression, partial(_put_imprint, est))
        if isinstance(meas.misalignment, MisalignmentResult):
            add("misalignment LPM", rm, meas.misalignment.lpm, partial(_put_misalignment, "lpm"))
            add("misalignment logit", rm, meas.misalignment.logit, partial(_put_misalignment, "logit"))
        if isinstance(meas.robustness, dict):
            for t, rob in meas.robustness.items():
                add(f"{t} robustness LPM", rm, rob.lpm, partial(_put_robustness, t, "lpm"))
                add(f"{t} robustness logit", rm, rob.logit, partial(_put_robustness, t, "logit"))
    out = dict(out)
    for kind, members in slots.items():
        scope = f" of the {len(members)} RMs' {kind} regressions"
        for (rm, put, _), fit in zip(members, refamily([f for _, _, f in members], scope), strict=True):
            out[rm] = put(out[rm], fit)
    return out


def _put_imprint(est: str, m: RMMeasures, fit: RegressionResult) -> RMMeasures:
    assert isinstance(m.imprint, dict)
    imp = m.imprint[est]
    assert isinstance(imp, ImprintResult)
    return dataclasses.replace(m, imprint={**m.imprint, est: dataclasses.replace(imp, regression=fit)})


def _put_misalignment(which: str, m: RMMeasures, fit: RegressionResult) -> RMMeasures:
    assert isinstance(m.misalignment, MisalignmentResult)
    mis = m.misalignment
    new = dataclasses.replace(mis, lpm=fit) if which == "lpm" else dataclasses.replace(mis, logit=fit)
    return dataclasses.replace(m, misalignment=new)


def _put_robustness(t: str, which: str, m: RMMeasures, fit: RegressionResult) -> RMMeasures:
    assert isinstance(m.robustness, dict)
    old = m.robustness[t]
    rob = dataclasses.replace(old, lpm=fit) if which == "lpm" else dataclasses.replace(old, logit=fit)
    return dataclasses.replace(m, robustness={**m.robustness, t: rob})


def post_level(
    top: dict[str, Any],
) -> tuple[MisalignmentResult | Skipped, dict[str, RobustnessResult] | Skipped]:
    """The post-D RM's misalignment and robustness out of the top-level parts."""
    mis, rob = top["misalignment"], top["robustness"]
    assert isinstance(mis, MisalignmentResult | Skipped) and isinstance(rob, dict | Skipped)
    return mis, rob


def _top_level_family(
    ctx: Context,
    per_rm: dict[str, RMMeasures],
    imprint: dict[str, dict[str, ImprintResult | Skipped]] | Skipped,
    top: dict[str, Any],
) -> tuple[dict[str, dict[str, ImprintResult | Skipped]] | Skipped, dict[str, Any]]:
    """Under ``across_rms`` the top-level post-D / pre-D entries are those RMs' per-RM fits (the same
    regressions), so they show the across-RM verdicts too; their tables are rebuilt from them."""
    post = per_rm.get(ctx.post)
    if post is None or post.role == "baseline":
        return imprint, top
    top = dict(top, misalignment=post.misalignment, robustness=post.robustness)
    if isinstance(post.misalignment, MisalignmentResult):
        ctx.tables["misalignment"] = A.misalignment_rows(post.misalignment)
    if isinstance(post.robustness, dict):
        ctx.tables["robustness"] = A.robustness_rows(post.robustness)
    if isinstance(imprint, dict):
        pre = per_rm.get(ctx.pre) if ctx.pre is not None else None
        new: dict[str, dict[str, ImprintResult | Skipped]] = {}
        for est, models in imprint.items():
            models = dict(models)
            if isinstance(post.imprint, dict) and isinstance(post.imprint.get(est), ImprintResult):
                models["post"] = post.imprint[est]
            old_pre = models.get("pre")
            if pre is not None and isinstance(pre.imprint, dict) and isinstance(old_pre, ImprintResult):
                fit = pre.imprint.get(est)
                if isinstance(
                    fit, ImprintResult
                ):  # the same regression, with the pre-D view's exclusions key
                    models["pre"] = dataclasses.replace(old_pre, regression=fit.regression)
            new[est] = models
        imprint = new
        ctx.tables["imprint"] = A.imprint_rows(imprint)
    return imprint, top


def _comparisons(
    ctx: Context,
    reg: RegimeResult | Skipped,
    gam: GammaResult | Skipped,
    shift: ShiftResult | Skipped,
    imprint: dict[str, dict[str, ImprintResult | Skipped]] | Skipped,
) -> dict[str, Comparison | Skipped]:
    """The run's pre:post pair (its numbers are the top-level ones) and every requested a:b pair."""
    pairs: list[tuple[str, str]] = []
    if ctx.pre is not None:
        pairs.append((ctx.pre, ctx.post))
    for p in ctx.inputs.comparisons:
        if tuple(p) not in pairs:
            pairs.append((p[0], p[1]))
    g = _guard
    out: dict[str, Comparison | Skipped] = {}
    regime_tabs: list[pd.DataFrame] = []
    imprint_tabs: list[pd.DataFrame] = []
    for a, b in pairs:
        name = comparison_key(a, b)
        key = f"compare.{name}"
        missing = [x for x in (a, b) if x not in ctx.data.rms]
        if missing:
            why = f"RM(s) {missing} have no scores; RMs in the scores: {list(ctx.data.rms)}"
            out[name] = Skipped(why, status="failed")
            _record(ctx, key, out[name])
            continue
        v = view(ctx, post=b, pre=a)
        mc = g(ctx, f"{key}.mcnemar", partial(pair_mcnemar, v, a, b))
        r_: RegimeResult | Skipped
        gm: GammaResult | Skipped
        sh: ShiftResult | Skipped
        diff: dict[str, ImprintResult | Skipped] | Skipped
        if (a, b) == (ctx.pre, ctx.post):
            r_, gm, sh = reg, gam, shift
            for k_, val in (("regimes", reg), ("lm_agreement", gam), ("reward_shift", shift)):
                _record(ctx, f"{key}.{k_}", val)
            diff = (
                {est: m["post_minus_pre"] for est, m in imprint.items()}
                if isinstance(imprint, dict)
                else imprint
            )
            rt = ctx.tables.get("regimes")
        else:
            r_ = g(ctx, f"{key}.regimes", partial(A.regime_table, v))
            gm = g(ctx, f"{key}.lm_agreement", partial(A.gamma_table, v))
            sh = g(ctx, f"{key}.reward_shift", partial(A.shift_table, v))
            if ctx.regressors:
                diff = {
                    est: g(
                        ctx,
                        f"{key}.imprint_difference.{est}",
                        partial(A.imprint_one, v, est, "post_minus_pre"),
                    )
                    for est in ctx.opt.estimators
                }
            else:
                diff = Skipped(A.NO_FEATURES)
            rt = v.tables.get("regimes")
        if isinstance(diff, Skipped):
            _record(ctx, f"{key}.imprint_difference", diff)
        elif (a, b) == (ctx.pre, ctx.post):
            for est, fit in diff.items():
                _record(ctx, f"{key}.imprint_difference.{est}", fit)
        _merge(ctx, v, f"compare:{name}")
        if rt is not None:
            regime_tabs.append(_with_rm(rt, comparison=name, a=a, b=b))
        if isinstance(diff, dict):
            imprint_tabs.append(
                _with_rm(A.imprint_rows({k: {"post_minus_pre": x} for k, x in diff.items()}), comparison=name)
            )
        out[name] = Comparison(a, b, r_, gm, mc, sh, diff)
    if regime_tabs:
        ctx.tables["comparison_regimes"] = pd.concat(regime_tabs, ignore_index=True)
    imprint_tabs = [d for d in imprint_tabs if len(d)]
    if imprint_tabs:
        ctx.tables["comparison_imprint"] = pd.concat(imprint_tabs, ignore_index=True)
    return out


def _board_rows(board: Leaderboard) -> pd.DataFrame:
    """The leaderboard as a flat table (one row per RM; top imprints and flip rates as text)."""
    rows = []
    for r in board.rows:
        ag = r.agreement
        rows.append(
            {
                "rm": r.rm,
                "role": r.role,
                "status": r.status,
                "reason": r.reason,
                "agreement": ag.rate if ag else float("nan"),
                "agreement_ci_low": ag.ci_low if ag else float("nan"),
                "agreement_ci_high": ag.ci_high if ag else float("nan"),
                "ece": r.ece if r.ece is not None else float("nan"),
                "brier": r.brier if r.brier is not None else float("nan"),
                "length_correlation": r.length_correlation
                if r.length_correlation is not None
                else float("nan"),
                "top_imprints": "; ".join(
                    f"{t.term} {t.estimate:+.3g} [{t.ci_low:.3g}, {t.ci_high:.3g}]" for t in r.top_imprints
                ),
                "imprint_estimator": r.imprint_estimator,
                "flip_rates": "; ".join(f"{f.transform} {f.flipped.rate:.3g}" for f in r.flip_rates),
                "correction": board.correction,
                "correction_family": board.correction_family,
            }
        )
    return frame(rows, columns=["rm", "role", "status"])
