"""Issue 20 on Ray: an RM that fails to load costs only itself, as with the local engine.

``seal score --engine ray`` with two length RMs (no torch in the workers: fast on 2 cores) and one RM
whose directory does not exist (``local:`` spec, found only at load time): exit 3, the manifest says partial and names the failed RM, the
others' scores are written, and ``seal analyze`` reports the absent RM as a leaderboard row. The CLI
starts and stops its own local Ray instance; the test checks that no Ray process is left, and the
``local_ray`` fixture ends any that are (by pid, only those under its own temp dir).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from seal_audit.store import RunStore

if TYPE_CHECKING:
    from conftest import LocalRay, RayProcesses

pytest.importorskip("ray")
pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
SEAL = [sys.executable, "-m", "seal_audit"]


def test_ray_engine_keeps_going_when_one_rm_fails_to_load(
    tmp_path: Path, ray_procs: RayProcesses, local_ray: LocalRay
) -> None:
    env = local_ray.env
    run = tmp_path / "run"
    missing = tmp_path / "no-such-rm"
    r = subprocess.run(
        [*SEAL, "score", str(DATA), "--limit", "20", "--out", str(run), "--no-progress",
         "--engine", "ray", "--ray-actors", "1", "--ray-cpus-per-actor", "0.5",
         "--rm", "len chars=length_chars", "--rm", f"broken RM=local:{missing}", "--rm", "len:tok=length_tokens",
         "--post", "len chars", "--pre", "len:tok"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    left = ray_procs.wait_gone(local_ray.temp, timeout_s=20.0)
    assert not left, f"Ray processes left behind: {left}"
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
