"""LABEL stage: per-text features from the LM-labeler, offline featurizers and dataset columns.

Importing this package does not import openai, VADER or textstat; the factories that need them do.
"""

from seal_audit.features.base import (
    Featurizer,
    FeaturizerOutcome,
    LabelContext,
    LabelItem,
    LabelRow,
    Progress,
    available_featurizers,
    get_featurizer,
    offline_featurizer_names,
    register_featurizer,
)
from seal_audit.features.build import build_featurizers, expand_names
from seal_audit.features.run import (
    FEATURES_TABLE,
    SPECS_DOC,
    LabelOutcome,
    build_items,
    label_items,
    label_run,
    merge_features,
    rows_to_frame,
)
from seal_audit.features.specs import (
    SEAL_FEATURE_NAMES,
    SEAL_FEATURES,
    ColumnSource,
    UserFeatures,
    feature_set_hash,
    lm_feature_set,
    load_feature_config,
    load_feature_specs,
)

__all__ = [
    "FEATURES_TABLE",
    "SEAL_FEATURES",
    "SEAL_FEATURE_NAMES",
    "SPECS_DOC",
    "ColumnSource",
    "Featurizer",
    "FeaturizerOutcome",
    "LabelContext",
    "LabelItem",
    "LabelOutcome",
    "LabelRow",
    "Progress",
    "UserFeatures",
    "available_featurizers",
    "build_featurizers",
    "build_items",
    "expand_names",
    "feature_set_hash",
    "get_featurizer",
    "label_items",
    "label_run",
    "lm_feature_set",
    "load_feature_config",
    "load_feature_specs",
    "merge_features",
    "offline_featurizer_names",
    "register_featurizer",
    "rows_to_frame",
]
