"""RunStore: one run directory, the single owner of its file names.

Layout::

    RUN/manifest.json        what the run is and how it was made (RunManifest)
    RUN/pairs.parquet        the canonical pairs table
    RUN/<table>.parquet      stage outputs (scores, features, rewrites, analysis/<name>, ...)
    RUN/<name>.json          JSON documents (stats, feature_specs, ...)
    RUN/cache.sqlite         content-addressed per-text results (see ``Cache``)
    RUN/logs/<name>.jsonl    append-only logs (LM calls)

Every write is atomic, so reopening a directory after a crash continues from finished work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from seal_audit.data.errors import InputError, SealError
from seal_audit.data.records import InputRecord, PreferencePair, RunManifest, SourceRef
from seal_audit.store.cache import Cache
from seal_audit.store.io import append_jsonl, write_json_atomic, write_parquet_atomic

MANIFEST = "manifest.json"
PAIR_COLUMNS = [
    "pair_id",
    "context",
    "chosen",
    "rejected",
    "rejected_context",
    "context_diverges",
    "source_path",
    "source_record",
    "source_variant",
    "meta",
    "group_id",
]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("seal-audit")
    except PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pairs_to_frame(pairs: Sequence[PreferencePair]) -> pd.DataFrame:
    """The canonical pairs table (meta as a JSON string, so any extra columns survive Parquet)."""
    rows = [
        {
            "pair_id": p.pair_id,
            "context": p.context,
            "chosen": p.chosen,
            "rejected": p.rejected,
            "rejected_context": p.rejected_context,
            "context_diverges": p.context_diverges,
            "source_path": p.source.path,
            "source_record": p.source.record,
            "source_variant": json.dumps(list(p.source.variant)) if p.source.variant else None,
            "meta": json.dumps(p.meta, ensure_ascii=False, sort_keys=True, default=str),
            "group_id": p.group_id,
        }
        for p in pairs
    ]
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def frame_to_pairs(df: pd.DataFrame) -> list[PreferencePair]:
    out: list[PreferencePair] = []
    for rec in df.to_dict(orient="records"):
        row: dict[str, Any] = {str(k): v for k, v in rec.items()}
        variant = json.loads(row["source_variant"]) if isinstance(row["source_variant"], str) else None
        rc = row["rejected_context"]
        out.append(
            PreferencePair(
                pair_id=str(row["pair_id"]),
                context=str(row["context"]),
                chosen=str(row["chosen"]),
                rejected=str(row["rejected"]),
                rejected_context=rc if isinstance(rc, str) else None,
                context_diverges=bool(row["context_diverges"]),
                source=SourceRef(
                    path=str(row["source_path"]),
                    record=int(row["source_record"]),
                    variant=tuple(variant) if variant else None,
                ),
                meta=json.loads(row["meta"]) if isinstance(row["meta"], str) else {},
                # tables written before groups existed: the default group (the context's hash)
                group_id=str(row["group_id"]) if isinstance(row.get("group_id"), str) else "",
            )
        )
    return out


class RunStore:
    """A run directory. Opening an existing one continues it; nothing is ever half-written."""

    def __init__(self, root: str | Path, *, create: bool = True) -> None:
        self.root = Path(root)
        if not self.root.exists():
            if not create:
                raise SealError(f"{self.root}: no such run directory")
            self.root.mkdir(parents=True)
        elif not self.root.is_dir():
            raise SealError(f"{self.root}: not a directory")
        self._cache: Cache | None = None
        if not (self.root / MANIFEST).exists():
            if not create:
                raise SealError(f"{self.root}: not a seal-audit run directory (no {MANIFEST})")
            now = _now()
            self._write_manifest(RunManifest(seal_audit_version=_version(), created=now, updated=now))

    # --- manifest -------------------------------------------------------------------------
    @property
    def manifest(self) -> RunManifest:
        try:
            return RunManifest.model_validate_json((self.root / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SealError(f"{self.root / MANIFEST}: unreadable manifest: {exc}") from exc

    def _write_manifest(self, manifest: RunManifest) -> None:
        write_json_atomic(self.root / MANIFEST, manifest.model_dump(mode="json"))

    def update_manifest(self, **changes: Any) -> RunManifest:
        """Set top-level manifest fields (``settings`` is merged key by key, not replaced)."""
        m = self.manifest
        data = m.model_dump(mode="json")
        for key, value in changes.items():
            if key == "settings" and isinstance(value, dict):
                data["settings"] = {**data.get("settings", {}), **value}
            else:
                data[key] = value
        data["updated"] = _now()
        data["seal_audit_version"] = _version()
        new = RunManifest.model_validate(data)
        self._write_manifest(new)
        return new

    def record_stage(self, stage: str, info: dict[str, Any]) -> None:
        """Merge ``info`` into the manifest entry of ``stage`` (timings, counts, settings hash)."""
        stages = dict(self.manifest.stages)
        stages[stage] = {**stages.get(stage, {}), **info, "finished": _now()}
        self.update_manifest(stages=stages)

    def record_input(self, path: str, fmt: str) -> InputRecord:
        p = Path(path)
        rec = InputRecord(path=str(path), sha256=file_sha256(p) if p.is_file() else None, format=fmt)
        inputs = [i for i in self.manifest.inputs if i.path != rec.path] + [rec]
        self.update_manifest(inputs=[i.model_dump() for i in inputs])
        return rec

    # --- tables and documents -------------------------------------------------------------
    def path(self, name: str) -> Path:
        """Path of a named artifact inside the run (for files other stages render, e.g. report.html)."""
        return self.root / name

    def table_path(self, name: str) -> Path:
        return self.root / f"{name}.parquet"

    def has_table(self, name: str) -> bool:
        return self.table_path(name).exists()

    def write_table(self, name: str, df: pd.DataFrame) -> Path:
        target = self.table_path(name)
        write_parquet_atomic(target, df)
        return target

    def read_table(self, name: str) -> pd.DataFrame:
        target = self.table_path(name)
        if not target.exists():
            raise SealError(f"{self.root}: no '{name}' table yet (run the stage that makes it first)")
        return pd.read_parquet(target)

    def has_json(self, name: str) -> bool:
        return (self.root / f"{name}.json").exists()

    def write_json(self, name: str, obj: Any) -> Path:
        target = self.root / f"{name}.json"
        write_json_atomic(target, obj)
        return target

    def read_json(self, name: str) -> Any:
        target = self.root / f"{name}.json"
        if not target.exists():
            raise SealError(f"{self.root}: no '{name}.json'")
        return json.loads(target.read_text(encoding="utf-8"))

    def append_log(self, name: str, records: Iterable[dict[str, Any]]) -> None:
        append_jsonl(self.root / "logs" / f"{name}.jsonl", list(records))

    def read_log(self, name: str) -> list[dict[str, Any]]:
        target = self.root / "logs" / f"{name}.jsonl"
        if not target.exists():
            return []
        out = []
        for line in target.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:  # a line cut by a crash: ignore only the torn tail
                    continue
        return out

    # --- pairs ----------------------------------------------------------------------------
    def write_pairs(self, pairs: Sequence[PreferencePair]) -> Path:
        seen: dict[str, PreferencePair] = {}
        for p in pairs:
            if p.pair_id in seen:
                first = seen[p.pair_id].source
                raise InputError(
                    f"duplicate pair_id '{p.pair_id}' (also record {first.record} of {first.path})",
                    file=p.source.path,
                    record=p.source.record,
                    field="pair_id",
                    kind="duplicate",
                )
            seen[p.pair_id] = p
        return self.write_table("pairs", pairs_to_frame(pairs))

    def read_pairs(self) -> list[PreferencePair]:
        return frame_to_pairs(self.read_table("pairs"))

    def read_pairs_table(self, name: str) -> list[PreferencePair]:
        """Pairs stored under another table name (e.g. ``pairs_a``, the training part A)."""
        return frame_to_pairs(self.read_table(name))

    # --- cache ----------------------------------------------------------------------------
    @property
    def cache(self) -> Cache:
        if self._cache is None:
            self._cache = Cache(self.root / "cache.sqlite")
        return self._cache

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None
