"""``seal score`` and ``seal train-rm`` as a user runs them: subprocesses on real hh-rlhf data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
SEAL = str(Path(sys.executable).parent / "seal")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _seal(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SEAL, *args], capture_output=True, text=True, cwd=cwd, env=ENV, timeout=300)


def test_cli_score_train_and_rescore(tiny_rm: Path, tmp_path: Path) -> None:
    rm_dir = tmp_path / "ngram-rm"
    tr = _seal("train-rm", str(DATA), "--limit", "120", "--out", str(rm_dir), "--kind", "ngram", cwd=tmp_path)
    assert tr.returncode == 0, tr.stderr
    assert "validation accuracy" in tr.stdout and (rm_dir / "model.safetensors").exists()

    run = tmp_path / "run"
    args = [
        "score",
        str(DATA),
        "--limit",
        "25",
        "--out",
        str(run),
        "--no-progress",
        "--rm",
        f"a={tiny_rm}?max_length=64",
        "--rm",
        f"b=local:{rm_dir}",
        "--rm",
        "len=length_chars",
        "--pre",
        "a",
        "--post",
        "b",
        "--self-check",
    ]
    r = _seal(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "self-check a" in r.stderr and "passed" in r.stderr and "truncated" in r.stderr
    df = pd.read_parquet(run / "scores.parquet")
    assert len(df) == 25 * 2 * 3
    manifest = json.loads((run / "manifest.json").read_text())
    rms = manifest["rms"]
    assert rms["a"]["role"] == "pre" and rms["b"]["role"] == "post"
    assert rms["a"]["identity"]["format"] == "text-pair"
    load = manifest["stages"]["load"]
    assert load["options"]["sources"][0]["limit"] == 25 and manifest["inputs"][0]["sha256"]
    assert load["verb"] == "seal score" and load["counters"]["pairs"] == 25
    n_trunc = int(df[df.rm == "a"]["truncated"].sum())
    assert n_trunc > 0 and manifest["stages"]["score"]["counters"]["truncated"]["a"] == n_trunc

    again = _seal("score", str(run), "--no-progress", cwd=tmp_path)  # RMs from the manifest, all cached
    assert again.returncode == 0, again.stderr
    assert (
        json.loads((run / "manifest.json").read_text())["stages"]["score"]["counters"]["rms"]["a"][
            "n_computed"
        ]
        == 0
    )


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    r = _seal(
        "score",
        str(DATA),
        "--limit",
        "3",
        "--out",
        str(tmp_path / "r"),
        "--no-progress",
        "--rm",
        "x=hf:seal-audit-tests/not-cached",
        cwd=tmp_path,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "local directory" in r.stderr


def test_rerun_that_loads_the_failed_rm_clears_the_partial_stage(tmp_path: Path) -> None:
    """A rerun where every RM loads must not keep the first run's partial status, message and failed
    RM (the analysis would call the RM absent): record_stage replaces a stage's outcome."""
    run = tmp_path / "r"
    first = _seal(
        "score", str(DATA), "--limit", "40", "--out", str(run), "--no-progress",
        "--rm", "a=length_chars", "--rm", "b=local:/nonexistent", cwd=tmp_path,
    )  # fmt: skip
    assert first.returncode == 3, first.stderr
    stage = json.loads((run / "manifest.json").read_text())["stages"]["score"]
    assert stage["status"] == "partial" and "b" in stage["counters"]["failed_rms"]
    again = _seal(
        "score", str(run), "--no-progress", "--rm", "a=length_chars", "--rm", "b=length_tokens", cwd=tmp_path
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    stage = json.loads((run / "manifest.json").read_text())["stages"]["score"]
    assert stage["status"] == "complete" and not stage["message"], stage
    assert not stage["counters"].get("failed_rms"), stage
    analyzed = _seal("analyze", str(run), "--quiet", "--post", "b", "--baseline", "a", cwd=tmp_path)
    assert analyzed.returncode == 0, analyzed.stderr
    assert json.loads((run / "stats.json").read_text())["inputs"]["absent_rms"] == {}


def test_gpu_check_smoke_on_cpu(tmp_path: Path) -> None:
    r = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--small"],
        capture_output=True,
        text=True,
        env={**ENV, "PYTHON": sys.executable},  # this interpreter, not whatever python3 is on PATH
        timeout=300,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ours:" in r.stdout and "reference:" in r.stdout and "texts/s" in r.stdout


HANGING_RM = """
import os
import time

if os.environ.get("SEAL_TEST_HANG_ON_LOAD"):  # fault injection: this process hangs loading the RM
    time.sleep(600)


def reward(batch):
    return [float(len(r)) for c, r in batch]
"""


def test_score_killed_before_its_first_batch_resumes_from_the_run(tmp_path: Path) -> None:
    """Before: the RMs were recorded only once scored, so `seal score RUN` after a run killed while
    loading its RM said "no reward model given". They are recorded before any is loaded."""
    import signal
    import time

    (tmp_path / "hanging_rm.py").write_text(HANGING_RM, encoding="utf-8")
    env = {**ENV, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ENV.get('PYTHONPATH', '')}"}
    run = tmp_path / "run"
    args = ["score", str(DATA), "--limit", "150", "--out", str(run), "--no-progress"]
    proc = subprocess.Popen(
        [SEAL, *args, "--rm", "a=python:hanging_rm:reward", "--post", "a"],
        cwd=tmp_path, env={**env, "SEAL_TEST_HANG_ON_LOAD": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            manifest = run / "manifest.json"
            if manifest.exists() and "a" in json.loads(manifest.read_text(encoding="utf-8")).get("rms", {}):
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    m = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert m["rms"]["a"]["spec"] == "python:hanging_rm:reward" and m["rms"]["a"]["role"] == "post", m["rms"]
    assert not (run / "scores.parquet").exists()  # killed before any score was written
    again = subprocess.run(
        [SEAL, "score", str(run), "--no-progress"], capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    scores = pd.read_parquet(run / "scores.parquet")
    assert len(scores) == 300 and set(scores["rm"]) == {"a"}
    m = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert m["rms"]["a"]["identity"] and m["stages"]["score"]["status"] == "complete"
    # an RM this run recorded but could not load is not left in the manifest as if it were scored
    bad = subprocess.run(
        [SEAL, "score", str(run), "--no-progress", "--rm", "a=python:hanging_rm:reward",
         "--rm", "b=local:/nonexistent"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 3 and set(json.loads((run / "manifest.json").read_text())["rms"]) == {"a"}
