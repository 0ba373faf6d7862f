"""One writer per run directory: the lock names its holder, refuses a second writer, survives
kill -9 (the kernel drops it; the next writer takes over and says so), and read-only verbs need none."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from seal_audit.data.errors import RunLockedError
from seal_audit.store import RunStore
from seal_audit.store.lock import LOCK_NAME, RunLock, read_holder

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}


def _holder_process(run: Path) -> subprocess.Popen[str]:
    """Another process that takes the run's lock, says so, and then waits to be killed."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from seal_audit.store import RunStore
        store = RunStore({str(run)!r}, lock="label")
        print("locked", flush=True)
        time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_records_the_holder_and_clears_it_on_release(tmp_path: Path) -> None:
    with RunStore(tmp_path / "run", lock="score") as store:
        holder = read_holder(store.root)
        assert holder is not None
        assert (holder.pid, holder.host, holder.verb) == (os.getpid(), socket.gethostname(), "score")
        assert holder.started.endswith("+00:00")
        # re-entrant within one process (seal demo holds it and calls run, which takes it again)
        with RunStore(store.root, lock="run"):
            pass
        assert read_holder(store.root) is not None
    assert read_holder(tmp_path / "run") is None
    assert (tmp_path / "run" / LOCK_NAME).exists()  # the file stays; only the record is cleared


def test_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    RunStore(run).close()
    proc = _holder_process(run)
    try:
        with pytest.raises(RunLockedError) as exc:
            RunStore(run, create=False, lock="analyze")
        msg = str(exc.value)
        assert f"pid {proc.pid} on {socket.gethostname()}" in msg and "`seal label`" in msg
        # through the CLI: exit 2, one line, nothing written
        before = (run / "manifest.json").read_bytes()
        out = subprocess.run(
            [sys.executable, "-m", "seal_audit", "analyze", str(run), "--post", "x"],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=120,
        )
        assert out.returncode == 2
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and f"pid {proc.pid}" in lines[0] and "in use" in lines[0], out.stderr
        assert (run / "manifest.json").read_bytes() == before
        # read-only verbs do not need the lock
        out = subprocess.run(
            [sys.executable, "-m", "seal_audit", "cache", str(run)],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
    finally:
        proc.kill()
        proc.wait()


def test_stale_lock_of_a_killed_writer_is_taken_over_and_said(tmp_path: Path) -> None:
    run = tmp_path / "run"
    RunStore(run).close()
    proc = _holder_process(run)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stale = read_holder(run)
    assert stale is not None and stale.pid == proc.pid  # the record survives kill -9 ...
    said: list[str] = []
    lock = RunLock(run, "report", say=said.append).acquire()  # ... the kernel's lock does not
    try:
        assert lock.took_over == stale
        assert len(said) == 1 and f"pid {proc.pid}" in said[0] and "no longer running" in said[0]
        assert len(said[0]) <= 80, said[0]  # one log line in 80 columns (the llama rewrite test's check)
    finally:
        lock.release()
    # RunStore records the takeover in the manifest, for the lead's typed manifest to map
    proc = _holder_process(run)
    proc.kill()
    proc.wait()
    with RunStore(run, create=False, lock="label") as store:
        took = store.manifest.stages["lock"].counters["took_over"]
        assert took["pid"] == proc.pid and took["verb"] == "label"
    assert (
        json.loads((run / "manifest.json").read_text())["stages"]["lock"]["counters"]["took_over"]["pid"]
        == proc.pid
    )
