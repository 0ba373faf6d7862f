"""The ``seal`` command: a thin click group whose verbs live one per module in this package.

A verb module ``seal_audit._cli.<verb>`` exposes a click command named ``command``; the group finds
verbs by module name, so adding a verb is adding a file, and ``seal --help`` stays fast because a
verb's module (and its heavy imports) loads only when that verb runs.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from typing import Any

import click
from click.shell_completion import CompletionItem

from seal_audit._cli import _output
from seal_audit.data.errors import SealError, disk_error
from seal_audit.data.redact import scrub_text

_ALIASES = {"train-rm": "train_rm"}


def _verb_modules() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    return sorted(names)


def _verb_summary(name: str) -> str:
    """The first paragraph of a verb module's docstring, read from the source, not imported."""
    import ast
    import re
    from pathlib import Path

    module = _ALIASES.get(name, name.replace("-", "_"))
    path = Path(__file__).with_name(f"{module}.py")
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except (OSError, SyntaxError):
        doc = ""
    first = re.sub(r"^``seal [^`]*``:\s*", "", doc.split("\n\n")[0].replace("\n", " ")).strip()
    return first[:1].upper() + first[1:] if first else ""


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n.replace("_", "-") for n in _verb_modules())

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The verb list from each module's docstring, read without importing the module: ``seal
        --help`` must not pay for the verbs' imports (pandas, scipy, stats)."""
        rows = [(name, _verb_summary(name)) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Verb names for Tab completion without importing a verb (click's own completion loads
        every command to show its help; that would cost seconds per Tab)."""
        if incomplete.startswith("-"):
            return super().shell_complete(ctx, incomplete)
        return [
            CompletionItem(name, help=_verb_summary(name))
            for name in self.list_commands(ctx)
            if name.startswith(incomplete)
        ]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = _ALIASES.get(cmd_name, cmd_name.replace("-", "_"))
        if module not in _verb_modules():
            return None
        completing = ctx.resilient_parsing and bool(os.environ.get("_SEAL_COMPLETE"))
        if completing:  # Tab: a stand-in built from the completion index, without the verb's imports
            from seal_audit._cli import _complete

            stand_in = _complete.cached(cmd_name)
            if stand_in is not None:
                return stand_in
        mod = importlib.import_module(f"{__name__}.{module}")
        cmd = getattr(mod, "command", None)
        if not isinstance(cmd, click.Command):
            return None
        if not _output.STATE.verb:
            _output.STATE.verb = cmd_name
        cmd = _output.add_conventions(cmd)
        if completing:
            _complete.remember(cmd_name, cmd)
        return cmd

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        _output.reset()  # one invocation, one output state
        if "--json" in args[: args.index("--") if "--" in args else None]:
            _output.enable_json()  # before parsing, so a usage error is a JSON object too
        return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            rv = super().invoke(ctx)
        except BaseException:
            _output.restore_stdout()  # main() writes the failure's JSON object
            raise
        _output.emit(rv if isinstance(rv, int) else 0)
        return rv


EPILOG = (
    """\b
Every verb takes --json (one JSON object on stdout, messages on stderr), -v/--verbose and
-q/--quiet, after the verb or before it (seal -q run seal.toml).

\b
Exit codes:
"""
    + "\n".join(f"  {code:<4d} {text}" for code, text in _output.EXIT_CODES.items())
    + """

\b
Shell completion (bash; zsh and fish alike with zsh_source / fish_source):
  eval "$(_SEAL_COMPLETE=bash_source seal)"
NO_COLOR=1, or output that is not a terminal, turns colour off; piped output is never wrapped.
"""
)


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    params=_output.global_options(),
    epilog=EPILOG,
)
@click.version_option(package_name="seal-audit", prog_name="seal")
def cli() -> None:
    """seal-audit: what did a reward model learn from a preference dataset? (the SEAL method)"""


def _error(message: str, code: int) -> None:
    """One red ``error:`` line through the one console (redacted; no colour under NO_COLOR or
    when stderr is not a terminal), the traceback too with -v, the JSON object with --json."""
    from seal_audit._cli._common import console

    message = scrub_text(message)
    console.quiet = False  # -q silences messages, never the error
    if _output.verbosity() > 0 and sys.exc_info()[0] is not None:
        console.print_exception()
    console.print(f"error: {message}", style="red", markup=False, highlight=False, soft_wrap=True)
    _output.emit(code, error=message)
    sys.exit(code)


_INTERRUPTED = "interrupted: finished work is stored; run the same command again to resume"
_TERMINATED = "stopped by SIGTERM: finished work is stored; run the same command again to resume"


class Terminated(KeyboardInterrupt):
    """SIGTERM raised in the main thread as a KeyboardInterrupt, so that every path that stores
    finished work and releases the run's lock on Ctrl-C runs for a plain ``kill`` too (Python's
    default for SIGTERM ends the process at once: no message, and a lock left to be taken over)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def _stop_code(exc: BaseException | None) -> tuple[int, str]:
    if isinstance(exc, Terminated):
        return _output.EXIT_TERMINATED, _TERMINATED
    return _output.EXIT_INTERRUPTED, _INTERRUPTED


def _install_sigterm() -> None:
    """Only where nobody else handles SIGTERM (an embedding program keeps its own handler)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
        signal.SIG_DFL,
        None,
    ):
        signal.signal(signal.SIGTERM, _on_sigterm)


def main(argv: list[str] | None = None) -> Any:
    """Entry point: runs the group and turns seal-audit's own errors into one line, no traceback,
    with the documented exit codes (``_output.EXIT_CODES``)."""
    _install_sigterm()
    try:
        rv = cli.main(args=argv, prog_name="seal", standalone_mode=False)
        if isinstance(rv, int) and rv != 0:  # a verb's ctx.exit(code) / Exit(code)
            _output.emit(rv)  # --json: the one object, as on every other exit (analyze --strict had none)
            sys.exit(rv)
        return rv
    except SealError as exc:
        _error(str(exc), int(getattr(exc, "exit_code", _output.EXIT_INPUT)))
    except OSError as exc:  # a write site that does not convert its own disk errors: still one line
        if exc.filename is None:
            raise
        _error(str(disk_error(exc, exc.filename)), _output.EXIT_INPUT)
    except click.exceptions.Abort as exc:
        # click turns a Ctrl-C during a verb into Abort (from the KeyboardInterrupt); one at a
        # prompt is an Abort from None: the first is an interrupted run, the second "aborted"
        interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
        code, msg = _stop_code(exc.__cause__) if interrupted else (_output.EXIT_INTERRUPTED, "aborted")
        _output.emit(code, error=msg)
        click.echo(msg, err=True)
        sys.exit(code)
    except click.ClickException as exc:
        _output.emit(exc.exit_code, error=exc.format_message())
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        _output.emit(exc.exit_code)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:  # outside click's own handling (between parsing and the verb)
        code, msg = _stop_code(exc)
        _output.emit(code, error=msg)
        click.echo(msg, err=True)
        sys.exit(code)
