"""The meaning-drift gate: embedding cosine similarity of each rewrite to its original.

A rewrite that changed what a text *means* tests the RM on a different text, not on the same text
said differently; the reference checked this with embedding similarity (mean ≈ 0.96) and we store it
per rewrite so that stats can exclude drifted rewrites and the report can show how many there were.
Similarities are cached by (embedder identity, original, rewritten), so a resumed or repeated run does
not even load the embedding model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from seal_audit.store.cache import cache_key

if TYPE_CHECKING:
    from seal_audit.backends.embed import Embedder
    from seal_audit.store import Cache

CACHE_NAMESPACE = "rewrite_similarity"


def _pair_sha(original: str, rewritten: str) -> str:
    h = hashlib.sha256()
    for part in (original, rewritten):
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity (inputs need not be normalised)."""
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    denom = np.where((na * nb) > 0, na * nb, 1.0)
    out: np.ndarray = np.sum(a * b, axis=1) / denom
    return out


class DriftGate:
    """Computes similarities with an embedder that is loaded only if something is not cached."""

    def __init__(
        self, spec: str | None = None, *, embedder: Embedder | None = None, cache: Cache | None = None
    ):
        self.spec = spec
        self._embedder = embedder
        self.cache = cache
        self._identity: dict[str, Any] | None = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from seal_audit.backends.embed import load_embedder

            self._embedder = load_embedder(self.spec)
        return self._embedder

    def identity(self) -> dict[str, Any]:
        """What the cache key needs: the spec as given, so a lookup never loads the model."""
        if self._identity is None:
            if self._embedder is not None:
                self._identity = {"embedder": dict(self._embedder.identity)}
            else:
                self._identity = {"embedder_spec": self.spec or "default"}
        return self._identity

    def similarities(self, originals: Sequence[str], rewrites: Sequence[str]) -> list[float]:
        """Cosine similarity of each (original, rewritten) pair, from the cache where possible."""
        if len(originals) != len(rewrites):
            raise ValueError("originals and rewrites differ in length")
        keys = [
            cache_key("drift", self.identity(), _pair_sha(o, r))
            for o, r in zip(originals, rewrites, strict=True)
        ]
        hits = self.cache.get_many(CACHE_NAMESPACE, sorted(set(keys))) if self.cache is not None else {}
        todo = sorted({i for i, k in enumerate(keys) if k not in hits}, key=lambda i: keys[i])
        first: dict[str, int] = {}
        for i in todo:
            first.setdefault(keys[i], i)
        idx = list(first.values())
        if idx:
            emb = self.embedder
            texts = [originals[i] for i in idx] + [rewrites[i] for i in idx]
            vecs = emb.encode(texts)
            sims = cosine_rows(vecs[: len(idx)], vecs[len(idx) :])
            new = {keys[i]: float(s) for i, s in zip(idx, sims, strict=True)}
            if self.cache is not None:
                self.cache.put_many(CACHE_NAMESPACE, new)
            hits.update(new)
        return [float(hits[k]) for k in keys]
