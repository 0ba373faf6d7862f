"""Fixtures shared by tests/score and tests/backends: real hh-rlhf pairs (first 400), a tiny DeBERTa RM
built offline, a MiniLM RM trained on a planted signal. Imported by those directories' conftests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One intra-op thread: on a shared 2-core box, OpenMP threads spinning against other processes made
# single-text forwards ~20x slower; tests measure correctness, not speed.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


DATA = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
)


@pytest.fixture(scope="session")
def hh_pairs() -> list:
    if not DATA.exists():
        pytest.fail(f"the shared hh-rlhf data is missing at {DATA}")
    from seal_audit.sources import load_pairs

    return load_pairs(DATA, limit=400)


@pytest.fixture(scope="session")
def tiny_rm(tmp_path_factory: pytest.TempPathFactory, hh_pairs: list) -> Path:
    from seal_audit.backends.reward.testing import build_random_rm

    texts = [p.transcript(s) for p in hh_pairs[:150] for s in ("chosen", "rejected")]
    return build_random_rm(tmp_path_factory.mktemp("tiny-deberta"), texts, vocab_size=1000)


@pytest.fixture(scope="session")
def planted_embed_rm(tmp_path_factory: pytest.TempPathFactory, hh_pairs: list) -> tuple[Path, object]:
    """MiniLM embed RM trained on 200 planted pairs (max_length 32 keeps it to seconds on 2 cores)."""
    from seal_audit.backends.reward.testing import planted_pairs
    from seal_audit.backends.reward.train import TrainConfig, train_reward_model

    out = tmp_path_factory.mktemp("embed-rm")
    pairs = planted_pairs(hh_pairs[:200])
    result = train_reward_model(pairs, out, TrainConfig(kind="embed", max_length=32, seed=1))
    return out, result
