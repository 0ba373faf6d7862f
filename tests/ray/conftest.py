"""What the Ray tests share: the one Ray clean-up helper (find a Ray instance's processes by its
temp dir, stop them, say what is left), the environment of a CLI that starts its own local Ray
instance, and the module's hh-rlhf pairs with a tiny DeBERTa RM built on their texts.

Every Ray test starts its Ray processes with a private temp dir (``_temp_dir=`` / ``--temp-dir=``),
which appears in the command line of each of them (gcs_server, raylet, workers); the tests stop
exactly those in a ``finally`` -- never with ``ray stop``, which would stop other users' Ray
sessions on the machine too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from seal_audit.backends.reward import RMOptions, RMSpec
from seal_audit.data.records import PreferencePair

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"


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


@dataclass(frozen=True)
class LocalRay:
    """A private temp dir for the local Ray instance a CLI command starts, and the command's env."""

    temp: str
    env: dict[str, str]


@pytest.fixture
def local_ray(ray_procs: RayProcesses) -> Iterator[LocalRay]:
    """The environment of a ``seal ... --engine ray`` subprocess that starts (and stops) its own
    local Ray instance; whatever of that instance is still running afterwards is stopped here."""
    temp = tempfile.mkdtemp(prefix="sr", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "RAY_TMPDIR": temp,
        "SEAL_RAY_OBJECT_STORE_MB": "200",
    }
    try:
        yield LocalRay(temp, env)
    finally:
        ray_procs.stop(temp)  # only if the command failed to: it stops its own instance
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def pairs(request: pytest.FixtureRequest) -> list[PreferencePair]:
    """The first ``N_PAIRS`` pairs of the real hh-rlhf test split (each module sets ``N_PAIRS``)."""
    from seal_audit.sources import load_pairs

    return load_pairs(DATA, limit=int(request.module.N_PAIRS))


@pytest.fixture(scope="module")
def rm_spec(tmp_path_factory: pytest.TempPathFactory, pairs: list[PreferencePair]) -> RMSpec:
    """A tiny random DeBERTa RM whose vocabulary is built on the module's pairs."""
    from seal_audit.backends.reward.testing import build_random_rm

    texts = [p.transcript(s) for p in pairs for s in ("chosen", "rejected")]
    path = build_random_rm(tmp_path_factory.mktemp("tiny-deberta"), texts, vocab_size=600)
    return RMSpec(name="tiny", spec=str(path), options=RMOptions(max_length=96))
