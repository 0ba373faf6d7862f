"""The Featurizer protocol, the items it labels, the rows it returns, and the registry.

A featurizer is anything that turns texts into feature values. Items are plain (pair_id, side,
variant, context, response) records rather than pairs, so the rewrite stage can label rewritten
texts with the very same featurizers without building fake pairs.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from seal_audit.data.errors import ConfigError
from seal_audit.data.llm_options import StageStatus
from seal_audit.data.records import FeatureLabel, FeatureSpec, Side

if TYPE_CHECKING:
    from seal_audit.store.run_store import RunStore

_MARKER = "Assistant:"


@dataclass(frozen=True, slots=True)
class LabelItem:
    """One text to label: a response in its context."""

    pair_id: str
    side: Side
    context: str
    response: str
    variant: str = "original"
    meta: Mapping[str, Any] = field(default_factory=dict)
    """The pair's extra input columns (for dataset-column features)."""
    index: int | None = None
    """This side's response index within a multi-response source record, when known."""

    @property
    def transcript(self) -> str:
        """Context + response: what the LM-labeler reads."""
        return self.context + self.response

    @property
    def final_response(self) -> str:
        """The response without a leading ``Assistant:`` marker: what offline featurizers read."""
        text = self.response.lstrip()
        if text.startswith(_MARKER):
            text = text[len(_MARKER) :]
        return text.strip()


@dataclass(frozen=True, slots=True)
class LabelRow:
    """One value of one feature of one text (a row of the long ``features`` table)."""

    pair_id: str
    side: Side
    variant: str
    feature: str
    value: float
    """NaN when the text failed or the value is missing."""
    featurizer: str
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None
    items: tuple[str, ...] | None = None
    """For list-valued features: the list (``value`` is its length)."""

    def to_record(self) -> FeatureLabel:
        return FeatureLabel(
            pair_id=self.pair_id,
            side=self.side,
            feature=self.feature,
            value=None if math.isnan(self.value) else self.value,
            featurizer=self.featurizer,
            status=self.status,
            variant=self.variant,
            error=self.error,
        )


def failed_rows(item: LabelItem, specs: Sequence[FeatureSpec], featurizer: str, error: str) -> list[LabelRow]:
    """Rows recording that a text could not be labeled (kept, so nothing is silently dropped)."""
    return [
        LabelRow(item.pair_id, item.side, item.variant, s.name, math.nan, featurizer, "failed", error)
        for s in specs
    ]


@dataclass(frozen=True, slots=True)
class Progress:
    """A progress update; counts are texts, cumulative for this featurizer."""

    featurizer: str
    total: int
    done: int
    failed: int
    cached: int
    cost_usd: float = 0.0


@dataclass
class LabelContext:
    """What a featurizer may use besides the items: the run store (cache, logs), a progress
    callback and a stop flag. Offline featurizers ignore all of it."""

    store: RunStore | None = None
    on_progress: Callable[[Progress], None] | None = None
    stop: threading.Event | None = None

    def progress(self, p: Progress) -> None:
        if self.on_progress is not None:
            self.on_progress(p)


@dataclass(frozen=True, slots=True)
class FeaturizerOutcome:
    """What one featurizer produced for a set of items."""

    featurizer: str
    rows: tuple[LabelRow, ...]
    n_texts: int
    n_failed: int
    n_cached: int = 0
    cost_usd: float = 0.0
    stopped: bool = False
    stop_reason: str | None = None
    status: StageStatus = "complete"
    """``complete`` (failures within the allowance), ``partial`` (too many failed texts),
    ``failed`` (none labeled), ``stopped`` (the cost budget or a stop request ended it)."""
    reasons: tuple[tuple[str, int], ...] = ()
    """Why texts failed, most frequent first: (reason, texts)."""
    info: Mapping[str, Any] = field(default_factory=dict)
    """What the LM client learned and did (response format, server slots, requests, resends)."""

    @property
    def over_limit(self) -> bool:
        """True when the stage did not do its work (the command must exit non-zero)."""
        return self.status in ("partial", "failed")


def reason_counts(errors: Iterable[str], top: int | None = None) -> tuple[tuple[str, int], ...]:
    """(reason, count) most frequent first; a reason is the error's first line, cut at 160 chars."""
    c = Counter(e.splitlines()[0][:160] if e else "unknown error" for e in errors)
    return tuple(c.most_common(top))


def describe_reasons(reasons: Sequence[tuple[str, int]], top: int = 3) -> str:
    """``60x HTTP 500: ...; 2x invalid reply ...`` (the terminal line under a failed stage)."""
    return "; ".join(f"{n}\u00d7 {r}" for r, n in reasons[:top])


@runtime_checkable
class Featurizer(Protocol):
    """Produces the features in ``specs()`` for every item; never drops an item (a failure is a
    row with status ``failed``)."""

    name: str

    def specs(self) -> Sequence[FeatureSpec]: ...

    def label(self, items: Sequence[LabelItem], ctx: LabelContext) -> FeaturizerOutcome: ...


FeaturizerFactory = Callable[..., Featurizer]


@dataclass(frozen=True)
class _Entry:
    factory: FeaturizerFactory
    description: str
    offline: bool


_REGISTRY: dict[str, _Entry] = {}


def register_featurizer(
    name: str, *, description: str, offline: bool = False
) -> Callable[[FeaturizerFactory], FeaturizerFactory]:
    """Register a featurizer factory under ``name`` (``seal label --featurizer NAME``)."""

    def deco(factory: FeaturizerFactory) -> FeaturizerFactory:
        _REGISTRY[name] = _Entry(factory, description, offline)
        return factory

    return deco


def _ensure_builtins() -> None:
    # Importing the modules registers their featurizers; done lazily so importing `base` is cheap.
    from seal_audit.features import columns, lm, offline  # noqa: F401


def available_featurizers() -> dict[str, str]:
    """Registered featurizer names and one-line descriptions (``offline`` = every offline one)."""
    _ensure_builtins()
    out = {n: e.description for n, e in sorted(_REGISTRY.items())}
    out["offline"] = "all offline featurizers: " + ", ".join(offline_featurizer_names())
    from seal_audit.features.plugins import describe_entry_points

    for n, d in describe_entry_points().items():  # installed plug-ins (entry points), not imported
        out.setdefault(n, d)
    return out


def offline_featurizer_names() -> list[str]:
    _ensure_builtins()
    return sorted(n for n, e in _REGISTRY.items() if e.offline)


def get_featurizer(name: str, **options: Any) -> Featurizer:
    """Build a registered featurizer; options go to its factory (e.g. ``settings`` for ``lm``).

    A name that is not built in may be a plug-in: ``python:module:Attr`` or an installed entry point
    of the ``seal_audit.featurizers`` group (``features/plugins.py``)."""
    _ensure_builtins()
    entry = _REGISTRY.get(name)
    if entry is None:
        from seal_audit.features.plugins import entry_points, load_plugin

        plugin = load_plugin(name, set(_REGISTRY) | {"offline"})  # python:module:Attr or an entry point
        if plugin is not None:
            return plugin
        known = ", ".join(sorted([*_REGISTRY, "offline", *entry_points()]))
        raise ConfigError(
            f"unknown featurizer '{name}' (known: {known}; or python:MODULE:ATTR, or an installed "
            "'seal_audit.featurizers' entry point)"
        )
    return entry.factory(**options)
