"""`seal run`: end to end through every stage, killed at several points and resumed, and the
Python API. Uses the real hh-rlhf sample, torch-free n-gram RMs trained in the run, the offline
featurizers and controlled rewrites (drift gate on the real MiniLM)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import seal_audit

CONFIG = """
[run]
out = "{out}"
seed = 3
holdout = 0.3

[[data]]
path = "{data}"
sample = 90
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
n_bootstrap = 200
"""


def _config(tmp: Path, name: str, hh: Path, **subs: str) -> Path:
    text = CONFIG.format(out=tmp / name, data=hh)
    for k, v in subs.items():
        text = text.replace(k, v)
    path = tmp / f"{name}.toml"
    path.write_text(text)
    return path


def _run(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seal_audit", "run", str(cfg)], capture_output=True, text=True, timeout=600
    )


def _kill_when(cfg: Path, marker: str, sig: int) -> bool:
    """Start a run, wait until its log shows ``marker`` (a stage starting), then send ``sig``. False
    when the run had already finished by then: on a loaded machine this reader can be descheduled
    while a fast stage (offline labels) and everything after it completes into the pipe buffer."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "seal_audit", "run", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        if marker in line:
            proc.send_signal(sig)
            break
        assert time.monotonic() < deadline
    proc.wait(timeout=120)
    return proc.returncode != 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, hh_path: Path) -> tuple[Path, bytes]:
    tmp = tmp_path_factory.mktemp("ref")
    cfg = _config(tmp, "ref", hh_path)
    out = _run(cfg)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "alignment resistance (post-D RM" in out.stdout and "report:" in out.stdout
    return tmp / "ref", (tmp / "ref" / "stats.json").read_bytes()


def test_uninterrupted_run_produces_everything(reference: tuple[Path, bytes]) -> None:
    run_dir, stats = reference
    doc = json.loads(stats)
    assert doc["inputs"]["pre"] == "pre" and doc["inputs"]["post"] == "post"
    assert doc["inputs"]["baselines"] == ["length_tokens"]
    assert set(doc["robustness"]) >= {"add_positive", "add_filler"}
    for name in (
        "pairs.parquet",
        "pairs_a.parquet",
        "scores.parquet",
        "features.parquet",
        "rewrites.parquet",
        "report.html",
        "report.md",
        "models/pre/config.json",
        "models/post/config.json",
    ):
        assert (run_dir / name).exists(), name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["rms"]["length_tokens"]["role"] == "baseline"
    assert manifest["rms"]["post"]["in_sample"] is True and manifest["rms"]["pre"]["in_sample"] is False
    assert manifest["stages"]["train"]["counters"]["models"]["post"]["n_pairs"] == 90


@pytest.mark.parametrize(
    ("marker", "sig"),
    [
        ("[score]", signal.SIGKILL),
        ("[label]", signal.SIGINT),
        ("[rewrite+score+label]", signal.SIGKILL),
        ("[analyze]", signal.SIGKILL),
    ],
)
def test_killed_run_resumes_to_the_same_stats(
    tmp_path: Path, hh_path: Path, reference: tuple[Path, bytes], marker: str, sig: int
) -> None:
    for attempt in range(3):  # a fresh run each time, until one is really interrupted at the marker
        (tmp_path / str(attempt)).mkdir()
        cfg = _config(tmp_path / str(attempt), "run", hh_path)
        if _kill_when(cfg, marker, sig):
            break
    else:
        pytest.fail(f"three runs finished before they could be interrupted at {marker}")
    out = _run(cfg)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / str(attempt) / "run" / "stats.json").read_bytes() == reference[1]


def test_run_killed_between_two_trained_models_is_not_a_complete_train_stage(
    tmp_path: Path, hh_path: Path, reference: tuple[Path, bytes]
) -> None:
    """Killed while the second [[train_rm]] trains: the manifest says the train stage is partial and
    names what is missing (it said "complete" with only pre-D trained); the resumed run completes it."""
    for attempt in range(3):  # until a run is really killed before the post-D model was written
        (tmp_path / str(attempt)).mkdir()
        cfg = _config(tmp_path / str(attempt), "run", hh_path)
        run_dir = tmp_path / str(attempt) / "run"
        if (
            _kill_when(cfg, "[train:post]", signal.SIGKILL)
            and not (run_dir / "models/post/config.json").exists()
        ):
            break
    else:
        pytest.fail("three runs trained the post-D model before they could be killed")
    train = json.loads((run_dir / "manifest.json").read_text())["stages"]["train"]
    assert train["status"] == "partial" and "post" in train["message"], train
    assert set(train["counters"]["models"]) == {"pre"}
    out = _run(cfg)
    assert out.returncode == 0, out.stderr[-3000:]
    train = json.loads((run_dir / "manifest.json").read_text())["stages"]["train"]
    assert train["status"] == "complete" and not train["message"], train
    assert set(train["counters"]["models"]) == {"pre", "post"}
    assert (run_dir / "stats.json").read_bytes() == reference[1]


def test_changing_one_setting_recomputes_only_what_depends_on_it(tmp_path: Path, hh_path: Path) -> None:
    cfg = _config(tmp_path, "run", hh_path)
    assert _run(cfg).returncode == 0
    cfg2 = _config(tmp_path, "run", hh_path, **{"n_bootstrap = 200": "n_bootstrap = 300"})
    out = _run(cfg2)
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert all(info["n_computed"] == 0 for info in m["stages"]["score"]["counters"]["rms"].values())
    assert json.loads((tmp_path / "run" / "stats.json").read_text())["options"]["n_bootstrap"] == 300
    assert "[train:" not in out.stderr  # models not refitted


def test_python_api(tmp_path: Path, hh_path: Path, reference: tuple[Path, bytes]) -> None:
    result = seal_audit.run(_config(tmp_path, "api", hh_path))
    assert result.stats is not None and result.stats.to_json().encode() == reference[1]
    assert result.report_path is not None and result.report_path.exists()
    diag = result.to_pandas()
    assert len(diag) == result.stats.inputs.n_pairs and "pair_id" in diag
    assert isinstance(result.stats.imprint, dict) and "pooled" in result.stats.imprint
    assert len(result.to_pandas("agreement")) == 3
    os.environ.pop("SEAL_UNUSED", None)


def test_failed_labeling_stops_before_the_analysis_unless_allowed(tmp_path: Path, hh_path: Path) -> None:
    """An LM-labeler whose endpoint is down: ``seal run`` exits 3 naming the URL and the featurizer,
    writes no stats.json; with --allow-partial it goes on to the analysis and says so."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    lm = f'featurizers = ["lm", "length"]\n\n[labels.lm]\nmodel = "m"\nbase_url = "{url}"\napi_key_env = "none"\n'
    cfg = _config(
        tmp_path,
        "run",
        hh_path,
        **{
            'featurizers = ["sentiment", "refusal", "length", "hedging"]\n': lm,
            'transforms = ["add_positive", "add_filler"]': "transforms = []",
        },
    )
    out = _run(cfg)
    assert out.returncode == 3, out.stderr[-3000:]
    err = " ".join(out.stderr.split())
    assert "label stage did not do its work: lm:" in err and f"endpoint unreachable: {url}" in err
    assert "stopped before the analysis" in err
    assert not (tmp_path / "run" / "stats.json").exists()
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert m["stages"]["label"]["status"] == "failed"
    allowed = subprocess.run(
        [sys.executable, "-m", "seal_audit", "run", str(cfg), "--allow-partial"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "going on (--allow-partial)" in " ".join(allowed.stderr.split()), allowed.stderr[-3000:]
    assert "[analyze]" in allowed.stderr
