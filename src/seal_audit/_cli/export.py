"""``seal export RUN --to FORMAT``: a run's results for Feedback Forensics, RewardBench, or as CSV / Parquet."""

from __future__ import annotations

from pathlib import Path

import click

from seal_audit._cli._common import console, say
from seal_audit._cli._output import summary

HELP = """Export RUN_DIR (read only) for other tools.

\b
--to feedback-forensics  AnnotatedPairs 2.0 JSON: the human label (default annotator), each RM
                         and the LM-labeler (gamma) as annotators, features, regime and ids as
                         per-comparison metadata; open it with Feedback Forensics
--to rewardbench         per RM: NAME.json (id, subset, results, scores_chosen, scores_rejected
                         per pair, as RewardBench's run_rm.py writes) and NAME.summary.json
--to csv | parquet       every run and analysis table, and stats.json

\b
--out defaults to RUN_DIR/exports/FORMAT/. --log-to mlflow|wandb (repeatable; off by default)
also logs the headline numbers, stats.json and the report to that tracker when its package is
installed, wherever the tracker is configured to log (seal sets nothing): MLflow follows
MLFLOW_TRACKING_URI (a file: store needs MLFLOW_ALLOW_FILE_STORE=true), W&B its project and
WANDB_MODE (offline: a local run for `wandb sync`).
"""


@click.command("export", help=HELP)
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--to",
    "to",
    type=click.Choice(["feedback-forensics", "rewardbench", "csv", "parquet"]),
    default=None,
    help="Export format (see above).",
)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Where [RUN_DIR/exports/FORMAT].")
@click.option("--subset", default=None, help="RewardBench subset name [the run directory's name].")
@click.option(
    "--log-to", "log_to", multiple=True, type=click.Choice(["mlflow", "wandb"]), help="Also log to a tracker."
)
def command(
    run_dir: Path, to: str | None, out: Path | None, subset: str | None, log_to: tuple[str, ...]
) -> None:
    from seal_audit.data.errors import ConfigError
    from seal_audit.export import export_run, log_to_tracker

    if to is None and not log_to:
        raise ConfigError("give --to FORMAT (feedback-forensics, rewardbench, csv, parquet) and/or --log-to")
    result: dict[str, object] = {"run_dir": str(run_dir)}
    if to is not None:
        done = export_run(run_dir, to, out, subset=subset)  # type: ignore[arg-type]  # a click.Choice
        files = done["files"]
        say(f"export {to}: {len(files)} file(s) under {done['out']}")
        click.echo(str(done["out"]))
        result.update(done)
    logged = [log_to_tracker(run_dir, t, quiet=console.quiet) for t in log_to]
    for entry in logged:
        say(
            f"logged to {entry['tracker']}: {entry['metrics']} metrics, {len(entry['artifacts'])} artifact(s)"
        )
    if logged:
        result["logged"] = logged
    summary(**result)
