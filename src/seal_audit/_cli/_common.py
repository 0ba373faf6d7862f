"""Options and helpers shared by several verbs (source loading options, progress display)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from seal_audit.sources import ColumnMap, LoadOptions, LoadResult, load

F = TypeVar("F", bound=Callable[..., Any])

console = Console(stderr=True)
"""Progress and messages go to stderr so stdout stays parseable."""


def say(message: str) -> None:
    """Print a stage message verbatim (``[score] ...`` is text, not rich markup)."""
    console.print(message, markup=False, highlight=False)


def source_options(fn: F) -> F:
    """The options that say how to read a pairs source; every verb that loads data takes them."""
    opts = [
        click.option(
            "--format",
            "fmt",
            type=click.Choice(["auto", "hh-rlhf", "pairs", "conversation", "multi-variant"]),
            default="auto",
            show_default=True,
            help="Record shape; auto detects it from the first record.",
        ),
        click.option(
            "--prompt-col", default="prompt", show_default=True, help="Column with the prompt/context."
        ),
        click.option(
            "--chosen-col", default="chosen", show_default=True, help="Column with the chosen response."
        ),
        click.option(
            "--rejected-col", default="rejected", show_default=True, help="Column with the rejected response."
        ),
        click.option(
            "--id-col", default=None, help="Column with the pair id (default: pair_id or id if present)."
        ),
        click.option(
            "--split-rule",
            type=click.Choice(["turn", "reference"]),
            default="turn",
            show_default=True,
            help="hh-rlhf split: last '\\n\\nAssistant:' turn marker, or last bare 'Assistant:' "
            "(the released SEAL code).",
        ),
        click.option("--limit", type=int, default=None, help="Keep the first N pairs."),
        click.option(
            "--sample",
            type=float,
            default=None,
            help="Seeded random sample: a count N >= 1 or a fraction in (0, 1).",
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of --sample."),
        click.option(
            "--on-error",
            type=click.Choice(["raise", "skip"]),
            default="raise",
            show_default=True,
            help="Stop at the first bad record, or skip bad records into a quarantine file.",
        ),
        click.option(
            "--quarantine",
            type=click.Path(path_type=Path),
            default=None,
            help="Where skipped records go (default: quarantine.jsonl beside the output).",
        ),
        click.option("--subset", default=None, help="Hugging Face dataset subset (for hf:NAME sources)."),
        click.option(
            "--split",
            "hf_split",
            default="train",
            show_default=True,
            help="Hugging Face dataset split (for hf:NAME sources).",
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


SOURCE_KEYS = (
    "fmt",
    "prompt_col",
    "chosen_col",
    "rejected_col",
    "id_col",
    "split_rule",
    "limit",
    "sample",
    "seed",
    "on_error",
    "quarantine",
    "subset",
    "hf_split",
)


def load_options(kwargs: dict[str, Any], default_quarantine: Path | None = None) -> LoadOptions:
    """Pop the source options out of a verb's kwargs into a LoadOptions."""
    o = {k: kwargs.pop(k) for k in SOURCE_KEYS}
    quarantine = o["quarantine"] or (default_quarantine if o["on_error"] == "skip" else None)
    return LoadOptions(
        format=o["fmt"],
        columns=ColumnMap(
            prompt=o["prompt_col"], chosen=o["chosen_col"], rejected=o["rejected_col"], id=o["id_col"]
        ),
        split_rule=o["split_rule"],
        limit=o["limit"],
        sample=o["sample"],
        seed=o["seed"],
        on_error=o["on_error"],
        quarantine=quarantine,
        hf_subset=o["subset"],
        hf_split=o["hf_split"],
    )


def load_with_status(spec: str, options: LoadOptions) -> LoadResult:
    """Load a source behind a spinner, then say how many records were skipped and where they went."""
    with console.status(f"reading {spec} ..."):
        result = load(spec, options)
    if result.skipped:
        where = f" -> {options.quarantine}" if options.quarantine else ""
        console.print(f"[yellow]skipped {len(result.skipped)} bad record(s){where}[/yellow]")
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


def _click_type(annotation: Any) -> tuple[Any, bool]:
    """(click type, is_flag) of an ``LLMSettings`` field annotation."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is Literal:
        return click.Choice([str(a) for a in get_args(annotation)]), False
    if args and get_origin(annotation) is not Literal:  # X | None
        return _click_type(args[0])
    if annotation is bool:
        return None, True
    if annotation in (int, float, str):
        return annotation, False
    raise TypeError(f"no CLI type for {annotation!r}")


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
        typ, is_flag = _click_type(info.annotation)
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
        return LLMSettings(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        flag = meta.get(field, {}).get("cli", field) if field else "LM options"
        raise ConfigError(f"{flag}: {err['msg']}") from None
