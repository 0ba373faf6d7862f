"""seal-audit: what did a reward model learn from a preference dataset? (the SEAL method)

The public facade. Importing it is cheap: stages, torch and the LLM client load only when used.

    import seal_audit
    result = seal_audit.run("seal.toml")        # or an AuditConfig
    result.stats["resistance"], result.to_pandas("imprint"), result.report_path
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from seal_audit.config import AuditConfig, load_config
    from seal_audit.data import FeatureSpec, PreferencePair
    from seal_audit.pipeline import RunResult, run
    from seal_audit.sources import load_pairs
    from seal_audit.store import RunStore

_LAZY = {
    "run": "seal_audit.pipeline",
    "RunResult": "seal_audit.pipeline",
    "AuditConfig": "seal_audit.config",
    "load_config": "seal_audit.config",
    "PreferencePair": "seal_audit.data",
    "FeatureSpec": "seal_audit.data",
    "load_pairs": "seal_audit.sources",
    "RunStore": "seal_audit.store",
}

__all__ = [
    "AuditConfig",
    "FeatureSpec",
    "PreferencePair",
    "RunResult",
    "RunStore",
    "__version__",
    "load_config",
    "load_pairs",
    "run",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seal_audit' has no attribute {name!r}")
