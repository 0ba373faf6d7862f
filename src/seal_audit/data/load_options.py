"""LoadOptions: the one record of how a preference source is read.

Why here: the TOML ``[[data]]`` table (config.py) and the CLI flags of every verb that loads data
(``_cli/_common.py``) are two surfaces of this model, and the loader (``seal_audit.sources``) reads
it. config.py sits below sources in the layer contract, so the model lives in ``data``, which both
may import. A default is therefore written exactly once, here; the CLI flag of a field is its name
with dashes (``prompt_col`` ↔ ``--prompt-col``) and its help is the field's docstring.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

Format = Literal["auto", "hh-rlhf", "pairs", "conversation", "multi-variant", "labelled", "seal"]
SplitRule = Literal["turn", "reference"]
OnError = Literal["raise", "skip"]
EmptyPolicy = Literal["keep", "drop", "error"]
TiePolicy = Literal["exclude", "keep"]

RENAMED_KEYS: dict[str, str] = {
    "prompt": "prompt_col",
    "chosen": "chosen_col",
    "rejected": "rejected_col",
    "id": "id_col",
}
"""Old ``[[data]]`` keys and their current names; the old ones are still read (mapped here)."""

COLUMN_FIELDS: tuple[str, ...] = (
    "prompt_col",
    "chosen_col",
    "rejected_col",
    "id_col",
    "group_col",
    "label_col",
    "a_col",
    "b_col",
)
"""Fields that name an input column: when set by the user, the column must exist in the file."""


class LoadOptions(BaseModel):
    """How to read one source; recorded in the run manifest so a load can be repeated exactly."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    format: Format = "auto"
    """Record shape; auto detects it from the first record (and the columns of the file)."""
    prompt_col: str = "prompt"
    """Column with the prompt/context (a string or a list of {role, content} messages)."""
    chosen_col: str = "chosen"
    """Column with the chosen response (or transcript, or message list)."""
    rejected_col: str = "rejected"
    """Column with the rejected response (or transcript, or message list)."""
    id_col: str | None = None
    """Column with the pair id (default: pair_id or id if present, else a content hash)."""
    group_col: str | None = None
    """Column whose value groups pairs (same prompt); default: the multi-variant record, else the
    context's hash."""
    label_col: str | None = None
    """Column saying which of two responses (--a-col, --b-col) the human preferred (Arena winner,
    SHP labels); the pairs are oriented chosen/rejected from it."""
    a_col: str | None = None
    """With --label-col: the column of response A."""
    b_col: str | None = None
    """With --label-col: the column of response B."""
    label_values: str | None = None
    """With --label-col: 'A,B[,TIE]' label values meaning A preferred, B preferred, tie (default:
    model_a/model_b/tie, a/b, 1/0)."""
    ties: TiePolicy = "exclude"
    """With --label-col: leave ties out (counted) or keep them (chosen = A) for a tie analysis."""
    empty: EmptyPolicy = "keep"
    """Empty final replies: keep and count them, drop them (counted), or stop with an error."""
    split_rule: SplitRule = "turn"
    """hh-rlhf split: last '\\n\\nAssistant:' turn marker, or last bare 'Assistant:' (the released
    SEAL code)."""
    limit: int | None = Field(default=None, ge=1)
    """Keep the first N pairs (after expansion of multi-variant records)."""
    sample: float | None = Field(default=None, gt=0)
    """Seeded random sample: a count N >= 1 or a fraction in (0, 1)."""
    seed: int = 0
    """Seed of --sample."""
    on_error: OnError = "raise"
    """Stop at the first bad record, or skip bad records into a quarantine file."""
    quarantine: Path | None = None
    """Where skipped records go, with their raw text and the reason (default: quarantine.jsonl beside
    the output)."""
    subset: str | None = None
    """Hugging Face dataset subset (for hf:NAME sources)."""
    split: str | None = None
    """Hugging Face dataset split (hf:NAME sources, save_to_disk DatasetDict folders, folders of
    split shards); default: the only split, and an error listing them when there are several."""

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        """Old TOML keys (``prompt``, ``chosen``, ...) still work; both spellings at once do not."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for old, new in RENAMED_KEYS.items():
            if old in out:
                if new in out:
                    raise ValueError(f"'{old}' was renamed to '{new}'; give only '{new}'")
                out[new] = out.pop(old)
        return out

    @field_validator("sample")
    @classmethod
    def _whole_or_fraction(cls, v: float | None) -> float | None:
        # 2.5 would silently become a sample of 2 and inf crashed the loader: say so up front, as the
        # rewrite sample does.
        if v is not None and (not math.isfinite(v) or (v >= 1 and v != int(v))):
            raise PydanticCustomError(
                "sample", "expected a whole count >= 1 or a fraction in (0, 1), got {value}", {"value": v}
            )
        return v

    @model_validator(mode="after")
    def _label_needs_columns(self) -> LoadOptions:
        if self.label_col is not None and (self.a_col is None or self.b_col is None):
            raise ValueError("label_col needs a_col and b_col (the two responses the label chooses between)")
        if self.label_values is not None:
            parts = [v.strip() for v in self.label_values.split(",")]
            if len(parts) not in (2, 3) or not all(parts):
                raise ValueError(f"label_values must be 'A,B' or 'A,B,TIE', got '{self.label_values}'")
        return self

    def set_columns(self) -> dict[str, str]:
        """Column options the user set explicitly (field → column); these must exist in the file."""
        out: dict[str, str] = {}
        for name in COLUMN_FIELDS:
            value = getattr(self, name)
            if name in self.model_fields_set and value is not None:
                out[name] = value
        return out


def flag(field: str) -> str:
    """The CLI flag of a LoadOptions field: ``prompt_col`` → ``--prompt-col``."""
    return "--" + field.replace("_", "-")
