"""Optional experiment-tracker logging (MLflow, Weights & Biases): off unless asked for, and only
with the package installed (seal-audit depends on neither).

What is logged: the run's headline numbers (agreement per RM, alignment resistance, regime
shares) as metrics, the RM specs and roles as parameters, stats.json and the report as artifacts.
"""

from __future__ import annotations

import json
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


def log_to_tracker(run_dir: Path, tracker: str) -> dict[str, Any]:
    """Log the run to ``tracker`` (``mlflow``: the active/ default tracking URI; ``wandb``: its
    configured project). A tracker that is not installed is one clear error."""
    from seal_audit.store.run_store import REPORT_HTML, STATS, RunStore

    if tracker not in TRACKERS:
        raise SealError(f"unknown tracker '{tracker}' (have {', '.join(TRACKERS)})")
    store = RunStore(run_dir, create=False)
    stats_path = store.path(STATS)
    if not stats_path.exists():
        raise SealError(f"{run_dir}: no {STATS} yet; run `seal analyze {run_dir}` first")
    stats = json.loads(stats_path.read_text(encoding="utf-8"))
    metrics = headline_metrics(stats)
    params = {f"rm.{n}": f"{r.spec} ({r.role})" for n, r in store.manifest.rms.items()}
    artifacts = [p for p in (stats_path, store.path(REPORT_HTML)) if p.exists()]
    if tracker == "mlflow":
        try:
            import mlflow  # type: ignore[import-not-found]
        except ImportError:
            raise SealError("--log-to mlflow needs the mlflow package: pip install mlflow") from None
        with mlflow.start_run(run_name=store.root.name):
            mlflow.log_params(params)
            mlflow.log_metrics({k.replace("/", "_"): v for k, v in metrics.items()})
            for a in artifacts:
                mlflow.log_artifact(str(a))
    else:
        try:
            import wandb  # type: ignore[import-not-found]
        except ImportError:
            raise SealError("--log-to wandb needs the wandb package: pip install wandb") from None
        run = wandb.init(name=store.root.name, config=params, job_type="seal-audit")
        run.log(metrics)
        for a in artifacts:
            run.save(str(a), base_path=str(a.parent), policy="now")
        run.finish()
    return {
        "tracker": tracker,
        "metrics": len(metrics),
        "params": len(params),
        "artifacts": [str(a) for a in artifacts],
    }
