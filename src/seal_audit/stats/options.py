"""The analysis' inputs and options: frozen records validated on construction (bad config fails early).

``AnalysisOptions`` lives in ``seal_audit.config`` (it is the ``[analysis]`` section itself) and is
re-exported here.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Literal

import pandas as pd

from seal_audit.config import AnalysisOptions
from seal_audit.data.errors import ConfigError
from seal_audit.data.records import FeatureSpec
from seal_audit.stats.inference import Correction

Estimator = Literal["pooled", "fe"]
ESTIMATORS: tuple[Estimator, ...] = typing.get_args(Estimator)
CORRECTIONS: tuple[Correction, ...] = typing.get_args(Correction)


@dataclasses.dataclass(frozen=True, eq=False)
class AnalysisInputs:
    """The long tables and names the analysis reads (shapes in docs/results.md)."""

    pairs: pd.DataFrame
    """``pair_id`` (+ optional ``context_diverges`` and ``group_id``, the prompt group that
    ``AnalysisOptions.cluster`` clusters by): the pairs of D, defining N."""
    scores: pd.DataFrame
    """Long: pair_id, side, rm, reward (+ optional variant, truncated)."""
    post: str
    """Name of the post-D RM (r1, trained on D)."""
    pre: str | None = None
    """Name of the pre-D RM (r0); without it regimes, θ and post − pre imprint are skipped."""
    features: pd.DataFrame | None = None
    """Long: pair_id, side, feature, value (+ optional variant, status)."""
    specs: tuple[FeatureSpec, ...] = ()
    """Feature specs; only in_regression, non-list features are regressors."""
    rewrites: pd.DataFrame | None = None
    """pair_id, side, transform, status, similarity, drifted (robustness bookkeeping)."""
    baselines: tuple[str, ...] = ()
    """Baseline RMs (agreement only), named by the caller: a role is never guessed from a name."""
    notes: tuple[str, ...] = ()
    """Notes from the stages that made these tables (e.g. a featurizer that failed for some texts),
    written into ``inputs.notes`` beside the analysis' own."""
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Table name (pairs, scores, features) → the file it was read from, for error messages."""
    in_sample: dict[str, bool] | None = None
    """Per RM name, whether it was trained on D (its agreement on D is then in-sample, i.e. training
    accuracy); recorded under ``caveats``. None = not stated (recorded as unknown)."""
    comparisons: tuple[tuple[str, str], ...] = ()
    """RM pairs (a, b) compared with a as pre-D and b as post-D, beside the (pre, post) pair itself."""
    absent: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """RMs that were named but have no scores (e.g. failed to load), with the reason: reported in
    ``inputs.absent_rms`` and the leaderboard, never silently left out."""

    def __post_init__(self) -> None:
        if not self.post:
            raise ConfigError("post: the post-D RM name is required")
        if self.pre is not None and self.pre == self.post:
            raise ConfigError(f"pre and post name the same RM {self.post!r}")
        names = [s.name for s in self.specs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"specs: feature(s) specified twice: {dup}")


__all__ = ["CORRECTIONS", "ESTIMATORS", "AnalysisInputs", "AnalysisOptions", "Estimator"]
