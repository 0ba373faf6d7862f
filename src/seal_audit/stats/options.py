"""The analysis' inputs and options: frozen records validated on construction (bad config fails early)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Literal

import pandas as pd

from seal_audit.data.errors import ConfigError
from seal_audit.data.records import FeatureSpec
from seal_audit.stats.inference import Correction
from seal_audit.stats.power import (
    IMPRINT_EFFECT_OF_INTEREST,
    MISALIGNMENT_EFFECT_OF_INTEREST,
    POWER,
    ROBUSTNESS_EFFECT_OF_INTEREST,
)

Estimator = Literal["pooled", "fe"]
ESTIMATORS: tuple[Estimator, ...] = typing.get_args(Estimator)
CORRECTIONS: tuple[Correction, ...] = typing.get_args(Correction)


@dataclasses.dataclass(frozen=True)
class AnalysisOptions:
    """How to run the SEAL statistics. Every field is checked in ``__post_init__`` (ConfigError)."""

    seed: int = 0
    """Seed of the bootstrap; with the same inputs, the same seed gives a byte-identical stats.json."""
    n_bootstrap: int = 1000
    """Bootstrap draws for rate CIs (0 = exact Clopper–Pearson intervals only)."""
    alpha: float = 0.05
    """1 − confidence level of every interval and the level of 'significant'."""
    correction: Correction = "bonferroni"
    """Family-wise correction that decides 'significant' (both corrected p-values are always given)."""
    estimators: tuple[Estimator, ...] = ("pooled", "fe")
    """Imprint estimators: pooled OLS over stacked texts and/or pair fixed effects."""
    gamma_features: tuple[str, ...] = ("is_harmless", "is_helpful")
    """Features of the LM agreement γ, compared lexicographically in this order (§2)."""
    exclude_drifted: bool = True
    """Leave drifted (and always failed/rejected) rewrites out of robustness; counted either way."""
    numeric_tolerance_sd: float = 0.1
    """For numeric features in robustness, |Δ| must exceed this many SDs of the original values to
    count as a change (binary/ordinal features use the sign of Δ)."""
    calibration_bins: int = 10
    """Equal-width bins of the reliability table and ECE."""
    max_listed_ids: int = 100
    """Excluded / suspicious pair_ids listed inline in stats.json (tables hold all of them)."""
    logit_max_iter: int = 100
    drop_constant: bool = False
    """Leave features that never vary out of the imprint regressions (named in ``inputs.notes``)
    instead of stopping with an error. Collinear groups always stop the analysis: dropping one of
    them would silently change what the others mean."""
    # --- issue 15: power verdicts (seal_audit.stats.power) -------------------------------------
    power: float = POWER
    """Power at which every coefficient's minimum detectable effect (MDE) is stated."""
    effect_of_interest_imprint: float = IMPRINT_EFFECT_OF_INTEREST
    """Imprint size (reward units) below which a non-significant imprint is 'underpowered' if its MDE
    is larger; likewise for the two below (probability units)."""
    effect_of_interest_misalignment: float = MISALIGNMENT_EFFECT_OF_INTEREST
    effect_of_interest_robustness: float = ROBUSTNESS_EFFECT_OF_INTEREST

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed: must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.n_bootstrap, int) or self.n_bootstrap < 0:
            raise ConfigError(f"n_bootstrap: must be an integer >= 0, got {self.n_bootstrap!r}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"alpha: must be in (0, 1), got {self.alpha!r}")
        if self.correction not in CORRECTIONS:
            raise ConfigError(f"correction: must be one of {list(CORRECTIONS)}, got {self.correction!r}")
        if not self.estimators or any(e not in ESTIMATORS for e in self.estimators):
            raise ConfigError(
                f"estimators: must be a non-empty subset of {list(ESTIMATORS)}, got {self.estimators!r}"
            )
        if not self.gamma_features:
            raise ConfigError("gamma_features: at least one feature is needed")
        if self.numeric_tolerance_sd < 0:
            raise ConfigError("numeric_tolerance_sd: must be >= 0")
        if self.calibration_bins < 2:
            raise ConfigError("calibration_bins: must be >= 2")
        if self.max_listed_ids < 0 or self.logit_max_iter < 1:
            raise ConfigError("max_listed_ids must be >= 0 and logit_max_iter >= 1")
        if not 0 < self.power < 1:
            raise ConfigError(f"power: must be in (0, 1), got {self.power!r}")
        for name in (
            "effect_of_interest_imprint",
            "effect_of_interest_misalignment",
            "effect_of_interest_robustness",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)!r}")


@dataclasses.dataclass(frozen=True, eq=False)
class AnalysisInputs:
    """The long tables and names the analysis reads (shapes in docs/results.md)."""

    pairs: pd.DataFrame
    """``pair_id`` (+ optional ``context_diverges``): the pairs of D, defining N."""
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
    baselines: tuple[str, ...] | None = None
    """Baseline RMs (agreement only); None = every RM whose name starts with 'length'."""
    in_sample: dict[str, bool] | None = None
    """Issue 15: per RM name, whether it was trained on D (its agreement on D is then in-sample,
    i.e. training accuracy); recorded under ``caveats``. None = not stated (recorded as unknown)."""

    def __post_init__(self) -> None:
        if not self.post:
            raise ConfigError("post: the post-D RM name is required")
        if self.pre is not None and self.pre == self.post:
            raise ConfigError(f"pre and post name the same RM {self.post!r}")
        names = [s.name for s in self.specs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"specs: feature(s) specified twice: {dup}")
