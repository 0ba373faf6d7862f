"""``seal cache``: what a run's content-addressed cache holds, and clearing a namespace of it."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from seal_audit._cli._common import console
from seal_audit._cli._output import summary
from seal_audit._cli._writer import writer_store
from seal_audit.store import RunStore


@click.command("cache")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--clear", "clear", default=None, help="Delete every entry of this namespace (e.g. score, label)."
)
def command(run_dir: Path, clear: str | None) -> None:
    """List cached results per namespace and component (printable keys: component|settings|text)."""
    if clear:
        store = writer_store(run_dir, "cache --clear")
        n = store.cache.delete_namespace(clear)
        click.echo(f"deleted {n} entries from '{clear}'")
        summary(run_dir=str(run_dir), cleared=clear, deleted=n)
        return
    store = RunStore(run_dir, create=False)  # listing only reads: no lock
    table = Table("namespace", "component", "entries")
    rows = list(store.cache.summary())
    for ns, comp, n in rows:
        table.add_row(ns, comp, str(n))
    console.print(table)
    summary(
        run_dir=str(run_dir), entries=[{"namespace": ns, "component": c, "entries": n} for ns, c, n in rows]
    )
