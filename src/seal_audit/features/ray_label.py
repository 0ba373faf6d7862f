"""LM labeling fanned out over Ray workers, under one concurrency / rate limit per endpoint.

Why this shape:

* The endpoint's limit is what matters, not the number of workers: a provider's rate limit or a
  vLLM server's batch size is shared by every worker. So every HTTP attempt (retries and repair
  turns included) first takes a slot from one ``EndpointLimiter`` actor per endpoint -- a
  semaphore with an optional token bucket -- and gives it back when the reply is in. The server
  therefore never sees more than ``LLMSettings.concurrency`` requests in flight, however many
  workers run.
* Everything else is the local labeler's code. ``label_run_ray`` runs the ordinary ``label_run``
  with an ``LMLabeler`` whose client ships its requests to Ray tasks instead of threads: the cache
  lookup, de-duplication, cache keys, rows, progress, cost budget and calls log are the local
  ones. The cache is written by the driver, as each shard's results arrive, because workers on
  other nodes cannot open the run's SQLite file -- so a killed run resumes, and local and Ray
  runs share one cache.

``import ray`` happens only inside functions: importing this module is cheap and Ray-free.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from seal_audit.backends.llm import ChatManyOutcome, ChatRequest, ChatResult, LLMClient, LLMSettings
from seal_audit.backends.llm.client import ParseFn
from seal_audit.backends.ray_session import RAY_NAMESPACE, ray_session
from seal_audit.data.errors import ConfigError
from seal_audit.features.base import Featurizer, Progress
from seal_audit.features.lm import LMLabeler
from seal_audit.features.run import LabelOutcome, label_run
from seal_audit.store.run_store import RunStore

Log = Callable[[str], None]
DEFAULT_SHARD_SIZE = 16
"""Requests per Ray task: the unit whose results reach the driver (and the cache) together, so a
killed run loses at most the shards in flight."""
_FATAL_PREFIXES = ("HTTP 401", "HTTP 403", "HTTP 404")


# --- the per-endpoint limiter (a Ray async actor) ------------------------------------------------
class EndpointLimiter:
    """At most ``limit`` HTTP requests in flight, and at most ``rate_per_s`` started per second
    (token bucket, bursts up to ``limit``), across every worker of a run.

    Slots are counted per holder (one per shard task) so that the driver can hand back the slots of
    a task that died mid-request instead of shrinking the limit for the rest of the run.
    """

    def __init__(self, limit: int, rate_per_s: float | None = None) -> None:
        if limit < 1:
            raise ConfigError(f"endpoint concurrency must be at least 1 (got {limit})")
        if rate_per_s is not None and rate_per_s <= 0:
            raise ConfigError(f"requests per second must be > 0 (got {rate_per_s})")
        self.limit = limit
        self.rate = rate_per_s
        self.in_use = 0
        self.max_in_use = 0
        self.acquired = 0
        self.held: dict[str, int] = {}
        self._tokens = float(limit)
        self._stamp = time.monotonic()
        self._cond: asyncio.Condition | None = None
        self._bucket: asyncio.Lock | None = None

    def _condition(self) -> asyncio.Condition:
        # created lazily: the actor's event loop runs the methods, not the constructor
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def acquire(self, holder: str) -> None:
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: self.in_use < self.limit)
            self.in_use += 1
            self.acquired += 1
            self.held[holder] = self.held.get(holder, 0) + 1
            self.max_in_use = max(self.max_in_use, self.in_use)
        if self.rate is not None:
            await self._take_token()

    async def _take_token(self) -> None:
        assert self.rate is not None
        if self._bucket is None:
            self._bucket = asyncio.Lock()
        async with self._bucket:  # one waiter at a time: tokens are handed out in arrival order
            while True:
                now = time.monotonic()
                self._tokens = min(float(self.limit), self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)

    async def configure(self, limit: int, rate_per_s: float | None = None) -> None:
        """Set the limit and rate (a run joining a shared limiter brings the endpoint's settings)."""
        if limit < 1:
            raise ConfigError(f"endpoint concurrency must be at least 1 (got {limit})")
        cond = self._condition()
        async with cond:
            self.limit = limit
            self.rate = rate_per_s
            cond.notify_all()

    async def release(self, holder: str, n: int = 1) -> None:
        cond = self._condition()
        async with cond:
            n = min(n, self.held.get(holder, 0))
            if n <= 0:
                return
            self.held[holder] -= n
            if not self.held[holder]:
                del self.held[holder]
            self.in_use -= n
            cond.notify(n)

    async def release_all(self, holder: str) -> None:
        await self.release(holder, self.held.get(holder, 0))

    async def stats(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "rate_per_s": self.rate,
            "in_use": self.in_use,
            "max_in_use": self.max_in_use,
            "acquired": self.acquired,
        }


# --- what runs on the workers --------------------------------------------------------------------
class GatedClient(LLMClient):
    """The local client with one change: every HTTP attempt holds a slot of the endpoint's limiter."""

    def __init__(self, settings: LLMSettings, *, limiter: Any, holder: str, **kw: Any) -> None:
        super().__init__(settings, **kw)
        self._limiter = limiter
        self._holder = holder

    def _post(self, body: dict[str, Any], timeout_s: float | None = None) -> Any:
        import ray

        ray.get(self._limiter.acquire.remote(self._holder))
        try:
            return super()._post(body, timeout_s)
        finally:
            self._limiter.release.remote(self._holder)


def run_shard(
    settings: LLMSettings,
    requests: Sequence[ChatRequest],
    parse: ParseFn | None,
    limiter: Any,
    holder: str,
) -> tuple[list[ChatResult], list[dict[str, Any]]]:
    """One Ray task: the shard's requests through a gated client; results and calls-log records
    go back to the driver, which owns the cache and the log."""
    records: list[dict[str, Any]] = []
    local = settings.model_copy(update={"concurrency": max(1, min(settings.concurrency, len(requests)))})
    client = GatedClient(local, limiter=limiter, holder=holder, log=records.extend)
    try:
        out = client.chat_many(requests, parse=parse)
    finally:
        client.close()
    return list(out.results), records


# --- the driver ----------------------------------------------------------------------------------
@dataclass
class FanOut:
    """How a run's LM calls are spread: tasks in flight, requests per task, CPUs per task, and the
    limiters already created (one per endpoint URL, shared by every labeler of the run)."""

    ray: Any
    num_workers: int
    shard_size: int = DEFAULT_SHARD_SIZE
    num_cpus: float = 0.25
    rate_per_s: float | None = None
    runtime_env: dict[str, Any] | None = None
    limiters: dict[str, Any] = field(default_factory=dict)

    def limiter(self, settings: LLMSettings) -> Any:
        """The endpoint's limiter: one named actor per endpoint URL on the cluster, shared by every
        run connected to it (issue 18), so two concurrent runs against one endpoint together stay
        within its limit. It is detached (a run that ends does not take it away from one still
        running); the limit and rate are the endpoint's, set by the run that asked last."""
        if settings.base_url not in self.limiters:
            actor = self.ray.remote(EndpointLimiter).options(
                name=limiter_name(settings.base_url),
                namespace=RAY_NAMESPACE,
                get_if_exists=True,
                lifetime="detached",
                num_cpus=0,
                max_concurrency=1000,
            )
            handle = actor.remote(settings.concurrency, self.rate_per_s)
            self.ray.get(handle.configure.remote(settings.concurrency, self.rate_per_s))
            self.limiters[settings.base_url] = handle
        return self.limiters[settings.base_url]


def limiter_name(base_url: str) -> str:
    """The Ray actor name of an endpoint's limiter (in the ``seal-audit`` namespace)."""
    return f"seal-endpoint-limiter|{base_url}"


class RayChatClient(LLMClient):
    """A driver-side client whose ``chat_many`` runs shards of requests as Ray tasks.

    Same contract as ``LLMClient.chat_many``: ``commit`` (the cache write) runs before a result is
    delivered, ``max_cost`` is checked before each shard is sent (counting the estimated cost of
    the shards in flight), ``stop`` stops sending, in-flight work is finished and kept.
    """

    def __init__(self, settings: LLMSettings, *, fanout: FanOut, **kw: Any) -> None:
        super().__init__(settings, **kw)
        self._fanout = fanout

    def chat_many(
        self,
        requests: Any,
        *,
        parse: ParseFn | None = None,
        on_result: Callable[[ChatResult], None] | None = None,
        max_cost: float | None = None,
        stop: threading.Event | None = None,
        log_flush_s: float = 0.5,
        commit: Callable[[ChatResult], None] | None = None,
    ) -> ChatManyOutcome:
        if max_cost is not None and self.price is None:
            raise ConfigError(
                f"no price is known for model {self.settings.model!r}, so --max-cost cannot be enforced; "
                "give llm.price (or --price-in/--price-out, USD per 1M tokens; 0 for a local server)"
            )
        fo = self._fanout
        ray = fo.ray
        task = ray.remote(run_shard).options(num_cpus=fo.num_cpus, max_retries=0, runtime_env=fo.runtime_env)
        limiter = fo.limiter(self.settings)
        reqs: list[ChatRequest] = list(requests)
        # The driver settles the response format once; the shards are told the dialect.
        probe_error = self.settle_response_format() if any(r.json_schema for r in reqs) else None
        shard_settings = self.settings
        if self.settings.response_format == "auto" and probe_error is None:
            shard_settings = self.settings.model_copy(update={"response_format": self.dialect})
        shards = [reqs[s : s + fo.shard_size] for s in range(0, len(reqs), fo.shard_size)]
        run_id = uuid.uuid4().hex[:12]
        results: list[ChatResult] = []
        pending: dict[Any, tuple[str, list[ChatRequest], float]] = {}
        spent = 0.0
        stop_reason: str | None = probe_error
        next_shard = 0

        def deliver(r: ChatResult) -> None:
            results.append(r)
            if on_result is not None:
                on_result(r)

        try:
            while True:
                while stop_reason is None and next_shard < len(shards) and len(pending) < fo.num_workers:
                    if stop is not None and stop.is_set():
                        stop_reason = "stop requested"
                        break
                    shard = shards[next_shard]
                    est = sum(self.estimate_cost(r) for r in shard)
                    in_flight = sum(e for _, _, e in pending.values())
                    if max_cost is not None and spent + in_flight + est > max_cost:
                        stop_reason = f"max cost ${max_cost:.4f} reached"
                        break
                    holder = f"shard-{run_id}-{next_shard}"  # unique across concurrent runs
                    ref = task.remote(shard_settings, shard, parse, limiter, holder)
                    pending[ref] = (holder, shard, est)
                    next_shard += 1
                if not pending:
                    break
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=log_flush_s)
                for ref in ready:
                    holder, shard, _ = pending.pop(ref)
                    try:
                        shard_results, records = ray.get(ref)
                    except Exception as exc:  # the task died (node lost, worker killed): its texts fail
                        limiter.release_all.remote(holder)
                        err = f"ray worker failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                        shard_results = [
                            ChatResult(q.key, "failed", error=err, model=self.settings.model) for q in shard
                        ]
                        records = []
                    for rec in records:
                        self.log_record(rec)
                    for r in shard_results:
                        if commit is not None and r.status == "ok":
                            commit(r)  # stored before it is delivered, as the local client does
                        spent += r.cost_usd
                        deliver(r)
                        if stop_reason is None and r.error and r.error.startswith(_FATAL_PREFIXES):
                            stop_reason = f"endpoint refused the call ({r.error[:120]})"
                self.flush_log()
            if stop_reason is not None:
                for shard in shards[next_shard:]:
                    for q in shard:
                        deliver(
                            ChatResult(
                                q.key, "stopped", error=f"not sent: {stop_reason}", model=self.settings.model
                            )
                        )
        finally:
            for ref in pending:  # Ctrl-C or a failed cache write: drop the shards still running
                ray.cancel(ref, force=True)
            self.flush_log()
        return ChatManyOutcome(tuple(results), stop_reason is not None, stop_reason, spent, self.run_info())


def _fanned_out(f: Featurizer, fanout: FanOut) -> Featurizer:
    """The same LM-labeler (same features, settings and hence cache keys) with the Ray client."""
    if not isinstance(f, LMLabeler) or f.settings.batch_api:
        return f  # offline featurizers are cheap; the Batch API has no concurrency to spread

    def factory(settings: LLMSettings, **kw: Any) -> LLMClient:
        return RayChatClient(settings, fanout=fanout, **kw)

    return LMLabeler(
        f.settings,
        f.feature_specs,
        max_cost=f.max_cost,
        batch_timeout_s=f.batch_timeout_s,
        client_factory=factory,
    )


def _key_env(featurizers: Sequence[Featurizer]) -> dict[str, Any] | None:
    """The API key variables the workers need, taken from the driver's environment: workers on
    other nodes do not share it. (Ray keeps a task's runtime_env inside the cluster.)"""
    env = {
        f.settings.api_key_env: os.environ[f.settings.api_key_env]
        for f in featurizers
        if isinstance(f, LMLabeler) and f.settings.api_key_env and f.settings.api_key_env in os.environ
    }
    return {"env_vars": env} if env else None


def label_run_ray(
    store: RunStore,
    featurizers: Sequence[Featurizer],
    *,
    address: str | None = None,
    num_workers: int | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    num_cpus_per_worker: float = 0.25,
    max_requests_per_s: float | None = None,
    variant: str = "original",
    on_progress: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
    log: Log | None = None,
) -> LabelOutcome:
    """``label_run`` with the LM-labeler's calls spread over Ray tasks (other featurizers run here).

    The endpoint sees at most ``LLMSettings.concurrency`` requests in flight in total (and at most
    ``max_requests_per_s`` started per second), whatever ``num_workers`` is; results, cache keys,
    the ``features`` table and the calls log are the local labeler's. ``address=None`` starts a
    local Ray instance for the call; an address joins that cluster and leaves it running.
    """
    if shard_size < 1:
        raise ConfigError(f"shard size must be at least 1 (got {shard_size})")
    if num_workers is not None and num_workers < 1:
        raise ConfigError(f"the number of Ray workers must be at least 1 (got {num_workers})")
    with ray_session(address, log=log) as ray:
        workers = num_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        fanout = FanOut(
            ray,
            num_workers=workers,
            shard_size=shard_size,
            num_cpus=num_cpus_per_worker,
            rate_per_s=max_requests_per_s,
            runtime_env=_key_env(featurizers),
        )
        if log:
            limit = "".join(
                f"; {f.settings.base_url}: at most {f.settings.concurrency} in flight"
                for f in featurizers
                if isinstance(f, LMLabeler)
            )
            log(f"ray: {workers} worker task(s) of {shard_size} requests{limit}")
        return label_run(
            store,
            [_fanned_out(f, fanout) for f in featurizers],
            variant=variant,
            on_progress=on_progress,
            stop=stop,
        )
