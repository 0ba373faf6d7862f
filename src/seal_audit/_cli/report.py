"""``seal report RUN_DIR``: write report.html (figures + pair explorer) and report.md for a run."""

from __future__ import annotations

from pathlib import Path

import click

from seal_audit._cli._common import console
from seal_audit._cli._writer import writer_store
from seal_audit.config import ReportOptions
from seal_audit.report import DEFAULT_TEXT_LIMIT, build_report


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write the HTML (default: RUN_DIR/report.html); report.md goes beside it.",
)
@click.option(
    "--text-limit",
    type=click.IntRange(min=0),
    default=DEFAULT_TEXT_LIMIT,
    show_default=True,
    help="Characters kept per text in the pair explorer (0 = no limit).",
)
@click.option(
    "--forest-rm",
    "forest_rms",
    multiple=True,
    metavar="NAME",
    help="An RM the overlaid imprint forest shows on opening (repeatable; [report] forest_rms; "
    "default: the first six). The page's checkboxes show any others.",
)
def command(run_dir: Path, out: Path | None, text_limit: int, forest_rms: tuple[str, ...]) -> None:
    """Build the self-contained HTML report and the Markdown summary of RUN_DIR.

    Sections the run has not computed say so ("not computed: <reason>") instead of failing.
    """
    store = writer_store(run_dir, "report")
    with console.status("rendering the report ..."):
        paths = build_report(
            store, out, text_limit=text_limit or None, options=ReportOptions(forest_rms=forest_rms)
        )
    for w in paths.warnings:
        console.print(f"[yellow]warning: {w}[/yellow]")
    size = paths.html.stat().st_size / 1e6
    click.echo(f"{paths.html} ({size:.1f} MB)")
    click.echo(str(paths.md))
    from seal_audit._cli._output import summary

    summary(html=str(paths.html), md=str(paths.md), html_mb=round(size, 3))
