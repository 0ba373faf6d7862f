"""What redaction at the sinks costs: writing the pairs table and a long features table of the real
hh-rlhf split, and the LM-call log, with and without the redaction pass (issue 19).

Each write is timed ``--repeat`` times and the median reported; "redaction off" calls the same
atomic Parquet / JSONL writers with the redaction hook replaced by the identity, so the difference
is the price of never writing a secret. Usage::

    .venv/bin/python benchmarks/bench_sinks.py [--copies 10] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from seal_audit.sources import load_pairs
from seal_audit.store import io as store_io
from seal_audit.store import pairs_to_frame

HH = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"


def _median_s(fn: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=10, help="Pairs table = the split repeated N times.")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    pairs = pairs_to_frame(load_pairs(HH))
    big = pd.concat([pairs] * args.copies, ignore_index=True)
    n = len(big)
    features = pd.DataFrame(
        {
            "pair_id": big["pair_id"].repeat(19).to_numpy(),
            "feature": ["is_helpful"] * (19 * n),
            "value": [1.0] * (19 * n),
            "error": [None] * (19 * n),
        }
    )
    log = [
        {"key": f"llm:m|abc|{i:064d}", "status": "ok", "error": None, "tokens_in": 100} for i in range(20_000)
    ]
    real = (store_io.redact_frame, store_io.needs_redaction)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = []
        for name, fn in (
            (
                f"pairs table ({n:,} rows, texts)",
                lambda: store_io.write_parquet_atomic(root / "p.parquet", big),
            ),
            (
                f"features table ({len(features):,} rows)",
                lambda: store_io.write_parquet_atomic(root / "f.parquet", features),
            ),
            (f"LM-call log ({len(log):,} records)", lambda: store_io.append_jsonl(root / "l.jsonl", log)),
        ):
            on = _median_s(fn, args.repeat)
            store_io.redact_frame = lambda df: df  # type: ignore[assignment]
            store_io.needs_redaction = lambda text, secrets=(): False  # type: ignore[assignment]
            try:
                off = _median_s(fn, args.repeat)
            finally:
                store_io.redact_frame, store_io.needs_redaction = real  # type: ignore[assignment]
            rows.append((name, off, on))
    print(f"{'write':42s} {'redaction off':>14s} {'on':>10s} {'extra':>8s}")
    for name, off, on in rows:
        print(f"{name:42s} {off:13.3f}s {on:9.3f}s {100 * (on - off) / off:7.0f}%")


if __name__ == "__main__":
    main()
