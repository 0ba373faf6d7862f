"""Group clustering through the CLI on real data: an RM-Bench-style multi-variant file built from the
real hh-rlhf texts → `seal score` (length baselines) → `seal label --featurizer offline` →
`seal analyze`: stats.json names the clustering used and the number of groups; `--cluster pair`
restores pair clustering. Also: `hf:./relative` data paths in a TOML config resolve beside the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from seal_audit._cli import cli
from seal_audit.config import load_config, parse_config
from seal_audit.data import PreferencePair


def _invoke(*args: str) -> str:
    res = CliRunner().invoke(cli, list(args))
    assert res.exit_code == 0, res.output
    return res.output


def _stats(run: Path) -> dict[str, Any]:
    return dict(json.loads((run / "stats.json").read_text()))


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory: pytest.TempPathFactory, hh_pairs: list[PreferencePair]) -> Path:
    """60 multi-variant records (3 chosen × 3 rejected real hh-rlhf replies under one real prompt)."""
    tmp = tmp_path_factory.mktemp("cluster")
    rows = []
    for k in range(60):
        grp = hh_pairs[3 * k : 3 * k + 3]
        rows.append(
            {
                "id": f"rmb{k}",
                "prompt": grp[0].context,
                "chosen": [p.chosen for p in grp],
                "rejected": [p.rejected for p in grp],
            }
        )
    src = tmp / "rmbench.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    run = tmp / "run"
    _invoke(
        "score", str(src), "--rm", "len=length_chars", "--rm", "words=length_tokens",
        "--post", "len", "--baseline", "words", "--out", str(run),
    )  # fmt: skip
    _invoke("label", str(run), "--featurizer", "offline")
    return run


def test_analyze_clusters_by_group_on_real_multi_variant_data(labelled_run: Path) -> None:
    out = _invoke("analyze", str(labelled_run), "--n-bootstrap", "200")
    stats = _stats(labelled_run)
    assert stats["options"]["cluster"] == "group"
    inputs = stats["inputs"]
    assert (inputs["n_pairs"], inputs["n_groups"], inputs["largest_group"]) == (540, 60, 9)
    assert "clustered by group (60 groups of 540 pairs, largest 9)" in out
    pooled = stats["imprint"]["pooled"]["post"]["regression"]
    assert pooled["n_clusters"] == 60 and pooled["notes"][0].startswith(
        "CR2 with Bell-McCaffrey df: 60 clusters"
    )
    # a feature set in a single group (has_code) has leverage 1 there: CR1 instead, said so
    assert pooled["cov_type"] == "CR2" or "CR1 cluster SEs used instead" in pooled["notes"][-1]
    agree = stats["agreement"]["len"]["agreement"]
    assert agree["design_effect"] > 1
    assert stats["calibration"]["len"]["n_clusters"] == 60
    group_width = agree["ci_high"] - agree["ci_low"]

    _invoke("analyze", str(labelled_run), "--n-bootstrap", "200", "--cluster", "pair")
    pair = _stats(labelled_run)
    assert pair["options"]["cluster"] == "pair" and pair["inputs"]["n_groups"] == 60
    used = pair["exclusions"]["imprint:pooled:post"]["n_used"]
    assert pair["imprint"]["pooled"]["post"]["regression"]["n_clusters"] == used > 500
    p_agree = pair["agreement"]["len"]["agreement"]
    assert p_agree["design_effect"] == 1 and p_agree["rate"] == agree["rate"]
    assert p_agree["ci_high"] - p_agree["ci_low"] < group_width
    # the flag is recorded: a plain re-run keeps pair clustering, as for every analysis option
    _invoke("analyze", str(labelled_run), "--n-bootstrap", "200")
    assert _stats(labelled_run)["options"]["cluster"] == "pair"


def test_cluster_is_a_toml_key() -> None:
    cfg = parse_config({"data": [{"path": "x.jsonl"}], "analysis": {"cluster": "pair"}})
    assert cfg.analysis.cluster == "pair"
    assert parse_config({"data": [{"path": "x.jsonl"}]}).analysis.cluster == "auto"
    with pytest.raises(Exception, match=r"analysis\.cluster"):
        parse_config({"data": [{"path": "x.jsonl"}], "analysis": {"cluster": "prompt"}})


def test_hf_relative_paths_resolve_beside_the_config(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "data" / "saved").mkdir(parents=True)
    (conf / "plain").mkdir()
    cfg_path = conf / "audit.toml"
    cfg_path.write_text(
        "\n".join(
            [
                "[[data]]",
                'path = "hf:./data/saved"',
                "[[data]]",
                'path = "hf:../conf/data/saved"',
                "[[data]]",
                'path = "hf:plain"',
                "[[data]]",
                'path = "hf:Anthropic/hh-rlhf"',
                "[[data]]",
                'path = "rel.jsonl"',
            ]
        ),
        encoding="utf-8",
    )
    cfg = load_config(cfg_path)
    saved = str((conf / "data" / "saved").resolve())
    assert [d.path for d in cfg.data] == [
        f"hf:{saved}",
        f"hf:{saved}",
        f"hf:{(conf / 'plain').resolve()}",
        "hf:Anthropic/hh-rlhf",  # a hub id: no such folder beside the config
        str((conf / "rel.jsonl").resolve()),
    ]
