"""``seal simulate``: write a seeded synthetic dataset with planted SEAL effects (for checks and demos),
or, with ``--power``, answer how many pairs an audit needs to detect an imprint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from seal_audit.stats.power import POWER, pairs_needed, simulated_power
from seal_audit.stats.simulate import SimulationSpec, simulate
from seal_audit.store import write_parquet_atomic, write_text_atomic


@click.command("simulate")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Directory to write into.")
@click.option("--pairs", "n_pairs", type=int, default=2000, show_default=True, help="Number of pairs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--features", "n_features", type=int, default=15, show_default=True, help="Features per side.")
@click.option("--label-noise", type=float, default=0.1, show_default=True, help="Share of swapped labels.")
@click.option(
    "--rewrite-fraction", type=float, default=0.1, show_default=True, help="Share of pairs rewritten."
)
@click.option(
    "--power",
    "power_mode",
    is_flag=True,
    help="Sample-size mode: pairs needed to detect --beta for a feature with --prevalence.",
)
@click.option("--beta", type=float, help="[--power] Imprint to detect, in reward units.")
@click.option("--prevalence", type=float, help="[--power] P(feature = 1) on the chosen text.")
@click.option(
    "--prevalence-rejected", type=float, help="[--power] P(feature = 1) on the rejected text (default: same)."
)
@click.option(
    "--estimator",
    type=click.Choice(["fe", "pooled"]),
    default="fe",
    show_default=True,
    help="[--power] Imprint estimator.",
)
@click.option(
    "--residual-sd", type=float, default=1.0, show_default=True, help="[--power] Per-text reward noise SD."
)
@click.option(
    "--pair-sd",
    type=float,
    default=1.0,
    show_default=True,
    help="[--power] SD of the reward shift shared by a pair's texts (pooled only).",
)
@click.option("--alpha", type=float, default=0.05, show_default=True, help="[--power] Family-wise α.")
@click.option(
    "--tests",
    "n_tests",
    type=int,
    default=15,
    show_default=True,
    help="[--power] Terms in the Bonferroni family.",
)
@click.option("--target-power", type=float, default=POWER, show_default=True, help="[--power] Power wanted.")
@click.option("--vif", type=float, default=1.0, show_default=True, help="[--power] VIF of the feature.")
@click.option(
    "--check-reps",
    type=int,
    default=200,
    show_default=True,
    help="[--power] Planted datasets to confirm the power by simulation (0 = formula only).",
)
def command(
    out_dir: Path | None,
    n_pairs: int,
    seed: int,
    n_features: int,
    label_noise: float,
    rewrite_fraction: float,
    power_mode: bool,
    beta: float | None,
    prevalence: float | None,
    prevalence_rejected: float | None,
    estimator: str,
    residual_sd: float,
    pair_sd: float,
    alpha: float,
    n_tests: int,
    target_power: float,
    vif: float,
    check_reps: int,
) -> None:
    """Write pairs / scores / features / rewrites (Parquet), features.json (specs) and truth.json.

    Then: seal analyze --pairs OUT/pairs.parquet --scores OUT/scores.parquet --features
    OUT/features.parquet --rewrites OUT/rewrites.parquet --specs OUT/features.json --pre pre
    --post post --out OUT/analysis

    With --power: seal simulate --power --beta 0.5 --prevalence 0.05 prints the pairs needed (and
    writes OUT/power.json when --out is given).
    """
    if power_mode:
        if beta is None or prevalence is None:
            raise click.UsageError("--power needs --beta and --prevalence")
        plan = pairs_needed(
            beta,
            prevalence,
            prevalence_rejected=prevalence_rejected,
            estimator="fe" if estimator == "fe" else "pooled",
            residual_sd=residual_sd,
            pair_sd=pair_sd,
            alpha=alpha,
            n_tests=n_tests,
            power=target_power,
            vif=vif,
        )
        if check_reps > 0:
            plan = simulated_power(plan, reps=check_reps, seed=seed)
        click.echo(
            f"{plan.n_pairs} pairs detect beta = {beta:g} for a feature with prevalence "
            f"{plan.prevalence:g} (chosen) / {plan.prevalence_rejected:g} (rejected) with power "
            f"{plan.power:.0%} at alpha = {alpha:g} over {n_tests} terms (each at {plan.level:.2g}), "
            f"{estimator} estimator, residual SD {residual_sd:g}"
            + (f", pair SD {pair_sd:g}" if estimator == "pooled" else "")
        )
        click.echo(f"SE of beta at that N: {plan.se_at_n:.4g}; {plan.formula}")
        if plan.simulated_power is not None:
            click.echo(
                f"check: detected in {plan.simulated_power:.1%} of {plan.simulated_reps} planted datasets "
                "(the real estimator and its default covariance)"
            )
        from seal_audit._cli._output import summary

        summary(power=dataclasses.asdict(plan), out=str(out_dir / "power.json") if out_dir else None)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(
                out_dir / "power.json", json.dumps(dataclasses.asdict(plan), indent=1, sort_keys=True) + "\n"
            )
        return
    if out_dir is None:
        raise click.UsageError("--out is required (unless --power)")
    spec = SimulationSpec(
        n_pairs=n_pairs,
        seed=seed,
        n_features=n_features,
        label_noise=label_noise,
        rewrite_fraction=rewrite_fraction,
    )
    data = simulate(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, df in (
        ("pairs", data.pairs),
        ("scores", data.scores),
        ("features", data.features),
        ("rewrites", data.rewrites),
    ):
        write_parquet_atomic(out_dir / f"{name}.parquet", df)
    specs = [s.model_dump(mode="json") for s in data.specs]
    write_text_atomic(out_dir / "features.json", json.dumps(specs, indent=1, sort_keys=True) + "\n")
    write_text_atomic(out_dir / "truth.json", json.dumps(data.truth, indent=1, sort_keys=True) + "\n")
    click.echo(f"wrote {n_pairs} simulated pairs to {out_dir} (truth in truth.json)")
    from seal_audit._cli._output import summary

    summary(out=str(out_dir), pairs=n_pairs, truth=data.truth)
