"""``seal demo``: the whole SEAL audit offline, in minutes, on data with a known planted structure."""

from __future__ import annotations

import time
from pathlib import Path

import click

from seal_audit._cli._common import label_progress, maybe_progress, progress_factory, say
from seal_audit._cli.run import print_headline


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("seal-demo"),
    show_default=True,
    help="Run directory (kept: a second run is a warm, cached run).",
)
@click.option("--data", default=None, help="Audit this pairs file instead of the generated demo dataset.")
@click.option(
    "--pairs", "n_pairs", type=int, default=1500, show_default=True, help="Size of the generated dataset."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="Only the findings at the end.")
def command(out: Path, data: str | None, n_pairs: int, seed: int, quiet: bool) -> None:
    """Generate hh-rlhf-style data with planted structure (or use --data), train a pre-D and a
    post-D reward model on MiniLM embeddings, label, rewrite, analyse and write the report — no
    network, no API key, no GPU. Ends by saying what SEAL recovered of the planted structure."""
    from seal_audit.data.errors import disk_error
    from seal_audit.pipeline import demo_config, run
    from seal_audit.store.lock import RunLock

    t0 = time.perf_counter()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_error(exc, out) from exc
    # one writer from the first file on: the demo data set is written before `run` opens the store
    with RunLock(out, "demo"), maybe_progress(not quiet) as progress:
        cfg = demo_config(out, data, n_pairs=n_pairs, seed=seed)
        result = run(
            cfg,
            say=(lambda _: None) if quiet else say,
            progress=progress_factory(progress) if progress else None,
            label_progress=label_progress(progress) if progress else None,
        )
    click.echo(f"\nSEAL demo on {data or 'the generated demo dataset'} ({time.perf_counter() - t0:.0f} s)")
    print_headline(result)
