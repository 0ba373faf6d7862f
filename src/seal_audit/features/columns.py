"""Dataset-column features: labels the dataset already carries (PKU-SafeRLHF's per-response safety
flags, HelpSteer's attribute scores) become features without any model.

Values come from ``PreferencePair.meta`` (the input record's extra columns). A mapping names, per
feature, the column of the chosen and of the rejected response; ``{index}`` in a column name is
replaced by the side's response index in multi-response records (``is_response_{index}_safe``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from seal_audit.data.errors import ConfigError
from seal_audit.data.llm_options import MAX_FAILED_DEFAULT, failure_status
from seal_audit.data.records import FeatureSpec
from seal_audit.features.base import (
    FeaturizerOutcome,
    LabelContext,
    LabelItem,
    LabelRow,
    Progress,
    reason_counts,
    register_featurizer,
)
from seal_audit.features.specs import ColumnSource

_TRUE = {"true", "yes", "y", "1", "safe", "t"}
_FALSE = {"false", "no", "n", "0", "unsafe", "f"}


def coerce_column_value(raw: Any, spec: FeatureSpec) -> float:
    """A column value as a number for ``spec``; ValueError (naming the value) when impossible."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        raise ValueError("value is missing")
    if spec.kind == "binary":
        if isinstance(raw, bool):
            return 1.0 if raw else 0.0
        if isinstance(raw, (int, float)) and raw in (0, 1):
            return float(raw)
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return 1.0 if raw.strip().lower() in _TRUE else 0.0
        raise ValueError(f"{raw!r} is not a binary value (true/false, 1/0, yes/no)")
    if spec.kind == "ordinal" and spec.levels and isinstance(raw, str):
        low = [lv.lower() for lv in spec.levels]
        if raw.strip().lower() in low:
            i = low.index(raw.strip().lower())
            return float(spec.level_values[i]) if spec.level_values else float(i)
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{raw!r} is not a number") from None


@dataclass
class ColumnFeaturizer:
    """Features read from input columns; a missing or bad value fails that text and says why."""

    feature_specs: tuple[FeatureSpec, ...]
    columns: Mapping[str, ColumnSource]
    name: str = "columns"
    max_failed: float = field(default=MAX_FAILED_DEFAULT, kw_only=True)
    """Texts with a missing or bad value tolerated (a count, or a fraction in (0, 1)); more makes
    the status ``partial`` (``failed`` when none had one), as for the LM-labeler's ``--max-failed``."""

    def __post_init__(self) -> None:
        missing = [s.name for s in self.feature_specs if s.name not in self.columns]
        if missing:
            raise ConfigError(f"column features without a column mapping: {', '.join(missing)}")

    def specs(self) -> Sequence[FeatureSpec]:
        return self.feature_specs

    def _value(self, item: LabelItem, spec: FeatureSpec) -> float:
        """The feature's value from the item's input columns; ValueError says what is wrong."""
        src = self.columns[spec.name]
        col = src.chosen if item.side == "chosen" else src.rejected
        if "{index}" in col:
            if item.index is None:
                raise ValueError(f"column '{col}' needs a response index, this pair has none")
            col = col.replace("{index}", str(item.index))
        if col not in item.meta:
            raise ValueError(f"input column '{col}' is missing for this pair")
        try:
            return coerce_column_value(item.meta[col], spec)
        except ValueError as exc:
            raise ValueError(f"column '{col}': {exc}") from None

    def check_columns(self, items: Sequence[LabelItem]) -> None:
        """A mapped column that no pair has is a misspelling, not missing data: one error naming it
        and the columns there are (before, every text failed quietly and the stage exited 0)."""
        for spec in self.feature_specs:
            src = self.columns[spec.name]
            for side, col in (("chosen", src.chosen), ("rejected", src.rejected)):
                on_side = [it for it in items if it.side == side]
                if "{index}" in col or not on_side or any(col in it.meta for it in on_side):
                    continue
                have = sorted({k for it in items for k in it.meta})
                listed = ", ".join(have[:30]) + (f" (+{len(have) - 30} more)" if len(have) > 30 else "")
                raise ConfigError(
                    f"column feature '{spec.name}': input column '{col}' ({side}) is in no pair; "
                    f"the pairs' input columns are: {listed or '(none)'}"
                )

    def label(self, items: Sequence[LabelItem], ctx: LabelContext) -> FeaturizerOutcome:
        self.check_columns(items)
        rows: list[LabelRow] = []
        errors: list[str] = []
        failed_texts = 0
        for item in items:
            any_failed = False
            for spec in self.feature_specs:
                try:
                    v = self._value(item, spec)
                except ValueError as exc:
                    rows.append(
                        LabelRow(
                            item.pair_id,
                            item.side,
                            item.variant,
                            spec.name,
                            math.nan,
                            self.name,
                            "failed",
                            str(exc),
                        )
                    )
                    if not any_failed:
                        errors.append(str(exc))
                    any_failed = True
                    continue
                rows.append(LabelRow(item.pair_id, item.side, item.variant, spec.name, v, self.name))
            failed_texts += any_failed
        ctx.progress(Progress(self.name, len(items), len(items), failed_texts, 0))
        return FeaturizerOutcome(
            self.name,
            tuple(rows),
            len(items),
            failed_texts,
            status=failure_status(len(items), failed_texts, self.max_failed),
            reasons=reason_counts(errors),
        )


def column_specs_from_mapping(
    mapping: Mapping[str, Mapping[str, str] | str],
    *,
    kind: str = "numeric",
    role: str = "target",
) -> tuple[tuple[FeatureSpec, ...], dict[str, ColumnSource]]:
    """Specs and sources from a plain ``{feature: {"chosen": col, "rejected": col}}`` mapping (the
    kind/role default applies to all; use a TOML feature file to set them per feature)."""
    specs: list[FeatureSpec] = []
    sources: dict[str, ColumnSource] = {}
    for feat, cols in mapping.items():
        src = (
            ColumnSource(chosen=cols, rejected=cols)
            if isinstance(cols, str)
            else ColumnSource.model_validate(dict(cols))
        )
        sources[feat] = src
        specs.append(
            FeatureSpec.model_validate(
                {
                    "name": feat,
                    "kind": kind,
                    "role": role,
                    "source": "column",
                    "definition": f"input columns {src.chosen} / {src.rejected}",
                }
            )
        )
    return tuple(specs), sources


@register_featurizer("columns", description="features copied from input data columns (no model)")
def make_columns(
    specs: Sequence[FeatureSpec] = (),
    columns: Mapping[str, ColumnSource] | None = None,
    mapping: Mapping[str, Mapping[str, str] | str] | None = None,
) -> ColumnFeaturizer:
    """From explicit specs + sources (a TOML feature file) or a plain ``mapping``."""
    if mapping is not None:
        m_specs, m_cols = column_specs_from_mapping(mapping)
        return ColumnFeaturizer(tuple(specs) + m_specs, {**(columns or {}), **m_cols})
    if not specs:
        raise ConfigError(
            "the 'columns' featurizer needs column features (source = \"column\" in --features-toml)"
        )
    return ColumnFeaturizer(tuple(specs), dict(columns or {}))
