"""LM-labeling throughput against a local OpenAI-compatible server with fixed per-call latency.

The bound for C calls in flight at latency L is C / L calls per second; the goal is >= 80 % of it
at C = 64. Two measurements per concurrency level:

* ``client``: ``LLMClient.chat_many`` with JSON parsing (the transport + concurrency machinery);
* ``labeler``: the full LM-labeler path (prompt rendering, structured-output schema, tolerant
  parsing into 19 SEAL features, one SQLite cache commit per result, calls log) on distinct texts.

The server runs in its own process (``tests/fakeserver/server.py``) so its work does not share
the client's GIL. Usage::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_label.py [--latency 0.1] [--per-slot 20]
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--per-slot", type=int, default=20, help="calls per concurrency slot (n = C x this)")
    ap.add_argument("--levels", default="1,8,32,64")
    args = ap.parse_args()
    proc, base_url = start_server(args.latency)
    try:
        print(f"latency {args.latency * 1000:.0f} ms per call; server pid {proc.pid}")
        print(f"{'C':>4} {'bound/s':>8} {'client/s':>9} {'%bound':>7} {'labeler/s':>10} {'%bound':>7}")
        for conc in (int(x) for x in args.levels.split(",")):
            n = max(40, conc * args.per_slot)
            bound = conc / args.latency
            c = bench_client(base_url, conc, n)
            lab = bench_labeler(base_url, conc, n)
            print(
                f"{conc:>4} {bound:>8.0f} {c:>9.1f} {c / bound:>7.0%} {lab:>10.1f} {lab / bound:>7.0%}",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
