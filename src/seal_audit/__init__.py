"""seal-audit: what did a reward model learn from a preference dataset? (the SEAL method)

The public facade. Importing it is cheap: stages, torch and the LLM client load only when used.

    import seal_audit
    run = seal_audit.run("seal.toml")               # or an AuditConfig; returns a typed Run
    run.stats.resistance.rate, run.to_pandas("imprint"), run.report_path
    run = seal_audit.open_run("seal-run")           # any run directory, read back typed
    run.manifest.rms["post"].role, run.headline().lines()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from seal_audit.config import AnalysisOptions, AuditConfig, RMOptions, load_config
    from seal_audit.data import FeatureSpec, PreferencePair
    from seal_audit.data.errors import ConfigError, InputError, SealError
    from seal_audit.data.records import RunManifest
    from seal_audit.pipeline import Run, RunResult, open_run, run
    from seal_audit.sources import load_pairs
    from seal_audit.stats import AnalysisResult
    from seal_audit.store import RunStore

_LAZY = {
    "run": "seal_audit.pipeline",
    "open_run": "seal_audit.pipeline",
    "Run": "seal_audit.pipeline",
    "RunResult": "seal_audit.pipeline",
    "AuditConfig": "seal_audit.config",
    "AnalysisOptions": "seal_audit.config",
    "RMOptions": "seal_audit.config",
    "load_config": "seal_audit.config",
    "PreferencePair": "seal_audit.data",
    "FeatureSpec": "seal_audit.data",
    "RunManifest": "seal_audit.data.records",
    "SealError": "seal_audit.data.errors",
    "ConfigError": "seal_audit.data.errors",
    "InputError": "seal_audit.data.errors",
    "AnalysisResult": "seal_audit.stats",
    "load_pairs": "seal_audit.sources",
    "RunStore": "seal_audit.store",
}

__all__ = [
    "AnalysisOptions",
    "AnalysisResult",
    "AuditConfig",
    "ConfigError",
    "FeatureSpec",
    "InputError",
    "PreferencePair",
    "RMOptions",
    "Run",
    "RunManifest",
    "RunResult",
    "RunStore",
    "SealError",
    "__version__",
    "load_config",
    "load_pairs",
    "open_run",
    "run",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seal_audit' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API only (what ``dir(seal_audit)`` and tab completion show)."""
    return sorted(__all__)
