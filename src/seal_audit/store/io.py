"""Atomic file writes and tolerant table reading: the only place that touches file formats."""

from __future__ import annotations

import gzip
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import pandas as pd

from seal_audit.data.errors import InputError, disk_error
from seal_audit.data.redact import (
    TRIGGER_WORDS,
    needs_redaction,
    redact,
    redact_obj,
    scrub,
    scrub_text,
    secret_values,
)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` only on success.

    A process killed mid-write therefore leaves either the old file or the new one, never half. An
    OSError while writing (disk full, read-only, no permission, quota) becomes one DiskError that
    names ``target`` and the cause; the temporary file is removed and ``target`` is untouched.
    """
    tmp_path: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; the renamed file gets the usual mode
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    except OSError as exc:
        raise disk_error(exc, target) from exc
    finally:
        if tmp_path is not None:
            with suppress(OSError):  # a read-only directory: there is nothing to remove either
                tmp_path.unlink(missing_ok=True)


def write_text_atomic(target: Path, text: str) -> None:
    """Write a document atomically; secrets are redacted here, at the sink (see ``data.redact``)."""
    text = scrub_text(text)
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(target: Path, obj: Any) -> None:
    write_text_atomic(
        target, json.dumps(scrub(obj), indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    )


def _string_hits(series: pd.Series, secrets: tuple[str, ...]) -> Any:
    """Boolean mask of the cells of a string column that could hold a secret: one pass of Arrow's
    RE2 over the column (a column of long transcripts costs milliseconds, not a regex per cell)."""
    import re

    import pyarrow as pa
    import pyarrow.compute as pc

    pattern = "|".join([*(re.escape(w) for w in TRIGGER_WORDS), *(re.escape(x) for x in secrets)])
    try:
        arr = pa.array(series, from_pandas=True)  # Arrow-backed strings: no copy
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array(series.astype(object).where(series.notna(), None).tolist(), type=pa.large_string())
    hits = pc.match_substring_regex(arr, pattern, ignore_case=True).fill_null(False)
    return hits.to_numpy(zero_copy_only=False)


def redact_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every string cell redacted (the same frame when nothing needed it)."""
    secrets = secret_values()
    changed: dict[str, tuple[list[int], list[Any]]] = {}
    for col in df.columns:
        series = df[col]
        if isinstance(series.dtype, pd.StringDtype):
            kind = "string"
        elif series.dtype == object:
            kind = pd.api.types.infer_dtype(series, skipna=True)  # one C pass: "string", "empty", ...
        else:
            continue
        if kind == "empty":
            continue
        if kind == "string":
            hits = _string_hits(series, secrets)
            if not hits.any():  # the common case: nothing in the column to redact
                continue
            positions = [int(i) for i in hits.nonzero()[0]]
            values = series.iloc[positions].tolist()
        else:  # lists, dicts, mixed values
            positions, values = list(range(len(series))), series.tolist()
        pos, new = [], []
        for i, v in zip(positions, values, strict=True):
            r = redact(v, secrets) if isinstance(v, str) else redact_obj(v, secrets)
            if r is not v and r != v:
                pos.append(i)
                new.append(r)
        if pos:
            changed[str(col)] = (pos, new)
    if not changed:
        return df
    out = df.copy()
    for col, (pos, new) in changed.items():
        fixed = out[col].copy()
        loc = out.columns.get_loc(col)
        assert isinstance(loc, int)
        fixed.iloc[pos] = pd.Series(new, index=fixed.index[pos], dtype=fixed.dtype)
        out.isetitem(loc, fixed.array)
    return out


def write_parquet_atomic(target: Path, df: pd.DataFrame) -> None:
    df = redact_frame(df)
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
    """Append records to a JSONL log, one write + fsync per batch, so a crash loses at most the batch.

    Logs are the one kind of file appended in place (rewriting a long log per batch would be
    quadratic). A failed append (disk full) is cut back to the previous end, so no torn line stays
    in the middle of the log; a line torn by a kill is ended before the next batch is appended, so
    it cannot swallow the next record. Secrets are redacted here, at the sink.
    """
    if not records:
        return
    lines = [json.dumps(r, sort_keys=True, ensure_ascii=False, default=str) + "\n" for r in records]
    secrets = secret_values()
    if needs_redaction("".join(lines), secrets):  # one scan of the batch; redact only what needs it
        lines = [
            json.dumps(redact_obj(r, secrets), sort_keys=True, ensure_ascii=False, default=str) + "\n"
            if needs_redaction(line, secrets)
            else line
            for r, line in zip(records, lines, strict=True)
        ]
    data = "".join(lines).encode("utf-8")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise disk_error(exc, target) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # /dev/null or a pipe: nothing to repair, nothing to sync
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            return
        start = st.st_size
        if start > 0 and os.pread(fd, 1, start - 1) != b"\n":
            data = b"\n" + data
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            with suppress(OSError):
                os.ftruncate(fd, start)
            raise
    except OSError as exc:
        raise disk_error(exc, target) from exc
    finally:
        os.close(fd)
