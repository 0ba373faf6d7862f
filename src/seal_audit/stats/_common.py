"""Shared plumbing of the statistics layer: array aliases, skip/exclusion records, canonical JSON.

Every result record is a frozen dataclass; ``to_jsonable`` turns any of them into plain JSON values in
one deterministic way (12 significant digits, NaN/inf → null, sorted keys), which is what makes
``stats.json`` byte-identical for the same inputs and seed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
StrArray = npt.NDArray[np.object_]

SIGNIFICANT_DIGITS = 12
"""Floats in stats.json are rounded to this many significant digits: enough for any reader, few
enough that last-bit differences between BLAS builds do not show."""

MAX_LISTED_IDS = 100
"""Default cap on pair_ids listed inline in stats.json; the full lists are in the exclusions table."""


ANALYSIS_BLAS_THREADS = 1
"""BLAS threads while ``analyze`` runs (issue 20). Its matrices are thin (N rows, at most a few dozen
columns): a threaded BLAS gains little on them, and when the cores are busy each threaded call waits
for a descheduled thread. Measured on the 2-core test machine, hh-rlhf, ten RMs: the logit fits took
35x longer with the default two threads. The caller's setting is restored on return."""


@contextlib.contextmanager
def blas_threads(limit: int) -> Iterator[None]:
    """Limit the BLAS thread pools for the duration (threadpoolctl; a no-op without it)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        yield
        return
    with threadpool_limits(limits=limit, user_api="blas"):
        yield


def no_json() -> dict[str, Any]:
    """Field metadata marking a field (per-pair arrays, matrices) as left out of stats.json."""
    return {"json": False}


AnalysisStatus = Literal["ok", "skipped", "failed"]
"""``skipped``: not applicable to these inputs (no pre-D RM, no features); ``failed``: applicable but
not computable from them (collinear or constant regressors, no rows, separation)."""


@dataclasses.dataclass(frozen=True)
class Skipped:
    """An analysis that did not produce numbers, and why: SEAL outputs state skips, never omit them.

    One analysis failing never stops another; the reason names the cause and, where a regressor is
    to blame, the features (``features``)."""

    reason: str
    status: Literal["skipped", "failed"] = "skipped"
    features: tuple[str, ...] = ()
    """The features the reason is about (constant, collinear, separating), when there are any."""

    @property
    def skipped(self) -> str:
        """The reason (the field's name before schema 2 of stats.json)."""
        return self.reason


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
    if isinstance(obj, BaseModel):
        return to_jsonable(obj.model_dump(mode="python"))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {name: to_jsonable(getattr(obj, name)) for name in _json_fields(type(obj))}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, Sequence):
        return [to_jsonable(v) for v in obj]
    raise TypeError(f"cannot serialise {type(obj).__name__} to stats.json")


@functools.cache
def _json_fields(cls: type) -> tuple[str, ...]:
    """The fields of a result record that go into stats.json (once per class: a many-RM stats.json
    holds tens of thousands of records)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("json", True) is not False)


def canonical_json(obj: Any) -> str:
    """Deterministic JSON text: sorted keys, fixed separators, rounded floats, no NaN tokens.

    The text is ``json.dumps(to_jsonable(obj), sort_keys=True, indent=1, ensure_ascii=False)`` byte
    for byte (the tests check it), written in one pass over the records: the standard library's
    indenting encoder is pure Python and, after ``to_jsonable`` had built the whole tree, was a third
    of the time of a ten-RM analysis (issue 20)."""
    out: list[str] = []
    _emit(obj, "\n", out)
    out.append("\n")
    return "".join(out)


_encode_str: Any = json.encoder.encode_basestring  # the C implementation where available


def _emit(obj: Any, nl: str, out: list[str]) -> None:
    """Append the JSON text of ``obj`` (as ``to_jsonable`` would convert it); ``nl`` is the newline
    plus indentation of the current level."""
    if obj is None:
        out.append("null")
    elif obj is True or obj is False or isinstance(obj, np.bool_):
        out.append("true" if obj else "false")
    elif isinstance(obj, str):
        out.append(_encode_str(obj))
    elif isinstance(obj, int | np.integer):
        out.append(int.__repr__(int(obj)))
    elif isinstance(obj, float | np.floating):
        r = round_float(float(obj))
        out.append("null" if r is None else float.__repr__(r))
    elif isinstance(obj, BaseModel):
        _emit(obj.model_dump(mode="python"), nl, out)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        _emit_items([(name, getattr(obj, name)) for name in _json_fields_sorted(type(obj))], nl, out)
    elif isinstance(obj, Mapping):
        _emit_items(sorted((str(k), v) for k, v in obj.items()), nl, out)
    elif isinstance(obj, np.ndarray):
        _emit_list(obj.tolist(), nl, out)
    elif isinstance(obj, Sequence):
        _emit_list(obj, nl, out)
    else:
        raise TypeError(f"cannot serialise {type(obj).__name__} to stats.json")


def _emit_items(items: Sequence[tuple[str, Any]], nl: str, out: list[str]) -> None:
    if not items:
        out.append("{}")
        return
    inner = nl + " "
    sep = "{" + inner
    for key, value in items:
        out.append(sep)
        out.append(_encode_str(key))
        out.append(": ")
        _emit(value, inner, out)
        sep = "," + inner
    out.append(nl)
    out.append("}")


def _emit_list(values: Sequence[Any], nl: str, out: list[str]) -> None:
    if not values:
        out.append("[]")
        return
    inner = nl + " "
    sep = "[" + inner
    for value in values:
        out.append(sep)
        _emit(value, inner, out)
        sep = "," + inner
    out.append(nl)
    out.append("]")


@functools.cache
def _json_fields_sorted(cls: type) -> tuple[str, ...]:
    return tuple(sorted(_json_fields(cls)))


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints`` once per class: it re-evaluates every annotation string on each
    call, and reading one stats.json rebuilds the same few record classes thousands of times."""
    import typing

    return typing.get_type_hints(cls)


def from_jsonable(tp: Any, value: Any, where: str = "stats.json") -> Any:
    """Rebuild a result record (or any value of annotation ``tp``) from its ``to_jsonable`` form.

    The inverse of ``to_jsonable`` for the types result records use: dataclasses (fields left out
    of JSON get their defaults), pydantic models, ``X | Skipped`` unions, ``dict[str, X]``,
    ``tuple[X, ...]``, floats (``null`` → NaN). Floats come back rounded as stored, so
    ``from_jsonable(...)`` then ``to_jsonable`` reproduces the same JSON exactly. ``where`` names the
    key path in errors.
    """
    import types
    import typing

    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None and len(options) < len(args):
            return None
        if Skipped in options and isinstance(value, Mapping) and value.get("status") in ("skipped", "failed"):
            return from_jsonable(Skipped, value, where)
        if value is None and float in options:
            return math.nan
        errors = []
        for a in options:
            if a is Skipped:
                continue
            try:
                return from_jsonable(a, value, where)
            except (TypeError, ValueError, KeyError) as exc:
                errors.append(str(exc))
        raise ValueError(f"{where}: value matches none of {options}: {'; '.join(errors)}")
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise TypeError(f"{where}: expected an object, got {type(value).__name__}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): from_jsonable(vt, v, f"{where}.{k}") for k, v in value.items()}
    if origin in (tuple, Sequence) or tp is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError(f"{where}: expected a list, got {type(value).__name__}")
        if (len(args) == 2 and args[1] is Ellipsis) or origin is Sequence:
            return tuple(
                from_jsonable(args[0] if args else Any, v, f"{where}[{i}]") for i, v in enumerate(value)
            )
        if args:
            return tuple(
                from_jsonable(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
            )
        return tuple(value)
    if origin is list:
        return [from_jsonable(args[0] if args else Any, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp.model_validate(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise TypeError(f"{where}: expected an object for {tp.__name__}, got {type(value).__name__}")
        hints = _type_hints(tp)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(tp):
            if f.metadata.get("json", True) is False or not f.init:
                continue
            if f.name not in value:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise KeyError(f"{where}: {tp.__name__} needs key {f.name!r}")
                continue
            kwargs[f.name] = from_jsonable(hints[f.name], value[f.name], f"{where}.{f.name}")
        return tp(**kwargs)
    if tp is float:
        if value is None:
            return math.nan
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise TypeError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"{where}: expected a string, got {value!r}")
        return value
    return value
