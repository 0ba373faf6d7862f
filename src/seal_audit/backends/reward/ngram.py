"""Hashed word n-gram features: the torch-free local RM's input (numpy and scipy only).

Words are lower-cased ``\\w+`` runs plus single punctuation marks; every n-gram is hashed with
CRC-32 (stable across processes, unlike Python's ``hash``) into ``n_buckets`` signed buckets;
counts are log-damped and each text's vector is L2-normalised so long texts do not dominate.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngram_vector(text: str, n_buckets: int, max_n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(bucket indices, values, word count) of one text's sparse feature vector."""
    toks = words(text)
    acc: dict[int, float] = {}
    for n in range(1, max_n + 1):
        for i in range(len(toks) - n + 1):
            h = zlib.crc32((" ".join(toks[i : i + n])).encode("utf-8"))
            bucket = h % n_buckets
            acc[bucket] = acc.get(bucket, 0.0) + (1.0 if h & 0x80000000 else -1.0)
    if not acc:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), len(toks)
    idx = np.fromiter(acc.keys(), dtype=np.int64, count=len(acc))
    raw = np.fromiter(acc.values(), dtype=np.float64, count=len(acc))
    val = np.sign(raw) * np.log1p(np.abs(raw))
    norm = float(np.sqrt((val * val).sum()))
    if norm > 0:
        val = val / norm
    return idx, val.astype(np.float32), len(toks)


def ngram_matrix(texts: Sequence[str], n_buckets: int, max_n: int) -> object:
    """A scipy CSR matrix (len(texts) x n_buckets) of the texts' feature vectors."""
    from scipy import sparse

    indptr = [0]
    indices: list[np.ndarray] = []
    data: list[np.ndarray] = []
    for t in texts:
        idx, val, _ = ngram_vector(t, n_buckets, max_n)
        indices.append(idx)
        data.append(val)
        indptr.append(indptr[-1] + len(idx))
    return sparse.csr_matrix(
        (
            np.concatenate(data) if data else np.zeros(0, np.float32),
            np.concatenate(indices) if indices else np.zeros(0, np.int64),
            np.asarray(indptr, dtype=np.int64),
        ),
        shape=(len(texts), n_buckets),
    )
