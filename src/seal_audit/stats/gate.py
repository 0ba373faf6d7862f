"""The drift gate of one transform (§5): which pairs have rewrites, which pass the gate, and each
pair's verdict.

One pure function for the analysis (which pairs the robustness statistics use) and the report (the
verdict the rewrite viewer shows, and the outcome filters of the explorer), so the two cannot
disagree: a rewrite row that failed or was rejected, or drifted when drifted rewrites are excluded,
keeps its pair out.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from seal_audit.stats._common import BoolArray, IntArray, StrArray
from seal_audit.stats.robustness import DriftGate

VERDICTS = ("o", "d", "r", "f")
"""A row's verdict, from mildest to worst: ok, drifted, rejected, failed. A pair shows its worst."""


@dataclasses.dataclass(frozen=True, eq=False)
class GateResult:
    """The gate of one transform over the pairs of ``index``."""

    gate: DriftGate
    has: BoolArray
    """Per pair: it has a rewrite row of this transform."""
    passes: BoolArray
    """Per pair: it has rows and none of them keeps it out."""
    verdict: StrArray
    """Per pair: "" without rows, else the worst verdict of its rows (``VERDICTS``)."""
    rows: pd.DataFrame
    """The transform's rewrite rows whose pair is in ``index``, in table order."""
    pos: IntArray
    """Position in ``index`` of each of ``rows``."""
    reasons: dict[int, str]
    """Pair position → the reason of a row that did not pass (the last such row with one)."""


def drift_gate(rewrites: pd.DataFrame, transform: str, index: pd.Index, exclude_drifted: bool) -> GateResult:
    """The gate of ``transform`` from the rewrites table (``pair_id``, ``transform``, and where
    present ``status``, ``drifted``, ``similarity``, ``reason``)."""
    n = len(index)
    rw = rewrites[rewrites["transform"].astype(str) == transform]
    pos = index.get_indexer(pd.Index(rw["pair_id"].astype(str)))
    rw = rw[pos >= 0]
    pos = pos[pos >= 0].astype(np.int64)
    status = rw["status"].astype(str).to_numpy() if "status" in rw.columns else np.full(len(rw), "ok")
    drifted = (
        rw["drifted"].fillna(False).astype(bool).to_numpy()
        if "drifted" in rw.columns
        else np.zeros(len(rw), bool)
    )
    sim = (
        pd.to_numeric(rw["similarity"], errors="coerce").to_numpy(dtype=float)
        if "similarity" in rw.columns
        else np.full(len(rw), np.nan)
    )
    has = np.zeros(n, dtype=bool)
    has[pos] = True
    bad_row = (status != "ok") | (drifted if exclude_drifted else np.zeros(len(rw), bool))
    bad = np.zeros(n, dtype=bool)
    bad[pos[bad_row]] = True
    rank = np.select([status == "failed", status == "rejected", drifted], [3, 2, 1], 0)
    worst = np.full(n, -1, dtype=np.int64)
    np.maximum.at(worst, pos, rank)
    verdict = np.where(worst >= 0, np.array(VERDICTS, dtype=object)[np.maximum(worst, 0)], "").astype(object)
    reasons: dict[int, str] = {}
    if "reason" in rw.columns:
        why = rw["reason"].to_numpy(dtype=object)
        for j in np.flatnonzero(status != "ok"):
            if pd.notna(why[j]):
                reasons[int(pos[j])] = str(why[j])
    ok_sim = sim[(status == "ok") & np.isfinite(sim)]
    gate = DriftGate(
        n_pairs_with_rewrites=int(has.sum()),
        n_rows=len(rw),
        n_ok=int(np.sum(status == "ok")),
        n_rejected=int(np.sum(status == "rejected")),
        n_failed=int(np.sum(status == "failed")),
        n_drifted=int(drifted.sum()),
        mean_similarity=float(ok_sim.mean()) if ok_sim.size else float("nan"),
        exclude_drifted=exclude_drifted,
        n_pairs_excluded=int((has & bad).sum()),
    )
    return GateResult(gate, has, has & ~bad, verdict, rw, pos, reasons)
