"""One writer per run directory: an exclusive lock file that names its holder.

Two processes writing one run would both do all the work (with a paid LM endpoint, a double bill)
and race on every table. The lock is an ``fcntl.flock`` on ``RUN/run.lock``: the kernel releases it
when its holder dies, even by ``kill -9``, so a lock can never be left behind by a crash. The file
also records the holder (pid, host, start time, verb) so a refused writer can say who holds it;
the record is cleared on release, so a record found by a process that *did* get the lock was left
by a holder that died, and the takeover is reported.

Locks are re-entrant within a process (``seal demo`` holds the run's lock and calls ``run``,
which takes it again), counted per directory.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from seal_audit.data.errors import RunLockedError, disk_error

LOCK_NAME = "run.lock"


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a run directory's lock."""

    pid: int
    host: str
    started: str
    """UTC ISO time at which the holder took the lock."""
    verb: str
    """The seal verb (or library entry point) that writes the run: ``label``, ``run``, ..."""

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, `seal {self.verb}` since {self.started}"


def _read_holder(fh: IO[str]) -> LockHolder | None:
    fh.seek(0)
    raw = fh.read()
    if not raw.strip():
        return None
    try:
        d = json.loads(raw)
        return LockHolder(
            pid=int(d["pid"]), host=str(d["host"]), started=str(d["started"]), verb=str(d["verb"])
        )
    except (ValueError, KeyError, TypeError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Held:
    def __init__(self, fh: IO[str], holder: LockHolder) -> None:
        self.fh = fh
        self.holder = holder
        self.count = 0


_held: dict[str, _Held] = {}
_held_guard = threading.Lock()


class RunLock:
    """The exclusive write lock of one run directory (see the module docstring).

    ``acquire`` raises :class:`RunLockedError` naming the holder when another process holds it;
    ``took_over`` is the dead holder whose record was found when this process took the lock.
    """

    def __init__(self, root: Path, verb: str, *, say: Callable[[str], None] = _stderr) -> None:
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self.verb = verb
        self.say = say
        self.took_over: LockHolder | None = None
        self._key = str(self.root.resolve())
        self._mine = False

    def acquire(self) -> RunLock:
        import fcntl

        with _held_guard:
            held = _held.get(self._key)
            if held is not None:  # re-entrant within this process
                held.count += 1
                self._mine = True
                return self
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise disk_error(exc, self.path) from exc
            fh = os.fdopen(fd, "r+", encoding="utf-8")
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = None
                for _ in range(20):  # the holder may be between taking the lock and writing its record
                    holder = _read_holder(fh)
                    if holder is not None:
                        break
                    time.sleep(0.05)
                fh.close()
                who = holder.describe() if holder else "another process (no holder record)"
                raise RunLockedError(
                    f"{self.root}: run directory is in use by {who}; one writer per run: wait for it "
                    f"to finish or stop it (lock file {self.path})"
                ) from None
            except OSError as exc:
                fh.close()
                raise disk_error(exc, self.path) from exc
            previous = _read_holder(fh)
            holder = LockHolder(
                pid=os.getpid(),
                host=socket.gethostname(),
                started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                verb=self.verb,
            )
            try:
                fh.seek(0)
                fh.truncate()
                fh.write(json.dumps(asdict(holder), sort_keys=True) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as exc:
                fh.close()
                raise disk_error(exc, self.path) from exc
            h = _Held(fh, holder)
            h.count = 1
            _held[self._key] = h
            self._mine = True
        if previous is not None and previous.pid != os.getpid():
            self.took_over = previous
            gone = previous.host == holder.host and not pid_alive(previous.pid)
            state = "no longer running" if gone else "no longer holding it"
            # short enough for 80 columns (logs are never wrapped); the full record (host, start
            # time) is in the manifest's stages.lock.counters.took_over
            where = "" if previous.host == holder.host else f" on {previous.host}"
            self.say(
                f"note: took over the stale lock of pid {previous.pid}{where} (seal {previous.verb}, {state})"
            )
        return self

    def release(self) -> None:
        """Give the lock back (the last release of this process clears the record and unlocks)."""
        import fcntl

        with _held_guard:
            if not self._mine:
                return
            self._mine = False
            held = _held.get(self._key)
            if held is None:
                return
            held.count -= 1
            if held.count > 0:
                return
            del _held[self._key]
            try:
                held.fh.seek(0)
                held.fh.truncate()
                held.fh.flush()
            except OSError:  # a full or read-only disk: the kernel still drops the lock below
                pass
            try:
                fcntl.flock(held.fh.fileno(), fcntl.LOCK_UN)
            finally:
                held.fh.close()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_holder(root: Path) -> LockHolder | None:
    """The holder recorded in ``root``'s lock file (None when free or never locked); read-only."""
    path = Path(root) / LOCK_NAME
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as fh:
        return _read_holder(fh)
