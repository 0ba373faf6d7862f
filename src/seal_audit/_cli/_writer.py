"""Opening a run directory as its one writer, for the verbs that write runs."""

from __future__ import annotations

from pathlib import Path

import click

from seal_audit.store import RunStore


def writer_store(run_dir: Path, verb: str, *, create: bool = False) -> RunStore:
    """The run directory opened as its one writer (``RunStore(lock=verb)``), closed -- lock given
    back -- when the command ends, however it ends."""
    store = RunStore(run_dir, create=create, lock=verb)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(store.close)
    return store
