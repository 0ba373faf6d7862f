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
  ones. The cache is written by the driver, as each result arrives (shards stream them), because workers on
  other nodes cannot open the run's SQLite file -- so a killed run resumes, and local and Ray
  runs share one cache.
* Losing a node costs no label. Every actor a shard task calls (the endpoint limiter; results go
  back through the task's own stream) lives on the driver's node, pinned there, so it cannot die
  with a worker node. A shard task lost with its node -- or one that cannot reach the limiter --
  is a lost shard: its requests without a recorded result are sent again as a new task; a Ray
  failure is never a failed label. The lost holder's limiter slots stay taken for one request
  timeout, because the server is still working on the requests that node had sent; so the
  endpoint never sees more than ``concurrency`` requests in flight, even just after a node dies.

``import ray`` happens only inside functions: importing this module is cheap and Ray-free.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
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
"""Requests per Ray task. Each result still reaches the driver (and the cache) on its own as it
arrives, so a killed run loses at most the requests in flight."""
SHARD_ATTEMPTS = 3
"""Times a shard's unrecorded requests are sent (the first time included) before they count as
failed: a task lost with its node is retried on a surviving node."""
_FATAL_PREFIXES = ("HTTP 401", "HTTP 403", "HTTP 404")
SHARD_COUNTERS = ("requests", "resends", "repairs", "timeouts")
"""The shard clients' request counters that the driver adds up into the stage record."""


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
        self.gone: set[str] = set()
        """Holders whose task was lost; one per lost shard attempt, so the set stays small."""
        self.held_for_lost = 0
        """Slots kept taken for a while after their holder was lost (see ``release_all``)."""
        self._later: set[asyncio.Task[None]] = set()  # the delayed releases (kept referenced)
        self._tokens = float(limit)
        self._stamp = time.monotonic()
        self._cond: asyncio.Condition | None = None
        self._bucket: asyncio.Lock | None = None

    def _condition(self) -> asyncio.Condition:
        # created lazily: the actor's event loop runs the methods, not the constructor
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def acquire(self, holder: str) -> bool:
        """Wait for a slot; False (no slot) once the holder is known lost: its task must stop."""
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: self.in_use < self.limit or holder in self.gone)
            if holder in self.gone:
                return False  # its task is lost: a slot granted now would never be given back
            self.in_use += 1
            self.acquired += 1
            self.held[holder] = self.held.get(holder, 0) + 1
            self.max_in_use = max(self.max_in_use, self.in_use)
        if self.rate is not None:
            await self._take_token()
        return True

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

    async def release_all(self, holder: str, hold_s: float = 0.0) -> None:
        """The holder's task is gone (its node died): a request of it still waiting here, or
        arriving late, gets no slot, and its slots come back after ``hold_s``. Why wait: the server
        is still working on the requests the dead task had sent (nobody is left to read the reply),
        so a slot freed at once would let the server see more than ``limit`` requests in flight.
        The driver passes one request timeout, the longest a sent request is waited for."""
        cond = self._condition()
        async with cond:
            self.gone.add(holder)
            cond.notify_all()  # its waiters leave without a slot
        n = self.held.get(holder, 0)
        if n and hold_s > 0:
            # released by the actor itself, later: the call returns now, and the slots come back
            # even if the run that made it has ended by then
            self.held_for_lost += n
            later = asyncio.get_running_loop().create_task(self._release_later(holder, hold_s))
            self._later.add(later)
            later.add_done_callback(self._later.discard)
            return
        await self.release(holder, n)

    async def _release_later(self, holder: str, hold_s: float) -> None:
        await asyncio.sleep(hold_s)
        await self.release(holder, self.held.get(holder, 0))

    async def stats(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "rate_per_s": self.rate,
            "in_use": self.in_use,
            "max_in_use": self.max_in_use,
            "acquired": self.acquired,
            "held_for_lost": self.held_for_lost,
        }


# --- what runs on the workers --------------------------------------------------------------------
class ShardLost(Exception):
    """A shard task cannot go on through no fault of its texts (the endpoint limiter cannot be
    reached, or has given its holder up): the driver sends its unrecorded requests again."""


class GatedClient(LLMClient):
    """The local client with one change: every HTTP attempt holds a slot of the endpoint's limiter.

    When no slot can be had because of Ray (the limiter unreachable, or the holder given up), the
    client stops: ``lost`` says why, ``stop`` is set so nothing more is sent, and the results that
    did not succeed from then on are not labeling failures -- the shard's task ends with
    ``ShardLost`` and the driver sends those requests again."""

    def __init__(
        self, settings: LLMSettings, *, limiter: Any, holder: str, stop: threading.Event, **kw: Any
    ) -> None:
        super().__init__(settings, **kw)
        self._limiter = limiter
        self._holder = holder
        self._stop = stop
        self.lost: str | None = None

    def _lose(self, why: str) -> ShardLost:
        if self.lost is None:
            self.lost = why
        self._stop.set()
        return ShardLost(why)

    def _post(self, body: dict[str, Any], timeout_s: float | None = None) -> Any:
        import ray

        if self.lost is not None:
            raise ShardLost(self.lost)
        try:
            granted = ray.get(self._limiter.acquire.remote(self._holder))
        except ray.exceptions.RayError as exc:
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise self._lose(f"endpoint limiter unreachable: {type(exc).__name__}: {first}") from exc
        if not granted:
            raise self._lose("the endpoint limiter gave this shard's slots up (its task was taken for lost)")
        try:
            return super()._post(body, timeout_s)
        finally:
            with contextlib.suppress(ray.exceptions.RayError):
                self._limiter.release.remote(self._holder)


ShardItem = tuple[list[ChatResult], list[dict[str, Any]], dict[str, int]]
"""What a shard task streams: results, calls-log records so far, the client's request counters."""


def run_shard(
    settings: LLMSettings,
    requests: Sequence[ChatRequest],
    parse: ParseFn | None,
    limiter: Any,
    holder: str,
) -> Iterator[ShardItem]:
    """One Ray task, a streaming generator: the shard's requests through a gated client, each
    result yielded to the driver the moment its reply is in (with the calls-log records written so
    far). The driver records every result as it arrives, so when the task dies with its node only
    the requests with no recorded result are sent again, on a surviving node. A shard that loses
    its limiter keeps its successes, drops the rest and raises ``ShardLost`` (sent again too)."""
    records: list[dict[str, Any]] = []
    records_lock = threading.Lock()

    def sink(batch: list[dict[str, Any]]) -> None:
        with records_lock:
            records.extend(batch)

    def take_records() -> list[dict[str, Any]]:
        with records_lock:
            out = records[:]
            records.clear()
        return out

    arrived: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    local = settings.model_copy(update={"concurrency": max(1, min(settings.concurrency, len(requests)))})
    stop = threading.Event()
    client = GatedClient(local, limiter=limiter, holder=holder, stop=stop, log=sink)

    def on_result(r: ChatResult) -> None:
        if client.lost is not None and r.status != "ok":
            return  # not a labeling failure: sent again by the driver
        arrived.put(("result", r))

    def work() -> None:
        try:
            client.chat_many(requests, parse=parse, on_result=on_result, stop=stop)
            if client.lost is not None:
                raise ShardLost(client.lost)
        except BaseException as exc:  # re-raised in the task: the driver retries the shard's rest
            arrived.put(("error", exc))
        finally:
            arrived.put(("done", None))

    def counters() -> dict[str, int]:
        info = client.run_info()
        return {k: int(info[k]) for k in SHARD_COUNTERS if k in info}

    thread = threading.Thread(target=work, name=f"shard-{holder}", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = arrived.get()
            if kind == "result":
                yield [value], take_records(), counters()
            elif kind == "error":
                raise value
            else:
                break
    finally:
        thread.join()
        client.close()  # flushes the last calls-log records into the sink
    yield [], take_records(), counters()


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
    log: Log | None = None
    limiters: dict[str, Any] = field(default_factory=dict)

    def limiter(self, settings: LLMSettings) -> Any:
        """The endpoint's limiter: one named actor per endpoint URL on the cluster, shared by every
        run connected to it (issue 18), so two concurrent runs against one endpoint together stay
        within its limit. It is detached (a run that ends does not take it away from one still
        running); the limit and rate are the endpoint's, set by the run that asked last. It is
        created on the driver's node, and only there (``soft=False``): a limiter on a worker node
        would die with that node and take every run's slots with it, while the driver's node is
        needed by the run anyway. (With soft affinity Ray may place it elsewhere; in the cluster
        test the limiter once died with the killed worker node -- ``ActorDiedError``, which a
        limiter on the surviving head cannot raise -- and the resent requests failed.)"""
        if settings.base_url not in self.limiters:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = NodeAffinitySchedulingStrategy(self.ray.get_runtime_context().get_node_id(), soft=False)
            actor = self.ray.remote(EndpointLimiter).options(
                name=limiter_name(settings.base_url),
                namespace=RAY_NAMESPACE,
                get_if_exists=True,
                lifetime="detached",
                num_cpus=0,
                max_concurrency=1000,
                scheduling_strategy=here,
            )
            handle = actor.remote(settings.concurrency, self.rate_per_s)
            self.ray.get(handle.configure.remote(settings.concurrency, self.rate_per_s))
            self.limiters[settings.base_url] = handle
        return self.limiters[settings.base_url]

    def renew_limiter_if_dead(self, settings: LLMSettings) -> Any:
        """The endpoint's limiter, created anew here if the one in use has died (a limiter another
        run created lives on that run's driver node, and goes when that node goes)."""
        handle = self.limiters.get(settings.base_url)
        if handle is not None:
            try:
                self.ray.get(handle.stats.remote(), timeout=30)
            except self.ray.exceptions.ActorDiedError:
                del self.limiters[settings.base_url]
                if self.log:
                    self.log(
                        f"ray: the endpoint limiter of {settings.base_url} was lost; a new one is made here"
                    )
            except self.ray.exceptions.RayError:
                pass  # unreachable for now (not known dead): keep it
        return self.limiter(settings)


def limiter_name(base_url: str) -> str:
    """The Ray actor name of an endpoint's limiter (in the ``seal-audit`` namespace)."""
    return f"seal-endpoint-limiter|{base_url}"


@dataclass
class _Shard:
    """One shard's requests on one attempt, and which of them have a recorded result."""

    index: int
    attempt: int
    requests: list[ChatRequest]
    recorded: set[str] = field(default_factory=set)
    est: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)
    """The shard client's request counters, as last streamed (a lost task's are kept too)."""

    def holder(self, run_id: str) -> str:
        """The limiter holder of this attempt: unique across concurrent runs and attempts."""
        return f"shard-{run_id}-{self.index}-{self.attempt}"

    def remaining(self) -> list[ChatRequest]:
        return [q for q in self.requests if q.key not in self.recorded]


class RayChatClient(LLMClient):
    """A driver-side client whose ``chat_many`` runs shards of requests as Ray tasks.

    Same contract as ``LLMClient.chat_many``: ``commit`` (the cache write) runs before a result is
    delivered, ``max_cost`` is checked before each shard is sent (counting the estimated cost of
    the shards in flight), ``stop`` stops sending, in-flight work is finished and kept.

    Results are recorded one by one as the shard tasks stream them back, so a task lost with its
    node costs only its requests in flight: the shard's requests without a recorded result go
    out again as a new task (up to ``SHARD_ATTEMPTS`` times, then they count as failed), and no
    text that has a label is sent twice.
    """

    def __init__(self, settings: LLMSettings, *, fanout: FanOut, **kw: Any) -> None:
        super().__init__(settings, **kw)
        self._fanout = fanout
        self.ray_resent = 0
        """Requests sent again because the task holding them was lost."""
        self.ray_lost_shards = 0
        """Shard tasks lost (node died, worker killed, limiter unreachable)."""
        self._shard_counters: collections.Counter[str] = collections.Counter()
        """The request counters of the shard tasks that have ended (or were lost)."""

    def _count(self, shard: _Shard) -> None:
        self._shard_counters.update(shard.counters)

    def run_info(self) -> dict[str, Any]:
        """The driver's own counters (the response-format probe) plus every shard task's, and the
        Ray losses: shard tasks lost and requests sent again because of them. A lost task's
        counters are those it last streamed: the requests it had in flight when it died are not
        in ``requests`` (the server did get them)."""
        info = super().run_info()
        for k, v in self._shard_counters.items():
            info[k] = int(info.get(k, 0)) + v
        info["ray_lost_shards"] = self.ray_lost_shards
        info["ray_resent"] = self.ray_resent
        return info

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
        task = ray.remote(run_shard).options(
            num_cpus=fo.num_cpus, max_retries=0, num_returns="streaming", runtime_env=fo.runtime_env
        )
        limiter = fo.limiter(self.settings)
        reqs: list[ChatRequest] = list(requests)
        # The driver settles the response format once; the shards are told the dialect.
        probe_error = self.settle_response_format() if any(r.json_schema for r in reqs) else None
        shard_settings = self.settings
        if self.settings.response_format == "auto" and probe_error is None:
            shard_settings = self.settings.model_copy(update={"response_format": self.dialect})
        run_id = uuid.uuid4().hex[:12]
        todo: collections.deque[_Shard] = collections.deque(
            _Shard(i, 1, reqs[s : s + fo.shard_size])
            for i, s in enumerate(range(0, len(reqs), fo.shard_size))
        )
        results: list[ChatResult] = []
        pending: dict[Any, _Shard] = {}
        spent = 0.0
        stop_reason: str | None = probe_error

        def deliver(r: ChatResult) -> None:
            results.append(r)
            if on_result is not None:
                on_result(r)

        def record(shard: _Shard, r: ChatResult) -> None:
            nonlocal stop_reason, spent
            shard.recorded.add(r.key)
            if commit is not None and r.status == "ok":
                commit(r)  # stored before it is delivered, as the local client does
            spent += r.cost_usd
            deliver(r)
            if stop_reason is None and r.error and r.error.startswith(_FATAL_PREFIXES):
                stop_reason = f"endpoint refused the call ({r.error[:120]})"

        def lost(shard: _Shard, exc: Exception) -> None:
            """The task died (node lost, worker killed) or lost the limiter: what it had not delivered
            is sent again. Its limiter slots stay taken for one request timeout (the server may
            still be answering what it sent)."""
            nonlocal limiter
            self.ray_lost_shards += 1
            self._count(shard)
            limiter.release_all.remote(shard.holder(run_id), self.settings.timeout_s)
            limiter = fo.renew_limiter_if_dead(self.settings)
            cause = getattr(exc, "cause", None) or exc  # a RayTaskError wraps what the task raised
            first = str(cause).splitlines()[0][:200] if str(cause) else ""
            err = f"ray worker failed: {type(cause).__name__}: {first}"
            rest = shard.remaining()
            if not rest:
                return
            if shard.attempt < SHARD_ATTEMPTS:
                todo.appendleft(_Shard(shard.index, shard.attempt + 1, rest))
                self.ray_resent += len(rest)
                if fo.log:
                    fo.log(
                        f"ray: shard {shard.index} lost ({err[:120]}); its {len(rest)} request(s) without "
                        f"a result are sent again (attempt {shard.attempt + 1} of {SHARD_ATTEMPTS})"
                    )
                return
            for q in rest:
                record(shard, ChatResult(q.key, "failed", error=err, model=self.settings.model))

        try:
            while True:
                while stop_reason is None and todo and len(pending) < fo.num_workers:
                    if stop is not None and stop.is_set():
                        stop_reason = "stop requested"
                        break
                    shard = todo[0]
                    shard.est = sum(self.estimate_cost(r) for r in shard.requests)
                    in_flight = sum(p.est for p in pending.values())
                    if max_cost is not None and spent + in_flight + shard.est > max_cost:
                        stop_reason = f"max cost ${max_cost:.4f} reached"
                        break
                    todo.popleft()
                    gen = task.remote(shard_settings, shard.requests, parse, limiter, shard.holder(run_id))
                    pending[gen] = shard
                if not pending:
                    break
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=log_flush_s)
                for gen in ready:
                    shard = pending[gen]
                    try:
                        shard_results, records, counters = ray.get(next(gen))
                    except StopIteration:  # the task delivered everything and ended
                        del pending[gen]
                        self._count(shard)
                        continue
                    except Exception as exc:
                        del pending[gen]
                        lost(shard, exc)
                        continue
                    shard.counters = counters
                    for rec in records:
                        self.log_record(rec)
                    for r in shard_results:
                        record(shard, r)
                self.flush_log()
            if stop_reason is not None:
                for shard in todo:
                    for q in shard.remaining():
                        deliver(
                            ChatResult(
                                q.key, "stopped", error=f"not sent: {stop_reason}", model=self.settings.model
                            )
                        )
        finally:
            # Ctrl-C or a failed cache write: drop the shards still running, and give their slots
            # back to the shared limiter (after one request timeout, as for a lost shard)
            for gen, shard in pending.items():
                ray.cancel(gen, force=True)
                with contextlib.suppress(Exception):  # best effort: the original error goes on
                    limiter.release_all.remote(shard.holder(run_id), self.settings.timeout_s)
                self._count(shard)
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
            log=log,
        )
        if log:
            limit = "".join(
                f"; {f.settings.base_url}: at most {f.settings.concurrency} in flight"
                for f in featurizers
                if isinstance(f, LMLabeler)
            )
            log(f"ray: {workers} worker task(s), up to {shard_size} requests each{limit}")
        return label_run(
            store,
            [_fanned_out(f, fanout) for f in featurizers],
            variant=variant,
            on_progress=on_progress,
            stop=stop,
        )
