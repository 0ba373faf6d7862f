"""Everything the report reads from a run directory, gathered once, tolerant of what is missing.

The report renders whatever a run has: a run scored by one RM without features still gets a report
whose other sections say "not computed: <reason>". So nothing here raises for a missing artifact;
each absence is recorded with the reason a reader needs (which stage to run).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from seal_audit.data.errors import SealError
from seal_audit.report._view import Headline, headline
from seal_audit.stats import AnalysisResult
from seal_audit.store import RunStore
from seal_audit.store.run_store import ANALYSIS_DIR


@dataclasses.dataclass(frozen=True, eq=False)
class ReportData:
    """The run's stats.json, analysis tables, long tables and manifest, or why each is absent."""

    root: str
    stats: dict[str, Any]
    """stats.json ({} when absent: every statistics section then says why)."""
    stats_missing: str | None
    manifest: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    """analysis/<name>.parquet by name."""
    pairs: pd.DataFrame | None
    scores: pd.DataFrame | None
    features: pd.DataFrame | None
    problems: tuple[str, ...]
    """Artifacts that exist but could not be read (shown at the top of the report)."""
    headline: Headline | None = None
    """The findings every surface leads with, from stats.json read back typed (None without it)."""

    def table(self, name: str) -> pd.DataFrame | None:
        return self.tables.get(name)


def load(store: RunStore) -> ReportData:
    """Read every artifact the report can use; an unreadable one becomes a visible problem line."""
    problems: list[str] = []
    stats: dict[str, Any] = {}
    stats_missing: str | None = None
    if store.has_json("stats"):
        try:
            doc = store.read_json("stats")
            if isinstance(doc, dict):
                stats = doc
            else:
                problems.append("stats.json is not a JSON object")
                stats_missing = "stats.json is not a JSON object"
        except (SealError, ValueError) as exc:
            problems.append(f"stats.json unreadable: {exc}")
            stats_missing = "stats.json unreadable"
    else:
        stats_missing = "no stats.json in this run (run `seal analyze` first)"
    try:
        manifest = store.manifest.model_dump(mode="json")
    except SealError as exc:
        problems.append(str(exc))
        manifest = {}

    tables: dict[str, pd.DataFrame] = {}
    analysis_dir = store.path(ANALYSIS_DIR)
    if analysis_dir.is_dir():
        for p in sorted(analysis_dir.glob("*.parquet")):
            name = f"{ANALYSIS_DIR}/{p.stem}"
            try:
                tables[p.stem] = store.read_table(name)
            except Exception as exc:  # a corrupt table must not cost the whole report
                problems.append(f"{name}.parquet unreadable: {exc}")

    def opt(name: str) -> pd.DataFrame | None:
        if not store.has_table(name):
            return None
        try:
            return store.read_table(name)
        except Exception as exc:
            problems.append(f"{name}.parquet unreadable: {exc}")
            return None

    head: Headline | None = None
    if stats:
        try:
            result = AnalysisResult.from_json(store.read_stats_text(), str(store.stats_path))
            rms: Mapping[str, Any] = manifest["rms"] if isinstance(manifest.get("rms"), Mapping) else {}
            head = headline(result, in_sample={str(n): bool(dig(r, "in_sample")) for n, r in rms.items()})
        except (SealError, ValueError) as exc:
            problems.append(str(exc))
    return ReportData(
        headline=head,
        root=str(store.root),
        stats=stats,
        stats_missing=stats_missing,
        manifest=manifest,
        tables=tables,
        pairs=opt("pairs"),
        scores=opt("scores"),
        features=opt("features"),
        problems=tuple(problems),
    )


# --- tolerant accessors of stats.json --------------------------------------------------------


def skip_reason(obj: Any) -> str | None:
    """Why an analysis has no numbers (``{"status": "skipped"|"failed", "reason": why}``), 'absent'
    when it is missing; None when it was computed."""
    if obj is None:
        return "absent from stats.json"
    if isinstance(obj, Mapping) and obj.get("status") in ("skipped", "failed") and "reason" in obj:
        prefix = "could not be computed: " if obj["status"] == "failed" else ""
        return prefix + str(obj["reason"])
    return None


def dig(obj: Any, *path: str | int) -> Any:
    """obj[path[0]][path[1]]... or None at the first missing step (never raises)."""
    cur = obj
    for key in path:
        if isinstance(cur, Mapping):
            cur = cur.get(key)
        elif isinstance(cur, list) and isinstance(key, int) and -len(cur) <= key < len(cur):
            cur = cur[key]
        else:
            return None
        if cur is None:
            return None
    return cur


def fnum(x: Any) -> float:
    """A JSON number as float, NaN for null or anything non-numeric (JSON has no NaN)."""
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, int | float):
        return float(x)
    return math.nan


def inum(x: Any) -> int | None:
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int):
        return x
    if isinstance(x, float) and math.isfinite(x):
        return int(x)
    return None


def rm_roles(data: ReportData) -> dict[str, str]:
    """RM name → role (pre / post / baseline / extra) as the run recorded it: stats.json's inputs,
    else the manifest's RM records. A role is never guessed from an RM's name."""
    inp = data.stats.get("inputs") if isinstance(data.stats.get("inputs"), Mapping) else None
    roles: dict[str, str] = {}
    rms = data.manifest.get("rms")
    if isinstance(rms, Mapping):
        for name, info in rms.items():
            role = dig(info, "role")
            roles[str(name)] = str(role) if role in ("pre", "post", "baseline", "extra") else "extra"
    if inp:
        for rm in inp.get("rms") or []:
            roles.setdefault(str(rm), "extra")
        for rm in inp.get("baselines") or []:
            roles[str(rm)] = "baseline"
        if inp.get("pre"):
            roles[str(inp["pre"])] = "pre"
        if inp.get("post"):
            roles[str(inp["post"])] = "post"
    if data.scores is not None and "rm" in data.scores.columns:
        for rm in pd.unique(data.scores["rm"].astype(str)):
            roles.setdefault(str(rm), "extra")
    return roles
