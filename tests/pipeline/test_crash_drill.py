"""The crash drill: `seal run` on a real hh-rlhf sample killed with SIGKILL at random moments in every
stage (load, training, scoring, labeling, rewriting, analysis and the report write), resumed each
time, ends with a stats.json byte-identical to an uninterrupted run; and the same run with two
concurrent writers, on a full disk (a real small tmpfs) and on a read-only directory.

Kept small (60 pairs, n-gram RMs trained in the run, offline featurizers, controlled rewrites): the
whole module takes about three minutes on two idle cores (most of it Python start-up per resume).
Moments are drawn from a seeded generator within each stage (after the stage's start line, or as
soon as the report's temporary file appears).
"""

from __future__ import annotations

import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

CONFIG = """
[run]
out = "{out}"
seed = 3
holdout = 0.3

[[data]]
path = "{data}"
sample = 60
seed = 1

[[train_rm]]
name = "pre"
role = "pre"
data = "A"
kind = "ngram"

[[train_rm]]
name = "post"
role = "post"
data = "A+D"
kind = "ngram"

[[rms]]
name = "length_tokens"
role = "baseline"
spec = "length_tokens"

[labels]
featurizers = ["sentiment", "refusal", "length", "hedging"]

[rewrite]
transforms = ["add_positive", "add_filler"]
sample = 0.25
seed = 3

[analysis]
n_bootstrap = 100
"""

STALE_NOTE = "took over the stale lock"


def _config(tmp: Path, out: Path, hh: Path) -> Path:
    path = tmp / f"{out.name}.toml"
    path.write_text(CONFIG.format(out=out, data=hh))
    return path


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "seal_audit", *args]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cmd(*args), capture_output=True, text=True, timeout=600)


class _Proc:
    """A `seal` process whose merged output is read by a thread, so the test can wait with a timeout."""

    def __init__(self, *args: str) -> None:
        self.p = subprocess.Popen(
            _cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, marker: str, timeout: float = 300) -> bool:
        """True once a line containing ``marker`` is printed; False if the process ended first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                return False
            self.seen.append(line)
            if marker in line:
                return True
        raise AssertionError(f"no {marker!r} within {timeout} s")

    def output(self) -> str:
        self.p.wait(timeout=300)
        while True:
            try:
                line = self.lines.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
        return "".join(self.seen)

    def kill(self) -> bool:
        """SIGKILL now; True if the process was still running."""
        alive = self.p.poll() is None
        if alive:
            self.p.send_signal(signal.SIGKILL)
        self.p.wait(timeout=60)
        return alive


def _assert_not_corrupted(run: Path) -> None:
    """Every finished file of the run reads back whole."""
    if (run / "manifest.json").exists():
        json.loads((run / "manifest.json").read_text())
    if (run / "stats.json").exists():
        json.loads((run / "stats.json").read_text())
    for p in run.rglob("*.parquet"):
        pd.read_parquet(p)
    if (run / "report.html").exists():
        assert (run / "report.html").read_text(encoding="utf-8").rstrip().endswith("</html>")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, hh_path: Path) -> bytes:
    tmp = tmp_path_factory.mktemp("drill-ref")
    out = _run("run", str(_config(tmp, tmp / "ref", hh_path)), "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    return (tmp / "ref" / "stats.json").read_bytes()


# (stage start line, longest random delay after it in s); "report" = when its temp file appears
TARGETS: list[tuple[str, float]] = [
    ("[load]", 0.4),
    ("[train:pre]", 0.3),
    ("[train:post]", 0.3),
    ("[score]", 0.3),
    ("[label]", 0.15),
    ("[rewrite+score+label]", 4.0),
    ("[rewrite+score+label]", 0.2),
    ("[analyze]", 0.3),
    ("report", 0.0),
    ("report", 0.0),
]


def _kill_in_report(proc: _Proc, run: Path) -> bool:
    """Kill the process as soon as a temporary file of the report write appears (report.html is
    written last but one, report.md last), i.e. while the report is being written."""
    if not proc.wait_for("[analyze]"):
        return False
    while proc.p.poll() is None:
        for entry in os.scandir(run):
            if entry.name.startswith((".report.html.", ".report.md.")):
                return proc.kill()
    return False


def test_kill_9_at_random_moments_resumes_to_identical_stats(
    tmp_path: Path, hh_path: Path, reference: bytes
) -> None:
    rng = random.Random(19)
    run = tmp_path / "drill"
    cfg = _config(tmp_path, run, hh_path)
    kills: list[str] = []
    previous_killed = False
    attempts = 0
    for marker, window in TARGETS:
        for _ in range(4):  # a stage that ended before its moment is drawn again
            attempts += 1
            proc = _Proc("run", str(cfg))
            if marker == "report":
                killed = _kill_in_report(proc, run)
            elif proc.wait_for(marker):
                time.sleep(rng.uniform(0, window))
                killed = proc.kill()
            else:
                killed = False
            text = proc.output()
            if previous_killed:  # the lock of the killed run was left to the kernel: taken over, said
                assert STALE_NOTE in text, text[-2000:]
            assert "Traceback" not in text, text[-3000:]
            _assert_not_corrupted(run)
            previous_killed = killed
            if killed:
                kills.append(marker)
                break
            assert proc.p.returncode == 0, text[-3000:]
    assert len(kills) >= 10, (kills, attempts)
    assert {m.strip("[]").split(":")[0] for m in kills} >= {
        "load",
        "train",
        "score",
        "label",
        "rewrite+score+label",
        "analyze",
        "report",
    }
    out = _run("run", str(cfg), "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    assert STALE_NOTE in out.stderr
    assert (run / "stats.json").read_bytes() == reference
    assert not list(run.rglob(".*.tmp"))  # killed writes' temporaries were swept by the next writer


def test_two_concurrent_writers(tmp_path: Path, hh_path: Path) -> None:
    run = tmp_path / "busy"
    cfg = _config(tmp_path, run, hh_path)
    first = _Proc("run", str(cfg))
    try:
        assert first.wait_for("[load]")
        for args in (("run", str(cfg)), ("label", str(run), "--featurizer", "offline")):
            second = _run(*args)
            assert second.returncode == 2, second.stderr[-2000:]
            lines = [ln for ln in second.stderr.splitlines() if ln.strip()]
            assert len(lines) == 1, second.stderr
            assert f"pid {first.p.pid}" in lines[0] and "`seal run`" in lines[0] and "in use" in lines[0]
            assert "[load]" not in second.stderr and "[score]" not in second.stderr  # did no work
        assert first.p.poll() is None  # the drill is void if the first writer was already done
    finally:
        first.kill()


def _can_mount() -> str | None:
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        return "mounting a tmpfs needs root on Linux"
    return None


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    why = _can_mount()
    if why:
        pytest.skip(why)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_then_read_only_directory(
    tmpfs: Path, tmp_path: Path, hh_path: Path, reference: bytes
) -> None:
    """The disk fills up three times, each time further into the run (the models, the cache, the
    analysis tables on this data: the full run needs about 2.7 MB), each time one line naming the
    file and the cause; then space is freed and the run resumes to the reference stats."""
    run = tmpfs / "run"
    cfg = _config(tmp_path, run, hh_path)
    failed: list[str] = []
    for size in ("192k", "2200k", "2600k"):
        subprocess.run(["mount", "-o", f"remount,size={size}", str(tmpfs)], check=True)
        full = _run("run", str(cfg), "--quiet")
        assert full.returncode == 2, full.stderr[-3000:]
        lines = [ln for ln in full.stderr.splitlines() if ln.startswith("error: ")]  # (warnings aside)
        assert len(lines) == 1 and "Traceback" not in full.stderr, full.stderr[-3000:]
        assert "No space left on device" in lines[0] or "database or disk is full" in lines[0], lines[0]
        failed.append(lines[0].split(": cannot write")[0].removeprefix("error: "))
        _assert_not_corrupted(run)
    assert all(p.startswith(str(run)) for p in failed) and len(set(failed)) >= 2, failed

    subprocess.run(["mount", "-o", "remount,size=64m", str(tmpfs)], check=True)  # space freed
    resumed = _run("run", str(cfg), "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (run / "stats.json").read_bytes() == reference

    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    ro = _run("run", str(cfg), "--quiet")
    assert ro.returncode == 2
    lines = [ln for ln in ro.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "run.lock" in lines[0] and "Read-only file system (EROFS)" in lines[0], (
        ro.stderr
    )
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before
    view = _run("view", str(run), "--no-open")  # reading needs no lock: works on a read-only run
    assert view.returncode == 0 and "report.html" in view.stdout, view.stderr
