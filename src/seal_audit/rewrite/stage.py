"""REWRITE: rewrite a seeded sample of pairs with named transforms and store every outcome.

The stage only produces the ``rewrites`` table (one row per pair, side and transform, including
rejected and failed attempts, so nothing disappears silently); re-scoring and re-labeling the
rewritten texts is done by the caller with the scoring and labeling stages, fed by
``rewritten_items``. Every transform of a run uses the same sample (hash order of pair ids under the
seed), so transforms are compared on the same pairs and a larger sample contains a smaller one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from seal_audit.config import RewriteOptions
from seal_audit.data.errors import SealError
from seal_audit.data.records import SIDES, PreferencePair, Rewrite, Side
from seal_audit.rewrite.controlled import apply_controlled
from seal_audit.rewrite.drift import DriftGate
from seal_audit.rewrite.lm import LMTask, check_reply, run_lm_tasks
from seal_audit.rewrite.markers import last_marker_offset, split_lead_marker, starts_with_marker
from seal_audit.rewrite.registry import resolve_transforms
from seal_audit.rewrite.spec import RewriteSettings, Scope, TransformSpec, parse_sample, parse_sides
from seal_audit.store.run_store import REWRITES

if TYPE_CHECKING:
    from seal_audit.backends.embed import Embedder
    from seal_audit.backends.llm.settings import LLMSettings
    from seal_audit.store import RunStore

TABLE = REWRITES
TRANSFORMS_DOC = "rewrite_transforms"
STAGE = "rewrite"
DEFAULT_DRIFT_THRESHOLD: float = RewriteOptions.model_fields["drift_threshold"].default
MANIFEST_KEY = "transforms"
"""``manifest.stages["rewrite"].options[MANIFEST_KEY][transform]``: the settings of that transform's
stored rewrites (per transform, so rewriting one transform never overwrites another's record)."""
COLUMNS = [
    "pair_id",
    "side",
    "transform",
    "kind",
    "scope",
    "original",
    "rewritten",
    "status",
    "reason",
    "similarity",
    "drifted",
    "response_offset",
]
"""``original``/``rewritten`` are the rewritten unit (the response, or the whole transcript for
``transcript`` scope, where ``response_offset`` says where the response starts in ``rewritten``)."""

Progress = Callable[[str, int, int], None]
"""``progress(transform, done, total)``."""


@dataclasses.dataclass(frozen=True)
class TransformSummary:
    """What one transform did in one run."""

    name: str
    kind: str
    scope: str
    pairs: int
    rows: int
    ok: int
    rejected: int
    failed: int
    drifted: int
    mean_similarity: float
    """Mean cosine similarity of accepted rewrites (NaN if none); the reference's paraphrases: ≈ 0.96."""
    lm_calls: int = 0
    """LM requests sent in this run (0 on a resumed run: cache hits are not sent)."""
    lm_cached: int = 0
    cost_usd: float = 0.0
    stopped: str | None = None
    reasons: tuple[tuple[str, int], ...] = ()
    """Rejection/failure reasons (first clause) and how often each occurred."""
    status: str = "complete"
    """``complete``; ``partial`` / ``failed`` when more LM calls failed (HTTP errors, unreachable
    endpoint -- not rejections, which are outcomes) than the endpoint's ``max_failed``; ``stopped``."""
    lm_info: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """What the LM client did: requests, resends, server slots (see ``ChatManyOutcome.info``)."""


@dataclasses.dataclass(frozen=True)
class RewriteSummary:
    pairs_sampled: int
    transforms: tuple[TransformSummary, ...]
    seconds: float

    @property
    def lm_calls(self) -> int:
        return sum(t.lm_calls for t in self.transforms)

    def failures(self) -> list[str]:
        """One line per transform whose LM calls failed beyond ``max_failed``."""
        return [
            f"{t.name}: {t.failed:,} of {t.rows:,} rewrites failed ({t.status}): "
            + "; ".join(f"{n}\u00d7 {r}" for r, n in t.reasons[:3])
            for t in self.transforms
            if t.status in ("partial", "failed")
        ]


@dataclasses.dataclass(frozen=True)
class RewriteItem:
    """One text to score and label under a rewrite variant (what the caller feeds the other stages)."""

    pair_id: str
    side: Side
    variant: str
    """The transform name (the ``variant`` of the scores and features rows)."""
    context: str
    response: str
    rewritten: bool
    """False for the side a one-sided rewrite left unchanged (scored under the variant all the same,
    so both sides of every rewritten pair exist under the variant)."""


# --- sampling ------------------------------------------------------------------------------
def _rank(seed: int, pair_id: str) -> str:
    return hashlib.sha256(f"{seed}\x00{pair_id}".encode()).hexdigest()


def select_pairs(pairs: Sequence[PreferencePair], sample: float | None, seed: int) -> list[PreferencePair]:
    """A seeded sample in input order: the ``n`` pairs with the smallest hash of (seed, pair_id).

    Hash order rather than ``random.sample`` makes the sample independent of row order and nested
    (N=10 is inside N=20 under one seed); the reference drew its 1% without a seed.
    """
    value = parse_sample(sample)
    if value is None:
        return list(pairs)
    n = min(len(pairs), int(value) if value >= 1 else max(1, round(value * len(pairs))))
    keep = {p.pair_id for p in sorted(pairs, key=lambda p: _rank(seed, p.pair_id))[:n]}
    return [p for p in pairs if p.pair_id in keep]


# --- units ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Unit:
    pair: PreferencePair
    side: Side
    scope: Scope

    @property
    def context(self) -> str:
        return self.pair.context_for(self.side)

    @property
    def response(self) -> str:
        return self.pair.response(self.side)

    @property
    def original(self) -> str:
        return self.context + self.response if self.scope == "transcript" else self.response

    def key(self, transform: str) -> str:
        return f"{transform}:{self.pair.pair_id}:{self.side}"


def _row(
    unit: _Unit,
    spec: TransformSpec,
    status: Literal["ok", "rejected", "failed"],
    rewritten: str | None,
    reason: str | None = None,
    offset: int | None = None,
) -> dict[str, Any]:
    rec = Rewrite(
        pair_id=unit.pair.pair_id,
        side=unit.side,
        transform=spec.name,
        original=unit.original,
        rewritten=rewritten,
        status=status,
        reason=reason,
    )
    row = rec.model_dump()
    row.update(kind=spec.kind, scope=unit.scope, response_offset=offset)
    return row


def _controlled_rows(spec: TransformSpec, units: Sequence[_Unit]) -> list[dict[str, Any]]:
    rows = []
    for u in units:
        ctx, resp = apply_controlled(
            spec, u.context, u.response, scope=u.scope, pair_id=u.pair.pair_id, side=u.side
        )
        new = ctx + resp if u.scope == "transcript" else resp
        offset = len(ctx) if u.scope == "transcript" else None
        if new == u.original:
            rows.append(
                _row(u, spec, "rejected", None, "unchanged: the transform does not apply to this text")
            )
        else:
            rows.append(_row(u, spec, "ok", new, offset=offset))
    return rows


def _lm_rows(
    store: RunStore,
    spec: TransformSpec,
    units: Sequence[_Unit],
    llm: LLMSettings,
    max_cost: float | None,
    progress: Progress | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    tasks: list[LMTask] = []
    by_key = {u.key(spec.name): u for u in units}
    for key, u in by_key.items():
        if u.scope == "transcript" and not starts_with_marker(u.response):
            rows[key] = _row(
                u,
                spec,
                "rejected",
                None,
                "transcript scope needs an 'Assistant:' marker to split the rewrite back into context and "
                "response; use --scope response for this data",
            )
        else:
            # response scope: the LM sees the reply's body only; its marker is put back afterwards
            _prefix, body = split_lead_marker(u.original) if u.scope == "response" else ("", u.original)
            tasks.append(LMTask(key, spec, body))
    total = len(tasks)
    outcomes, stats = run_lm_tasks(
        store,
        llm,
        tasks,
        max_cost=max_cost,
        on_done=(lambda done: progress(spec.name, done, total)) if progress is not None else None,
    )
    for t in tasks:
        u = by_key[t.key]
        o = outcomes.get(t.key)
        if o is None or o.status == "failed":
            rows[t.key] = _row(u, spec, "failed", None, o.error if o is not None else "no result")
            continue
        prefix, body = split_lead_marker(u.original) if u.scope == "response" else ("", u.original)
        checked = check_reply(body, o.reply, marker=prefix)
        if prefix and checked.text is not None:
            checked = dataclasses.replace(checked, text=prefix + checked.text)
        offset = None
        if checked.status == "ok" and u.scope == "transcript":
            assert checked.text is not None
            offset = last_marker_offset(checked.text)
        rows[t.key] = _row(u, spec, checked.status, checked.text, checked.reason, offset)
    info = {
        "lm_calls": stats.calls,
        "lm_cached": stats.cached,
        "cost_usd": stats.cost_usd,
        "stopped": stats.stopped,
        "client": dict(stats.client),
    }
    return [rows[u.key(spec.name)] for u in units], info


def _worst(statuses: Any) -> str:
    order = ("failed", "partial", "stopped", "complete")
    return min(statuses, key=order.index, default="complete")


def _reason_counts(rows: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, int], ...]:
    counts: dict[str, int] = {}
    for r in rows:
        if r["status"] != "ok" and r["reason"]:
            head = str(r["reason"]).split(":")[0]
            counts[head] = counts.get(head, 0) + 1
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def run_rewrites(
    store: RunStore,
    settings: RewriteSettings,
    *,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
) -> RewriteSummary:
    """Rewrite the sample with every transform of ``settings``; write ``rewrites`` and the manifest."""
    t0 = time.perf_counter()
    pairs = store.read_pairs()
    selected = select_pairs(pairs, settings.sample, settings.seed)
    if not selected:
        raise SealError(f"{store.root}: no pairs to rewrite")
    units = [_Unit(p, s, settings.scope) for p in selected for s in settings.sides]
    rows: list[dict[str, Any]] = []
    infos: dict[str, dict[str, Any]] = {}
    for spec in settings.transforms:
        if spec.needs_lm:
            assert settings.llm is not None
            new, infos[spec.name] = _lm_rows(store, spec, units, settings.llm, settings.max_cost, progress)
        else:
            new = _controlled_rows(spec, units)
            infos[spec.name] = {}
            if progress is not None:
                progress(spec.name, len(units), len(units))
        rows.extend(new)

    ok = [r for r in rows if r["status"] == "ok"]
    gate = DriftGate(settings.embed_spec, embedder=embedder, cache=store.cache)
    sims = gate.similarities([r["original"] for r in ok], [r["rewritten"] for r in ok])
    for r, s in zip(ok, sims, strict=True):
        r["similarity"] = s
        r["drifted"] = bool(s < settings.drift_threshold)

    new_df = pd.DataFrame(rows, columns=COLUMNS)
    names = [t.name for t in settings.transforms]
    if store.has_table(TABLE):
        old = store.read_table(TABLE)
        old = old[~old["transform"].isin(names)]
        new_df = pd.concat([old.reindex(columns=COLUMNS), new_df], ignore_index=True) if len(old) else new_df
    new_df["response_offset"] = new_df["response_offset"].astype("Int64")
    new_df["similarity"] = new_df["similarity"].astype("float64")
    new_df["drifted"] = new_df["drifted"].fillna(False).astype(bool)
    store.write_table(TABLE, new_df)

    docs: dict[str, Any] = store.read_json(TRANSFORMS_DOC) if store.has_json(TRANSFORMS_DOC) else {}
    for spec in settings.transforms:
        docs[spec.name] = {**spec.describe(), "scope": settings.scope}
    store.write_json(TRANSFORMS_DOC, docs)

    summaries = []
    for spec in settings.transforms:
        mine = [r for r in rows if r["transform"] == spec.name]
        good = [r for r in mine if r["status"] == "ok"]
        sim = [float(r["similarity"]) for r in good]
        info = infos[spec.name]
        n_failed = sum(r["status"] == "failed" for r in mine)
        status = "complete"
        if spec.needs_lm and settings.llm is not None:
            budget = str(info.get("stopped") or "").startswith(("max cost", "stop requested"))
            unsent = sum(r["status"] == "failed" and str(r["reason"]).startswith("not sent") for r in mine)
            status = settings.llm.stage_status(
                len(mine), n_failed - (unsent if budget else 0), budget_stop=budget
            )
        summaries.append(
            TransformSummary(
                name=spec.name,
                kind=spec.kind,
                scope=settings.scope,
                pairs=len(selected),
                rows=len(mine),
                ok=len(good),
                rejected=sum(r["status"] == "rejected" for r in mine),
                failed=sum(r["status"] == "failed" for r in mine),
                drifted=sum(bool(r["drifted"]) for r in good),
                mean_similarity=float(sum(sim) / len(sim)) if sim else float("nan"),
                lm_calls=int(info.get("lm_calls", 0)),
                lm_cached=int(info.get("lm_cached", 0)),
                cost_usd=float(info.get("cost_usd", 0.0)),
                stopped=info.get("stopped"),
                reasons=_reason_counts(mine),
                status=status,
                lm_info=dict(info.get("client") or {}),
            )
        )
    summary = RewriteSummary(len(selected), tuple(summaries), time.perf_counter() - t0)
    # per transform, the settings its stored rows were made with (a key of its own, so the pipeline's
    # record of the [rewrite] config section cannot overwrite it)
    recorded = store.manifest.stage(STAGE)
    runs = dict(recorded.options.get(MANIFEST_KEY) or {})
    for t in settings.transforms:
        runs[t.name] = {**settings.manifest_entry(), "transforms": [t.name], "kind": t.kind}
    earlier = dict(recorded.counters.get("transforms") or {})
    store.record_stage(
        STAGE,
        {
            "options": {**recorded.options, MANIFEST_KEY: runs},
            "pairs": len(selected),
            "status": _worst(s.status for s in summaries),
            "seconds": round(summary.seconds, 3),
            "transforms": earlier
            | {
                s.name: {
                    "kind": s.kind,
                    "scope": s.scope,
                    "ok": s.ok,
                    "rejected": s.rejected,
                    "failed": s.failed,
                    "drifted": s.drifted,
                    "mean_similarity": None if math.isnan(s.mean_similarity) else round(s.mean_similarity, 4),
                    "lm_calls": s.lm_calls,
                    "cost_usd": s.cost_usd,
                    "status": s.status,
                    "reasons": [[r, n] for r, n in s.reasons[:10]],
                    **({"client": dict(s.lm_info)} if s.lm_info else {}),
                }
                for s in summaries
            },
        },
    )
    return summary


def rewrite_run(
    store: RunStore,
    transforms: Sequence[str | TransformSpec],
    *,
    sample: float | int | None = None,
    seed: int = 0,
    scope: Scope = "response",
    sides: str | Sequence[str] | None = None,
    llm_settings: LLMSettings | None = None,
    embed_spec: str | None = None,
    drift_threshold: float = DEFAULT_DRIFT_THRESHOLD,
    max_cost: float | None = None,
    extra: Mapping[str, TransformSpec] | None = None,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
) -> RewriteSummary:
    """The REWRITE stage from plain arguments (the pipeline's and the CLI's entry point).

    ``transforms`` are registry names or specs; ``extra`` holds user transforms by name (from a
    config). ``embedder`` lets a caller share an already loaded embedding model.
    """
    settings = RewriteSettings(
        transforms=resolve_transforms(transforms, extra),
        sample=parse_sample(sample),
        seed=seed,
        scope=scope,
        sides=parse_sides(sides if sides is None or isinstance(sides, str) else tuple(sides)),
        drift_threshold=drift_threshold,
        embed_spec=embed_spec,
        llm=llm_settings,
        max_cost=max_cost,
    )
    return run_rewrites(store, settings, embedder=embedder, progress=progress)


def rewritten_items(
    store: RunStore,
    transforms: Sequence[str] | None = None,
    *,
    include_drifted: bool = True,
) -> list[RewriteItem]:
    """What to score and label for the robustness analysis: both sides of every pair whose rewrites
    (of the sides rewritten) were all accepted, under ``variant = transform``.

    The unchanged side of a one-sided rewrite is included with its original text, so that every
    pair has both sides under the variant (the content-addressed score cache makes it free).
    Drifted rewrites are included by default: stats excludes them, but counts and reports them.
    """
    if not store.has_table(TABLE):
        return []
    df = store.read_table(TABLE)
    if transforms is not None:
        df = df[df["transform"].isin(list(transforms))]
    if df.empty:
        return []
    pairs = {p.pair_id: p for p in store.read_pairs()}
    out: list[RewriteItem] = []
    # one pass over plain records (a pandas groupby + to_dict per pair cost seconds per run)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in df.to_dict(orient="records"):
        groups.setdefault((str(r["transform"]), str(r["pair_id"])), []).append(
            {str(k): v for k, v in r.items()}
        )
    for (transform, pair_id), group in sorted(groups.items()):
        pair = pairs.get(pair_id)
        if pair is None:
            continue
        if any(r["status"] != "ok" for r in group):
            continue
        if not include_drifted and any(_true(r.get("drifted")) for r in group):
            continue
        by_side = {str(r["side"]): r for r in group}
        for side in SIDES:
            row = by_side.get(side)
            if row is None:
                out.append(
                    RewriteItem(
                        str(pair_id), side, str(transform), pair.context_for(side), pair.response(side), False
                    )
                )
                continue
            text = str(row["rewritten"])
            offset = row.get("response_offset")
            if offset is None or pd.isna(offset):
                context, response = pair.context_for(side), text
            else:
                context, response = text[: int(offset)], text[int(offset) :]
            out.append(RewriteItem(str(pair_id), side, str(transform), context, response, True))
    return out


def _true(value: Any) -> bool:
    """A nullable boolean cell as ``fillna(False).astype(bool)`` reads it."""
    return value is not None and not bool(pd.isna(value)) and bool(value)
