"""Issue 20 on Ray: an RM that fails to load costs only itself, as with the local engine.

``seal score --engine ray`` with two length RMs (no torch in the workers: fast on 2 cores) and one RM
whose directory does not exist (``local:`` spec, found only at load time): exit 3, the manifest says partial and names the failed RM, the
others' scores are written, and ``seal analyze`` reports the absent RM as a leaderboard row. The CLI
starts and stops its own local Ray instance; the test checks that no Ray process is left and ends
any that are (by pid, only those under its own temp dir).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from seal_audit.store import RunStore

pytest.importorskip("ray")
pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
SEAL = [sys.executable, "-m", "seal_audit"]


def _ray_pids(marker: str) -> list[int]:
    """Live processes whose command line mentions ``marker`` (this test's Ray temp dir), from /proc."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd:
            out.append(int(d.name))
    return out


def _wait_gone(marker: str, timeout_s: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while True:
        left = _ray_pids(marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.3)


def test_ray_engine_keeps_going_when_one_rm_fails_to_load(tmp_path: Path) -> None:
    ray_tmp = tempfile.mkdtemp(prefix="sf", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "RAY_TMPDIR": ray_tmp,
        "SEAL_RAY_OBJECT_STORE_MB": "200",
    }
    run = tmp_path / "run"
    missing = tmp_path / "no-such-rm"
    left: list[int] = []
    try:
        r = subprocess.run(
            [*SEAL, "score", str(DATA), "--limit", "20", "--out", str(run), "--no-progress",
             "--engine", "ray", "--ray-actors", "1", "--ray-cpus-per-actor", "0.5",
             "--rm", "len chars=length_chars", "--rm", f"broken RM=local:{missing}", "--rm", "len:tok=length_tokens",
             "--post", "len chars", "--pre", "len:tok"],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        left = _wait_gone(ray_tmp)
        assert r.returncode == 3, (r.returncode, r.stderr[-3000:])  # the stage did not do all its work
        assert "broken RM" in r.stderr and "no-such-rm" in r.stderr
        assert "Traceback" not in r.stderr
        scores = pd.read_parquet(run / "scores.parquet")
        assert set(scores["rm"].astype(str)) == {"len chars", "len:tok"}
        assert len(scores) == 2 * 20 * 2 and scores["reward"].notna().all()
        rec = RunStore(run, create=False).manifest.stages["score"]
        stage = rec.counters
        assert stage["engine"] == "ray" and rec.status == "partial" and "broken RM" in (rec.message or "")
        assert set(stage["failed_rms"]) == {"broken RM"} and "no-such-rm" in stage["failed_rms"]["broken RM"]
        assert set(stage["rms"]) == {"len chars", "len:tok"}

        a = subprocess.run(
            [*SEAL, "analyze", str(run), "--n-bootstrap", "20"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert a.returncode == 0, a.stderr[-3000:]
        st = json.loads((run / "stats.json").read_text(encoding="utf-8"))
        assert "no-such-rm" in st["inputs"]["absent_rms"]["broken RM"]
        rows = {row["rm"]: row for row in st["leaderboard"]["rows"]}
        assert rows["broken RM"]["status"] == "absent" and rows["len chars"]["status"] == "ok"
        assert set(st["per_rm"]) == {"len chars", "len:tok"}
    finally:
        for pid in _ray_pids(ray_tmp):  # never leave Ray running: end what this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert not left, f"Ray processes left behind: {left}"
