"""Options and helpers shared by several verbs (source loading options, progress display)."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from seal_audit.data.load_options import LoadOptions, flag
from seal_audit.sources import LoadResult, load

F = TypeVar("F", bound=Callable[..., Any])


class _RedactingStderr(io.TextIOBase):
    """stderr with every secret redacted on the way out: the terminal is a sink like any file (an
    echoed Authorization header in a failure reason must not reach a log of the terminal either)."""

    def write(self, text: str) -> int:
        from seal_audit.data.redact import scrub_text

        sys.stderr.write(scrub_text(text))
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()

    def fileno(self) -> int:
        return sys.stderr.fileno()


def _make_console() -> Console:
    """The one console. Colour follows rich's rules (none under ``NO_COLOR`` or when stderr is not
    a terminal); when stderr is not a terminal (a log file, CI, a pipe), lines are never wrapped,
    so a path or a reason stays on one line a log reader can grep."""
    stream = _RedactingStderr()
    if stream.isatty():
        return Console(file=stream)  # type: ignore[arg-type]  # a TextIOBase is an IO[str]
    return Console(file=stream, soft_wrap=True, width=100_000)  # type: ignore[arg-type]


console = _make_console()
"""Progress and messages go to stderr so stdout stays parseable; every verb prints through this one
console, which redacts secrets. ``-q`` sets ``console.quiet``."""


def say(message: str) -> None:
    """Print a stage message verbatim (``[score] ...`` is text, not rich markup)."""
    console.print(message, markup=False, highlight=False)


def source_options(fn: F) -> F:
    """The options that say how to read a pairs source, generated from LoadOptions.

    One flag per field (``prompt_col`` → ``--prompt-col``), with the field's default and docstring,
    so the CLI and the TOML ``[[data]]`` table cannot drift apart.
    """
    hints = get_type_hints(LoadOptions)
    for name in reversed(list(LoadOptions.model_fields)):
        info = LoadOptions.model_fields[name]
        default = info.default
        fn = click.option(
            flag(name),
            name,
            type=_flag_type(hints[name])[0],
            default=default,
            show_default=default is not None,
            help=" ".join((info.description or "").split()),
        )(fn)
    return fn


SOURCE_KEYS = tuple(LoadOptions.model_fields)
"""The keyword names the source options arrive under (the LoadOptions field names)."""


def load_options(kwargs: dict[str, Any], default_quarantine: Path | None = None) -> LoadOptions:
    """Pop the source options out of a verb's kwargs into a LoadOptions.

    Only values that differ from the defaults are passed, so the options know which columns the
    user named (those must exist in the file).
    """
    given = {k: kwargs.pop(k) for k in SOURCE_KEYS}
    fields = {k: v for k, v in given.items() if v != LoadOptions.model_fields[k].default}
    if fields.get("quarantine") is None and given["on_error"] == "skip" and default_quarantine is not None:
        fields["quarantine"] = default_quarantine
    try:
        return LoadOptions(**fields)
    except ValidationError as exc:
        from seal_audit.data.errors import ConfigError

        msgs = [f"{flag(str(e['loc'][0])) if e['loc'] else 'options'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("; ".join(msgs)) from None


def load_with_status(spec: str, options: LoadOptions) -> LoadResult:
    """Load a source behind a spinner, then say how many records were skipped and where they went."""
    with console.status(f"reading {spec} ..."):
        result = load(spec, options)
    for note in result.notes:
        say(f"note: {note}")
    if result.skipped:
        where = f" -> {options.quarantine}" if options.quarantine else ""
        say(f"skipped {result.records_skipped} bad record(s) of {result.records_read}{where}")
    return result


def progress_factory(progress: Progress) -> Callable[[str, int], Callable[[int], None]]:
    """A scoring progress factory: one bar per RM, advanced by the number of texts finished."""

    def make(name: str, total: int) -> Callable[[int], None]:
        task = progress.add_task(f"scoring {name}", total=total)

        def advance(n: int) -> None:
            progress.advance(task, n)

        return advance

    return make


def label_progress(progress: Progress) -> Callable[[Any], None]:
    """A labeling progress callback: one bar per featurizer with done / failed / cached counts."""
    tasks: dict[str, Any] = {}

    def on_progress(p: Any) -> None:
        if p.featurizer not in tasks:
            tasks[p.featurizer] = progress.add_task(f"labeling {p.featurizer}", total=p.total)
        progress.update(tasks[p.featurizer], completed=p.done)

    return on_progress


@contextmanager
def maybe_progress(enabled: bool) -> Iterator[Progress | None]:
    """A rich progress display on stderr, or None (``--quiet`` / ``--no-progress``)."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("texts"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        yield progress


# --- CLI flags generated from an options model ------------------------------------------------------
def _flag_type(annotation: Any) -> tuple[Any, bool, Callable[[Any], Any] | None]:
    """click type, is-bool, and a converter for one field annotation of an options model: the one
    mapping every generated flag uses (load, LM endpoint, analysis, RM, rewrite options)."""
    import types
    import typing

    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _flag_type(args[0])
    if annotation is bool:
        return None, True, None
    if origin is typing.Literal:
        return click.Choice([str(a) for a in args]), False, None
    if origin is tuple:

        def split(v: Any) -> Any:
            return tuple(x.strip() for x in str(v).split(",") if x.strip())

        return str, False, split
    if annotation is Path:
        return click.Path(path_type=Path), False, None
    if annotation in (int, float, str):
        return annotation, False, None
    return str, False, None


def model_options(
    model: Any, *, names: dict[str, str] | None = None, skip: tuple[str, ...] = (), prefix: str = ""
) -> Callable[[F], F]:
    """Click options for every field of a pydantic options model: the CLI surface of the same record
    the TOML section validates into. Each option defaults to None ("not given"), so a verb can apply
    only the flags the user typed on top of recorded or configured options; the model's default is
    shown in the help. ``names`` renames a flag (``{"format": "--input-format"}``)."""
    names = names or {}

    def decorate(fn: F) -> F:
        for field_name, info in reversed(list(model.model_fields.items())):
            if field_name in skip:
                continue
            flag = names.get(field_name, "--" + field_name.replace("_", "-"))
            ctype, is_bool, _conv = _flag_type(info.annotation)
            default = info.get_default(call_default_factory=True)
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            text = (info.description or "").split("\n\n")[0].replace("\n", " ")
            help_text = f"{text} [default: {shown}]" if text else f"[default: {shown}]"
            dest = prefix + field_name
            if is_bool:
                opt = click.option(f"{flag}/--no-{flag[2:]}", dest, default=None, help=help_text)
            else:
                opt = click.option(flag, dest, type=ctype, default=None, help=help_text)
            fn = opt(fn)
        return fn

    return decorate


def model_overrides(model: Any, kwargs: dict[str, Any], *, prefix: str = "") -> dict[str, Any]:
    """Pop the model's flags out of a verb's kwargs: the values the user gave, converted."""
    out: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        key = prefix + field_name
        if key not in kwargs:
            continue
        value = kwargs.pop(key)
        if value is None:
            continue
        _t, _b, conv = _flag_type(info.annotation)
        out[field_name] = conv(value) if conv is not None else value
    return out


def llm_options(fn: F) -> F:
    """The LM-endpoint flags, one per ``LLMSettings`` field (``--price-in/--price-out`` for
    ``price``), named by the field's ``cli`` metadata. Every flag defaults to "not given", so an
    unset flag leaves the model's own default: the CLI and the TOML share one set of defaults."""
    from seal_audit.data.llm_options import LLMSettings, llm_field_cli

    opts = []
    for name, meta in llm_field_cli().items():
        info = LLMSettings.model_fields[name]
        default = info.default if not info.is_required() else None
        if name == "price":
            opts.append(click.option("--price-in", type=float, default=None, help="USD per 1M input tokens."))
            opts.append(
                click.option("--price-out", type=float, default=None, help="USD per 1M output tokens.")
            )
            continue
        typ, is_flag, _conv = _flag_type(info.annotation)
        shown = "" if default is None or is_flag else f"  [default: {default}]"
        if is_flag:
            opts.append(click.option(meta["cli"], name, is_flag=True, default=None, help=meta["help"]))
        else:
            opts.append(click.option(meta["cli"], name, type=typ, default=None, help=meta["help"] + shown))
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def llm_settings_from_cli(kwargs: dict[str, Any], *, what: str, need_model: bool = True) -> Any:
    """Pop the ``llm_options`` values out of a verb's kwargs into an ``LLMSettings`` (None when no
    --model was given and ``need_model`` is False); errors name the flag."""
    from pydantic import ValidationError

    from seal_audit.data.errors import ConfigError
    from seal_audit.data.llm_options import LLMSettings, llm_field_cli

    meta = llm_field_cli()
    given: dict[str, Any] = {}
    for name in meta:
        if name == "price":
            p_in, p_out = kwargs.pop("price_in", None), kwargs.pop("price_out", None)
            if p_in is not None or p_out is not None:
                if p_in is None or p_out is None:
                    raise ConfigError("give both --price-in and --price-out (USD per 1M tokens)")
                given["price"] = {"input_per_mtok": p_in, "output_per_mtok": p_out}
            continue
        value = kwargs.pop(name, None)
        if value is not None and value is not False:
            given[name] = value
    if "model" not in given:
        if need_model:
            raise ConfigError(f"{what} needs --model (the model name the endpoint serves)")
        if len(given) > 0 and set(given) - {"api_key_env"}:
            flags = ", ".join(sorted(meta[k]["cli"] for k in given))
            raise ConfigError(f"{flags} given without --model: {what} needs --model")
        return None
    try:
        settings = LLMSettings(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        flag = meta.get(field, {}).get("cli", field) if field else "LM options"
        raise ConfigError(f"{flag}: {err['msg']}") from None
    from seal_audit.data.redact import register_secret_env

    register_secret_env(settings.api_key_env)  # its value is redacted at every sink from now on
    return settings


def confirm_or_stop(question: str, *, what: str) -> None:
    """Ask before spending money; no answer is a refusal, never an "interrupted" (exit 2, not 130).

    Without a terminal on stdin (a pipe, CI, nohup) there is nobody to ask: the verb stops with the
    flag that accepts the estimate. Ctrl-C at the prompt is an interruption (130).
    """
    from seal_audit.data.errors import ConfigError

    if not sys.stdin.isatty():
        raise ConfigError(f"{what} not confirmed: stdin is not a terminal; pass --yes to accept the estimate")
    try:
        answer = click.confirm(question, default=False, err=True)
    except click.exceptions.Abort:
        raise KeyboardInterrupt from None
    if not answer:
        raise ConfigError(f"{what} not confirmed (answered no); nothing was sent")
