"""LOAD: pick the reader and the record shape, validate, sample, and account for every bad record."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from seal_audit.data.errors import InputError, OfflineError
from seal_audit.data.records import PreferencePair
from seal_audit.sources.formats import ColumnMap, Format, SplitRule, detect_format, normalise
from seal_audit.sources.records import RawRecord, iter_records
from seal_audit.store.io import append_jsonl

OnError = Literal["raise", "skip"]


@dataclass(frozen=True)
class LoadOptions:
    """How to read one source; recorded in the run manifest so a load can be repeated exactly."""

    format: Format = "auto"
    columns: ColumnMap = field(default_factory=ColumnMap)
    split_rule: SplitRule = "turn"
    limit: int | None = None
    """Keep only the first N pairs (after expansion of multi-variant records)."""
    sample: float | None = None
    """Seeded random sample: an integer count (>= 1) or a fraction in (0, 1)."""
    seed: int = 0
    on_error: OnError = "raise"
    quarantine: Path | None = None
    """JSONL file that receives skipped records with the reason (``on_error='skip'``)."""
    hf_subset: str | None = None
    hf_split: str = "train"


@dataclass(frozen=True)
class BadRecord:
    """A record that failed validation: where, which field, why."""

    file: str
    record: int | None
    field: str | None
    kind: str
    reason: str


@dataclass(frozen=True)
class LoadResult:
    pairs: tuple[PreferencePair, ...]
    skipped: tuple[BadRecord, ...]
    format: str
    records_read: int
    duplicates: int
    """Pairs whose content-derived id repeats an earlier pair (kept, with a ``~N`` suffix)."""


def _bad(exc: InputError) -> BadRecord:
    return BadRecord(
        file=exc.file or "", record=exc.record, field=exc.field, kind=exc.kind, reason=exc.reason
    )


def _hf_records(name: str, subset: str | None, split: str) -> Iterator[RawRecord]:
    """Records of a Hugging Face dataset, failing at once when offline instead of hanging."""
    hint = (
        "download it where you have network (datasets.load_dataset(...).to_json('pairs.jsonl')) and pass "
        "the local file instead"
    )
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        raise OfflineError(f"hf:{name}: HF_HUB_OFFLINE=1 is set, cannot load a hub dataset; {hint}")
    try:
        import datasets
    except ImportError as exc:
        from seal_audit.data.errors import MissingDependencyError

        raise MissingDependencyError("hf", "datasets") from exc
    try:
        ds = datasets.load_dataset(name, subset, split=split)
    except Exception as exc:  # network failures surface as many exception types
        raise OfflineError(f"hf:{name}: could not load ({exc.__class__.__name__}: {exc}); {hint}") from exc
    for number, row in enumerate(ds, start=1):
        yield RawRecord(number, dict(row))


def _records(spec: str, options: LoadOptions) -> tuple[str, Iterable[RawRecord]]:
    if spec.startswith("hf:"):
        return spec, _hf_records(spec[3:], options.hf_subset, options.hf_split)
    path = Path(spec)
    return str(path), iter_records(path)


def _sample(pairs: list[PreferencePair], options: LoadOptions) -> list[PreferencePair]:
    if options.sample is not None:
        n_total = len(pairs)
        if options.sample <= 0:
            raise InputError("--sample must be positive")
        n = int(options.sample) if options.sample >= 1 else max(1, round(options.sample * n_total))
        if n < n_total:
            rng = np.random.default_rng(options.seed)
            keep = np.sort(rng.choice(n_total, size=n, replace=False))
            pairs = [pairs[i] for i in keep]
    if options.limit is not None:
        pairs = pairs[: options.limit]
    return pairs


def load(spec: str | Path, options: LoadOptions | None = None) -> LoadResult:
    """Load one source (file path or ``hf:owner/name``) into validated PreferencePairs.

    With ``on_error='raise'`` the first bad record raises an InputError naming file, record and field;
    with ``'skip'`` bad records go to the quarantine file and are counted in the result.
    """
    options = options or LoadOptions()
    label, records = _records(str(spec), options)
    fmt: Format = options.format
    pairs: list[PreferencePair] = []
    skipped: list[BadRecord] = []
    seen_ids: dict[str, int] = {}
    explicit_ids: dict[str, int] = {}
    duplicates = 0
    n_read = 0
    stop = options.limit if options.sample is None else None
    it = iter(records)
    while stop is None or len(pairs) < stop:
        try:
            raw = next(it)
        except StopIteration:
            break
        except InputError as exc:  # the reader itself failed (bad bytes, bad JSON, cut gzip)
            if options.on_error == "raise":
                raise
            skipped.append(_bad(exc))
            if exc.kind in ("gzip", "missing", "format", "read") or exc.record is None:
                break  # nothing after this point can be read
            continue
        n_read += 1
        try:
            if raw.error is not None:
                raise raw.error
            if fmt == "auto":
                fmt = detect_format(raw.fields, options.columns)
            new = normalise(fmt, raw.fields, label, raw.number, options.columns, options.split_rule)
        except InputError as exc:
            if options.on_error == "raise":
                raise
            skipped.append(_bad(exc))
            continue
        explicit = _has_own_id(raw, options)
        for pair in new:
            if explicit:
                if pair.pair_id in explicit_ids:
                    dup = InputError(
                        f"duplicate pair_id '{pair.pair_id}' (first seen in record {explicit_ids[pair.pair_id]})",
                        file=label,
                        record=raw.number,
                        field=options.columns.id or "pair_id",
                        kind="duplicate",
                    )
                    if options.on_error == "raise":
                        raise dup
                    skipped.append(_bad(dup))
                    continue
                explicit_ids[pair.pair_id] = raw.number
            elif pair.pair_id in seen_ids:
                seen_ids[pair.pair_id] += 1
                duplicates += 1
                pair = pair.model_copy(update={"pair_id": f"{pair.pair_id}~{seen_ids[pair.pair_id]}"})
            else:
                seen_ids[pair.pair_id] = 1
            pairs.append(pair)
    if skipped and options.quarantine is not None:
        append_jsonl(options.quarantine, [b.__dict__ for b in skipped])
    pairs = _sample(pairs, options)
    return LoadResult(tuple(pairs), tuple(skipped), str(fmt), n_read, duplicates)


def _has_own_id(raw: RawRecord, options: LoadOptions) -> bool:
    cols = options.columns
    if cols.id is not None:
        return True
    return any(raw.fields.get(n) not in (None, "") for n in ("pair_id", "id"))


def load_pairs(spec: str | Path, **options: Any) -> list[PreferencePair]:
    """Convenience: ``load(spec, LoadOptions(**options)).pairs`` as a list."""
    return list(load(spec, LoadOptions(**options)).pairs)


def load_hh_rlhf(path: str | Path, **options: Any) -> list[PreferencePair]:
    """hh-rlhf transcripts (``chosen``/``rejected`` full transcripts) split as SEAL-METHOD.md §1."""
    return load_pairs(path, format="hh-rlhf", **options)


def load_pairs_file(
    path: str | Path, columns: ColumnMap | None = None, **options: Any
) -> list[PreferencePair]:
    """A flat pairs file (JSONL / JSON / Parquet / CSV, optionally gzip) with a column mapping."""
    return load_pairs(path, format="pairs", columns=columns or ColumnMap(), **options)


def load_conversations(
    path: str | Path, columns: ColumnMap | None = None, **options: Any
) -> list[PreferencePair]:
    """Conversational records (lists of ``{role, content}`` messages, as TRL uses)."""
    return load_pairs(path, format="conversation", columns=columns or ColumnMap(), **options)


def load_multi_variant(
    path: str | Path, columns: ColumnMap | None = None, **options: Any
) -> list[PreferencePair]:
    """Records with lists of chosen and rejected responses, expanded to all pairs."""
    return load_pairs(path, format="multi-variant", columns=columns or ColumnMap(), **options)


def load_hf_dataset(
    name: str, subset: str | None = None, split: str = "train", **options: Any
) -> list[PreferencePair]:
    """A Hugging Face dataset by id (needs network; fails at once when offline)."""
    return load_pairs(f"hf:{name}", hf_subset=subset, hf_split=split, **options)
