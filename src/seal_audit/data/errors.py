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


class StageFailed(SealError):
    """A stage did not do its work (more failed texts than ``max_failed``): exit code 3, so that a
    script can tell "ran, but the results are incomplete" from a usage or configuration error (2)."""

    exit_code = 3
