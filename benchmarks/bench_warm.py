"""Cold vs warm ``seal demo`` in one run (issue 18 items 2 and 3): the warm/cold ratio and the cache size.

Runs ``python -m seal_audit demo --out DIR --quiet`` twice in fresh subprocesses on an empty run
directory (cold: everything computed; warm: the same command again, everything cached), and prints
the wall time of each, their ratio (goal ≤ 20 %), which stages ran in the warm run, the size of
``cache.sqlite`` with the bytes per namespace, and whether the two runs wrote the same
``scores`` and ``stats.json``.

    .venv/bin/python benchmarks/bench_warm.py                      # generated demo data (1,500 pairs)
    .venv/bin/python benchmarks/bench_warm.py --data ../shared/data/hh-rlhf/harmless-base-test.jsonl.gz
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run_demo(out: Path, data: str | None) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "seal_audit", "demo", "--out", str(out), "--quiet"]
    if data:
        cmd += ["--data", data]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"seal demo failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return seconds, proc.stdout


def namespace_bytes(path: Path) -> dict[str, tuple[int, int]]:
    """(entries, bytes of keys + values) per cache namespace."""
    con = sqlite3.connect(path)
    try:
        rows = con.execute(
            "SELECT namespace, count(*), sum(length(key)) + sum(length(value)) FROM entries GROUP BY namespace"
        ).fetchall()
    finally:
        con.close()
    return {str(ns): (int(n), int(b or 0)) for ns, n, b in rows}


def snapshot(out: Path) -> dict[str, Any]:
    import pandas as pd

    scores = pd.read_parquet(out / "scores.parquet").sort_values(["rm", "variant", "pair_id", "side"])
    stats = json.loads((out / "stats.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    finished = {k: v.get("finished") for k, v in manifest.get("stages", {}).items()}
    return {"scores": scores.reset_index(drop=True), "stats": stats, "finished": finished}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="pairs file for `seal demo --data` (default: generated)")
    ap.add_argument("--keep", default=None, help="run directory to use and keep (default: a temporary one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp:
        out = Path(args.keep) if args.keep else Path(tmp) / "demo"
        if out.exists() and any(out.iterdir()):
            raise SystemExit(f"{out} is not empty: the cold run needs an empty run directory")
        cold_s, _ = run_demo(out, args.data)
        cold = snapshot(out)
        warm_s, findings = run_demo(out, args.data)
        warm = snapshot(out)
        reran = sorted(k for k, v in warm["finished"].items() if v != cold["finished"].get(k))
        same_scores = cold["scores"].equals(warm["scores"])
        strip = ("created", "seconds", "run_dir", "generated")

        def clean(d: Any) -> Any:
            if isinstance(d, dict):
                return {k: clean(v) for k, v in d.items() if k not in strip}
            if isinstance(d, list):
                return [clean(v) for v in d]
            return d

        same_stats = clean(cold["stats"]) == clean(warm["stats"])
        cache = out / "cache.sqlite"
        size = cache.stat().st_size
        per_ns = namespace_bytes(cache)
    print(f"data: {args.data or 'generated demo data'}")
    print(f"cold {cold_s:.1f} s, warm {warm_s:.1f} s: warm/cold = {100 * warm_s / cold_s:.1f}% (goal <= 20%)")
    print(f"stages the warm run recorded again: {', '.join(reran) or 'none'}")
    print(f"scores.parquet identical: {same_scores}; stats.json identical (timestamps aside): {same_stats}")
    print(f"cache.sqlite: {size / 1e6:.1f} MB")
    for ns, (n, b) in sorted(per_ns.items(), key=lambda kv: -kv[1][1]):
        print(f"  {ns:20s} {n:7d} entries {b / 1e6:8.2f} MB  ({b / max(n, 1):,.0f} B/entry)")
    print(findings.strip().splitlines()[0] if findings.strip() else "")


if __name__ == "__main__":
    main()
