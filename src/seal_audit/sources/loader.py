"""LOAD: pick the reader and the record shape, validate, sample, and account for every bad record."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seal_audit.data.errors import InputError, OfflineError
from seal_audit.data.load_options import Format, LoadOptions, flag
from seal_audit.data.records import PreferencePair
from seal_audit.sources.formats import (
    SEAL_COLUMNS,
    ColumnMap,
    Normalised,
    detect_format,
    detect_layout,
    normalise,
    reply_text,
)
from seal_audit.sources.records import RawRecord, bad_text, iter_dataset, iter_records, quarantine_text
from seal_audit.store.io import append_jsonl
from seal_audit.store.run_store import MANIFEST, RunStore

__all__ = ["BadRecord", "LoadOptions", "LoadResult", "load"]


@dataclass(frozen=True)
class BadRecord:
    """A record that failed validation: where, which field, why, and the record as it was read."""

    file: str
    record: int | None
    field: str | None
    kind: str
    reason: str
    raw: str | None = None
    """The original record (JSONL line, or the row as JSON), so a skipped record can be fixed and re-fed."""


@dataclass(frozen=True)
class LoadResult:
    """The pairs of one source and the count of everything that happened on the way."""

    pairs: tuple[PreferencePair, ...]
    skipped: tuple[BadRecord, ...]
    format: str
    records_read: int
    duplicates: int
    """Pairs whose content-derived id repeats an earlier pair (kept, with a ``~N`` suffix)."""
    layout: str = ""
    """The layout of the file as ``seal data inspect`` names it (from the first good record)."""
    records_skipped: int = 0
    """Distinct records that went to quarantine (a record may yield several skipped pairs)."""
    pairs_skipped: int = 0
    """Pairs left out after their record was read (a duplicate explicit id)."""
    empty_replies: int = 0
    """Pairs kept with an empty final reply (``empty='keep'``)."""
    empty_dropped: int = 0
    """Pairs dropped for an empty final reply (``empty='drop'``)."""
    oriented: dict[str, int] = field(default_factory=dict)
    """Labelled A/B records: how many were oriented each way (``a``: chosen = A, ``b``: chosen = B)."""
    ties: int = 0
    """Labelled records whose label is a tie (left out unless ``ties='keep'``)."""
    ties_kept: int = 0
    notes: tuple[str, ...] = ()
    """Things a user should know that are not errors (e.g. no prompt column: contexts are empty)."""


def _bad(exc: InputError, raw: RawRecord | None = None, label: str | None = None) -> BadRecord:
    return BadRecord(
        file=exc.file or label or "",
        record=exc.record,
        field=exc.field,
        kind=exc.kind,
        reason=exc.reason,
        raw=quarantine_text(raw) if raw is not None else None,
    )


_HINT = (
    "download it where you have network (datasets.load_dataset(...).save_to_disk('folder')) and pass "
    "the folder instead"
)


def _hf_records(name: str, subset: str | None, split: str | None) -> Iterator[RawRecord]:
    """Records of a Hugging Face dataset by id: from the hub, or from the local cache when offline."""
    try:
        import datasets
    except ImportError as exc:
        from seal_audit.data.errors import MissingDependencyError

        raise MissingDependencyError("hf", "datasets") from exc
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
    if offline:
        snapshot = _cached_snapshot(name)
        if snapshot is not None:  # the hub cache holds the repo's files: read them as a folder
            folder = snapshot / subset if subset and (snapshot / subset).is_dir() else snapshot
            return iter_records(folder, split=split)
    try:
        ds = datasets.load_dataset(name, subset, split=split)
    except Exception as exc:  # network failures and cache misses surface as many exception types
        where = (
            "not in the local Hugging Face cache and HF_HUB_OFFLINE=1 is set" if offline else "could not load"
        )
        raise OfflineError(f"hf:{name}: {where} ({exc.__class__.__name__}: {exc}); {_HINT}") from exc
    return iter_dataset(ds, split, f"hf:{name}")


def _cached_snapshot(name: str) -> Path | None:
    """The local hub-cache snapshot of dataset repo ``name``, or None when it was never downloaded."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, repo_type="dataset", local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError) or no huggingface_hub: try datasets' cache
        return None


def _records(spec: Any, options: LoadOptions) -> tuple[str, Iterable[RawRecord]]:
    if not isinstance(spec, str | Path):
        name = getattr(getattr(spec, "info", None), "dataset_name", None) or "in-memory"
        label = f"dataset:{name}"
        return label, iter_dataset(spec, options.split, label)
    text = str(spec)
    if text.startswith("hf:"):
        local = Path(text[3:])
        if local.exists():  # a local folder needs no network, offline or not
            return str(local), iter_records(local, split=options.split)
        return text, _hf_records(text[3:], options.subset, options.split)
    path = Path(text)
    if path.is_dir() and (path / MANIFEST).is_file():  # a run directory: its audited pairs
        table = RunStore(path, create=False).table_path("pairs")
        return str(table), iter_records(table)
    return str(path), iter_records(path, split=options.split)


def _sample(pairs: list[PreferencePair], options: LoadOptions) -> list[PreferencePair]:
    if options.sample is not None:
        n_total = len(pairs)
        n = int(options.sample) if options.sample >= 1 else max(1, round(options.sample * n_total))
        if n < n_total:
            rng = np.random.default_rng(options.seed)
            keep = np.sort(rng.choice(n_total, size=n, replace=False))
            pairs = [pairs[i] for i in keep]
    if options.limit is not None:
        pairs = pairs[: options.limit]
    return pairs


def check_columns(fields: dict[str, Any], fmt: Format, options: LoadOptions, label: str, number: int) -> None:
    """A mapped column that the file lacks is an error naming it and listing the columns there are.

    Checked on the first record, so a misspelled ``--prompt-col`` cannot silently give empty contexts.
    """
    need = dict(options.set_columns())
    if fmt in ("hh-rlhf", "pairs", "conversation", "multi-variant"):
        need.setdefault("chosen_col", options.chosen_col)
        need.setdefault("rejected_col", options.rejected_col)
    for name, column in need.items():
        if column not in fields:
            have = ", ".join(sorted(fields)) or "(none)"
            raise InputError(
                f"column '{column}' ({flag(name)} / {name}) is not in the file; its columns are: {have}",
                file=label,
                record=number,
                field=column,
                kind="column",
            )


def load(spec: Any, options: LoadOptions | None = None) -> LoadResult:
    """Load one source into validated PreferencePairs.

    ``spec`` is a file, a folder (``save_to_disk``, parquet/arrow shards), ``hf:ID`` or
    ``hf:<folder>``, or an in-memory ``datasets.Dataset`` / ``DatasetDict``. With
    ``on_error='raise'`` the first bad record raises an InputError naming file, record and field;
    with ``'skip'`` bad records go, as read, to the quarantine file and are counted in the result.
    """
    options = options or LoadOptions()
    label, records = _records(spec, options)
    fmt: Format = options.format
    layout = ""
    checked = False
    notes: tuple[str, ...] = ()
    pairs: list[PreferencePair] = []
    skipped: list[BadRecord] = []
    seen_ids: dict[str, int] = {}
    explicit_ids: dict[str, int] = {}
    counts = {
        "duplicates": 0,
        "empty_replies": 0,
        "empty_dropped": 0,
        "ties": 0,
        "ties_kept": 0,
        "pairs_skipped": 0,
    }
    oriented = {"a": 0, "b": 0}
    n_read = 0
    stop = options.limit if options.sample is None else None
    it = iter(records)
    while stop is None or len(pairs) < stop:
        try:
            raw = next(it)
        except StopIteration:
            break
        except InputError as exc:  # the reader itself failed (bad bytes, bad JSON, cut gzip)
            if options.on_error == "raise" or exc.kind in ("format", "missing"):
                raise
            skipped.append(_bad(exc, label=label))
            if exc.kind in ("gzip", "read") or exc.record is None:
                break  # nothing after this point can be read
            continue
        n_read += 1
        where = raw.path or label
        try:
            if raw.error is not None:
                raise raw.error
            bad = bad_text(raw.fields)
            if bad is not None:
                raise InputError(bad[1], file=where, record=raw.number, field=bad[0], kind="encoding")
            if fmt == "auto":
                fmt = detect_format(raw.fields, options)
            if not checked:
                check_columns(raw.fields, fmt, options, where, raw.number)
                layout = detect_layout(fmt, raw.fields, options)
                notes += _notes(raw.fields, fmt, options)
                checked = True
            got: Normalised = normalise(fmt, raw.fields, where, raw.number, options)
            if got.empty_fields and options.empty == "error":
                raise InputError(
                    "empty reply (--empty error)",
                    file=where,
                    record=raw.number,
                    field=got.empty_fields[0],
                    kind="empty",
                )
        except InputError as exc:
            if options.on_error == "raise" or exc.kind == "column":
                raise
            skipped.append(_bad(exc, raw))
            continue
        if got.orientation == "tie":
            counts["ties"] += 1
            counts["ties_kept"] += bool(got.pairs)
        elif got.orientation is not None:
            oriented[got.orientation] += 1
        explicit = _has_own_id(raw, options, fmt)
        id_field = _id_field(raw, options, fmt)
        for pair in got.pairs:
            if not reply_text(pair.chosen).strip() or not reply_text(pair.rejected).strip():
                if options.empty == "drop":
                    counts["empty_dropped"] += 1
                    continue
                counts["empty_replies"] += 1
            if explicit:
                if pair.pair_id in explicit_ids:
                    dup = InputError(
                        f"duplicate id '{pair.pair_id}' (first seen in record {explicit_ids[pair.pair_id]})",
                        file=where,
                        record=raw.number,
                        field=id_field,
                        kind="duplicate",
                    )
                    if options.on_error == "raise":
                        raise dup
                    skipped.append(_bad(dup, raw))
                    counts["pairs_skipped"] += 1
                    continue
                explicit_ids[pair.pair_id] = raw.number
            elif pair.pair_id in seen_ids:
                seen_ids[pair.pair_id] += 1
                counts["duplicates"] += 1
                pair = pair.model_copy(update={"pair_id": f"{pair.pair_id}~{seen_ids[pair.pair_id]}"})
            else:
                seen_ids[pair.pair_id] = 1
            pairs.append(pair)
    if n_read == 0 and not skipped:
        # An empty file (or a header-only CSV) is a mistake, not a dataset: `seal data convert` wrote a
        # 0-pair table and `seal data inspect` reported "layout  (format auto)", both with exit 0.
        raise InputError("holds no records (the source is empty)", file=label, kind="format")
    if skipped and options.quarantine is not None:
        write_quarantine(options.quarantine, skipped)
    pairs = _sample(pairs, options)
    return LoadResult(
        pairs=tuple(pairs),
        skipped=tuple(skipped),
        format=str(fmt),
        records_read=n_read,
        duplicates=counts["duplicates"],
        layout=layout,
        records_skipped=len({(b.file, b.record) for b in skipped}),
        pairs_skipped=counts["pairs_skipped"],
        empty_replies=counts["empty_replies"],
        empty_dropped=counts["empty_dropped"],
        oriented=oriented if options.label_col is not None else {},
        ties=counts["ties"],
        ties_kept=counts["ties_kept"],
        notes=notes,
    )


def write_quarantine(path: Path, skipped: Sequence[BadRecord]) -> None:
    """Append the skipped records that the quarantine file does not hold yet.

    Appending (not rewriting) lets several sources of one run share the file; leaving out what is
    already there keeps it one line per bad record when the same command is run again to resume
    (before, every re-run added another copy of each).
    """

    def key(d: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(d.get(k) for k in ("file", "record", "field", "kind", "reason", "raw"))

    held: set[tuple[Any, ...]] = set()
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                held.add(key(json.loads(line)))
            except (json.JSONDecodeError, AttributeError):
                continue  # a torn or foreign line: not ours to judge
    append_jsonl(path, [d for d in (asdict(b) for b in skipped) if key(d) not in held])


def _notes(fields: dict[str, Any], fmt: Format, options: LoadOptions) -> tuple[str, ...]:
    """Said once per file: a layout whose pairs will have no context at all."""
    if fmt in ("pairs", "multi-variant", "labelled") and options.prompt_col not in fields:
        have = ", ".join(sorted(fields))
        return (
            f"no '{options.prompt_col}' column: every context is empty (columns: {have}; "
            f"name the prompt column with {flag('prompt_col')})",
        )
    return ()


def _has_own_id(raw: RawRecord, options: LoadOptions, fmt: str) -> bool:
    if fmt == "seal" or options.id_col is not None:
        return True
    return any(raw.fields.get(n) not in (None, "") for n in ("pair_id", "id"))


def _id_field(raw: RawRecord, options: LoadOptions, fmt: str) -> str:
    """The input column the ids came from, so a duplicate-id error names the user's column."""
    if options.id_col is not None:
        return options.id_col
    if fmt == "seal":
        return SEAL_COLUMNS[0]
    return next((n for n in ("pair_id", "id") if raw.fields.get(n) not in (None, "")), "pair_id")


def _options(options: dict[str, Any]) -> LoadOptions:
    """LoadOptions from keyword arguments, also accepting the older ``columns=`` / ``hf_*`` names."""
    opts = dict(options)
    columns = opts.pop("columns", None)
    if isinstance(columns, ColumnMap):
        opts.update(columns.as_options())
    for old, new in (("hf_subset", "subset"), ("hf_split", "split")):
        if old in opts:
            opts[new] = opts.pop(old)
    return LoadOptions(**opts)


def load_pairs(spec: Any, **options: Any) -> list[PreferencePair]:
    """Convenience: ``load(spec, LoadOptions(**options)).pairs`` as a list."""
    return list(load(spec, _options(options)).pairs)


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
    name: str, subset: str | None = None, split: str | None = None, **options: Any
) -> list[PreferencePair]:
    """A Hugging Face dataset by id (the hub, or the local cache when offline) or a local folder
    (``split``: see ``LoadOptions.split``)."""
    return load_pairs(f"hf:{name}", subset=subset, split=split, **options)
