"""SCORE: rewards of every text under every RM, batched by token budget, cached, resumable.

Public API (what the pipeline and the rewrite stage call):

- ``score_run(store, rms, ...) -> ScoreRunResult`` — the stage over a run directory;
- ``score_texts(model, items, rm=..., cache=...) -> list[Score]`` — any (pair_id, side, variant,
  context, response) items, e.g. rewritten texts with ``variant=<transform>``;
- ``merge_scores(store, scores)`` — add such rows to the run's ``scores`` table;
- ``self_check(model, items)`` — batch-size invariance on a seeded sample;
- ``score_run_ray(store, rms, address=...)`` — ``score_run`` on a Ray cluster (the ``[ray]`` extra;
  imported on first use, so importing this package never imports Ray or torch).
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from seal_audit.score.ray_engine import score_run_ray


def __getattr__(name: str) -> Any:
    if name == "score_run_ray":
        from seal_audit.score.ray_engine import score_run_ray

        return score_run_ray
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "score_run_ray",
    "score_texts",
    "scores_frame",
    "self_check",
]
