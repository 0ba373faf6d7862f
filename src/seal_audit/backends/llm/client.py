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
* ``chat_many`` runs ``concurrency`` worker threads; each takes the next request, runs it,
  ``commit``s a success (the cache write) and takes the next, so a slot is refilled without waiting
  for the calling thread. Results reach ``on_result`` on the *calling* thread in arrival order,
  always after their commit: a killed run loses only the calls in flight.
* Each call borrows an HTTP "lane" (a private one-connection pool) instead of sharing one big
  pool: httpcore scans a pool's connections under one lock on every request and response, which
  made 64 threads queue on that lock. Request bodies are JSON-encoded by us, with the
  (per-feature-set) ``response_format`` encoded once, not per call.
* Worker threads hold the GIL for short stretches only: on 2 cores with 64 calls in flight the
  GIL, not the network, bounds throughput, and every release (a long hash, a blocking flush) means
  queueing to get it back.
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
import math
import operator
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Literal

from seal_audit.backends.llm.jsonrepair import ReplyError, extract_json_object
from seal_audit.backends.llm.settings import DIALECTS, LLMSettings, ModelPrice, cost_usd, estimate_tokens
from seal_audit.data.errors import ConfigError, MissingDependencyError, SealError

ResultStatus = Literal["ok", "failed", "stopped"]
LogSink = Callable[[list[dict[str, Any]]], None]
ParseFn = Callable[[str], Any]
"""Turns a reply's text into a value, or raises ``ReplyError`` (-> a repair turn)."""

_TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
RF_ORDER = DIALECTS
"""Structured-output dialects, most constrained first (``auto`` steps down this list)."""
_RF_STEP_STATUS = frozenset({400, 422, 500})
_RF_WORDS = (
    "response_format",
    "response format",
    "json_schema",
    "json_object",
    "guided",
    "schema",
    "grammar",
)
"""An error body with one of these words is about the response format (llama-cpp-python answers
``json_schema`` with HTTP 500 "Input should be 'text' or 'json_object'")."""
UNREACHABLE = "endpoint unreachable"
_SETTLED_LOCK = threading.Lock()
_SETTLED: dict[tuple[str, str], int] = {}
"""(base_url, model) -> settled dialect level: ``auto`` probes an endpoint once per process (run)."""
PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}
PROBE_PROMPT = 'Reply with the JSON object {"ok": true} and nothing else. JSON schema: ' + json.dumps(
    PROBE_SCHEMA
)
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
        """SHA-256 of the messages, each as ``role NUL byte-length NUL content`` (unambiguous;
        no JSON encoding of a long prompt per call)."""
        h = hashlib.sha256()
        for m in self.messages:
            data = m.content.encode("utf-8")
            h.update(f"{m.role}\x00{len(data)}\x00".encode())
            _update_holding_gil(h, data)
        return h.hexdigest()


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
    resends: int = 0
    """HTTP attempts sent again after a timeout or a transient error (work the server may have
    done twice); repair turns and response-format step-downs are not resends."""


@dataclass(frozen=True, slots=True)
class ChatManyOutcome:
    """Summary of a ``chat_many`` run; ``stopped`` is True when it ended on the cost budget or a stop
    request (the unsent requests are in ``results`` with status ``stopped``)."""

    results: tuple[ChatResult, ...]
    stopped: bool
    stop_reason: str | None
    cost_usd: float
    info: Mapping[str, Any] = field(default_factory=dict)
    """What the client learned and did: settled ``response_format``, ``server_slots``,
    ``concurrency`` used, ``requests``, ``resends``, ``repairs``, ``timeouts`` (plain JSON)."""

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
    connect_failed: bool = False
    """No connection could be made (refused, DNS, TLS, connect timeout): counts to the breaker."""
    timed_out: bool = False


@dataclass
class _Budget:
    max_cost: float | None
    spent: float = 0.0
    in_flight: dict[str, float] = field(default_factory=dict)


class _ManyRun:
    """The state ``LLMClient.chat_many`` shares with its worker threads."""

    def __init__(
        self,
        client: LLMClient,
        requests: Iterator[ChatRequest],
        parse: ParseFn | None,
        commit: Callable[[ChatResult], None] | None,
        stop: threading.Event | None,
        budget: _Budget,
        log_flush_s: float,
    ) -> None:
        self.client = client
        self.requests = requests
        self.parse = parse
        self.commit = commit
        self.stop = stop
        self.budget = budget
        self.log_flush_s = log_flush_s
        self.stop_reason: str | None = None
        self.out: queue.SimpleQueue[ChatResult | _CommitError | None] = queue.SimpleQueue()
        """Results in arrival order; None each time a worker ends."""
        self._lock = threading.Lock()
        self._closed = False  # nothing more is sent

    def abort(self) -> None:
        with self._lock:
            self._closed = True

    def _take(self) -> ChatRequest | None:
        """The next request to send, or None when sending is over. Under the lock: the iterator,
        the budget and the stop reason are shared by the workers."""
        with self._lock:
            if self._closed or self.stop_reason is not None:
                return None
            if self.stop is not None and self.stop.is_set():
                self.stop_reason = "stop requested"
                return None
            req = next(self.requests, None)
            if req is None:
                self._closed = True
                return None
            b = self.budget
            est = self.client.estimate_cost(req)
            if b.max_cost is not None and b.spent + sum(b.in_flight.values()) + est > b.max_cost:
                self.stop_reason = f"max cost ${b.max_cost:.4f} reached"
                self.out.put(
                    ChatResult(
                        req.key,
                        "stopped",
                        error=f"not sent: {self.stop_reason}",
                        model=self.client.settings.model,
                    )
                )
                return None
            b.in_flight[req.key] = est
            return req

    def work(self) -> None:
        try:
            while (req := self._take()) is not None:
                try:
                    r = self.client._run_and_commit(req, self.parse, self.commit, self.log_flush_s)
                except _CommitError as exc:
                    self.abort()
                    self.out.put(exc)
                    return
                except Exception as exc:  # a bug in parse(), not an endpoint failure
                    r = ChatResult(
                        req.key,
                        "failed",
                        error=f"{type(exc).__name__}: {exc}",
                        model=self.client.settings.model,
                    )
                with self._lock:
                    self.budget.in_flight.pop(req.key, None)
                    self.budget.spent += r.cost_usd
                    if self.stop_reason is None and r.error and r.error.startswith(_FATAL_PREFIXES):
                        self.stop_reason = f"endpoint refused the call ({r.error[:120]})"
                    if self.stop_reason is None and self.client.unreachable is not None:
                        self.stop_reason = self.client.unreachable
                self.out.put(r)
        finally:
            self.out.put(None)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


_VERIFY_LOCK = threading.Lock()
_VERIFY: dict[tuple[str, str | None, str | None], Any] = {}


def _default_verify(http: Any) -> Any:
    """``verify=`` for our HTTP clients: httpx's default TLS context, built once per process (and
    per CA-bundle environment variables, which it reads)."""
    make_ctx = getattr(http, "create_ssl_context", None)
    if make_ctx is None:
        return True
    key = (http.__name__, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _VERIFY_LOCK:
        if key not in _VERIFY:
            _VERIFY[key] = make_ctx()
        return _VERIFY[key]


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
        self._flush_lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._repair_prompt = repair_prompt
        self._sleep = sleep
        self._price: ModelPrice | None = settings.effective_price()
        self._rf_lock = threading.Lock()
        self._rf_memo: dict[tuple[int, str, str], tuple[Mapping[str, Any], dict[str, Any]]] = {}
        self._rf_json: dict[int, tuple[dict[str, Any], str]] = {}
        self._rf_level = 0 if settings.response_format == "auto" else RF_ORDER.index(settings.response_format)
        self._settled = settings.response_format != "auto"
        self._settle_lock = threading.Lock()
        self.probe_error: str | None = None
        self.unreachable: str | None = None
        """Set once ``breaker_after`` connection failures happened in a row: nothing more is sent."""
        self._conn_fail_streak = 0
        self.server_slots: int | None = None
        """The server's own parallelism, where it says it (llama.cpp ``/props`` or ``/slots``)."""
        self._slots_known = False
        self._gate = _Gate(settings.concurrency)
        self._stats_lock = threading.Lock()
        self.stats: dict[str, int] = {"requests": 0, "resends": 0, "repairs": 0, "timeouts": 0, "probes": 0}
        self._lat_ewma: float | None = None
        self._used_schema = False
        key = self._read_key(settings)
        self._headers = {"Content-Type": "application/json"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        http = _http_module(openai.DefaultHttpxClient)
        self._openai = openai
        self._http_mod = http
        n = settings.concurrency
        self._timeout = http.Timeout(
            settings.timeout_s, connect=min(settings.connect_timeout_s, settings.timeout_s)
        )
        # One TLS context shared by every pool below (and by later clients): it is the context httpx
        # builds for verify=True, whose CA bundle takes ~40 ms to load.
        self._verify: Any = _default_verify(http)
        self._http = openai.DefaultHttpxClient(
            limits=http.Limits(max_connections=n + 8, max_keepalive_connections=n + 8),
            timeout=self._timeout,
            verify=self._verify,
        )
        # Chat calls go through "lanes": small private pools handed to one call at a time.
        self._lanes_free: list[Any] = []
        self._lanes_all: list[Any] = []
        self._lanes_lock = threading.Lock()
        self._url = settings.base_url + "/chat/completions"
        self._url_parsed = http.URL(self._url)  # parsed once, not per call (~12 us)
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
        with self._lanes_lock:
            lanes, self._lanes_all, self._lanes_free = self._lanes_all, [], []
        for lane in lanes:
            lane.close()
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
        with self._flush_lock:  # one writer at a time: records reach the sink in order
            self._write_log()

    def _write_log(self) -> None:
        assert self._log_sink is not None
        with self._log_lock:
            buf, self._log_buf = self._log_buf, []
        self._last_flush = time.monotonic()
        if buf:
            self._log_sink(buf)

    def _maybe_flush_log(self, max_age_s: float) -> None:
        """Flush if the last flush is older than ``max_age_s`` and no other thread is flushing.

        ``chat_many``'s workers call this after each call, so the periodic write + fsync of the
        calls log happens on a worker (stalling one slot for a few ms) instead of on the thread
        that delivers results."""
        if self._log_sink is None or time.monotonic() - self._last_flush < max_age_s:
            return
        if self._flush_lock.acquire(blocking=False):
            try:
                if time.monotonic() - self._last_flush >= max_age_s:
                    self._write_log()
            finally:
                self._flush_lock.release()

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
            self._used_schema = True
            dialect = RF_ORDER[rf_level]
            if dialect == "guided_json":  # vLLM's extra body field
                body["guided_json"] = req.json_schema
            else:
                rf = self._response_format(req.json_schema, req.json_schema_name, dialect)
                if rf is not None:
                    body["response_format"] = rf
        return body

    def _response_format(self, schema: Mapping[str, Any], name: str, mode: str) -> dict[str, Any] | None:
        """The ``response_format`` of a body, built and JSON-encoded once per schema object and
        shared (read-only) by every body that uses it: encoding a 19-feature schema costs ~25 us
        per call otherwise."""
        if mode in ("none", "guided_json"):
            return None
        ck = (id(schema), name, mode)
        hit = self._rf_memo.get(ck)
        if hit is not None and hit[0] is schema:  # the memo holds the schema: its id stays unique
            return hit[1]
        if mode == "json_schema":
            rf: dict[str, Any] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": dict(schema), "strict": True},
            }
        elif mode == "json_object_schema":  # llama-cpp-python: JSON mode constrained by a schema
            rf = {"type": "json_object", "schema": dict(schema)}
        else:
            rf = {"type": "json_object"}
        with self._rf_lock:
            if len(self._rf_memo) >= 64:  # many one-off schemas: keep the memo small
                self._rf_memo.clear()
                self._rf_json.clear()
            self._rf_memo[ck] = (schema, rf)
            self._rf_json[id(rf)] = (rf, _dumps(rf))
        return rf

    def encode_body(self, body: dict[str, Any]) -> bytes:
        """``body`` as the JSON bytes httpx would send for ``json=body`` (same encoder settings),
        reusing the encoded ``response_format`` when it is a shared one from ``request_body``."""
        rf = body.get("response_format")
        if rf is not None and next(reversed(body.keys())) == "response_format":
            hit = self._rf_json.get(id(rf))
            if hit is not None and hit[0] is rf:
                head = _dumps({k: v for k, v in body.items() if k != "response_format"})
                return (head[:-1] + ',"response_format":' + hit[1] + "}").encode("utf-8")
        return _dumps(body).encode("utf-8")

    def _take_lane(self) -> Any:
        """An HTTP client (one keep-alive connection) that no other call is using.

        Why not one shared pool: httpcore's pool scans every connection under one lock on each
        request and each response (polling every idle socket for expiry), so with 64 calls in
        flight the threads queue on that lock; on a 2-core machine it cost ~10 % of the
        throughput bound. A lane serves one call at a time, so its lock is never contended and its
        scan is one connection long. Lanes are reused (last in, first out: warm connections
        first); there are never more than the calls made at once, i.e. ``concurrency`` in
        ``chat_many``."""
        try:
            return self._lanes_free.pop()  # atomic; no lock needed
        except IndexError:
            pass
        http = self._http_mod
        lane = self._openai.DefaultHttpxClient(
            limits=http.Limits(max_connections=2, max_keepalive_connections=1),
            timeout=self._timeout,
            verify=self._verify,
        )
        with self._lanes_lock:
            self._lanes_all.append(lane)
        return lane

    def _post(self, body: dict[str, Any], timeout_s: float | None = None) -> _Attempt:
        http = self._http_mod
        data = self.encode_body(body)
        lane = self._take_lane()
        timeout = self._timeout
        if timeout_s is not None and timeout_s != self.settings.timeout_s:
            timeout = http.Timeout(timeout_s, connect=min(self.settings.connect_timeout_s, timeout_s))
        with self._stats_lock:
            self.stats["requests"] += 1
        t0 = time.perf_counter()
        try:
            resp = lane.post(self._url_parsed, content=data, headers=self._headers, timeout=timeout)
        except (http.ConnectError, http.ConnectTimeout) as exc:
            return self._connect_failed(exc, time.perf_counter() - t0)
        except http.TimeoutException as exc:
            with self._stats_lock:
                self.stats["timeouts"] += 1
            return _Attempt(
                None,
                None,
                f"timeout ({type(exc).__name__} after {timeout.read or 0:g} s)",
                True,
                0,
                0,
                time.perf_counter() - t0,
                timed_out=True,
            )
        except http.TransportError as exc:
            self._conn_fail_streak = 0
            return _Attempt(
                None, None, f"connection error ({type(exc).__name__})", True, 0, 0, time.perf_counter() - t0
            )
        finally:  # the response is read and its connection back in the lane's pool
            self._lanes_free.append(lane)
        self._conn_fail_streak = 0  # a reply of any kind: the endpoint is reachable
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
        with self._stats_lock:
            self._lat_ewma = latency if self._lat_ewma is None else 0.8 * self._lat_ewma + 0.2 * latency
        usage = data.get("usage") or {}
        u_in, u_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
        reported = isinstance(u_in, int) and isinstance(u_out, int)
        if isinstance(u_in, int) and isinstance(u_out, int):
            t_in, t_out = u_in, u_out
        else:
            t_in = sum(estimate_tokens(m["content"]) + 4 for m in body["messages"])
            t_out = estimate_tokens(content)
        return _Attempt(status, content, None, False, t_in, t_out, latency, usage_reported=reported)

    def _queue_factor(self, in_flight: int) -> int:
        """How many calls' worth of time a call may wait: the calls in flight per server slot
        (a hosted API runs them all at once; an unknown server may run one at a time)."""
        if "api.openai.com" in self.settings.base_url:
            return 1
        return min(16, math.ceil(in_flight / (self.server_slots or 1)))

    def _connect_failed(self, exc: Exception, latency: float) -> _Attempt:
        """One more connection failure in a row; the breaker opens at ``breaker_after``."""
        detail = f"{type(exc).__name__}: {str(exc)[:120]}" if str(exc) else type(exc).__name__
        with self._stats_lock:
            self._conn_fail_streak += 1
            if self._conn_fail_streak >= self.settings.breaker_after and self.unreachable is None:
                self.unreachable = (
                    f"{UNREACHABLE}: {self._url} ({detail}; {self._conn_fail_streak} connection "
                    "failures in a row)"
                )
        return _Attempt(None, None, f"connection failed ({detail})", True, 0, 0, latency, connect_failed=True)

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
        if request.json_schema is not None:
            error = self.settle_response_format()
            if error is not None:
                self.flush_log()
                return ChatResult(request.key, "failed", error=error, model=self.settings.model)
        result = self._run_one(request, parse)
        self.flush_log()
        return result

    def _run_one(self, req: ChatRequest, parse: ParseFn | None) -> ChatResult:
        s = self.settings
        messages = list(req.messages)
        t_start = time.perf_counter()
        tot_in = tot_out = calls = repairs = retries = resends = timeouts = 0
        cost = 0.0
        prompt_hash = req.prompt_sha256()[:16]
        last_content: str | None = None

        def result(status: ResultStatus, content: str | None, parsed: Any, error: str | None) -> ChatResult:
            return ChatResult(
                req.key,
                status,
                content,
                parsed,
                error,
                tot_in,
                tot_out,
                cost,
                time.perf_counter() - t_start,
                calls,
                repairs,
                s.model,
                resends=resends,
            )

        while True:
            if self.unreachable is not None:
                return result("failed", last_content, None, self.unreachable)
            with self._rf_lock:
                rf_level = self._rf_level
            body = self.request_body(req, messages, rf_level)
            with self._gate as ahead:
                # Wait longer while the server is busy with our own calls (a one-slot server runs
                # them one after the other), and longer again after a timeout: a busy server gets
                # time, not a second copy of the same work.
                timeout_s = s.timeout_s * self._queue_factor(ahead) * (2 ** min(timeouts, 3))
                att = self._post(body, timeout_s)
            calls += 1
            call_cost = cost_usd(self._price, att.tokens_in, att.tokens_out, batch=False)
            tot_in += att.tokens_in
            tot_out += att.tokens_out
            cost += call_cost
            status_txt = "ok" if att.error is None else (f"http_{att.status}" if att.status else "error")
            if att.error and att.status is None:
                status_txt = "timeout" if att.timed_out else "connection_error"
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
            if att.error is None:
                assert att.content is not None
                parsed: Any = att.content
                if parse is not None:
                    last_content = att.content
                    try:
                        parsed = parse(att.content)
                    except ReplyError as exc:
                        rec["status"] = "invalid_reply"
                        rec["error"] = str(exc)[:300]
                        self.log_record(rec)
                        if repairs >= s.max_repairs:
                            return result(
                                "failed",
                                att.content,
                                None,
                                f"invalid reply after {repairs} repair attempt(s): {exc}",
                            )
                        repairs += 1
                        with self._stats_lock:
                            self.stats["repairs"] += 1
                        messages = [
                            *req.messages,
                            Message("assistant", att.content),
                            Message("user", self._repair_prompt.format(error=exc)),
                        ]
                        continue
                self.log_record(rec)
                return result("ok", att.content, parsed, None)
            assert att.error is not None
            rec["error"] = att.error[:300]
            self.log_record(rec)
            # Structured output not supported: step down one dialect and try again at once.
            if (
                att.status in _RF_STEP_STATUS
                and req.json_schema is not None
                and s.response_format == "auto"
                and rf_level < len(RF_ORDER) - 1
                and _names_response_format(att.error)
            ):
                with self._rf_lock:
                    if self._rf_level == rf_level:
                        self._rf_level = rf_level + 1
                continue
            if att.connect_failed:
                if self.unreachable is not None:
                    return result("failed", last_content, None, self.unreachable)
                if retries < s.max_retries:  # short waits: the breaker decides, not the backoff
                    self._sleep(min(1.0, self._backoff(retries, None)))
                    retries += 1
                    continue
            elif att.transient and retries < s.max_retries:
                delay = self._backoff(retries, att.retry_after)
                if att.timed_out:
                    timeouts += 1
                    with self._stats_lock:
                        lat = self._lat_ewma
                    if lat is not None:  # let the server finish what it was doing first
                        delay = max(delay, min(lat, s.backoff_max_s))
                    self._gate.shrink()
                self._sleep(delay)
                retries += 1
                resends += 1
                with self._stats_lock:
                    self.stats["resends"] += 1
                continue
            why = f"after {retries} retr{'y' if retries == 1 else 'ies'}: " if att.transient else ""
            return result("failed", last_content, None, why + att.error)

    # --- what the endpoint supports --------------------------------------------------------
    @property
    def dialect(self) -> str:
        """The response-format dialect in use now (settled by the probe, or stepped down since)."""
        with self._rf_lock:
            return RF_ORDER[self._rf_level]

    def settle_response_format(self) -> str | None:
        """With ``response_format = "auto"``: find, with one small probe per dialect at most, the
        most constrained dialect this endpoint accepts and answers with valid JSON; once per
        endpoint and model in this process. Returns an error that stops the run (unreachable
        endpoint, rejected key, wrong URL or model), else None."""
        with self._settle_lock:
            if self._settled:
                return self.probe_error
            memo_key = (self.settings.base_url, self.settings.model)
            with _SETTLED_LOCK:
                level = _SETTLED.get(memo_key)
            if level is None:
                level, error = self._probe()
                if error is not None:
                    self.probe_error = error
                    self._settled = True
                    return error
                with _SETTLED_LOCK:
                    _SETTLED[memo_key] = level
            with self._rf_lock:
                self._rf_level = max(self._rf_level, level)
            self._settled = True
            return None

    def _probe(self) -> tuple[int, str | None]:
        req = ChatRequest(
            "probe:response_format",
            (Message("user", PROBE_PROMPT),),
            json_schema=PROBE_SCHEMA,
            json_schema_name="probe",
            max_tokens=24,
        )
        accepted: int | None = None
        failures = 0
        level = 0
        while level < len(RF_ORDER) - 1:
            body = self.request_body(req, req.messages, level)
            att = self._post(body, min(self.settings.timeout_s, 60.0))
            with self._stats_lock:
                self.stats["probes"] += 1
            self.log_record(
                {
                    "time": _now_iso(),
                    "model": self.settings.model,
                    "key": req.key,
                    "attempt": level + 1,
                    "status": "ok"
                    if att.error is None
                    else (f"http_{att.status}" if att.status else "error"),
                    "tokens_in": att.tokens_in,
                    "tokens_out": att.tokens_out,
                    "latency_s": round(att.latency_s, 4),
                    "cost_usd": cost_usd(self._price, att.tokens_in, att.tokens_out),
                    "response_format": RF_ORDER[level],
                    **({"error": att.error[:300]} if att.error else {}),
                }
            )
            if att.connect_failed:
                if self.unreachable is not None:
                    return 0, self.unreachable
                failures += 1
                self._sleep(min(1.0, self._backoff(failures - 1, None)))
                continue
            if att.error is None:
                try:
                    extract_json_object(att.content or "")
                    return level, None
                except ReplyError:
                    accepted = level if accepted is None else accepted
            elif att.status is not None and att.status in (401, 403, 404):
                return 0, f"{att.error} (at {self._url})"
            elif att.status is None or not (
                att.status in _RF_STEP_STATUS and _names_response_format(att.error)
            ):
                # a timeout or an unrelated error: no verdict; the calls themselves step down if needed
                return (accepted if accepted is not None else level), None
            level += 1
        return (accepted if accepted is not None else len(RF_ORDER) - 1), None

    def learn_server_slots(self) -> int | None:
        """The server's parallelism from llama.cpp's ``GET /props`` (``total_slots``) or
        ``GET /slots`` (one entry per slot), asked once per client; in-flight calls are capped at it,
        so no request waits inside the server (where a client timeout would abandon, and a resend
        repeat, its work). None when the server does not say (OpenAI, vLLM, llama-cpp-python)."""
        if self._slots_known:
            return self.server_slots
        self._slots_known = True
        root = self.settings.base_url
        if root.endswith("/v1"):
            root = root[: -len("/v1")]
        if "api.openai.com" in root:
            return None
        http = self._http_mod
        for path in ("/props", "/slots"):
            try:
                resp = self._http.get(root + path, headers=self._headers, timeout=http.Timeout(3.0))
                if resp.status_code != 200:
                    continue
                data = resp.json()
            except (http.HTTPError, ValueError):
                continue
            slots = (
                data.get("total_slots")
                if isinstance(data, dict)
                else len(data)
                if isinstance(data, list)
                else None
            )
            if isinstance(slots, int) and slots >= 1:
                self.server_slots = slots
                self._gate.set_limit(min(self.settings.concurrency, slots))
                return slots
        return None

    def run_info(self) -> dict[str, Any]:
        """What this client learned and did (for the stage record and the summary)."""
        with self._stats_lock:
            stats = dict(self.stats)
        return {
            # None: no structured call was made (plain-text rewrites, or everything was cached)
            "response_format": self.dialect if self._used_schema else None,
            "response_format_mode": self.settings.response_format,
            "server_slots": self.server_slots,
            "concurrency": self._gate.limit,
            **stats,
        }

    def _run_and_commit(
        self,
        req: ChatRequest,
        parse: ParseFn | None,
        commit: Callable[[ChatResult], None] | None,
        log_flush_s: float = 0.5,
    ) -> ChatResult:
        r = self._run_one(req, parse)
        try:
            if commit is not None and r.status == "ok":
                commit(r)  # in the worker: the calling thread never waits on the cache
            self._maybe_flush_log(log_flush_s)
        except Exception as exc:  # the cache or the calls log cannot be written: stop the run
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
        delivered, so a delivered result is always already stored. Stops sending -- letting
        in-flight calls finish -- when the next call could push the spend over ``max_cost``, when
        ``stop`` is set, or when ``on_result`` raises.

        Each of the ``concurrency`` worker threads takes the next request itself as soon as its
        previous call is committed: refilling a slot does not wait for this thread to deliver the
        previous result (with 64 slots on 2 cores that wait cost ~5 % of the throughput bound).
        The request iterator, the cost budget and the stop checks are shared under one lock."""
        if max_cost is not None and self._price is None:
            raise ConfigError(
                f"no price is known for model {self.settings.model!r}, so --max-cost cannot be enforced; "
                "give llm.price (or --price-in/--price-out, USD per 1M tokens; 0 for a local server)"
            )
        it = iter(requests)
        first = next(it, None)
        if first is None:
            return ChatManyOutcome((), False, None, 0.0, self.run_info())
        it = _chain_first(first, it)
        self.learn_server_slots()
        error = self.settle_response_format() if first.json_schema is not None else None
        if error is not None:  # nothing can succeed: every request is "stopped", with the reason
            self.flush_log()
            res = tuple(
                ChatResult(r.key, "stopped", error=f"not sent: {error}", model=self.settings.model)
                for r in it
            )
            if on_result is not None:
                for r in res:
                    on_result(r)
            return ChatManyOutcome(res, True, error, 0.0, self.run_info())
        run = _ManyRun(self, it, parse, commit, stop, _Budget(max_cost), log_flush_s)
        results: list[ChatResult] = []
        n_workers = self.settings.concurrency
        if isinstance(requests, Sized):
            n_workers = max(1, min(n_workers, len(requests)))
        threads = [threading.Thread(target=run.work, name=f"llm-{i}", daemon=True) for i in range(n_workers)]
        try:
            for t in threads:
                t.start()
            alive = len(threads)
            while alive:
                try:
                    item = run.out.get(timeout=log_flush_s)
                except queue.Empty:
                    # Workers flush the log as they finish calls; this covers calls that take much
                    # longer than the flush interval.
                    self._maybe_flush_log(2 * log_flush_s)
                    continue
                if item is None:  # a worker has ended
                    alive -= 1
                    continue
                if isinstance(item, _CommitError):  # the cache cannot be written: stop the run
                    raise item.__cause__ or item
                results.append(item)
                if on_result is not None:
                    on_result(item)
            if run.stop_reason is not None:
                for req in run.requests:
                    r = ChatResult(
                        req.key, "stopped", error=f"not sent: {run.stop_reason}", model=self.settings.model
                    )
                    results.append(r)
                    if on_result is not None:
                        on_result(r)
        finally:
            # An exception in on_result or a failed commit: send nothing more, let the calls in
            # flight end (and be committed), keep their logs.
            run.abort()
            for t in threads:
                if t.ident is not None:
                    t.join()
            self.flush_log()
        return ChatManyOutcome(
            tuple(results), run.stop_reason is not None, run.stop_reason, run.budget.spent, self.run_info()
        )


def _chain_first(first: ChatRequest, rest: Iterator[ChatRequest]) -> Iterator[ChatRequest]:
    yield first
    yield from rest


def _names_response_format(error: str) -> bool:
    low = error.lower()
    return any(w in low for w in _RF_WORDS)


class _Gate:
    """At most ``limit`` HTTP attempts in flight; the limit drops to the server's slot count when
    the server says it, and halves when a call times out while others are in flight (the server
    is running fewer at once than we send, and the rest wait inside it)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._active = 0
        self._cond = threading.Condition()

    def set_limit(self, limit: int) -> None:
        with self._cond:
            self.limit = max(1, limit)
            self._cond.notify_all()

    def shrink(self) -> None:
        with self._cond:
            if self._active > 1:
                self.limit = max(1, min(self.limit, self._active) // 2)

    def __enter__(self) -> int:
        """Take a slot; returns the calls in flight, this one included."""
        with self._cond:
            while self._active >= self.limit:
                self._cond.wait()
            self._active += 1
            return self._active

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify()


_GIL_CHUNK = 2000


def _update_holding_gil(h: Any, data: bytes) -> None:
    """``h.update(data)`` in pieces under 2 kB, which CPython hashes without releasing the GIL.

    Dropping the GIL for a few microseconds of hashing is a loss in a worker thread of a busy
    pool: getting it back means queueing behind the other 63 threads (measured: ~0.5 ms per call
    at concurrency 64 on 2 cores, for a 6 kB prompt)."""
    view = memoryview(data)
    for i in range(0, len(view), _GIL_CHUNK):
        h.update(view[i : i + _GIL_CHUNK])


def _dumps(obj: Any) -> str:
    """JSON as ``httpx`` encodes a ``json=`` body (compact, UTF-8, no NaN)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


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


_RESULT_FIELDS = tuple(f.name for f in fields(ChatResult))
assert _RESULT_FIELDS[0] == "key"
_result_rest = operator.attrgetter(*_RESULT_FIELDS[1:])


def with_key(result: ChatResult, key: str) -> ChatResult:
    """A copy of ``result`` under another key (cache hits are re-keyed to the asking request).
    Positional construction: half the cost of ``dataclasses.replace``, paid once per result."""
    return ChatResult(key, *_result_rest(result))


class _CommitError(Exception):
    """Raised by ``commit`` (e.g. the cache disk is full); ends the run instead of failing a text."""


class LLMError(SealError):
    """An endpoint problem that stops a run as a whole (bad URL, rejected key)."""
