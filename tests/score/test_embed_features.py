"""The score stage shares embeddings between local embed RMs through the run's cache."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from seal_audit.backends.embed.cache import NAMESPACE as EMBED_NAMESPACE
from seal_audit.backends.embed.encoder import TextEncoder
from seal_audit.backends.reward import RMSpec, load_reward_model
from seal_audit.score import Scorer, pair_items, score_run
from seal_audit.store import RunStore


def test_second_rm_on_the_same_encoder_encodes_nothing_and_self_check_still_runs(
    planted_embed_rm: tuple[Path, object], hh_pairs: list, tmp_path: Path, monkeypatch: Any
) -> None:
    rm_dir, _ = planted_embed_rm
    twin = tmp_path / "twin"  # same weights under another name: its own rewards, the same features
    shutil.copytree(rm_dir, twin)
    seen = {"texts": 0}
    real = TextEncoder.embed_batch

    def counting(self: TextEncoder, batch: Any) -> np.ndarray:
        seen["texts"] += len(batch)
        return real(self, batch)

    monkeypatch.setattr(TextEncoder, "embed_batch", counting)
    store = RunStore(tmp_path / "run")
    pairs = hh_pairs[:15]
    store.write_pairs(pairs)
    n = 2 * len(pairs)
    first = score_run(store, [RMSpec(name="a", spec=f"local:{rm_dir}")])
    assert seen["texts"] == n and first.rms[0].n_computed == n
    res = score_run(store, [RMSpec(name="b", spec=f"local:{twin}")], run_self_check=True, seed=1)
    # rewards of "b" were not cached, its features were; the self-check went through the encoder
    assert res.rms[0].n_cached == 0 and res.rms[0].n_computed == n
    assert seen["texts"] == n + 3 * n  # self-check: batch sizes 1, 7, 64 on all 30 texts
    assert res.self_checks[0].passed
    df = store.read_table("scores").pivot_table(index=["pair_id", "side"], columns="rm", values="reward")
    assert np.array_equal(df["a"].to_numpy(), df["b"].to_numpy())
    fresh = [s.reward for s in Scorer(model=load_reward_model(f"local:{twin}")).score(pair_items(pairs))]
    stored = df["b"].loc[[(p.pair_id, s) for p in pairs for s in ("chosen", "rejected")]].to_numpy()
    assert np.max(np.abs(stored - fresh)) <= 1e-6
    assert dict((ns, k) for ns, _, k in store.cache.summary())[EMBED_NAMESPACE] == n
    store.close()
