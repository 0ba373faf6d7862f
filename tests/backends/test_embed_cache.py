"""The embedding cache shared by local-RM training and scoring: exact vectors, keys, reuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seal_audit.backends.embed.cache import (
    NAMESPACE,
    EmbeddingCache,
    embed_pairs,
    pack_vector,
    unpack_vector,
)
from seal_audit.backends.embed.encoder import TextEncoder
from seal_audit.backends.reward import CachesEmbeddings, load_reward_model
from seal_audit.backends.reward.testing import planted_pairs
from seal_audit.backends.reward.train import TrainConfig, train_reward_model
from seal_audit.score import Scorer, pair_items, score_fixed_batches
from seal_audit.store import RunStore


@pytest.fixture
def count_encoder(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts texts that go through any TextEncoder's forward pass."""
    seen = {"texts": 0}
    real = TextEncoder.embed_batch

    def counting(self: TextEncoder, batch: Any) -> np.ndarray:
        seen["texts"] += len(batch)
        return real(self, batch)

    monkeypatch.setattr(TextEncoder, "embed_batch", counting)
    return seen


def test_vectors_round_trip_exactly() -> None:
    v = np.random.default_rng(0).standard_normal(384).astype(np.float32)
    back = unpack_vector(pack_vector(v), 384)
    assert back is not None and back.dtype == np.float32 and np.array_equal(back, v)
    assert unpack_vector(pack_vector(v), 383) is None  # wrong width: a miss, not garbage
    assert unpack_vector("not base64!", 384) is None
    assert unpack_vector(pack_vector(v)[:-1], 384) is None
    assert unpack_vector(1.5, 384) is None


def test_train_with_cache_writes_identical_weights_and_reuses_vectors(
    tmp_path: Path, hh_pairs: list, count_encoder: dict[str, int]
) -> None:
    pairs = planted_pairs(hh_pairs[:60])
    cfg = TrainConfig(kind="embed", max_length=32, seed=1)
    store = RunStore(tmp_path / "run")
    train_reward_model(pairs, tmp_path / "plain", cfg)
    plain = count_encoder["texts"]
    assert plain == 120
    train_reward_model(pairs, tmp_path / "cold", cfg, cache=store.cache)
    assert count_encoder["texts"] == 2 * plain  # a cold cache computes the same batches
    train_reward_model(pairs, tmp_path / "warm", cfg, cache=store.cache)
    assert count_encoder["texts"] == 2 * plain  # a warm one computes nothing
    weights = {d: (tmp_path / d / "model.safetensors").read_bytes() for d in ("plain", "cold", "warm")}
    assert weights["plain"] == weights["cold"] == weights["warm"]
    # a superset (post-D on A ∪ D after pre-D on A) encodes only the new texts
    more = planted_pairs(hh_pairs[:80])
    train_reward_model(more, tmp_path / "more", cfg, cache=store.cache)
    assert count_encoder["texts"] == 2 * plain + 40
    store.close()


def test_scoring_through_the_cache_equals_uncached_scoring(
    tmp_path: Path, hh_pairs: list, count_encoder: dict[str, int]
) -> None:
    planted = planted_pairs(hh_pairs[:90])
    cfg = TrainConfig(kind="embed", max_length=32, seed=1)
    store = RunStore(tmp_path / "run")
    train_reward_model(planted[:60], tmp_path / "pre", cfg, cache=store.cache)
    train_reward_model(
        planted[:40],
        tmp_path / "other",
        TrainConfig(kind="embed", max_length=32, seed=3),
    )
    items = pair_items(planted[50:90])  # 10 pairs seen in training, 30 new ones
    model = load_reward_model(f"local:{tmp_path / 'pre'}")
    assert isinstance(model, CachesEmbeddings)

    n0 = count_encoder["texts"]
    uncached = [s.reward for s in Scorer(model=model).score(items)]
    assert count_encoder["texts"] - n0 == len(items)
    n1 = count_encoder["texts"]
    cached = [s.reward for s in Scorer(model=model, rm="pre", cache=store.cache).score(items)]
    assert count_encoder["texts"] - n1 == 60  # only the 30 pairs that training did not embed
    assert np.max(np.abs(np.array(cached) - uncached)) <= 1e-6  # cached ones came from other batches

    # rewards gone, embeddings kept: the same RM gives bit-identical scores without the encoder
    store.cache.delete_namespace("score")
    n2 = count_encoder["texts"]
    assert [s.reward for s in Scorer(model=model, rm="pre", cache=store.cache).score(items)] == cached
    assert count_encoder["texts"] == n2

    # another RM on the same encoder settings: all features from the cache, none encoded
    other = load_reward_model(f"local:{tmp_path / 'other'}")
    via_cache = Scorer(model=other, rm="other", cache=store.cache)
    r_cache = [s.reward for s in via_cache.score(items)]
    assert count_encoder["texts"] == n2
    assert via_cache.stats.n_computed == len(items)  # through the head, not the encoder
    r_fresh = [s.reward for s in Scorer(model=other, rm="other").score(items)]
    assert np.max(np.abs(np.array(r_cache) - r_fresh)) <= 1e-6
    # truncation accounting is unchanged by cached features
    trunc = [(s.truncated, s.n_tokens) for s in Scorer(model=other).score(items)]
    store.cache.delete_namespace("score")
    assert [(s.truncated, s.n_tokens) for s in Scorer(model=other, cache=store.cache).score(items)] == trunc
    assert any(t for t, _ in trunc)
    store.close()


def test_share_features_false_and_self_check_bypass_the_cache(
    tmp_path: Path, hh_pairs: list, count_encoder: dict[str, int]
) -> None:
    pairs = planted_pairs(hh_pairs[:30])
    store = RunStore(tmp_path / "run")
    train_reward_model(
        pairs,
        tmp_path / "rm",
        TrainConfig(kind="embed", max_length=32),
        cache=store.cache,
    )
    model = load_reward_model(f"local:{tmp_path / 'rm'}")
    items = pair_items(pairs[:10])  # all embedded in training
    n0 = count_encoder["texts"]
    Scorer(model=model, cache=store.cache, share_features=False).score(items)
    assert count_encoder["texts"] - n0 == len(items)
    # the scorer restores the model's own (here: no) cache afterwards
    assert model.attach_cache(None) is None  # type: ignore[attr-defined]
    model.attach_cache(store.cache)  # type: ignore[attr-defined]
    n1 = count_encoder["texts"]
    runs = [np.array(score_fixed_batches(model, items, b)) for b in (1, 7)]
    assert count_encoder["texts"] - n1 == 2 * len(items)  # batch invariance is really measured
    assert np.max(np.abs(runs[0] - runs[1])) < 1e-4
    assert model.attach_cache(None) is store.cache  # type: ignore[attr-defined]
    store.close()


def test_key_covers_encoder_settings_and_text(tmp_path: Path, hh_pairs: list) -> None:
    store = RunStore(tmp_path / "run")
    short = TextEncoder(None, max_length=32)
    long = TextEncoder(None, max_length=64)
    a, b = EmbeddingCache(store.cache, short), EmbeddingCache(store.cache, long)
    assert a.key("c", "r") != b.key("c", "r")  # truncation setting
    assert a.key("c", "r") != a.key("cr", "")  # the context/response boundary changes the ids
    assert a.key("c", "r").startswith("embed|")
    assert a.settings["fingerprint"] == short.fingerprint and a.settings["device"] == "cpu"
    items = [(p.context_for("chosen"), p.chosen) for p in hh_pairs[:6]]
    plain, _ = embed_pairs(short, items)
    first, c1 = embed_pairs(short, [*items, items[0]], store.cache)
    again, c2 = embed_pairs(short, items, store.cache)
    assert (c1.n_unique, c1.n_computed, c2.n_cached, c2.n_computed) == (6, 6, 6, 0)
    assert np.array_equal(first[:6], plain) and np.array_equal(first[6], plain[0])
    assert np.array_equal(again, plain)
    _, c3 = embed_pairs(long, items, store.cache)
    assert c3.n_computed == 6  # other settings never read these vectors
    assert dict((n, k) for n, _, k in store.cache.summary())[NAMESPACE] == 12
    store.close()


def test_other_rms_do_not_use_the_embedding_cache(tiny_rm: Path, hh_pairs: list, tmp_path: Path) -> None:
    from seal_audit.backends.reward.train import train_reward_model as train

    train(
        planted_pairs(hh_pairs[:20]),
        tmp_path / "ng",
        TrainConfig(kind="ngram", max_epochs=5),
    )
    store = RunStore(tmp_path / "run")
    items = pair_items(hh_pairs[:4])
    for spec in (str(tiny_rm), f"local:{tmp_path / 'ng'}", "length_chars"):
        model = load_reward_model(spec)
        assert not isinstance(model, CachesEmbeddings)
        Scorer(model=model, cache=store.cache).score(items)
    assert NAMESPACE not in {n for n, _, _ in store.cache.summary()}
    store.close()


def test_vectors_are_blobs_and_old_base64_entries_still_read(tmp_path: Path, hh_pairs: list) -> None:
    """Issue 18: vectors are raw float32 BLOBs; a cache written before (base64 text) is read as is,
    and scores read through either form are bit-identical."""
    import sqlite3

    planted = planted_pairs(hh_pairs[:30])
    cfg = TrainConfig(kind="embed", max_length=32, seed=1)
    store = RunStore(tmp_path / "run")
    train_reward_model(planted, tmp_path / "rm", cfg, cache=store.cache)
    model = load_reward_model(f"local:{tmp_path / 'rm'}")
    items = pair_items(planted)
    new_form = [s.reward for s in Scorer(model=model, rm="rm", cache=store.cache).score(items)]
    con = sqlite3.connect(store.cache.path)
    kinds = {
        t
        for (t,) in con.execute(
            "SELECT DISTINCT typeof(value) FROM entries WHERE namespace = ?",
            [NAMESPACE],
        )
    }
    assert kinds == {"blob"}
    (n,) = con.execute(
        "SELECT count(*) FROM entries WHERE namespace = ? AND length(value) = 1536",
        [NAMESPACE],
    ).fetchone()
    assert n == 60  # 384 float32 each, nothing else
    assert con.execute("PRAGMA page_size").fetchone()[0] == 16384
    con.close()

    # every vector in a cache file of the pre-issue-18 form: base64 text of the same bytes
    vecs = store.cache.get_many(NAMESPACE, [k for k in _keys(store)])
    assert vecs and all(isinstance(v, bytes) for v in vecs.values())
    (tmp_path / "old").mkdir()
    write_legacy_cache(tmp_path / "old" / "cache.sqlite", NAMESPACE, vecs)
    old_store = RunStore(tmp_path / "old")
    assert old_store.cache.format == 0
    ec = EmbeddingCache(old_store.cache, model.encoder)  # type: ignore[attr-defined]
    back = ec.get_many(list(vecs))
    assert len(back) == len(vecs) and all(
        np.array_equal(back[k], np.frombuffer(vecs[k], "<f4")) for k in vecs
    )
    old_form = [s.reward for s in Scorer(model=model, rm="rm", cache=old_store.cache).score(items)]
    assert old_form == new_form
    store.close()
    old_store.close()


def _keys(store: RunStore) -> list[str]:
    return store.cache.keys(NAMESPACE)


def write_legacy_cache(path: Path, namespace: str, values: dict[str, Any]) -> None:
    """A cache file as written before issue 18 (format 0): SQLite's default 4 KiB pages, printable
    keys, every value JSON text (vectors as base64 text), ``created`` a float timestamp."""
    import base64
    import json
    import sqlite3
    import time

    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA page_size=4096")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(
        "CREATE TABLE entries (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
        "created REAL NOT NULL, PRIMARY KEY (namespace, key)) WITHOUT ROWID"
    )
    rows = [
        (
            namespace,
            k,
            json.dumps(base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v),
            time.time(),
        )
        for k, v in values.items()
    ]
    items = list(rows)
    for start in range(0, len(items), 500):
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT INTO entries VALUES (?, ?, ?, ?)", items[start : start + 500])
        con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def test_keys_are_binary_digests_and_old_format_files_keep_their_format(
    tmp_path: Path,
) -> None:
    """Format 2 stores ``component|hash16|hash64`` keys as 46-byte BLOBs (other keys as text) and
    gives every key back printable; a file written before (format 0) is read and extended with
    printable keys, so old and new entries of one file are all found."""
    import sqlite3

    from seal_audit.store.cache import FORMAT, Cache, cache_key, pack_key, unpack_key

    key = cache_key("rm:hf", {"model": "x"}, "ab" * 32)
    assert len(pack_key(key)) == len("rm:hf") + 41 and unpack_key(pack_key(key)) == key
    assert pack_key("plain key") == "plain key" and unpack_key("plain key") == "plain key"
    new = Cache(tmp_path / "new.sqlite")
    new.put_many("score", {key: {"reward": 0.25}, "plain key": 1})
    assert new.format == FORMAT == 2
    assert new.get_many("score", [key, "plain key", "absent"]) == {
        key: {"reward": 0.25},
        "plain key": 1,
    }
    assert new.has_all("score", [key, "plain key"]) and not new.has_all("score", [key, "absent"])
    assert sorted(new.keys("score")) == sorted([key, "plain key"])
    assert new.summary() == [("score", "", 1), ("score", "rm:hf", 1)]
    con = sqlite3.connect(new.path)
    assert sorted(con.execute("SELECT typeof(key), length(key) FROM entries").fetchall()) == [
        ("blob", 46),
        ("text", 9),
    ]
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    con.close()
    new.close()

    old_key = cache_key("rm:hf", {"model": "x"}, "cd" * 32)
    write_legacy_cache(tmp_path / "old.sqlite", "score", {old_key: {"reward": -1.5}})
    old = Cache(tmp_path / "old.sqlite")
    assert old.format == 0
    old.put_many("score", {key: {"reward": 0.25}})
    assert old.get_many("score", [key, old_key]) == {
        key: {"reward": 0.25},
        old_key: {"reward": -1.5},
    }
    assert old.summary() == [("score", "rm:hf", 2)]
    old.close()
    con = sqlite3.connect(tmp_path / "old.sqlite")
    assert {t for (t,) in con.execute("SELECT typeof(key) FROM entries")} == {"text"}
    con.close()


def test_a_vector_costs_a_third_of_the_old_form_on_disk(tmp_path: Path) -> None:
    """The 2,312-pair hh-rlhf demo cache was 33 MB at ~5 KB per vector: base64 text rows spilling into
    4 KiB overflow pages. Format 2 (raw float32 BLOBs, binary keys, 16 KiB pages, the end-of-run
    VACUUM): the same vectors, written in the same order, in under 1,700 B each, < 1/2.5 of the old."""
    from seal_audit.store.cache import Cache

    rng = np.random.default_rng(0)
    vecs = {
        f"embed|0123456789abcdef|{rng.bytes(32).hex()}": pack_vector(rng.standard_normal(384))
        for _ in range(3000)
    }
    cache = Cache(tmp_path / "new.sqlite")
    items = list(vecs.items())
    for start in range(0, len(items), 500):
        cache.put_many(NAMESPACE, dict(items[start : start + 500]))
    assert cache.compact()
    cache.close()
    new = (tmp_path / "new.sqlite").stat().st_size
    write_legacy_cache(tmp_path / "old.sqlite", NAMESPACE, vecs)
    old = (tmp_path / "old.sqlite").stat().st_size
    assert new / len(vecs) < 1700 and old / new > 2.5, (
        old / len(vecs),
        new / len(vecs),
    )


def test_compact_repacks_a_cache_written_in_hash_order(tmp_path: Path) -> None:
    from seal_audit.store.cache import Cache

    rng = np.random.default_rng(1)
    path = tmp_path / "cache.sqlite"
    cache = Cache(path)
    vecs = {
        f"embed|0123456789abcdef|{rng.bytes(32).hex()}": pack_vector(rng.standard_normal(384))
        for _ in range(2000)
    }
    items = list(vecs.items())
    for start in range(0, len(items), 200):
        cache.put_many(NAMESPACE, dict(items[start : start + 200]))
    cache._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = path.stat().st_size
    assert cache.compact()
    after = path.stat().st_size
    assert after < 0.95 * before, (before, after)
    assert cache.get_many(NAMESPACE, list(vecs)) == vecs  # every value intact
    assert not cache.compact()  # nothing written since: skipped
    cache.close()
