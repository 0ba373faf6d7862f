"""Content-addressed embeddings in the run store: encode each text once per encoder setting.

The local embed RM's features are a frozen encoder's embedding of ``context + response``, so the
pre-D RM, the post-D RM and their training all need the same vectors: without a cache a demo run
embeds every text of D four times (post-D training, then scoring under pre-D and under post-D).
Here each vector is stored once in the run's SQLite cache (namespace ``embed``) under

    ``embed|<settings hash>|<sha256(context \\0 response)>``

where the settings are the encoder's identity (reference, weights fingerprint, max length,
pooling, dtype), the device type and the input rule (one joined sequence, context cut from the
left). The value is the float32 vector's little-endian bytes, stored as a SQLite BLOB (1,536
bytes for MiniLM; issue 18), so a cached vector is bit-for-bit the one that was computed and a
score read through the cache equals the score of the forward pass that filled it. Caches written
before issue 18 hold base64 text of the same bytes; those entries are still read as they are
(not rewritten), and new entries are blobs.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from seal_audit.backends.reward.base import plan_for
from seal_audit.data.records import text_hash
from seal_audit.store.cache import Cache, cache_key

if TYPE_CHECKING:
    from seal_audit.backends.embed.encoder import TextEncoder

NAMESPACE = "embed"
"""Cache namespace of embeddings (``seal cache`` lists them under the component ``embed``)."""
COMPONENT = "embed"
JOINED = "context+response, context cut from the left"
"""The input rule of ``TextEncoder.encode_pairs`` (what the local RM and its training encode)."""


def pack_vector(vec: np.ndarray) -> bytes:
    """A float32 vector as its little-endian bytes (exact; stored as a BLOB)."""
    return np.ascontiguousarray(vec, dtype="<f4").tobytes()


def unpack_vector(value: Any, dim: int) -> np.ndarray | None:
    """The stored vector, or None when the value is not a float32 vector of ``dim`` entries.

    Accepts the blob form and the base64 text written by caches before issue 18.
    """
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            return None
    elif isinstance(value, bytes):
        raw = value
    else:
        return None
    if len(raw) != 4 * dim:
        return None
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


class EmbeddingCache:
    """Embeddings of one encoder (under one input rule) in a run store's cache."""

    def __init__(self, cache: Cache, encoder: TextEncoder, input_rule: str = JOINED) -> None:
        self.cache = cache
        self.dim = encoder.dim
        self.settings: dict[str, Any] = {
            **encoder.identity,
            "device": encoder.device.type,
            "input": input_rule,
        }

    def key(self, context: str, response: str) -> str:
        return cache_key(COMPONENT, self.settings, text_hash(context + "\x00" + response))

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors of those keys that are present (malformed entries count as absent)."""
        out: dict[str, np.ndarray] = {}
        for k, v in self.cache.get_many(NAMESPACE, list(dict.fromkeys(keys))).items():
            vec = unpack_vector(v, self.dim)
            if vec is not None:
                out[k] = vec
        return out

    def put_many(self, vectors: Mapping[str, np.ndarray]) -> None:
        """Store vectors in one transaction (a killed run keeps every finished batch)."""
        self.cache.put_many(NAMESPACE, {k: pack_vector(v) for k, v in vectors.items()})


@dataclass(frozen=True)
class EmbedCounts:
    """How many distinct texts came from the cache and how many went through the encoder."""

    n_unique: int
    n_cached: int
    n_computed: int


def embed_pairs(
    encoder: TextEncoder,
    items: Sequence[tuple[str, str]],
    cache: Cache | None = None,
) -> tuple[np.ndarray, EmbedCounts]:
    """Embeddings (float32, rows in item order) of ``(context, response)`` items as the local RM
    encodes them; each distinct text once, cached texts not at all, misses batched by token budget
    after length sorting and stored batch by batch when ``cache`` is given."""
    unique: dict[tuple[str, str], int] = {}
    for it in items:
        unique.setdefault(it, len(unique))
    keys = list(unique)
    feats = np.zeros((len(keys), encoder.dim), dtype=np.float32)
    ec = EmbeddingCache(cache, encoder) if cache is not None else None
    todo = list(range(len(keys)))
    ckeys: list[str] = []
    if ec is not None:
        ckeys = [ec.key(c, r) for c, r in keys]
        hits = ec.get_many(ckeys)
        for i, k in enumerate(ckeys):
            if k in hits:
                feats[i] = hits[k]
        todo = [i for i, k in enumerate(ckeys) if k not in hits]
    if todo:
        encoded = encoder.encode_pairs([keys[i] for i in todo])
        for idx in plan_for(encoder, [e.length for e in encoded]):
            vecs = encoder.embed_batch([encoded[j] for j in idx])
            rows = [todo[j] for j in idx]
            feats[rows] = vecs
            if ec is not None:
                ec.put_many({ckeys[r]: v for r, v in zip(rows, vecs, strict=True)})
    counts = EmbedCounts(n_unique=len(keys), n_cached=len(keys) - len(todo), n_computed=len(todo))
    return feats[[unique[it] for it in items]], counts
