"""``seal label``: per-text features of a run's chosen and rejected texts, into its ``features`` table."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from seal_audit._cli._common import confirm_or_stop, console, llm_options, llm_settings_from_cli
from seal_audit._cli._output import summary
from seal_audit._cli._writer import writer_store
from seal_audit.backends.llm import LLMSettings
from seal_audit.data.errors import ConfigError, StageFailed
from seal_audit.features import Progress as LabelProgress
from seal_audit.features import (
    available_featurizers,
    build_featurizers,
    build_items,
    label_run,
    load_feature_config,
)
from seal_audit.features.lm import LMLabeler

HELP = """Label the chosen and rejected texts of RUN_DIR with one or more featurizers.

\b
--featurizer NAME, repeatable:
  lm            LM-labeler (SEAL taxonomy + --features-toml LM features) over an
                OpenAI-compatible endpoint: needs --model (and --base-url for non-OpenAI servers)
  offline       every offline featurizer: length, sentiment (VADER), refusal, offensive,
                readability, formatting, questions, hedging (or name them one by one)
  columns       dataset-column features defined in --features-toml (source = "column")
  NAME          a plug-in: an installed 'seal_audit.featurizers' entry point (--list shows them)
  python:MODULE:ATTR   a Featurizer class, factory or instance importable from MODULE

\b
LM runs print an estimate of calls, tokens and cost first and ask to go on (--yes skips that).
Results are cached per text: a re-run sends no request for finished texts, and a killed run
loses only the calls in flight. --max-cost stops cleanly before the budget is crossed; finished
work is stored and the stage status says 'stopped'. Calls are logged to RUN_DIR/logs/lm_calls.jsonl
(no prompt text, no key). --batch-api uses the OpenAI Batch API (half price, slow); its batch
ids are kept in RUN_DIR/lm_batches.json so running the command again resumes polling.

\b
--engine ray spreads the LM calls over Ray worker tasks (the [ray] extra) while the endpoint
still sees at most --concurrency requests in flight in total (and at most --max-rps started per
second): one limiter actor per endpoint hands out the slots. Without --address a local Ray
instance runs for the command; --address auto (or HOST:PORT) joins a running cluster. Results
are cached by this process as they arrive, under the same keys as local runs.

\b
A featurizer that fails on more texts than --max-failed allows (default none; a count, or a
fraction in (0, 1); the same option for the LM-labeler and the offline featurizers) leaves the
stage 'partial' and exits 3; the failed texts are rows with status 'failed' and their error.
"""


@click.command("label", help=HELP)
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--featurizer", "featurizers", multiple=True, help="Featurizer name (repeatable; see above).")
@click.option(
    "--features-toml",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="User-defined features: a TOML file with [[features]] tables.",
)
@click.option("--no-seal-taxonomy", is_flag=True, help="LM-label only the --features-toml LM features.")
@llm_options
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Run LM calls from this process, or from Ray workers (see above).",
)
@click.option("--address", default=None, help="Ray cluster to join (auto, HOST:PORT) [start a local one].")
@click.option("--ray-workers", type=int, default=None, help="Ray tasks in flight [one per cluster CPU].")
@click.option(
    "--max-rps", type=float, default=None, help="With --engine ray: most requests started per second."
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation of the cost estimate.")
@click.option("--list", "list_only", is_flag=True, help="List the featurizers and exit.")
def command(
    run_dir: Path,
    featurizers: tuple[str, ...],
    features_toml: Path | None,
    list_only: bool,
    yes: bool,
    **opts: Any,
) -> None:
    if list_only:
        listed = available_featurizers()
        for name, desc in listed.items():
            click.echo(f"{name:12s} {desc}")
        summary(featurizers=listed)
        return
    if opts["engine"] == "local" and (opts["address"] or opts["ray_workers"] or opts["max_rps"]):
        raise ConfigError("--address, --ray-workers and --max-rps need --engine ray")
    if not featurizers:
        raise ConfigError("give at least one --featurizer (e.g. --featurizer offline); --list shows them")
    # --max-failed is the LM-labeler's option and also the offline featurizers' threshold: without
    # --model (no LM) it is theirs alone, so it is taken out before the LM flags are checked
    max_failed = opts.pop("max_failed") if opts.get("model") is None else None
    settings: LLMSettings | None = llm_settings_from_cli(
        opts, what="--featurizer lm", need_model="lm" in featurizers
    )
    store = writer_store(run_dir, "label")
    user = load_feature_config(features_toml) if features_toml else None
    if user and user.lm_specs() and "lm" not in featurizers:
        console.print(
            "[yellow]note:[/] --features-toml defines LM features; add --featurizer lm to label them"
        )
    fz = build_featurizers(
        featurizers,
        user,
        settings,
        max_cost=settings.max_cost if settings else None,
        batch_timeout_s=settings.batch_wait_s if settings else None,
        include_seal=False if opts["no_seal_taxonomy"] else None,
        max_failed=max_failed,
    )
    items = None
    for f in fz:
        if isinstance(f, LMLabeler):
            items = items or build_items(store.read_pairs())
            est = f.estimate(items, store)
            console.print(f"[bold]LM-labeler estimate:[/] {est.describe()}")
            if f.settings.max_cost is not None:
                console.print(f"budget: --max-cost ${f.settings.max_cost:.4f}")
            if est.n_calls and not yes:
                confirm_or_stop("Go on?", what="cost of the LM-labeler")

    stop = threading.Event()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def on_progress(p: LabelProgress) -> None:
            if p.featurizer not in tasks:
                tasks[p.featurizer] = progress.add_task(p.featurizer, total=p.total, stats="")
            stats = f"done {p.done - p.failed:,}  failed {p.failed:,}  cached {p.cached:,}"
            if p.featurizer == "lm":
                stats += f"  cost ${p.cost_usd:,.4f}"
            progress.update(tasks[p.featurizer], completed=p.done, stats=stats)

        try:
            if opts["engine"] == "ray":
                from seal_audit.features import label_run_ray

                out = label_run_ray(
                    store,
                    fz,
                    address=opts["address"],
                    num_workers=opts["ray_workers"],
                    max_requests_per_s=opts["max_rps"],
                    on_progress=on_progress,
                    stop=stop,
                    log=console.print,
                )
            else:
                out = label_run(store, fz, on_progress=on_progress, stop=stop)
        except KeyboardInterrupt:
            stop.set()
            raise
    from seal_audit.pipeline import record_label_settings

    record_label_settings(store, fz)
    for name, s in out.summary().items():
        line = f"{name}: {s['texts']:,} texts, {s['failed']:,} failed"
        if name == "lm":
            line += f", {s['cached']:,} from cache, cost ${s['cost_usd']:.4f}"
            c = s.get("client") or {}
            if c:
                line += (
                    f"; {c.get('requests', 0):,} requests ({c.get('resends', 0):,} resends, "
                    f"{c.get('repairs', 0):,} repair turns)"
                )
                if c.get("response_format"):
                    line += f", response format {c['response_format']}"
                if c.get("server_slots"):
                    line += f", server slots {c['server_slots']}"
                if c.get("ray_lost_shards"):
                    line += (
                        f"; ray: {c['ray_lost_shards']:,} shard task(s) lost, "
                        f"{c.get('ray_resent', 0):,} request(s) sent again"
                    )
        console.print(line, markup=False, highlight=False)
        for reason, n in (s.get("reasons") or [])[:5]:
            console.print(f"  {n:,}\u00d7 {reason}", markup=False, highlight=False)
        if s["stopped"]:
            console.print(
                f"[yellow]{name} stopped: {s['stop_reason']}[/] -- finished work is stored; "
                "run the same command again to continue"
            )
    click.echo(str(store.table_path("features")))
    failures = out.failures()
    summary(
        run_dir=str(store.root),
        features=str(store.table_path("features")),
        status=out.status,
        featurizers=out.summary(),
        failures=failures,
    )
    if failures:
        raise StageFailed(
            "label stage " + out.status + ": " + " | ".join(failures) + " (finished labels are stored; "
            "fix the cause and run the same command again, or allow failures with --max-failed)"
        )
