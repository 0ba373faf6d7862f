"""``seal simulate``: write a seeded synthetic dataset with planted SEAL effects (for checks and demos)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from seal_audit.stats.simulate import SimulationSpec, simulate
from seal_audit.store import write_parquet_atomic, write_text_atomic


@click.command("simulate")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Directory to write into."
)
@click.option("--pairs", "n_pairs", type=int, default=2000, show_default=True, help="Number of pairs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--features", "n_features", type=int, default=15, show_default=True, help="Features per side.")
@click.option("--label-noise", type=float, default=0.1, show_default=True, help="Share of swapped labels.")
@click.option(
    "--rewrite-fraction", type=float, default=0.1, show_default=True, help="Share of pairs rewritten."
)
def command(
    out_dir: Path, n_pairs: int, seed: int, n_features: int, label_noise: float, rewrite_fraction: float
) -> None:
    """Write pairs / scores / features / rewrites (Parquet), features.json (specs) and truth.json.

    Then: seal analyze --pairs OUT/pairs.parquet --scores OUT/scores.parquet --features
    OUT/features.parquet --rewrites OUT/rewrites.parquet --specs OUT/features.json --pre pre
    --post post --out OUT/analysis
    """
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
