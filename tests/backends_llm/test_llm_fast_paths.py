"""The throughput mechanisms of the LLM backend keep the guarantees of the simple versions.

Group commit (``CacheWriter``), worker-driven ``chat_many``, pre-encoded request bodies, the JSON
fast path and the per-call HTTP lanes are there for speed (``benchmarks/bench_label.py``); these
tests pin down that each one behaves exactly like what it replaced.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from llm_test_support import SCHEMA, fake_settings

from fakeserver.server import FakeOpenAIServer
from seal_audit.backends.llm import (
    CachedCall,
    CacheWriter,
    ChatRequest,
    ChatResult,
    LLMClient,
    LLMSettings,
    Message,
    ReplyError,
    cached_chat_many,
    extract_json_object,
    llm_cache_key,
)
from seal_audit.backends.llm.client import with_key
from seal_audit.store.cache import Cache


def settings(srv: FakeOpenAIServer, **kw: Any) -> LLMSettings:
    """A longer timeout than the fault tests: these measure concurrency, not timeouts."""
    return fake_settings(srv, **{"timeout_s": 2.0, **kw})


def req(key: str, text: str) -> ChatRequest:
    return ChatRequest(key, (Message("user", f"{text}\nJSON schema: {json.dumps(SCHEMA)}"),), SCHEMA)


def parse(text: str) -> dict[str, Any]:
    obj = extract_json_object(text)
    if "tone" not in obj:
        raise ReplyError("missing key(s): tone")
    return obj


# --- group commit ----------------------------------------------------------------------------
def test_cache_writer_put_returns_once_committed(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    with CacheWriter(cache, "ns") as w:
        for i in range(5):
            w.put(f"k{i}", {"v": i})
            # visible to another connection at once: committed, not merely queued
            with sqlite3.connect(tmp_path / "c.sqlite") as other:
                n = other.execute("SELECT count(*) FROM entries WHERE namespace = 'ns'").fetchone()[0]
            assert n == i + 1
    assert cache.get_many("ns", [f"k{i}" for i in range(5)]) == {f"k{i}": {"v": i} for i in range(5)}


def test_cache_writer_groups_concurrent_puts(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    gate = threading.Event()
    real_put_many = cache.put_many

    def slow_put_many(namespace: str, items: Any) -> None:
        gate.wait(5)  # hold the first transaction so the others queue up behind it
        real_put_many(namespace, items)

    cache.put_many = slow_put_many  # type: ignore[method-assign]
    with CacheWriter(cache, "ns") as w:
        threads = [threading.Thread(target=w.put, args=(f"k{i}", i)) for i in range(32)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        assert all(t.is_alive() for t in threads)  # nobody returns before its commit
        gate.set()
        for t in threads:
            t.join(5)
    assert len(cache.get_many("ns", [f"k{i}" for i in range(32)])) == 32
    assert w.batches < 32  # grouped: fewer transactions than values


def test_cache_writer_failure_reaches_every_waiter_and_stores_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    with CacheWriter(cache, "ns") as w:
        with pytest.raises(TypeError):
            w.put("bad", object())  # not JSON-serialisable: the transaction fails
        w.put("good", 1)  # the writer survives a failed batch
    assert cache.get_many("ns", ["bad", "good"]) == {"good": 1}
    w.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        w.put("late", 2)


def test_results_are_delivered_only_after_their_commit(fake_server: FakeOpenAIServer, tmp_path: Path) -> None:
    fake_server.latency_s = 0.01
    cache = Cache(tmp_path / "c.sqlite")
    calls = [CachedCall(req(str(i), f"text {i}"), llm_cache_key("m", "t", "s", f"h{i}")) for i in range(40)]
    by_key = {c.request.key: c.cache_key for c in calls}
    caller = threading.get_ident()
    seen: list[str] = []

    def on_result(r: ChatResult) -> None:
        assert threading.get_ident() == caller  # delivered on the calling thread
        assert cache.get("ns", by_key[r.key]) is not None  # and already in the cache
        seen.append(r.key)

    with LLMClient(settings(fake_server, concurrency=8)) as c:
        out = cached_chat_many(c, cache, "ns", calls, parse=parse, on_result=on_result)
    assert out.count("ok") == 40 and sorted(seen) == sorted(by_key)
    assert fake_server.max_in_flight <= 8


# --- worker-driven chat_many -------------------------------------------------------------------
def test_chat_many_log_is_complete_with_workers_flushing(fake_server: FakeOpenAIServer) -> None:
    records: list[dict[str, Any]] = []
    fake_server.script("text 3", ["500"])
    with LLMClient(settings(fake_server, concurrency=6), log=records.extend) as c:
        out = c.chat_many([req(str(i), f"text {i}") for i in range(30)], parse=parse, log_flush_s=0.0)
    assert out.count("ok") == 30
    assert len(records) == sum(r.http_calls for r in out.results) == 31  # one record per attempt
    assert sorted(r["time"] for r in records) == [r["time"] for r in records]  # appended in order


def test_chat_many_exception_in_on_result_lets_in_flight_calls_commit(fake_server: FakeOpenAIServer) -> None:
    fake_server.latency_s = 0.02
    committed: list[str] = []
    lock = threading.Lock()

    def commit(r: ChatResult) -> None:
        with lock:
            committed.append(r.key)

    def on_result(r: ChatResult) -> None:
        raise KeyError("boom")

    with LLMClient(settings(fake_server, concurrency=4)) as c, pytest.raises(KeyError):
        c.chat_many(
            [req(str(i), f"t{i}") for i in range(50)], parse=parse, on_result=on_result, commit=commit
        )
    # the run stopped sending, and every call it sent was committed before chat_many returned
    assert fake_server.chat_requests() == len(committed) < 50


def test_chat_many_stop_event_and_commit_failure(fake_server: FakeOpenAIServer) -> None:
    stop = threading.Event()
    n, sent_at_stop = 0, 0

    def on_result(r: ChatResult) -> None:
        nonlocal n, sent_at_stop
        n += 1
        if n == 3:
            sent_at_stop = fake_server.chat_requests()
            stop.set()

    with LLMClient(settings(fake_server, concurrency=2)) as c:
        out = c.chat_many(
            [req(str(i), f"t{i}") for i in range(20)], parse=parse, on_result=on_result, stop=stop
        )
    assert out.stopped and out.stop_reason == "stop requested"
    assert out.count("ok") + out.count("stopped") == 20 and out.count("stopped") > 0
    # nothing is sent once stop is set, beyond the calls (<= concurrency) already taken
    assert out.count("ok") == fake_server.chat_requests() <= sent_at_stop + 2

    def failing(r: ChatResult) -> None:
        raise OSError("disk full")

    with LLMClient(settings(fake_server, concurrency=2)) as c, pytest.raises(OSError, match="disk full"):
        c.chat_many([req(str(i), f"u{i}") for i in range(20)], parse=parse, commit=failing)


def test_http_lanes_are_reused_and_bounded(fake_server: FakeOpenAIServer) -> None:
    fake_server.latency_s = 0.01
    with LLMClient(settings(fake_server, concurrency=5)) as c:
        for round_ in range(3):
            out = c.chat_many([req(str(i), f"r{round_} {i}") for i in range(25)], parse=parse)
            assert out.count("ok") == 25
        assert len(c._lanes_all) <= 5  # one per call in flight, reused across runs
    assert fake_server.max_in_flight <= 5


# --- request bodies, hashes, parsing --------------------------------------------------------------
def test_encoded_body_is_what_httpx_would_send(fake_server: FakeOpenAIServer) -> None:
    with LLMClient(settings(fake_server, max_tokens=64)) as c:
        r = ChatRequest(
            "k", (Message("system", "sys"), Message("user", 'café 🍞 "quoted" \\ {braces}')), SCHEMA
        )
        for level in (0, 1, 2):
            body = c.request_body(r, r.messages, level)
            httpx_bytes = json.dumps(
                body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
            assert c.encode_body(body) == httpx_bytes
            assert c.encode_body(dict(body)) == httpx_bytes  # an unshared copy takes the slow path
        # the response format is built once per schema object and shared
        assert (
            c.request_body(r, r.messages, 0)["response_format"]
            is c.request_body(r, r.messages, 0)["response_format"]
        )
        schema2 = dict(SCHEMA)
        r2 = ChatRequest("k", r.messages, schema2)
        assert (
            c.request_body(r2, r2.messages, 0)["response_format"]
            == c.request_body(r, r.messages, 0)["response_format"]
        )


def test_prompt_hash_separates_roles_and_boundaries() -> None:
    a = ChatRequest("k", (Message("system", "ab"), Message("user", "c")))
    b = ChatRequest("k", (Message("system", "a"), Message("user", "bc")))
    c = ChatRequest("k", (Message("user", "ab"), Message("user", "c")))
    long = ChatRequest("k", (Message("user", "x" * 10_000 + "é"),))
    hashes = {r.prompt_sha256() for r in (a, b, c, long)}
    assert len(hashes) == 4 and all(len(h) == 64 for h in hashes)
    assert long.prompt_sha256() == ChatRequest("other", long.messages).prompt_sha256()


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "b": [1, 2]}',
        '  \n{"a": 1}\n ',
        '[{"a": 1}]',  # a list: the first object inside
        'Sure: {"a": {"b": 2}} and {"c": 3}',
        '```json\n{"a": 1}\n```',
        '{"a": "```json {\\"x\\": 1} ```"}',  # a fence inside a string: the scan decides
        '{"a": 1, "a": 2}',
        '\ufeff{"a": 1}',
        '{"a": NaN}',
    ],
)
def test_json_fast_path_matches_the_scan(text: str) -> None:
    assert extract_json_object(text) == _scan_only(text)


def _scan_only(text: str) -> dict[str, Any]:
    """``extract_json_object`` without its fast path (the reference behaviour)."""
    import re

    fence = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
    decoder = json.JSONDecoder()
    for cand in [m.group(1) for m in fence.finditer(text)] + [text]:
        start = cand.find("{")
        while start >= 0:
            try:
                obj, _ = decoder.raw_decode(cand, start)
            except ValueError:
                start = cand.find("{", start + 1)
                continue
            if isinstance(obj, dict):
                return obj
            start = cand.find("{", start + 1)
    raise AssertionError("no object")


def test_with_key_copies_every_field() -> None:
    r = ChatResult("a", "ok", "c", {"x": 1}, None, 1, 2, 0.5, 0.1, 3, 1, "m", True)
    r2 = with_key(r, "b")
    assert r2.key == "b" and r2 == ChatResult("b", "ok", "c", {"x": 1}, None, 1, 2, 0.5, 0.1, 3, 1, "m", True)
