"""SCORE on a Ray cluster: the local scorer's model code, run by Ray Data actors; the driver owns the cache.

Why this shape:

* The run's cache is one SQLite file on the driver's disk, which workers on other nodes cannot
  open. So the driver looks every text up first and ships only the misses, and it writes each
  batch of rewards into the cache as the batch streams back (``iter_batches``): a killed run
  loses only the batches in flight, and the next run -- Ray or local -- sends only what is left.
* Cache keys are the local ``Scorer``'s, built from the RM's ``identity``. The identity depends on
  where the model runs (bf16 on a GPU, fp32 on a CPU), so it is read from a probe task that
  loads the RM with the actors' own resources, never from the driver; every actor checks that
  it loaded the same identity, so a mixed cluster fails loudly instead of caching under wrong keys.
* The actors run ``encode`` + ``plan_batches`` + ``score_batch`` exactly as the local scorer does
  (rewards do not depend on batch composition -- the self-check verifies that), and the final
  ``Score`` rows are produced by the local ``Scorer`` reading the now complete cache, so the
  ``scores`` table is built by one code path whichever engine filled the cache.

``import ray`` happens only inside functions: importing this module is cheap and Ray-free.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import pandas as pd

from seal_audit.backends.ray_session import ray_session
from seal_audit.backends.reward import Encoded, RMOptions, RMSpec, load_reward_model, plan_for
from seal_audit.data.errors import ConfigError, SealError
from seal_audit.data.records import RMRecord, Score
from seal_audit.score.engine import NAMESPACE, ScoreItem, Scorer, ScoreStats, forward_split_on_oom
from seal_audit.score.stage import (
    ProgressFactory,
    RMRunInfo,
    ScoreRunResult,
    pair_items,
    record_requested_rms,
    rm_manifest_entry,
    rm_run_info,
    write_score_stage,
)
from seal_audit.store.cache import settings_hash
from seal_audit.store.run_store import RunStore

Log = Callable[[str], None]

DEFAULT_BATCH_SIZE = 256
"""Texts per Ray Data batch: the unit shipped to an actor, streamed back and committed to the cache
(a killed run loses at most the batches in flight). Each actor still packs its batch into forward
passes by the RM's token budget, so this is not the forward batch size."""
SMALL_CLUSTER_CPUS = 4
"""At or below this many CPUs an actor asks for half a CPU: whole-CPU actors leave Ray Data no CPU
for its own tasks, and the pipeline waits forever (observed on 2 cores)."""


# --- resources -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActorResources:
    """How many scoring actors to run and what each one reserves."""

    num_actors: int
    num_cpus: float
    num_gpus: float

    @property
    def torch_threads(self) -> int:
        return max(1, int(self.num_cpus))


def plan_resources(
    cluster: Mapping[str, float],
    *,
    num_actors: int | None = None,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
) -> ActorResources:
    """Actor count and per-actor reservation for a cluster's totals, or a ConfigError for a request
    the cluster can never grant (Ray would otherwise leave the actors pending forever).

    Defaults: one GPU per actor and one actor per GPU where there are GPUs; on CPU-only clusters
    half the CPUs go to actors (the rest to Ray Data's own tasks and the driver), at half a CPU
    per actor on small machines and one CPU per actor otherwise.
    """
    cpus = float(cluster.get("CPU", 0.0))
    gpus = float(cluster.get("GPU", 0.0))
    g = (1.0 if gpus >= 1 else 0.0) if num_gpus is None else float(num_gpus)
    default_cpus = 0.5 if cpus <= SMALL_CLUSTER_CPUS else 1.0
    c = default_cpus if num_cpus is None else float(num_cpus)
    if c <= 0 or g < 0:
        raise ConfigError(f"ray: CPUs per actor must be > 0 and GPUs per actor >= 0 (got {c:g}, {g:g})")
    if g > gpus:
        raise ConfigError(f"ray: {g:g} GPU(s) per actor requested but the cluster has {gpus:g}")
    if c > cpus:
        raise ConfigError(f"ray: {c:g} CPU(s) per actor requested but the cluster has {cpus:g}")
    if num_actors is None:
        n = int(gpus // g) if g > 0 else int((cpus / 2) // c)
        n = max(1, n)
    else:
        n = int(num_actors)
        if n < 1:
            raise ConfigError(f"ray: the number of actors must be at least 1 (got {n})")
    return ActorResources(num_actors=n, num_cpus=c, num_gpus=g)


# --- what runs on the workers --------------------------------------------------------------------
@dataclass(frozen=True)
class ProbedModel:
    """An RM's name and identity as a worker sees them: enough to build the local scorer's cache
    keys and to read rewards back, without loading the model on the driver."""

    name: str
    identity: Mapping[str, Any]
    batch_tokens: int
    max_batch: int

    def encode(self, items: Sequence[tuple[str, str]]) -> list[Encoded]:
        raise SealError(
            f"internal: {len(items)} text(s) of RM {self.name} are missing from the cache after the Ray run"
        )

    def score_batch(self, batch: Sequence[Encoded]) -> list[float]:  # pragma: no cover - never reached
        raise SealError("internal: the Ray engine's stand-in RM cannot run a model")


@dataclass(frozen=True)
class LoadFailure:
    """The probe could not load the RM (``reason`` in the local engine's words): that RM is recorded
    as failed and the others are scored, as with the local engine (issue 20)."""

    reason: str


def probe_model(spec: str, options: RMOptions, threads: int) -> ProbedModel | LoadFailure:
    """Load the RM where an actor would, and report what the cache keys need (or why it failed)."""
    try:
        model = load_reward_model(spec, options)
    except Exception as exc:  # returned, not raised: Ray would wrap it in a RayTaskError traceback
        return LoadFailure(str(exc) if isinstance(exc, SealError) else f"{type(exc).__name__}: {exc}")
    _set_torch_threads(threads)
    return ProbedModel(model.name, dict(model.identity), model.batch_tokens, model.max_batch)


def _set_torch_threads(threads: int) -> None:
    """Call after loading the RM. Without it torch may start one thread per core in every actor,
    and the actors fight over the cores; RMs that never imported torch are left alone."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


class RewardActor:
    """A Ray Data ``map_batches`` callable: loads the RM once, then scores batches of misses.

    Output columns: ``key``, ``reward``, ``n_tokens`` (-1 for RMs without a tokenizer: Arrow has no
    int-or-None column that survives every block format), ``truncated``, ``forward`` (forward passes
    run for this batch, on its first row).
    """

    def __init__(self, spec: str, options: RMOptions, expected: Mapping[str, Any], threads: int) -> None:
        self.model = load_reward_model(spec, options)
        _set_torch_threads(threads)
        want = (expected["name"], expected["settings"])
        got = (self.model.name, settings_hash(dict(self.model.identity)))
        if got != want:
            raise SealError(
                f"RM {spec}: this worker loaded {self.model.name} with identity {dict(self.model.identity)}, "
                f"unlike the probe ({expected['identity']}); the cluster's nodes differ (device or dtype) -- "
                "pin them with ?device=...&dtype=... in the RM spec"
            )

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        texts = list(zip(batch["context"].tolist(), batch["response"].tolist(), strict=True))
        encoded = self.model.encode(texts)
        rewards = [0.0] * len(encoded)
        n_forward = 0
        for idx in plan_for(self.model, [e.length for e in encoded]):
            values = forward_split_on_oom(self.model, [encoded[i] for i in idx])
            n_forward += 1
            for i, v in zip(idx, values, strict=True):
                rewards[i] = float(v)
        return pd.DataFrame(
            {
                "key": batch["key"].tolist(),
                "reward": pd.Series(rewards, dtype="float64"),
                "n_tokens": [-1 if e.n_tokens is None else int(e.n_tokens) for e in encoded],
                "truncated": [bool(e.truncated) for e in encoded],
                "forward": [n_forward] + [0] * (len(encoded) - 1),
            }
        )


# --- the driver ----------------------------------------------------------------------------------
class _RMLoadFailed(SealError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def miss_frames(
    keys: Sequence[str], items: Sequence[ScoreItem], cached: Mapping[str, Any], batch_size: int
) -> list[pd.DataFrame]:
    """The distinct texts not in the cache, longest first, in frames of ``batch_size`` rows.

    Longest first for the reason the local planner sorts: the biggest batch runs first, so an
    out-of-memory error shows at once; and neighbours of similar length pad little.
    """
    seen: set[str] = set()
    rows: list[tuple[str, str, str]] = []
    for k, it in zip(keys, items, strict=True):
        if k in cached or k in seen:
            continue
        seen.add(k)
        rows.append((k, it.context, it.response))
    rows.sort(key=lambda r: -(len(r[1]) + len(r[2])))
    return [
        pd.DataFrame(rows[s : s + batch_size], columns=["key", "context", "response"])
        for s in range(0, len(rows), batch_size)
    ]


def _cache_value(reward: float, n_tokens: int, truncated: bool) -> dict[str, Any]:
    """The local scorer's cache value, so either engine can read what the other wrote."""
    return {
        "reward": float(reward),
        "n_tokens": None if n_tokens < 0 else int(n_tokens),
        "truncated": truncated,
    }


def _score_rm_ray(
    ray: Any,
    store: RunStore,
    spec: RMSpec,
    items: Sequence[ScoreItem],
    res: ActorResources,
    *,
    batch_size: int,
    progress: ProgressFactory | None,
    log: Log | None,
) -> tuple[list[Score], RMRunInfo, RMRecord]:
    t0 = time.perf_counter()
    probe = ray.remote(probe_model).options(num_cpus=res.num_cpus, num_gpus=res.num_gpus)
    model = ray.get(probe.remote(spec.spec, spec.options, res.torch_threads))
    if isinstance(model, LoadFailure):
        raise _RMLoadFailed(model.reason)
    scorer = Scorer(model=model, rm=spec.name, cache=store.cache)
    keys = [scorer.key(it.context, it.response) for it in items]
    count = Counter(keys)
    cached = store.cache.get_many(NAMESPACE, list(count))
    frames = miss_frames(keys, items, cached, batch_size)
    n_todo = sum(len(f) for f in frames)
    if log:
        log(
            f"{spec.name}: {model.name} identity read on a worker in {time.perf_counter() - t0:.1f}s; "
            f"{len(count) - n_todo} distinct texts cached, {n_todo} to score on "
            f"{min(res.num_actors, len(frames))} actor(s)"
        )
    advance = progress(spec.name, len(items)) if progress else None
    hits = sum(count[k] for k in cached)
    if advance and hits:
        advance(hits)
    n_computed = n_forward = 0
    if frames:
        ds = ray.data.from_pandas(frames).map_batches(
            RewardActor,
            fn_constructor_kwargs={
                "spec": spec.spec,
                "options": spec.options,
                "expected": {
                    "name": model.name,
                    "settings": settings_hash(dict(model.identity)),
                    "identity": dict(model.identity),
                },
                "threads": res.torch_threads,
            },
            batch_size=batch_size,
            batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(size=min(res.num_actors, len(frames))),
            num_cpus=res.num_cpus,
            num_gpus=res.num_gpus or None,
        )
        batches = iter(ds.iter_batches(batch_size=None, batch_format="pandas"))
        try:
            for out in batches:
                new = {
                    str(k): _cache_value(r, int(n), bool(t))
                    for k, r, n, t in zip(
                        out["key"], out["reward"], out["n_tokens"], out["truncated"], strict=True
                    )
                }
                store.cache.put_many(NAMESPACE, new)  # committed before anything else can fail
                n_computed += len(new)
                n_forward += int(out["forward"].sum())
                if advance:
                    advance(sum(count[k] for k in new))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()  # ends the Ray Data execution (and its actors) on Ctrl-C too
    # A pure cache read through the local scorer: the rows are built by the same code either way.
    scores = scorer.score(items)
    stats = ScoreStats(
        n_items=len(items),
        n_cached=len(items) - n_computed,
        n_computed=n_computed,
        n_truncated=scorer.stats.n_truncated,
        n_forward=n_forward,
        seconds=time.perf_counter() - t0,
    )
    return scores, rm_run_info(spec, stats), rm_manifest_entry(spec, model)


def score_run_ray(
    store: RunStore,
    rms: Sequence[RMSpec],
    *,
    address: str | None = None,
    num_actors: int | None = None,
    num_cpus_per_actor: float | None = None,
    num_gpus_per_actor: float | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressFactory | None = None,
    log: Log | None = None,
) -> ScoreRunResult:
    """``score_run`` on Ray: same rewards, same cache keys, same ``scores`` table and manifest.

    Only texts missing from the run's cache are sent to the cluster, and every returned batch is
    committed to the cache at once, so an interrupted run resumes and a Ray run followed by a
    local one (or the reverse) is a pure cache read. ``address=None`` starts a local Ray instance
    for the duration of the call; an address joins that cluster and leaves it running.
    """
    if not rms:
        raise SealError("no reward model given (use --rm NAME=SPEC)")
    names = [s.name for s in rms]
    if len(set(names)) != len(names):
        raise SealError(f"RM names must be unique, got {names}")
    if batch_size < 1:
        raise ConfigError(f"ray batch size must be at least 1 (got {batch_size})")
    pairs = store.read_pairs()
    items = pair_items(pairs)
    pending = record_requested_rms(store, rms)  # before any load: a killed run can be resumed
    all_scores: list[Score] = []
    infos: list[RMRunInfo] = []
    manifest_rms: dict[str, Any] = {}
    failed: dict[str, str] = {}
    with ray_session(address, log=log) as ray:
        res = plan_resources(
            ray.cluster_resources(),
            num_actors=num_actors,
            num_cpus=num_cpus_per_actor,
            num_gpus=num_gpus_per_actor,
        )
        if log:
            log(
                f"ray: up to {res.num_actors} actor(s) x ({res.num_cpus:g} CPU, {res.num_gpus:g} GPU), "
                f"{batch_size} texts per batch"
            )
        for spec in rms:
            try:
                scores, info, entry = _score_rm_ray(
                    ray, store, spec, items, res, batch_size=batch_size, progress=progress, log=log
                )
            except _RMLoadFailed as exc:  # one RM that cannot be loaded costs only itself (issue 20)
                failed[spec.name] = exc.reason
                if log:
                    log(f"{spec.name}: FAILED to load {spec.spec}: {exc.reason}")
                continue
            all_scores.extend(scores)
            infos.append(info)
            manifest_rms[spec.name] = entry
    store.forget_rms(pending & failed.keys())
    if failed and not infos:
        raise SealError("no RM could be loaded: " + "; ".join(f"{n}: {r}" for n, r in failed.items()))
    extra: dict[str, Any] = {
        "engine": "ray",
        "ray": {**asdict(res), "address": address or "local", "batch_size": batch_size},
    }
    if failed:  # the same record as the local engine's: the run is partial, the others are kept
        extra.update(
            failed_rms=failed, status="partial", message="RM(s) failed to load: " + ", ".join(failed)
        )
    result = write_score_stage(store, len(pairs), all_scores, infos, (), manifest_rms, extra)
    return replace(result, failed_rms=failed)
