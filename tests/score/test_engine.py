"""The SCORE stage: caching, resume after a kill, zero-forward reruns, the table, the manifest, self-check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seal_audit.backends.reward import Encoded, RewardModel, RMSpec, load_reward_model
from seal_audit.data.errors import SealError
from seal_audit.data.records import Score
from seal_audit.score import (
    NAMESPACE,
    ScoreItem,
    Scorer,
    merge_scores,
    pair_items,
    score_run,
    score_texts,
    self_check,
)
from seal_audit.store import RunStore


class Counting:
    """Wraps an RM and counts forward passes and texts; optionally dies after N batches."""

    def __init__(self, inner: RewardModel, die_after: int | None = None) -> None:
        self.inner = inner
        self.calls = 0
        self.texts = 0
        self.die_after = die_after

    name = property(lambda self: self.inner.name)
    identity = property(lambda self: self.inner.identity)
    batch_tokens = property(lambda self: 600)
    max_batch = property(lambda self: self.inner.max_batch)

    def encode(self, items: Sequence[tuple[str, str]]) -> list[Encoded]:
        return self.inner.encode(items)

    def score_batch(self, batch: Sequence[Encoded]) -> list[float]:
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls += 1
        self.texts += len(batch)
        return self.inner.score_batch(batch)


def test_resume_after_kill_and_pure_cache_rerun(tiny_rm: Path, hh_pairs: list, tmp_path: Path) -> None:
    items = pair_items(hh_pairs[:30])
    store = RunStore(tmp_path / "run")
    base = load_reward_model(str(tiny_rm))
    killed = Counting(base, die_after=3)
    with pytest.raises(KeyboardInterrupt):
        Scorer(model=killed, rm="pre", cache=store.cache, chunk_size=16).score(items)
    done_before_kill = killed.texts
    assert 0 < done_before_kill < len(items)
    store.close()

    store = RunStore(tmp_path / "run")  # reopen, as a new process would
    resumed = Counting(base)
    s2 = Scorer(model=resumed, rm="pre", cache=store.cache, chunk_size=16)
    second = s2.score(items)
    assert resumed.texts == len(items) - done_before_kill
    assert s2.stats.n_cached == done_before_kill

    again = Counting(base)
    s3 = Scorer(model=again, rm="pre", cache=store.cache)
    third = s3.score(items)
    assert again.calls == 0 and s3.stats.n_cached == len(items)
    assert [s.reward for s in third] == [s.reward for s in second]
    uncached = [s.reward for s in Scorer(model=base).score(items)]
    assert np.max(np.abs(np.array(uncached) - [s.reward for s in third])) < 1e-4  # other batches


def test_cache_key_depends_on_rm_settings_and_text(tiny_rm: Path, tmp_path: Path) -> None:
    from seal_audit.backends.reward import RMOptions

    a = Scorer(model=load_reward_model(str(tiny_rm)))
    b = Scorer(model=load_reward_model(str(tiny_rm), RMOptions(max_length=64)))
    assert a.key("c", "r") != b.key("c", "r")
    assert a.key("c", "r") != a.key("cr", "")  # the \x00 separator keeps the boundary
    assert a.key("c", "r").startswith("rm:hf|")


def test_duplicates_scored_once(tmp_path: Path) -> None:
    model = Counting(load_reward_model("length_chars"))
    items = [ScoreItem(f"p{i}", "chosen", "ctx", "same response") for i in range(5)]
    scores = score_texts(model, items, rm="len")
    assert model.texts == 1 and [s.pair_id for s in scores] == [f"p{i}" for i in range(5)]


def test_score_run_writes_table_manifest_and_merges(tiny_rm: Path, hh_pairs: list, tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    pairs = hh_pairs[:12]
    store.write_pairs(pairs)
    specs = [RMSpec(name="pre", spec=str(tiny_rm), role="pre"), RMSpec(name="len", spec="length_tokens")]
    res = score_run(store, specs, run_self_check=True)
    df = store.read_table("scores")
    assert len(df) == 2 * 2 * len(pairs) and res.n_rows == len(df)
    assert set(df.columns) >= {"pair_id", "side", "rm", "reward", "n_tokens", "truncated", "variant"}
    assert (df["variant"] == "original").all()
    m = store.manifest
    assert m.rms["pre"].role == "pre" and m.rms["pre"].identity["format"] == "text-pair"
    assert m.rms["pre"].identity["backend"] == "hf" and m.rms["len"].role == "extra"
    sc = m.stages["score"].counters["self_check"]["pre"]
    assert sc["passed"] and sc["max_abs_dev"] < 1e-4 and sc["batch_sizes"] == [1, 7, 64]
    assert m.stages["score"].counters["truncated"] == {"pre": 0, "len": 0}
    # the rewrite stage adds variant rows; a rerun of the stage keeps them
    extra = [Score(pair_id=pairs[0].pair_id, side="chosen", rm="pre", reward=1.0, variant="paraphrase")]
    merge_scores(store, extra)
    res2 = score_run(store, specs[:1])
    df2 = store.read_table("scores")
    assert len(df2) == len(df) + 1 and res2.rms[0].n_cached == 2 * len(pairs)
    assert NAMESPACE in {ns for ns, _, _ in store.cache.summary()}


class BatchDependent:
    """An RM whose reward leaks the batch size: the self-check must catch it."""

    name = "leaky"
    identity: Mapping[str, Any] = {"backend": "leaky", "dtype": "float32"}
    batch_tokens = 10_000
    max_batch = 1000

    def encode(self, items: Sequence[tuple[str, str]]) -> list[Encoded]:
        return [Encoded(length=1, n_tokens=1, truncated=False, data=len(r)) for _, r in items]

    def score_batch(self, batch: Sequence[Encoded]) -> list[float]:
        return [float(e.data) + 1e-3 * len(batch) for e in batch]


def test_self_check_detects_batch_dependence(hh_pairs: list, tmp_path: Path) -> None:
    items = pair_items(hh_pairs[:40])
    res = self_check(BatchDependent(), items)
    assert not res.passed and res.max_abs_dev > 1e-4
    store = RunStore(tmp_path / "run")
    store.write_pairs(hh_pairs[:40])
    with pytest.raises(SealError, match="self-check FAILED"):
        score_run(
            store, [RMSpec(name="leaky", spec="-")], models={"leaky": BatchDependent()}, run_self_check=True
        )
    assert store.manifest.stages["score"].counters["self_check"]["leaky"]["passed"] is False
