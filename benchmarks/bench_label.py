"""LM-labeling throughput against a local OpenAI-compatible server with fixed per-call latency.

The bound for C calls in flight at latency L is C / L calls per second; the goal is >= 80 % of it
at C = 64. Two measurements per concurrency level, each on n = C x per-slot distinct texts:

* ``client``: ``LLMClient.chat_many`` with JSON parsing (the transport + concurrency machinery),
  steady state: the client and its connections are warmed up by a first batch of C calls;
* ``labeler``: the full LM-labeler path, end to end as a user runs it: ``label_items`` on a fresh
  run store (a new client and new connections, cache lookups, prompt rendering, structured-output
  schema, tolerant parsing into 19 SEAL features, every result committed to the SQLite cache before
  it is reported, calls log, the features table). A warm-up run first (imports, server threads).

The figure per level is the median of ``--repeat`` runs (the spread is shown), since a shared
2-core machine is noisy. The server runs in its own process (``tests/fakeserver/server.py``) so
its work does not take the client's GIL -- it does share the CPUs: ``srv ms`` is its CPU time
per labeler call (Linux only), to check it is not the bottleneck. Usage::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_label.py [--latency 0.1] [--per-slot 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from seal_audit.backends.llm import ChatRequest, LLMClient, LLMSettings, Message, extract_json_object  # noqa: E402
from seal_audit.features import LabelItem, label_items  # noqa: E402
from seal_audit.features.lm import LMLabeler  # noqa: E402
from seal_audit.store import RunStore  # noqa: E402

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fakeserver" / "server.py"), "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/v1"


def bench_client(base_url: str, conc: int, n: int) -> float:
    s = LLMSettings(model="bench", base_url=base_url, api_key_env=None, concurrency=conc, timeout_s=30)
    text = "Human: how do I bake bread?\n\nAssistant: Mix flour, water, salt and yeast. " * 8
    with LLMClient(s) as c:
        warm = [
            ChatRequest(f"w{i}", (Message("user", f"warm {i} JSON schema: {json.dumps(SCHEMA)}"),), SCHEMA)
            for i in range(conc)
        ]
        c.chat_many(warm, parse=extract_json_object)
        reqs = [
            ChatRequest(f"r{i}", (Message("user", f"{i} {text} JSON schema: {json.dumps(SCHEMA)}"),), SCHEMA)
            for i in range(n)
        ]
        t0 = time.perf_counter()
        out = c.chat_many(reqs, parse=extract_json_object)
        dt = time.perf_counter() - t0
    assert out.count("ok") == n, out.count("failed")
    return n / dt


def bench_labeler(base_url: str, conc: int, n: int) -> float:
    s = LLMSettings(model="bench", base_url=base_url, api_key_env=None, concurrency=conc, timeout_s=30)
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "run")
        lab = LMLabeler(s)
        warm = [
            LabelItem(f"w{i}", "chosen", "\n\nHuman: hi\n\n", f"Assistant: warm {i}") for i in range(conc)
        ]
        label_items(warm, [lab], store=store)
        items = [
            LabelItem(
                f"p{i}",
                "chosen",
                "\n\nHuman: how do I bake bread?\n\n",
                f"Assistant: Mix flour, water, salt and yeast ({i}). Knead, rest, bake.",
            )
            for i in range(n)
        ]
        t0 = time.perf_counter()
        out = label_items(items, [lab], store=store)
        dt = time.perf_counter() - t0
        store.close()
    assert out.outcomes[0].n_failed == 0
    return n / dt


def server_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (None where /proc is not available)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--per-slot", type=int, default=20, help="calls per concurrency slot (n = C x this)")
    ap.add_argument("--levels", default="1,8,32,64")
    ap.add_argument("--repeat", type=int, default=3, help="runs per level; the median is reported")
    args = ap.parse_args()
    proc, base_url = start_server(args.latency)
    try:
        print(
            f"latency {args.latency * 1000:.0f} ms per call; server pid {proc.pid}; median of {args.repeat}"
        )
        print(
            f"{'C':>4} {'n':>5} {'bound/s':>8} {'client/s':>9} {'%bound':>7} {'labeler/s':>10} {'%bound':>7}"
            f" {'(min-max)':>10} {'srv ms':>7}"
        )
        for conc in (int(x) for x in args.levels.split(",")):
            n = max(40, conc * args.per_slot)
            bound = conc / args.latency
            clients, labelers, srv = [], [], []
            for _ in range(args.repeat):
                clients.append(bench_client(base_url, conc, n))
                cpu0 = server_cpu_s(proc.pid)
                labelers.append(bench_labeler(base_url, conc, n))
                cpu1 = server_cpu_s(proc.pid)
                if cpu0 is not None and cpu1 is not None:
                    srv.append((cpu1 - cpu0) / (n + conc))  # the labeler's warm-up calls included
            c, lab = statistics.median(clients), statistics.median(labelers)
            spread = f"{min(labelers) / bound:.0%}-{max(labelers) / bound:.0%}"
            srv_ms = f"{statistics.median(srv) * 1000:.2f}" if srv else "n/a"
            print(
                f"{conc:>4} {n:>5} {bound:>8.0f} {c:>9.1f} {c / bound:>7.0%} {lab:>10.1f} {lab / bound:>7.0%}"
                f" {spread:>10} {srv_ms:>7}",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
