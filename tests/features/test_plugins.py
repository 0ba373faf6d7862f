"""Plug-in featurizers (issue 17 item 3): a real entry point of a tiny installed distribution
(a ``.dist-info`` on a temporary path, found by importlib.metadata), and ``python:module:Attr``,
from the CLI and from a TOML config, on real hh-rlhf pairs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

# ../shared beside the checkout, wherever it is (a missing split fails in the tests, never skips)
HH = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
)
SRC = Path(__file__).resolve().parents[2] / "src"

PLUGIN = '''
"""The README's worked example: exclamation marks per response."""
from seal_audit import FeatureSpec
from seal_audit.features import FunctionFeaturizer


class Exclaim(FunctionFeaturizer):
    def __init__(self) -> None:
        spec = FeatureSpec(name="exclamations", kind="numeric", role="spoiler",
                           definition="number of '!' in the response", source="plugin")
        super().__init__("exclaim", (spec,), lambda text: {"exclamations": float(text.count("!"))})


def _words_unless_question(text: str) -> dict[str, float]:
    if "?" in text:  # fault injection: fails on the real replies that ask something
        raise ValueError("cannot read a question")
    return {"words_x": float(len(text.split()))}


class Flaky(FunctionFeaturizer):
    def __init__(self) -> None:
        spec = FeatureSpec(name="words_x", kind="numeric", role="spoiler",
                           definition="words, failing on questions", source="plugin")
        super().__init__("flaky", (spec,), _words_unless_question)


class NotAFeaturizer:
    name = "broken"


def clashing() -> FunctionFeaturizer:
    spec = FeatureSpec(name="x", kind="numeric", role="spoiler", definition="x", source="plugin")
    return FunctionFeaturizer("length", (spec,), lambda text: {"x": 0.0})
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a module and the dist-info of a distribution that registers it."""
    root = tmp_path_factory.mktemp("plugin")
    (root / "seal_exclaim.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    info = root / "seal_exclaim-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: seal-exclaim\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[seal_audit.featurizers]\nexclaim = seal_exclaim:Exclaim\nbroken = seal_exclaim:NotAFeaturizer\n",
        encoding="utf-8",
    )
    return root


def seal(*args: str, plugin_path: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{plugin_path}", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "seal_audit", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture()
def run_dir(tmp_path: Path, plugin_path: Path) -> Path:
    out = tmp_path / "run"
    res = seal(
        "score",
        str(HH),
        "--limit",
        "50",
        "--rm",
        "a=length_chars",
        "--out",
        str(out),
        plugin_path=plugin_path,
    )
    assert res.returncode == 0, res.stderr
    return out


def _exclaim_values(run: Path) -> pd.DataFrame:
    df = pd.read_parquet(run / "features.parquet")
    return df[df["featurizer"] == "exclaim"]


def test_entry_point_from_the_cli(run_dir: Path, plugin_path: Path) -> None:
    listed = seal("label", "--list", "--json", str(run_dir), plugin_path=plugin_path)
    assert listed.returncode == 0, listed.stderr
    featurizers = json.loads(listed.stdout)["featurizers"]
    assert featurizers["exclaim"] == "plug-in seal_exclaim:Exclaim (from seal-exclaim 0.1)"
    res = seal(
        "label", str(run_dir), "--featurizer", "exclaim", "--featurizer", "length", plugin_path=plugin_path
    )
    assert res.returncode == 0, res.stderr
    got = _exclaim_values(run_dir)
    assert len(got) == 100 and set(got["feature"]) == {"exclamations"} and (got["status"] == "ok").all()
    # the values are the plug-in's, computed on the real responses
    from seal_audit.store import RunStore

    pairs = {p.pair_id: p for p in RunStore(run_dir, create=False).read_pairs()}
    from seal_audit.features.base import LabelItem

    for row in got.itertuples():
        p = pairs[row.pair_id]
        text = LabelItem(p.pair_id, row.side, p.context, p.chosen if row.side == "chosen" else p.rejected)
        assert row.value == text.final_response.count("!")
    assert got["value"].sum() > 0  # hh-rlhf replies do use '!'
    specs = json.loads((run_dir / "feature_specs.json").read_text(encoding="utf-8"))
    flat = json.dumps(specs)
    assert "exclamations" in flat


def test_python_spec_from_the_cli_and_toml(run_dir: Path, plugin_path: Path, tmp_path: Path) -> None:
    res = seal("label", str(run_dir), "--featurizer", "python:seal_exclaim:Exclaim", plugin_path=plugin_path)
    assert res.returncode == 0, res.stderr
    assert len(_exclaim_values(run_dir)) == 100
    # the TOML surface: [labels] featurizers builds the same featurizer
    toml = tmp_path / "seal.toml"
    toml.write_text(
        f'[[data]]\npath = "{HH}"\n[[rms]]\nname = "a"\nspec = "length_chars"\n'
        '[labels]\nfeaturizers = ["python:seal_exclaim:Exclaim", "exclaim"]\n',
        encoding="utf-8",
    )
    probe = (
        "from seal_audit.config import load_config\n"
        "from seal_audit.pipeline import featurizers_for\n"
        f"print([f.name for f in featurizers_for(load_config({str(toml)!r}))])\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{plugin_path}"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['exclaim', 'exclaim']"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "broken",
            "featurizer 'broken' (entry point seal_exclaim:NotAFeaturizer): NotAFeaturizer lacks specs, label",
        ),
        ("python:no_such_module_h17:X", "cannot import module 'no_such_module_h17'"),
        ("python:seal_exclaim:Nope", "module 'seal_exclaim' has no attribute 'Nope'"),
        ("python:seal_exclaim", "expected python:MODULE:ATTR"),
        ("python:seal_exclaim:clashing", "calls itself 'length', the name of a built-in featurizer"),
        ("nonexistent", "unknown featurizer 'nonexistent'"),
    ],
)
def test_bad_plugins_are_one_line_errors(run_dir: Path, plugin_path: Path, name: str, message: str) -> None:
    res = seal("label", str(run_dir), "--featurizer", name, plugin_path=plugin_path)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and message in res.stderr, res.stderr


def test_an_offline_featurizer_that_fails_on_texts_is_a_partial_stage(
    run_dir: Path, plugin_path: Path
) -> None:
    """Before: texts an offline featurizer failed on were rows with status 'failed', but the stage
    said 'complete' and `seal label` exited 0. Now it is the LM-labeler's rule and option:
    more failed texts than --max-failed (default none) is a partial stage and exit 3."""
    res = seal(
        "label", str(run_dir), "--featurizer", "python:seal_exclaim:Flaky", "--featurizer", "length",
        plugin_path=plugin_path,
    )  # fmt: skip
    assert res.returncode == 3, res.stderr
    df = pd.read_parquet(run_dir / "features.parquet")
    flaky = df[df["featurizer"] == "flaky"]
    failed = flaky[flaky["status"] == "failed"]
    assert len(flaky) == 100 and 0 < len(failed) < 100  # every text has its row, the failed ones too
    assert set(failed["error"]) == {"ValueError: cannot read a question"}
    assert (df[df["featurizer"] == "length"]["status"] == "ok").all()
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    assert f"flaky: {len(failed)} of 100 texts failed (partial)" in errors[0]
    stage = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))["stages"]["label"]
    assert stage["status"] == "partial" and stage["message"].startswith("flaky:"), stage
    assert stage["counters"]["featurizers"]["flaky"]["failed"] == len(failed)
    assert stage["counters"]["featurizers"]["length"]["status"] == "complete"
    # the LM-labeler's --max-failed, given without --model, is the offline featurizers' allowance
    allowed = seal(
        "label", str(run_dir), "--featurizer", "python:seal_exclaim:Flaky", "--max-failed", "0.9",
        plugin_path=plugin_path,
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    stage = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))["stages"]["label"]
    assert stage["status"] == "complete" and stage["message"] is None, stage
    bad = seal(
        "label", str(run_dir), "--featurizer", "length", "--max-failed", "2.5", plugin_path=plugin_path
    )
    assert bad.returncode == 2 and "--max-failed 2.5: a whole count" in bad.stderr, bad.stderr
