"""``seal docs``: print a reference that ships with seal-audit (results: every stats.json key; license)."""

from __future__ import annotations

import click


@click.command("docs")
@click.argument("name", type=click.Choice(["results", "license"]), default="results")
def command(name: str) -> None:
    """Print NAME: ``results`` (docs/results.md: every key of stats.json) or ``license``."""
    from seal_audit._cli._output import summary, wants_json
    from seal_audit.docs import doc_text

    text = doc_text(name)
    if wants_json():
        summary(name=name, text=text)
    else:
        click.echo(text, nl=False)
