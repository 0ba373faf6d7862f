"""What every export reads from a run directory, read once: pairs, original-text rewards per RM,
original-text feature values, the per-pair diagnostics of the analysis, the recorded roles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from seal_audit.data.errors import SealError
from seal_audit.store.run_store import ANALYSIS_DIR, FEATURES, PAIRS, SCORES, RunStore

if TYPE_CHECKING:
    import pandas as pd

DIAGNOSTICS = "pair_diagnostics"
"""The analysis table with one row per pair (regime, gamma, theta, suspicious)."""


@dataclass(frozen=True)
class RunView:
    pairs: pd.DataFrame
    """One row per pair: pair_id, context, chosen, rejected, group_id (+ source columns)."""
    rewards: pd.DataFrame
    """Index pair_id; columns ``(rm, side)``: the reward of the original text."""
    features: pd.DataFrame
    """Index pair_id; columns ``(feature, side)``: the value on the original text (NaN = missing)."""
    diagnostics: pd.DataFrame | None
    """Index pair_id: regime, gamma (the LM-labeler's side), theta … when ``seal analyze`` ran."""
    roles: dict[str, str]
    """RM name -> recorded role (pre / post / baseline / extra)."""
    run_name: str
    """The run directory's name, for export metadata."""


def read_run(store: RunStore) -> RunView:
    """The run's tables; a run with no scores cannot be exported (it names what to run first)."""
    import pandas as pd

    if not store.has_table(PAIRS):
        raise SealError(f"{store.root}: no pairs table; make a run with `seal score` or `seal run` first")
    if not store.has_table(SCORES):
        raise SealError(f"{store.root}: no scores yet; run `seal score {store.root} --rm NAME=SPEC` first")
    pairs = store.read_table(PAIRS)
    scores = store.read_table(SCORES)
    scores = scores[scores["variant"] == "original"]
    rewards = scores.pivot_table(index="pair_id", columns=["rm", "side"], values="reward", aggfunc="first")
    if store.has_table(FEATURES):
        feats = store.read_table(FEATURES)
        feats = feats[(feats["variant"] == "original") & (feats["status"] == "ok")]
        features = feats.pivot_table(
            index="pair_id", columns=["feature", "side"], values="value", aggfunc="first"
        )
    else:
        features = pd.DataFrame(index=pd.Index([], name="pair_id"))
    diag_path = store.path(ANALYSIS_DIR) / f"{DIAGNOSTICS}.parquet"
    diagnostics = pd.read_parquet(diag_path).set_index("pair_id") if diag_path.exists() else None
    roles: dict[str, str] = {name: str(rec.role or "extra") for name, rec in store.manifest.rms.items()}
    for rm in rewards.columns.get_level_values(0).unique():
        roles.setdefault(str(rm), "extra")
    return RunView(pairs, rewards, features, diagnostics, roles, store.root.name)


def reward(view: RunView, rm: str, side: str, pair_id: str) -> float | None:
    """One stored reward, None when the RM has none for this text."""
    import math

    try:
        v = view.rewards.at[pair_id, (rm, side)]
    except KeyError:
        return None
    if v is None:
        return None
    f = float(v)  # type: ignore[arg-type]  # a reward cell is a float (the store checked it)
    return None if math.isnan(f) else f
