"""`seal simulate` then `seal analyze` (table mode and run-directory mode) through the click group."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from seal_audit._cli import cli
from seal_audit.data.records import RMRecord


def _simulate(tmp_path: Path) -> Path:
    out = tmp_path / "sim"
    res = CliRunner().invoke(cli, ["simulate", "--out", str(out), "--pairs", "600", "--seed", "2"])
    assert res.exit_code == 0, res.output
    for name in ("pairs", "scores", "features", "rewrites"):
        assert (out / f"{name}.parquet").exists()
    truth = json.loads((out / "truth.json").read_text())
    assert truth["imprint"]["post"]["is_harmless"] == 2.1
    return out


def test_simulate_then_analyze_tables(tmp_path: Path) -> None:
    sim = _simulate(tmp_path)
    out = tmp_path / "analysis"
    args = [
        "analyze",
        "--pairs",
        str(sim / "pairs.parquet"),
        "--scores",
        str(sim / "scores.parquet"),
        "--features",
        str(sim / "features.parquet"),
        "--rewrites",
        str(sim / "rewrites.parquet"),
        "--specs",
        str(sim / "features.json"),
        "--pre",
        "pre",
        "--post",
        "post",
        "--out",
        str(out),
        "--n-bootstrap",
        "100",
        "--csv",
    ]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["inputs"]["n_pairs"] == 600
    assert (
        stats["imprint"]["pooled"]["post"]["regression"]["cov_type"] == "CR2"
    )  # 600 pairs < CR2_MAX_CLUSTERS (issue 15)
    assert (out / "imprint.parquet").exists() and (out / "imprint.csv").exists()
    assert "pair_id" in pd.read_parquet(out / "pair_diagnostics.parquet").columns
    first = (out / "stats.json").read_bytes()
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert (out / "stats.json").read_bytes() == first


def test_analyze_csv_inputs_with_inferred_specs_and_roles(tmp_path: Path) -> None:
    sim = _simulate(tmp_path)
    for name in ("pairs", "scores", "features"):
        pd.read_parquet(sim / f"{name}.parquet").to_csv(tmp_path / f"{name}.csv", index=False)
    out = tmp_path / "a2"
    res = CliRunner().invoke(
        cli,
        [
            "analyze",
            "--pairs",
            str(tmp_path / "pairs.csv"),
            "--scores",
            str(tmp_path / "scores.csv"),
            "--features",
            str(tmp_path / "features.csv"),
            "--roles",
            "is_harmless=target,is_helpful=target",
            "--post",
            "post",
            "--out",
            str(out),
            "--n-bootstrap",
            "0",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    stats = json.loads((out / "stats.json").read_text())
    roles = {f["name"]: f["role"] for f in stats["inputs"]["features"]}
    assert roles["is_harmless"] == "target" and roles["is_eloquent"] == "spoiler"
    kinds = {f["name"]: f["kind"] for f in stats["inputs"]["features"]}
    assert kinds["sentiment"] == "ordinal" and kinds["is_harmless"] == "binary"
    assert stats["regimes"] == {"status": "skipped", "reason": "no pre-D RM", "features": []}


def test_analyze_run_directory(tmp_path: Path) -> None:
    from seal_audit.store import RunStore

    sim = _simulate(tmp_path)
    run = tmp_path / "run"
    store = RunStore(run)
    for name in ("pairs", "scores", "features", "rewrites"):
        store.write_table(name, pd.read_parquet(sim / f"{name}.parquet"))
    store.write_json("feature_specs", json.loads((sim / "features.json").read_text()))
    store.record_rms(
        {
            "pre": RMRecord(spec="python:x:pre", role="pre"),
            "post": RMRecord(spec="python:x:post", role="post"),
        }
    )
    res = CliRunner().invoke(cli, ["analyze", str(run), "--n-bootstrap", "50", "--quiet"])
    assert res.exit_code == 0, res.output
    stats = json.loads((run / "stats.json").read_text())
    assert stats["inputs"]["pre"] == "pre" and stats["inputs"]["post"] == "post"
    assert (run / "analysis" / "imprint.parquet").exists()


def test_analyze_errors_are_one_line(tmp_path: Path) -> None:
    sim = _simulate(tmp_path)
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "seal_audit",
            "analyze",
            "--pairs",
            str(sim / "pairs.parquet"),
            "--scores",
            str(sim / "scores.parquet"),
            "--post",
            "nope",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "nope" in proc.stderr


def test_table_mode_writes_a_manifest_of_its_inputs(tmp_path: Path) -> None:
    """Before: `seal analyze --pairs ... --out DIR` wrote stats.json and tables but nothing said
    which files (which bytes) and options they came from. DIR/manifest.json now does."""
    import hashlib

    hh = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf"
    run = tmp_path / "run"
    scored = CliRunner().invoke(
        cli,
        ["score", str(hh / "harmless-base-test.jsonl.gz"), "--limit", "300", "--out", str(run),
         "--no-progress", "--rm", "a=length_chars", "--rm", "b=length_tokens"],
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    out = tmp_path / "ana"
    args = ["analyze", "--pairs", str(run / "pairs.parquet"), "--scores", str(run / "scores.parquet"),
            "--pre", "a", "--post", "b", "--out", str(out), "--n-bootstrap", "0", "--quiet"]  # fmt: skip
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [(i["path"], i["format"]) for i in manifest["inputs"]] == [
        (str(run / "pairs.parquet"), "pairs table"),
        (str(run / "scores.parquet"), "scores table"),
    ]
    for i in manifest["inputs"]:
        assert i["sha256"] == hashlib.sha256(Path(i["path"]).read_bytes()).hexdigest()
    stage = manifest["stages"]["analyze"]
    assert stage["verb"] == "seal analyze" and stage["status"] == "complete"
    assert stage["options"]["overrides"] == {"n_bootstrap": 0}
    assert stage["options"]["analysis"]["n_bootstrap"] == 0
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stage["options"]["analysis"] == stats["options"]
    assert (stage["counters"]["pre"], stage["counters"]["post"]) == ("a", "b")
    assert set(stage["counters"]["tables"]) == {p.stem for p in out.glob("*.parquet")}


def test_analyze_run_directory_refuses_table_mode_flags(tmp_path: Path) -> None:
    """`seal analyze RUN --out DIR` used to ignore --out (stats.json went to RUN, DIR was never made)."""
    import subprocess
    import sys

    from seal_audit.store import RunStore

    sim = _simulate(tmp_path)
    run = tmp_path / "run"
    store = RunStore(run)
    for name in ("pairs", "scores"):
        store.write_table(name, pd.read_parquet(sim / f"{name}.parquet"))
    store.record_rms({"post": RMRecord(spec="python:x:post", role="post")})
    out = tmp_path / "elsewhere"
    for flags, named in (
        (["--out", str(out)], "--out"),
        (["--rewrites", str(sim / "rewrites.parquet")], "--rewrites"),
    ):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "seal_audit",
                "analyze",
                str(run),
                *flags,
                "--n-bootstrap",
                "50",
                "--json",
            ],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 2, proc.stderr
        body = json.loads(proc.stdout)
        assert body["ok"] is False and named in body["error"] and "table mode" in body["error"]
        assert "Traceback" not in proc.stderr
    assert not out.exists() and not (run / "stats.json").exists()


def test_strict_with_json_still_prints_the_json_object(tmp_path: Path) -> None:
    """`seal analyze RUN --strict --json` exiting 2 (an analysis not computed) printed nothing on stdout."""
    import subprocess
    import sys

    hh = (
        Path(__file__).resolve().parents[1].parent
        / "shared"
        / "data"
        / "hh-rlhf"
        / "harmless-base-test.jsonl.gz"
    )
    run = tmp_path / "run"
    rms = ["--rm", "pre=length_tokens", "--rm", "post=length_chars", "--pre", "pre", "--post", "post"]
    for args in (
        ["score", str(hh), "--limit", "3", *rms, "--out", str(run), "-q"],
        ["label", str(run), "--featurizer", "offline", "-q"],
        ["analyze", str(run), "--n-bootstrap", "20", "--strict", "--json"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "seal_audit", *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
    assert proc.returncode == 2, proc.stderr
    body = json.loads(proc.stdout)  # exactly one JSON object
    assert body["verb"] == "analyze" and body["exit_code"] == 2 and body["ok"] is False
    assert body["not_computed"] and body["stats"].endswith("stats.json")
