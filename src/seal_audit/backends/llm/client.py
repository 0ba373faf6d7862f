"""A generic client for OpenAI-compatible chat endpoints: concurrency, retries, repair, cost, logs.

Both the LM-labeler and the rewrite stage call models through this one client, so the behaviour
users pay for -- how often a call is retried, when a run stops on cost, what is logged -- is the
same everywhere and tested once.

Design notes
------------
* Live calls are POSTed as JSON with the ``openai`` package's own HTTP client
  (``openai.DefaultHttpxClient``: its connection pool, proxies and TLS settings) instead of through
  the SDK's typed wrapper. The wrapper builds pydantic models for every reply, ~1 ms of CPU per
  call; with 64 calls in flight on a 2-core machine that alone capped throughput at ~63 % of the
  concurrency/latency bound (``benchmarks/bench_label.py``). Retries are ours (the SDK's are off),
  so status handling is identical either way. The SDK object is still used for the Batch API.
* ``chat_many`` keeps at most ``concurrency`` calls in flight in a thread pool and hands every
  result to ``on_result`` on the *calling* thread as soon as it arrives, so callers can commit it
  to their cache immediately: a killed run loses only the calls in flight.
* A reply that fails ``parse`` gets up to ``max_repairs`` follow-up turns showing the model its
  reply and the problem. Transient HTTP failures are retried with exponential backoff and jitter.
* ``max_cost`` is checked before each call is sent, counting the estimated cost of the calls in
  flight, so a run stops before -- not after -- crossing the budget (up to estimation error).
* The calls log gets one record per HTTP attempt: time, model, a hash of the prompt, tokens,
  latency, status, cost. Never the prompt text, never the key.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal

from seal_audit.backends.llm.jsonrepair import ReplyError
from seal_audit.backends.llm.settings import LLMSettings, ModelPrice, cost_usd, estimate_tokens
from seal_audit.data.errors import ConfigError, MissingDependencyError, SealError

ResultStatus = Literal["ok", "failed", "stopped"]
LogSink = Callable[[list[dict[str, Any]]], None]
ParseFn = Callable[[str], Any]
"""Turns a reply's text into a value, or raises ``ReplyError`` (-> a repair turn)."""

_TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
RF_ORDER = ("json_schema", "json_object", "none")
_FATAL_PREFIXES = ("HTTP 401", "HTTP 403", "HTTP 404")
"""Wrong key, no access, wrong URL or model: every further call would fail the same way."""
DEFAULT_REPAIR = (
    "Your previous reply could not be used: {error}. Reply again with only the complete JSON object, "
    "with every requested key, and nothing else."
)


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One logical call (one text). ``key`` identifies it in results and logs (no prompt text)."""

    key: str
    messages: tuple[Message, ...]
    json_schema: Mapping[str, Any] | None = None
    """JSON schema of the expected reply; sent as structured output where the endpoint allows."""
    json_schema_name: str = "reply"
    max_tokens: int | None = None
    est_tokens_out: int = 256
    """Expected output tokens, for cost estimates before the call."""

    def est_tokens_in(self) -> int:
        return sum(estimate_tokens(m.content) + 4 for m in self.messages)

    def prompt_sha256(self) -> str:
        blob = json.dumps([[m.role, m.content] for m in self.messages], ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ChatResult:
    """The outcome of one logical call, after retries and repairs."""

    key: str
    status: ResultStatus
    content: str | None = None
    """The last reply text (also kept for failed parses, for debugging)."""
    parsed: Any = None
    """``parse(content)`` when a parse function was given and succeeded."""
    error: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    http_calls: int = 0
    repairs: int = 0
    model: str = ""
    cached: bool = False


@dataclass(frozen=True, slots=True)
class ChatManyOutcome:
    """Summary of a ``chat_many`` run; ``stopped`` is True when it ended on the cost budget or a stop
    request (the unsent requests are in ``results`` with status ``stopped``)."""

    results: tuple[ChatResult, ...]
    stopped: bool
    stop_reason: str | None
    cost_usd: float

    def count(self, status: ResultStatus) -> int:
        return sum(1 for r in self.results if r.status == status)


@dataclass(slots=True)
class _Attempt:
    status: int | None
    content: str | None
    error: str | None
    transient: bool
    tokens_in: int
    tokens_out: int
    latency_s: float
    retry_after: float | None = None
    usage_reported: bool = False


@dataclass
class _Budget:
    max_cost: float | None
    spent: float = 0.0
    in_flight: dict[str, float] = field(default_factory=dict)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _http_module(client_cls: type) -> Any:
    """The HTTP library behind ``openai.DefaultHttpxClient`` (httpx, or httpx2 in newer SDKs)."""
    for base in client_cls.__mro__:
        root = base.__module__.split(".")[0]
        if root not in ("openai", "builtins"):
            return importlib.import_module(root)
    raise MissingDependencyError("llm", "httpx")


class LLMClient:
    """A chat client for one endpoint and model. Thread-safe; close it (or use ``with``)."""

    def __init__(
        self,
        settings: LLMSettings,
        *,
        log: LogSink | None = None,
        repair_prompt: str = DEFAULT_REPAIR,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise MissingDependencyError("llm", "openai") from exc
        self.settings = settings
        self._log_sink = log
        self._log_buf: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._repair_prompt = repair_prompt
        self._sleep = sleep
        self._price: ModelPrice | None = settings.effective_price()
        self._rf_lock = threading.Lock()
        self._rf_level = (
            0
            if settings.response_format in ("auto", "json_schema")
            else RF_ORDER.index(settings.response_format)
        )
        key = self._read_key(settings)
        self._headers = {"Content-Type": "application/json"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        http = _http_module(openai.DefaultHttpxClient)
        self._http_mod = http
        n = settings.concurrency
        self._http = openai.DefaultHttpxClient(
            limits=http.Limits(max_connections=n + 8, max_keepalive_connections=n + 8),
            timeout=http.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
        )
        self._url = settings.base_url + "/chat/completions"
        self._sdk: Any = None
        self._sdk_key = key or "not-needed"

    @staticmethod
    def _read_key(settings: LLMSettings) -> str | None:
        if settings.api_key_env is None:
            return None
        key = os.environ.get(settings.api_key_env)
        if not key:
            raise ConfigError(
                f"environment variable {settings.api_key_env} (llm.api_key_env) is not set; export the "
                "API key there, or set api_key_env to none for a server that needs no key"
            )
        return key

    def __repr__(self) -> str:  # never show the key
        return f"LLMClient(model={self.settings.model!r}, base_url={self.settings.base_url!r})"

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.flush_log()
        self._http.close()
        if self._sdk is not None:
            self._sdk.close()

    @property
    def price(self) -> ModelPrice | None:
        return self._price

    def sdk(self) -> Any:
        """The ``openai.OpenAI`` object for this endpoint (Batch API, files), sharing our pool."""
        if self._sdk is None:
            import openai

            self._sdk = openai.OpenAI(
                api_key=self._sdk_key,
                base_url=self.settings.base_url,
                max_retries=self.settings.max_retries,
                timeout=self.settings.timeout_s,
                http_client=self._http,
            )
        return self._sdk

    # --- cost ------------------------------------------------------------------------------
    def estimate_cost(self, request: ChatRequest) -> float:
        return cost_usd(
            self._price, request.est_tokens_in(), request.est_tokens_out, batch=self.settings.batch_api
        )

    # --- logging ---------------------------------------------------------------------------
    def log_record(self, record: dict[str, Any]) -> None:
        if self._log_sink is None:
            return
        with self._log_lock:
            self._log_buf.append(record)

    def flush_log(self) -> None:
        """Write buffered log records (batched: one fsync per flush, not per call)."""
        if self._log_sink is None:
            return
        with self._log_lock:
            buf, self._log_buf = self._log_buf, []
        if buf:
            self._log_sink(buf)

    # --- one HTTP attempt ------------------------------------------------------------------
    def request_body(self, req: ChatRequest, messages: Sequence[Message], rf_level: int) -> dict[str, Any]:
        s = self.settings
        body: dict[str, Any] = {
            "model": s.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": s.temperature,
        }
        max_tokens = req.max_tokens or s.max_tokens
        if max_tokens:
            body["max_tokens"] = max_tokens
        if req.json_schema is not None:
            mode = RF_ORDER[rf_level]
            if mode == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {
                        "name": req.json_schema_name,
                        "schema": dict(req.json_schema),
                        "strict": True,
                    },
                }
            elif mode == "json_object":
                body["response_format"] = {"type": "json_object"}
        return body

    def _post(self, body: dict[str, Any]) -> _Attempt:
        http = self._http_mod
        t0 = time.perf_counter()
        try:
            resp = self._http.post(self._url, json=body, headers=self._headers)
        except http.TimeoutException as exc:
            return _Attempt(
                None, None, f"timeout ({type(exc).__name__})", True, 0, 0, time.perf_counter() - t0
            )
        except http.TransportError as exc:
            return _Attempt(
                None, None, f"connection error ({type(exc).__name__})", True, 0, 0, time.perf_counter() - t0
            )
        latency = time.perf_counter() - t0
        status = int(resp.status_code)
        if status != 200:
            retry_after: float | None = None
            ra = resp.headers.get("retry-after")
            if ra:
                try:
                    retry_after = float(ra)
                except ValueError:
                    retry_after = None
            msg = _error_message(resp.content)
            return _Attempt(
                status,
                None,
                f"HTTP {status}: {msg}",
                status in _TRANSIENT_STATUS or status >= 500,
                0,
                0,
                latency,
                retry_after,
            )
        try:
            data = json.loads(resp.content)
            content = data["choices"][0]["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return _Attempt(status, None, "malformed completion object", True, 0, 0, latency)
        usage = data.get("usage") or {}
        u_in, u_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
        reported = isinstance(u_in, int) and isinstance(u_out, int)
        if isinstance(u_in, int) and isinstance(u_out, int):
            t_in, t_out = u_in, u_out
        else:
            t_in = sum(estimate_tokens(m["content"]) + 4 for m in body["messages"])
            t_out = estimate_tokens(content)
        return _Attempt(status, content, None, False, t_in, t_out, latency, usage_reported=reported)

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        s = self.settings
        delay: float = min(s.backoff_max_s, s.backoff_base_s * (2.0**retry))
        delay = delay / 2 + random.uniform(0, delay / 2)  # equal jitter: spread, never zero
        if retry_after is not None:
            delay = max(delay, min(retry_after, s.backoff_max_s))
        return delay

    # --- one logical call ------------------------------------------------------------------
    def chat(self, request: ChatRequest, *, parse: ParseFn | None = None) -> ChatResult:
        """Run one request to completion (retries, repairs); never raises for endpoint failures."""
        result = self._run_one(request, parse)
        self.flush_log()
        return result

    def _run_one(self, req: ChatRequest, parse: ParseFn | None) -> ChatResult:
        s = self.settings
        messages = list(req.messages)
        t_start = time.perf_counter()
        tot_in = tot_out = calls = repairs = retries = 0
        cost = 0.0
        prompt_hash = req.prompt_sha256()[:16]
        last_content: str | None = None
        while True:
            with self._rf_lock:
                rf_level = self._rf_level
            body = self.request_body(req, messages, rf_level)
            att = self._post(body)
            calls += 1
            call_cost = cost_usd(self._price, att.tokens_in, att.tokens_out, batch=False)
            tot_in += att.tokens_in
            tot_out += att.tokens_out
            cost += call_cost
            status_txt = "ok" if att.error is None else (f"http_{att.status}" if att.status else "error")
            if att.error and att.status is None:
                status_txt = "timeout" if att.error.startswith("timeout") else "connection_error"
            rec: dict[str, Any] = {
                "time": _now_iso(),
                "model": s.model,
                "key": req.key,
                "prompt_sha256": prompt_hash,
                "attempt": calls,
                "status": status_txt,
                "tokens_in": att.tokens_in,
                "tokens_out": att.tokens_out,
                "usage_reported": att.usage_reported,
                "latency_s": round(att.latency_s, 4),
                "cost_usd": call_cost,
                "response_format": RF_ORDER[rf_level] if req.json_schema else "none",
            }
            if att.error is None and parse is not None:
                assert att.content is not None
                last_content = att.content
                try:
                    parsed = parse(att.content)
                except ReplyError as exc:
                    rec["status"] = "invalid_reply"
                    rec["error"] = str(exc)[:300]
                    self.log_record(rec)
                    if repairs >= s.max_repairs:
                        return ChatResult(
                            req.key,
                            "failed",
                            att.content,
                            None,
                            f"invalid reply after {repairs} repair attempt(s): {exc}",
                            tot_in,
                            tot_out,
                            cost,
                            time.perf_counter() - t_start,
                            calls,
                            repairs,
                            s.model,
                        )
                    repairs += 1
                    messages = [
                        *req.messages,
                        Message("assistant", att.content),
                        Message("user", self._repair_prompt.format(error=exc)),
                    ]
                    continue
                self.log_record(rec)
                return ChatResult(
                    req.key,
                    "ok",
                    att.content,
                    parsed,
                    None,
                    tot_in,
                    tot_out,
                    cost,
                    time.perf_counter() - t_start,
                    calls,
                    repairs,
                    s.model,
                )
            if att.error is None:
                self.log_record(rec)
                return ChatResult(
                    req.key,
                    "ok",
                    att.content,
                    att.content,
                    None,
                    tot_in,
                    tot_out,
                    cost,
                    time.perf_counter() - t_start,
                    calls,
                    repairs,
                    s.model,
                )
            rec["error"] = att.error[:300]
            self.log_record(rec)
            # Structured output not supported: step down one format and try again at once.
            if (
                att.status in (400, 422)
                and req.json_schema is not None
                and s.response_format == "auto"
                and rf_level < len(RF_ORDER) - 1
            ):
                with self._rf_lock:
                    if self._rf_level == rf_level:
                        self._rf_level = rf_level + 1
                continue
            if att.transient and retries < s.max_retries:
                self._sleep(self._backoff(retries, att.retry_after))
                retries += 1
                continue
            why = f"after {retries} retr{'y' if retries == 1 else 'ies'}: " if att.transient else ""
            return ChatResult(
                req.key,
                "failed",
                last_content,
                None,
                why + att.error,
                tot_in,
                tot_out,
                cost,
                time.perf_counter() - t_start,
                calls,
                repairs,
                s.model,
            )

    def _run_and_commit(
        self, req: ChatRequest, parse: ParseFn | None, commit: Callable[[ChatResult], None] | None
    ) -> ChatResult:
        r = self._run_one(req, parse)
        if commit is not None and r.status == "ok":
            try:
                commit(r)  # in the worker: the calling thread never waits on the cache
            except Exception as exc:
                raise _CommitError(str(exc)) from exc
        return r

    # --- many calls ------------------------------------------------------------------------
    def chat_many(
        self,
        requests: Iterable[ChatRequest],
        *,
        parse: ParseFn | None = None,
        on_result: Callable[[ChatResult], None] | None = None,
        max_cost: float | None = None,
        stop: threading.Event | None = None,
        log_flush_s: float = 0.5,
        commit: Callable[[ChatResult], None] | None = None,
    ) -> ChatManyOutcome:
        """Run requests with at most ``concurrency`` in flight; results reach ``on_result`` (on this
        thread) as they arrive; ``commit`` (e.g. a cache write) runs in the worker before a result is
        delivered, so a delivered result is always already stored. Stops sending -- letting in-flight calls finish -- when the next
        call could push the spend over ``max_cost`` or when ``stop`` is set."""
        if max_cost is not None and self._price is None:
            raise ConfigError(
                f"no price is known for model {self.settings.model!r}, so --max-cost cannot be enforced; "
                "give llm.price (or --price-in/--price-out, USD per 1M tokens; 0 for a local server)"
            )
        budget = _Budget(max_cost)
        results: list[ChatResult] = []
        pending: dict[Future[ChatResult], ChatRequest] = {}
        it: Iterator[ChatRequest] = iter(requests)
        stop_reason: str | None = None
        last_flush = time.monotonic()
        finished: queue.SimpleQueue[Future[ChatResult]] = queue.SimpleQueue()

        def deliver(r: ChatResult) -> None:
            results.append(r)
            if on_result is not None:
                on_result(r)

        with ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="llm") as pool:
            try:
                exhausted = False
                while True:
                    while not exhausted and stop_reason is None and len(pending) < self.settings.concurrency:
                        if stop is not None and stop.is_set():
                            stop_reason = "stop requested"
                            break
                        req = next(it, None)
                        if req is None:
                            exhausted = True
                            break
                        est = self.estimate_cost(req)
                        if budget.max_cost is not None and (
                            budget.spent + sum(budget.in_flight.values()) + est > budget.max_cost
                        ):
                            stop_reason = f"max cost ${budget.max_cost:.4f} reached"
                            deliver(
                                ChatResult(
                                    req.key,
                                    "stopped",
                                    error=f"not sent: {stop_reason}",
                                    model=self.settings.model,
                                )
                            )
                            break
                        budget.in_flight[req.key] = est
                        fut = pool.submit(self._run_and_commit, req, parse, commit)
                        pending[fut] = req
                        fut.add_done_callback(finished.put)
                    if not pending:
                        break
                    # A queue fed by done-callbacks: O(1) per result, unlike wait() over all pending.
                    done: list[Future[ChatResult]] = []
                    try:
                        done.append(finished.get(timeout=log_flush_s))
                        while True:
                            done.append(finished.get_nowait())
                    except queue.Empty:
                        pass
                    for fut in done:
                        req = pending.pop(fut)
                        budget.in_flight.pop(req.key, None)
                        try:
                            r = fut.result()
                        except _CommitError as exc:  # the cache cannot be written: stop the run
                            raise exc.__cause__ or exc from None
                        except Exception as exc:  # a bug in parse(), not an endpoint failure
                            r = ChatResult(
                                req.key,
                                "failed",
                                error=f"{type(exc).__name__}: {exc}",
                                model=self.settings.model,
                            )
                        budget.spent += r.cost_usd
                        deliver(r)
                        if stop_reason is None and r.error and r.error.startswith(_FATAL_PREFIXES):
                            stop_reason = f"endpoint refused the call ({r.error[:120]})"
                    if time.monotonic() - last_flush >= log_flush_s:
                        self.flush_log()
                        last_flush = time.monotonic()
                if stop_reason is not None:
                    for req in it:
                        deliver(
                            ChatResult(
                                req.key,
                                "stopped",
                                error=f"not sent: {stop_reason}",
                                model=self.settings.model,
                            )
                        )
            finally:
                if pending:  # an exception in on_result: let in-flight calls end, keep their logs
                    for fut in pending:
                        fut.cancel()
                self.flush_log()
        return ChatManyOutcome(tuple(results), stop_reason is not None, stop_reason, budget.spent)


def _error_message(content: bytes) -> str:
    try:
        data = json.loads(content)
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:200]
        if isinstance(err, str):
            return err[:200]
    except ValueError:
        pass
    return content[:200].decode("utf-8", "replace")


def with_key(result: ChatResult, key: str) -> ChatResult:
    """A copy of ``result`` under another key (cache hits are re-keyed to the asking request)."""
    return replace(result, key=key)


class _CommitError(Exception):
    """Raised by ``commit`` (e.g. the cache disk is full); ends the run instead of failing a text."""


class LLMError(SealError):
    """An endpoint problem that stops a run as a whole (bad URL, rejected key)."""
