"""`seal data` and the CLI's error handling, run as real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

SEAL = [sys.executable, "-m", "seal_audit"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SEAL, *args], capture_output=True, text=True, timeout=120)


def test_help_lists_verbs() -> None:
    out = run("--help")
    assert out.returncode == 0 and "data" in out.stdout


def test_inspect_real_data(hh_path: Path) -> None:
    out = run("data", "inspect", str(hh_path), "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)["files"][str(hh_path)]
    assert info["pairs"] == 2312 and info["context_diverges"] == 5 and info["duplicate_pair_ids"] == 0
    assert info["empty_replies"] == {"chosen": 4, "rejected": 0}
    assert info["length"]["rejected"]["chars"]["max"] == 2480.0
    # lengths are read by people: one decimal, never float noise such as 41.10000000000002
    for side in ("chosen", "rejected"):
        for unit in ("chars", "words"):
            assert all(v == round(v, 1) for v in info["length"][side][unit].values()), info["length"]
    human = run("data", "inspect", str(hh_path))
    assert "2312 pairs" in human.stdout and "5 with diverging contexts" in human.stdout


def test_convert_writes_canonical_table(tmp_path: Path, hh_path: Path) -> None:
    out = run(
        "data",
        "convert",
        str(hh_path),
        "--out",
        str(tmp_path / "p.parquet"),
        "--sample",
        "100",
        "--seed",
        "1",
    )
    assert out.returncode == 0, out.stderr
    df = pd.read_parquet(tmp_path / "p.parquet")
    assert len(df) == 100 and {"pair_id", "context", "chosen", "rejected", "context_diverges", "meta"} <= set(
        df
    )


def test_bad_input_is_one_line_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": 3, "rejected": "b"}\n'
    )
    out = run("data", "inspect", str(bad))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert f"{bad}, record 2, field 'chosen'" in out.stderr
    skip = run("data", "convert", str(bad), "--out", str(tmp_path / "o.parquet"), "--on-error", "skip")
    assert skip.returncode == 0 and "1 skipped" in skip.stdout
    assert (tmp_path / "o.quarantine.jsonl").exists()
