"""The SCORE stage over a run directory: every text of every pair under every RM, into ``scores``."""

from __future__ import annotations

import dataclasses
import gc
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from seal_audit.backends.reward import RewardModel, RMSpec
from seal_audit.data.errors import SealError
from seal_audit.data.records import SIDES, PreferencePair, RMRecord, Score
from seal_audit.score.engine import ScoreItem, ScoreStats, score_fixed_batches
from seal_audit.score.warm import RMLoadFailed, score_spec
from seal_audit.store.run_store import SCORES, RunStore

SCORES_TABLE = SCORES
SCORE_COLUMNS = ["pair_id", "side", "rm", "reward", "n_tokens", "truncated", "variant"]
SELF_CHECK_SIZES = (1, 7, 64)


@dataclass(frozen=True)
class RMRunInfo:
    """How scoring went for one RM (printed by the CLI, recorded in the manifest)."""

    name: str
    spec: str
    role: str | None
    n_texts: int
    n_cached: int
    n_computed: int
    n_truncated: int
    n_forward: int
    seconds: float
    texts_per_s: float
    computed_per_s: float
    loaded: bool = True
    """Whether the model was loaded; False when every reward came from the cache (a warm run)."""


@dataclass(frozen=True)
class SelfCheckResult:
    """Largest reward difference between batch sizes on the same sampled texts."""

    rm: str
    n_texts: int
    batch_sizes: tuple[int, ...]
    max_abs_dev: float
    tolerance: float
    passed: bool


@dataclass(frozen=True)
class ScoreRunResult:
    n_pairs: int
    n_rows: int
    rms: tuple[RMRunInfo, ...]
    self_checks: tuple[SelfCheckResult, ...]
    failed_rms: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """RMs that could not be loaded (name → reason): the others were scored and written (issue 20)."""

    @property
    def n_truncated(self) -> int:
        return sum(r.n_truncated for r in self.rms)


def pair_items(pairs: Sequence[PreferencePair], variant: str = "original") -> list[ScoreItem]:
    """Both sides of every pair, each with its own context (diverging pairs keep theirs)."""
    return [
        ScoreItem(
            pair_id=p.pair_id, side=s, context=p.context_for(s), response=p.response(s), variant=variant
        )
        for p in pairs
        for s in SIDES
    ]


def scores_frame(scores: Sequence[Score]) -> pd.DataFrame:
    """The long ``scores`` table: one row per (pair_id, side, rm, variant)."""
    df = pd.DataFrame([s.model_dump() for s in scores], columns=SCORE_COLUMNS)
    df["n_tokens"] = df["n_tokens"].astype("Int64")
    df["truncated"] = df["truncated"].astype(bool)
    df["reward"] = df["reward"].astype("float64")
    return df


def merge_scores(store: RunStore, scores: Sequence[Score]) -> pd.DataFrame:
    """Write ``scores`` into the run's table, replacing rows with the same (pair_id, side, rm, variant).

    Rows of other RMs and variants are kept, so the rewrite stage and later ``--rm`` additions
    extend the table instead of overwriting it.
    """
    new = scores_frame(scores)
    if store.has_table(SCORES_TABLE):
        old = store.read_table(SCORES_TABLE)
        keys = ["pair_id", "side", "rm", "variant"]
        replaced = old.set_index(keys).index.isin(new.set_index(keys).index)
        new = pd.concat([old[~replaced], new], ignore_index=True)
        new["n_tokens"] = new["n_tokens"].astype("Int64")
    store.write_table(SCORES_TABLE, new)
    return new


def default_tolerance(model: RewardModel) -> float:
    """1e-4 in fp32; half precision cannot promise that, so 5e-2 there (see ``seal score --help``)."""
    return 1e-4 if str(model.identity.get("dtype", "float32")) == "float32" else 5e-2


def self_check(
    model: RewardModel,
    items: Sequence[ScoreItem],
    *,
    rm: str = "rm",
    sizes: Sequence[int] = SELF_CHECK_SIZES,
    sample: int = 70,
    seed: int = 0,
    tolerance: float | None = None,
) -> SelfCheckResult:
    """Score a seeded sample at each batch size (input order, so batches mix lengths and pad)."""
    rng = random.Random(seed)
    chosen = rng.sample(list(items), min(sample, len(items)))
    runs = [score_fixed_batches(model, chosen, size) for size in sizes]
    dev = max(
        (abs(a - b) for other in runs[1:] for a, b in zip(runs[0], other, strict=True)),
        default=0.0,
    )
    tol = default_tolerance(model) if tolerance is None else tolerance
    return SelfCheckResult(
        rm=rm,
        n_texts=len(chosen),
        batch_sizes=tuple(sizes),
        max_abs_dev=float(dev),
        tolerance=tol,
        passed=bool(dev <= tol),
    )


def rm_manifest_entry(spec: RMSpec, model: RewardModel) -> RMRecord:
    """The RM's manifest record: spec, explicit role, the options it ran with, what the backend resolved."""
    return RMRecord(
        spec=spec.spec, role=spec.role, options=spec.options.recorded(), identity=dict(model.identity)
    )


ProgressFactory = Callable[[str, int], Callable[[int], None]]


def score_run(
    store: RunStore,
    rms: Sequence[RMSpec],
    *,
    models: Mapping[str, RewardModel] | None = None,
    chunk_size: int = 2048,
    run_self_check: bool = False,
    self_check_tolerance: float | None = None,
    seed: int = 0,
    progress: ProgressFactory | None = None,
    log: Callable[[str], None] | None = None,
) -> ScoreRunResult:
    """Score every text of the run's pairs under each RM and write the ``scores`` table.

    RMs are loaded one at a time (``models`` may supply ready ones by name) and released after
    use, so two large RMs never share memory; an RM whose every reward is cached is not loaded at
    all (``score.warm``). With ``run_self_check`` each RM is also checked for
    batch invariance on a seeded sample; a failure raises after everything is recorded.
    """
    if not rms:
        raise SealError("no reward model given (use --rm NAME=SPEC)")
    names = [s.name for s in rms]
    if len(set(names)) != len(names):
        raise SealError(f"RM names must be unique, got {names}")
    pairs = store.read_pairs()
    items = pair_items(pairs)
    pending = record_requested_rms(store, rms)
    infos: list[RMRunInfo] = []
    checks: list[SelfCheckResult] = []
    all_scores: list[Score] = []
    manifest_rms: dict[str, RMRecord] = {}
    failed: dict[str, str] = {}
    for spec in rms:
        try:
            done = score_spec(
                spec,
                items,
                cache=store.cache,
                model=(models or {}).get(spec.name),
                need_model=run_self_check,
                chunk_size=chunk_size,
                progress=progress(spec.name, len(items)) if progress else None,
                log=log,
            )
        except RMLoadFailed as exc:  # one RM that cannot be loaded costs only itself (issue 20)
            failed[spec.name] = exc.reason
            if log:
                log(f"{spec.name}: FAILED to load {spec.spec}: {exc.reason}")
            continue
        all_scores.extend(done.scores)
        infos.append(rm_run_info(spec, done.stats, loaded=done.loaded))
        manifest_rms[spec.name] = rm_manifest_entry(spec, done.model)
        if run_self_check:
            checks.append(
                self_check(done.model, items, rm=spec.name, seed=seed, tolerance=self_check_tolerance)
            )
        del done
        gc.collect()
    store.forget_rms(pending & failed.keys())
    if failed and not infos:
        raise SealError("no RM could be loaded: " + "; ".join(f"{n}: {r}" for n, r in failed.items()))
    extra: dict[str, Any] = {}
    if failed:
        extra = {
            "failed_rms": failed,
            "status": "partial",
            "message": "RM(s) failed to load: " + ", ".join(failed),
        }
    res = write_score_stage(store, len(pairs), all_scores, infos, checks, manifest_rms, extra)
    return dataclasses.replace(res, failed_rms=failed)


def record_requested_rms(store: RunStore, rms: Sequence[RMSpec]) -> frozenset[str]:
    """Record the RMs about to be scored (spec, role, options; the identity follows once loaded)
    before any is loaded: a run killed before its first batch is then resumed by ``seal score RUN``
    (which scores the RMs the manifest names) instead of failing with "no reward model given".
    Returns the names that were not recorded before; those of them that then fail to load are
    forgotten again (``RunStore.forget_rms``), so the manifest names no RM that was never loaded."""
    have = store.manifest.rms
    new = {
        s.name: RMRecord(spec=s.spec, role=s.role, options=s.options.recorded())
        for s in rms
        if s.name not in have
    }
    if new:
        store.record_rms(new)
    return frozenset(new)


def rm_run_info(spec: RMSpec, st: ScoreStats, *, loaded: bool = True) -> RMRunInfo:
    """The summary of one RM's scoring, whichever engine produced the stats."""
    return RMRunInfo(
        name=spec.name,
        spec=spec.spec,
        role=spec.role,
        n_texts=st.n_items,
        n_cached=st.n_cached,
        n_computed=st.n_computed,
        n_truncated=st.n_truncated,
        n_forward=st.n_forward,
        seconds=st.seconds,
        texts_per_s=st.texts_per_s,
        computed_per_s=st.computed_per_s,
        loaded=loaded,
    )


def write_score_stage(
    store: RunStore,
    n_pairs: int,
    scores: Sequence[Score],
    infos: Sequence[RMRunInfo],
    checks: Sequence[SelfCheckResult],
    manifest_rms: Mapping[str, RMRecord],
    extra: Mapping[str, Any] | None = None,
) -> ScoreRunResult:
    """Table, manifest and stage record of a finished scoring run: shared by the local and Ray
    engines so that a run directory does not depend on which engine filled it."""
    df = merge_scores(store, scores)
    store.record_rms(dict(manifest_rms))
    info: dict[str, Any] = {
        "n_pairs": n_pairs,
        "n_rows": len(df),
        "truncated": {i.name: i.n_truncated for i in infos},
        "rms": {i.name: asdict(i) for i in infos},
        # this run's outcome: record_stage drops the earlier run's message and failed RMs with it
        "status": "complete",
        **(extra or {}),
    }
    if checks:
        info["self_check"] = {c.rm: asdict(c) for c in checks}
    store.record_stage("score", info)
    failed = [c for c in checks if not c.passed]
    if failed:
        detail = "; ".join(f"{c.rm}: max deviation {c.max_abs_dev:.3g} > {c.tolerance:g}" for c in failed)
        raise SealError(
            f"self-check FAILED: rewards change with batch size ({detail}); padding is leaking into "
            "the model's output, so rewards depend on which texts share a batch. Scores were written "
            "but should not be trusted; try --dtype float32 or report the model"
        )
    return ScoreRunResult(n_pairs=n_pairs, n_rows=len(df), rms=tuple(infos), self_checks=tuple(checks))
