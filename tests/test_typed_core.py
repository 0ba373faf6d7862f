"""The typed core: one options model per concern, explicit roles, a typed manifest, typed results read
back, per-analysis failure, and `seal analyze RUN` reproducing `seal run` — on real hh-rlhf data,
through the real CLI, with RM names chosen to trip any name-based guess."""

from __future__ import annotations

import html as html_lib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import seal_audit
from seal_audit._cli import cli
from seal_audit.config import AnalysisOptions, RewriteOptions, RMOptions, parse_config
from seal_audit.data.errors import ConfigError

SEAL = [sys.executable, "-m", "seal_audit"]

# The post-D RM is called "length_ctrl" and a baseline is called "post": any guess from a name is wrong.
CONFIG = """
[run]
out = "{out}"
seed = 5
report = true

[[data]]
path = "{data}"
limit = 60

[[rms]]
name = "pre_rm"
role = "pre"
spec = "length_chars"

[[rms]]
name = "length_ctrl"
role = "post"
spec = "length_tokens"

[[rms]]
name = "post"
role = "baseline"
spec = "length_chars"

[labels]
featurizers = ["offline"]

[analysis]
alpha = 0.1
n_bootstrap = 50
correction = "holm"
"""


def _seal(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SEAL, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory: pytest.TempPathFactory, hh_path: Path) -> Path:
    tmp = tmp_path_factory.mktemp("odd")
    cfg = tmp / "seal.toml"
    cfg.write_text(CONFIG.format(out=tmp / "run", data=hh_path))
    r = _seal("run", str(cfg), "--quiet", cwd=tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp / "run"


def test_run_then_analyze_then_report_is_byte_identical(odd_run: Path, tmp_path: Path) -> None:
    stats0 = (odd_run / "stats.json").read_bytes()
    md0 = (odd_run / "report.md").read_text(encoding="utf-8")
    doc = json.loads(stats0)
    assert doc["options"]["alpha"] == 0.1 and doc["options"]["n_bootstrap"] == 50
    assert doc["options"]["correction"] == "holm" and doc["options"]["drop_constant"] is True
    r = _seal("analyze", str(odd_run), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (odd_run / "stats.json").read_bytes() == stats0
    r = _seal("report", str(odd_run), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (odd_run / "report.md").read_text(encoding="utf-8") == md0


def test_roles_are_the_recorded_ones_never_the_names(odd_run: Path) -> None:
    doc = json.loads((odd_run / "stats.json").read_text())
    assert doc["inputs"]["post"] == "length_ctrl" and doc["inputs"]["pre"] == "pre_rm"
    assert doc["inputs"]["baselines"] == ["post"]
    assert doc["agreement"]["post"]["is_baseline"] is True
    assert doc["agreement"]["length_ctrl"]["is_baseline"] is False
    assert "length_ctrl" in doc["calibration"] and "post" not in doc["calibration"]
    md = (odd_run / "report.md").read_text(encoding="utf-8")
    assert "agreement of post-D RM 'length_ctrl'" in md
    assert "agreement of baseline RM 'post'" in md
    assert "resistance (post-D RM 'length_ctrl'" in md
    html = (odd_run / "report.html").read_text(encoding="utf-8")
    assert "agreement of post-D RM 'length_ctrl'" in html_lib.unescape(html)
    run = seal_audit.open_run(odd_run)
    assert {n: r.role for n, r in run.manifest.rms.items()} == {
        "pre_rm": "pre",
        "length_ctrl": "post",
        "post": "baseline",
    }
    # the terminal headline says the same as report.md
    from seal_audit.report._svg import md_text  # report.md writes them as literal Markdown text

    lines = run.headline().lines()
    assert all(f"- {md_text(line)}" in md for line in lines)


def test_analyze_flags_override_and_the_override_is_recorded(odd_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(odd_run), str(copy)], check=True)
    r = _seal("analyze", str(copy), "--alpha", "0.2", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads((copy / "stats.json").read_text())
    assert doc["options"]["alpha"] == 0.2 and doc["options"]["n_bootstrap"] == 50  # the rest as recorded
    stage = seal_audit.open_run(copy).manifest.stages["analyze"]
    assert stage.options["overrides"] == {"alpha": 0.2} and stage.verb == "seal analyze"
    # roles can be changed explicitly, and are recorded
    r = _seal("analyze", str(copy), "--pre", "post", "--baseline", "pre_rm", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    roles = {n: rec.role for n, rec in seal_audit.open_run(copy).manifest.rms.items()}
    assert roles == {"pre_rm": "baseline", "length_ctrl": "post", "post": "pre"}


def test_manifest_has_one_shape_per_stage(odd_run: Path) -> None:
    m = json.loads((odd_run / "manifest.json").read_text())
    assert m["schema_version"] == 2 and "settings" not in m
    for name in ("load", "score", "label", "analyze", "report"):
        st = m["stages"][name]
        assert set(st) == {
            "status",
            "options",
            "counters",
            "message",
            "settings_hash",
            "verb",
            "finished",
            "seconds",
        }
        assert st["status"] == "complete", name
    assert m["stages"]["load"]["options"]["sources"][0]["limit"] == 60
    assert {"sentiment", "refusal", "formatting"} <= set(m["stages"]["label"]["options"]["featurizers"])
    assert AnalysisOptions.model_validate(m["stages"]["analyze"]["options"]["analysis"]).alpha == 0.1


def test_python_api_is_typed(odd_run: Path) -> None:
    run = seal_audit.open_run(odd_run)
    from seal_audit.stats import AnalysisResult, RateEstimate

    assert isinstance(run.stats, AnalysisResult)
    assert isinstance(run.stats.resistance, RateEstimate) and 0 < run.stats.resistance.rate < 1
    assert run.stats.to_json() == (odd_run / "stats.json").read_text(encoding="utf-8")
    assert len(run.to_pandas("pair_diagnostics")) == 60 and len(run.to_pandas("pairs")) == 60
    with pytest.raises(seal_audit.SealError, match="no analysis table 'nope'"):
        run.to_pandas("nope")
    public = dir(seal_audit)
    for name in ("run", "open_run", "Run", "AuditConfig", "AnalysisOptions", "RMOptions", "SealError"):
        assert name in public and getattr(seal_audit, name) is not None
    assert "annotations" not in public and "TYPE_CHECKING" not in public


def test_sixty_pair_offline_smoke_run_writes_stats_and_report(tmp_path: Path, hh_path: Path) -> None:
    """The smoke run of the issue: a constant feature (has_code) and a collinear trio at n = 60 used to
    stop everything; now each analysis stands on its own and the run writes stats.json and the report."""
    run = tmp_path / "smoke"
    r = _seal(
        "score", str(hh_path), "--limit", "60", "--out", str(run), "--rm", "a=length_chars",
        "--rm", "b=length_tokens", "--pre", "a", "--post", "b", "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert _seal("label", str(run), "--featurizer", "offline", cwd=tmp_path).returncode == 0
    r = _seal("analyze", str(run), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    doc = json.loads((run / "stats.json").read_text())
    failed = {k: v for k, v in doc["status"].items() if v["status"] == "failed"}
    warning = [line for line in r.stderr.splitlines() if line.startswith("warning: not computed:")]
    assert len(warning) == 1 and all(k in warning[0] for k in failed)
    assert doc["resistance"]["n"] == 60 and doc["status"]["regimes"]["status"] == "ok"
    has_code = doc["status"]["imprint.pooled.post"]
    assert has_code["status"] == "ok" and "has_code" in has_code["features"]  # dropped here only
    r = _seal("analyze", str(run), "--strict", "--quiet", cwd=tmp_path)
    assert r.returncode == (2 if failed else 0)
    assert _seal("report", str(run), cwd=tmp_path).returncode == 0
    assert (run / "report.html").stat().st_size > 10_000


def test_bad_reward_cells_name_file_row_and_column(tmp_path: Path) -> None:
    pairs = pd.DataFrame({"pair_id": ["p1", "p2", "p3"]})
    scores = pd.DataFrame(
        {
            "pair_id": ["p1", "p1", "p2", "p2", "p3", "p3"],
            "side": ["chosen", "rejected"] * 3,
            "rm": ["post"] * 6,
            "reward": ["1.0", "0.5", "np.float64(1.5)", "0.2", "", "nan"],
        }
    )
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    scores.to_csv(tmp_path / "scores.csv", index=False)
    args = ["analyze", "--pairs", str(tmp_path / "pairs.csv"), "--scores", str(tmp_path / "scores.csv"),
            "--post", "post", "--out", str(tmp_path / "out"), "--quiet"]  # fmt: skip
    res = _seal(*args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "scores.csv" in err and "record 3" in err and "reward" in err and "np.float64(1.5)" in err
    scores.loc[2, "reward"] = "inf"
    scores.to_csv(tmp_path / "scores.csv", index=False)
    res = _seal(*args, cwd=tmp_path)
    assert res.returncode == 2 and "not a finite number" in res.stderr
    # empty and NaN are the spellings of "missing": counted, not errors
    scores.loc[2, "reward"] = ""
    scores.to_csv(tmp_path / "scores.csv", index=False)
    res = _seal(*args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert doc["agreement"]["post"]["n"] == 1 and doc["exclusions"]["agreement:post"]["n_excluded"] == 2


def test_disjoint_pre_and_post_pairs_fail_the_shift_alone(tmp_path: Path) -> None:
    from seal_audit.stats import AnalysisInputs, analyze

    pairs = pd.DataFrame({"pair_id": [f"p{i}" for i in range(40)]})
    rows = []
    for i in range(40):
        rm = "post" if i < 20 else "pre"
        rows += [(f"p{i}", "chosen", rm, float(i % 3)), (f"p{i}", "rejected", rm, float(i % 2))]
    scores = pd.DataFrame(rows, columns=["pair_id", "side", "rm", "reward"])
    res = analyze(
        AnalysisInputs(pairs=pairs, scores=scores, post="post", pre="pre"), AnalysisOptions(n_bootstrap=0)
    )
    doc = json.loads(res.to_json())
    assert (
        doc["reward_shift"]["status"] == "failed" and "both pre-D and post-D" in doc["reward_shift"]["reason"]
    )
    assert doc["resistance"]["n"] == 20  # the other analyses are still there


# --- one options model, two surfaces -------------------------------------------------------------------


def _cli_params(command: str) -> dict[str, object]:
    import click

    cmd = cli.get_command(click.Context(cli), command)
    assert cmd is not None
    return {p.name: p for p in cmd.params}  # type: ignore[misc]


@pytest.mark.parametrize(
    ("model", "command", "renamed"),
    [
        (AnalysisOptions, "analyze", {}),
        (RMOptions, "score", {"format": "--input-format"}),
        (RewriteOptions, "rewrite", {}),
    ],
)
def test_every_field_is_a_flag_and_a_toml_key_with_one_default(
    model: type, command: str, renamed: dict[str, str]
) -> None:
    params = _cli_params(command)
    by_flag = {o: p for p in params.values() for o in getattr(p, "opts", [])}
    for name, info in model.model_fields.items():  # type: ignore[attr-defined]
        flag = renamed.get(name, "--" + name.replace("_", "-"))
        assert flag in by_flag, f"{model.__name__}.{name} has no flag {flag} on seal {command}"
        p = by_flag[flag]
        default = info.get_default(call_default_factory=True)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        assert f"[default: {shown}]" in (p.help or ""), (name, p.help)  # type: ignore[attr-defined]
    # the TOML surface: every key is accepted, with the same default as the model
    section = parse_config(
        {"data": [{"path": "x.jsonl"}], "rms": [{"name": "r", "spec": "length_chars"}], "rewrite": {}}
    )
    if model is AnalysisOptions:
        assert section.analysis == AnalysisOptions()
    elif model is RMOptions:
        assert section.rms[0].options() == RMOptions()
    else:
        assert section.rewrite is not None
        assert (
            RewriteOptions.model_validate(
                section.rewrite.model_dump(include=set(RewriteOptions.model_fields))
            )
            == RewriteOptions()
        )


def test_cli_and_toml_give_the_same_options(tmp_path: Path, hh_path: Path) -> None:
    from seal_audit._cli._common import model_overrides

    flags = {
        "alpha": "0.2",
        "estimators": "fe",
        "gamma_features": "",
        "drop_constant": False,
        "n_bootstrap": 7,
    }
    from_cli = AnalysisOptions.model_validate(model_overrides(AnalysisOptions, dict(flags)))
    toml = parse_config(
        {
            "data": [{"path": "x.jsonl"}],
            "analysis": {
                "alpha": 0.2,
                "estimators": ["fe"],
                "gamma_features": [],
                "drop_constant": False,
                "n_bootstrap": 7,
            },
        }
    )
    assert from_cli == toml.analysis


def test_renamed_and_unknown_keys_are_named() -> None:
    with pytest.raises(ConfigError, match=r"rms\[0\].*'label_index' was renamed to 'logit_index'"):
        parse_config(
            {"data": [{"path": "x"}], "rms": [{"name": "r", "spec": "length_chars", "label_index": 1}]}
        )
    with pytest.raises(ConfigError, match=r"analysis.alphaa"):
        parse_config({"data": [{"path": "x"}], "analysis": {"alphaa": 0.1}})
    with pytest.raises(ConfigError, match="AnalysisOptions: alpha"):
        AnalysisOptions(alpha=2.0)
