"""RunStore: one run directory, the single owner of its file names.

Layout::

    RUN/manifest.json        what the run is and how it was made (RunManifest)
    RUN/pairs.parquet        the canonical pairs table
    RUN/<table>.parquet      stage outputs (scores, features, rewrites, analysis/<name>, ...)
    RUN/<name>.json          JSON documents (stats, feature_specs, ...)
    RUN/cache.sqlite         content-addressed per-text results (see ``Cache``)
    RUN/logs/<name>.jsonl    append-only logs (LM calls)
    RUN/run.lock             the one-writer lock (holder pid, host, start time, verb)

Every write is atomic, so reopening a directory after a crash continues from finished work. A
writer opens the store with ``lock=VERB``; a second writer is refused, naming the holder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from seal_audit.data.errors import InputError, SealError, disk_error
from seal_audit.data.records import (
    InputRecord,
    PreferencePair,
    RMRecord,
    RunManifest,
    SourceRef,
    StageRecord,
    migrate_manifest,
    stage_record,
)
from seal_audit.store.cache import Cache
from seal_audit.store.io import append_jsonl, write_json_atomic, write_parquet_atomic
from seal_audit.store.lock import LOCK_NAME, RunLock

MANIFEST = "manifest.json"
STATS = "stats.json"
"""Every SEAL number of the run (the analysis result, schema in docs/results.md)."""
ANALYSIS_DIR = "analysis"
"""One Parquet table per analysis: ``analysis/<name>.parquet``."""
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
EXPORTS_DIR = "exports"
"""``seal export`` writes here by default: ``exports/<format>/`` (the run's own files stay as they are)."""
QUARANTINE = "quarantine.jsonl"
"""Records skipped at load time (``on_error = "skip"``), with their reasons."""
PAIRS = "pairs"
PAIRS_A = "pairs_a"
SCORES = "scores"
FEATURES = "features"
REWRITES = "rewrites"
TABLES: dict[str, str] = {
    PAIRS: "the audited pairs D (one row per pair_id)",
    PAIRS_A: "part A: pairs held out to train local RMs, not audited",
    SCORES: "long rewards: pair_id, side, rm, reward, variant, n_tokens, truncated",
    FEATURES: "long feature values: pair_id, side, feature, value, featurizer, status, variant",
    REWRITES: "rewritten texts: pair_id, side, transform, status, similarity, drifted",
}
"""Every run table by name (``RUN/<name>.parquet``); analysis tables live under ``analysis/``. A stage
that needs another table declares it with ``declare_table`` so the store still knows every name."""


def declare_table(name: str, doc: str) -> str:
    """Register a run table (idempotent); returns the name, for a module-level constant."""
    TABLES.setdefault(name, doc)
    return name


FEATURE_SPECS = "feature_specs"
"""JSON document (``feature_specs.json``) with the specs of every labeled feature."""
LOCK = LOCK_NAME
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


def _dump(v: Any) -> Any:
    return v.model_dump(mode="json") if hasattr(v, "model_dump") else v


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
    """A run directory. Opening an existing one continues it; nothing is ever half-written.

    ``lock=VERB`` makes this the run's one writer until ``close()`` (or the end of a ``with``
    block): every verb that writes a run passes it; read-only uses (inspect, view, cache listing)
    do not. Without a lock the store still works (library use, tests), unguarded.
    """

    def __init__(self, root: str | Path, *, create: bool = True, lock: str | None = None) -> None:
        self.root = Path(root)
        if not self.root.exists():
            if not create:
                raise SealError(f"{self.root}: no such run directory")
            try:
                self.root.mkdir(parents=True)
            except OSError as exc:
                raise disk_error(exc, self.root) from exc
        elif not self.root.is_dir():
            raise SealError(f"{self.root}: not a directory")
        self._cache: Cache | None = None
        self._lock: RunLock | None = None
        if lock is not None:
            if not create and not (self.root / MANIFEST).exists():
                raise SealError(f"{self.root}: not a seal-audit run directory (no {MANIFEST})")
            self._lock = RunLock(self.root, lock).acquire()
            self._sweep_temporaries()
        try:
            if not (self.root / MANIFEST).exists():
                if not create:
                    raise SealError(f"{self.root}: not a seal-audit run directory (no {MANIFEST})")
                now = _now()
                self._write_manifest(RunManifest(seal_audit_version=_version(), created=now, updated=now))
            if self._lock is not None and self._lock.took_over is not None:
                t = self._lock.took_over
                self.record_stage(
                    "lock",
                    {"took_over": {"pid": t.pid, "host": t.host, "started": t.started, "verb": t.verb}},
                )
        except BaseException:
            self.close()
            raise

    def _sweep_temporaries(self) -> None:
        """Remove the temporary files of writes a killed writer never finished (``.NAME.*.tmp``,
        see ``atomic_path``); only the lock holder may, since another writer's are live."""
        for tmp in self.root.rglob(".*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- manifest -------------------------------------------------------------------------
    @property
    def manifest(self) -> RunManifest:
        """The typed manifest (an older schema is migrated in memory; a newer one is refused)."""
        path = self.root / MANIFEST
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SealError(f"{path}: unreadable manifest: {exc}") from exc
        if not isinstance(raw, dict):
            raise SealError(f"{path}: unreadable manifest: not a JSON object")
        try:
            return RunManifest.model_validate(migrate_manifest(raw, str(path)))
        except ValueError as exc:
            raise SealError(f"{path}: invalid manifest: {exc}") from exc

    def _write_manifest(self, manifest: RunManifest) -> None:
        write_json_atomic(self.root / MANIFEST, manifest.model_dump(mode="json"))

    def update_manifest(self, **changes: Any) -> RunManifest:
        """Set top-level manifest fields (``rms`` is merged RM by RM, not replaced)."""
        m = self.manifest
        data = m.model_dump(mode="json")
        for key, value in changes.items():
            if key == "rms" and isinstance(value, dict):
                data["rms"] = {**data.get("rms", {}), **{k: _dump(v) for k, v in value.items()}}
            else:
                data[key] = value
        data["updated"] = _now()
        data["seal_audit_version"] = _version()
        new = RunManifest.model_validate(data)
        self._write_manifest(new)
        return new

    def record_stage(self, stage: str, info: dict[str, Any]) -> StageRecord:
        """Merge ``info`` into the manifest section of ``stage``: the section's own fields (status,
        options, message, settings_hash, verb, seconds) by name, any other key into its counters.
        An info that states ``status`` records this run's outcome: it replaces the earlier run's
        status, message and failure counters (``stage_record`` says which fields still merge)."""
        m = self.manifest
        rec = stage_record({**info, "finished": _now()}, m.stages.get(stage))
        stages = {k: v.model_dump(mode="json") for k, v in m.stages.items()}
        stages[stage] = rec.model_dump(mode="json")
        self.update_manifest(stages=stages)
        return rec

    def record_rms(self, rms: dict[str, RMRecord]) -> None:
        """Record (or update) RMs scored in this run, each with its explicit role."""
        self.update_manifest(rms=rms)

    def forget_rms(self, names: Iterable[str]) -> None:
        """Drop RMs from the manifest: those a score stage recorded before loading them (so that a
        killed run can be resumed) and that then could not be loaded."""
        drop = set(names)
        m = self.manifest
        if not drop & set(m.rms):
            return
        keep = {n: r for n, r in m.rms.items() if n not in drop}
        self._write_manifest(m.model_copy(update={"rms": keep, "updated": _now()}))

    def set_roles(self, roles: dict[str, str]) -> None:
        """Change recorded RMs' roles (``seal analyze --pre/--post/--baseline``)."""
        m = self.manifest
        unknown = sorted(set(roles) - set(m.rms))
        if unknown:
            raise SealError(f"{self.root}: no RM named {unknown} in this run (have {sorted(m.rms)})")
        self.update_manifest(rms={n: m.rms[n].model_copy(update={"role": r}) for n, r in roles.items()})

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
        if name not in TABLES and not name.startswith(f"{ANALYSIS_DIR}/"):
            raise SealError(f"table '{name}' is not declared in the store (store.run_store.TABLES)")
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

    # --- analysis outputs -------------------------------------------------------------------
    @property
    def stats_path(self) -> Path:
        return self.root / STATS

    def has_stats(self) -> bool:
        return self.stats_path.exists()

    def write_stats(self, text: str) -> Path:
        """stats.json, written atomically as the exact text given (it is canonical JSON already)."""
        from seal_audit.store.io import write_text_atomic

        write_text_atomic(self.stats_path, text)
        return self.stats_path

    def read_stats_text(self) -> str:
        if not self.stats_path.exists():
            raise SealError(f"{self.root}: no {STATS} yet (run `seal analyze {self.root}` first)")
        return self.stats_path.read_text(encoding="utf-8")

    def analysis_table_names(self) -> tuple[str, ...]:
        return tuple(sorted(p.stem for p in (self.root / ANALYSIS_DIR).glob("*.parquet")))

    def has_analysis_table(self, name: str) -> bool:
        return self.has_table(f"{ANALYSIS_DIR}/{name}")

    def read_analysis_table(self, name: str) -> pd.DataFrame:
        if not self.has_analysis_table(name):
            raise SealError(
                f"{self.root}: no analysis table '{name}'; available: {', '.join(self.analysis_table_names())}"
            )
        return self.read_table(f"{ANALYSIS_DIR}/{name}")

    def write_analysis_tables(self, tables: dict[str, pd.DataFrame]) -> None:
        """Replace the analysis tables: tables of an earlier analysis that this one did not make are
        removed, so a stale table never sits beside fresh numbers."""
        for name, df in tables.items():
            self.write_table(f"{ANALYSIS_DIR}/{name}", df)
        for old in set(self.analysis_table_names()) - set(tables):
            (self.root / ANALYSIS_DIR / f"{old}.parquet").unlink(missing_ok=True)

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
        """Close the cache and give back the write lock, if this store holds one."""
        try:
            if self._cache is not None:
                self._cache.close()
                self._cache = None
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
