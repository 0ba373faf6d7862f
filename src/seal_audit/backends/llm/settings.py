"""Settings of an OpenAI-compatible chat endpoint, and the cost helpers used for estimates.

The options model itself (``LLMSettings``) and the price table live in ``seal_audit.data.llm_options``
so that the run config can validate ``[labels.lm]`` / ``[rewrite.lm]`` straight into it (``config``
sits below ``backends``); they are re-exported here for the backend's callers.
"""

from __future__ import annotations

import math
from typing import Any

from seal_audit.data.llm_options import (
    BUILTIN_PRICES,
    DIALECTS,
    PRICES_DATE,
    LLMSettings,
    ModelPrice,
    ResponseFormatMode,
    lookup_price,
)

__all__ = [
    "BATCH_DISCOUNT",
    "BUILTIN_PRICES",
    "CHARS_PER_TOKEN",
    "DIALECTS",
    "PRICES_DATE",
    "LLMSettings",
    "ModelPrice",
    "ResponseFormatMode",
    "cost_usd",
    "estimate_tokens",
    "lookup_price",
    "settings_from_config",
]

BATCH_DISCOUNT = 0.5
"""OpenAI's Batch API bills half the standard price."""

CHARS_PER_TOKEN = 4.0
"""Estimate heuristic: ~4 characters of English per token (OpenAI's rule of thumb). Only used for
estimates before a run and when an endpoint reports no usage; actual usage is preferred."""


def estimate_tokens(text: str) -> int:
    """Token estimate by the chars/4 heuristic (no tokenizer download needed, any model)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def cost_usd(price: ModelPrice | None, tokens_in: int, tokens_out: int, *, batch: bool = False) -> float:
    """Cost of one call (0 when the price is unknown; callers check ``price`` for that case)."""
    if price is None:
        return 0.0
    c = (tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok) / 1e6
    return c * (BATCH_DISCOUNT if batch else 1.0)


def settings_from_config(cfg: Any) -> LLMSettings:
    """The config's ``[labels.lm]`` / ``[rewrite.lm]`` section, which already is an ``LLMSettings``
    (kept as a function so the pipeline maps config to backend in one place)."""
    if isinstance(cfg, LLMSettings):
        return cfg
    return LLMSettings.model_validate(cfg)
