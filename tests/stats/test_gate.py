"""The drift gate shared by the analysis and the report (``stats.gate``): verdicts, exclusions, counts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from seal_audit.stats.gate import drift_gate


def _rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pair_id": ["a", "a", "b", "b", "c", "d", "zz", "a"],
            "transform": ["t", "t", "t", "t", "t", "t", "t", "other"],
            "side": ["chosen", "rejected"] * 4,
            "status": ["ok", "ok", "ok", "failed", "ok", "rejected", "ok", "failed"],
            "drifted": [False, True, True, False, False, False, False, False],
            "similarity": [0.99, 0.7, 0.6, None, 0.95, None, 0.9, None],
            "reason": [None, None, None, "timeout", None, "lost the markers", None, "x"],
        }
    )


def test_verdicts_exclusions_and_counts() -> None:
    index = pd.Index(["a", "b", "c", "d", "e"])
    g = drift_gate(_rows(), "t", index, exclude_drifted=True)
    # the worst row of each pair: a drifted side, a failed side beats a drifted one, ok, rejected, none
    assert list(g.verdict) == ["d", "f", "o", "r", ""]
    assert g.has.tolist() == [True, True, True, True, False]
    assert g.passes.tolist() == [False, False, True, False, False]
    assert g.reasons == {1: "timeout", 3: "lost the markers"}  # rows of another transform ignored
    assert len(g.rows) == 6 and g.pos.tolist() == [0, 0, 1, 1, 2, 3]  # the unknown pair "zz" is left out
    gate = g.gate
    assert (gate.n_rows, gate.n_ok, gate.n_failed, gate.n_rejected, gate.n_drifted) == (6, 4, 1, 1, 2)
    assert gate.n_pairs_with_rewrites == 4 and gate.n_pairs_excluded == 3
    assert np.isclose(gate.mean_similarity, np.mean([0.99, 0.7, 0.6, 0.95]))
    # kept drifted rewrites: only the failed and the rejected pair stay out; verdicts do not change
    kept = drift_gate(_rows(), "t", index, exclude_drifted=False)
    assert kept.passes.tolist() == [True, False, True, False, False]
    assert list(kept.verdict) == list(g.verdict) and kept.gate.n_pairs_excluded == 2
