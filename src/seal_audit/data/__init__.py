"""Typed records and errors shared by every stage. Imports nothing else of seal-audit.

Names load lazily, so that importing ``seal_audit.data.errors`` (the CLI does it for every command,
``--help`` and completion included) does not import pydantic and the records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seal_audit.data.errors import (
    ConfigError,
    InputError,
    MissingDependencyError,
    OfflineError,
    SealError,
)

if TYPE_CHECKING:
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

_RECORDS = frozenset(
    {
        "SIDES",
        "FeatureKind",
        "FeatureLabel",
        "FeatureRole",
        "FeatureSpec",
        "InputRecord",
        "PreferencePair",
        "Rewrite",
        "RunManifest",
        "Score",
        "Side",
        "SourceRef",
        "content_pair_id",
        "context_group_id",
        "text_hash",
    }
)


def __getattr__(name: str) -> Any:
    if name in _RECORDS:
        from seal_audit.data import records

        return getattr(records, name)
    raise AttributeError(f"module 'seal_audit.data' has no attribute {name!r}")


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
