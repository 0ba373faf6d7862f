"""The LABEL stage: run featurizers over a run's texts and store the long ``features`` table.

Table ``features`` (one row per text x feature)::

    pair_id, side, variant, feature, value (float, NaN when failed), featurizer, status, error, items

``items`` is the JSON list of a list-valued feature (``value`` is then its length), else null.
``feature_specs.json`` holds every stored feature's FeatureSpec so later stages know roles and kinds.

Re-running a featurizer replaces its own rows for the variants it labeled and keeps everything
else, so featurizers can be added to a run one at a time and the rewrite stage can add variants.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from seal_audit.data.errors import ConfigError
from seal_audit.data.records import SIDES, FeatureSpec, PreferencePair
from seal_audit.features.base import (
    Featurizer,
    FeaturizerOutcome,
    LabelContext,
    LabelItem,
    LabelRow,
    Progress,
    describe_reasons,
)
from seal_audit.store.run_store import FEATURES, RunStore

FEATURES_TABLE = FEATURES
SPECS_DOC = "feature_specs"
COLUMNS = ["pair_id", "side", "variant", "feature", "value", "featurizer", "status", "error", "items"]


def build_items(pairs: Iterable[PreferencePair], variant: str = "original") -> list[LabelItem]:
    """Both sides of every pair as label items (chosen then rejected, pair order kept)."""
    out: list[LabelItem] = []
    for p in pairs:
        for side in SIDES:
            idx = None
            if p.source.variant is not None:
                idx = p.source.variant[0] if side == "chosen" else p.source.variant[1]
            out.append(
                LabelItem(p.pair_id, side, p.context_for(side), p.response(side), variant, p.meta, idx)
            )
    return out


def rows_to_frame(rows: Iterable[LabelRow]) -> pd.DataFrame:
    data: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for r in rows:
        data["pair_id"].append(r.pair_id)
        data["side"].append(r.side)
        data["variant"].append(r.variant)
        data["feature"].append(r.feature)
        data["value"].append(r.value)
        data["featurizer"].append(r.featurizer)
        data["status"].append(r.status)
        data["error"].append(r.error)
        data["items"].append(json.dumps(list(r.items), ensure_ascii=False) if r.items is not None else None)
    df = pd.DataFrame(data, columns=COLUMNS)
    df["value"] = df["value"].astype("float64")
    for c in ("error", "items"):
        df[c] = df[c].astype("object")
    return df


@dataclass(frozen=True, slots=True)
class LabelOutcome:
    """What ``label_items`` produced: rows of every featurizer, their specs, per-featurizer summary."""

    frame: pd.DataFrame
    specs: tuple[FeatureSpec, ...]
    outcomes: tuple[FeaturizerOutcome, ...]

    @property
    def stopped(self) -> bool:
        return any(o.stopped for o in self.outcomes)

    @property
    def status(self) -> str:
        """The worst featurizer status: failed > partial > stopped > complete."""
        order = ("failed", "partial", "stopped", "complete")
        return min((o.status for o in self.outcomes), key=order.index, default="complete")

    def failures(self) -> list[str]:
        """One line per featurizer that did not do its work (over its ``max_failed``)."""
        return [
            f"{o.featurizer}: {o.n_failed:,} of {o.n_texts:,} texts failed ({o.status}): "
            + describe_reasons(o.reasons)
            for o in self.outcomes
            if o.over_limit
        ]

    def summary(self) -> dict[str, Any]:
        return {
            o.featurizer: {
                "texts": o.n_texts,
                "failed": o.n_failed,
                "cached": o.n_cached,
                "cost_usd": round(o.cost_usd, 6),
                "stopped": o.stopped,
                "stop_reason": o.stop_reason,
                "status": o.status,
                "reasons": [[r, n] for r, n in o.reasons[:10]],
                **({"client": dict(o.info)} if o.info else {}),
            }
            for o in self.outcomes
        }


def check_unique_features(featurizers: Sequence[Featurizer]) -> tuple[FeatureSpec, ...]:
    seen: dict[str, str] = {}
    specs: list[FeatureSpec] = []
    for f in featurizers:
        for s in f.specs():
            if s.name in seen:
                raise ConfigError(f"feature '{s.name}' is produced by both '{seen[s.name]}' and '{f.name}'")
            seen[s.name] = f.name
            specs.append(s)
    return tuple(specs)


def label_items(
    items: Sequence[LabelItem],
    featurizers: Sequence[Featurizer],
    *,
    store: RunStore | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
) -> LabelOutcome:
    """Label arbitrary items (any variant) with each featurizer; stores nothing but the LM cache
    and calls log. The rewrite stage calls this for rewritten texts."""
    specs = check_unique_features(featurizers)
    ctx = LabelContext(store=store, on_progress=on_progress, stop=stop)
    outcomes = [f.label(items, ctx) for f in featurizers]
    frame = rows_to_frame(r for o in outcomes for r in o.rows)
    return LabelOutcome(frame, specs, tuple(outcomes))


def merge_features(
    store: RunStore,
    new: pd.DataFrame,
    featurizers: Sequence[str],
    variants: Sequence[str],
    specs: Sequence[FeatureSpec],
) -> pd.DataFrame:
    """Replace the stored rows of (featurizer, variant) with ``new``; keep all other rows; update specs."""
    if store.has_table(FEATURES_TABLE):
        old = store.read_table(FEATURES_TABLE)
        for c in COLUMNS:
            if c not in old.columns:
                old[c] = None
        keep = ~(old["featurizer"].isin(list(featurizers)) & old["variant"].isin(list(variants)))
        merged = pd.concat([old.loc[keep, COLUMNS], new[COLUMNS]], ignore_index=True) if keep.any() else new
    else:
        merged = new
    store.write_table(FEATURES_TABLE, merged)
    by_name: dict[str, Any] = {}
    if store.has_json(SPECS_DOC):
        by_name = {d["name"]: d for d in store.read_json(SPECS_DOC)}
    for s in specs:
        by_name[s.name] = s.model_dump(mode="json")
    store.write_json(SPECS_DOC, list(by_name.values()))
    return merged


def label_options(featurizers: Sequence[Any]) -> dict[str, Any]:
    """The label stage's options record: which featurizers labeled the originals, and the LM-labeler's
    endpoint settings (never a key), so ``seal rewrite`` can label rewritten texts the same way."""
    entry: dict[str, Any] = {"featurizers": [f.name for f in featurizers]}
    for f in featurizers:
        settings = getattr(f, "settings", None)
        if f.name == "lm" and settings is not None and hasattr(settings, "model_dump"):
            entry["llm"] = settings.model_dump(mode="json")
    return entry


def label_run(
    store: RunStore,
    featurizers: Sequence[Featurizer],
    *,
    variant: str = "original",
    on_progress: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
) -> LabelOutcome:
    """LABEL stage over a run's pairs: writes ``features`` + ``feature_specs.json`` and records the
    stage (status ``stopped`` when an LM budget ended it early; finished work is kept and a re-run
    continues from the cache)."""
    if not featurizers:
        raise ConfigError("no featurizer given (e.g. --featurizer offline or --featurizer lm)")
    t0 = time.perf_counter()
    items = build_items(store.read_pairs(), variant)
    out = label_items(items, featurizers, store=store, on_progress=on_progress, stop=stop)
    merged = merge_features(store, out.frame, [f.name for f in featurizers], [variant], out.specs)
    n_failed_rows = int((out.frame["status"] == "failed").sum())
    failures = out.failures()
    store.record_stage(
        "label",
        {
            "status": out.status,
            **({"message": " | ".join(failures)} if failures else {}),
            "options": label_options(featurizers),
            "featurizers": out.summary(),
            "texts": len(items),
            "rows": len(merged),
            "failed_rows": n_failed_rows,
            "seconds": round(time.perf_counter() - t0, 3),
        },
    )
    return out
