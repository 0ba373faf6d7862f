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


class RunManifest(BaseModel):
    """What a run directory contains and how it was made; written to ``manifest.json``.

    Not frozen: the store updates it as stages finish, always rewriting the file atomically.
    """

    model_config = ConfigDict(extra="allow")

    seal_audit_version: str
    created: str
    updated: str
    inputs: list[InputRecord] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    stages: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per stage: settings hash, finished time, counts, timings."""
