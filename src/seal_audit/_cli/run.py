"""``seal run CONFIG``: every stage from data to report, resumable."""

from __future__ import annotations

from pathlib import Path

import click

from seal_audit._cli._common import label_progress, maybe_progress, progress_factory, say


def print_headline(result: object) -> None:
    from seal_audit.pipeline import RunResult, demo_findings

    assert isinstance(result, RunResult)
    from seal_audit._cli._output import summary

    lines = demo_findings(result)
    for line in lines:
        click.echo(line)
    if result.report_path:
        click.echo(f"report: {result.report_path}")
    click.echo(f"stats:  {result.run_dir / 'stats.json'}")
    summary(
        run_dir=str(result.run_dir),
        stats=str(result.run_dir / "stats.json"),
        report=str(result.report_path) if result.report_path else None,
        findings=list(lines),
    )


@click.command("run")
@click.argument("config", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--quiet", is_flag=True, help="Only the headline at the end.")
@click.option(
    "--allow-partial",
    is_flag=True,
    help="Go on to the analysis when a labeling or rewrite stage failed more texts than max_failed.",
)
def command(config: Path, quiet: bool, allow_partial: bool) -> None:
    """Run load → score → label → rewrite → analyze → report as CONFIG describes (see `seal init`).

    Interrupt it at any moment and run it again: it continues from the run directory, recomputes
    nothing finished, and ends with the same stats.json as an uninterrupted run.
    """
    from seal_audit.pipeline import run

    with maybe_progress(not quiet) as progress:
        result = run(
            config,
            say=(lambda _: None) if quiet else say,
            progress=progress_factory(progress) if progress else None,
            label_progress=label_progress(progress) if progress else None,
            allow_partial=allow_partial,
        )
    print_headline(result)
