"""``seal export`` (issue 17 item 4) on a real hh-rlhf run: scored by the length baselines as pre/post,
labeled offline, analyzed; exported to Feedback Forensics, RewardBench, CSV and Parquet.

The Feedback Forensics document is checked against what the published reader needs
(``get_votes_dict_from_annotated_pairs_json`` in rdnfn/feedback-forensics, ``feedback_forensics/data/
loader.py``; the writer ``create_annotated_pairs`` in rdnfn/icai, ``inverse_cai/data/
annotated_pairs_format.py``, FORMAT_VERSION "2.0"): :func:`ff_votes_frame` below does what that
reader does with the JSON, step by step, and fails where it would fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

# ../shared beside the checkout, wherever it is (a missing split fails in the tests, never skips)
HH = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
)


def seal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seal_audit", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "run"
    rms = ["--rm", "pre=length_tokens", "--rm", "post=length_chars", "--pre", "pre", "--post", "post"]
    for args in (
        ["score", str(HH), "--limit", "120", *rms, "--out", str(out)],
        ["label", str(out), "--featurizer", "offline"],
        ["analyze", str(out), "--n-bootstrap", "20", "-q"],
    ):
        res = seal(*args)
        assert res.returncode == 0, res.stderr
    return out


def ff_votes_frame(doc: dict[str, Any]) -> pd.DataFrame:
    """What the Feedback Forensics reader builds from an AnnotatedPairs file (format 2.x)."""
    version = doc.get("metadata", {}).get("version", "1.0")
    assert version.split(".")[0] == "2", version
    rows = []
    for c in doc["comparisons"]:
        row: dict[str, Any] = {"comparison_id": c["id"]}
        for key, value in c["response_a"].items():
            row[f"{key}_a"] = value
        for key, value in c["response_b"].items():
            row[f"{key}_b"] = value
        if c.get("prompt"):
            row["prompt"] = c["prompt"]
        for annotator, annotation in c.get("annotations", {}).items():
            assert "pref" in annotation, (c["id"], annotator)
            pref = annotation["pref"]
            assert pref in ("a", "b", None), pref
            if pref is None:
                assert annotation.get("no_pref_reason"), (c["id"], annotator)
            row[annotator] = f"text_{pref}" if pref in ("a", "b") else pref
        for key, value in c.get("metadata", {}).items():
            assert isinstance(value, str), (key, value)  # as the published writer stores them
            row[key] = value
        rows.append(row)
    df = pd.DataFrame(rows)
    for annotator, info in doc["annotators"].items():
        df[annotator] = df[annotator].astype("category")  # KeyError for an annotator without votes
        assert {"name", "description", "type"} <= set(info)
    assert doc["metadata"]["default_annotator"] in doc["annotators"]
    keys = set(doc["metadata"]["available_metadata_keys_per_comparison"])
    assert {k for c in doc["comparisons"] for k in c.get("metadata", {})} <= keys
    assert df["comparison_id"].is_unique
    return df


def test_feedback_forensics(run: Path) -> None:
    res = seal("export", str(run), "--to", "feedback-forensics", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    doc = json.loads(Path(summary["files"][0]).read_text(encoding="utf-8"))
    df = ff_votes_frame(doc)
    assert len(df) == summary["comparisons"] == 120
    names = {info["name"]: aid for aid, info in doc["annotators"].items()}
    assert {"human label", "RM pre", "RM post"} <= set(names)
    human = names["human label"]
    pairs = pd.read_parquet(run / "pairs.parquet").set_index("pair_id")
    scores = pd.read_parquet(run / "scores.parquet")
    scores = scores[scores["variant"] == "original"].set_index(["pair_id", "rm", "side"])["reward"]
    a_share = (df[human] == "text_a").mean()
    assert 0.3 < a_share < 0.7  # a/b drawn per pair, not "a = chosen"
    for c in doc["comparisons"]:
        pid = c["metadata"]["seal_pair_id"]
        chosen_is = c["metadata"]["seal_chosen_is"]
        other = "b" if chosen_is == "a" else "a"
        assert c["annotations"][human]["pref"] == chosen_is
        assert c[f"response_{chosen_is}"]["text"] == pairs.at[pid, "chosen"]
        assert c[f"response_{other}"]["text"] == pairs.at[pid, "rejected"]
        assert c["prompt"] == pairs.at[pid, "context"]
        post = c["annotations"][names["RM post"]]
        ch, rj = scores[(pid, "post", "chosen")], scores[(pid, "post", "rejected")]
        want = None if ch == rj else (chosen_is if ch > rj else other)
        assert post["pref"] == want
        # features as metadata, per response
        assert float(c["metadata"][f"length_chars_{chosen_is}"]) >= 0
    assert "regime" in doc["metadata"]["available_metadata_keys_per_comparison"]


def test_feedback_forensics_without_lm_labels_has_no_lm_annotator(run: Path) -> None:
    """The run is labeled offline only: no pair has a γ, so no 'LM-labeler' that never votes."""
    res = seal("export", str(run), "--to", "feedback-forensics", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    doc = json.loads(Path(summary["files"][0]).read_text(encoding="utf-8"))
    assert "LM-labeler" not in {info["name"] for info in doc["annotators"].values()}
    assert "gamma" not in doc["metadata"]["available_metadata_keys_per_comparison"]
    assert all("gamma" not in c["metadata"] for c in doc["comparisons"])


def test_rewardbench_matches_the_analysis(run: Path) -> None:
    res = seal("export", str(run), "--to", "rewardbench", "--subset", "hh-harmless", "--json")
    assert res.returncode == 0, res.stderr
    out = Path(json.loads(res.stdout)["out"])
    agreement = pd.read_parquet(run / "analysis" / "agreement.parquet").set_index("rm")["agreement"]
    for rm in ("pre", "post"):
        records = json.loads((out / f"{rm}.json").read_text(encoding="utf-8"))
        summary = json.loads((out / f"{rm}.summary.json").read_text(encoding="utf-8"))
        assert len(records) == 120
        assert set(records[0]) == {"id", "subset", "results", "scores_chosen", "scores_rejected"}
        assert all(r["results"] == int(r["scores_chosen"] > r["scores_rejected"]) for r in records)
        assert summary["hh-harmless"] == pytest.approx(agreement[rm])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_bundles_read_back(run: Path, fmt: str, tmp_path: Path) -> None:
    res = seal("export", str(run), "--to", fmt, "--out", str(tmp_path / fmt), "--json")
    assert res.returncode == 0, res.stderr
    files = [Path(f) for f in json.loads(res.stdout)["files"]]
    names = {f.relative_to(tmp_path / fmt).as_posix() for f in files}
    assert {
        f"pairs.{fmt}",
        f"scores.{fmt}",
        f"features.{fmt}",
        f"analysis/imprint.{fmt}",
        "stats.json",
    } <= names
    for f in files:
        if f.suffix == ".json":
            assert f.read_bytes() == (run / "stats.json").read_bytes()
            continue
        rel = f.relative_to(tmp_path / fmt).with_suffix(".parquet")
        want = pd.read_parquet(run / rel)
        got = pd.read_csv(f) if fmt == "csv" else pd.read_parquet(f)
        assert got.shape == want.shape and list(got.columns) == list(want.columns), f
    if fmt == "parquet":
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / fmt / "scores.parquet"), pd.read_parquet(run / "scores.parquet")
        )


def test_export_needs_scores(tmp_path: Path) -> None:
    res = seal("export", str(tmp_path), "--to", "csv")
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_rewardbench_file_names_never_collide() -> None:
    """Free-text RM names that slug alike ('a b', 'a_b', 'a?b') or differ only in case each get a file."""
    from seal_audit.export.formats import rm_file_stems

    names = ["a b", "a_b", "a?b", "post ✓", "ρ-模型", "Post", "post", "pre", "../x"]
    stems = rm_file_stems(names)
    assert len({s.lower() for s in stems.values()}) == len(names), stems
    assert all(s.isascii() and "/" not in s and not s.startswith(".") for s in stems.values()), stems
    assert stems["pre"] == "pre"  # a plain, unique name keeps its own stem
    assert stems == rm_file_stems(list(reversed(names)))  # the stem of a name does not depend on order
