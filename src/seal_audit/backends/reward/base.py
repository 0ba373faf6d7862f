"""The reward-model Protocol, its options record, and the token-budget batch planner.

The scorer drives every RM in two phases: ``encode`` (tokenize, truncate, measure; pure CPU work
done outside the model call) and ``score_batch`` (one forward pass over a batch the scorer formed
from the encoded lengths). Splitting the phases is what lets the scorer sort by length, pack
batches by a token budget, and cache per text, identically for every backend.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from seal_audit.config import RMOptions as RMOptions
from seal_audit.config import RMRoleName
from seal_audit.data.errors import ConfigError

if TYPE_CHECKING:
    from seal_audit.store.cache import Cache

InputFormat = Literal["text-pair", "chat-template", "concat"]
INPUT_FORMATS: tuple[InputFormat, ...] = ("text-pair", "chat-template", "concat")


_OPTION_PARSERS: dict[str, Any] = {
    "format": str,
    "template": str,
    "max_length": int,
    "batch_tokens": int,
    "max_batch": int,
    "device": str,
    "dtype": str,
    "logit_index": int,
    "revision": str,
    "trust_remote_code": lambda v: str(v).lower() in ("1", "true", "yes", "on"),
}


def options_from_mapping(values: Mapping[str, Any], base: RMOptions | None = None) -> RMOptions:
    """Validate option names/values (from a spec's ``?k=v`` suffix or a config file) early."""
    out: dict[str, Any] = {}
    for key, raw in values.items():
        k = key.replace("-", "_")
        if k not in _OPTION_PARSERS:
            raise ConfigError(f"unknown RM option '{key}' (known: {', '.join(sorted(_OPTION_PARSERS))})")
        try:
            out[k] = _OPTION_PARSERS[k](raw)
        except ValueError as exc:
            raise ConfigError(f"RM option '{key}': bad value {raw!r}") from exc
    if "format" in out and out["format"] not in INPUT_FORMATS:
        raise ConfigError(f"RM option 'format': {out['format']!r} is not one of {', '.join(INPUT_FORMATS)}")
    return (base or RMOptions()).with_overrides(**out)


@dataclass(frozen=True)
class RMSpec:
    """One RM of a run as the user named it: ``--rm NAME=SPEC`` plus its role and options."""

    name: str
    """The RM's name in the run and in the ``scores`` table (``pre``, ``post``, ``length``...)."""
    spec: str
    """What to load: ``hf:ID``, a directory, ``local:DIR``, ``python:mod:fn``, ``length_chars``..."""
    role: RMRoleName = "extra"
    """pre (not trained on D), post (trained on D), baseline or extra: always given, never guessed."""
    options: RMOptions = field(default_factory=RMOptions)


@dataclass(eq=False)
class Encoded:
    """One (context, response) after encoding: what the scorer batches, and what it reports."""

    length: int
    """Cost of the item in the batch planner's units (tokens; characters for text-only RMs)."""
    n_tokens: int | None
    """Tokens the model actually sees (None for RMs without a tokenizer)."""
    truncated: bool
    """True when context (or, if the response alone was too long, the response) was cut."""
    data: Any
    """Backend-specific payload (token ids, texts)."""


@runtime_checkable
class RewardModel(Protocol):
    """A reward model the scorer can drive: encode outside the model, then score batches."""

    @property
    def name(self) -> str:
        """The backend kind (``hf``, ``local-embed``, ``python``...), used in cache keys."""
        ...

    @property
    def identity(self) -> Mapping[str, Any]:
        """Everything that changes the rewards (model, revision, weights fingerprint, format,
        max length, logit index, dtype): the cache key's settings, recorded in the manifest."""
        ...

    @property
    def batch_tokens(self) -> int:
        """Token budget of one forward pass (padded batch size x longest input)."""
        ...

    @property
    def max_batch(self) -> int: ...

    def encode(self, items: Sequence[tuple[str, str]]) -> list[Encoded]:
        """Tokenize and truncate (context, response) pairs; must not run the model."""
        ...

    def score_batch(self, batch: Sequence[Encoded]) -> list[float]:
        """Rewards of one batch, in order; batch composition must not change the values."""
        ...


@runtime_checkable
class CachesEmbeddings(Protocol):
    """An RM whose features can live in the run store's cache (the local embed RM).

    The scorer attaches its cache while it scores and restores the previous one afterwards;
    RMs without this method (Hugging Face, n-gram, callables, baselines) are simply not offered it.
    """

    def attach_cache(self, cache: Cache | None) -> Cache | None:
        """Use ``cache`` for features from now on (None: compute everything); return the previous."""
        ...


@runtime_checkable
class PaddingFree(Protocol):
    """A model (or encoder) whose forward lays a batch's tokens end to end, padding nothing."""

    @property
    def padding_free(self) -> bool:
        """True when a batch costs the sum of its items' lengths, not count x longest."""
        ...


def is_padding_free(model: object) -> bool:
    """Whether ``plan_batches`` should budget ``model``'s batches by their summed lengths."""
    return isinstance(model, PaddingFree) and bool(model.padding_free)


class Budgeted(Protocol):
    """What ``plan_for`` reads: an RM, or the encoder of an embedder."""

    @property
    def batch_tokens(self) -> int: ...

    @property
    def max_batch(self) -> int: ...


def plan_for(model: Budgeted, lengths: Sequence[int]) -> list[list[int]]:
    """``plan_batches`` with ``model``'s own budget, batch cap and padding (one rule for every caller)."""
    return plan_batches(lengths, model.batch_tokens, model.max_batch, padding_free=is_padding_free(model))


BATCH_OVERHEAD_SHARE = 64
"""A forward pass's fixed cost (op dispatch, thread barriers, small-GEMM inefficiency) is counted as
``batch_tokens // BATCH_OVERHEAD_SHARE`` padded tokens when the planner weighs padding against more
batches: 64 tokens at the CPU budget of 4,096, 512 at the GPU budget of 32,768, where launches cost
relatively more. Measured on the short-text benchmark (``bench_score.py --workload short``): one
4,096-token batch pads 1,974 real tokens to 2,700; the plan below runs 2,172 in 3 batches."""


def plan_batches(
    lengths: Sequence[int],
    batch_tokens: int,
    max_batch: int,
    *,
    sort: bool = True,
    padding_free: bool = False,
) -> list[list[int]]:
    """Group item indices into batches whose padded size (count x longest) fits the token budget.

    Sorting by length (longest first) keeps padding low and puts the biggest batch first, so an
    out-of-memory error shows up at once rather than after an hour. Among the splits of the sorted
    order that fit the budget, the one with the fewest padded tokens plus a fixed cost per batch
    (``BATCH_OVERHEAD_SHARE``) is chosen by dynamic programming: filling every batch to the budget
    pads short texts to the longest of a wide length range (27% extra work on short texts), while
    cutting at every length change would run many tiny forwards. An item longer than the budget
    still gets a batch of its own. ``sort=False`` keeps input order and fills batches greedily.

    ``padding_free`` (a model for which ``is_padding_free`` holds): a batch costs the sum of its
    lengths, so the length-sorted items simply fill each batch up to the budget.
    """
    if not sort:
        return _greedy_batches(list(range(len(lengths))), lengths, batch_tokens, max_batch)
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    if padding_free:
        return _greedy_batches(order, lengths, batch_tokens, max_batch, padding_free=True)
    n = len(order)
    if n == 0:
        return []
    size = np.maximum(1, np.asarray([lengths[i] for i in order], dtype=np.int64))
    overhead = float(max(1, batch_tokens // BATCH_OVERHEAD_SHARE))
    cost = np.zeros(n + 1)
    start = np.zeros(n + 1, dtype=np.int64)
    for end in range(1, n + 1):
        # a batch ending here holds at most budget // (its shortest item) items
        lo = max(0, end - max(1, min(max_batch, batch_tokens // int(size[end - 1]))))
        js = np.arange(lo, end)
        padded = (end - js) * size[lo:end]  # size[j] is the longest of items j..end-1 (sorted)
        cand = cost[lo:end] + overhead + padded
        cand[(padded > batch_tokens) & (js != end - 1)] = np.inf
        k = int(np.argmin(cand))
        cost[end] = cand[k]
        start[end] = lo + k
    batches: list[list[int]] = []
    end = n
    while end > 0:
        j = int(start[end])
        batches.append(order[j:end])
        end = j
    batches.reverse()
    return batches


def _greedy_batches(
    order: list[int], lengths: Sequence[int], batch_tokens: int, max_batch: int, *, padding_free: bool = False
) -> list[list[int]]:
    """Fill batches in ``order`` while the cost (count x longest, or summed lengths) fits the budget."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = total = 0
    for i in order:
        n = max(1, lengths[i])
        cost = total + n if padding_free else (len(current) + 1) * max(longest, n)
        if current and (cost > batch_tokens or len(current) >= max_batch):
            batches.append(current)
            current, longest, total = [], 0, 0
        current.append(i)
        longest, total = max(longest, n), total + n
    if current:
        batches.append(current)
    return batches


def fixed_batches(n: int, size: int) -> list[list[int]]:
    """Batches of ``size`` items in input order (the self-check and the benchmarks' baseline)."""
    return [list(range(s, min(n, s + size))) for s in range(0, n, size)]


def offline_mode() -> bool:
    """Whether the user switched Hugging Face downloads off (either of the two usual variables)."""
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )
