"""``seal rewrite``: rewrite a seeded sample, then re-score and re-label the rewritten texts.

The REWRITE stage only writes the ``rewrites`` table; this verb also feeds the rewritten texts to
the scoring stage (every RM recorded in the run manifest) and the labeling stage (the featurizers the
run was labeled with), under ``variant = <transform>``, so that ``seal analyze`` can compute the
robustness scores right after. Both stages are content-cached: the unchanged side of a one-sided
rewrite costs nothing, and a repeated command makes no new model or LM call.

The orchestration (``score_and_label_rewrites``) lives in ``seal_audit.pipeline``, shared with ``seal run``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from seal_audit._cli._common import llm_options, llm_settings_from_cli, model_options, model_overrides
from seal_audit._cli._output import summary as record_summary
from seal_audit._cli._writer import writer_store
from seal_audit.config import RewriteOptions
from seal_audit.data.errors import ConfigError, SealError, StageFailed
from seal_audit.store.run_store import MANIFEST

if TYPE_CHECKING:
    from seal_audit.rewrite import RewriteSummary, TransformSpec

Say = Callable[[str], None]

HELP = """Rewrite a seeded sample of RUN_DIR's pairs with named transforms (SEAL robustness, §5),
then re-score the rewritten texts with every RM of the run and re-label them with its featurizers.

\b
Transforms (see --list): paraphrase (the SEAL reference: an LM rewrite of vocabulary and grammar
only), directed LM rewrites (more_positive, more_negative, more_formal, more_verbose,
more_concise, or your own [[rewrites]] name/instruction/intended_shift entries in --config), and
controlled deterministic edits that need no LM (add_positive, add_negative, add_apology,
add_hedge, markdown_list, markdown_headings, add_filler, typos, whitespace, refusal_prefix).

\b
Every rewrite is stored in the run's `rewrites` table with its status (ok / rejected with the
reason: empty, unchanged, turn markers lost / failed) and the embedding cosine similarity to the
original; rewrites below --drift-threshold are marked drifted (seal analyze leaves them out of
the robustness estimates by default and reports how many). LM replies are cached in the run: an
interrupted command resumes, and a repeated one makes no LM call.
"""


# --- what the run was scored and labeled with ------------------------------------------------
# --- output --------------------------------------------------------------------------------
def _list_table(extra: dict[str, TransformSpec]) -> Table:
    from seal_audit.rewrite import list_transforms

    table = Table(title="rewrite transforms", show_lines=True)
    for col in ("name", "test", "changes", "preserves", "intended shift"):
        table.add_column(col)
    for t in [*list_transforms(), *extra.values()]:
        shift = ", ".join(f"{f} {'+' if d > 0 else '-'}" for f, d in t.intended_shift) or "-"
        table.add_row(t.name, t.kind, t.changes, t.preserves, shift)
    return table


def _summary_table(summary: RewriteSummary) -> Table:
    """One row per transform, readable in an 80-column terminal (the scope, the same for every
    transform of a command, goes into the title)."""
    scopes = sorted({t.scope for t in summary.transforms})
    table = Table(
        title=f"rewrites of {summary.pairs_sampled} sampled pairs (scope: {', '.join(scopes)})",
        box=None,
        pad_edge=False,
        header_style="bold",
    )
    for col in ("transform", "test", "ok", "rejected", "failed", "drifted", "sim", "sent", "cached"):
        table.add_column(col, justify="left" if col in ("transform", "test") else "right", no_wrap=True)
    for t in summary.transforms:
        sim = "-" if math.isnan(t.mean_similarity) else f"{t.mean_similarity:.3f}"
        table.add_row(
            t.name,
            t.kind,
            str(t.ok),
            str(t.rejected),
            str(t.failed),
            str(t.drifted),
            sim,
            str(t.lm_calls),
            str(t.lm_cached),
        )
    return table


def print_summary(summary: RewriteSummary, console: Console) -> None:
    """The table, then per transform the reasons (rejections and failures, counted) and what the
    LM client did; ``sent`` counts texts sent to the LM in this command, ``cached`` the replies
    reused from an earlier one."""
    console.print(_summary_table(summary))
    for t in summary.transforms:
        if t.reasons:
            console.print(f"{t.name} not ok:", markup=False, highlight=False)
            for reason, n in t.reasons:
                console.print(f"  {n:,}\u00d7 {reason}", markup=False, highlight=False)
        c = t.lm_info
        if c.get("requests"):
            console.print(
                f"{t.name}: {c['requests']:,} LM requests, {c.get('resends', 0):,} resends, "
                f"slots {c.get('server_slots') or 'not reported'}, concurrency {c.get('concurrency')}",
                markup=False,
                highlight=False,
            )
        if t.stopped:
            console.print(f"[yellow]{t.name}: stopped early ({t.stopped}); run again to continue[/yellow]")


@click.command("rewrite", help=HELP)
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option(
    "--transform", "-t", "transforms", multiple=True, metavar="NAME", help="A transform (repeatable)."
)
@click.option(
    "--list", "list_only", is_flag=True, help="List the transforms: what each changes and preserves."
)
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="TOML with your own [[rewrites]] (or [[rewrite.custom]]) name/instruction/intended_shift.",
)
@click.option(
    "--sample",
    default=None,
    help="Pairs to rewrite: a count N >= 1, a fraction in (0, 1), or 'all' "
    f"[default: {RewriteOptions.model_fields['sample'].default}].",
)
@model_options(RewriteOptions, skip=("sample",))
@llm_options
@click.option(
    "--featurizer",
    "featurizers",
    multiple=True,
    help="Featurizers to re-label with [the ones the run was labeled with].",
)
@click.option("--no-score", is_flag=True, help="Only rewrite; do not re-score.")
@click.option("--no-label", is_flag=True, help="Only rewrite; do not re-label.")
@click.option("--no-progress", is_flag=True, help="No progress display.")
def command(
    run_dir: Path | None,
    transforms: tuple[str, ...],
    list_only: bool,
    config: Path | None,
    sample: str | None,
    featurizers: tuple[str, ...],
    no_score: bool,
    no_label: bool,
    no_progress: bool,
    **kwargs: Any,
) -> None:
    from seal_audit._cli._common import console
    from seal_audit.rewrite import rewrite_run, transforms_from_toml

    extra = transforms_from_toml(config) if config is not None else {}
    if list_only:
        console.print(_list_table(extra))
        return
    if run_dir is None:
        raise click.UsageError("RUN_DIR is required (or use --list)")
    if not transforms:
        raise click.UsageError("name at least one --transform (see --list)")
    if not (run_dir / MANIFEST).exists():
        raise SealError(
            f"{run_dir}: not a seal-audit run directory (no {MANIFEST}); make one with `seal score`"
        )
    store = writer_store(run_dir, "rewrite")
    given = model_overrides(RewriteOptions, kwargs)
    if sample is not None:
        try:
            given["sample"] = None if sample.strip().lower() == "all" else float(sample)
        except ValueError:
            raise click.BadParameter(
                f"expected a count, a fraction or 'all', got {sample!r}", param_hint="--sample"
            ) from None
    opts = RewriteOptions.model_validate(given)
    run_seed = opts.seed if opts.seed is not None else (store.manifest.seed or 0)
    llm = llm_settings_from_cli(kwargs, what="an LM transform", need_model=False)
    if llm is not None and llm.batch_api:
        raise ConfigError("--batch-api is for seal label only: LM rewrites are live calls")

    def say(msg: str) -> None:
        console.print(msg)

    progress_cb = None
    if not no_progress:

        def progress_cb(name: str, done: int, total: int) -> None:
            if total and (done == total or done % max(1, total // 10) == 0):
                console.print(f"[dim]{name}: {done}/{total}[/dim]")

    try:
        summary = rewrite_run(
            store,
            list(transforms),
            sample=opts.sample,
            seed=run_seed,
            scope=opts.scope,
            sides=list(opts.sides),
            llm_settings=llm,
            embed_spec=opts.embedder,
            drift_threshold=opts.drift_threshold,
            max_cost=llm.max_cost if llm is not None else None,
            extra=extra,
            progress=progress_cb,
        )
        print_summary(summary, console)
        names = [t.name for t in summary.transforms]
        from seal_audit.pipeline import score_and_label_rewrites

        score_and_label_rewrites(
            store,
            names,
            score=not no_score,
            label=not no_label,
            featurizers=list(featurizers) or None,
            say=say,
        )
    finally:
        store.close()
    click.echo(f"rewrites written to {store.table_path('rewrites')}; next: seal analyze {run_dir}")
    failures = summary.failures()
    record_summary(
        run_dir=str(run_dir),
        rewrites=str(store.table_path("rewrites")),
        pairs_sampled=summary.pairs_sampled,
        transforms=[
            {
                "name": t.name,
                "test": t.kind,
                "scope": t.scope,
                "ok": t.ok,
                "rejected": t.rejected,
                "failed": t.failed,
                "drifted": t.drifted,
                "mean_similarity": None if math.isnan(t.mean_similarity) else t.mean_similarity,
                "lm_calls": t.lm_calls,
                "lm_cached": t.lm_cached,
                "reasons": [[r, n] for r, n in t.reasons],
            }
            for t in summary.transforms
        ],
        failures=failures,
    )
    if failures:
        raise StageFailed(
            "rewrite stage did not do its work: " + " | ".join(failures) + " (finished rewrites are stored; "
            "fix the cause and run again, or allow failures with --max-failed)"
        )
