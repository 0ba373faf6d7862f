"""seal-audit: what did a reward model learn from a preference dataset? (the SEAL method)

The public facade. Importing it is cheap: stages, torch and the LLM client load only when used.

    import seal_audit
    run = seal_audit.run("seal.toml")               # or an AuditConfig; returns a typed Run
    run.stats.resistance.rate, run.to_pandas("imprint"), run.report_path
    run = seal_audit.open_run("seal-run")           # any run directory, read back typed
    run.manifest.rms["post"].role, run.headline().lines()
    run = seal_audit.score(df, rm={"pre": (model, tokenizer), "post": pipe}, pre="pre", post="post")
    seal_audit.export_run("seal-run", "feedback-forensics")

The public names (``dir(seal_audit)``):

- ``run(config)`` -- every stage of a config, resumable; returns a ``Run``.
- ``score(pairs, rm=...)`` -- score a file / DataFrame / ``datasets.Dataset`` with models in memory
  (transformers model + tokenizer, a pipeline, any callable); returns a ``Run``. ``seal_audit.score``
  is the SCORE stage package ``seal_audit/score/`` made callable: calling it calls
  ``seal_audit.api.score``, and its stage functions (``score_run``, ``score_texts``) stay importable
  from it (``from seal_audit.score import score_run``).
- ``open_run(dir)`` -- a run directory read back typed (``Run``; ``RunResult`` is its old name).
- ``export_run(dir, to)`` -- Feedback Forensics, RewardBench, CSV or Parquet export of a run.
- ``load_pairs(path)`` -- a pairs file as ``PreferencePair`` records; ``LoadOptions`` says how to read it.
- ``load_config(path)`` / ``AuditConfig`` -- a TOML config, validated; ``AnalysisOptions`` and
  ``RMOptions`` are its analysis and RM sections (the same models as the CLI flags).
- ``PreferencePair``, ``FeatureSpec``, ``RunManifest`` -- the typed records; ``AnalysisResult`` --
  every SEAL number of stats.json, typed; ``RunStore`` -- the run directory itself.
- ``SealError`` (base), ``ConfigError``, ``InputError`` -- the errors seal-audit raises on purpose.
- ``__version__``.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from seal_audit.api import score
    from seal_audit.config import AnalysisOptions, AuditConfig, RMOptions, load_config
    from seal_audit.data import FeatureSpec, PreferencePair
    from seal_audit.data.errors import ConfigError, InputError, SealError
    from seal_audit.data.load_options import LoadOptions
    from seal_audit.data.records import RunManifest
    from seal_audit.export import export_run
    from seal_audit.pipeline import Run, RunResult, open_run, run
    from seal_audit.sources import load_pairs
    from seal_audit.stats import AnalysisResult
    from seal_audit.store import RunStore

_LAZY = {
    "run": "seal_audit.pipeline",
    "open_run": "seal_audit.pipeline",
    "Run": "seal_audit.pipeline",
    "RunResult": "seal_audit.pipeline",
    "export_run": "seal_audit.export",
    "AuditConfig": "seal_audit.config",
    "AnalysisOptions": "seal_audit.config",
    "RMOptions": "seal_audit.config",
    "load_config": "seal_audit.config",
    "LoadOptions": "seal_audit.data.load_options",
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
    "LoadOptions",
    "PreferencePair",
    "RMOptions",
    "Run",
    "RunManifest",
    "RunResult",
    "RunStore",
    "SealError",
    "__version__",
    "export_run",
    "load_config",
    "load_pairs",
    "open_run",
    "run",
    "score",
]


class _ScoreStage(types.ModuleType):
    """The class of the SCORE stage package ``seal_audit/score/`` once it is imported: calling the
    package calls :func:`seal_audit.api.score`.

    Why: ``seal_audit.score(pairs, rm=...)`` is the public API and ``seal_audit/score/`` the stage
    (DESIGN.md's layout); one name cannot be two objects, and a function shadowing the package made
    ``import seal_audit.score.stage as m`` an ImportError and ``import seal_audit.score as S`` the
    function. So the name is the package, and the package is callable: ``seal_audit.score(...)``,
    ``from seal_audit import score; score(...)``, ``from seal_audit.score import score_run`` and
    ``import seal_audit.score.engine`` all work, whichever was imported first.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from seal_audit.api import score

        return score(*args, **kwargs)

    @property
    def __wrapped__(self) -> Any:
        """``inspect.signature(seal_audit.score)`` and IDEs show the function's parameters."""
        from seal_audit.api import score

        return score


class _Package(types.ModuleType):
    """Makes the SCORE stage package callable as it is bound to this package (see _ScoreStage)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "score" and type(value) is types.ModuleType:
            value.__class__ = _ScoreStage
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    import importlib

    if name == "score":  # the stage package, callable (importing it binds it here)
        return importlib.import_module("seal_audit.score")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seal_audit' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API only (what ``dir(seal_audit)`` and tab completion show)."""
    return sorted(__all__)
