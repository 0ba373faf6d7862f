"""The ``seal`` command: a thin click group whose verbs live one per module in this package.

A verb module ``seal_audit._cli.<verb>`` exposes a click command named ``command``; the group finds
verbs by module name, so adding a verb is adding a file, and ``seal --help`` stays fast because a
verb's module (and its heavy imports) loads only when that verb runs.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

import click

from seal_audit.data.errors import SealError, disk_error
from seal_audit.data.redact import scrub_text

_ALIASES = {"train-rm": "train_rm"}


def _verb_modules() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    return sorted(names)


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n.replace("_", "-") for n in _verb_modules())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = _ALIASES.get(cmd_name, cmd_name.replace("-", "_"))
        if module not in _verb_modules():
            return None
        mod = importlib.import_module(f"{__name__}.{module}")
        cmd = getattr(mod, "command", None)
        return cmd if isinstance(cmd, click.Command) else None


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="seal-audit", prog_name="seal")
def cli() -> None:
    """seal-audit: what did a reward model learn from a preference dataset? (the SEAL method)"""


def main(argv: list[str] | None = None) -> Any:
    """Entry point: runs the group and turns seal-audit's own errors into one line, no traceback."""
    try:
        rv = cli.main(args=argv, prog_name="seal", standalone_mode=False)
        if isinstance(rv, int) and rv != 0:  # a verb's ctx.exit(code) / Exit(code)
            sys.exit(rv)
        return rv
    except SealError as exc:
        click.secho(f"error: {scrub_text(str(exc))}", fg="red", err=True)
        sys.exit(int(getattr(exc, "exit_code", 2)))
    except OSError as exc:  # a write site that does not convert its own disk errors: still one line
        if exc.filename is None:
            raise
        click.secho(f"error: {scrub_text(str(disk_error(exc, exc.filename)))}", fg="red", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted: finished work is stored; run the same command again to resume", err=True)
        sys.exit(130)
