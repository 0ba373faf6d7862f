"""Scoring by RM spec, loading the model only when some reward is not in the cache (issue 18).

After every real load the scorer memoises ``load inputs → (backend name, identity)`` in the run's
cache (namespace ``rm_identity``; see ``backends.reward.warm`` for what the load inputs are). On
the next run with the same inputs the reward keys are computed from the memoised identity; when
every key is present the rewards are read and no model, tokenizer or torch is loaded. If even one
text is missing the model is loaded and scored as before (the cached texts still come from the
cache), so a memo can make a run faster but never makes it score differently: the rewards it
serves are the ones the model with that very identity computed, and that identity is what the
manifest records.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from seal_audit.backends.reward import Encoded, RewardModel, RMSpec, load_reward_model
from seal_audit.backends.reward.warm import load_inputs
from seal_audit.data.errors import SealError
from seal_audit.data.records import Score
from seal_audit.score.engine import NAMESPACE, Progress, ScoreItem, Scorer, ScoreStats
from seal_audit.store.cache import Cache, settings_hash

IDENTITY_NAMESPACE = "rm_identity"
"""Cache namespace of memoised RM identities (keys ``rm_identity|<hash of the load inputs>``)."""


class CachedIdentity:
    """Stands in for an RM whose rewards are all cached: it has the identity, not the model."""

    def __init__(self, name: str, identity: Mapping[str, Any]) -> None:
        self._name = name
        self._identity = dict(identity)

    @property
    def name(self) -> str:
        return self._name

    @property
    def identity(self) -> Mapping[str, Any]:
        return self._identity

    @property
    def batch_tokens(self) -> int:
        return 1

    @property
    def max_batch(self) -> int:
        return 1

    def encode(self, items: Sequence[tuple[str, str]]) -> list[Encoded]:
        raise SealError("internal: a cache-only RM was asked to encode texts (a reward was not cached)")

    def score_batch(self, batch: Sequence[Encoded]) -> list[float]:
        raise SealError("internal: a cache-only RM was asked to run (a reward was not cached)")


class RMLoadFailed(SealError):
    """The RM could not be loaded (``reason`` says why); the scoring stage records it and goes on
    with the other RMs (issue 20). Errors while scoring are not wrapped."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SpecScores:
    """The rewards of one RM over some items, and how they were obtained."""

    scores: list[Score]
    stats: ScoreStats
    model: RewardModel
    """The loaded model, or a ``CachedIdentity`` when every reward came from the cache."""
    loaded: bool
    """Whether the model was loaded (False: warm, cache only)."""
    load_seconds: float


def memo_key(spec: RMSpec) -> str | None:
    inputs = load_inputs(spec.spec, spec.options)
    return None if inputs is None else f"{IDENTITY_NAMESPACE}|{settings_hash(inputs)}"


def cached_identity(cache: Cache, key: str) -> CachedIdentity | None:
    value = cache.get(IDENTITY_NAMESPACE, key)
    if not isinstance(value, dict) or not isinstance(value.get("identity"), dict):
        return None
    name = value.get("name")
    return CachedIdentity(str(name), value["identity"]) if isinstance(name, str) else None


def remember_identity(cache: Cache, key: str, model: RewardModel) -> None:
    cache.put(IDENTITY_NAMESPACE, key, {"name": model.name, "identity": dict(model.identity)})


def score_spec(
    spec: RMSpec,
    items: Sequence[ScoreItem],
    *,
    cache: Cache | None,
    model: RewardModel | None = None,
    need_model: bool = False,
    chunk_size: int = 2048,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> SpecScores:
    """Rewards of ``items`` under the RM ``spec`` names; loads it only if a reward is missing.

    ``model`` is a ready model (used as is); ``need_model`` forces a load (the self-check runs
    the model whatever the cache holds).
    """
    key = memo_key(spec) if cache is not None and model is None else None
    if key is not None and cache is not None and not need_model:
        standin = cached_identity(cache, key)
        if standin is not None:
            scorer = Scorer(
                model=standin, rm=spec.name, cache=cache, chunk_size=chunk_size, progress=progress
            )
            keys = list(dict.fromkeys(scorer.key(it.context, it.response) for it in items))
            if cache.has_all(NAMESPACE, keys):
                scores = scorer.score(items)
                if log:
                    log(f"{spec.name}: every reward cached; {spec.spec} not loaded")
                return SpecScores(scores, scorer.stats, standin, loaded=False, load_seconds=0.0)
    t0 = time.perf_counter()
    ready = model is not None
    if model is None:
        try:
            model = load_reward_model(spec.spec, spec.options)
        except Exception as exc:
            raise RMLoadFailed(
                str(exc) if isinstance(exc, SealError) else f"{type(exc).__name__}: {exc}"
            ) from exc
    seconds = time.perf_counter() - t0
    if log and not ready:
        log(f"{spec.name}: loaded {spec.spec} in {seconds:.1f}s")
    scorer = Scorer(model=model, rm=spec.name, cache=cache, chunk_size=chunk_size, progress=progress)
    scores = scorer.score(items)
    if key is not None and cache is not None:
        remember_identity(cache, key, model)
    return SpecScores(scores, scorer.stats, model, loaded=not ready, load_seconds=seconds)
