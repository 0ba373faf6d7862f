"""The one Ray clean-up helper of the Ray tests: find a Ray instance's processes by its temp dir,
stop them, and say what is left.

Every Ray test starts its Ray processes with a private temp dir (``_temp_dir=`` / ``--temp-dir=``),
which appears in the command line of each of them (gcs_server, raylet, workers); the tests stop
exactly those in a ``finally`` -- never with ``ray stop``, which would stop other users' Ray
sessions on the machine too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest


class RayProcesses:
    """Processes found by a marker in their command line (read from /proc: no psutil, no pgrep)."""

    @staticmethod
    def find(marker: str) -> dict[int, str]:
        """pid -> command line of every live process (but this one) that mentions ``marker`` in its
        command line or has it as ``RAY_TMPDIR``: Ray's dashboard and runtime-env agents rewrite
        their command line to a bare title (``ray::DashboardAgent``), so only their environment
        still names the instance they belong to."""
        out: dict[int, str] = {}
        env_marker = f"RAY_TMPDIR={marker}".encode()
        for d in Path("/proc").iterdir():
            if not d.name.isdigit() or int(d.name) == os.getpid():
                continue
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                env = (d / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if marker in cmd or env_marker in env:
                out[int(d.name)] = cmd
        return out

    def describe(self, marker: str) -> list[str]:
        return [f"{pid}: {cmd[:160]}" for pid, cmd in self.find(marker).items()]

    def wait_gone(self, marker: str, timeout_s: float = 60.0) -> list[str]:
        """Ray's processes exit asynchronously after a shutdown: give them time, then report. (An
        actor notices its raylet is gone only at its next poll; on 2 cores at a load average of 10
        a Ray Data actor took longer than 15 s.)"""
        deadline = time.monotonic() + timeout_s
        while True:
            left = self.describe(marker)
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.3)

    def stop(self, marker: str) -> list[str]:
        """SIGTERM, then SIGKILL, every process of the instance; returns what is still alive."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.find(marker):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            time.sleep(1.0)
        return self.wait_gone(marker, timeout_s=5.0)


@pytest.fixture(scope="session")
def ray_procs() -> RayProcesses:
    return RayProcesses()
