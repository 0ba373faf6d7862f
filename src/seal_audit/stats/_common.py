"""Shared plumbing of the statistics layer: array aliases, skip/exclusion records, canonical JSON.

Every result record is a frozen dataclass; ``to_jsonable`` turns any of them into plain JSON values in
one deterministic way (12 significant digits, NaN/inf → null, sorted keys), which is what makes
``stats.json`` byte-identical for the same inputs and seed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
StrArray = npt.NDArray[np.object_]

SIGNIFICANT_DIGITS = 12
"""Floats in stats.json are rounded to this many significant digits: enough for any reader, few
enough that last-bit differences between BLAS builds do not show."""

MAX_LISTED_IDS = 100
"""Default cap on pair_ids listed inline in stats.json; the full lists are in the exclusions table."""


def no_json() -> dict[str, Any]:
    """Field metadata marking a field (per-pair arrays, matrices) as left out of stats.json."""
    return {"json": False}


@dataclasses.dataclass(frozen=True)
class Skipped:
    """An analysis that could not run, and why (SEAL outputs state skips, they never omit silently)."""

    skipped: str


@dataclasses.dataclass(frozen=True)
class Exclusions:
    """Which pairs an analysis left out and why (missing rewards or features): never silent."""

    n_used: int
    n_excluded: int
    reason: str
    excluded_pair_ids: tuple[str, ...]
    """The first ``MAX_LISTED_IDS`` excluded ids (sorted); all of them are in the exclusions table."""
    excluded_ids_truncated: bool
    all_excluded: tuple[str, ...] = dataclasses.field(default=(), metadata=no_json(), repr=False)


def make_exclusions(
    pair_ids: StrArray, used: BoolArray, reason: str, max_listed: int = MAX_LISTED_IDS
) -> Exclusions:
    """Build the exclusion record of an analysis from its per-pair 'usable' mask."""
    excluded = sorted(str(p) for p in pair_ids[~used])
    return Exclusions(
        n_used=int(used.sum()),
        n_excluded=len(excluded),
        reason=reason,
        excluded_pair_ids=tuple(excluded[:max_listed]),
        excluded_ids_truncated=len(excluded) > max_listed,
        all_excluded=tuple(excluded),
    )


def round_float(x: float) -> float | None:
    """Round to ``SIGNIFICANT_DIGITS`` significant digits; NaN and ±inf become None (JSON null)."""
    if not math.isfinite(x):
        return None
    if x == 0.0:
        return 0.0
    return float(f"{x:.{SIGNIFICANT_DIGITS}g}")


def to_jsonable(obj: Any) -> Any:
    """Convert result records (dataclasses, mappings, sequences, numpy scalars) to JSON values."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return round_float(float(obj))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            if f.metadata.get("json", True) is False:
                continue
            out[f.name] = to_jsonable(getattr(obj, f.name))
        return out
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, Sequence):
        return [to_jsonable(v) for v in obj]
    raise TypeError(f"cannot serialise {type(obj).__name__} to stats.json")


def canonical_json(obj: Any) -> str:
    """Deterministic JSON text: sorted keys, fixed separators, rounded floats, no NaN tokens."""
    return json.dumps(to_jsonable(obj), sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
