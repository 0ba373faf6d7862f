"""LM-labeler end to end: real hh-rlhf texts, the fake endpoint over HTTP, faults, resume, cost, CLI."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from fakeserver.server import FakeOpenAIServer, expected_answer
from seal_audit.backends.llm import LLMSettings, ModelPrice
from seal_audit.data.errors import ConfigError
from seal_audit.data.records import FeatureSpec, PreferencePair
from seal_audit.features import (
    SEAL_FEATURES,
    LabelItem,
    build_items,
    get_featurizer,
    label_items,
    label_run,
    lm_feature_set,
    load_feature_config,
    load_feature_specs,
)
from seal_audit.features.lm import CACHE_NAMESPACE, LMLabeler, build_schema, make_parser, render_prompt
from seal_audit.store import RunStore

PRICE = ModelPrice(input_per_mtok=10.0, output_per_mtok=30.0)


def make_run(tmp_path: Path, pairs: list[PreferencePair]) -> RunStore:
    store = RunStore(tmp_path / "run")
    store.write_pairs(pairs)
    return store


def lm(srv: FakeOpenAIServer, features: Any = None, **kw: Any) -> LMLabeler:
    s = LLMSettings(
        model="gpt-4o-mini",
        base_url=srv.base_url,
        api_key_env=kw.pop("api_key_env", None),
        concurrency=kw.pop("concurrency", 8),
        timeout_s=0.5,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
        max_retries=kw.pop("max_retries", 4),
        price=PRICE,
        batch_api=kw.pop("batch_api", False),
        batch_poll_s=0.01,
        response_format=kw.pop("response_format", "json_schema"),
    )
    return LMLabeler(s, features, **kw)


def expected_values(specs: tuple[FeatureSpec, ...], transcript: str) -> dict[str, float]:
    ans = expected_answer(render_prompt(specs, transcript), build_schema(specs))
    out: dict[str, float] = {}
    for s in specs:
        v = ans[s.name]
        if s.list_valued:
            out[s.name] = float(len(v))
        elif s.kind == "binary":
            out[s.name] = 1.0 if v else 0.0
        else:
            assert s.levels is not None and s.level_values is not None
            out[s.name] = s.level_values[s.levels.index(v)]
    return out


def test_seal_taxonomy_is_complete() -> None:
    names = [s.name for s in SEAL_FEATURES]
    assert len(names) == 19 and len(set(names)) == 19
    by = {s.name: s for s in SEAL_FEATURES}
    assert sum(s.in_regression for s in SEAL_FEATURES) == 15
    assert (
        not by["assistant_is_anthropomorphic"].in_regression and not by["assistant_is_coherent"].in_regression
    )
    assert (
        by["human_vocabulary_quality"].scope == "conversation"
        and by["human_vocabulary_quality"].in_regression
    )
    assert by["sentiment"].level_values == (-1.0, 0.0, 1.0)
    assert by["topics"].list_valued and by["is_discriminating_against"].list_valued
    assert {n for n, s in by.items() if s.role == "target"} == {
        "is_refusal",
        "is_helpful",
        "is_harmless",
        "is_honest",
        "contains_insult",
        "is_sexually_explicit",
        "breaks_privacy",
        "is_discriminatory",
        "is_discriminating_against",
        "is_manipulative",
    }
    assert all(s.definition for s in SEAL_FEATURES)


def test_parser_tolerance() -> None:
    specs = tuple(SEAL_FEATURES)
    parse = make_parser(specs)
    reply: dict[str, Any] = {
        f"last_response_{s.name}" if s.scope == "response" else s.name: "yes"
        for s in specs
        if s.kind == "binary"
    }
    reply.update(
        {
            "last_response_sentiment": "Positive",
            "topics": ["health and fitness", "Not a topic"],
            "is_discriminating_against": [],
        }
    )
    out = parse("Here you go:\n```json\n" + json.dumps(reply) + "\n```\nanything else?")
    assert out["values"]["sentiment"] == 1.0 and out["values"]["is_helpful"] == 1.0
    assert out["items"]["topics"] == ["Health and fitness"] and out["values"]["topics"] == 1.0
    bad = dict(reply, last_response_sentiment="ecstatic")
    del bad["last_response_is_honest"]
    with pytest.raises(ValueError, match=r"missing key\(s\): is_honest; invalid value\(s\): sentiment"):
        parse(json.dumps(bad))


def test_label_run_with_faults_then_rerun_sends_nothing(
    fake_server: FakeOpenAIServer, hh_pairs: list[PreferencePair], tmp_path: Path, no_api_key: str
) -> None:
    pairs = hh_pairs[:15]
    store = make_run(tmp_path, pairs)
    # faults keyed by a phrase of a real text (pair 3's and pair 7's chosen responses)
    m_retry = pairs[3].chosen[12:60]
    m_broken = pairs[7].chosen[12:60]
    fake_server.script(m_retry, ["429", "500", "timeout", "truncated", "missing_keys"])
    fake_server.script(m_broken, ["invalid"] * 3)  # 1 call + 2 repairs, all invalid -> failed
    labeler = lm(fake_server, api_key_env=no_api_key, concurrency=1)  # one in flight: the 0.5 s timeout holds
    out = label_run(store, [labeler])
    df = store.read_table("features")
    assert len(df) == 30 * 19
    assert set(df["variant"]) == {"original"} and set(df["featurizer"]) == {"lm"}
    failed = df[df["status"] == "failed"]
    assert set(zip(failed["pair_id"], failed["side"], strict=True)) == {(pairs[7].pair_id, "chosen")}
    assert failed["value"].isna().all() and failed["error"].str.contains("invalid reply").all()
    # values are exactly what the server answered for that text
    row = df[(df["pair_id"] == pairs[3].pair_id) & (df["side"] == "chosen")].set_index("feature")["value"]
    exp = expected_values(labeler.feature_specs, pairs[3].transcript("chosen"))
    assert row.to_dict() == exp
    topics = df[(df["feature"] == "topics") & (df["status"] == "ok")]
    assert all(len(json.loads(t)) == v for t, v in zip(topics["items"], topics["value"], strict=True))
    specs = store.read_json("feature_specs")
    assert {d["name"] for d in specs} == {s.name for s in SEAL_FEATURES}
    assert out.outcomes[0].n_failed == 1
    # one failed text is more than max_failed = 0: the stage is partial, with the reason counted
    assert store.manifest.stages["label"].status == "partial"
    assert out.outcomes[0].status == "partial" and out.outcomes[0].over_limit
    ((reason, n),) = out.outcomes[0].reasons
    assert n == 1 and reason.startswith("invalid reply after 2 repair attempt(s)")
    # calls log: fields present, no key, no prompt text
    log = store.read_log("lm_calls")
    assert {"time", "model", "tokens_in", "tokens_out", "latency_s", "status", "cost_usd"} <= set(log[0])
    statuses = [r["status"] for r in log]
    assert "http_429" in statuses and "timeout" in statuses and "invalid_reply" in statuses
    raw = (store.root / "logs" / "lm_calls.jsonl").read_text()
    assert "SECRET" not in raw and pairs[3].chosen[12:60] not in raw
    assert "SECRET" not in json.dumps(store.manifest.model_dump(mode="json"))
    # second run: only the failed text is asked again
    fake_server.reset_counts()
    out2 = label_run(store, [lm(fake_server)])
    assert fake_server.chat_requests() == 1
    assert out2.outcomes[0].n_cached == 29 and out2.outcomes[0].n_failed == 0
    assert (store.read_table("features")["status"] == "ok").all()
    # third run: nothing at all
    fake_server.reset_counts()
    label_run(store, [lm(fake_server)])
    assert fake_server.chat_requests() == 0


def test_max_cost_stop_then_resume(
    fake_server: FakeOpenAIServer, hh_pairs: list[PreferencePair], tmp_path: Path
) -> None:
    store = make_run(tmp_path, hh_pairs[:20])
    items = build_items(store.read_pairs())
    est = lm(fake_server).estimate(items, store)
    assert est.n_calls == 40 and est.n_cached == 0 and est.cost_usd is not None
    # estimate = chars/4 heuristic at the given price
    assert est.tokens_in > sum(len(i.transcript) for i in items) / 4
    assert est.cost_usd == pytest.approx((est.tokens_in * 10 + est.tokens_out * 30) / 1e6)
    budget = est.cost_usd / 4
    out = label_run(store, [lm(fake_server, concurrency=2, max_cost=budget)])
    o = out.outcomes[0]
    assert o.stopped and "max cost" in (o.stop_reason or "")
    assert o.cost_usd <= budget * 1.3
    df = store.read_table("features")
    n_ok = df[df["status"] == "ok"][["pair_id", "side"]].drop_duplicates().shape[0]
    assert 0 < n_ok < 40
    assert df[df["status"] == "failed"]["error"].str.contains("max cost").all()
    assert store.manifest.stages["label"].status == "stopped"
    sent = fake_server.chat_requests()
    assert sent == n_ok
    est2 = lm(fake_server).estimate(items, store)
    assert est2.n_cached == n_ok and est2.n_calls == 40 - n_ok
    label_run(store, [lm(fake_server)])
    assert fake_server.chat_requests() == 40  # the resumed run paid only for the rest
    assert (store.read_table("features")["status"] == "ok").all()


def test_killed_run_keeps_finished_calls(
    fake_server: FakeOpenAIServer, hh_pairs: list[PreferencePair], tmp_path: Path
) -> None:
    store = make_run(tmp_path, hh_pairs[:20])

    class Killed(Exception):
        pass

    def on_progress(p: Any) -> None:
        if p.done >= 10:
            raise Killed

    with pytest.raises(Killed):
        label_run(store, [lm(fake_server, concurrency=4)], on_progress=on_progress)
    sent = fake_server.chat_requests()
    cached = len(store.cache.get_many(CACHE_NAMESPACE, [lm(fake_server).cache_key(i) for i in items(store)]))
    assert sent >= 10
    # Workers take the next text without waiting for the progress callback, so a few more calls
    # than were reported may have been sent -- but each one that was sent was committed: the
    # calls in flight when the callback raised were allowed to finish.
    assert cached == sent
    assert not store.has_table("features")
    fake_server.reset_counts()
    label_run(store, [lm(fake_server)])
    assert fake_server.chat_requests() == 40 - cached  # nothing paid for twice
    assert (store.read_table("features")["status"] == "ok").all()


def items(store: RunStore) -> list[LabelItem]:
    return build_items(store.read_pairs())


_KILL_SCRIPT = """
import sys, time
from pathlib import Path
from seal_audit.backends.llm import LLMSettings
from seal_audit.features import LabelItem, label_items
from seal_audit.features.lm import LMLabeler
from seal_audit.store import RunStore

base_url, run_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = LLMSettings(
    model="gpt-4o-mini", base_url=base_url, api_key_env=None, concurrency=4, timeout_s=5,
    response_format="json_schema",
)
items = [LabelItem(f"p{i}", "chosen", "Human: hi. ", f"Assistant: text {i}") for i in range(n)]
label_items(items, [LMLabeler(s)], store=RunStore(Path(run_dir)))
"""


def test_sigkilled_run_loses_at_most_the_calls_in_flight(
    fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    """A hard kill (no finally, no flush) mid-run: every call the server saw is in the cache except
    at most ``concurrency`` (those in flight), and the resumed run asks for exactly the rest."""
    fake_server.latency_s = 0.03
    n, run_dir = 80, tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, fake_server.base_url, str(run_dir), str(n)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        deadline = time.monotonic() + 60
        while _cached_count(run_dir) < 12 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    time.sleep(0.1)  # let the server finish answering the orphaned calls
    sent, cached = fake_server.chat_requests(), _cached_count(run_dir)
    assert 12 <= cached < n
    assert sent - cached <= 4  # concurrency: only the calls in flight were lost
    fake_server.reset_counts()
    s = LLMSettings(
        model="gpt-4o-mini",
        base_url=fake_server.base_url,
        api_key_env=None,
        concurrency=4,
        response_format="json_schema",
    )
    items = [LabelItem(f"p{i}", "chosen", "Human: hi. ", f"Assistant: text {i}") for i in range(n)]
    out = label_items(items, [LMLabeler(s)], store=RunStore(run_dir))
    assert fake_server.chat_requests() == n - cached
    assert out.outcomes[0].n_cached == cached and out.outcomes[0].n_failed == 0


def _cached_count(run_dir: Path) -> int:
    db = run_dir / "cache.sqlite"
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as con:
            row = con.execute(
                "SELECT count(*) FROM entries WHERE namespace = ?", [CACHE_NAMESPACE]
            ).fetchone()
    except sqlite3.OperationalError:  # the table is not created yet
        return 0
    return int(row[0])


def test_user_features_from_toml_flow_into_prompt_schema_and_specs(
    fake_server: FakeOpenAIServer, hh_pairs: list[PreferencePair], tmp_path: Path
) -> None:
    toml = tmp_path / "features.toml"
    toml.write_text(
        '[[features]]\nname = "is_sarcastic"\nkind = "binary"\nrole = "spoiler"\n'
        'definition = "True if the last response is sarcastic."\n\n'
        '[[features]]\nname = "formality"\nkind = "ordinal"\nrole = "spoiler"\n'
        'definition = "How formal the last response is."\nlevels = ["casual", "neutral", "formal"]\n\n'
        '[[features]]\nname = "is_safe_label"\nkind = "binary"\nrole = "target"\nsource = "column"\n'
        'columns = { chosen = "chosen_safe", rejected = "rejected_safe" }\n'
    )
    user = load_feature_config(toml)
    assert [s.name for s in load_feature_specs(toml)] == ["is_sarcastic", "formality", "is_safe_label"]
    feats = lm_feature_set(user)
    assert len(feats) == 21 and feats[-1].name == "formality" and feats[-1].level_values is None
    seen: list[dict[str, Any]] = []

    def hook(body: dict[str, Any]) -> None:
        seen.append(body)
        return None

    fake_server.answer_hook = hook  # type: ignore[assignment]
    pairs = [
        p.model_copy(update={"meta": {"chosen_safe": True, "rejected_safe": "no"}}) for p in hh_pairs[:3]
    ]
    store = make_run(tmp_path, pairs)
    cols = get_featurizer(
        "columns", specs=[s for s in user.specs if s.source == "column"], columns=user.columns
    )
    label_run(store, [lm(fake_server, feats), cols])
    body = seen[0]
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["formality"] == {"type": "string", "enum": ["casual", "neutral", "formal"]}
    assert "is_sarcastic" in schema["required"]
    assert (
        "- is_sarcastic (true or false): True if the last response is sarcastic."
        in body["messages"][1]["content"]
    )
    df = store.read_table("features")
    assert set(df[df["feature"] == "formality"]["value"]) <= {0.0, 1.0, 2.0}
    safe = df[df["feature"] == "is_safe_label"].set_index("side")["value"]
    assert (safe["chosen"] == 1.0).all() and (safe["rejected"] == 0.0).all()
    names = {d["name"]: d for d in store.read_json("feature_specs")}
    assert names["is_sarcastic"]["role"] == "spoiler" and names["is_safe_label"]["source"] == "column"
    # seal_taxonomy = false: only the user's LM features
    only = lm_feature_set(
        load_feature_config(
            {
                "seal_taxonomy": False,
                "features": [{"name": "x", "kind": "binary", "role": "target", "definition": "d"}],
            }
        )
    )
    assert [s.name for s in only] == ["x"]


def test_toml_errors_name_the_feature(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"feature 'f'.*levels"):
        load_feature_config(
            {"features": [{"name": "f", "kind": "ordinal", "role": "target", "definition": "d"}]}
        )
    with pytest.raises(ConfigError, match=r"feature 'g'.*role"):
        load_feature_config(
            {"features": [{"name": "g", "kind": "binary", "role": "maybe", "definition": "d"}]}
        )
    with pytest.raises(ConfigError, match="defined twice"):
        load_feature_config([{"name": "h", "kind": "binary", "role": "target", "definition": "d"}] * 2)
    bad = tmp_path / "bad.toml"
    bad.write_text("[[features]\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML"):
        load_feature_config(bad)


def test_batch_mode_label_run(
    fake_server: FakeOpenAIServer, hh_pairs: list[PreferencePair], tmp_path: Path
) -> None:
    store = make_run(tmp_path, hh_pairs[:5])
    fake_server.batch_polls_until_done = 2
    out = label_run(store, [lm(fake_server, batch_api=True, batch_timeout_s=0.0)])
    assert out.outcomes[0].stopped and "still running" in (out.outcomes[0].stop_reason or "")
    state = json.loads((store.root / "lm_batches.json").read_text())
    assert len(state["jobs"]) == 1 and len(state["jobs"][0]["keys"]) == 10
    out2 = label_run(store, [lm(fake_server, batch_api=True)])  # another process resumes polling
    assert not out2.outcomes[0].stopped
    assert fake_server.counts["batch_create"] == 1 and fake_server.chat_requests() == 0
    df = store.read_table("features")
    assert (df["status"] == "ok").all() and len(df) == 10 * 19
    log = store.read_log("lm_calls")
    assert all(r.get("batch_id") for r in log) and all(r["cost_usd"] > 0 for r in log)


def test_cli_label_offline_and_lm(
    fake_server: FakeOpenAIServer,
    hh_pairs: list[PreferencePair],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from seal_audit._cli import main

    store = make_run(tmp_path, hh_pairs[:6])
    args = [
        str(store.root),
        "--featurizer",
        "offline",
        "--featurizer",
        "lm",
        "--model",
        "gpt-4o-mini",
        "--base-url",
        fake_server.base_url,
        "--api-key-env",
        "none",
        "--yes",
        "--max-retries",
        "1",
    ]
    main(["label", *args])
    df = pd.read_parquet(store.table_path("features"))
    assert set(df["featurizer"]) == {
        "lm",
        "length",
        "sentiment",
        "refusal",
        "offensive",
        "readability",
        "formatting",
        "questions",
        "hedging",
    }
    err = " ".join(capsys.readouterr().err.split())  # rich wraps lines
    assert "12 calls to gpt-4o-mini" in err and "estimated cost $" in err
    # re-run: everything cached, offline rows replaced (not duplicated)
    main(["label", *args])
    assert len(pd.read_parquet(store.table_path("features"))) == len(df)
    assert "12 already labeled" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(SystemExit) as exc:
        main(["label", str(store.root), "--featurizer", "lm", "--base-url", fake_server.base_url])
    assert exc.value.code == 2  # no --model: one-line error


def test_cli_declined_confirmation_sends_nothing(
    fake_server: FakeOpenAIServer,
    hh_pairs: list[PreferencePair],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from seal_audit._cli import main

    store = make_run(tmp_path, hh_pairs[:3])
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("n\n"))
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "label",
                str(store.root),
                "--featurizer",
                "lm",
                "--model",
                "m",
                "--api-key-env",
                "none",
                "--base-url",
                fake_server.base_url,
            ]
        )
    # stdin is not a terminal: no one to ask, so the cost is not confirmed: exit 2, never 130 (issue 17)
    assert exc.value.code == 2 and fake_server.chat_requests() == 0


def test_columns_mapping_without_model(hh_pairs: list[PreferencePair], tmp_path: Path) -> None:
    pairs = [p.model_copy(update={"meta": {"score_a": 3, "score_b": "2.5"}}) for p in hh_pairs[:2]]
    pairs.append(hh_pairs[2])  # no columns at all: recorded failed, not dropped
    store = make_run(tmp_path, pairs)
    f = get_featurizer("columns", mapping={"helpfulness": {"chosen": "score_a", "rejected": "score_b"}})
    label_run(store, [f])
    df = store.read_table("features").set_index(["pair_id", "side"])["value"]
    assert df[(pairs[0].pair_id, "chosen")] == 3.0 and df[(pairs[0].pair_id, "rejected")] == 2.5
    assert math.isnan(df[(pairs[2].pair_id, "chosen")])
    stage = RunStore(store.root, create=False).manifest.stages["label"]
    assert stage.counters["featurizers"]["columns"]["reasons"] == [
        ["input column 'score_a' is missing for this pair", 1],
        ["input column 'score_b' is missing for this pair", 1],
    ]


def test_a_column_that_no_pair_has_is_one_error_naming_it(
    hh_pairs: list[PreferencePair], tmp_path: Path
) -> None:
    # before: a misspelled column failed every text quietly ("120 texts, 60 failed") and exited 0
    pairs = [p.model_copy(update={"meta": {"score_a": 3, "score_b": 2}}) for p in hh_pairs[:3]]
    store = make_run(tmp_path, pairs)
    f = get_featurizer("columns", mapping={"helpfulness": {"chosen": "score_a", "rejected": "score_c"}})
    with pytest.raises(ConfigError) as err:
        label_run(store, [f])
    assert str(err.value) == (
        "column feature 'helpfulness': input column 'score_c' (rejected) is in no pair; "
        "the pairs' input columns are: score_a, score_b"
    )
    assert not store.has_table("features")


def test_cli_failed_stage_exits_3_with_counted_reasons(
    fake_server: FakeOpenAIServer,
    hh_pairs: list[PreferencePair],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A server that rejects the requested response format (explicit json_schema: no step-down):
    every text fails, the command exits 3 and says why, counted; the manifest says 'failed'."""
    from seal_audit._cli import main

    fake_server.supports_json_schema = False
    store = make_run(tmp_path, hh_pairs[:3])
    base = [
        str(store.root),
        "--featurizer",
        "lm",
        "--model",
        "gpt-4o-mini",
        "--base-url",
        fake_server.base_url,
    ]
    base += ["--api-key-env", "none", "--yes", "--max-retries", "0"]
    with pytest.raises(SystemExit) as exc:
        main(["label", *base, "--response-format", "json_schema"])
    assert exc.value.code == 3
    err = " ".join(capsys.readouterr().err.split())
    assert "6× HTTP 400: response_format json_schema is not supported" in err
    assert "label stage failed" in err
    assert RunStore(store.root, create=False).manifest.stages["label"].status == "failed"
    # auto settles on a dialect the server accepts: the same command then succeeds
    main(["label", *base])
    stage = RunStore(store.root, create=False).manifest.stages["label"]
    assert stage.status == "complete"
    assert stage.counters["featurizers"]["lm"]["client"]["response_format"] == "json_object_schema"


def test_analysis_names_the_featurizer_that_failed(
    fake_server: FakeOpenAIServer, hh_pairs: list[PreferencePair], tmp_path: Path, no_api_key: str
) -> None:
    """A partial LM labeling, then an analysis (as with `seal run --allow-partial`): the analysis says
    which featurizer failed and why, instead of only counting missing values."""
    from seal_audit.backends.reward import RMSpec
    from seal_audit.pipeline import analyze_stage
    from seal_audit.score import score_run

    pairs = hh_pairs[:15]
    store = make_run(tmp_path, pairs)
    fake_server.script(pairs[7].chosen[12:60], ["invalid"] * 3)
    label_run(store, [lm(fake_server, api_key_env=no_api_key, concurrency=1)])
    assert store.manifest.stages["label"].status == "partial"
    score_run(store, [RMSpec("r1", "length_tokens", role="post"), RMSpec("r0", "length_chars", role="pre")])
    result = analyze_stage(store, verb="test")
    notes = [n for n in result.inputs.notes if n.startswith("featurizer 'lm' is partial")]
    assert len(notes) == 1 and "1 of 30 texts not labeled" in notes[0] and "invalid reply" in notes[0]
    assert result.exclusions["misalignment"].n_excluded >= 1  # the pair without labels, counted
