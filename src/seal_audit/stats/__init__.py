"""SEAL statistics: pure functions over rewards and features → frozen result records.

No I/O and no model code: the CLI and pipeline read tables, call :func:`analyze`, and write
``result.to_json()`` and ``result.tables()``. Every metric is also callable on its own.
"""

from seal_audit.stats._common import Exclusions, Skipped, canonical_json
from seal_audit.stats.analysis import SCHEMA, AnalysisResult, FeatureInfo, InputSummary, analyze
from seal_audit.stats.diagnostics import (
    CalibrationResult,
    FeatureResistance,
    ReliabilityBin,
    SuspiciousPairs,
    calibration,
    resistance_by_feature,
    suspicious_pairs,
)
from seal_audit.stats.imprint import ImprintResult, imprint_fe, imprint_pooled, imprint_vif, stack_texts
from seal_audit.stats.inference import (
    McNemarResult,
    MeanEstimate,
    RateEstimate,
    adjust_pvalues,
    bootstrap_cell_counts,
    clopper_pearson,
    mcnemar_exact,
)
from seal_audit.stats.misalignment import MisalignmentResult, misalignment_drivers, theta_regression
from seal_audit.stats.options import AnalysisInputs, AnalysisOptions
from seal_audit.stats.prepare import PreparedData, infer_feature_specs, prepare
from seal_audit.stats.regression import (
    Coefficient,
    CollinearityError,
    RegressionResult,
    SeparationError,
    VifRow,
    logit,
    ols,
    vif,
)
from seal_audit.stats.resistance import (
    REGIMES,
    AgreementResult,
    GammaResult,
    RegimeResult,
    ThreeWay,
    agreement,
    gamma_breakdown,
    lm_agreement,
    mcnemar_tests,
    regimes,
    regimes_from_counts,
    resistance,
    three_way,
)
from seal_audit.stats.robustness import (
    AccuracyChange,
    DriftGate,
    RobustnessResult,
    accuracy_change,
    change_indicators,
    robustness_scores,
)
from seal_audit.stats.shift import ShiftResult, reward_shift, shift_summary
from seal_audit.stats.simulate import PlantedFeature, SimulatedData, SimulationSpec, simulate

__all__ = [
    "REGIMES",
    "SCHEMA",
    "AccuracyChange",
    "AgreementResult",
    "AnalysisInputs",
    "AnalysisOptions",
    "AnalysisResult",
    "CalibrationResult",
    "Coefficient",
    "CollinearityError",
    "DriftGate",
    "Exclusions",
    "FeatureInfo",
    "FeatureResistance",
    "GammaResult",
    "ImprintResult",
    "InputSummary",
    "McNemarResult",
    "MeanEstimate",
    "MisalignmentResult",
    "PlantedFeature",
    "PreparedData",
    "RateEstimate",
    "RegimeResult",
    "RegressionResult",
    "ReliabilityBin",
    "RobustnessResult",
    "SeparationError",
    "ShiftResult",
    "SimulatedData",
    "SimulationSpec",
    "Skipped",
    "SuspiciousPairs",
    "ThreeWay",
    "VifRow",
    "accuracy_change",
    "adjust_pvalues",
    "agreement",
    "analyze",
    "bootstrap_cell_counts",
    "calibration",
    "canonical_json",
    "change_indicators",
    "clopper_pearson",
    "gamma_breakdown",
    "imprint_fe",
    "imprint_pooled",
    "imprint_vif",
    "infer_feature_specs",
    "lm_agreement",
    "logit",
    "mcnemar_exact",
    "mcnemar_tests",
    "misalignment_drivers",
    "ols",
    "prepare",
    "regimes",
    "regimes_from_counts",
    "resistance",
    "resistance_by_feature",
    "reward_shift",
    "robustness_scores",
    "shift_summary",
    "simulate",
    "stack_texts",
    "suspicious_pairs",
    "theta_regression",
    "three_way",
    "vif",
]
