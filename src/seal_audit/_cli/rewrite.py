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
from rich.table import Table

from seal_audit._cli._common import model_options, model_overrides
from seal_audit._cli._writer import writer_store
from seal_audit.config import RewriteOptions
from seal_audit.data.errors import ConfigError, SealError
from seal_audit.store.run_store import MANIFEST

if TYPE_CHECKING:
    from seal_audit.backends.llm.settings import LLMSettings
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
    table = Table(title=f"rewrites of {summary.pairs_sampled} sampled pairs", show_edge=False)
    for col in (
        "transform",
        "test",
        "scope",
        "ok",
        "rejected",
        "failed",
        "drifted",
        "mean sim",
        "LM calls",
        "cached",
    ):
        table.add_column(col, justify="left" if col in ("transform", "test", "scope") else "right")
    for t in summary.transforms:
        sim = "-" if math.isnan(t.mean_similarity) else f"{t.mean_similarity:.3f}"
        table.add_row(
            t.name,
            t.kind,
            t.scope,
            str(t.ok),
            str(t.rejected),
            str(t.failed),
            str(t.drifted),
            sim,
            str(t.lm_calls),
            str(t.lm_cached),
        )
    return table


def _llm_settings(
    base_url: str | None,
    model: str | None,
    api_key_env: str | None,
    concurrency: int,
    temperature: float,
    max_tokens: int | None,
    timeout: float,
    price_in: float | None,
    price_out: float | None,
) -> LLMSettings | None:
    if model is None and base_url is None:
        return None
    if base_url is None:
        raise ConfigError("LM transforms need both --base-url and --model")
    from seal_audit._cli._common import llm_settings

    settings: LLMSettings = llm_settings(
        what="an LM transform",
        model=model,
        base_url=base_url,
        api_key_env=api_key_env,
        price_in=price_in,
        price_out=price_out,
        concurrency=concurrency,
        temperature=temperature,
        max_tokens=max_tokens,
        timeout_s=timeout,
    )
    return settings


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
@click.option("--base-url", default=None, help="OpenAI-compatible endpoint of the LM transforms.")
@click.option("--model", default=None, help="Model name at that endpoint.")
@click.option(
    "--api-key-env",
    default="OPENAI_API_KEY",
    show_default=True,
    help="Environment variable holding the API key ('none' for a keyless local server).",
)
@click.option("--concurrency", type=int, default=8, show_default=True, help="LM calls in flight.")
@click.option(
    "--temperature",
    type=float,
    default=0.0,
    show_default=True,
    help="LM sampling temperature (the reference used 0.1).",
)
@click.option("--max-tokens", type=int, default=None, help="LM output token limit per rewrite.")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds per LM call.")
@click.option("--max-cost", type=float, default=None, help="Stop sending LM calls past this many USD.")
@click.option("--price-in", type=float, default=None, help="USD per 1M input tokens (unknown models).")
@click.option("--price-out", type=float, default=None, help="USD per 1M output tokens (unknown models).")
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
    base_url: str | None,
    model: str | None,
    api_key_env: str | None,
    concurrency: int,
    temperature: float,
    max_tokens: int | None,
    timeout: float,
    max_cost: float | None,
    price_in: float | None,
    price_out: float | None,
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
    llm = _llm_settings(
        base_url, model, api_key_env, concurrency, temperature, max_tokens, timeout, price_in, price_out
    )

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
            max_cost=max_cost,
            extra=extra,
            progress=progress_cb,
        )
        console.print(_summary_table(summary))
        for t in summary.transforms:
            if t.reasons:
                console.print(f"{t.name}: " + "; ".join(f"{n} x {r}" for r, n in t.reasons))
            if t.stopped:
                console.print(
                    f"[yellow]{t.name}: stopped early ({t.stopped}); run again to continue[/yellow]"
                )
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
