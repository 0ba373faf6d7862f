"""Cached chat calls: a finished text is never paid for twice.

The key is (model, prompt template hash, settings hash, text hash): change the model, the prompt
wording, the requested features or the temperature and the text is asked again; re-run the same
command and nothing is sent. Each successful result is committed to the run's SQLite cache the
moment it arrives (one small transaction), so a killed run loses only the calls in flight.
Failures are not cached, so the next run retries them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from seal_audit.backends.llm.batch import BatchRunner
from seal_audit.backends.llm.client import ChatManyOutcome, ChatRequest, ChatResult, LLMClient, ParseFn
from seal_audit.store.cache import Cache, cache_key, settings_hash


def template_hash(template: str) -> str:
    """Hash of a prompt template (its text, before any per-text substitution)."""
    return settings_hash({"template": template})


def llm_cache_key(model: str, template_sha: str, settings_sha: str, text_sha256: str) -> str:
    """The printable cache key of one text: ``llm:<model>|<hash of template+settings>|<text hash>``."""
    return cache_key(f"llm:{model}", {"template": template_sha, "settings": settings_sha}, text_sha256)


@dataclass(frozen=True, slots=True)
class CachedCall:
    """A request and the cache key its result is stored under."""

    request: ChatRequest
    cache_key: str


def split_cached(
    cache: Cache, namespace: str, calls: Sequence[CachedCall]
) -> tuple[dict[str, Any], list[CachedCall]]:
    """(cached values by cache key, calls still to make); what an estimate before a run needs."""
    hits = cache.get_many(namespace, sorted({c.cache_key for c in calls}))
    return hits, [c for c in calls if c.cache_key not in hits]


def cached_chat_many(
    client: LLMClient,
    cache: Cache,
    namespace: str,
    calls: Sequence[CachedCall],
    *,
    parse: ParseFn | None = None,
    on_result: Callable[[ChatResult], None] | None = None,
    max_cost: float | None = None,
    stop: threading.Event | None = None,
    batch: BatchRunner | None = None,
    batch_timeout_s: float | None = None,
) -> ChatManyOutcome:
    """Serve cached calls from ``cache``, run the rest through ``client.chat_many`` and store each
    success as it arrives. Calls sharing a cache key (duplicate texts) are sent once.

    With ``batch``, the calls go through the Batch API instead (resuming open batches; results of
    earlier processes' batches are cached too, even when not asked for this time)."""
    hits, todo = split_cached(cache, namespace, calls)
    results: list[ChatResult] = []

    def emit(r: ChatResult) -> None:
        results.append(r)
        if on_result is not None:
            on_result(r)

    for c in calls:
        if c.cache_key in hits:
            emit(_from_cache(c.request.key, hits[c.cache_key]))
    # One request per distinct text, keyed by its cache key (also the Batch API custom_id).
    groups: dict[str, list[CachedCall]] = {}
    for c in todo:
        groups.setdefault(c.cache_key, []).append(c)
    leaders = [replace(g[0].request, key=ck) for ck, g in groups.items()]

    def store(r: ChatResult) -> None:
        cache.put(namespace, r.key, _to_cache(r))

    def arrived(r: ChatResult, *, stored: bool = True) -> None:
        if r.status == "ok" and not stored:
            store(r)
        for i, c in enumerate(groups.get(r.key, ())):
            if i == 0:
                emit(replace(r, key=c.request.key))
            else:
                emit(
                    replace(
                        r, key=c.request.key, cost_usd=0.0, tokens_in=0, tokens_out=0, cached=r.status == "ok"
                    )
                )

    if batch is not None:
        out = batch.run(
            leaders, parse=parse, on_result=lambda r: arrived(r, stored=False), timeout_s=batch_timeout_s
        )
    else:
        out = client.chat_many(
            leaders, parse=parse, on_result=arrived, max_cost=max_cost, stop=stop, commit=store
        )
    return ChatManyOutcome(tuple(results), out.stopped, out.stop_reason, out.cost_usd)


def _to_cache(r: ChatResult) -> dict[str, Any]:
    return {
        "value": r.parsed,
        "model": r.model,
        "tokens_in": r.tokens_in,
        "tokens_out": r.tokens_out,
        "cost_usd": r.cost_usd,
        "repairs": r.repairs,
        "time": time.time(),
    }


def _from_cache(key: str, entry: Mapping[str, Any]) -> ChatResult:
    return ChatResult(
        key=key, status="ok", parsed=entry.get("value"), model=str(entry.get("model", "")), cached=True
    )
