"""A real third-party OpenAI-compatible server for the LM tests: llama-cpp-python's own server
(``python -m llama_cpp.server``) serving SmolLM2-135M-Instruct, from the tools venv that
``scripts/ensure-llama-server.sh`` builds outside the project's venv (``make test`` runs it first).

When the tools venv is missing or unusable the tests skip with the reason -- unless
``SEAL_REQUIRE_LLAMA=1`` (set by ``make test``): then a missing server is a test failure, so CI on
a machine that can build it never passes without having run them.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LAUNCH = Path(__file__).with_name("launch.py")


def tools_dir() -> Path:
    env = os.environ.get("SEAL_TOOLS_VENV")
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "seal-audit" / "llama-tools"


def _unusable(reason: str) -> None:
    if os.environ.get("SEAL_REQUIRE_LLAMA") == "1":
        pytest.fail(f"SEAL_REQUIRE_LLAMA=1 but {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LlamaServer:
    """A running server: its URL, its own log (the uvicorn access log and llama.cpp's timings)."""

    base_url: str
    log: Path
    proc: subprocess.Popen[bytes]

    def chat_posts(self) -> int:
        """Chat requests the server worked on or refused, from its own log: one llama.cpp timing
        line per completion it ran (also for a request whose client had gone, which the access
        log leaves out) plus each refused request (non-200 in the access log)."""
        text = self.log.read_text(errors="replace")
        refused = len(re.findall(r'"POST /v1/chat/completions HTTP/1.1" (?!200)\d{3}', text))
        return len(self.request_seconds()) + refused

    def request_seconds(self) -> list[float]:
        """The server's own time per chat request (llama.cpp's ``total time`` of each call)."""
        text = self.log.read_text(errors="replace")
        return [float(ms) / 1000 for ms in re.findall(r"total time =\s*([0-9.]+) ms", text)]


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    tools = tools_dir()
    python = tools / "bin" / "python"
    if not (tools / "ready").exists() or not python.exists():
        _unusable(f"no llama.cpp tools venv at {tools} (build it with scripts/ensure-llama-server.sh)")
    model = (tools / "model_path").read_text().strip()
    if not Path(model).exists():
        _unusable(f"the GGUF named in {tools / 'model_path'} is missing: {model}")
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [
                str(python),
                str(LAUNCH),
                "--model",
                model,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "4096",
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            # the server's default thread count (half the cores), never spinning: on a shared machine an
            # OpenMP thread spin-waiting for a descheduled sibling made each call several times slower
            env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
        )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                _unusable(f"the llama.cpp server exited with {proc.returncode}; its log: {log}")
            try:
                with urllib.request.urlopen(url + "/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                _unusable(f"the llama.cpp server did not answer within 120 s; its log: {log}")
            time.sleep(0.5)
        yield LlamaServer(url, log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
