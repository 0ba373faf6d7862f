"""Splits are drawn by group: pairs that share a prompt never land on both sides of a split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from seal_audit.backends.reward.train import _split
from seal_audit.config import parse_config
from seal_audit.data import PreferencePair
from seal_audit.pipeline import load_stage
from seal_audit.store import RunStore


def _multi_variant(path: Path, hh_pairs: list[PreferencePair]) -> Path:
    """RM-Bench-style records from real hh-rlhf texts: 3 chosen × 3 rejected per prompt (9 pairs)."""
    rows = []
    for k in range(60):
        ps = hh_pairs[3 * k : 3 * k + 3]
        rows.append(
            {
                "id": f"r{k}",
                "prompt": ps[0].context,
                "chosen": [p.chosen for p in ps],
                "rejected": [p.rejected for p in ps],
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_holdout_is_drawn_by_group(tmp_path: Path, hh_pairs: list[PreferencePair]) -> None:
    data = _multi_variant(tmp_path / "mv.jsonl", hh_pairs)
    cfg = parse_config(
        {"run": {"out": str(tmp_path / "run"), "holdout": 0.3, "seed": 1}, "data": [{"path": str(data)}]}
    )
    store = RunStore(tmp_path / "run")
    d = load_stage(store, cfg)
    a = store.read_pairs_table("pairs_a")
    assert len(a) + len(d) == 540 and len(a) > 0 and len(d) > 0
    assert not {p.group_id for p in a} & {p.group_id for p in d}
    table = store.read_table("pairs")
    assert table["group_id"].nunique() == len({p.group_id for p in d}) == len(d) // 9
    assert store.manifest.stages["load"].counters["groups"] == len(d) // 9


def test_train_rm_validation_split_is_drawn_by_group() -> None:
    groups = [f"g{i // 9}" for i in range(270)]
    tr, va = _split(groups, 0.2, seed=0)
    assert sorted([*tr, *va]) == list(range(270))
    assert not {groups[i] for i in tr} & {groups[i] for i in va}
    assert abs(len(va) - 54) <= 9


def test_train_rm_split_with_one_pair_per_group_is_the_seeded_pair_split() -> None:
    n = 200
    tr, va = _split([f"g{i}" for i in range(n)], 0.1, seed=5)
    order = np.random.default_rng(5).permutation(n)
    assert list(va) == sorted(order[:20]) and list(tr) == sorted(order[20:])
