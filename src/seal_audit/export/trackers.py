"""Optional experiment-tracker logging (MLflow, Weights & Biases): off unless asked for, and only
with the package installed (seal-audit depends on neither).

What is logged: the run's headline numbers (agreement per RM, alignment resistance, regime
shares) as metrics, the RM specs and roles as parameters, stats.json and the report (report.html,
report.md, whichever exist) as artifacts.

Where it goes is the tracker's own configuration, never ours: MLflow's tracking URI
(``MLFLOW_TRACKING_URI``; MLflow 3 refuses a ``file:`` store unless ``MLFLOW_ALLOW_FILE_STORE=true``,
and mlflow-skinny has no SQL store for its default ``sqlite:`` URI), W&B's project and mode
(``WANDB_PROJECT``, ``WANDB_MODE=offline`` for a local run that ``wandb sync`` uploads later). seal
sets none of them: an audit logged somewhere the user did not choose is worse than a clear refusal.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from seal_audit.data.errors import SealError

TRACKERS = ("mlflow", "wandb")


def headline_metrics(stats: dict[str, Any]) -> dict[str, float]:
    """Flat numeric metrics from stats.json: every top-level number and every number one or two
    levels down (``agreement.post.agreement``), named by its path; strings and lists are skipped."""
    out: dict[str, float] = {}

    def walk(prefix: str, obj: Any, depth: int) -> None:
        if isinstance(obj, bool):
            return
        if isinstance(obj, (int, float)):
            out[prefix] = float(obj)
        elif isinstance(obj, dict) and depth < 3:
            for k, v in obj.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v, depth + 1)

    for key in ("agreement", "resistance", "regimes", "reward_shift"):
        if key in stats:
            walk(key, stats[key], 0)
    return out


def _first_line(exc: BaseException) -> str:
    """Trackers raise paragraphs (MLflow's file-store notice is five sentences, a pydantic error in
    W&B's settings is a header line, then the field, then the reason): the lines joined, the first
    sentence of that, at most 300 characters."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = "; ".join(lines).split(". ")[0] if lines else type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"


def log_to_tracker(run_dir: Path, tracker: str, *, quiet: bool = False) -> dict[str, Any]:
    """Log the run to ``tracker`` (``mlflow``: the active/ default tracking URI; ``wandb``: its
    configured project). A tracker that is not installed, or that refuses, is one clear error.
    ``quiet`` (``seal -q``) silences W&B's own banner and run summary on stderr."""
    from seal_audit.store.run_store import REPORT_HTML, REPORT_MD, STATS, RunStore

    if tracker not in TRACKERS:
        raise SealError(f"unknown tracker '{tracker}' (have {', '.join(TRACKERS)})")
    store = RunStore(run_dir, create=False)
    stats_path = store.path(STATS)
    if not stats_path.exists():
        raise SealError(f"{run_dir}: no {STATS} yet; run `seal analyze {run_dir}` first")
    stats = json.loads(stats_path.read_text(encoding="utf-8"))
    metrics = headline_metrics(stats)
    params = {f"rm.{n}": f"{r.spec} ({r.role})" for n, r in store.manifest.rms.items()}
    artifacts = [p for p in (stats_path, store.path(REPORT_HTML), store.path(REPORT_MD)) if p.exists()]
    if tracker == "mlflow":
        try:
            import mlflow
        except ImportError:
            raise SealError("--log-to mlflow needs the mlflow package: pip install mlflow") from None
        where = ""
        try:
            where = f" (tracking URI {mlflow.get_tracking_uri()})"
            with mlflow.start_run(run_name=store.root.name):
                mlflow.log_params(params)
                mlflow.log_metrics({k.replace("/", "_"): v for k, v in metrics.items()})
                for a in artifacts:
                    mlflow.log_artifact(str(a))
        except Exception as exc:  # the tracker's own refusal (store URI, auth, server): one line
            raise SealError(f"--log-to mlflow failed{where}: {_first_line(exc)}") from exc
    else:
        try:
            import wandb
        except ImportError:
            raise SealError("--log-to wandb needs the wandb package: pip install wandb") from None
        try:
            settings = wandb.Settings(silent=True) if quiet else None
            run = wandb.init(name=store.root.name, config=params, job_type="seal-audit", settings=settings)
            run.log(metrics)
            for a in artifacts:  # a copy inside the run's folder: a snapshot, as MLflow keeps (wandb.save
                # of an outside file links it, so a later `seal analyze` would change a logged run)
                kept = Path(run.dir) / a.name
                shutil.copyfile(a, kept)
                run.save(str(kept), base_path=run.dir, policy="now")
            run.finish()
        except Exception as exc:
            raise SealError(f"--log-to wandb failed: {_first_line(exc)}") from exc
    return {
        "tracker": tracker,
        "metrics": len(metrics),
        "params": len(params),
        "artifacts": [str(a) for a in artifacts],
    }
