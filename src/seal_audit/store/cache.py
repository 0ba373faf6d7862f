"""Content-addressed cache of per-text results (rewards, labels, rewrites, embeddings).

SQLite in WAL mode: every ``put_many`` is one transaction, so a killed process loses at most the
batch it was writing and never corrupts finished entries. Callers use printable keys,
``component|settings-hash|text-hash``, and ``seal cache`` lists them by component.

Values are JSON text, except ``bytes`` values, which are stored as SQLite BLOBs and read back as
``bytes`` (the embeddings: raw float32, issue 18). On disk (issue 18, cache format 2, recorded as
``PRAGMA user_version``) a key of that printable form is stored as a BLOB of its component, ``|``
and the raw 8 + 32 bytes of the two hex digests (46 bytes instead of 87 for an embedding key),
``created`` as whole seconds, and the file uses 16 KiB pages: in a ``WITHOUT ROWID`` table a row
longer than about a quarter of a page spills into an overflow page of its own, so a 1.6 KB vector
row cost a 4 KiB page plus its local part with 4 KiB pages. Caches written before (format 0:
printable keys, base64 text vectors, 4 KiB pages) are read and extended in their own format.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from seal_audit.data.errors import DiskError, disk_error
from seal_audit.data.redact import needs_redaction, redact_obj, secret_values

PAGE_SIZE = 16384
"""Page size of new cache files (an existing file keeps the one it was created with)."""
FORMAT = 2
"""``PRAGMA user_version`` of cache files with binary keys; files written before issue 18 have 0."""
_KEY = re.compile(r"([^|]*)\|([0-9a-f]{16})\|([0-9a-f]{64})")

ENTRIES_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
"""
"""The cache table, the same in every format (SQLite keeps a BLOB in a TEXT column as it is): format
2 changed the keys and values written into it, not the table (benchmarks/bench_cache.py builds a
format-0 file with it)."""


def settings_hash(settings: Mapping[str, Any]) -> str:
    """A short, order-independent hash of a component's settings (JSON with sorted keys)."""
    blob = json.dumps(settings, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def cache_key(component: str, settings: Mapping[str, Any], text_sha256: str) -> str:
    """The printable cache key of one text under one component with given settings."""
    return f"{component}|{settings_hash(settings)}|{text_sha256}"


def pack_key(key: str) -> str | bytes:
    """The on-disk form (format 2) of a key: ``component|hash16|hash64`` as component, ``|`` and raw
    digest bytes; any other key as it is (a BLOB never equals a TEXT value, so the two cannot clash)."""
    m = _KEY.fullmatch(key)
    if m is None:
        return key
    return m.group(1).encode("utf-8") + b"|" + bytes.fromhex(m.group(2)) + bytes.fromhex(m.group(3))


def unpack_key(stored: str | bytes) -> str:
    """The printable key of an on-disk key (either format)."""
    if isinstance(stored, str):
        return stored
    raw = bytes(stored)
    comp, digests = raw[:-41], raw[-40:]
    return f"{comp.decode('utf-8')}|{digests[:8].hex()}|{digests[8:].hex()}"


def _dumps(value: Any) -> str:
    """A value's stored JSON: no blanks after separators (5 of the ~60 bytes of a reward entry)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=True, separators=(",", ":"))


def _decode(value: str | bytes) -> Any:
    """A stored value: BLOBs come back as bytes, text as the JSON it holds."""
    return bytes(value) if isinstance(value, (bytes, memoryview)) else json.loads(value)


def sqlite_disk_error(exc: sqlite3.Error, path: Path) -> DiskError | None:
    """A DiskError when SQLite failed because the disk is full, read-only or not writable.

    SQLite reports these as ``OperationalError`` with its own wording ("database or disk is full",
    "attempt to write a readonly database", "unable to open database file", "disk I/O error").
    """
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    text = str(exc)
    disk_codes = (
        "SQLITE_FULL",
        "SQLITE_READONLY",
        "SQLITE_CANTOPEN",
        "SQLITE_IOERR",
        "SQLITE_PERM",
    )
    disk_words = (
        "disk is full",
        "readonly database",
        "unable to open database",
        "disk i/o error",
    )
    if name.startswith(disk_codes) or any(w in text.lower() for w in disk_words):
        return DiskError(str(path), f"{text} ({name})" if name else text)
    return None


class Cache:
    """A namespaced key → JSON (or bytes) value store in one SQLite file, safe to share between threads."""

    format: int = FORMAT
    """The file's cache format (``PRAGMA user_version``), read when it is opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._rows_written = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=60)
            self._conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # no effect once the file has tables
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            if not self._has_table():
                self._create()
            self.format = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        except OSError as exc:
            raise disk_error(exc, path) from exc
        except sqlite3.Error as exc:
            err = sqlite_disk_error(exc, path)
            if err is None:
                raise
            raise err from exc

    def _has_table(self) -> bool:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entries'"
        return self._conn.execute(sql).fetchone() is not None

    def _create(self) -> None:
        """A new file: the table and its format, in one transaction (two processes opening the same
        new file agree on the format)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            if not self._has_table():
                self._conn.execute(ENTRIES_SCHEMA)
                self._conn.execute(f"PRAGMA user_version={FORMAT}")
            self._conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise

    def _key(self, key: str) -> str | bytes:
        return pack_key(key) if self.format >= FORMAT else key

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def compact(self, min_rows_written: int = 1000) -> bool:
        """VACUUM the file when this connection wrote at least ``min_rows_written`` rows.

        Keys arrive in hash order, so B-tree pages end up ~70 % full; a VACUUM repacks them (the
        generated demo's cache content: 11.9 MB → 10.4 MB) in about a second at demo size. A warm run
        writes next to nothing and skips it. Returns whether it ran; a busy or failing VACUUM is
        not an error (the cache is as valid as before).
        """
        if self._rows_written < min_rows_written:
            return False
        with self._lock:
            try:
                self._conn.execute("VACUUM")
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                return False
            self._rows_written = 0
        return True

    def get_many(self, namespace: str, keys: Sequence[str]) -> dict[str, Any]:
        """The cached values of those keys that are present (absent keys are simply missing)."""
        out: dict[str, Any] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                stored = {self._key(k): k for k in keys[start : start + 500]}
                marks = ",".join("?" * len(stored))
                rows = self._conn.execute(
                    f"SELECT key, value FROM entries WHERE namespace = ? AND key IN ({marks})",
                    [namespace, *stored],
                ).fetchall()
                out.update((stored[k if isinstance(k, str) else bytes(k)], _decode(v)) for k, v in rows)
        return out

    def has_all(self, namespace: str, keys: Sequence[str]) -> bool:
        """Whether every one of ``keys`` is stored (values are not read, so this is cheap)."""
        wanted = list(dict.fromkeys(self._key(k) for k in keys))
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                (n,) = self._conn.execute(
                    f"SELECT count(*) FROM entries WHERE namespace = ? AND key IN ({marks})",
                    [namespace, *chunk],
                ).fetchone()
                if int(n) != len(chunk):
                    return False
        return True

    def get(self, namespace: str, key: str) -> Any | None:
        return self.get_many(namespace, [key]).get(key)

    def put_many(self, namespace: str, items: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Store values in one atomic transaction (all of the batch or none of it); ``bytes`` as BLOBs.

        Values are redacted here (a cached LM reply or error text never holds a key). On a full or
        read-only disk SQLite has often rolled the transaction back itself; a ROLLBACK is then only
        issued while a transaction is still open, so the real cause ("database or disk is full")
        is what reaches the user, as a DiskError naming the cache file.
        """
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        if not pairs:
            return
        now = float(int(time.time()))  # whole seconds: an integer-valued REAL is stored in 4 bytes, not 8
        rows: list[tuple[str, str | bytes, str | bytes, float]] = [
            (
                namespace,
                self._key(k),
                v if isinstance(v, bytes) else _dumps(v),
                now,
            )
            for k, v in pairs
        ]
        secrets = secret_values()
        texts = "".join(r[2] for r in rows if isinstance(r[2], str))
        if needs_redaction(texts, secrets):  # one scan; redact what needs it (binary values hold no text)
            rows = [
                (
                    ns,
                    k,
                    _dumps(redact_obj(json.loads(v), secrets)),
                    t,
                )
                if isinstance(v, str) and needs_redaction(v, secrets)
                else (ns, k, v, t)
                for ns, k, v, t in rows
            ]
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO entries (namespace, key, value, created) VALUES (?, ?, ?, ?)",
                        rows,
                    )
                    self._conn.execute("COMMIT")
                    self._rows_written += len(rows)
                except BaseException:
                    if self._conn.in_transaction:
                        # never mask the cause with the rollback's own failure
                        with contextlib.suppress(sqlite3.Error):
                            self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                err = sqlite_disk_error(exc, self.path)
                if err is None:
                    raise
                raise err from exc

    def put(self, namespace: str, key: str, value: Any) -> None:
        self.put_many(namespace, [(key, value)])

    def delete_namespace(self, namespace: str) -> int:
        with self._lock:
            try:
                cur = self._conn.execute("DELETE FROM entries WHERE namespace = ?", [namespace])
            except sqlite3.Error as exc:
                err = sqlite_disk_error(exc, self.path)
                if err is None:
                    raise
                raise err from exc
            return cur.rowcount

    def summary(self) -> list[tuple[str, str, int]]:
        """(namespace, component, count) for every component stored: what ``seal cache`` prints."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT namespace, CAST(substr(CAST(key AS BLOB), 1, instr(CAST(key AS BLOB), X'7c') - 1) "
                "AS TEXT) AS comp, count(*) FROM entries GROUP BY namespace, comp ORDER BY namespace, comp"
            ).fetchall()
        return [(str(a), str(b), int(c)) for a, b, c in rows]

    def keys(self, namespace: str) -> list[str]:
        """Every key stored in a namespace, printable (whatever the file's format)."""
        with self._lock:
            rows = self._conn.execute("SELECT key FROM entries WHERE namespace = ?", [namespace]).fetchall()
        return [unpack_key(k if isinstance(k, str) else bytes(k)) for (k,) in rows]
