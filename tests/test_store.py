"""RunStore: manifest, atomic tables, pairs round trip, the SQLite cache and crash safety."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from seal_audit.data import InputError, SealError
from seal_audit.data.records import RMRecord
from seal_audit.store import RunStore, cache_key, settings_hash
from seal_audit.store.run_store import declare_table


def test_manifest_and_reopen(tmp_path: Path, hh_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.update_manifest(seed=7)
    store.record_rms({"a": RMRecord(spec="length_chars", role="pre")})
    store.record_rms({"b": RMRecord(spec="length_tokens", role="post")})
    store.record_input(str(hh_path), "hh-rlhf")
    store.record_stage("load", {"pairs": 3, "options": {"holdout": 0.0}, "status": "complete"})
    store.record_stage("load", {"skipped": 1})
    again = RunStore(tmp_path / "run", create=False)
    m = again.manifest
    assert m.schema_version == 2 and m.seed == 7
    assert {n: r.role for n, r in m.rms.items()} == {"a": "pre", "b": "post"}
    assert m.role_of("post") == "b" and m.names_with_role("baseline") == ()
    assert m.inputs[0].sha256 is not None and len(m.inputs[0].sha256) == 64
    load = m.stages["load"]
    assert load.counters == {"pairs": 3, "skipped": 1} and load.options == {"holdout": 0.0}
    assert load.finished is not None and load.status == "complete"
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["seal_audit_version"]


def test_stage_outcome_describes_this_run(tmp_path: Path) -> None:
    """A record that states a status replaces the earlier run's message and failure counters (a
    rerun that succeeds must not keep a stale partial); one without a status keeps the outcome."""
    store = RunStore(tmp_path / "run")
    store.record_stage(
        "score",
        {"status": "partial", "message": "RM(s) failed to load: b", "failed_rms": {"b": "no such dir"},
         "failed_rows": 4, "rms": {"a": 1}, "options": {"k": 1}},
    )  # fmt: skip
    store.record_stage("score", {"seconds": 2.0})  # the pipeline's timing, after the stage's own record
    kept = store.manifest.stages["score"]
    assert kept.status == "partial" and kept.message == "RM(s) failed to load: b"
    assert kept.counters["failed_rms"] == {"b": "no such dir"} and kept.seconds == 2.0
    store.record_stage("score", {"status": "complete", "rms": {"a": 1, "b": 2}})
    rerun = store.manifest.stages["score"]
    assert rerun.status == "complete" and rerun.message is None
    assert rerun.counters == {"rms": {"a": 1, "b": 2}}, rerun.counters
    assert rerun.options == {"k": 1}  # options still merge: a later verb reads them back


def test_open_missing_run_without_create(tmp_path: Path) -> None:
    with pytest.raises(SealError, match="no such run directory"):
        RunStore(tmp_path / "nope", create=False)


def test_pairs_round_trip(tmp_path: Path, hh_pairs: list) -> None:  # type: ignore[type-arg]
    store = RunStore(tmp_path / "run")
    store.write_pairs(hh_pairs)
    back = store.read_pairs()
    assert back == hh_pairs


def test_write_pairs_rejects_duplicate_ids(tmp_path: Path, hh_pairs: list) -> None:  # type: ignore[type-arg]
    store = RunStore(tmp_path / "run")
    with pytest.raises(InputError, match="duplicate pair_id"):
        store.write_pairs([hh_pairs[0], hh_pairs[0]])


def test_cache_keys_and_values(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    k = cache_key("rm:x", {"max_length": 512}, "ab" * 32)
    assert k.startswith("rm:x|") and k.endswith("ab" * 32)
    assert settings_hash({"a": 1, "b": 2}) == settings_hash({"b": 2, "a": 1})
    store.cache.put_many("score", {k: {"reward": 1.25}})
    assert store.cache.get_many("score", [k, "other"]) == {k: {"reward": 1.25}}
    store.close()
    assert RunStore(tmp_path / "run").cache.get("score", k) == {"reward": 1.25}
    assert RunStore(tmp_path / "run").cache.summary() == [("score", "rm:x", 1)]


def _writer(root: str) -> None:
    store = RunStore(root)
    big = pd.DataFrame({"x": range(2_000_000)})
    i = 0
    while True:
        store.cache.put_many("ns", {f"k{i}-{j}": j for j in range(100)})
        store.write_table(declare_table("t", "a test table"), big.assign(y=i))
        i += 1


def test_killed_writer_leaves_consistent_store(tmp_path: Path) -> None:
    root = tmp_path / "run"
    RunStore(root)
    proc = mp.get_context("spawn").Process(target=_writer, args=(str(root),))
    proc.start()
    deadline = time.monotonic() + 120  # a loaded machine may take a while to write the first table
    while not (root / "t.parquet").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # then kill it in the middle of later writes
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    store = RunStore(root)
    df = store.read_table("t")  # either an old or a new complete table, never a torn one
    assert len(df) == 2_000_000 and df["y"].nunique() == 1
    n = len(store.cache.get_many("ns", [f"k{i}-{j}" for i in range(200) for j in range(100)]))
    assert n > 0 and n % 100 == 0  # whole batches only
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")] or True


def test_version_1_manifest_is_migrated_and_a_newer_one_refused(tmp_path: Path) -> None:
    run = tmp_path / "old"
    run.mkdir()
    old = {
        "seal_audit_version": "0.1.0",
        "created": "2026-11-01T00:00:00+00:00",
        "updated": "2026-11-01T00:00:00+00:00",
        "seed": 3,
        "settings": {
            "rms": {
                "post_rm": {
                    "spec": "length_tokens",
                    "role": "post",
                    "format": None,
                    "identity": {"kind": "length"},
                },
                "x": {"spec": "length_chars", "role": None},
            },
            "label": {"featurizers": ["offline"]},
            "load": {"source": "d.jsonl", "limit": 25},
        },
        "stages": {"score": {"n_pairs": 25, "finished": "2026-11-01T00:00:01+00:00", "seconds": 1.5}},
    }
    (run / "manifest.json").write_text(json.dumps(old))
    m = RunStore(run, create=False).manifest
    assert m.schema_version == 2 and m.seed == 3
    assert m.rms["post_rm"].role == "post" and m.rms["x"].role == "extra"
    assert m.rms["post_rm"].identity == {"kind": "length"}
    assert m.stages["label"].options == {"featurizers": ["offline"]}
    assert m.stages["load"].options["limit"] == 25
    assert m.stages["score"].counters == {"n_pairs": 25} and m.stages["score"].seconds == 1.5
    (run / "manifest.json").write_text(json.dumps({**old, "schema_version": 99}))
    with pytest.raises(SealError, match="schema_version 99 is newer"):
        _ = RunStore(run, create=False).manifest
