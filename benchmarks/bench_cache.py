"""Cache size, old encoding vs new, on the same content (issue 18 item 3): the hh-rlhf demo's cache.

Takes a run's ``cache.sqlite`` (by default it first runs ``seal demo --data <hh-rlhf harmless-base
test split>`` into a temporary directory) and writes its entries twice, in the same shuffled order
and in transactions of 500 rows as a run writes them:

- old: the encoding before issue 18 -- printable keys, vectors as base64 text inside JSON, SQLite's
  default 4 KiB pages, no VACUUM (what ``cache.sqlite`` looked like: 33 MB for this demo);
- new: through ``Cache`` as it is now (format 2: binary digest keys, raw float32 BLOBs, 16 KiB
  pages), before and after the end-of-run VACUUM that ``seal`` runs (``Cache.compact``).

Then it reads every entry back from both files through ``Cache`` (the old one through the
still-supported reader) and checks the vectors are bit-identical and every other value equal.

    .venv/bin/python benchmarks/bench_cache.py                    # runs the hh-rlhf demo first (minutes)
    .venv/bin/python benchmarks/bench_cache.py --cache RUN/cache.sqlite
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
BATCH = 500


def read_entries(path: Path) -> list[tuple[str, str, Any]]:
    """Every (namespace, printable key, decoded value) of a cache file, through ``Cache``."""
    from seal_audit.store.cache import Cache

    cache = Cache(path)
    try:
        out = []
        for ns in sorted({ns for ns, _, _ in cache.summary()}):
            keys = cache.keys(ns)
            values = cache.get_many(ns, keys)
            out.extend((ns, k, values[k]) for k in keys)
        return out
    finally:
        cache.close()


def write_old(path: Path, entries: list[tuple[str, str, Any]]) -> None:
    """The pre-issue-18 file: 4 KiB pages, printable keys, JSON text values, vectors base64 in JSON
    (the table is the store's own: the formats differ in what is written into it, and in the page
    size; ``user_version`` stays 0, which is how ``Cache`` tells a format-0 file)."""
    from seal_audit.store.cache import ENTRIES_SCHEMA

    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA page_size=4096")
    con.execute("PRAGMA journal_mode=WAL")
    con.executescript(ENTRIES_SCHEMA)
    now = time.time()
    for s in range(0, len(entries), BATCH):
        rows = []
        for ns, k, v in entries[s : s + BATCH]:
            text = base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v
            rows.append((ns, k, json.dumps(text, ensure_ascii=False, allow_nan=True), now))
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)", rows)
        con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def write_new(path: Path, entries: list[tuple[str, str, Any]]) -> tuple[int, int]:
    """Through ``Cache``: the size as written, and after the end-of-run ``compact`` (VACUUM)."""
    from seal_audit.store.cache import Cache

    cache = Cache(path)
    for s in range(0, len(entries), BATCH):
        chunk = entries[s : s + BATCH]
        for ns in sorted({ns for ns, _, _ in chunk}):
            cache.put_many(ns, [(k, v) for n, k, v in chunk if n == ns])
    cache._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    written = path.stat().st_size
    cache.compact(min_rows_written=0)
    cache.close()
    return written, path.stat().st_size


def per_namespace(entries: list[tuple[str, str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for ns, _, _ in entries:
        out[ns] = out.get(ns, 0) + 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=None, help="a run's cache.sqlite (default: run the hh-rlhf demo)")
    ap.add_argument("--seed", type=int, default=0, help="order in which entries are written")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        work = Path(tmp)
        if args.cache:
            source = Path(args.cache)
        else:
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
            cmd = [sys.executable, "-m", "seal_audit", "demo", "--out", str(work / "demo"), "--quiet"]
            subprocess.run([*cmd, "--data", str(DATA)], env=env, check=True)
            source = work / "demo" / "cache.sqlite"
        entries = read_entries(source)
        random.Random(args.seed).shuffle(entries)
        n_vec = sum(isinstance(v, bytes) for _, _, v in entries)
        print(f"source: {source} ({len(entries):,} entries, {n_vec:,} vectors; {per_namespace(entries)})")

        write_old(work / "old.sqlite", entries)
        old = (work / "old.sqlite").stat().st_size
        written, vacuumed = write_new(work / "new.sqlite", entries)

        back_old = {(ns, k): v for ns, k, v in read_entries(work / "old.sqlite")}
        back_new = {(ns, k): v for ns, k, v in read_entries(work / "new.sqlite")}
        want = {(ns, k): v for ns, k, v in entries}
        same_new = back_new == want
        # the old file holds vectors as base64 text: decoded, they must be the same bytes
        same_old = all(
            (base64.b64decode(back_old[key]) == v) if isinstance(v, bytes) else back_old[key] == v
            for key, v in want.items()
        )
    print(f"old encoding (base64 JSON vectors, text keys, 4 KiB pages): {old / 1e6:6.1f} MB")
    print(
        f"new (format 2), as written:                               {written / 1e6:6.1f} MB  ({old / written:.2f}x)"
    )
    print(
        f"new (format 2), after the end-of-run VACUUM:              {vacuumed / 1e6:6.1f} MB  ({old / vacuumed:.2f}x)"
    )
    print(f"per entry: old {old / len(entries):,.0f} B, new {vacuumed / len(entries):,.0f} B")
    print(f"every entry reads back identical: new {same_new}, old (through the old-format reader) {same_old}")


if __name__ == "__main__":
    main()
