"""EXPORT stage: a run's results in the formats other tools read.

Feedback Forensics (AnnotatedPairs 2.0 JSON), RewardBench (per-prompt results per RM), a CSV or
Parquet bundle of every table, and -- only when asked and only when the package is installed --
MLflow or Weights & Biases logging of the headline numbers, stats.json and the report. The stage
reads the run directory and writes elsewhere (``RUN/exports/<format>/`` by default); it never
changes the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seal_audit.export.formats import FORMATS, ExportFormat, feedback_forensics, rewardbench, write_export
from seal_audit.export.trackers import TRACKERS, log_to_tracker
from seal_audit.store.run_store import EXPORTS_DIR, RunStore


def export_run(
    run_dir: str | Path,
    to: ExportFormat,
    out: str | Path | None = None,
    *,
    subset: str | None = None,
) -> dict[str, Any]:
    """Export a run directory (read only) to ``out`` (default ``RUN/exports/<to>/``)."""
    from seal_audit.data.errors import SealError
    from seal_audit.export._run import read_run

    if to not in FORMATS:
        raise SealError(f"unknown export format '{to}' (have {', '.join(FORMATS)})")
    store = RunStore(Path(run_dir), create=False)
    target = Path(out) if out is not None else store.path(EXPORTS_DIR) / to
    view = read_run(store)
    return {"to": to, "out": str(target), **write_export(view, store.root, to, target, subset=subset)}


__all__ = [
    "FORMATS",
    "TRACKERS",
    "ExportFormat",
    "export_run",
    "feedback_forensics",
    "log_to_tracker",
    "rewardbench",
]
