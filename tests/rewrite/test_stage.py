"""The REWRITE stage through the store: seeded sampling, the rewrites table, the drift gate with the
real MiniLM, what gets re-scored, and an end-to-end robustness run through the CLI and seal analyze."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from seal_audit.data.errors import ConfigError
from seal_audit.rewrite import DriftGate, rewrite_run, rewritten_items, select_pairs
from seal_audit.rewrite.stage import COLUMNS


def test_sample_is_seeded_nested_and_order_free(hh_sample: list) -> None:  # type: ignore[type-arg]
    a = select_pairs(hh_sample, 10, seed=1)
    assert len(a) == 10 and a == select_pairs(hh_sample, 10, seed=1)
    assert {p.pair_id for p in a} <= {p.pair_id for p in select_pairs(hh_sample, 20, seed=1)}
    assert {p.pair_id for p in a} == {p.pair_id for p in select_pairs(list(reversed(hh_sample)), 10, seed=1)}
    assert {p.pair_id for p in a} != {p.pair_id for p in select_pairs(hh_sample, 10, seed=2)}
    assert len(select_pairs(hh_sample, 0.1, seed=0)) == 12
    assert len(select_pairs(hh_sample, None, seed=0)) == len(hh_sample)
    assert len(select_pairs(hh_sample, 10_000, seed=0)) == len(hh_sample)
    for bad in (0, -1, 2.5, "x"):
        with pytest.raises(ConfigError):
            select_pairs(hh_sample, bad, seed=0)  # type: ignore[arg-type]


def test_lm_transform_without_endpoint_is_a_config_error(run_store: Any) -> None:
    with pytest.raises(ConfigError, match="LM endpoint"):
        rewrite_run(run_store, ["paraphrase"], sample=2)
    with pytest.raises(ConfigError, match="sides"):
        rewrite_run(run_store, ["typos"], sides="both")


def test_drift_gate_with_real_minilm(run_store: Any, minilm: Any) -> None:
    p = max(run_store.read_pairs(), key=lambda q: len(q.chosen))
    gate = DriftGate(embedder=minilm, cache=run_store.cache)
    typo = p.chosen.replace("e", "3", 1)
    unrelated = "Assistant: The capital of Australia is Canberra, and its largest city is Sydney."
    same, near, far = gate.similarities([p.chosen] * 3, [p.chosen, typo, unrelated])
    assert same == pytest.approx(1.0, abs=1e-5)
    assert near > 0.9
    assert far < 0.5
    # a cached similarity never loads the model: a gate with a bogus spec still answers
    cold = DriftGate("/nonexistent/encoder", cache=run_store.cache)
    cold._identity = gate.identity()
    assert cold.similarities([p.chosen], [typo]) == [pytest.approx(near)]


def test_controlled_run_writes_the_table_and_marks_drift(run_store: Any, minilm: Any) -> None:
    summary = rewrite_run(
        run_store,
        ["add_negative", "typos", "whitespace"],
        sample=8,
        seed=5,
        sides="rejected",
        embedder=minilm,
        drift_threshold=0.97,
    )
    df = run_store.read_table("rewrites")
    assert list(df.columns) == COLUMNS
    assert len(df) == 3 * 8 and set(df["side"]) == {"rejected"}
    assert set(df["kind"]) == {"controlled"} and set(df["scope"]) == {"response"}
    ok = df[df["status"] == "ok"]
    assert ok["similarity"].between(0.0, 1.0 + 1e-6).all()
    assert (ok["drifted"] == (ok["similarity"] < 0.97)).all()
    by = {t.name: t for t in summary.transforms}
    # a negative sentence moves meaning more than a whitespace change does
    assert by["whitespace"].mean_similarity > by["add_negative"].mean_similarity
    assert by["add_negative"].drifted >= 1
    assert all(t.lm_calls == 0 for t in summary.transforms)
    stage = run_store.manifest.stages["rewrite"].counters
    assert stage["transforms"]["typos"]["ok"] == by["typos"].ok
    assert run_store.manifest.stages["rewrite"].options["transforms"]["typos"]["sides"] == ["rejected"]
    # items: both sides of every pair, the chosen side unchanged, under the variant
    items = rewritten_items(run_store, ["add_negative"])
    assert len(items) == 2 * 8
    pairs = {p.pair_id: p for p in run_store.read_pairs()}
    for it in items:
        assert it.variant == "add_negative"
        if it.side == "chosen":
            assert not it.rewritten and it.response == pairs[it.pair_id].chosen
        else:
            assert it.rewritten and it.response != pairs[it.pair_id].rejected
            assert it.context == pairs[it.pair_id].context_for("rejected")
    assert len(rewritten_items(run_store, ["add_negative"], include_drifted=False)) < len(items)
    # re-running one transform replaces its rows and keeps the others
    rewrite_run(run_store, ["typos"], sample=4, seed=5, sides="rejected", embedder=minilm)
    df2 = run_store.read_table("rewrites")
    assert (df2["transform"] == "typos").sum() == 4 and (df2["transform"] == "add_negative").sum() == 8


def _seal(*args: str) -> None:
    from seal_audit._cli import main

    try:
        main(list(args))
    except SystemExit as exc:  # click's standalone exit
        assert exc.code in (0, None), exc.code


def test_end_to_end_robustness_run(
    run_store: Any, minilm: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Score originals with two tiny RMs, label them, rewrite with `seal rewrite`, analyze."""
    from seal_audit.backends.reward import RMSpec
    from seal_audit.features import get_featurizer, label_run
    from seal_audit.pipeline import analyze_stage
    from seal_audit.rewrite import drift as drift_mod
    from seal_audit.score import score_run

    run = run_store.root
    score_run(
        run_store, [RMSpec("pre", "length_tokens", role="pre"), RMSpec("post", "length_chars", role="post")]
    )
    label_run(run_store, [get_featurizer("sentiment"), get_featurizer("length")])
    run_store.close()
    # share the session's MiniLM instead of loading it again in the CLI
    monkeypatch.setattr(drift_mod.DriftGate, "embedder", property(lambda self: minilm))

    _seal(
        "rewrite",
        str(run),
        "-t",
        "add_positive",
        "-t",
        "add_filler",
        "--sample",
        "10",
        "--seed",
        "7",
        "--sides",
        "rejected",
        "--no-progress",
    )
    from seal_audit.store import RunStore

    store = RunStore(run, create=False)
    scores = store.read_table("scores")
    for t in ("add_positive", "add_filler"):
        s = scores[scores["variant"] == t]
        assert set(s["rm"]) == {"pre", "post"}
        assert len(s) == 2 * 2 * 10  # two RMs, both sides, ten pairs
        merged = s.merge(
            scores[scores["variant"] == "original"], on=["pair_id", "side", "rm"], suffixes=("", "_o")
        )
        rej = merged[merged["side"] == "rejected"]
        assert (rej["reward"] > rej["reward_o"]).all()  # the rejected texts got longer
        cho = merged[merged["side"] == "chosen"]
        assert (cho["reward"] == cho["reward_o"]).all()  # the chosen side is unchanged
    feats = store.read_table("features")
    pos = feats[(feats["variant"] == "add_positive") & (feats["feature"] == "vader_compound")]
    orig = feats[(feats["variant"] == "original") & (feats["feature"] == "vader_compound")]
    m = pos.merge(orig, on=["pair_id", "side"], suffixes=("", "_o"))
    assert len(m) == 20
    assert (m[m["side"] == "rejected"]["value"] >= m[m["side"] == "rejected"]["value_o"]).all()
    n_log = len(store.read_log("lm_calls"))
    assert n_log == 0  # controlled transforms never call an LM

    result = analyze_stage(store)
    robust = result.robustness
    assert set(robust) >= {"add_positive", "add_filler"}
    r = robust["add_positive"]
    assert r.drift is not None and r.drift.n_pairs_with_rewrites == 10 and r.drift.n_ok == 10
    assert not math.isnan(r.drift.mean_similarity)
    post_acc = next(a for a in r.accuracy if a.rm == "post")
    assert post_acc.n == 10 - r.drift.n_pairs_excluded
    # a length RM can only lose agreement when the rejected texts grow
    assert post_acc.agreement_rewritten.rate <= post_acc.agreement_original.rate
    summary = store.read_table("analysis/robustness_summary")
    assert {"add_positive", "add_filler"} <= set(summary["transform"])
    # every output names the kind of test (controlled edit, not a paraphrase)
    assert r.kind == "controlled" and set(summary["kind"]) == {"controlled"}

    # repeating the command is free: no new rows, same scores
    before = (
        store.read_table("scores").sort_values(["pair_id", "side", "rm", "variant"]).reset_index(drop=True)
    )
    store.close()
    _seal(
        "rewrite",
        str(run),
        "-t",
        "add_positive",
        "-t",
        "add_filler",
        "--sample",
        "10",
        "--seed",
        "7",
        "--sides",
        "rejected",
        "--no-progress",
    )
    after = RunStore(run, create=False).read_table("scores").sort_values(["pair_id", "side", "rm", "variant"])
    pd.testing.assert_frame_equal(before, after.reset_index(drop=True))


def test_cli_list_and_errors(capsys: Any, tmp_path: Any) -> None:
    from click.testing import CliRunner

    from seal_audit._cli.rewrite import command

    runner = CliRunner()
    res = runner.invoke(command, ["--list"])
    assert res.exit_code == 0
    res = runner.invoke(command, [str(tmp_path)])
    assert res.exit_code != 0 and "transform" in res.output
