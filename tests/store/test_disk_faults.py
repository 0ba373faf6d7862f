"""Disk faults at every write site of a run: ENOSPC, EROFS, EACCES and EDQUOT end in one DiskError
naming the path and the cause, the previous file is untouched, no temporary file is left, and the
same write succeeds once the fault is gone. The real-disk versions (a full tmpfs, a read-only mount)
are in tests/pipeline/test_crash_drill.py."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from seal_audit.data.errors import DiskError
from seal_audit.store import Cache, RunStore
from seal_audit.store import io as store_io

ERRNOS = [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT]


def _oserror(code: int, path: object) -> OSError:
    if path is None:  # os.write and friends name no file
        return OSError(code, os.strerror(code))
    return OSError(code, os.strerror(code), str(path))


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    s = RunStore(tmp_path / "run")
    s.write_table("scores", pd.DataFrame({"pair_id": ["a", "b"], "reward": [1.0, 2.0]}))
    s.write_json("stats", {"n": 1})
    s.append_log("lm_calls", [{"i": 0}])
    (s.root / "report.html").write_text("<p>old report</p>", encoding="utf-8")
    return s


def _fail_replace(monkeypatch: pytest.MonkeyPatch, code: int, name: str) -> None:
    """os.replace of a temporary file onto ``name`` fails (the last step of every atomic write)."""
    real = os.replace

    def replace(src: object, dst: object) -> None:
        if Path(str(dst)).name == name:
            raise _oserror(code, dst)
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(store_io.os, "replace", replace)


def _fail_parquet_midway(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """The Parquet writer gets half its bytes out, then the disk fails."""

    def to_parquet(self: pd.DataFrame, path: object, **kw: object) -> None:
        Path(str(path)).write_bytes(b"PAR1-half-a-file")
        raise _oserror(code, path)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet)


def _fail_log_write(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """The append writes part of the batch, then the disk fails."""
    real = os.write
    state = {"n": 0}

    def write(fd: int, data: bytes) -> int:
        state["n"] += 1
        if state["n"] == 1:
            return real(fd, bytes(data)[:7])  # a torn partial line
        raise _oserror(code, None)

    monkeypatch.setattr(store_io.os, "write", write)


SITES: dict[str, tuple[Callable[[pytest.MonkeyPatch, int], None], Callable[[RunStore], object], str]] = {
    "parquet table": (
        _fail_parquet_midway,
        lambda s: s.write_table("scores", pd.DataFrame({"pair_id": ["c"], "reward": [3.0]})),
        "scores.parquet",
    ),
    "json document": (
        lambda mp, c: _fail_replace(mp, c, "stats.json"),
        lambda s: s.write_json("stats", {"n": 2}),
        "stats.json",
    ),
    "manifest": (
        lambda mp, c: _fail_replace(mp, c, "manifest.json"),
        lambda s: s.record_stage("score", {"n": 3}),
        "manifest.json",
    ),
    "report": (
        lambda mp, c: _fail_replace(mp, c, "report.html"),
        lambda s: store_io.write_text_atomic(s.path("report.html"), "<p>new report</p>"),
        "report.html",
    ),
    "log": (_fail_log_write, lambda s: s.append_log("lm_calls", [{"i": 1}, {"i": 2}]), "lm_calls.jsonl"),
}


@pytest.mark.parametrize("code", ERRNOS, ids=[errno.errorcode[c] for c in ERRNOS])
@pytest.mark.parametrize("site", list(SITES))
def test_injected_fault_is_one_clear_error_and_nothing_is_corrupted(
    store: RunStore, monkeypatch: pytest.MonkeyPatch, site: str, code: int
) -> None:
    inject, write, name = SITES[site]
    before = _snapshot(store.root)
    with monkeypatch.context() as mp:
        inject(mp, code)
        with pytest.raises(DiskError) as exc:
            write(store)
    msg = str(exc.value)
    assert "\n" not in msg and name in msg and os.strerror(code) in msg and errno.errorcode[code] in msg
    assert _snapshot(store.root) == before  # the old file, byte for byte; no temp file left behind
    write(store)  # the fault is gone: the same write now succeeds
    if site == "log":
        assert [r["i"] for r in store.read_log("lm_calls")] == [0, 1, 2]


def test_a_torn_log_line_cannot_swallow_the_next_batch(store: RunStore) -> None:
    log = store.root / "logs" / "lm_calls.jsonl"
    with open(log, "a", encoding="utf-8") as fh:
        fh.write('{"i": 99, "cut by a ki')  # what kill -9 mid-append leaves
    store.append_log("lm_calls", [{"i": 1}])
    assert [r["i"] for r in store.read_log("lm_calls")] == [0, 1]


def test_full_sqlite_cache_reports_the_real_cause(tmp_path: Path) -> None:
    """SQLite rolls back by itself on SQLITE_FULL; the cause must not be masked by a second ROLLBACK
    ("cannot rollback - no transaction is active"), and finished entries survive."""
    cache = Cache(tmp_path / "cache.sqlite")
    cache.put_many("score", {"a": 1.0})
    pages = cache._conn.execute("PRAGMA page_count").fetchone()[0]
    cache._conn.execute(f"PRAGMA max_page_count = {pages + 1}")  # a disk with one free page
    with pytest.raises(DiskError) as exc:
        cache.put_many("label", {f"k{i}": "x" * 4000 for i in range(50)})
    msg = str(exc.value)
    assert "database or disk is full" in msg and "cache.sqlite" in msg and "rollback" not in msg
    assert cache.get_many("score", ["a"]) == {"a": 1.0}
    assert cache.get_many("label", ["k0"]) == {}  # all of the batch or none of it
    cache._conn.execute("PRAGMA max_page_count = 1000000")
    cache.put_many("label", {"k0": "x"})  # space freed: the next run resumes
    assert cache.get("label", "k0") == "x"
    cache.close()


def test_unwritable_cache_file_is_a_disk_error(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    Cache(path).close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    cache = Cache.__new__(Cache)
    cache.path, cache._lock, cache._conn = path, __import__("threading").Lock(), conn
    conn.isolation_level = None
    with pytest.raises(DiskError) as exc:
        cache.put_many("score", {"a": 1})
    assert "readonly database" in str(exc.value) and str(path) in str(exc.value)


@pytest.mark.parametrize("code", ERRNOS, ids=[errno.errorcode[c] for c in ERRNOS])
def test_cli_prints_one_line_and_exits_2(
    store: RunStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], code: int
) -> None:
    from seal_audit._cli import main

    store.write_table("pairs", pd.DataFrame({"pair_id": ["a"]}))
    _fail_replace(monkeypatch, code, "manifest.json")
    with pytest.raises(SystemExit) as exc:
        main(["report", str(store.root)])
    assert exc.value.code == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "manifest.json" in err[0] and os.strerror(code) in err[0], err
    assert json.loads((store.root / "manifest.json").read_text())  # still a whole manifest


def test_lock_file_on_an_unwritable_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    RunStore(run).close()
    real = os.open

    def deny(path: object, flags: int, mode: int = 0o777) -> int:
        if str(path).endswith("run.lock"):
            raise _oserror(errno.EROFS, path)
        return real(path, flags, mode)  # type: ignore[arg-type]

    monkeypatch.setattr("seal_audit.store.lock.os.open", deny)
    with pytest.raises(DiskError) as exc:
        RunStore(run, create=False, lock="label")
    assert "run.lock" in str(exc.value) and "Read-only file system" in str(exc.value)
