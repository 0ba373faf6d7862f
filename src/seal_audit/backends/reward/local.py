"""Local RMs written by ``seal train-rm``: a directory of ``config.json`` + ``model.safetensors``.

``config.json`` carries ``seal_rm_type`` (``embed-bt`` or ``ngram-bt``), which is how a bare
directory path is recognised as one of ours rather than a Hugging Face model. The weights are a
linear Bradley-Terry head; no pickle is ever written or read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seal_audit.backends.reward._runtime import dir_fingerprint, read_json
from seal_audit.backends.reward.base import Encoded, RMOptions
from seal_audit.data.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from seal_audit.backends.embed.cache import EmbeddingCache
    from seal_audit.store.cache import Cache

SEAL_RM_TYPES = ("embed-bt", "ngram-bt")
CONFIG = "config.json"
WEIGHTS = "model.safetensors"


def local_rm_type(path: Path) -> str | None:
    """The ``seal_rm_type`` of a directory, or None when it is not a seal-audit local RM."""
    cfg = path / CONFIG
    if not cfg.is_file():
        return None
    value = read_json(cfg).get("seal_rm_type")
    return str(value) if value is not None else None


def save_weights(path: Path, tensors: Mapping[str, np.ndarray]) -> None:
    try:
        from safetensors.numpy import save_file
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("hf", "safetensors") from exc
    import os
    import re

    from seal_audit.data.errors import disk_error
    from seal_audit.store.io import atomic_path

    with atomic_path(path) as tmp:  # a killed or failed write never leaves half a weights file
        try:
            save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(tmp))
        except Exception as exc:  # safetensors reports a disk fault as "I/O error: ... (os error 28)"
            m = re.search(r"os error (\d+)", str(exc))
            if m is None:
                raise
            code = int(m.group(1))
            raise disk_error(OSError(code, os.strerror(code)), path) from exc


def load_weights(path: Path) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import load_file
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("hf", "safetensors") from exc
    if not path.is_file():
        raise ConfigError(f"{path.parent}: no {WEIGHTS}")
    return dict(load_file(str(path)))


@dataclass(eq=False)
class CachedInput:
    """``Encoded.data`` of the embed RM while an embedding cache is attached."""

    key: str
    """The text's key in the embedding cache."""
    tokens: Encoded
    """The encoder's own encoding, run through the encoder when ``vector`` is None."""
    vector: np.ndarray | None
    """The cached embedding (float32), or None on a miss."""


class EmbedBTRewardModel:
    """reward = w · standardise(meanpool(encoder(context + response))) + b.

    With an embedding cache attached (``attach_cache``; the scorer does it for the duration of a
    chunk when it has a cache), ``encode`` looks every text's embedding up in the run store and
    ``score_batch`` runs the encoder only on the misses, storing what it computes. The vectors
    shared with ``train_reward_model(..., cache=...)`` and with other RMs on the same encoder are
    the exact float32 ones, so a cached score equals the score of the forward pass that filled it.
    """

    name = "local-embed"

    def __init__(self, path: Path, config: Mapping[str, Any], options: RMOptions) -> None:
        from seal_audit.backends.embed.encoder import TextEncoder

        weights = load_weights(path / WEIGHTS)
        self.w = weights["weight"].astype(np.float32).reshape(-1)
        self.b = float(weights["bias"].reshape(-1)[0])
        self.mean = weights["mean"].astype(np.float32)
        self.scale = weights["scale"].astype(np.float32)
        self.encoder = TextEncoder(
            str(config["encoder"]),
            device=options.device,
            dtype=options.dtype,
            max_length=int(config["max_length"]),
            batch_tokens=options.batch_tokens,
            max_batch=options.max_batch,
        )
        if self.encoder.dim != self.w.shape[0]:
            raise ConfigError(
                f"{path}: head has {self.w.shape[0]} weights but the encoder gives {self.encoder.dim}"
            )
        self._identity = {
            "backend": self.name,
            "model": path.name,
            "fingerprint": dir_fingerprint(path),
            **self.encoder.identity,
        }
        self._embed_cache: EmbeddingCache | None = None

    @property
    def identity(self) -> Mapping[str, Any]:
        return self._identity

    @property
    def batch_tokens(self) -> int:
        return self.encoder.batch_tokens

    @property
    def max_batch(self) -> int:
        return self.encoder.max_batch

    @property
    def padding_free(self) -> bool:
        return self.encoder.padding_free

    def attach_cache(self, cache: Cache | None) -> Cache | None:
        """Read and write embeddings through ``cache`` (None detaches); returns the previous cache."""
        from seal_audit.backends.embed.cache import EmbeddingCache

        previous = self._embed_cache.cache if self._embed_cache is not None else None
        self._embed_cache = EmbeddingCache(cache, self.encoder) if cache is not None else None
        return previous

    def encode(self, items: Sequence[tuple[str, str]]) -> list[Encoded]:
        encoded = self.encoder.encode_pairs(items)
        ec = self._embed_cache
        if ec is None:
            return encoded
        keys = [ec.key(c, r) for c, r in items]
        hits = ec.get_many(keys)
        # a cached text costs the batch planner nothing: it only meets the linear head
        return [
            Encoded(
                length=1 if k in hits else e.length,
                n_tokens=e.n_tokens,
                truncated=e.truncated,
                data=CachedInput(key=k, tokens=e, vector=hits.get(k)),
            )
            for k, e in zip(keys, encoded, strict=True)
        ]

    def features(self, batch: Sequence[Encoded]) -> np.ndarray:
        """Float32 embeddings of a batch: cached ones read, the rest encoded (and then cached)."""
        if not any(isinstance(e.data, CachedInput) for e in batch):
            return self.encoder.embed_batch(batch)
        feats = np.empty((len(batch), self.encoder.dim), dtype=np.float32)
        misses: list[int] = []
        for i, e in enumerate(batch):
            if isinstance(e.data, CachedInput) and e.data.vector is not None:
                feats[i] = e.data.vector
            else:
                misses.append(i)
        if misses:
            inputs = [_tokens(batch[i]) for i in misses]
            vecs = self.encoder.embed_batch(inputs)
            feats[misses] = vecs
            new = {
                d.key: v
                for i, v in zip(misses, vecs, strict=True)
                if isinstance(d := batch[i].data, CachedInput)
            }
            if new and self._embed_cache is not None:
                self._embed_cache.put_many(new)
        return feats

    def score_batch(self, batch: Sequence[Encoded]) -> list[float]:
        feats = (self.features(batch) - self.mean) / self.scale
        # a row-wise sum rather than BLAS matrix @ vector: each reward then depends on its own row
        # only (not on its position in the batch), so equal features give bit-equal rewards
        rewards: list[float] = (
            (feats.astype(np.float64) * self.w.astype(np.float64)).sum(axis=1) + self.b
        ).tolist()
        return rewards


def _tokens(e: Encoded) -> Encoded:
    return e.data.tokens if isinstance(e.data, CachedInput) else e


class NgramBTRewardModel:
    """reward = w · hashed-n-grams(context + response) + b; numpy only, no torch."""

    name = "local-ngram"

    def __init__(self, path: Path, config: Mapping[str, Any], options: RMOptions) -> None:
        weights = load_weights(path / WEIGHTS)
        self.w = weights["weight"].astype(np.float64).reshape(-1)
        self.b = float(weights["bias"].reshape(-1)[0])
        self.n_buckets = int(config["n_buckets"])
        self.max_n = int(config["ngram"])
        if self.w.shape[0] != self.n_buckets:
            raise ConfigError(f"{path}: {self.w.shape[0]} weights for {self.n_buckets} buckets")
        self._identity = {"backend": self.name, "model": path.name, "fingerprint": dir_fingerprint(path)}
        self._max_batch = options.max_batch

    @property
    def identity(self) -> Mapping[str, Any]:
        return self._identity

    @property
    def batch_tokens(self) -> int:
        return 1 << 62

    @property
    def max_batch(self) -> int:
        return self._max_batch

    def encode(self, items: Sequence[tuple[str, str]]) -> list[Encoded]:
        from seal_audit.backends.reward.ngram import ngram_vector

        out = []
        for c, r in items:
            idx, val, n = ngram_vector(c + r, self.n_buckets, self.max_n)
            out.append(Encoded(length=1, n_tokens=n, truncated=False, data=(idx, val)))
        return out

    def score_batch(self, batch: Sequence[Encoded]) -> list[float]:
        return [float(self.w[idx] @ val.astype(np.float64)) + self.b for idx, val in (e.data for e in batch)]


def load_local_rm(
    path: str | Path, options: RMOptions | None = None
) -> EmbedBTRewardModel | NgramBTRewardModel:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise ConfigError(f"local RM '{path}': not a directory")
    kind = local_rm_type(p)
    if kind is None:
        raise ConfigError(f"local RM '{path}': {CONFIG} has no 'seal_rm_type' (not written by seal train-rm)")
    config = read_json(p / CONFIG)
    opts = options or RMOptions()
    if kind == "embed-bt":
        return EmbedBTRewardModel(p, config, opts)
    if kind == "ngram-bt":
        return NgramBTRewardModel(p, config, opts)
    raise ConfigError(f"local RM '{path}': unknown seal_rm_type '{kind}' (known: {', '.join(SEAL_RM_TYPES)})")
