"""The LM-labeler and LM rewrites against a real server nobody here wrote (llama-cpp-python serving
SmolLM2-135M-Instruct), driven through the ``seal`` command as a user would:

* SEAL-taxonomy labeling of 20 real hh-rlhf texts, killed with SIGKILL part-way and resumed: at
  least 90 % labeled OK, and the server's own access log shows no more chat requests than texts +
  the calls in flight at the kill + the response-format probes + repair turns;
* a re-run that sends nothing;
* a paraphrase and a directed rewrite (response only);
* a dead endpoint: exit code 3 within 10 s, the URL named.

The server runs one request at a time, so a text costs tens of seconds on a shared 2-core machine:
the sample is the 10 pairs with the shortest transcripts, and everything shares one run.
Figures (requests per text, wall time per text vs the server's own time per request) are written
to ``llama_figures.json`` in the run directory and printed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from llamaserver.conftest import LlamaServer
from seal_audit.sources import load_pairs
from seal_audit.store import RunStore

pytestmark = pytest.mark.llama

N_PAIRS = 10
CONCURRENCY = 2
SEAL = [sys.executable, "-m", "seal_audit"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "80"}


def _cached(run: Path) -> int:
    db = run / "cache.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as con:
            tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
            total = 0
            for t in tables:
                cols = [r[1] for r in con.execute(f"pragma table_info({t})")]
                if "namespace" in cols:
                    total += con.execute(f"select count(*) from {t} where namespace='lm_labels'").fetchone()[
                        0
                    ]
            return int(total)
    except sqlite3.Error:
        return 0


def _label_cmd(run: Path, server: LlamaServer) -> list[str]:
    return [
        *SEAL,
        "label",
        str(run),
        "--featurizer",
        "lm",
        "--base-url",
        server.base_url,
        "--model",
        "smollm2",
        "--api-key-env",
        "none",
        "--concurrency",
        str(CONCURRENCY),
        "--max-failed",
        "0.1",
        "--yes",
    ]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, hh_path: Path) -> Path:
    pairs = sorted(
        load_pairs(hh_path), key=lambda p: len(p.transcript("chosen")) + len(p.transcript("rejected"))
    )
    run = tmp_path_factory.mktemp("llama-run") / "run"
    store = RunStore(run)
    store.write_pairs(pairs[:N_PAIRS])
    store.close()
    return run


def test_dead_endpoint_fails_fast_naming_the_url(run_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    t0 = time.perf_counter()
    p = subprocess.run(
        [
            *SEAL,
            "label",
            str(run_dir),
            "--featurizer",
            "lm",
            "--base-url",
            url,
            "--model",
            "m",
            "--api-key-env",
            "none",
            "--yes",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    dt = time.perf_counter() - t0
    assert p.returncode == 3, p.stderr[-2000:]
    assert dt < 10.0 + 5.0  # <= 10 s of trying, plus the interpreter's start-up
    assert "endpoint unreachable: " + url in p.stderr
    assert "20× " in p.stderr or "20\u00d7" in p.stderr  # every text failed, counted with its reason


def test_label_killed_then_resumed_then_rerun_sends_nothing(run_dir: Path, llama_server: LlamaServer) -> None:
    n_texts = 2 * N_PAIRS
    posts0 = llama_server.chat_posts()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        _label_cmd(run_dir, llama_server), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 600
        while _cached(run_dir) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, (
            "the labeling ended before it could be killed: " + proc.stderr.read().decode()[-2000:]
        )  # type: ignore[union-attr]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    cached_at_kill = _cached(run_dir)
    assert 3 <= cached_at_kill < n_texts
    # resume: only the texts not cached are asked for
    t1 = time.perf_counter()
    p = subprocess.run(
        _label_cmd(run_dir, llama_server), capture_output=True, text=True, env=_env(), timeout=1500
    )
    resume_s = time.perf_counter() - t1
    assert p.returncode == 0, p.stderr[-3000:]
    store = RunStore(run_dir, create=False)
    stage = store.manifest.stages["label"].counters
    lm = stage["featurizers"]["lm"]
    df = store.read_table("features")
    ok_texts = df[df["status"] == "ok"].groupby(["pair_id", "side"]).ngroups
    assert ok_texts >= 0.9 * n_texts, (lm, p.stderr[-2000:])
    client = lm["client"]
    assert client["response_format"] in ("json_object_schema", "json_schema"), client
    log = store.read_log("lm_calls")
    repairs = sum(1 for r in log if r.get("status") == "invalid_reply")
    probes = sum(1 for r in log if str(r.get("key", "")).startswith("probe:"))
    # the server's own count: every text once, plus at most the calls in flight at the kill
    time.sleep(1.0)
    posts = llama_server.chat_posts() - posts0
    assert posts <= n_texts + CONCURRENCY + probes + repairs, (posts, probes, repairs, cached_at_kill)
    assert client["resends"] == 0, client
    # the resume sent only what was missing (plus its probe and repair turns)
    assert client["requests"] <= (n_texts - cached_at_kill) + client["probes"] + client["repairs"]
    # a re-run sends nothing
    before = llama_server.chat_posts()
    p2 = subprocess.run(
        _label_cmd(run_dir, llama_server), capture_output=True, text=True, env=_env(), timeout=300
    )
    assert p2.returncode == 0, p2.stderr[-2000:]
    assert llama_server.chat_posts() == before
    assert len(store.read_log("lm_calls")) == len(log)
    server_s = llama_server.request_seconds()
    labeled_in_resume = n_texts - cached_at_kill
    figures: dict[str, Any] = {
        "texts": n_texts,
        "labeled_ok": ok_texts,
        "ok_share": round(ok_texts / n_texts, 3),
        "chat_requests_server_log": posts,
        "requests_per_text": round(posts / n_texts, 3),
        "probe_requests": probes,
        "repair_turns": repairs,
        "cached_at_kill": cached_at_kill,
        "resume_requests": client["requests"],
        "resume_wall_s": round(resume_s, 1),
        "wall_s_per_text_resume": round(resume_s / max(1, labeled_in_resume), 2),
        "server_s_per_request_mean": round(sum(server_s) / len(server_s), 2) if server_s else None,
        "server_requests_timed": len(server_s),
        "total_wall_s": round(time.perf_counter() - t0, 1),
        "response_format": client["response_format"],
        "concurrency": CONCURRENCY,
    }
    (run_dir / "llama_figures.json").write_text(json.dumps(figures, indent=1))
    print("\nllama figures:", json.dumps(figures))


@pytest.mark.parametrize("transform", ["paraphrase", "more_positive"])
def test_rewrite_response_only(run_dir: Path, llama_server: LlamaServer, transform: str) -> None:
    p = subprocess.run(
        [
            *SEAL,
            "rewrite",
            str(run_dir),
            "-t",
            transform,
            "--sample",
            "1",
            "--scope",
            "response",
            "--base-url",
            llama_server.base_url,
            "--model",
            "smollm2",
            "--api-key-env",
            "none",
            "--concurrency",
            "1",
            "--max-tokens",
            "160",
            "--no-score",
            "--no-label",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=900,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert all(len(line) <= 80 for line in p.stderr.splitlines() if "rewrites of" not in line), p.stderr
    store = RunStore(run_dir, create=False)
    df = store.read_table("rewrites")
    mine = df[df["transform"] == transform]
    assert len(mine) == 2 and set(mine["status"]) <= {"ok", "rejected"}, mine[["status", "reason"]]
    rejected = mine[mine["status"] == "rejected"]
    for reason in rejected["reason"]:
        assert str(reason).split(":")[0] in p.stderr  # every rejection counted with its reason
    info = store.manifest.stages["rewrite"].counters["transforms"][transform]
    assert info["status"] == "complete" and info["client"]["resends"] == 0
    print(f"\n{transform}:", mine[["side", "status", "reason", "rewritten"]].to_dict(orient="records"))
