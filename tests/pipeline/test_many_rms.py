"""Issue 20: many RMs side by side, through the real CLI on real hh-rlhf pairs.

Five RMs of three kinds (a MiniLM embedding RM trained on a planted signal, a hashed n-gram RM, a
tiny DeBERTa classifier built from a config, two length baselines), with names that trip naive
parsing (':' '|' '/' non-ASCII, a baseline called "post"), and a sixth RM whose directory does not
exist: its absence is reported and the others are kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rm_fixtures import _one_torch_thread, hh_pairs, planted_embed_rm, tiny_rm  # noqa: F401
from seal_audit.report._svg import md_code

SEAL = [sys.executable, "-m", "seal_audit"]
PRE, POST, NGRAM, LEN, LEN2, BROKEN = "mini LM é", "tiny/hf", "ngram|pipe", "len:chars", "post", "broken RM"

CONFIG = """
[run]
out = "{out}"
seed = 3

[[data]]
path = "{data}"
limit = 120

[[rms]]
name = "{PRE}"
role = "pre"
spec = "{embed}"

[[rms]]
name = "{POST}"
role = "post"
spec = "{tiny}"

[[rms]]
name = "{NGRAM}"
role = "extra"
spec = "{ngram}"

[[rms]]
name = "{BROKEN}"
role = "extra"
spec = "{missing}"

[[rms]]
name = "{LEN}"
role = "baseline"
spec = "length_chars"

[[rms]]
name = "{LEN2}"
role = "baseline"
spec = "length_tokens"

[[compare]]
a = "{LEN}"
b = "{NGRAM}"

[labels]
featurizers = ["offline"]

[analysis]
n_bootstrap = 50
"""


def _seal(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SEAL, *args], capture_output=True, text=True, cwd=cwd, timeout=900)


@pytest.fixture(scope="module")
def many(
    tmp_path_factory: pytest.TempPathFactory,
    hh_path: Path,
    hh_pairs: list,  # noqa: F811
    tiny_rm: Path,  # noqa: F811
    planted_embed_rm: tuple[Path, object],  # noqa: F811
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    from seal_audit.backends.reward.testing import planted_pairs
    from seal_audit.backends.reward.train import TrainConfig, train_reward_model

    tmp = tmp_path_factory.mktemp("many")
    ngram = tmp / "ngram-rm"
    train_reward_model(planted_pairs(hh_pairs[:200]), ngram, TrainConfig(kind="ngram", seed=2))
    # a folder with no model in it: the spec parses (so `seal run` starts), the load fails; a path that
    # does not exist is a usage error before any stage (exit 2), not a failed load
    (tmp / "empty-rm").mkdir()
    cfg = tmp / "seal.toml"
    cfg.write_text(
        CONFIG.format(
            out=tmp / "run",
            data=hh_path,
            embed=planted_embed_rm[0],
            tiny=tiny_rm,
            ngram=ngram,
            missing=tmp / "empty-rm",
            **globals(),
        )
    )
    first = _seal("run", str(cfg), "--quiet", cwd=tmp)
    second = _seal("run", str(cfg), "--quiet", "--allow-partial", cwd=tmp)
    assert second.returncode == 0, second.stderr[-3000:]
    return tmp / "run", first


def _stats(run: Path) -> dict:
    return json.loads((run / "stats.json").read_text(encoding="utf-8"))


def test_an_rm_that_fails_to_load_is_reported_and_the_others_are_kept(many: tuple) -> None:
    run, first = many
    assert first.returncode == 3, first.stderr[-2000:]  # the stage did not do all its work
    assert BROKEN in first.stderr and "empty-rm" in first.stderr
    scored = set(pd.read_parquet(run / "scores.parquet")["rm"].astype(str))
    assert scored == {PRE, POST, NGRAM, LEN, LEN2}
    st = _stats(run)
    assert BROKEN in st["inputs"]["absent_rms"] and "empty-rm" in st["inputs"]["absent_rms"][BROKEN]
    rows = {r["rm"]: r for r in st["leaderboard"]["rows"]}
    assert rows[BROKEN]["status"] == "absent" and rows[POST]["status"] == "ok"
    md = (run / "report.md").read_text(encoding="utf-8")
    assert "absent: " in md and BROKEN in md


def test_every_rm_has_every_measure_keyed_by_name(many: tuple) -> None:
    st = _stats(many[0])
    assert set(st["per_rm"]) == {PRE, POST, NGRAM, LEN, LEN2}
    for rm in (PRE, POST, NGRAM):
        m = st["per_rm"][rm]
        assert m["agreement"]["rm"] == rm and m["calibration"]["rm"] == rm
        for est in ("pooled", "fe"):
            imp = m["imprint"][est]
            assert imp["rm"] == rm and imp["regression"]["correction"], (rm, est)
            assert st["status"][f"per_rm.{rm}.imprint.{est}"]["status"] == "ok"
        pooled = m["imprint"]["pooled"]
        assert pooled["regression"]["n_clusters"] == pooled["exclusions"]["n_used"]  # pair-clustered SEs
        assert "lpm" in m["misalignment"], rm
        assert isinstance(m["resistance_by_feature"], list) and m["resistance_by_feature"], rm
        assert f"per_rm.{rm}.robustness" in st["status"]
    for rm in (LEN, LEN2):  # baselines: agreement and calibration, the rest skipped with the reason
        m = st["per_rm"][rm]
        assert m["calibration"]["rm"] == rm and 0 <= m["calibration"]["ece"] <= 1
        assert m["imprint"]["status"] == "skipped" and "baseline" in m["imprint"]["reason"]
    # the old keys are the same numbers as the per-RM ones (one computation, two addresses)
    assert st["per_rm"][POST]["imprint"]["pooled"] == st["imprint"]["pooled"]["post"]
    assert st["per_rm"][PRE]["imprint"]["fe"]["regression"] == st["imprint"]["fe"]["pre"]["regression"]
    assert st["per_rm"][POST]["misalignment"] == st["misalignment"]
    assert st["multiple_testing"]["family"] == "per regression"
    assert st["leaderboard"]["correction_family"] == "per regression"


def test_comparisons_default_toml_and_cli(many: tuple, tmp_path: Path) -> None:
    run = many[0]
    st = _stats(run)
    assert st["inputs"]["comparisons"] == [f"{PRE}:{POST}", f"{LEN}:{NGRAM}"]  # pre:post first
    default = st["comparisons"][f"{PRE}:{POST}"]
    assert default["regimes"] == st["regimes"]
    assert default["imprint_difference"]["pooled"] == st["imprint"]["pooled"]["post_minus_pre"]
    r = _seal("analyze", str(run), "--compare", f"{NGRAM}:{PRE}", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    st = _stats(run)
    assert list(st["comparisons"]) == [f"{PRE}:{POST}", f"{NGRAM}:{PRE}"]
    c = st["comparisons"][f"{NGRAM}:{PRE}"]
    assert (c["a"], c["b"]) == (NGRAM, PRE)
    counts = c["regimes"]["counts"]
    assert sum(counts.values()) == st["per_rm"][PRE]["agreement"]["n"]
    # stayed aligned + got aligned = pairs where B (the post-D place) agrees
    assert counts["stayed_aligned"] + counts["got_aligned"] == st["per_rm"][PRE]["agreement"]["n_agree"]
    assert {(m["a"], m["b"]) for m in c["mcnemar"]} >= {tuple(sorted((NGRAM, PRE)))}
    assert c["reward_shift"]["overall"]["n"] == sum(counts.values())
    # OLS is linear in y: the imprint of r_B − r_A is the difference of the two imprints
    diff = {x["term"]: x["estimate"] for x in c["imprint_difference"]["pooled"]["regression"]["coefficients"]}
    a = {
        x["term"]: x["estimate"]
        for x in st["per_rm"][NGRAM]["imprint"]["pooled"]["regression"]["coefficients"]
    }
    b = {
        x["term"]: x["estimate"] for x in st["per_rm"][PRE]["imprint"]["pooled"]["regression"]["coefficients"]
    }
    assert diff and all(diff[t] == pytest.approx(b[t] - a[t], rel=1e-6, abs=1e-9) for t in diff)
    bad = _seal("analyze", str(run), "--compare", "a:b:c", cwd=tmp_path)
    assert bad.returncode != 0 and "[[compare]]" in bad.stderr


def test_leaderboard_in_report_md_html_and_stats(many: tuple, tmp_path: Path) -> None:
    run = many[0]
    r = _seal("report", str(run), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    st = _stats(run)
    md = (run / "report.md").read_text(encoding="utf-8")
    html = (run / "report.html").read_text(encoding="utf-8")
    section = md.split("## Leaderboard", 1)[1].split("\n## ", 1)[0]
    table = [ln for ln in section.splitlines() if ln.startswith("| ")][1:]
    assert len(table) == len(st["leaderboard"]["rows"]) == 6
    assert "ngram\\|pipe" in section  # a '|' in a name does not break the Markdown table
    agree = [r_ for r_ in st["leaderboard"]["rows"] if r_["status"] == "ok"]
    best = max(agree, key=lambda x: x["agreement"]["rate"])
    first = md_code(best["rm"]).replace("|", chr(92) + "|")
    assert table[0].startswith(f"| {first} |")  # sorted by agreement, the name as one code span
    assert "per regression" in section
    assert '<section id="leaderboard">' in html
    board = html[html.index('<section id="leaderboard">') :]
    board = board[: board.index("</section>")]
    # every cell of the 5 scored RMs is a door (RM, agreement, ECE, Brier, length: the pairs it gets
    # wrong), in each of the 5 sorted copies; the absent RM's row has none
    assert board.count('class="door"') >= 5 * 5 * 5
    assert "#explorer?agree=" in board and "absent" in board
    assert "Imprints of every RM" in html


def test_compare_is_one_model_for_toml_and_cli() -> None:
    from seal_audit._cli import cli
    from seal_audit.config import CompareSpec, parse_config
    from seal_audit.data.errors import ConfigError

    base = {"data": [{"path": "x.jsonl"}], "rms": [{"name": n, "spec": "length_chars"} for n in ("A", "B c")]}
    toml = parse_config({**base, "compare": [{"a": "A", "b": "B c"}]}).compare
    assert toml == [CompareSpec.parse("A:B c")]
    for name in CompareSpec.model_fields:  # every field is a TOML key and a part of --compare A:B
        assert getattr(toml[0], name) == getattr(CompareSpec.parse("A:B c"), name)
    import click

    cmd = cli.get_command(click.Context(cli), "analyze")
    assert cmd is not None
    flag = next(p for p in cmd.params if p.name == "compare")
    assert flag.multiple and "[[compare]]" in (flag.help or "")
    with pytest.raises(ConfigError, match=r"compare\[0\].*unknown RM"):
        parse_config({**base, "compare": [{"a": "A", "b": "nope"}]})
    with pytest.raises(ConfigError, match="same RM"):
        parse_config({**base, "compare": [{"a": "A", "b": "A"}]})
    with pytest.raises(ConfigError, match=r"compare\[0\]\.c"):
        parse_config({**base, "compare": [{"a": "A", "b": "B c", "c": 1}]})
