"""``seal score``: rewards of every chosen and rejected text under each RM, into the run's ``scores``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from seal_audit._cli._common import (
    console,
    load_options,
    load_with_status,
    maybe_progress,
    model_options,
    model_overrides,
    progress_factory,
    source_options,
)
from seal_audit._cli._output import summary
from seal_audit._cli._writer import writer_store
from seal_audit.config import RMOptions
from seal_audit.data.errors import SealError
from seal_audit.store.run_store import MANIFEST, QUARANTINE, RunStore

HELP = """Score PAIRS_OR_RUN (a pairs file, or a run directory) with one or more reward models.

\b
--rm NAME=SPEC, repeatable. SPEC is one of:
  hf:OWNER/NAME or OWNER/NAME   Hugging Face hub id (must be in the local cache when offline)
  DIR or hf:DIR                 a local Hugging Face sequence-classification model
  local:DIR (or DIR)            an RM written by `seal train-rm`
  python:module:function        fn(list[(context, response)]) -> list[float]
  vllm:MODEL                    a decoder RM run by vLLM's pooling runner (the [vllm] extra, a GPU;
                                vllm-classify:MODEL uses its classify task)
  length_chars, length_tokens   null baselines (response characters / whitespace words)
Per-RM options follow a '?' as key=value pairs joined by '&', e.g.
  --rm 'post=hf:OpenAssistant/reward-model-deberta-v3-large-v2?max_length=512&dtype=float32'
(keys: format, template, max_length, batch_tokens, max_batch, device, dtype, logit_index,
revision, trust_remote_code). The --input-format/--max-length/--batch-tokens/--device/--dtype
flags set the same options for every RM; a per-RM '?' option wins. (The RM input format flag is
--input-format because --format already names the pairs file's record shape.)

\b
Roles are explicit: --pre NAME, --post NAME, --baseline NAME (repeatable); every other RM is an
'extra'. A name never implies a role; re-scoring a run keeps the roles it recorded.
Given a pairs file, the run directory is --out (default ./seal-run); given a run directory,
its pairs are scored. Rewards are cached per text in the run, so an interrupted run resumes and
a repeated run is a cache read. Texts over the max length lose context tokens from the left
(the response is kept); the number cut is printed and recorded in the manifest.

\b
--engine ray runs the same scorer as Ray Data actors (the [ray] extra): without --address
it starts a local Ray instance for the command and stops it afterwards; --address auto (or
HOST:PORT, ray://HOST:10001) joins a running cluster and leaves it running. Actors default to
one per GPU (1 GPU each), or on CPU-only clusters to half the CPUs (0.5 CPU each on machines
with up to 4 CPUs); --ray-actors/--ray-cpus-per-actor/--ray-gpus-per-actor override that.
Only texts missing from the run's cache are sent, and each returned batch is cached at once, so
Ray and local runs resume each other. --chunk-size and --self-check are local-engine options.

\b
--self-check scores a seeded sample of 70 of your texts at batch sizes 1, 7 and 64, records the
largest reward difference in manifest stages.score.self_check and fails above the tolerance
(default 1e-4 in float32; 5e-2 in bfloat16/float16, whose rounding alone exceeds 1e-4).
"""


def assign_roles(
    specs: list[Any], *, pre: str | None, post: str | None, baselines: tuple[str, ...]
) -> list[Any]:
    """Apply --pre/--post/--baseline to the RMs by name (an unknown name is an error naming the RMs)."""
    from dataclasses import replace

    names = {s.name for s in specs}
    wanted: dict[str, str] = {b: "baseline" for b in baselines}
    for role, name in (("pre", pre), ("post", post)):
        if name is not None:
            if name in wanted:
                raise SealError(f"RM '{name}' given two roles ({wanted[name]} and {role})")
            wanted[name] = role
    for name, role in wanted.items():
        if name not in names:
            raise SealError(f"--{role} {name}: no RM named '{name}' (have {', '.join(sorted(names))})")
    out = []
    for s in specs:
        role = wanted.get(s.name, s.role)
        if s.name not in wanted and role in ("pre", "post") and role in wanted.values():
            role = "extra"  # the role moved to another RM
        out.append(replace(s, role=role))
    return out


def open_run(source: Path, out: Path | None, kwargs: dict[str, Any]) -> RunStore:
    """The run to score: ``source`` itself if it is a run directory, else ``out`` filled from the file."""
    if source.is_dir() and (source / MANIFEST).exists():
        load_options(kwargs)  # consumed, unused: the run already holds its pairs
        if out is not None and out.resolve() != source.resolve():
            raise SealError(f"{source} is a run directory; --out {out} would be ignored (drop it)")
        return writer_store(source, "score")
    # any other folder may be a Hugging Face dataset (save_to_disk, shards): the loader reads or names it
    run_dir = out or Path("seal-run")
    options = load_options(kwargs, default_quarantine=run_dir / QUARANTINE)
    result = load_with_status(str(source), options)
    if not result.pairs:  # before the run directory is made
        raise SealError(f"{source}: no pairs to score")
    store = writer_store(run_dir, "score", create=True)
    from seal_audit.api import store_loaded_pairs

    store_loaded_pairs(store, str(source), result, options, verb="seal score")
    return store


@click.command("score", help=HELP)
@click.argument("pairs_or_run", type=click.Path(exists=True, path_type=Path))
@click.option("--rm", "rm_args", multiple=True, metavar="NAME=SPEC", help="A reward model (repeatable).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run directory [./seal-run].")
@click.option("--pre", "pre_name", default=None, help="Name of the pre-D RM (not trained on D).")
@click.option("--post", "post_name", default=None, help="Name of the post-D RM (trained on D).")
@click.option(
    "--baseline",
    "baseline_names",
    multiple=True,
    metavar="NAME",
    help="An RM that is a baseline (agreement and calibration only); repeatable.",
)
@model_options(RMOptions, names={"format": "--input-format"}, prefix="rm_")
@click.option("--chunk-size", type=int, default=2048, show_default=True, help="Texts per streaming chunk.")
@click.option("--self-check", is_flag=True, help="Check batch-size invariance on a sample (see above).")
@click.option("--self-check-tol", type=float, default=None, help="Tolerance of --self-check.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Score in this process, or as Ray Data actors (see above).",
)
@click.option("--address", default=None, help="Ray cluster to join (auto, HOST:PORT) [start a local one].")
@click.option("--ray-actors", type=int, default=None, help="Scoring actors [one per GPU / half the CPUs].")
@click.option("--ray-cpus-per-actor", type=float, default=None, help="CPUs each actor reserves [0.5 or 1].")
@click.option("--ray-gpus-per-actor", type=float, default=None, help="GPUs each actor reserves [1 if any].")
@source_options
def command(
    pairs_or_run: Path,
    rm_args: tuple[str, ...],
    out: Path | None,
    pre_name: str | None,
    post_name: str | None,
    baseline_names: tuple[str, ...],
    chunk_size: int,
    self_check: bool,
    self_check_tol: float | None,
    no_progress: bool,
    engine: str,
    address: str | None,
    ray_actors: int | None,
    ray_cpus_per_actor: float | None,
    ray_gpus_per_actor: float | None,
    **kwargs: Any,
) -> None:
    from dataclasses import replace

    from seal_audit.backends.reward import RMSpec, parse_rm_arg
    from seal_audit.score import score_run

    seed = int(kwargs.get("seed") or 0)
    if engine == "local" and (address or ray_actors or ray_cpus_per_actor or ray_gpus_per_actor is not None):
        raise SealError("--address and --ray-* options need --engine ray")
    if engine == "ray" and self_check:
        raise SealError(
            "--self-check runs with the local engine (it checks the RM, not the engine): "
            "run `seal score RUN --self-check` once, then --engine ray"
        )
    base = RMOptions().with_overrides(**model_overrides(RMOptions, kwargs, prefix="rm_"))
    store = open_run(pairs_or_run, out, kwargs)
    specs: list[RMSpec] = []
    if rm_args:
        specs = [parse_rm_arg(a, base) for a in rm_args]
    else:
        from seal_audit.pipeline import rm_specs_from_manifest

        specs = [
            replace(s, options=s.options.with_overrides(**base.recorded()))
            for s in rm_specs_from_manifest(store)
        ]
        if not specs:
            raise SealError("no reward model given: use --rm NAME=SPEC (see seal score --help)")
    recorded_roles = {n: r.role for n, r in store.manifest.rms.items()}
    specs = [replace(s, role=recorded_roles.get(s.name, s.role)) for s in specs]
    specs = assign_roles(specs, pre=pre_name, post=post_name, baselines=baseline_names)
    with maybe_progress(not no_progress) as progress:
        if engine == "ray":
            from seal_audit.score import score_run_ray

            result = score_run_ray(
                store,
                specs,
                address=address,
                num_actors=ray_actors,
                num_cpus_per_actor=ray_cpus_per_actor,
                num_gpus_per_actor=ray_gpus_per_actor,
                progress=progress_factory(progress) if progress is not None else None,
                log=(lambda m: console.print(m)),
            )
        else:
            result = score_run(
                store,
                specs,
                chunk_size=chunk_size,
                run_self_check=self_check,
                self_check_tolerance=self_check_tol,
                seed=seed,
                progress=progress_factory(progress) if progress is not None else None,
                log=(lambda m: console.print(m)),
            )
    table = Table(title=f"scores: {result.n_pairs} pairs -> {store.table_path('scores')}")
    for col in ("rm", "role", "texts", "cached", "computed", "truncated", "texts/s"):
        table.add_column(col, justify="left" if col in ("rm", "role") else "right")
    for r in result.rms:
        table.add_row(
            r.name,
            r.role or "",
            str(r.n_texts),
            str(r.n_cached),
            str(r.n_computed),
            str(r.n_truncated),
            f"{r.texts_per_s:,.1f}",
        )
    console.print(table)
    summary(
        run_dir=str(store.root),
        scores=str(store.table_path("scores")),
        pairs=result.n_pairs,
        truncated=result.n_truncated,
        rms=[
            {
                "name": r.name,
                "role": r.role,
                "texts": r.n_texts,
                "cached": r.n_cached,
                "computed": r.n_computed,
                "truncated": r.n_truncated,
                "texts_per_s": r.texts_per_s,
            }
            for r in result.rms
        ],
        self_checks=[
            {"rm": c.rm, "max_abs_dev": c.max_abs_dev, "tolerance": c.tolerance, "passed": c.passed}
            for c in result.self_checks
        ],
    )
    for c in result.self_checks:
        console.print(
            f"self-check {c.rm}: max |reward difference| across batch sizes {list(c.batch_sizes)} on "
            f"{c.n_texts} texts = {c.max_abs_dev:.2e} (tolerance {c.tolerance:g}): "
            + ("[green]passed[/green]" if c.passed else "[red]FAILED[/red]")
        )
    if result.n_truncated:
        console.print(
            f"[yellow]{result.n_truncated} text(s) were longer than the max length and lost context "
            "from the left (response kept); see the 'truncated' column[/yellow]"
        )
    if result.failed_rms:  # issue 20: the others are kept; the run says which RM is missing, and why
        from seal_audit.data.errors import StageFailed

        why = "; ".join(f"{n}: {r}" for n, r in result.failed_rms.items())
        raise StageFailed(f"score: RM(s) failed to load ({why}); the other RMs' scores were written")
