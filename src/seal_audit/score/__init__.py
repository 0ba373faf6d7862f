"""SCORE: rewards of every text under every RM, batched by token budget, cached, resumable.

Public API (what the pipeline and the rewrite stage call):

- ``score_run(store, rms, ...) -> ScoreRunResult`` — the stage over a run directory;
- ``score_texts(model, items, rm=..., cache=...) -> list[Score]`` — any (pair_id, side, variant,
  context, response) items, e.g. rewritten texts with ``variant=<transform>``;
- ``merge_scores(store, scores)`` — add such rows to the run's ``scores`` table;
- ``self_check(model, items)`` — batch-size invariance on a seeded sample.
"""

from seal_audit.score.engine import (
    NAMESPACE,
    ScoreItem,
    Scorer,
    ScoreStats,
    score_fixed_batches,
    score_texts,
)
from seal_audit.score.stage import (
    SCORES_TABLE,
    RMRunInfo,
    ScoreRunResult,
    SelfCheckResult,
    merge_scores,
    pair_items,
    score_run,
    scores_frame,
    self_check,
)

__all__ = [
    "NAMESPACE",
    "SCORES_TABLE",
    "RMRunInfo",
    "ScoreItem",
    "ScoreRunResult",
    "ScoreStats",
    "Scorer",
    "SelfCheckResult",
    "merge_scores",
    "pair_items",
    "score_fixed_batches",
    "score_run",
    "score_texts",
    "scores_frame",
    "self_check",
]
