"""Reading raw records from files with their record numbers, so every error can name its record."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seal_audit.data.errors import InputError
from seal_audit.store.io import table_format


@dataclass(frozen=True)
class RawRecord:
    """One input record before validation: its 1-based number and its decoded fields."""

    number: int
    fields: dict[str, Any]
    error: InputError | None = None
    """Set when this record could not be decoded; the reader goes on with the next one."""


def _decode_line(raw: bytes, path: str, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"undecodable bytes (not UTF-8) at byte {exc.start}", file=path, record=number, kind="encoding"
        ) from exc


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


def iter_jsonl(path: Path) -> Iterator[RawRecord]:
    """Records of a JSONL file; a bad line is yielded as an error so reading can go on past it."""
    for number, raw in _iter_lines(path):
        try:
            text = _decode_line(raw, str(path), number)
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"invalid JSON ({exc.msg} at column {exc.colno})",
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
            yield RawRecord(number, {}, err)
            continue
        yield RawRecord(number, obj)


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
    text = _decode_line(_read_whole(path), str(path), 1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"invalid JSON ({exc.msg} at line {exc.lineno})", file=str(path), kind="json"
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
            yield RawRecord(number, {}, err)
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


def iter_table(path: Path, fmt: str) -> Iterator[RawRecord]:
    import pandas as pd

    try:
        if fmt == "parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(
                path,
                sep="," if fmt == "csv" else "\t",
                dtype=str,
                keep_default_na=False,
                compression="infer",
                encoding="utf-8",
            )
    except UnicodeDecodeError as exc:
        raise InputError(
            f"undecodable bytes (not UTF-8): {exc.reason}", file=str(path), kind="encoding"
        ) from exc
    except Exception as exc:
        raise InputError(f"cannot read {fmt} table: {exc}", file=str(path), kind="read") from exc
    for number, row in enumerate(df.to_dict(orient="records"), start=1):
        yield RawRecord(number, {str(k): _plain(v) for k, v in row.items()})


def iter_records(path: Path, fmt: str | None = None) -> Iterator[RawRecord]:
    """Records of a pairs file of any supported format (chosen from the name unless given)."""
    if not path.exists():
        raise InputError("file not found", file=str(path), kind="missing")
    fmt = fmt or table_format(path)
    if fmt == "jsonl":
        return iter_jsonl(path)
    if fmt == "json":
        return iter_json_array(path)
    if fmt in ("parquet", "csv", "tsv"):
        return iter_table(path, fmt)
    raise InputError(f"unknown format '{fmt}'", file=str(path), kind="format")
