"""``seal export RUN --log-to mlflow|wandb`` with the real packages (issue 17 item 4), read back.

Both trackers are in ``[dev]``, so these run wherever the test suite runs. Nothing leaves the machine:
MLflow logs to a ``file:`` store under tmp (MLflow 3 refuses one unless ``MLFLOW_ALLOW_FILE_STORE=true``,
which the test sets, as a user would) and is read back with ``MlflowClient``; W&B runs with
``WANDB_MODE=offline`` (no login, no network) and the offline run it leaves is read back from its
``files/`` folder and its ``run-ID.wandb`` record log (parsed with wandb's own protobuf classes).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# the test reads the same stats.json that seal logged: the expected numbers come from the file
EXPECTED_PARAMS = {"rm.pre": "length_tokens (pre)", "rm.post": "length_chars (post)"}
MUST_HAVE = (  # headline numbers an audit reader looks for first; each one must be logged
    "agreement.pre.agreement.rate",
    "agreement.post.agreement.rate",
    "resistance.rate",
    "regimes.shares.resisted_alignment.rate",
    "regimes.counts.got_aligned",
)
ARTIFACTS = {"stats.json", "report.html", "report.md"}


def seal(*args: str, env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess; ``env`` adds variables, and removes those given as None."""
    full = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "seal_audit", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in full.items() if v is not None},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, hh_path: Path) -> Path:
    """120 real hh-rlhf pairs, the length baselines as pre/post, offline features, analysis, report."""
    out = tmp_path_factory.mktemp("trackers") / "run"
    rms = ["--rm", "pre=length_tokens", "--rm", "post=length_chars", "--pre", "pre", "--post", "post"]
    for args in (
        ["score", str(hh_path), "--limit", "120", *rms, "--out", str(out)],
        ["label", str(out), "--featurizer", "offline"],
        ["analyze", str(out), "--n-bootstrap", "20"],
        ["report", str(out)],
    ):
        res = seal("-q", *args)
        assert res.returncode == 0, res.stderr
    assert {p.name for p in out.iterdir()} >= ARTIFACTS
    return out


def at_path(stats: dict[str, Any], dotted: str) -> Any:
    """stats.json's value at a logged metric name (``agreement.post.agreement.rate``)."""
    node: Any = stats
    for part in dotted.split("."):
        node = node[part]
    return node


def check_metrics(logged: dict[str, float], stats: dict[str, Any]) -> None:
    """Every logged metric is the stats.json number at its name; the headline ones are all there."""
    assert set(MUST_HAVE) <= set(logged), sorted(set(MUST_HAVE) - set(logged))
    for name, value in logged.items():
        assert value == pytest.approx(float(at_path(stats, name)), rel=1e-9, abs=1e-12), name


def one_json(stdout: str) -> dict[str, Any]:
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, stdout
    doc: dict[str, Any] = json.loads(lines[0])
    return doc


def test_mlflow_file_store_reads_back(run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow = pytest.importorskip("mlflow", reason="mlflow-skinny is in [dev]: pip install -e '.[dev]'")
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    res = seal(
        "export",
        str(run),
        "--log-to",
        "mlflow",
        "--json",
        env={"MLFLOW_TRACKING_URI": uri, "MLFLOW_ALLOW_FILE_STORE": "true"},
    )
    assert res.returncode == 0, res.stderr
    summary = one_json(res.stdout)
    assert summary["ok"] is True and summary["exit_code"] == 0
    (entry,) = summary["logged"]

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the reader opens the same file store
    client = MlflowClient(tracking_uri=uri)
    experiments = client.search_experiments()
    runs = [r for e in experiments for r in client.search_runs([e.experiment_id])]
    assert len(runs) == 1, runs
    logged = runs[0]
    assert logged.info.run_name == run.name
    assert logged.info.status == "FINISHED"
    assert logged.data.params == EXPECTED_PARAMS
    stats = json.loads((run / "stats.json").read_text(encoding="utf-8"))
    check_metrics(logged.data.metrics, stats)
    assert entry["metrics"] == len(logged.data.metrics) and entry["params"] == 2

    names = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert names == ARTIFACTS
    got = Path(client.download_artifacts(logged.info.run_id, "stats.json", str(tmp_path / "dl")))
    assert got.read_bytes() == (run / "stats.json").read_bytes()
    assert mlflow.__version__  # the real package, not a stand-in


def test_mlflow_refusal_is_one_line(run: Path, tmp_path: Path) -> None:
    """The real MLflow 3 refuses a file store without MLFLOW_ALLOW_FILE_STORE (a five-sentence
    MlflowException): one line naming the tracking URI, exit 2, no traceback."""
    mlflow = pytest.importorskip("mlflow", reason="mlflow-skinny is in [dev]: pip install -e '.[dev]'")
    if int(mlflow.__version__.split(".")[0]) < 3:
        pytest.skip(f"mlflow {mlflow.__version__} still accepts a file store without asking")
    uri = (tmp_path / "mlruns").as_uri()
    env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_ALLOW_FILE_STORE": "false"}
    res = seal("export", str(run), "--log-to", "mlflow", env=env)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: --log-to mlflow failed (tracking URI {uri}): MlflowException: "), last
    assert "maintenance mode" in last and len(last) < 300, last


def test_tracker_without_its_package_is_one_line(run: Path) -> None:
    """Absence by fault injection (``sys.modules[name] = None`` makes ``import name`` fail as if it
    were not installed), so this runs where the trackers are installed too."""
    for tracker in ("mlflow", "wandb"):
        code = (
            f"import runpy, sys; sys.modules[{tracker!r}] = None; "
            f"sys.argv = ['seal', 'export', {str(run)!r}, '--log-to', {tracker!r}]; "
            "runpy.run_module('seal_audit', run_name='__main__')"
        )
        res = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert res.returncode == 2, res.stderr
        assert res.stderr.strip().splitlines()[-1] == (
            f"error: --log-to {tracker} needs the {tracker} package: pip install {tracker}"
        )


def wandb_records(path: Path) -> Iterator[Any]:
    """The records of a ``run-ID.wandb`` file: a LevelDB-style log (7-byte ``:W&B`` header, 32 KiB
    blocks of chunks with a 7-byte header: CRC32, length, type FULL/FIRST/MIDDLE/LAST) of wandb's
    ``Record`` protobufs. wandb 0.31 ships no Python reader for it (its Go core reads it)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:7]
    block, pos, buf = 32768, 7, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, size, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pos += 7
        if size == 0 and kind == 0:  # zero padding to the end of the block
            pos += left - 7
            continue
        buf += data[pos : pos + size]
        pos += size
        if kind in (1, 4):  # FULL or LAST: a whole record
            record = pb.Record()
            record.ParseFromString(buf)
            buf = b""
            yield record
    assert buf == b"", "the record log ends inside a record"


def test_wandb_offline_reads_back(run: Path, tmp_path: Path) -> None:
    wandb = pytest.importorskip("wandb", reason="wandb is in [dev]: pip install -e '.[dev]'")
    home = tmp_path / "wandb-home"
    env: dict[str, str | None] = {
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(home),
        "WANDB_CONFIG_DIR": str(home / "config"),
        "WANDB_CACHE_DIR": str(home / "cache"),
        "WANDB_DATA_DIR": str(home / "data"),
        "WANDB_PROJECT": "seal-audit-test",
    }
    for key in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_ENTITY"):
        env[key] = None  # nothing of a developer's own W&B setup reaches the test
    home.mkdir()
    res = seal("-q", "export", str(run), "--log-to", "wandb", "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert "wandb:" not in res.stderr, res.stderr  # -q silences W&B's banner and summary
    (entry,) = one_json(res.stdout)["logged"]

    (offline,) = (home / "wandb").glob("offline-run-*")
    for name in ARTIFACTS:  # copies (snapshots), not links to the run directory
        saved = offline / "files" / name
        assert not saved.is_symlink(), name
        assert saved.read_bytes() == (run / name).read_bytes(), name
    (log,) = offline.glob("run-*.wandb")
    summary: dict[str, float] = {}
    config: dict[str, Any] = {}
    saved_files: set[str] = set()
    names: list[str] = []
    for record in wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            names.append(record.run.display_name)
            config.update({i.key: json.loads(i.value_json) for i in record.run.config.update})
            assert record.run.job_type == "seal-audit"
        elif kind == "summary":
            for item in record.summary.update:
                key = item.key or ".".join(item.nested_key)
                if not key.startswith("_"):
                    summary[key] = json.loads(item.value_json)
        elif kind == "files":
            saved_files.update(f.path for f in record.files.files)
    assert names == [run.name]
    assert {k: v for k, v in config.items() if not k.startswith("_")} == EXPECTED_PARAMS
    stats = json.loads((run / "stats.json").read_text(encoding="utf-8"))
    check_metrics(summary, stats)
    assert entry["metrics"] == len(summary)
    assert saved_files >= ARTIFACTS
    assert wandb.__version__
