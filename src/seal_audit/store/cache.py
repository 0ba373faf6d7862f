"""Content-addressed cache of per-text results (rewards, labels, rewrites, embeddings).

SQLite in WAL mode: every ``put_many`` is one transaction, so a killed process loses at most the
batch it was writing and never corrupts finished entries. Keys are printable:
``component|settings-hash|text-hash``, so ``seal cache`` can show what is stored.

Values are JSON text, except ``bytes`` values, which are stored as SQLite BLOBs and read back as
``bytes`` (the embeddings: raw float32, issue 18). New cache files use 16 KiB pages: in a
``WITHOUT ROWID`` table a row longer than about a quarter of a page spills into an overflow page
of its own, so a 1.6 KB vector row cost a 4 KiB page plus its local part with 4 KiB pages (old
caches keep their page size and are read as before).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
"""


def settings_hash(settings: Mapping[str, Any]) -> str:
    """A short, order-independent hash of a component's settings (JSON with sorted keys)."""
    blob = json.dumps(settings, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def cache_key(component: str, settings: Mapping[str, Any], text_sha256: str) -> str:
    """The printable cache key of one text under one component with given settings."""
    return f"{component}|{settings_hash(settings)}|{text_sha256}"


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
    disk_codes = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_PERM")
    disk_words = ("disk is full", "readonly database", "unable to open database", "disk i/o error")
    if name.startswith(disk_codes) or any(w in text.lower() for w in disk_words):
        return DiskError(str(path), f"{text} ({name})" if name else text)
    return None


class Cache:
    """A namespaced key → JSON (or bytes) value store in one SQLite file, safe to share between threads."""

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
            self._conn.executescript(_SCHEMA)
        except OSError as exc:
            raise disk_error(exc, path) from exc
        except sqlite3.Error as exc:
            err = sqlite_disk_error(exc, path)
            if err is None:
                raise
            raise err from exc

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
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, value FROM entries WHERE namespace = ? AND key IN ({marks})",
                    [namespace, *chunk],
                ).fetchall()
                out.update((k, _decode(v)) for k, v in rows)
        return out

    def has_all(self, namespace: str, keys: Sequence[str]) -> bool:
        """Whether every one of ``keys`` is stored (values are not read, so this is cheap)."""
        wanted = list(dict.fromkeys(keys))
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
        now = time.time()
        rows: list[tuple[str, str, str | bytes, float]] = [
            (
                namespace,
                k,
                v if isinstance(v, bytes) else json.dumps(v, ensure_ascii=False, allow_nan=True),
                now,
            )
            for k, v in pairs
        ]
        secrets = secret_values()
        texts = "".join(r[2] for r in rows if isinstance(r[2], str))
        if needs_redaction(texts, secrets):  # one scan; redact what needs it (binary values hold no text)
            rows = [
                (ns, k, json.dumps(redact_obj(json.loads(v), secrets), ensure_ascii=False, allow_nan=True), t)
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
                "SELECT namespace, substr(key, 1, instr(key, '|') - 1) AS comp, count(*) "
                "FROM entries GROUP BY namespace, comp ORDER BY namespace, comp"
            ).fetchall()
        return [(str(a), str(b), int(c)) for a, b, c in rows]
