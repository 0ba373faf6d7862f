"""The scoring engine: streaming chunks → cache lookup → tokenize → length-sorted token-budget batches.

Per chunk of items (bounded memory however many pairs there are): the cache is asked for every
text at once; only misses are encoded (tokenization happens here, outside the model call) and
grouped into batches by padded-token budget after sorting by length; each batch's rewards go into
the cache in their own transaction as soon as they exist. A killed run therefore loses at most
one batch, and a rerun with the same RM settings is a pure cache read.

RMs that can cache their features (``CachesEmbeddings``: the local embed RM) are handed the same
cache while a chunk is scored, so an embedding computed for one RM or during training is reused by
every RM on the same encoder settings; without a cache they compute everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from seal_audit.backends.reward import CachesEmbeddings, Encoded, RewardModel, plan_for
from seal_audit.data.errors import SealError
from seal_audit.data.records import Score, Side, text_hash
from seal_audit.store.cache import Cache, cache_key

NAMESPACE = "score"
"""Cache namespace of rewards; keys are ``rm:<backend>|<settings hash>|<sha256(context \\0 response)>``."""


@dataclass(frozen=True)
class ScoreItem:
    """One text to score: a pair's side (or a rewritten variant of it) as (context, response)."""

    pair_id: str
    side: Side
    context: str
    response: str
    variant: str = "original"
    """``original``, or the rewrite transform that produced this text."""


@dataclass
class ScoreStats:
    """Counters of one scorer, accumulated over all the items it has seen."""

    n_items: int = 0
    n_cached: int = 0
    """Items whose reward came from the cache (including duplicates of a text scored in the run)."""
    n_computed: int = 0
    """Distinct texts that went through the model (only through the head when an RM's features
    came from the cache)."""
    n_truncated: int = 0
    """Items whose input was cut to the model's max length."""
    n_forward: int = 0
    """Forward passes (batches) run."""
    seconds: float = 0.0
    seconds_model: float = 0.0
    """Time inside ``score_batch`` (model forward, host/device copies)."""

    @property
    def texts_per_s(self) -> float:
        return self.n_items / self.seconds if self.seconds > 0 else float("nan")

    @property
    def computed_per_s(self) -> float:
        return self.n_computed / self.seconds if self.seconds > 0 else float("nan")


Progress = Callable[[int], None]


@dataclass
class Scorer:
    """Scores items with one RM under one name, through the cache when one is given."""

    model: RewardModel
    rm: str = "rm"
    cache: Cache | None = None
    chunk_size: int = 2048
    progress: Progress | None = None
    stats: ScoreStats = field(default_factory=ScoreStats)
    share_features: bool = True
    """Hand ``cache`` to RMs that cache their features (embeddings); False computes them afresh."""

    def __post_init__(self) -> None:
        self._component = f"rm:{self.model.name}"
        self._settings = dict(self.model.identity)

    def key(self, context: str, response: str) -> str:
        return cache_key(self._component, self._settings, text_hash(context + "\x00" + response))

    def score(self, items: Iterable[ScoreItem]) -> list[Score]:
        out: list[Score] = []
        for chunk in self.iter_chunks(items):
            out.extend(chunk)
        return out

    def iter_chunks(self, items: Iterable[ScoreItem]) -> Iterator[list[Score]]:
        """Scores chunk by chunk, in input order within each chunk."""
        chunk: list[ScoreItem] = []
        for item in items:
            chunk.append(item)
            if len(chunk) >= self.chunk_size:
                yield self._score_chunk(chunk)
                chunk = []
        if chunk:
            yield self._score_chunk(chunk)

    def _score_chunk(self, chunk: Sequence[ScoreItem]) -> list[Score]:
        with feature_cache(self.model, self.cache if self.share_features else None):
            return self._score_chunk_inner(chunk)

    def _score_chunk_inner(self, chunk: Sequence[ScoreItem]) -> list[Score]:
        start = time.perf_counter()
        keys = [self.key(it.context, it.response) for it in chunk]
        count: dict[str, int] = {}
        first: dict[str, ScoreItem] = {}
        for k, it in zip(keys, chunk, strict=True):
            count[k] = count.get(k, 0) + 1
            first.setdefault(k, it)
        unique = list(count)
        values: dict[str, Any] = self.cache.get_many(NAMESPACE, unique) if self.cache is not None else {}
        hits = sum(count[k] for k in values)
        self.stats.n_cached += hits
        if hits and self.progress:
            self.progress(hits)
        todo = [k for k in unique if k not in values]
        if todo:
            encoded = self.model.encode([(first[k].context, first[k].response) for k in todo])
            for idx in plan_for(self.model, [e.length for e in encoded]):
                batch = [encoded[i] for i in idx]
                rewards = self._forward(batch)
                new = {
                    todo[i]: {"reward": r, "n_tokens": e.n_tokens, "truncated": e.truncated}
                    for i, e, r in zip(idx, batch, rewards, strict=True)
                }
                if self.cache is not None:
                    self.cache.put_many(NAMESPACE, new)
                values.update(new)
                self.stats.n_computed += len(idx)
                # duplicates of a computed text are served from it, and count as cached
                self.stats.n_cached += sum(count[todo[i]] - 1 for i in idx)
                if self.progress:
                    self.progress(sum(count[todo[i]] for i in idx))
        scores = []
        for k, it in zip(keys, chunk, strict=True):
            v = values[k]
            truncated = bool(v.get("truncated", False))
            self.stats.n_truncated += truncated
            n_tok = v.get("n_tokens")
            scores.append(
                Score(
                    pair_id=it.pair_id,
                    side=it.side,
                    rm=self.rm,
                    reward=float(v["reward"]),
                    n_tokens=int(n_tok) if n_tok is not None else None,
                    truncated=truncated,
                    variant=it.variant,
                )
            )
        self.stats.n_items += len(chunk)
        self.stats.seconds += time.perf_counter() - start
        return scores

    def _forward(self, batch: Sequence[Encoded]) -> list[float]:
        t0 = time.perf_counter()
        try:
            rewards = forward_split_on_oom(self.model, batch)
        finally:
            self.stats.seconds_model += time.perf_counter() - t0
        self.stats.n_forward += 1
        return rewards


@contextmanager
def feature_cache(model: RewardModel, cache: Cache | None) -> Iterator[None]:
    """Within the block, ``model`` reads/writes its features through ``cache`` (None: no cache) if it
    can cache them; its previous cache is restored afterwards. Other RMs are left alone."""
    if not isinstance(model, CachesEmbeddings):
        yield
        return
    previous = model.attach_cache(cache)
    try:
        yield
    finally:
        model.attach_cache(previous)


def forward_split_on_oom(model: RewardModel, batch: Sequence[Encoded]) -> list[float]:
    """``model.score_batch``, halving the batch on an accelerator out-of-memory error.

    Rewards do not depend on batch composition (that is what the self-check verifies), so a
    split changes nothing but speed; the caller should lower ``batch_tokens`` if it happens often.
    """
    try:
        return model.score_batch(batch)
    except Exception as exc:
        if "OutOfMemory" not in type(exc).__name__ and "out of memory" not in str(exc).lower():
            raise
        if len(batch) == 1:
            raise SealError(
                f"out of memory on a single text of {batch[0].length} tokens; lower --max-length "
                "or use a device with more memory"
            ) from exc
        _empty_accelerator_cache()
        half = len(batch) // 2
        return forward_split_on_oom(model, batch[:half]) + forward_split_on_oom(model, batch[half:])


def _empty_accelerator_cache() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def score_texts(
    model: RewardModel,
    items: Iterable[ScoreItem],
    *,
    rm: str = "rm",
    cache: Cache | None = None,
    chunk_size: int = 2048,
    progress: Progress | None = None,
) -> list[Score]:
    """Rewards of ``items`` under ``model`` as Score records (in input order), cached if a cache is given.

    This is also the entry point of other stages: the rewrite stage passes items whose
    ``variant`` is the transform's name and gets the rewritten texts' rewards, cached the same way.
    """
    return Scorer(model=model, rm=rm, cache=cache, chunk_size=chunk_size, progress=progress).score(items)


def score_fixed_batches(model: RewardModel, items: Sequence[ScoreItem], batch_size: int) -> list[float]:
    """Uncached rewards with fixed-count batches in input order (mixed lengths, so real padding).

    The self-check and the tests use this to show that batch composition does not move rewards;
    cached features are bypassed, so every text really goes through the model in these batches.
    """
    with feature_cache(model, None):
        encoded = model.encode([(it.context, it.response) for it in items])
        out: list[float] = []
        for s in range(0, len(encoded), batch_size):
            out.extend(model.score_batch(encoded[s : s + batch_size]))
    return out
