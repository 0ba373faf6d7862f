"""LABEL stage: per-text features from the LM-labeler, offline featurizers and dataset columns.

Importing this package does not import openai, VADER, textstat or Ray; the factories that need them
do, and ``label_run_ray`` (the ``[ray]`` extra) is imported on first use.
"""

from typing import TYPE_CHECKING, Any

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
from seal_audit.features.offline import FunctionFeaturizer
from seal_audit.features.plugins import ENTRY_POINT_GROUP
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

if TYPE_CHECKING:
    from seal_audit.features.ray_label import label_run_ray


def __getattr__(name: str) -> Any:
    if name == "label_run_ray":
        from seal_audit.features.ray_label import label_run_ray

        return label_run_ray
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ENTRY_POINT_GROUP",
    "FEATURES_TABLE",
    "SEAL_FEATURES",
    "SEAL_FEATURE_NAMES",
    "SPECS_DOC",
    "ColumnSource",
    "Featurizer",
    "FeaturizerOutcome",
    "FunctionFeaturizer",
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
    "label_run_ray",
    "lm_feature_set",
    "load_feature_config",
    "load_feature_specs",
    "merge_features",
    "offline_featurizer_names",
    "register_featurizer",
    "rows_to_frame",
]
