"""Typed, frozen records shared by every stage.

Records are pydantic models with ``frozen=True`` so that a value read from the store cannot be
mutated by one stage behind another's back, and so that they validate on construction (bad input is
caught where it enters, not three stages later).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Side = Literal["chosen", "rejected"]
SIDES: tuple[Side, Side] = ("chosen", "rejected")

FeatureKind = Literal["binary", "ordinal", "numeric"]
FeatureRole = Literal["target", "spoiler"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def text_hash(text: str) -> str:
    """SHA-256 of a text: the key under which per-text results are cached."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_pair_id(context: str, chosen: str, rejected: str, rejected_context: str | None = None) -> str:
    """A pair id derived from content only, so it is stable across runs and row order.

    The three (or four) strings are JSON-encoded together before hashing so that moving text
    between fields always changes the id.
    """
    payload = json.dumps([context, chosen, rejected, rejected_context], ensure_ascii=False)
    return "p" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def context_group_id(context: str) -> str:
    """The default group of a pair: a hash of its context, so pairs that share a prompt share a group."""
    return "g" + hashlib.sha256(context.encode("utf-8")).hexdigest()[:16]


class SourceRef(_Frozen):
    """Where a pair came from, so every error and every row can be traced back."""

    path: str
    """File path or dataset id (``hf:owner/name[:subset]:split``)."""
    record: int
    """1-based record number in that source (line of a JSONL file, row of a table)."""
    variant: tuple[int, int] | None = None
    """For multi-variant records: the (chosen index, rejected index) expanded into this pair."""


class PreferencePair(_Frozen):
    """One human preference: a context and two final responses, chosen preferred to rejected."""

    pair_id: str
    """Stable id: the input's own id column when present, else a hash of the content."""
    context: str
    """The conversation before the final responses (for hh-rlhf: up to the last 'Assistant:')."""
    chosen: str
    """The response the human preferred (for hh-rlhf it starts with 'Assistant:')."""
    rejected: str
    """The response the human rejected."""
    rejected_context: str | None = None
    """The rejected transcript's own context, set only when it differs from ``context``."""
    context_diverges: bool = False
    """True when the chosen and rejected transcripts have different contexts (kept, flagged)."""
    source: SourceRef
    """File / dataset and record number this pair was read from."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """The input record's extra columns, kept verbatim (JSON-serialisable values)."""
    group_id: str = ""
    """Pairs that share a prompt share a group (the multi-variant record, a user column, else the
    context's hash, filled in when not given): splits are drawn and CIs clustered by group, since
    pairs of one prompt are not independent."""

    @model_validator(mode="before")
    @classmethod
    def _default_group(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("group_id") and isinstance(data.get("context"), str):
            return {**data, "group_id": context_group_id(data["context"])}
        return data

    def context_for(self, side: Side) -> str:
        """The context that precedes ``side``'s response (differs only for diverging pairs)."""
        if side == "rejected" and self.rejected_context is not None:
            return self.rejected_context
        return self.context

    def response(self, side: Side) -> str:
        return self.chosen if side == "chosen" else self.rejected

    def transcript(self, side: Side) -> str:
        """Context followed by the response: the full text an LM-labeler or rewriter sees."""
        return self.context_for(side) + self.response(side)


class Score(_Frozen):
    """The reward one RM gave one text."""

    pair_id: str
    side: Side
    rm: str
    """The RM's name in this run (e.g. ``pre``, ``post``, ``length_chars``)."""
    reward: float
    n_tokens: int | None = None
    truncated: bool = False
    variant: str = "original"
    """``original`` or the name of the rewrite transform whose text was scored."""


class FeatureSpec(_Frozen):
    """A feature of a text that SEAL regresses rewards on."""

    name: str
    kind: FeatureKind
    role: FeatureRole
    """``target``: a value D is meant to teach; ``spoiler``: learned inadvertently."""
    definition: str = ""
    """What the feature means, in words an LM-labeler or a reader can apply."""
    levels: tuple[str, ...] | None = None
    """For ordinal features: the level names, lowest first (mapped to numbers by ``level_values``)."""
    level_values: tuple[float, ...] | None = None
    """Numeric value of each level (default 0, 1, 2, ...); SEAL's sentiment uses -1, 0, +1."""
    source: str = "lm"
    """Which featurizer produces it (``lm``, an offline featurizer's name, ``column``)."""
    scope: Literal["response", "conversation"] = "response"
    """Whether the feature describes the last response or the whole conversation."""
    in_regression: bool = True
    """False for descriptive features (lists, collinear conversation-level keys)."""
    list_valued: bool = False
    """True for list features (topics, groups): stored, described, never regressed."""


class FeatureLabel(_Frozen):
    """One feature value of one text."""

    pair_id: str
    side: Side
    feature: str
    value: float | None
    featurizer: str
    status: Literal["ok", "failed"] = "ok"
    variant: str = "original"
    error: str | None = None


class Rewrite(_Frozen):
    """A rewritten text of one side of one pair."""

    pair_id: str
    side: Side
    transform: str
    original: str
    rewritten: str | None
    status: Literal["ok", "rejected", "failed"]
    reason: str | None = None
    similarity: float | None = None
    drifted: bool = False


class InputRecord(_Frozen):
    """An input file or dataset of a run, with a hash of its bytes so a changed input is noticed."""

    path: str
    sha256: str | None
    format: str


RMRole = Literal["pre", "post", "baseline", "extra"]
"""What an RM is in the audit: ``pre``-D (not trained on D), ``post``-D (trained on D), a
``baseline`` (agreement and calibration only), or an ``extra`` RM. Always stated, never inferred."""
RM_ROLES: tuple[RMRole, ...] = ("pre", "post", "baseline", "extra")

StageStatus = Literal["complete", "partial", "stopped", "failed"]

MANIFEST_SCHEMA_VERSION = 2
"""Version of manifest.json's shape. 1 (seal-audit 0.1 before the typed core) had an untyped
``settings`` dict and is migrated on read; a newer version than this is refused."""


class StageRecord(BaseModel):
    """One stage's section of the manifest: the options it ran with, its status and counters.

    The same shape whichever verb wrote it (``seal score`` or ``seal run``)."""

    model_config = ConfigDict(extra="forbid")

    status: StageStatus = "complete"
    """``complete``; ``partial`` when some texts failed within the allowed limit; ``stopped`` when a
    budget (``max_cost``) ended it early (run again to continue); ``failed``."""
    options: dict[str, Any] = Field(default_factory=dict)
    """The stage's options record as written by its options model (``model_dump(mode="json")``)."""
    counters: dict[str, Any] = Field(default_factory=dict)
    """What the stage did: counts, per-RM / per-featurizer summaries, timings of parts."""
    message: str | None = None
    """Why the stage is partial or failed (one line), or a note the user should see."""
    settings_hash: str | None = None
    """Hash of what the stage's stored output depends on; a later run with the same hash skips it."""
    verb: str | None = None
    """The command that last ran the stage (``seal score``, ``seal run`` ...)."""
    finished: str | None = None
    seconds: float | None = None


class RMRecord(BaseModel):
    """One reward model of the run as scored: what was loaded, its role, and how it was run."""

    model_config = ConfigDict(extra="forbid")

    spec: str
    """What was loaded (``hf:ID``, a directory, ``local:DIR``, ``python:mod:fn``, ``length_chars`` ...)."""
    role: RMRole = "extra"
    options: dict[str, Any] = Field(default_factory=dict)
    """The RM options record it was scored with (format, max_length, logit_index, dtype ...)."""
    identity: dict[str, Any] = Field(default_factory=dict)
    """What the backend resolved: model class, resolved revision, tokenizer, dtype, device ..."""
    in_sample: bool | None = None
    """True when this RM was trained on D here (``[[train_rm]]`` with data A+D): its agreement on D
    is a training accuracy. None when unknown (an RM brought by the user)."""


class RunManifest(BaseModel):
    """What a run directory contains and how it was made; written to ``manifest.json``.

    Not frozen: the store updates it as stages finish, always rewriting the file atomically.
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: int = MANIFEST_SCHEMA_VERSION
    seal_audit_version: str
    created: str
    updated: str
    inputs: list[InputRecord] = Field(default_factory=list)
    seed: int | None = None
    config: dict[str, Any] | None = None
    """The whole AuditConfig (``seal run``), when the run was made from one."""
    rms: dict[str, RMRecord] = Field(default_factory=dict)
    """Every RM scored in this run, by name, with its explicit role."""
    stages: dict[str, StageRecord] = Field(default_factory=dict)
    """One section per stage: load, train, score, label, rewrite, analyze, report."""

    def role_of(self, role: RMRole) -> str | None:
        """The name of the RM with this role (pre / post), if one was given."""
        return next((n for n, r in self.rms.items() if r.role == role), None)

    def names_with_role(self, role: RMRole) -> tuple[str, ...]:
        return tuple(n for n, r in self.rms.items() if r.role == role)

    def stage(self, name: str) -> StageRecord:
        """The stage's section (an empty, never-run record when the stage has not run)."""
        return self.stages.get(name) or StageRecord(status="complete")


_STAGE_FIELDS = ("status", "options", "message", "settings_hash", "verb", "finished", "seconds")

STAGE_FAILURE_COUNTERS: tuple[str, ...] = ("failed_rms", "failed_rows")
"""Counters that list or count what failed in one run of a stage (score's RMs that did not load, the
label stage's failed rows). Like ``status`` and ``message`` they are an outcome: a record
that states a status replaces them, so they never describe an earlier run."""


def stage_record(info: dict[str, Any], earlier: StageRecord | None = None) -> StageRecord:
    """Merge a stage's info dict into its record: the record's own fields by name, every other key
    into ``counters`` (so a stage can report any count without a schema change).

    An info that states ``status`` is the outcome of THIS run of the stage: its ``message`` and its
    failure counters (``STAGE_FAILURE_COUNTERS``) replace the earlier record's, and one it does not
    state is cleared -- a rerun that succeeds must not keep the last run's ``partial``, its message
    or its list of failed RMs. An info without ``status`` adds to the record of the run in progress
    and keeps its outcome: a stage is recorded in more than one step (its own record, then the
    pipeline's ``seconds``, then the label options). Options, settings_hash, verb and the other
    counters merge key by key in both cases, because some describe more than the last run on purpose:
    a resumed stage's finished parts (train's ``models``, rewrite's ``transforms``, each merged by
    its caller) and the run's ``options`` that a later verb (``seal rewrite``) reads back."""
    base = earlier.model_dump(mode="json") if earlier is not None else {}
    counters = dict(base.get("counters", {}))
    out = {k: v for k, v in base.items() if k != "counters"}
    if "status" in info:
        out.pop("message", None)
        for key in STAGE_FAILURE_COUNTERS:
            counters.pop(key, None)
    for key, value in info.items():
        if key in _STAGE_FIELDS:
            out[key] = value
        else:
            counters[key] = value
    out["counters"] = counters
    return StageRecord.model_validate(out)


def migrate_manifest(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Bring an older manifest.json to the current shape (or refuse one from a newer seal-audit)."""
    from seal_audit.data.errors import SealError

    version = data.get("schema_version", 1)
    if not isinstance(version, int) or version > MANIFEST_SCHEMA_VERSION:
        raise SealError(
            f"{source}: manifest schema_version {version!r} is newer than this seal-audit understands "
            f"({MANIFEST_SCHEMA_VERSION}); upgrade seal-audit to read this run"
        )
    if version == MANIFEST_SCHEMA_VERSION:
        return data
    # version 1: an untyped ``settings`` dict and free-form stage dicts
    out: dict[str, Any] = {
        k: data[k] for k in ("seal_audit_version", "created", "updated", "inputs", "seed") if k in data
    }
    settings = dict(data.get("settings") or {})
    rms: dict[str, Any] = {}
    for name, e in dict(settings.get("rms") or {}).items():
        if isinstance(e, dict) and e.get("spec"):
            role = e.get("role") if e.get("role") in RM_ROLES else "extra"
            ident = dict(e.get("identity") or {})
            opts = {
                k: ident.get(k, e.get(k))
                for k in ("format", "revision")
                if ident.get(k, e.get(k)) is not None
            }
            rms[str(name)] = {"spec": str(e["spec"]), "role": role, "identity": ident, "options": opts}
    stages: dict[str, Any] = {}
    for name, info in dict(data.get("stages") or {}).items():
        if isinstance(info, dict):
            stages[str(name)] = stage_record(dict(info)).model_dump(mode="json")
    for key, stage in (
        ("label", "label"),
        ("labels", "label"),
        ("load", "load"),
        ("rewrite_runs", "rewrite"),
    ):
        if isinstance(settings.get(key), dict):
            rec = stages.setdefault(stage, StageRecord().model_dump(mode="json"))
            rec["options"] = {
                **rec.get("options", {}),
                **({"transforms": settings[key]} if stage == "rewrite" else settings[key]),
            }
    if "data" in settings:
        rec = stages.setdefault("load", StageRecord().model_dump(mode="json"))
        rec["options"] = {
            **rec.get("options", {}),
            "sources": settings["data"],
            "holdout": settings.get("holdout", 0.0),
        }
    out.update(schema_version=MANIFEST_SCHEMA_VERSION, rms=rms, stages=stages)
    if isinstance(settings.get("config"), dict):
        out["config"] = settings["config"]
    return out
