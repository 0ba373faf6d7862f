"""Reading raw records from files with their record numbers, so every error can name its record.

Each record keeps its raw text (the JSONL line, or the row as JSON) so that a skipped record can be
written to quarantine as it was, not only the reason it was skipped. Hugging Face on-disk datasets
(``save_to_disk`` folders, ``.arrow`` files, parquet folders and shards) are read with pyarrow alone:
they need neither the network nor the ``datasets`` package.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from seal_audit.data.errors import InputError
from seal_audit.store.io import table_format

BOM = "\ufeff"


@dataclass(frozen=True)
class RawRecord:
    """One input record before validation: its 1-based number and its decoded fields."""

    number: int
    fields: dict[str, Any]
    error: InputError | None = None
    """Set when this record could not be decoded; the reader goes on with the next one."""
    raw: str | None = None
    """The line as it was read (JSONL; None for table rows, whose fields are the record)."""
    path: str | None = None
    """The file this record came from when it differs from the source (a shard of a folder)."""


def quarantine_text(record: RawRecord) -> str:
    """The record as read, for quarantine: undecodable bytes kept visible as ``\\xNN``, never lost.

    Made only for records that are skipped, so good records cost nothing extra.
    """
    if record.raw is not None:
        data = record.raw.encode("utf-8", errors="surrogateescape")
        return data.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
    return json.dumps(record.fields, ensure_ascii=True, default=str)


def _decode_line(raw: bytes, number: int) -> str:
    """A line's text; an undecodable byte becomes a lone surrogate that the loader reports with its
    record and field (the JSON structure around it is still readable)."""
    text = raw.decode("utf-8", errors="surrogateescape")
    return text[1:] if number == 1 and text.startswith(BOM) else text


def _iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, raw bytes) and turn a truncated or corrupt gzip into a named error."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    number = 0
    try:
        with opener(path, "rb") as fh:
            for number, line in enumerate(fh, start=1):
                yield number, line
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise InputError("file not found", file=str(path), kind="missing") from exc
        raise InputError(
            f"truncated or corrupt gzip stream after {number} complete records ({exc})",
            file=str(path),
            record=number + 1,
            kind="gzip",
        ) from exc


class RepeatedKeyError(ValueError):
    """A JSON object names one key twice."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def unique_keys(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict, refusing a repeated key: ``json.loads`` would keep the last value
    and drop the others without a word (``{"chosen": "a", "chosen": "b"}`` read as ``"b"``)."""
    obj = dict(items)
    if len(obj) != len(items):
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                raise RepeatedKeyError(key)
            seen.add(key)
    return obj


def iter_jsonl(path: Path) -> Iterator[RawRecord]:
    """Records of a JSONL file; a bad line is yielded as an error so reading can go on past it."""
    for number, raw in _iter_lines(path):
        try:
            text = _decode_line(raw, number)
            if not text.strip():
                continue
            try:
                # The line end is not part of the record: a cut line then reads "Unterminated string",
                # not "Invalid control character" (the newline).
                obj = json.loads(text.rstrip("\r\n"), object_pairs_hook=unique_keys)
            except RepeatedKeyError as exc:
                raise InputError(
                    f"the key '{exc.key}' appears twice in one JSON object (only one value can be read)",
                    file=str(path),
                    record=number,
                    field=exc.key,
                    kind="json",
                ) from exc
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"invalid JSON ({exc.msg}: column {exc.colno})",
                    file=str(path),
                    record=number,
                    kind="json",
                ) from exc
            if not isinstance(obj, dict):
                raise InputError(
                    f"expected a JSON object, got {type(obj).__name__}",
                    file=str(path),
                    record=number,
                    kind="json",
                )
        except InputError as err:
            yield RawRecord(number, {}, err, raw=raw.decode("utf-8", errors="surrogateescape"))
            continue
        yield RawRecord(number, obj, raw=text)


def _read_whole(path: Path) -> bytes:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise InputError("file not found", file=str(path), kind="missing") from exc
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise InputError(f"truncated or corrupt gzip stream ({exc})", file=str(path), kind="gzip") from exc


def iter_json_array(path: Path) -> Iterator[RawRecord]:
    # surrogateescape: an undecodable byte stays in its record as a lone surrogate, which the loader
    # then reports against that record and field (and can skip alone).
    text = _read_whole(path).decode("utf-8", errors="surrogateescape")
    text = text.removeprefix(BOM)
    try:
        data = json.loads(text, object_pairs_hook=unique_keys)
    except RepeatedKeyError as exc:
        raise InputError(
            f"the key '{exc.key}' appears twice in one JSON object (only one value can be read)",
            file=str(path),
            field=exc.key,
            kind="json",
        ) from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            f"invalid JSON ({exc.msg}: line {exc.lineno} column {exc.colno})", file=str(path), kind="json"
        ) from exc
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise InputError("expected a JSON array of records", file=str(path), kind="json")
    for number, obj in enumerate(data, start=1):
        if not isinstance(obj, dict):
            err = InputError(
                f"expected a JSON object, got {type(obj).__name__}",
                file=str(path),
                record=number,
                kind="json",
            )
            yield RawRecord(number, {}, err, raw=json.dumps(obj, ensure_ascii=True, default=str))
            continue
        yield RawRecord(number, obj)


def _plain(value: Any) -> Any:
    """Numpy/pyarrow values from table readers → plain Python, so meta stays JSON-serialisable."""
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN from a CSV's empty cell
        return None
    return value


def _rows(rows: Iterable[dict[str, Any]], path: str | None = None, start: int = 1) -> Iterator[RawRecord]:
    for number, row in enumerate(rows, start=start):
        yield RawRecord(number, {str(k): _plain(v) for k, v in row.items()}, path=path)


def _csv_records(path: Path, fmt: str) -> Iterator[RawRecord]:
    """Rows of a CSV/TSV file as strings, CRLF and NUL inside cells kept as they are.

    Decoded with ``surrogateescape``: an undecodable byte becomes a lone surrogate in its cell, so the
    loader names the record and field (and can skip just that record) instead of failing the file.
    """
    import csv
    import io

    text = _read_whole(path).decode("utf-8", errors="surrogateescape").removeprefix(BOM)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="," if fmt == "csv" else "\t")
    try:
        header = next(reader)
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:  # a dict of the row would keep the last of them and drop the others silently
            raise InputError(
                f"the header names column(s) {', '.join(repr(h) for h in repeated)} more than once",
                file=str(path),
                kind="format",
            )
        for number, row in enumerate(reader, start=1):
            if len(row) != len(header):
                err = InputError(
                    f"{len(row)} cells where the header has {len(header)}",
                    file=str(path),
                    record=number,
                    kind="csv",
                )
                yield RawRecord(number, {}, err, raw=json.dumps(row, ensure_ascii=True))
                continue
            yield RawRecord(number, dict(zip(header, row, strict=True)))
    except StopIteration:
        return
    except csv.Error as exc:
        raise InputError(f"cannot read {fmt} table: {exc}", file=str(path), kind="read") from exc


def iter_table(path: Path, fmt: str) -> Iterator[RawRecord]:
    if fmt != "parquet":
        yield from _csv_records(path, fmt)
        return
    import pandas as pd

    try:
        df = pd.read_parquet(path)
    except Exception as exc:
        raise InputError(f"cannot read {fmt} table: {exc}", file=str(path), kind="read") from exc
    yield from _rows({str(k): v for k, v in row.items()} for row in df.to_dict(orient="records"))


# --- Hugging Face on-disk datasets ----------------------------------------------------------------
def _arrow_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of an Arrow file (the streaming format ``datasets`` writes, or the random-access one)."""
    import pyarrow as pa

    try:
        source = pa.memory_map(str(path))
        try:
            reader: Any = pa.ipc.open_stream(source)
        except pa.ArrowInvalid:
            reader = pa.ipc.open_file(source)
    except Exception as exc:
        raise InputError(f"cannot read Arrow file: {exc}", file=str(path), kind="read") from exc
    batches = (
        reader
        if hasattr(reader, "__iter__")
        else (reader.get_batch(i) for i in range(reader.num_record_batches))
    )
    for batch in batches:
        yield from batch.to_pylist()


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(str(path))
    except Exception as exc:
        raise InputError(f"cannot read Parquet file: {exc}", file=str(path), kind="read") from exc
    for batch in pf.iter_batches(batch_size=4096):
        yield from batch.to_pylist()


DATA_SUFFIXES = (".parquet", ".arrow", ".jsonl", ".ndjson", ".json", ".csv", ".tsv")
"""Data files a dataset folder (a hub snapshot, a folder of shards) may hold; others (README) are not data."""


def _suffix(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    return next((s for s in DATA_SUFFIXES if name.endswith(s)), "")


def _shards(files: list[Path]) -> Iterator[RawRecord]:
    """Records of several files in order, each numbered within its own file (named in errors)."""
    for f in files:
        if f.suffix in (".arrow", ".parquet"):
            yield from _rows(_arrow_rows(f) if f.suffix == ".arrow" else _parquet_rows(f), path=str(f))
        else:
            for rec in iter_records(f):
                yield replace(rec, path=str(f))


_SHARD = re.compile(r"^(?P<split>[A-Za-z0-9_]+?)(-\d{5}-of-\d{5})?\.[a-z.]+$")


SPLIT_NAMES = ("train", "test", "validation", "valid", "dev", "eval")


def _split_of(folder: Path, f: Path) -> str:
    """The split a data file belongs to: ``<split>-00000-of-00002.*``, ``<split>.*``, or its folder."""
    m = _SHARD.match(f.name.lower())
    if m and ("-of-" in f.name or m.group("split") in SPLIT_NAMES):
        return m.group("split")
    return f.parent.name if f.parent != folder else ""


def choose_split(splits: Sequence[str], split: str | None, what: str, name: str, flag: str) -> str:
    """The split to read: the one asked for, else the only one. With several and none asked for,
    an error naming the source and listing them (reading ``train`` silently audited another set of
    pairs than the user may have meant)."""
    if split is None:
        if len(splits) == 1:
            return splits[0]
        raise InputError(
            f"this {what} has {len(splits)} splits ({', '.join(splits)}) and no split was given; "
            f"choose one with {flag}",
            file=name,
            kind="format",
        )
    if split not in splits:
        raise InputError(
            f"no split '{split}' in this {what} (splits: {', '.join(splits)}); choose one with {flag}",
            file=name,
            kind="format",
        )
    return split


def _pick_split(folder: Path, files: list[Path], split: str | None) -> list[Path]:
    """Files of the wanted split when the folder holds several (``train-00000-of-00002.parquet``,
    ``test.jsonl.gz``, a ``test/`` folder: the hub's layouts); all files when it holds one."""
    splits: dict[str, list[Path]] = {}
    for f in files:
        splits.setdefault(_split_of(folder, f), []).append(f)
    named = {k for k in splits if k}
    if len(splits) <= 1 or not named:
        return files
    return splits[choose_split(sorted(named), split, "folder", str(folder), "--split")]


def iter_hf_folder(folder: Path, split: str | None = None) -> Iterator[RawRecord]:
    """A ``save_to_disk`` folder (Dataset or DatasetDict), or a folder of parquet/arrow shards."""
    dict_file = folder / "dataset_dict.json"
    if dict_file.is_file():
        splits = [str(x) for x in json.loads(dict_file.read_text(encoding="utf-8")).get("splits", [])]
        chosen = choose_split(splits, split, "DatasetDict", str(folder), "--split")
        return iter_hf_folder(folder / chosen, chosen)
    state = folder / "state.json"
    if state.is_file():
        files = [folder / f["filename"] for f in json.loads(state.read_text(encoding="utf-8"))["_data_files"]]
        return _shards(files)
    files = sorted(p for p in folder.rglob("*") if _suffix(p) and p.is_file() and not p.name.startswith("."))
    if any(f.suffix in (".parquet", ".arrow") for f in files):  # the data; JSON beside it is metadata
        files = [f for f in files if f.suffix in (".parquet", ".arrow")]
    kinds = sorted({_suffix(f) for f in files})
    if len(kinds) > 1:  # not one dataset's shards: refuse rather than concatenate unrelated files
        raise InputError(
            f"folder mixes data files of several formats ({', '.join(kinds)}); pass one file, or a folder "
            "holding one dataset",
            file=str(folder),
            kind="format",
        )
    if not files:
        raise InputError(
            "folder holds no dataset (no dataset_dict.json, state.json or data files: "
            + ", ".join(DATA_SUFFIXES)
            + ")",
            file=str(folder),
            kind="format",
        )
    return _shards(_pick_split(folder, files, split))


def iter_dataset(ds: Any, split: str | None = None, name: str = "<dataset>") -> Iterator[RawRecord]:
    """Rows of an in-memory ``datasets.Dataset`` or ``DatasetDict`` (the split option picks one)."""
    if hasattr(ds, "keys") and not hasattr(ds, "features"):
        ds = ds[choose_split([str(k) for k in ds], split, "DatasetDict", name, "split=")]
    return _rows(iter(ds))


def iter_records(path: Path, fmt: str | None = None, split: str | None = None) -> Iterator[RawRecord]:
    """Records of a pairs file or dataset folder of any supported format (chosen from the name)."""
    if not path.exists():
        raise InputError("file not found", file=str(path), kind="missing")
    if path.is_dir():
        return iter_hf_folder(path, split)
    if path.suffix == ".arrow":
        return _shards([path])
    fmt = fmt or table_format(path)
    if fmt == "jsonl":
        return iter_jsonl(path)
    if fmt == "json":
        return iter_json_array(path)
    if fmt in ("parquet", "csv", "tsv"):
        return iter_table(path, fmt)
    raise InputError(f"unknown format '{fmt}'", file=str(path), kind="format")


def bad_text(fields: dict[str, Any]) -> tuple[str, str] | None:
    """(field, reason) of the first string that is not valid Unicode (a lone surrogate), else None.

    JSON may escape a lone surrogate (``"\\ud800"``) and a CSV read with ``surrogateescape`` turns an
    undecodable byte into one; either would crash hashing or writing later, far from the record.
    """
    for key, value in fields.items():
        found = _bad_in(value)
        if found is not None:
            where, reason = found
            return key + where, reason
    return None


def _bad_in(value: Any) -> tuple[str, str] | None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            ch = ord(value[exc.start])
            what = f"undecodable byte 0x{ch - 0xDC00:02x}" if 0xDC80 <= ch <= 0xDCFF else "a lone surrogate"
            return "", f"{what} (U+{ch:04X}) at character {exc.start}: not valid UTF-8 text"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            found = _bad_in(v)
            if found is not None:
                return f".{k}{found[0]}", found[1]
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _bad_in(v)
            if found is not None:
                return f"[{i}]{found[0]}", found[1]
    return None
