"""The CLI's output conventions, in one place: ``--json``, ``-v/-q`` and the exit codes.

Every verb gets ``--json``, ``-v/--verbose`` and ``-q/--quiet`` (also accepted before the verb:
``seal -q run ...``) without declaring them: the group adds them when it loads the verb, so a new
verb follows the conventions by existing. A verb states what it did with :func:`summary`; with
``--json`` that record (plus ``verb``, ``ok``, ``exit_code`` and, on failure, ``error``) is the one
JSON object written to stdout, and every line the verb would have printed on stdout goes to stderr
instead, so ``seal ... --json | jq`` always parses, failed runs included.

This module is imported by ``seal --help`` and shell completion, so it imports nothing heavy.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import IO, Any

import click

EXIT_OK = 0
"""The verb did its work."""
EXIT_INPUT = 2
"""Usage or input error: a bad flag, config key, input record, a run locked by another writer,
a disk that cannot be written, a cost estimate not confirmed. Nothing was started, or what was
started is stored and resumable."""
EXIT_STAGE_FAILED = 3
"""A stage ran and failed more of its work than allowed (``max_failed``); what finished is stored."""
EXIT_INTERRUPTED = 130
"""Interrupted (Ctrl-C / SIGINT, or Ctrl-C at a prompt); finished work is stored."""
EXIT_TERMINATED = 143
"""Stopped by SIGTERM (a plain ``kill``, a scheduler's stop): handled as Ctrl-C is, so finished
work is stored and the run's lock released; 128 + 15, the shell's code for it."""

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "ok",
    1: "internal error (a bug: the traceback is shown; please report it)",
    EXIT_INPUT: "usage or input error (bad flag, config, input record, locked run, disk, cost not confirmed)",
    EXIT_STAGE_FAILED: "a stage failed more of its work than allowed (finished work is stored)",
    EXIT_INTERRUPTED: "interrupted (finished work is stored; run the same command again to resume)",
    EXIT_TERMINATED: "stopped by SIGTERM (finished work is stored; run the same command again to resume)",
}
"""The documented exit codes (``seal --help`` prints them; the README repeats them)."""


@dataclass
class OutputState:
    """How this invocation prints: set by the global flags while click parses, read by the verbs."""

    json: bool = False
    verbosity: int = 0
    """-1 with ``-q``; 1, 2 with ``-v``, ``-vv``."""
    verb: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    real_stdout: IO[str] | None = None
    emitted: bool = False


STATE = OutputState()


def reset() -> None:
    """A fresh state for one invocation (tests call the group many times in one process)."""
    global STATE
    restore_stdout()
    STATE = OutputState()
    common = sys.modules.get("seal_audit._cli._common")
    if common is not None:
        common.console.quiet = False  # the last invocation's -q ends with it


def summary(**fields: Any) -> None:
    """Record what the verb did (JSON-ready values): the body of its ``--json`` object."""
    STATE.fields.update(fields)


def quiet() -> bool:
    return STATE.verbosity < 0


def verbosity() -> int:
    return STATE.verbosity


def _set_json(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if ctx.parent is not None:  # a verb's own copy: its full name ("data inspect")
        STATE.verb = ctx.command_path.partition(" ")[2]
    if value:
        enable_json()


def enable_json() -> None:
    """From now on stdout belongs to the one JSON object: the verb's own stdout lines go to stderr."""
    if not STATE.json:
        STATE.json = True
        STATE.real_stdout = sys.stdout
        sys.stdout = sys.stderr


def _set_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    if value and not ctx.resilient_parsing:  # not while completing a Tab (the console is heavy)
        STATE.verbosity = max(STATE.verbosity, 0) + int(value)
        import logging

        level = logging.INFO if STATE.verbosity == 1 else logging.DEBUG
        logger = logging.getLogger("seal_audit")
        logger.setLevel(level)
        if not logger.handlers:
            from seal_audit._cli._common import console

            handler = logging.StreamHandler(console.file)
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            logger.addHandler(handler)


def _set_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if ctx.resilient_parsing:  # completing a Tab: nothing is printed, and the console is heavy
        return bool(value)
    if value or STATE.verbosity < 0:
        STATE.verbosity = -1
        from seal_audit._cli._common import console

        console.quiet = True
        return True
    return bool(value)


def _param_names(cmd: click.Command) -> set[str]:
    names: set[str] = set()
    for p in cmd.params:
        names.update(getattr(p, "opts", ()))
        names.update(getattr(p, "secondary_opts", ()))
        if p.name:
            names.add(p.name)
    return names


def global_options() -> list[click.Option]:
    """``--json``, ``-v`` and ``-q`` as click options (for the group, and for each verb)."""
    return [
        click.Option(
            ["--json", "json_"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_set_json,
            help="Print one JSON object (the summary) on stdout; every message goes to stderr.",
        ),
        click.Option(
            ["-v", "--verbose", "verbose_"],
            count=True,
            expose_value=False,
            callback=_set_verbose,
            help="More messages (-vv: debug), and the traceback of an error.",
        ),
        click.Option(
            ["-q", "--quiet", "quiet_"],
            is_flag=True,
            expose_value=False,
            callback=_set_quiet,
            help="No messages or progress bars: only the result (and errors).",
        ),
    ]


def add_conventions(cmd: click.Command) -> click.Command:
    """Give a verb (and each subcommand of a verb group) the global options it does not declare.

    A verb with its own ``--quiet`` keeps it, gains ``-q``, and sees ``seal -q VERB`` as quiet.
    """
    if getattr(cmd, "_seal_conventions", False):
        return cmd
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            add_conventions(sub)
    else:
        have = _param_names(cmd)
        for opt in global_options():
            if opt.name == "quiet_" and "quiet" in have:
                own = next(p for p in cmd.params if p.name == "quiet")
                if isinstance(own, click.Option) and "-q" not in own.opts:
                    own.opts.insert(0, "-q")
                own.callback = _set_quiet
                continue
            if not set(opt.opts) & have:
                cmd.params.append(opt)
    cmd._seal_conventions = True  # type: ignore[attr-defined]
    return cmd


def restore_stdout() -> None:
    if STATE.real_stdout is not None:
        sys.stdout = STATE.real_stdout
        STATE.real_stdout = None


def emit(exit_code: int, error: str | None = None) -> None:
    """Write the ``--json`` object once (success or failure); a no-op without ``--json``."""
    if not STATE.json or STATE.emitted:
        restore_stdout()
        return
    out = STATE.real_stdout or sys.stdout
    restore_stdout()
    record: dict[str, Any] = {"verb": STATE.verb, "ok": exit_code == 0, "exit_code": exit_code}
    record.update(STATE.fields)
    if error is not None:
        record["error"] = error
    out.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
    out.flush()
    STATE.emitted = True


def wants_json() -> bool:
    """``--json`` was given: a verb may skip its human-readable tables."""
    return STATE.json
