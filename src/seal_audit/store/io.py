"""Atomic file writes and tolerant table reading: the only place that touches file formats."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pandas as pd

from seal_audit.data.errors import InputError


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` only on success.

    A process killed mid-write therefore leaves either the old file or the new one, never half.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(target: Path, obj: Any) -> None:
    write_text_atomic(
        target, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    )


def write_parquet_atomic(target: Path, df: pd.DataFrame) -> None:
    with atomic_path(target) as tmp:
        df.to_parquet(tmp, index=False)


def open_text(path: Path) -> IO[str]:
    """Open a text file, transparently gunzipping ``.gz``; strict UTF-8 so bad bytes are caught."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="strict")
    return open(path, encoding="utf-8", errors="strict")


def table_format(path: Path) -> str:
    """The format of a table file from its name (``.gz`` stripped): jsonl, json, parquet or csv."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    for ext, fmt in (
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "json"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
        (".csv", "csv"),
        (".tsv", "tsv"),
    ):
        if name.endswith(ext):
            return fmt
    raise InputError(
        "unknown format (expected .jsonl, .json, .parquet, .csv or .tsv, optionally .gz)",
        file=str(path),
        kind="format",
    )


def read_any_table(path: str | Path) -> pd.DataFrame:
    """Read a whole table (Parquet, CSV/TSV, JSONL, JSON array; optionally gzip) into a DataFrame.

    Used for the long tables users hand to ``seal analyze``; row-level validation of pairs files
    happens in ``seal_audit.sources``, which needs record numbers.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", file=str(p), kind="missing")
    fmt = table_format(p)
    try:
        if fmt == "parquet":
            return pd.read_parquet(p)
        if fmt in ("csv", "tsv"):
            return pd.read_csv(p, sep="," if fmt == "csv" else "\t", compression="infer")
        if fmt == "jsonl":
            return pd.read_json(p, lines=True, compression="infer")
        with open_text(p) as fh:
            return pd.DataFrame(json.load(fh))
    except InputError:
        raise
    except Exception as exc:  # the library's own message, prefixed with the file
        raise InputError(f"cannot read table: {exc}", file=str(p), kind="read") from exc


def append_jsonl(target: Path, records: list[dict[str, Any]]) -> None:
    """Append records to a JSONL log, one write + fsync per batch, so a crash loses at most the batch."""
    if not records:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False, default=str) + "\n" for r in records)
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(data)
        fh.flush()
        if os.path.isfile(target):  # /dev/null or a pipe cannot be synced, and need not be
            os.fsync(fh.fileno())
