"""Cached chat calls: a finished text is never paid for twice.

The key is (model, prompt template hash, settings hash, text hash): change the model, the prompt
wording, the requested features or the temperature and the text is asked again; re-run the same
command and nothing is sent. Each successful result is committed to the run's SQLite cache before
it is reported (and before its worker takes the next call), so a killed run loses only the calls in
flight. The commits go through one writer thread that groups the results arriving together into one
transaction (group commit: one SQLite transaction per burst instead of per result); a worker waits
for its own result's commit, so grouping changes the cost, not the guarantee. Failures are not
cached, so the next run retries them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

from seal_audit.backends.llm.batch import BatchRunner
from seal_audit.backends.llm.client import (
    ChatManyOutcome,
    ChatRequest,
    ChatResult,
    LLMClient,
    ParseFn,
    with_key,
)
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


class _Pending:
    """One value waiting for its commit: ``done`` is held until the writer has committed it."""

    __slots__ = ("done", "error", "key", "value")

    def __init__(self, key: str, value: Any) -> None:
        self.key = key
        self.value = value
        self.done = threading.Lock()
        self.done.acquire()
        self.error: BaseException | None = None


class CacheWriter:
    """Group commit into one cache namespace: ``put`` returns once the value is committed.

    ``put`` may be called from many threads; a single writer thread takes everything queued at that
    moment and commits it in one transaction, then releases every waiter of the batch. So a value
    is durable when ``put`` returns -- exactly as with ``Cache.put`` -- while a burst of results
    costs one transaction instead of one each. A failed commit raises in every ``put`` of that
    batch (and nothing of the batch is stored: the transaction is all or nothing).
    """

    def __init__(self, cache: Cache, namespace: str) -> None:
        self.cache = cache
        self.namespace = namespace
        self.batches = 0
        """Transactions committed (tests and benchmarks read it)."""
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()  # no value is queued behind the closing sentinel
        self._thread = threading.Thread(target=self._run, name="llm-cache-writer", daemon=True)
        self._thread.start()

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``; returns when it is committed, raises if that failed."""
        p = _Pending(key, value)
        with self._lock:
            if self._closed:
                raise RuntimeError("CacheWriter is closed")
            self._queue.put(p)
        p.done.acquire()
        if p.error is not None:
            raise p.error

    def close(self) -> None:
        """Commit what is queued and stop the writer thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while True:  # everything already queued joins this transaction
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            error: BaseException | None = None
            try:
                self.cache.put_many(self.namespace, [(p.key, p.value) for p in batch])
                self.batches += 1
            except BaseException as exc:  # handed to the waiters, who raise it
                error = exc
            for p in batch:
                p.error = error
                p.done.release()


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

    writer = CacheWriter(cache, namespace)

    def store(r: ChatResult) -> None:
        writer.put(r.key, _to_cache(r))  # returns once committed

    def arrived(r: ChatResult, *, stored: bool = True) -> None:
        if r.status == "ok" and not stored:
            store(r)
        for i, c in enumerate(groups.get(r.key, ())):
            if i == 0:
                emit(with_key(r, c.request.key))
            else:
                emit(
                    replace(
                        r, key=c.request.key, cost_usd=0.0, tokens_in=0, tokens_out=0, cached=r.status == "ok"
                    )
                )

    try:
        if batch is not None:
            out = batch.run(
                leaders, parse=parse, on_result=lambda r: arrived(r, stored=False), timeout_s=batch_timeout_s
            )
        else:
            out = client.chat_many(
                leaders, parse=parse, on_result=arrived, max_cost=max_cost, stop=stop, commit=store
            )
    finally:
        writer.close()  # after chat_many: its in-flight workers have committed
    return ChatManyOutcome(tuple(results), out.stopped, out.stop_reason, out.cost_usd, out.info)


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
