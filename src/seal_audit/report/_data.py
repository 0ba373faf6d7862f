"""Everything the report reads from a run directory, gathered once, tolerant of what is missing.

The report renders whatever a run has: a run scored by one RM without features still gets a report
whose other sections say "not computed: <reason>". So nothing here raises for a missing artifact;
each absence is recorded with the reason a reader needs (which stage to run).

stats.json is read back into the typed records of ``seal_audit.stats`` (``AnalysisResult``) one
top-level key at a time: a key that does not match the schema (a file from another version, a hand
edit) costs only the section that shows it, which then says why, instead of the whole report.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from typing import Any

import pandas as pd

from seal_audit.data.errors import SealError
from seal_audit.data.records import RunManifest
from seal_audit.report._view import Headline, headline
from seal_audit.stats import AnalysisResult
from seal_audit.stats._common import Skipped, from_jsonable
from seal_audit.stats.analysis import SCHEMA
from seal_audit.store import RunStore
from seal_audit.store.run_store import ANALYSIS_DIR


@dataclasses.dataclass(frozen=True, eq=False)
class ReportData:
    """The run's typed results, analysis tables, long tables and manifest, or why each is absent."""

    root: str
    result: AnalysisResult | None
    """stats.json read back typed (None when absent or unreadable: every section then says why)."""
    stats_missing: str | None
    manifest: RunManifest | None
    tables: dict[str, pd.DataFrame]
    """analysis/<name>.parquet by name."""
    pairs: pd.DataFrame | None
    scores: pd.DataFrame | None
    features: pd.DataFrame | None
    problems: tuple[str, ...]
    """Artifacts that exist but could not be read (shown at the top of the report)."""
    unreadable: dict[str, str] = dataclasses.field(default_factory=dict)
    """stats.json keys that did not match the result schema → the error (their sections say so)."""
    headline: Headline | None = None
    """The findings every surface leads with, from the typed results (None without them)."""
    rewrites: pd.DataFrame | None = None

    def table(self, name: str) -> pd.DataFrame | None:
        return self.tables.get(name)


def read_result(text: str, source: str) -> tuple[AnalysisResult, dict[str, str]]:
    """stats.json → ``AnalysisResult``, key by key; a key that does not match its record type is
    replaced by a failed ``Skipped`` (or an empty mapping) and returned with its error.

    ``options`` and ``inputs`` are needed by every section, so an error there (or another schema)
    raises ``SealError`` naming the file.
    """
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SealError(f"{source}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else None
        raise SealError(
            f"{source}: schema {found!r}, this seal-audit reads {SCHEMA!r}; re-run `seal analyze RUN` to rewrite it"
        )
    hints = typing.get_type_hints(AnalysisResult)
    kwargs: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in dataclasses.fields(AnalysisResult):
        if f.metadata.get("json", True) is False or f.name not in doc:
            continue
        try:
            kwargs[f.name] = from_jsonable(hints[f.name], doc[f.name], f"{source}.{f.name}")
        except (TypeError, ValueError, KeyError) as exc:
            if f.name in ("options", "inputs"):
                raise SealError(f"{source}: does not match the result schema: {exc}") from None
            msg = f"{source}: {f.name} does not match the result schema: {exc}"
            errors[f.name] = msg
            kwargs[f.name] = {} if typing.get_origin(hints[f.name]) is dict else Skipped(msg, status="failed")
    try:
        return AnalysisResult(**kwargs), errors
    except TypeError as exc:
        raise SealError(f"{source}: does not match the result schema: {exc}") from None


def load(store: RunStore) -> ReportData:
    """Read every artifact the report can use; an unreadable one becomes a visible problem line."""
    problems: list[str] = []
    result: AnalysisResult | None = None
    unreadable: dict[str, str] = {}
    stats_missing: str | None = None
    if store.has_json("stats"):
        try:
            result, unreadable = read_result(store.read_stats_text(), str(store.stats_path))
            problems += unreadable.values()
        except (SealError, ValueError) as exc:
            problems.append(f"stats.json unreadable: {exc}")
            stats_missing = f"stats.json unreadable: {exc}"
    else:
        stats_missing = "no stats.json in this run (run `seal analyze` first)"
    manifest: RunManifest | None
    try:
        manifest = store.manifest
    except SealError as exc:
        problems.append(str(exc))
        manifest = None

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
    if result is not None:
        rms = manifest.rms if manifest is not None else {}
        head = headline(result, in_sample={n: bool(r.in_sample) for n, r in rms.items()})
    return ReportData(
        root=str(store.root),
        result=result,
        stats_missing=stats_missing,
        manifest=manifest,
        tables=tables,
        pairs=opt("pairs"),
        scores=opt("scores"),
        features=opt("features"),
        rewrites=opt("rewrites"),
        problems=tuple(problems),
        unreadable=unreadable,
        headline=head,
    )


def skip_reason(obj: object) -> str | None:
    """Why an analysis has no numbers ('absent' when missing); None when it was computed."""
    if obj is None:
        return "absent from stats.json"
    if isinstance(obj, Skipped):
        return ("could not be computed: " if obj.status == "failed" else "") + obj.reason
    return None


def fnum(x: float | int | None) -> float:
    """A number as float, NaN for None (JSON has no NaN: null means missing)."""
    if x is None:
        return math.nan
    return float(x)


def rm_roles(data: ReportData) -> dict[str, str]:
    """RM name → role (pre / post / baseline / extra) as the run recorded it: the analysis inputs,
    else the manifest's RM records. A role is never guessed from an RM's name."""
    roles: dict[str, str] = {}
    if data.manifest is not None:
        roles = {name: rec.role for name, rec in data.manifest.rms.items()}
    if data.result is not None:
        inp = data.result.inputs
        for rm in inp.rms:
            roles.setdefault(rm, "extra")
        for rm in inp.baselines:
            roles[rm] = "baseline"
        if inp.pre:
            roles[inp.pre] = "pre"
        if inp.post:
            roles[inp.post] = "post"
    if data.scores is not None and "rm" in data.scores.columns:
        for rm in pd.unique(data.scores["rm"].astype(str)):
            roles.setdefault(str(rm), "extra")
    return roles
