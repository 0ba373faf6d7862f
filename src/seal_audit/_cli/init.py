"""``seal init``: write a commented example config (the SEAL paper's setup)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import click

from seal_audit.data.errors import SealError


@click.command("init")
@click.argument("path", type=click.Path(path_type=Path), default=Path("seal.toml"))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def command(path: Path, force: bool) -> None:
    """Write a commented run config (the paper's setup) to PATH (default seal.toml)."""
    if path.exists() and not force:
        raise SealError(f"{path} exists; use --force to overwrite")
    from seal_audit.store.io import write_text_atomic

    write_text_atomic(path, files("seal_audit").joinpath("templates/paper.toml").read_text(encoding="utf-8"))
    click.echo(f"wrote {path}; edit it, then: seal run {path}")
    from seal_audit._cli._output import summary

    summary(config=str(path))
