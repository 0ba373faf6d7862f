"""Typed records and errors shared by every stage. Imports nothing else of seal-audit."""

from seal_audit.data.errors import (
    ConfigError,
    InputError,
    MissingDependencyError,
    OfflineError,
    SealError,
)
from seal_audit.data.records import (
    SIDES,
    FeatureKind,
    FeatureLabel,
    FeatureRole,
    FeatureSpec,
    InputRecord,
    PreferencePair,
    Rewrite,
    RunManifest,
    Score,
    Side,
    SourceRef,
    content_pair_id,
    context_group_id,
    text_hash,
)

__all__ = [
    "SIDES",
    "ConfigError",
    "FeatureKind",
    "FeatureLabel",
    "FeatureRole",
    "FeatureSpec",
    "InputError",
    "InputRecord",
    "MissingDependencyError",
    "OfflineError",
    "PreferencePair",
    "Rewrite",
    "RunManifest",
    "Score",
    "SealError",
    "Side",
    "SourceRef",
    "content_pair_id",
    "context_group_id",
    "text_hash",
]
