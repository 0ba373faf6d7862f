"""A local OpenAI-compatible HTTP server for offline tests and benchmarks.

Real HTTP over 127.0.0.1 (stdlib ``ThreadingHTTPServer``, HTTP/1.1 keep-alive) so the tests exercise
the actual client stack -- connection pool, timeouts, status codes -- rather than a mocked method.

Answers are deterministic functions of the prompt text: when the request carries a JSON schema (in
``response_format`` or embedded in the prompt after a line ``JSON schema:``), every property gets a
value derived from a hash of the last user message, so the same text always gets the same labels and
tests can predict them with :func:`expected_answer`. Without a schema it echoes a paraphrase marker.

Faults are scripted per text: ``server.script("some marker", ["429", "truncated", "ok"])`` makes
the next three chat requests whose prompt contains the marker fail in that order. Fault names:
``429``, ``500``, ``503``, ``timeout`` (sleeps ``slow_s`` before answering), ``truncated`` (JSON cut
in half), ``invalid`` (prose, no JSON), ``missing_keys`` (drops one key), ``fenced`` (answer in a
markdown code fence plus trailing chatter), ``words`` (booleans as "yes"/"no" strings),
``no_schema`` (400 for ``json_schema`` response formats, to exercise the fallback), ``ok``.

``echo_headers = True`` makes every error body quote the request's headers (Authorization
included), as some proxies and misconfigured servers do: the key comes back in the error text, and
tests check that it never reaches a file or the terminal.

Also serves minimal ``/v1/files`` and ``/v1/batches`` so the Batch API mode can be tested: a
created batch is "completed" after ``batch_polls_until_done`` retrievals.

Run standalone (benchmarks use this so the server has its own process and GIL)::

    python tests/fakeserver/server.py --latency 0.1 [--port 0]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import sys
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_SCHEMA_MARK = "JSON schema:"


def _last_user_text(body: dict[str, Any]) -> str:
    msgs = body.get("messages") or []
    for m in reversed(msgs):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):
                return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            return str(content or "")
    return ""


def _all_text(body: dict[str, Any]) -> str:
    parts = []
    for m in body.get("messages") or []:
        content = m.get("content")
        parts.append(content if isinstance(content, str) else json.dumps(content))
    return "\n".join(parts)


def _schema_from_body(body: dict[str, Any]) -> dict[str, Any] | None:
    rf = body.get("response_format") or {}
    if rf.get("type") == "json_schema":
        schema = (rf.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return schema
    text = _all_text(body)
    idx = text.find(_SCHEMA_MARK)
    if idx < 0:
        return None
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[idx + len(_SCHEMA_MARK) :].lstrip())
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _first_user_text(body: dict[str, Any]) -> str:
    """The text the answer is derived from: the first user message (repair turns come later)."""
    for m in body.get("messages") or []:
        if m.get("role") == "user":
            content = m.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def _h(text_digest: bytes, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(text_digest + salt.encode("utf-8")).digest()[:8], "big")


def expected_answer(prompt_text: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The deterministic answer the server gives for a prompt under a schema (tests use it).

    The prompt is hashed once and each key's value derived from that digest, so a 19-key answer
    to a 6 kB prompt costs one pass over the prompt, not 19 (the server shares the benchmark's
    CPUs)."""
    digest = hashlib.sha256(prompt_text.encode("utf-8")).digest()
    out: dict[str, Any] = {}
    for key, prop in (schema.get("properties") or {}).items():
        h = _h(digest, key)
        typ = prop.get("type")
        if "enum" in prop:
            out[key] = prop["enum"][h % len(prop["enum"])]
        elif typ == "boolean":
            out[key] = bool(h % 2)
        elif typ == "array":
            items = (prop.get("items") or {}).get("enum") or ["a", "b", "c"]
            out[key] = [x for i, x in enumerate(items) if (h >> i) % 5 == 0]
        elif typ in ("number", "integer"):
            out[key] = h % 10
        else:
            out[key] = f"s{h % 100}"
    return out


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # listen backlog: 64+ concurrent connections must queue, not be refused
    daemon_threads = True


class FakeOpenAIServer:
    """The server object: start/stop, scripting, and counters the tests assert on."""

    def __init__(
        self, *, latency_s: float = 0.0, slow_s: float = 3.0, host: str = "127.0.0.1", port: int = 0
    ):
        self.latency_s = latency_s
        self.slow_s = slow_s
        self.batch_polls_until_done = 2
        self.usage_in_per_char = 0.25
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[str]] = {}
        self.default_fault = "ok"
        self.supports_json_schema = True
        self.echo_headers = False
        self.answer_hook: Callable[[dict[str, Any]], str | None] | None = None
        self.counts: Counter[str] = Counter()
        self.by_text: Counter[str] = Counter()
        self.auth_headers: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._poll_counts: defaultdict[str, int] = defaultdict(int)
        self._seq = 0
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = _Server((host, port), Handler)
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting ------------------------------------------------------------------------
    def script(self, marker: str, faults: list[str]) -> None:
        """Queue faults for the next requests whose prompt contains ``marker`` (then ``ok``)."""
        with self._lock:
            self._scripts.setdefault(marker, deque()).extend(faults)

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.by_text.clear()

    def chat_requests(self) -> int:
        return self.counts["chat"]

    def _next_fault(self, text: str) -> str:
        with self._lock:
            for marker, queue in self._scripts.items():
                if marker in text and queue:
                    return queue.popleft()
        return self.default_fault

    def _new_id(self, prefix: str) -> str:
        with self._lock:
            self._seq += 1
            return f"{prefix}-{self._seq}"

    # --- answers --------------------------------------------------------------------------
    def answer(self, body: dict[str, Any], fault: str) -> str:
        if self.answer_hook is not None:
            hooked = self.answer_hook(body)
            if hooked is not None:
                return hooked
        schema = _schema_from_body(body)
        text = _first_user_text(body)
        if schema is None:
            return "Paraphrase: " + _last_user_text(body)
        ans = expected_answer(text, schema)
        if fault == "missing_keys" and ans:
            ans.pop(sorted(ans)[0])
        if fault == "words":
            ans = {k: ("yes" if v is True else "no" if v is False else v) for k, v in ans.items()}
        blob = json.dumps(ans)
        if fault == "truncated":
            return blob[: max(1, len(blob) // 2)]
        if fault == "invalid":
            return "I am sorry, I cannot produce JSON for this conversation."
        if fault == "fenced":
            return "Here is the analysis:\n```json\n" + blob + "\n```\nLet me know if you need more."
        return blob

    def chat_completion(
        self, body: dict[str, Any], content: str, all_text: str | None = None
    ) -> dict[str, Any]:
        n_in = int(len(_all_text(body) if all_text is None else all_text) * self.usage_in_per_char) + 1
        n_out = int(len(content) * 0.25) + 1
        return {
            "id": self._new_id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out},
        }


class _Handler(BaseHTTPRequestHandler):
    owner: FakeOpenAIServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes; no 40 ms Nagle stall
    wbufsize = -1  # buffered: one send per response (flushed by handle_one_request)

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        return

    def _send(
        self, status: int, obj: Any, headers: dict[str, str] | None = None, raw: bytes | None = None
    ) -> None:
        data = raw if raw is not None else json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if raw is None else "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        if self.owner.echo_headers:
            headers_seen = sorted(self.headers.items(), key=lambda kv: kv[0].lower() != "authorization")
            message += " (request headers: " + json.dumps(dict(headers_seen)) + ")"  # the key first
        self._send(
            status, {"error": {"message": message, "type": "fake_error", "code": str(status)}}, headers
        )

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self) -> None:
        srv = self.owner
        path = self.path.split("?")[0]
        raw = self._body()
        auth = self.headers.get("Authorization", "")
        with srv._lock:
            srv.auth_headers.append(auth)
        if not path.startswith("/v1/"):
            self._error(404, f"no route {path}")
        elif path.endswith("/chat/completions"):
            self._chat(json.loads(raw or b"{}"))
        elif path.endswith("/files"):
            self._upload(raw)
        elif path.endswith("/batches"):
            body = json.loads(raw or b"{}")
            bid = srv._new_id("batch")
            batch = {
                "id": bid,
                "object": "batch",
                "endpoint": body.get("endpoint"),
                "errors": None,
                "input_file_id": body.get("input_file_id"),
                "completion_window": "24h",
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": int(time.time()),
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
            }
            with srv._lock:
                srv.counts["batch_create"] += 1
                srv.batches[bid] = batch
            self._send(200, batch)
        else:
            self._error(404, f"no route {path}")

    def do_GET(self) -> None:
        srv = self.owner
        path = self.path.split("?")[0]
        m = re.search(r"/batches/([^/]+)$", path)
        if m:
            self._retrieve_batch(m.group(1))
            return
        m = re.search(r"/files/([^/]+)/content$", path)
        if m:
            with srv._lock:
                data = srv.files.get(m.group(1))
                srv.counts["file_content"] += 1
            if data is None:
                self._error(404, "no such file")
            else:
                self._send(200, None, raw=data)
            return
        self._error(404, f"no route {path}")

    # --- chat -----------------------------------------------------------------------------
    def _chat(self, body: dict[str, Any]) -> None:
        srv = self.owner
        text = _first_user_text(body)
        all_text = _all_text(body)
        fault = srv._next_fault(all_text)
        with srv._lock:
            srv.counts["chat"] += 1
            srv.counts[f"fault:{fault}"] += 1
            srv.counts[f"rf:{(body.get('response_format') or {}).get('type', 'none')}"] += 1
            srv.by_text[hashlib.sha256(text.encode()).hexdigest()[:12]] += 1
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            self._chat_reply(body, fault, all_text)
        finally:
            with srv._lock:
                srv.in_flight -= 1

    def _chat_reply(self, body: dict[str, Any], fault: str, all_text: str) -> None:
        srv = self.owner
        if srv.latency_s:
            time.sleep(srv.latency_s)
        rf = (body.get("response_format") or {}).get("type")
        if rf == "json_schema" and (fault == "no_schema" or not srv.supports_json_schema):
            self._error(400, "response_format json_schema is not supported by this server")
            return
        if fault in ("429", "500", "503"):
            self._error(int(fault), f"injected {fault}", {"Retry-After": "0"} if fault == "429" else None)
            return
        if fault == "timeout":
            time.sleep(srv.slow_s)
        content = srv.answer(body, fault)
        self._send(200, srv.chat_completion(body, content, all_text))

    # --- files and batches ----------------------------------------------------------------
    def _upload(self, raw: bytes) -> None:
        """Minimal multipart parser: the file part's bytes are what we keep."""
        srv = self.owner
        ctype = self.headers.get("Content-Type", "")
        m = re.search(r"boundary=\"?([^\";]+)\"?", ctype)
        data = raw
        if m:
            boundary = b"--" + m.group(1).encode()
            for part in raw.split(boundary):
                head, _, payload = part.partition(b"\r\n\r\n")
                if b'name="file"' in head:
                    data = payload.rsplit(b"\r\n", 1)[0]
        fid = srv._new_id("file")
        with srv._lock:
            srv.files[fid] = data
            srv.counts["file_upload"] += 1
        self._send(
            200,
            {
                "id": fid,
                "object": "file",
                "bytes": len(data),
                "created_at": int(time.time()),
                "filename": "input.jsonl",
                "purpose": "batch",
                "status": "processed",
            },
        )

    def _retrieve_batch(self, bid: str) -> None:
        srv = self.owner
        with srv._lock:
            batch = srv.batches.get(bid)
            srv.counts["batch_retrieve"] += 1
            srv._poll_counts[bid] += 1
            polls = srv._poll_counts[bid]
        if batch is None:
            self._error(404, "no such batch")
            return
        if batch["status"] != "completed":
            if polls >= srv.batch_polls_until_done:
                self._complete(batch)
            else:
                batch["status"] = "in_progress"
        self._send(200, batch)

    def _complete(self, batch: dict[str, Any]) -> None:
        srv = self.owner
        lines = srv.files.get(batch["input_file_id"] or "", b"").decode("utf-8").splitlines()
        out = []
        for line in lines:
            if not line.strip():
                continue
            req = json.loads(line)
            body = req["body"]
            fault = srv._next_fault(_all_text(body))
            with srv._lock:
                srv.counts["batch_line"] += 1
            if fault in ("429", "500", "503"):
                out.append(
                    {
                        "id": srv._new_id("req"),
                        "custom_id": req["custom_id"],
                        "response": {"status_code": int(fault), "body": {"error": {"message": "x"}}},
                        "error": None,
                    }
                )
                continue
            content = srv.answer(body, fault)
            out.append(
                {
                    "id": srv._new_id("req"),
                    "custom_id": req["custom_id"],
                    "response": {
                        "status_code": 200,
                        "request_id": "r",
                        "body": srv.chat_completion(body, content),
                    },
                    "error": None,
                }
            )
        fid = srv._new_id("file")
        with srv._lock:
            srv.files[fid] = "".join(json.dumps(o) + "\n" for o in out).encode("utf-8")
        batch.update(
            status="completed",
            output_file_id=fid,
            request_counts={"total": len(out), "completed": len(out), "failed": 0},
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.1)
    args = ap.parse_args(argv)
    srv = FakeOpenAIServer(latency_s=args.latency, port=args.port).start()
    print(srv.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
