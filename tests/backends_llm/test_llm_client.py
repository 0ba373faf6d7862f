"""LLMClient against the fake OpenAI-compatible server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from llm_test_support import SCHEMA, fake_settings

from fakeserver.server import FakeOpenAIServer, expected_answer
from seal_audit.backends.llm import (
    BatchRunner,
    CachedCall,
    ChatRequest,
    JsonFileState,
    LLMClient,
    LLMSettings,
    Message,
    ModelPrice,
    ReplyError,
    cached_chat_many,
    extract_json_object,
    llm_cache_key,
)
from seal_audit.data.errors import ConfigError
from seal_audit.store import RunStore


def settings(srv: FakeOpenAIServer, **kw: Any) -> LLMSettings:
    return fake_settings(srv, **kw)


def prompt(text: str) -> str:
    """The schema also goes into the prompt, as the LM-labeler does, for endpoints without it."""
    return text + "\nJSON schema: " + json.dumps(SCHEMA)


def req(key: str, text: str) -> ChatRequest:
    return ChatRequest(key, (Message("user", prompt(text)),), json_schema=SCHEMA, est_tokens_out=12)


def parse(text: str) -> dict[str, Any]:
    obj = extract_json_object(text)
    missing = [k for k in SCHEMA["required"] if k not in obj]  # type: ignore[attr-defined]
    if missing:
        raise ReplyError(f"missing key(s): {', '.join(missing)}")
    return obj


def test_ok_call_logs_without_key_or_prompt(fake_server: FakeOpenAIServer, no_api_key: str) -> None:
    logs: list[dict[str, Any]] = []
    with LLMClient(settings(fake_server, api_key_env=no_api_key), log=logs.extend) as c:
        r = c.chat(req("k1", "PROMPT-TEXT-ALPHA"), parse=parse)
    assert r.status == "ok" and r.parsed == expected_answer(prompt("PROMPT-TEXT-ALPHA"), SCHEMA)
    assert fake_server.auth_headers[-1] == "Bearer sk-test-SECRET-0123456789"
    assert len(logs) == 1
    rec = logs[0]
    for field in (
        "time",
        "model",
        "tokens_in",
        "tokens_out",
        "latency_s",
        "status",
        "cost_usd",
        "prompt_sha256",
    ):
        assert field in rec
    assert rec["status"] == "ok" and rec["model"] == "fake-model" and rec["tokens_in"] > 0
    blob = json.dumps(logs)
    assert "SECRET" not in blob and "PROMPT-TEXT-ALPHA" not in blob
    assert "SECRET" not in repr(c)


def test_missing_key_env_is_a_config_error(
    fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEAL_NO_SUCH_KEY", raising=False)
    with pytest.raises(ConfigError, match="SEAL_NO_SUCH_KEY"):
        LLMClient(settings(fake_server, api_key_env="SEAL_NO_SUCH_KEY"))


def test_retries_429_500_timeout_then_ok(fake_server: FakeOpenAIServer) -> None:
    fake_server.script("RETRY-ME", ["429", "500", "timeout", "503"])
    logs: list[dict[str, Any]] = []
    with LLMClient(settings(fake_server), log=logs.extend) as c:
        r = c.chat(req("k", "RETRY-ME please"), parse=parse)
    assert r.status == "ok" and r.http_calls == 5
    assert [x["status"] for x in logs] == ["http_429", "http_500", "timeout", "http_503", "ok"]


def test_retries_exhausted_is_failed_not_raised(fake_server: FakeOpenAIServer) -> None:
    fake_server.script("ALWAYS-500", ["500"] * 10)
    with LLMClient(settings(fake_server, max_retries=2)) as c:
        r = c.chat(req("k", "ALWAYS-500"), parse=parse)
    assert r.status == "failed" and "HTTP 500" in (r.error or "") and r.http_calls == 3


def test_backoff_grows_with_jitter(fake_server: FakeOpenAIServer) -> None:
    with LLMClient(settings(fake_server, backoff_base_s=1.0, backoff_max_s=8.0)) as c:
        d = [c._backoff(i, None) for i in range(6)]
    assert 0.5 <= d[0] <= 1.0 and 1.0 <= d[1] <= 2.0 and 4.0 <= d[4] <= 8.0 and d[5] <= 8.0


def test_repairs_truncated_invalid_missing(fake_server: FakeOpenAIServer) -> None:
    fake_server.script("FIX-ME", ["truncated", "invalid", "missing_keys"])
    with LLMClient(settings(fake_server, max_repairs=3)) as c:
        r = c.chat(req("k", "FIX-ME"), parse=parse)
        assert r.status == "ok" and r.repairs == 3 and r.parsed == expected_answer(prompt("FIX-ME"), SCHEMA)
        fake_server.script("BROKEN", ["invalid"] * 5)
        r2 = c.chat(req("k2", "BROKEN"), parse=parse)
    assert r2.status == "failed" and "invalid reply after 3 repair" in (r2.error or "")


def test_tolerant_reply_shapes(fake_server: FakeOpenAIServer) -> None:
    fake_server.script("FENCED", ["fenced"])
    with LLMClient(settings(fake_server, max_repairs=0)) as c:
        r = c.chat(req("k", "FENCED"), parse=parse)
    assert r.status == "ok" and r.repairs == 0


def test_extract_json_object() -> None:
    assert extract_json_object('Sure! ```json\n{"a": 1}\n``` bye') == {"a": 1}
    assert extract_json_object('prefix {"a": {"b": [1, 2]}} trailing {junk') == {"a": {"b": [1, 2]}}
    with pytest.raises(ReplyError, match="truncated"):
        extract_json_object('{"a": 1, "b"')
    with pytest.raises(ReplyError, match="no JSON"):
        extract_json_object("no json here")


def test_json_schema_fallback_is_remembered(fake_server: FakeOpenAIServer) -> None:
    fake_server.supports_json_schema = False
    with LLMClient(settings(fake_server, concurrency=1, response_format="auto")) as c:
        out = c.chat_many([req(str(i), f"text {i}") for i in range(4)], parse=parse)
    assert out.count("ok") == 4
    assert fake_server.counts["rf:json_schema"] == 1  # the probe, rejected once
    assert fake_server.counts["rf:json_object"] == 1 + 4  # the probe, then every call
    assert out.info["response_format"] == "json_object_schema" and out.info["probes"] == 2


def test_concurrency_limit_and_throughput(fake_server: FakeOpenAIServer) -> None:
    fake_server.latency_s = 0.2
    with LLMClient(settings(fake_server, concurrency=8, timeout_s=5)) as c:
        t0 = time.perf_counter()
        out = c.chat_many([req(str(i), f"t{i}") for i in range(16)], parse=parse)
        dt = time.perf_counter() - t0
    assert out.count("ok") == 16
    assert fake_server.max_in_flight == 8
    assert dt < 1.5  # two waves of 0.2 s, not 16 x 0.2 s


def test_max_cost_stops_before_budget(fake_server: FakeOpenAIServer) -> None:
    price = ModelPrice(input_per_mtok=1000.0, output_per_mtok=1000.0)  # ~ $0.01 per small call
    results: list[Any] = []
    with LLMClient(settings(fake_server, concurrency=2, price=price)) as c:
        one = c.estimate_cost(req("x", "t0"))
        out = c.chat_many(
            [req(str(i), f"t{i}") for i in range(20)],
            parse=parse,
            max_cost=one * 5.5,
            on_result=results.append,
        )
    assert out.stopped and "max cost" in (out.stop_reason or "")
    assert 1 <= out.count("ok") <= 6 and out.count("stopped") == 20 - out.count("ok")
    assert len(results) == 20
    assert fake_server.chat_requests() == out.count("ok")


def test_max_cost_needs_a_price(fake_server: FakeOpenAIServer) -> None:
    with (
        LLMClient(settings(fake_server, model="unknown-local")) as c,
        pytest.raises(ConfigError, match="price"),
    ):
        c.chat_many([req("a", "b")], max_cost=1.0)


def test_wrong_url_stops_the_run(fake_server: FakeOpenAIServer) -> None:
    s = settings(fake_server, base_url=fake_server.base_url.replace("/v1", "/nope"), concurrency=1)
    with LLMClient(s) as c:
        out = c.chat_many([req(str(i), f"t{i}") for i in range(10)])
    assert out.stopped and out.count("failed") == 1 and out.count("stopped") == 9


def test_cached_calls_second_run_sends_nothing(fake_server: FakeOpenAIServer, tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    texts = [f"text {i}" for i in range(10)] + ["text 3"]  # one duplicate
    calls = [
        CachedCall(req(str(i), t), llm_cache_key("fake-model", "tpl", "set", t)) for i, t in enumerate(texts)
    ]
    fake_server.script("text 7", ["invalid", "invalid", "invalid"])
    with LLMClient(settings(fake_server, max_repairs=2)) as c:
        out1 = cached_chat_many(c, store.cache, "ns", calls, parse=parse)
    assert fake_server.chat_requests() == 10 + 2  # duplicate sent once; text 7: 1 + 2 repairs
    assert out1.count("ok") == 10 and out1.count("failed") == 1
    fake_server.reset_counts()
    with LLMClient(settings(fake_server)) as c:
        out2 = cached_chat_many(c, store.cache, "ns", calls, parse=parse)
    assert fake_server.chat_requests() == 1  # only the failed text is asked again
    assert out2.count("ok") == 11 and sum(r.cached for r in out2.results) == 10


def test_batch_api_resumes_across_processes(fake_server: FakeOpenAIServer, tmp_path: Path) -> None:
    fake_server.batch_polls_until_done = 3
    state = JsonFileState(tmp_path / "batches.json")
    requests = [req(f"id{i}", f"batch text {i}") for i in range(5)]
    s = settings(
        fake_server, batch_api=True, batch_poll_s=0.01, price=ModelPrice(input_per_mtok=2, output_per_mtok=2)
    )
    with LLMClient(s) as c:
        out1 = BatchRunner(c, state).run(requests, parse=parse, timeout_s=0.0)  # "killed" after one poll
    assert out1.stopped and out1.count("stopped") == 5
    saved = json.loads(state.path.read_text())
    assert len(saved["jobs"]) == 1 and saved["jobs"][0]["batch_id"].startswith("batch-")
    with LLMClient(s) as c:  # a new process: finds the batch and polls it, does not submit again
        out2 = BatchRunner(c, state).run(requests, parse=parse)
    assert fake_server.counts["batch_create"] == 1 and fake_server.counts["file_upload"] == 1
    assert out2.count("ok") == 5 and not out2.stopped
    assert {r.key: r.parsed for r in out2.results}["id2"] == expected_answer(prompt("batch text 2"), SCHEMA)
    assert all(r.cost_usd > 0 for r in out2.results)
    assert json.loads(state.path.read_text())["jobs"][0]["collected"] is True
