"""Offline feature values are cached per text (issue 18): a warm label run computes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from seal_audit.features import build_featurizers, label_run
from seal_audit.features.offline import CACHE_NAMESPACE, FunctionFeaturizer
from seal_audit.sources import load_pairs
from seal_audit.store import RunStore

DATA = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
)


def _frame(store: RunStore) -> pd.DataFrame:
    df = store.read_table("features")
    return df.sort_values(["pair_id", "side", "feature"]).reset_index(drop=True)


def test_warm_label_run_reads_every_value_from_the_cache(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.write_pairs(load_pairs(DATA, limit=30))
    feats = build_featurizers(["length", "sentiment", "readability"])
    first = label_run(store, feats)
    assert {o.n_cached for o in first.outcomes} == {0}
    cold = _frame(store)
    assert CACHE_NAMESPACE in {ns for ns, _, _ in store.cache.summary()}

    def boom(text: str) -> dict[str, float]:
        raise AssertionError("a featurizer function ran on a warm run")

    again = build_featurizers(["length", "sentiment", "readability"])
    for f in again:
        assert isinstance(f, FunctionFeaturizer)
        f.fn = boom
    second = label_run(store, again)
    assert [o.n_cached for o in second.outcomes] == [60, 60, 60] and all(
        o.n_failed == 0 for o in second.outcomes
    )
    pd.testing.assert_frame_equal(_frame(store), cold)


def test_a_changed_featurizer_is_not_served_stale_values(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.write_pairs(load_pairs(DATA, limit=5))
    (f,) = build_featurizers(["length"])
    assert isinstance(f, FunctionFeaturizer)
    label_run(store, [f])
    settings: dict[str, Any] | None = f.cache_settings()
    assert settings is not None
    spec = f.feature_specs[0]
    f.feature_specs = (
        spec.model_copy(update={"definition": spec.definition + " (edited)"}),
        *f.feature_specs[1:],
    )
    assert f.cache_settings() != settings  # another key: the values are computed again
    out = label_run(store, [f])
    assert out.outcomes[0].n_cached == 0
