"""Errors that name what went wrong and where, so the CLI can print them without a traceback."""

from __future__ import annotations


class SealError(Exception):
    """Base class of every error seal-audit raises on purpose; the CLI prints these as one message."""


class InputError(SealError):
    """Bad input data: names the file, the record (1-based line/row number) and the field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        record: int | None = None,
        field: str | None = None,
        kind: str = "invalid",
    ) -> None:
        self.file = file
        self.record = record
        self.field = field
        self.kind = kind
        self.reason = message
        where = []
        if file is not None:
            where.append(str(file))
        if record is not None:
            where.append(f"record {record}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConfigError(SealError):
    """Invalid configuration: names the key."""


class MissingDependencyError(SealError):
    """An optional extra is not installed; says which `pip install seal-audit[...]` fixes it."""

    def __init__(self, extra: str, package: str) -> None:
        super().__init__(f"this feature needs the '{package}' package: pip install 'seal-audit[{extra}]'")


class OfflineError(SealError):
    """A download was needed while offline (HF_HUB_OFFLINE=1 or no network)."""


class DiskError(SealError):
    """A file of the run could not be written (disk full, read-only, no permission, quota).

    Carries the path and the cause so the CLI prints one line; the write it interrupted left the
    previous version of the file (writes go to a temporary name first), so the next run resumes.
    """

    def __init__(self, path: str, cause: str, errno_: int | None = None) -> None:
        self.path = path
        self.cause = cause
        self.errno = errno_
        super().__init__(f"{path}: cannot write: {cause}")


class RunLockedError(SealError):
    """Another seal process holds the run directory's lock (one writer per run)."""


def disk_error(exc: BaseException, path: object) -> DiskError:
    """A DiskError for an OSError raised while writing ``path`` (the cause in words, errno named)."""
    import errno as _errno

    code = getattr(exc, "errno", None)
    strerror = getattr(exc, "strerror", None)
    cause = strerror or str(exc) or type(exc).__name__
    if isinstance(code, int) and code in _errno.errorcode:
        cause = f"{cause} ({_errno.errorcode[code]})"
    where = getattr(exc, "filename", None) or path
    return DiskError(str(where), cause, code if isinstance(code, int) else None)


class StageFailed(SealError):
    """A stage did not do its work (more failed texts than ``max_failed``): exit code 3, so that a
    script can tell "ran, but the results are incomplete" from a usage or configuration error (2)."""

    exit_code = 3
