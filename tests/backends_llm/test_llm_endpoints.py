"""What a real server needs from the client, exercised with fault injection on the fake server:
the structured-output dialects and the auto probe, the breaker for unreachable endpoints, the
server's own parallelism, and timeouts that wait longer instead of piling work on a busy server."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from backends_llm.llm_test_support import SCHEMA, fake_settings
from fakeserver.server import FakeOpenAIServer
from seal_audit.backends.llm import ChatRequest, LLMClient, Message, extract_json_object
from seal_audit.backends.llm.client import RF_ORDER


def req(key: str, text: str) -> ChatRequest:
    return ChatRequest(
        key, (Message("user", text + "\nJSON schema: " + json.dumps(SCHEMA)),), json_schema=SCHEMA
    )


def parse(text: str) -> dict[str, Any]:
    return extract_json_object(text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("dialect", [d for d in RF_ORDER if d != "none"])
def test_each_dialect_sends_the_schema_its_way(fake_server: FakeOpenAIServer, dialect: str) -> None:
    c = LLMClient(fake_settings(fake_server, response_format=dialect))
    body = c.request_body(req("a", "t"), req("a", "t").messages, RF_ORDER.index(dialect))
    c.close()
    rf, guided = body.get("response_format"), body.get("guided_json")
    if dialect == "json_schema":
        assert rf["type"] == "json_schema" and rf["json_schema"]["schema"] == SCHEMA and guided is None
    elif dialect == "json_object_schema":  # llama-cpp-python's form
        assert rf == {"type": "json_object", "schema": SCHEMA} and guided is None
    elif dialect == "guided_json":  # vLLM's extra body
        assert rf is None and guided == SCHEMA
    else:
        assert rf == {"type": "json_object"} and guided is None


def test_auto_probe_settles_once_and_steps_down_on_500_naming_the_format(
    fake_server: FakeOpenAIServer,
) -> None:
    """llama-cpp-python answers json_schema with HTTP 500 "Input should be 'text' or 'json_object'"."""

    fake_server.supports_json_schema = False
    orig = fake_server.answer
    calls: list[str] = []

    def answer(body: dict[str, Any], fault: str) -> str:
        calls.append((body.get("response_format") or {}).get("type", "none"))
        return orig(body, fault)

    fake_server.answer = answer  # type: ignore[method-assign]
    s = fake_settings(fake_server, response_format="auto", concurrency=2, model="probe-model-1")
    with LLMClient(s) as c:
        out = c.chat_many([req(str(i), f"text {i}") for i in range(6)], parse=parse)
    assert out.count("ok") == 6
    assert out.info["response_format"] == "json_object_schema" and out.info["probes"] == 2
    assert fake_server.counts["rf:json_schema"] == 1  # the probe only; no call was wasted on it
    # a second client for the same endpoint and model in this process does not probe again
    fake_server.reset_counts()
    with LLMClient(s) as c:
        out2 = c.chat_many([req("x", "text x")], parse=parse)
    assert out2.info["probes"] == 0 and fake_server.chat_requests() == 1


def test_mid_run_500_naming_the_format_steps_down(fake_server: FakeOpenAIServer) -> None:
    fake_server.script("text 0", ["no_schema"])  # 400 naming json_schema for this call only
    s = fake_settings(fake_server, response_format="auto", concurrency=1, model="probe-model-2")
    with LLMClient(s) as c:
        c.settle_response_format()  # the probe passes with json_schema
        assert c.dialect == "json_schema"
        r = c.chat(req("0", "text 0"), parse=parse)
    assert r.status == "ok" and r.resends == 0 and c.dialect == "json_object_schema"


def test_explicit_dialect_never_steps_down(fake_server: FakeOpenAIServer) -> None:
    fake_server.supports_json_schema = False
    with LLMClient(fake_settings(fake_server, response_format="json_schema", max_retries=0)) as c:
        r = c.chat(req("0", "text 0"), parse=parse)
    assert r.status == "failed" and "json_schema" in (r.error or "")
    assert fake_server.counts["rf:json_schema"] == 1


def test_unreachable_endpoint_fails_fast_naming_the_url() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"
    from seal_audit.backends.llm import LLMSettings

    settings = LLMSettings(model="m", base_url=url, api_key_env=None)  # every other setting: default
    t0 = time.perf_counter()
    with LLMClient(settings) as c:
        out = c.chat_many([req(str(i), f"t{i}") for i in range(40)], parse=parse)
    dt = time.perf_counter() - t0
    assert dt < 10.0
    assert out.stopped and out.count("ok") == 0 and len(out.results) == 40
    assert out.stop_reason is not None and out.stop_reason.startswith("endpoint unreachable: " + url)
    assert out.info["requests"] <= 3  # the breaker, not one retry loop per text


class _SlotsServer(ThreadingHTTPServer):
    daemon_threads = True


def test_server_slots_cap_the_calls_in_flight(fake_server: FakeOpenAIServer) -> None:
    """A llama.cpp server says its parallelism at GET /props (total_slots): never send more."""
    target = fake_server

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            return

        def do_GET(self) -> None:
            body = json.dumps({"total_slots": 2}).encode() if self.path == "/props" else b"{}"
            self.send_response(200 if self.path == "/props" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            import urllib.request

            data = self.rfile.read(int(self.headers["Content-Length"]))
            up = urllib.request.Request(
                target.base_url + "/chat/completions", data=data, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(up, timeout=10) as r:
                content = r.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

    srv = _SlotsServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        fake_server.latency_s = 0.1
        s = fake_settings(fake_server, concurrency=8, timeout_s=5)
        s = s.model_copy(update={"base_url": f"http://127.0.0.1:{srv.server_address[1]}/v1"})
        with LLMClient(s) as c:
            out = c.chat_many([req(str(i), f"t{i}") for i in range(10)], parse=parse)
    finally:
        srv.shutdown()
        srv.server_close()
    assert out.count("ok") == 10
    assert out.info["server_slots"] == 2 and out.info["concurrency"] == 2
    assert fake_server.max_in_flight == 2


def test_timeouts_on_a_busy_one_slot_server_wait_instead_of_resending(fake_server: FakeOpenAIServer) -> None:
    """A server that runs one call at a time (llama-cpp-python) with 8 calls in flight: each call
    may wait for the others, so the client waits longer instead of abandoning (and resending) work
    the server still does."""
    lock = threading.Lock()
    orig = fake_server.answer

    def one_at_a_time(body: dict[str, Any], fault: str) -> str:
        with lock:
            time.sleep(0.15)
            return orig(body, fault)

    fake_server.answer = one_at_a_time  # type: ignore[method-assign]
    n = 16
    # timeout 0.4 s: enough for one call, not for eight queued ones
    with LLMClient(fake_settings(fake_server, concurrency=8, timeout_s=0.4)) as c:
        out = c.chat_many([req(str(i), f"t{i}") for i in range(n)], parse=parse)
    assert out.count("ok") == n
    assert fake_server.chat_requests() <= n * 1.1
    assert out.info["resends"] == sum(r.resends for r in out.results) <= n // 10
