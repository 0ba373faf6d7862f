"""A real multi-node Ray cluster (issue 18 item 5): ``ray start --head`` and ``ray start --address``
as separate processes, ``seal score`` / ``seal label --engine ray --address`` against it.

- scoring: the scores equal a local run's on both nodes (a tiny DeBERTa), and when the worker node
  is SIGKILLed while its actor scores a batch (a slow deterministic python RM, so the kill lands
  mid-batch);
- labeling: two ``seal label`` runs at once share the endpoint's limit (the fake LM server
  never sees more than ``--concurrency`` requests in flight) and no text is requested twice; and a
  run whose worker node is killed while it has a request in flight finishes with every text
  labeled once, never above ``--concurrency`` at the server.

Both nodes live on this machine (1 CPU each; actors and tasks take 0.5 CPU or less). Every Ray
process of the cluster is found by its temp dir and stopped in a ``finally`` -- never with
``ray stop``, which would stop other users' Ray sessions on the machine too.
"""

from __future__ import annotations

import collections
import contextlib
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from fakeserver.server import FakeOpenAIServer
from seal_audit.backends.reward import RMSpec
from seal_audit.data.records import PreferencePair
from seal_audit.score import score_run
from seal_audit.store import RunStore

if TYPE_CHECKING:
    from conftest import RayProcesses

pytest.importorskip("ray")
# two Ray nodes, torch-loading actors and node kills on 2 shared cores: above the suite's 600 s default
pytestmark = [pytest.mark.ray, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
BIN = Path(sys.executable).parent
SEAL, RAY = str(BIN / "seal"), str(BIN / "ray")
N_PAIRS = 30
KILL_PAIRS = 300
"""Pairs of the score run whose worker node is killed: 600 texts, three Ray batches of up to 256, so
both nodes' actors have a batch in hand when the kill comes."""
SLOW_RM_SECONDS = 0.03
"""Seconds per text of the slow RM: a 256-text batch takes about 8 s, so the worker node's actor
(which imports seal-audit after the head's has started) still finds a batch left. At 0.01 s the head's
actor once scored all three batches before the other was ready, on cores shared with the suite."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SLOW_RM = """
import hashlib, os, time

def reward(items):
    # fault injection for the node-kill tests: a deterministic reward that takes SECONDS per text,
    # and a note of which process scored how many texts (the test tells the nodes apart by pid)
    with open(os.path.join(os.environ["SEAL_TEST_MARKS"], str(os.getpid())), "a") as f:
        f.write(f"{len(items)}\\n")
    time.sleep(SECONDS * len(items))
    return [int(hashlib.sha256((c + "|" + r).encode()).hexdigest()[:8], 16) / 2**32 - len(r) / 1e4
            for c, r in items]
"""


def _session_of(pid: int) -> int | None:
    """The session id of a process (field 6 of /proc/PID/stat), or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[3])


class Cluster:
    """A head node (``ray start --head``) and one worker node (``ray start --address --block``, in a
    session of its own, so that its raylet and workers are the processes of that session)."""

    def __init__(self, temp: str, address: str, env: dict[str, str], common: list[str]) -> None:
        self.temp = temp
        self.address = address
        self.env = env
        self.common = common
        self.worker: subprocess.Popen[bytes] | None = None

    def alive_nodes(self) -> int:
        code = (
            f"import ray, json; ray.init(address={self.address!r}, log_to_driver=False); "
            "print(json.dumps(sum(n['Alive'] for n in ray.nodes())))"
        )
        r = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=self.env, timeout=120
        )
        return int(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else -1

    def start_worker_node(self) -> None:
        """(Re)start the worker node and wait until the cluster has two live nodes."""
        if self.worker is not None and self.worker.poll() is None:
            return
        self.worker = subprocess.Popen(
            [RAY, "start", f"--address={self.address}", "--block", *self.common],
            env=self.env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 180
        while self.alive_nodes() != 2:
            assert time.monotonic() < deadline, "the worker node did not join the head"
            time.sleep(2)

    def on_worker_node(self, pid: int) -> bool:
        return self.worker is not None and _session_of(pid) == self.worker.pid

    def worker_node_owns_a_connection(self, client_ports: set[int], server_port: int) -> bool:
        """Whether a process of the worker node holds the client end of a TCP connection to
        ``server_port`` from one of ``client_ports`` (read from /proc/net/tcp and /proc/PID/fd)."""
        inodes = set()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            f = line.split()
            local, remote = f[1].split(":"), f[2].split(":")
            if int(local[1], 16) in client_ports and int(remote[1], 16) == server_port:
                inodes.add(f"socket:[{f[9]}]")
        for d in Path("/proc").iterdir():
            if not inodes or not d.name.isdigit() or not self.on_worker_node(int(d.name)):
                continue
            with contextlib.suppress(OSError):
                if any(os.readlink(fd) in inodes for fd in (d / "fd").iterdir()):
                    return True
        return False

    def kill_worker_node(self) -> None:
        """SIGKILL the worker node: its ``ray start --block`` session (raylet, workers)."""
        assert self.worker is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(ray_procs: RayProcesses, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    temp = tempfile.mkdtemp(prefix="sc", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    rm_dir = tmp_path_factory.mktemp("slow-rm")
    (rm_dir / "slow_rm.py").write_text(SLOW_RM.replace("SECONDS", repr(SLOW_RM_SECONDS)))
    marks = tmp_path_factory.mktemp("marks")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        # a private test cluster on 127.0.0.1: Ray's token authentication (on by default for
        # `ray start --head` in recent versions) would need the token in every node and driver
        "RAY_AUTH_MODE": "disabled",
        "RAY_TMPDIR": temp,
        # the slow RM is importable by the driver and by every Ray worker of both nodes
        "PYTHONPATH": os.pathsep.join([str(rm_dir), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "SEAL_TEST_MARKS": str(marks),
    }
    common = ["--num-cpus=1", "--object-store-memory=150000000", f"--temp-dir={temp}"]
    c = Cluster(temp, f"127.0.0.1:{port}", env, common)
    try:
        head = subprocess.run(
            [RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", "--disable-usage-stats", *common],
            capture_output=True, text=True, env=env, timeout=240,
        )  # fmt: skip
        assert head.returncode == 0, head.stderr[-3000:]
        c.start_worker_node()
        yield c
    finally:
        if c.worker is not None and c.worker.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(c.worker.pid, signal.SIGKILL)
        left = ray_procs.stop(temp)
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"Ray processes left behind: {left}"


def test_two_concurrent_label_runs_share_the_endpoint_limit(
    cluster: Cluster, tmp_path: Path, pairs: list[PreferencePair]
) -> None:
    srv = FakeOpenAIServer(latency_s=0.15, slow_s=1.5).start()
    try:
        runs = []
        for i, part in enumerate((pairs[:10], pairs[10:20])):
            store = RunStore(tmp_path / f"run{i}")
            store.write_pairs(part)
            store.close()
            runs.append(tmp_path / f"run{i}")
        cmd = [
            "label", "--featurizer", "lm", "--model", "gpt-4o-mini", "--base-url", srv.base_url,
            "--concurrency", "2", "--backoff-base", "0.01", "--backoff-max", "0.05", "--yes", "--api-key-env", "none",
            "--engine", "ray", "--address", cluster.address, "--ray-workers", "3",
        ]  # fmt: skip
        procs = [
            subprocess.Popen(
                [SEAL, *cmd[:1], str(r), *cmd[1:]], env=cluster.env, stderr=subprocess.PIPE, text=True
            )
            for r in runs
        ]
        errs = [p.communicate(timeout=600)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for e in errs]
        # every text of both runs exactly once; besides them only the response-format probe (one
        # identical small request per run, made by each driver before it fans out)
        once = [h for h, n in srv.by_text.items() if n == 1]
        others = {h: n for h, n in srv.by_text.items() if n != 1}
        assert len(once) == 2 * 2 * 10 and sum(others.values()) <= 2 and len(others) <= 1, others
        assert srv.max_in_flight <= 2  # the limit held across the two runs together
        for r in runs:
            df = pd.read_parquet(r / "features.parquet")
            assert (df["status"] == "ok").all() and df["pair_id"].nunique() == 10
    finally:
        srv.stop()


def _seal_score(cluster: Cluster, run: Path, rm: str, n_pairs: int = N_PAIRS) -> str:
    r = subprocess.run(
        [SEAL, "score", str(DATA), "--limit", str(n_pairs), "--out", str(run), "--no-progress",
         "--engine", "ray", "--address", cluster.address, "--ray-actors", "2",
         "--ray-cpus-per-actor", "0.5", "--rm", rm],
        env=cluster.env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "joined the cluster" in r.stderr
    return r.stderr


def _sorted_scores(run: Path) -> pd.DataFrame:
    return pd.read_parquet(run / "scores.parquet").sort_values(["pair_id", "side"]).reset_index(drop=True)


def _kill_worker_node_when(
    cluster: Cluster, proc: subprocess.Popen[str], ready: Callable[[], bool], what: str
) -> None:
    """Poll until ``ready()`` says the worker node is in the middle of the run, then kill the node;
    a run that ends first fails the test (the kill would not have been mid-run)."""
    deadline = time.monotonic() + 600
    while not ready():
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    cluster.kill_worker_node()


def test_score_on_the_cluster_equals_local_on_two_nodes(
    cluster: Cluster, tmp_path: Path, pairs: list[PreferencePair], rm_spec: RMSpec
) -> None:
    """A real RM (a tiny DeBERTa built here): the two-node cluster's scores equal a local run's."""
    cluster.start_worker_node()
    local = RunStore(tmp_path / "local")
    local.write_pairs(pairs)
    score_run(local, [rm_spec])
    want = local.read_table("scores").sort_values(["pair_id", "side"]).reset_index(drop=True)
    run = tmp_path / "ray"
    _seal_score(cluster, run, f"tiny={rm_spec.spec}?max_length=96")
    got = _sorted_scores(run)
    assert list(got["pair_id"]) == list(want["pair_id"]) and list(got["side"]) == list(want["side"])
    assert np.max(np.abs(got["reward"].to_numpy() - want["reward"].to_numpy())) <= 1e-5


def _marks(cluster: Cluster) -> dict[int, int]:
    """pid -> texts that process started scoring (the slow RM's notes)."""
    out: dict[int, int] = {}
    for f in Path(cluster.env["SEAL_TEST_MARKS"]).iterdir():
        out[int(f.name)] = sum(int(line) for line in f.read_text().split())
    return out


def test_score_survives_losing_the_worker_node_mid_run(cluster: Cluster, tmp_path: Path) -> None:
    """``seal score --address``: the worker node is SIGKILLed while its actor is scoring a batch.
    The run finishes (Ray Data restarts the actor on the head and runs the lost batch again) and
    its scores equal a local run's, row for row and bit for bit."""
    cluster.start_worker_node()
    marks = Path(cluster.env["SEAL_TEST_MARKS"])
    rm = "slow=python:slow_rm:reward"
    local = subprocess.run(
        [SEAL, "score", str(DATA), "--limit", str(KILL_PAIRS), "--out", str(tmp_path / "local"),
         "--no-progress", "--rm", rm],
        env=cluster.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr[-3000:]
    n_distinct = (
        RunStore(tmp_path / "local", create=False)
        .manifest.stages["score"]
        .counters["rms"]["slow"]["n_computed"]
    )
    for f in marks.iterdir():
        f.unlink()

    run = tmp_path / "ray"
    err = tmp_path / "ray.stderr"
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            [SEAL, "score", str(DATA), "--limit", str(KILL_PAIRS), "--out", str(run), "--no-progress",
             "--engine", "ray", "--address", cluster.address, "--ray-actors", "2",
             "--ray-cpus-per-actor", "0.5", "--rm", rm],
            env=cluster.env, stderr=stderr, stdout=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            killed: set[int] = set()

            def worker_node_scoring() -> bool:
                killed.update(pid for pid in _marks(cluster) if cluster.on_worker_node(pid))
                return bool(killed)

            _kill_worker_node_when(cluster, proc, worker_node_scoring, "an actor on the worker node scored")
            proc.wait(timeout=900)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err.read_text()[-3000:]
    marked = _marks(cluster)
    survivors = sum(n for pid, n in marked.items() if pid not in killed)
    assert sum(marked[pid] for pid in killed) > 0  # the worker node had a batch in hand
    assert survivors >= n_distinct  # every text was scored on the surviving node, the lost batch again
    got, want = _sorted_scores(run), _sorted_scores(tmp_path / "local")
    pd.testing.assert_frame_equal(got[["pair_id", "side", "reward"]], want[["pair_id", "side", "reward"]])


def test_label_survives_losing_the_worker_node_mid_run(
    cluster: Cluster, tmp_path: Path, pairs: list[PreferencePair]
) -> None:
    """``seal label --address``: the worker node is SIGKILLed while one of its tasks holds a shard.

    Made deterministic by the fake LM server: it holds every reply until one of the held requests
    was sent by a process of the worker node (found by its socket), so the node dies with a request
    in flight. The replies are let go only after the driver has taken the shard for lost and a few
    seconds have passed in which a freed limiter slot would have let a new request in. Each result
    reaches the driver (and the cache) as it arrives, so the lost shard is sent again with only its
    texts that have no recorded label. Asserted:

    - exit 0, every text exactly one label row, all "ok" (a Ray loss is never a failed label);
    - the requests beyond one per text are at least 1 (the dead node's request in flight) and at
      most 2 -- the endpoint's concurrency, the most that can be in flight when the node dies;
    - never more than 2 in flight at the server, though the dead node's orphaned requests are
      still there: their limiter slots stay taken for one request timeout (``--timeout``);
    - the stage record and the summary line count the lost shard and the requests sent again."""
    cluster.start_worker_node()
    srv = FakeOpenAIServer(latency_s=0.4).start()
    replies = threading.Event()
    replies.set()  # cleared: every reply waits at the server
    held_ports: collections.Counter[int] = collections.Counter()
    """Client ports of the requests whose reply is held."""
    held_lock = threading.Lock()

    def hold_reply(body: object) -> None:
        if not replies.is_set():
            port = _client_port()
            with held_lock:
                held_ports[port] += 1
            replies.wait(120)
            with held_lock:
                held_ports[port] -= 1
        return None  # the usual answer

    def n_held() -> int:
        with held_lock:
            return sum(held_ports.values())

    def worker_node_request_held() -> bool:
        with held_lock:
            ports = {p for p, n in held_ports.items() if n}
        return cluster.worker_node_owns_a_connection(ports, srv.port)

    srv.answer_hook = hold_reply
    subset = pairs[:N_PAIRS]
    n_texts = 2 * len(subset)
    run = tmp_path / "run"
    store = RunStore(run)
    store.write_pairs(subset)
    store.close()
    err = tmp_path / "label.stderr"
    try:
        with err.open("w") as stderr:
            proc = subprocess.Popen(
                [SEAL, "label", str(run), "--featurizer", "lm", "--model", "gpt-4o-mini", "--base-url", srv.base_url,
                 "--concurrency", "2", "--timeout", "20", "--backoff-base", "0.01", "--backoff-max", "0.05", "--yes",
                 "--api-key-env", "none", "--engine", "ray", "--address", cluster.address, "--ray-workers", "3"],
                env=cluster.env, stderr=stderr, stdout=subprocess.DEVNULL, text=True,
            )  # fmt: skip
            try:

                def on_worker_node() -> bool:
                    return any(cluster.on_worker_node(pid) for pid in ray_procs_titled(cluster, "run_shard"))

                def worker_node_has_a_request_in_flight() -> bool:
                    """Mid-run (labels are being recorded), every reply held at the server, and one
                    of the held requests is the worker node's; else let the replies go, try again."""
                    if srv.chat_requests() < 6 or not on_worker_node():
                        return False
                    replies.clear()
                    settle = time.monotonic() + 30
                    while not (1 <= n_held() == srv.in_flight) and time.monotonic() < settle:
                        time.sleep(0.05)  # the requests in flight reach the hold
                    if 1 <= n_held() == srv.in_flight and worker_node_request_held():
                        return True
                    replies.set()
                    return False

                _kill_worker_node_when(
                    cluster, proc, worker_node_has_a_request_in_flight, "a request of the worker node"
                )
                sent_at_kill = srv.chat_requests()
                deadline = time.monotonic() + 120
                while "are sent again" not in err.read_text() and proc.poll() is None:
                    assert time.monotonic() < deadline, "the driver never took the shard for lost"
                    time.sleep(0.1)
                # Every slot is taken by a held request or by the dead node's (kept for --timeout): no
                # new request may reach the server now. Had the dead node's slots been freed at
                # once, the resent requests would arrive here beside the orphaned ones.
                quiet = time.monotonic() + 5
                while srv.chat_requests() == sent_at_kill and time.monotonic() < quiet:
                    time.sleep(0.05)
                replies.set()
                proc.wait(timeout=900)
            finally:
                replies.set()
                if proc.poll() is None:
                    proc.kill()
        log = err.read_text()
        assert proc.returncode == 0, log[-3000:]
        assert "are sent again" in log, log[-3000:]  # the lost shard was retried
        assert "shard task(s) lost" in log, log[-3000:]
        counts = dict(srv.by_text)
        assert len(counts) <= n_texts + 1  # the labeled texts and the probe
        assert 1 <= sum(n - 1 for n in counts.values()) <= 2, counts  # the requests in flight at the kill
        assert srv.max_in_flight <= 2  # the limit held, orphaned requests included
        df = pd.read_parquet(run / "features.parquet")
        assert (df["status"] == "ok").all()
        assert not df.duplicated(["pair_id", "side", "feature"]).any()
        assert df[["pair_id", "side"]].drop_duplicates().shape[0] == n_texts
        client = RunStore(run, create=False).manifest.stages["label"].counters["featurizers"]["lm"]["client"]
        assert client["ray_lost_shards"] >= 1 and client["ray_resent"] >= 1, client
        assert n_texts <= client["requests"] <= sum(counts.values()), (client, counts)  # the shards' too
    finally:
        srv.stop()


def _client_port() -> int:
    """The client port of the request the calling fake-server handler thread is answering."""
    frame = sys._getframe(1)
    while frame is not None:
        handler = frame.f_locals.get("self")
        if isinstance(handler, http.server.BaseHTTPRequestHandler):
            return int(handler.client_address[1])
        frame = frame.f_back  # type: ignore[assignment]
    raise AssertionError("not called from a request handler")


def ray_procs_titled(cluster: Cluster, title: str) -> list[int]:
    """Ray workers of this cluster whose process title names ``title`` (``ray::run_shard`` while a
    shard task runs; an idle worker is ``ray::IDLE``)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith(f"ray::{title}"):
                out.append(int(d.name))
    return out
