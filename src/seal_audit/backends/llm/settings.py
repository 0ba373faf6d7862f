"""Settings of an OpenAI-compatible chat endpoint, and the price table used for cost estimates.

The settings hold the *name* of the environment variable with the API key, never the key, so they
can be written to the run manifest and hashed into cache keys without leaking a secret.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from seal_audit.data.errors import ConfigError

ResponseFormatMode = Literal["auto", "json_schema", "json_object", "none"]

PRICES_DATE = "2025-04-14"
"""When the built-in prices were last checked against OpenAI's public price list. Prices change:
pass your own (``LLMSettings.price`` / ``--price-in/--price-out``) for anything that matters."""


class ModelPrice(BaseModel):
    """USD per million tokens, input and output."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


BUILTIN_PRICES: dict[str, ModelPrice] = {
    # model: (input, output) USD / 1M tokens, standard (non-batch) tier, as of PRICES_DATE.
    "gpt-4-turbo-2024-04-09": ModelPrice(input_per_mtok=10.0, output_per_mtok=30.0),
    "gpt-4-turbo": ModelPrice(input_per_mtok=10.0, output_per_mtok=30.0),
    "gpt-4o": ModelPrice(input_per_mtok=2.5, output_per_mtok=10.0),
    "gpt-4o-mini": ModelPrice(input_per_mtok=0.15, output_per_mtok=0.6),
    "gpt-4.1": ModelPrice(input_per_mtok=2.0, output_per_mtok=8.0),
    "gpt-4.1-mini": ModelPrice(input_per_mtok=0.4, output_per_mtok=1.6),
    "gpt-4.1-nano": ModelPrice(input_per_mtok=0.1, output_per_mtok=0.4),
    "gpt-3.5-turbo": ModelPrice(input_per_mtok=0.5, output_per_mtok=1.5),
}
"""A small built-in table so that estimates for the common OpenAI models work out of the box."""

BATCH_DISCOUNT = 0.5
"""OpenAI's Batch API bills half the standard price."""

CHARS_PER_TOKEN = 4.0
"""Estimate heuristic: ~4 characters of English per token (OpenAI's rule of thumb). Only used for
estimates before a run and when an endpoint reports no usage; actual usage is preferred."""


def estimate_tokens(text: str) -> int:
    """Token estimate by the chars/4 heuristic (no tokenizer download needed, any model)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class LLMSettings(BaseModel):
    """How to reach and drive one chat endpoint. Hashable into cache keys (no secret inside)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    """Model name sent to the endpoint (e.g. ``gpt-4o-mini``, a vLLM served-model name)."""
    base_url: str = "https://api.openai.com/v1"
    """Any OpenAI-compatible endpoint root (ends in ``/v1`` for most servers)."""
    api_key_env: str | None = "OPENAI_API_KEY"
    """Name of the environment variable holding the key; None for servers that need no key."""
    concurrency: int = Field(default=8, ge=1, le=1024)
    """Most calls in flight at once."""
    timeout_s: float = Field(default=120.0, gt=0)
    """Per-HTTP-call timeout; a timeout is retried like a 5xx."""
    max_retries: int = Field(default=6, ge=0)
    """Retries of transient failures (429, 5xx, timeouts, connection errors) per call."""
    backoff_base_s: float = Field(default=1.0, ge=0)
    """First backoff delay; doubles per retry, with jitter, capped at ``backoff_max_s``."""
    backoff_max_s: float = Field(default=60.0, ge=0)
    max_repairs: int = Field(default=2, ge=0)
    """Follow-up turns asking the model to fix an invalid or incomplete reply, per text."""
    temperature: float = 0.0
    max_tokens: int | None = None
    response_format: ResponseFormatMode = "auto"
    """``auto``: try JSON-schema structured output, fall back to ``json_object`` then to plain text
    when the endpoint rejects it (remembered for the rest of the run)."""
    price: ModelPrice | None = None
    """Overrides the built-in price of ``model``; needed for ``max_cost`` on unknown models."""
    batch_api: bool = False
    """Use the OpenAI Batch API (half price, up to 24 h) instead of live calls."""
    batch_poll_s: float = Field(default=30.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _strip(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ConfigError(f"llm.base_url must start with http:// or https://, got {v!r}")
        return v.rstrip("/")

    def effective_price(self) -> ModelPrice | None:
        """The price used for cost figures: the override, else the built-in one, else unknown."""
        if self.price is not None:
            return self.price
        return lookup_price(self.model)

    def cache_settings(self) -> dict[str, object]:
        """The settings that change an answer (and so belong in a cache key); endpoint and
        concurrency do not -- the same model behind a different URL gives the same labels."""
        return {"model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens}


def lookup_price(model: str) -> ModelPrice | None:
    """Built-in price by exact name, else by the name without a provider prefix (``openai/``)."""
    if model in BUILTIN_PRICES:
        return BUILTIN_PRICES[model]
    bare = model.rsplit("/", 1)[-1]
    return BUILTIN_PRICES.get(bare)


def cost_usd(price: ModelPrice | None, tokens_in: int, tokens_out: int, *, batch: bool = False) -> float:
    """Cost of one call (0 when the price is unknown; callers check ``price`` for that case)."""
    if price is None:
        return 0.0
    c = (tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok) / 1e6
    return c * (BATCH_DISCOUNT if batch else 1.0)


def settings_from_config(cfg: Any) -> LLMSettings:
    """LLMSettings from the run config's ``[labels.lm]`` / ``[rewrite.lm]`` section (an object with
    model, base_url, api_key_env, concurrency, timeout, max_retries, prices {input, output},
    batch_api), so the pipeline maps config to backend in one place."""
    prices = getattr(cfg, "prices", None) or {}
    price = None
    if prices:
        if "input" not in prices or "output" not in prices:
            raise ConfigError("llm prices need both 'input' and 'output' (USD per 1M tokens)")
        price = ModelPrice(input_per_mtok=float(prices["input"]), output_per_mtok=float(prices["output"]))
    key_env = getattr(cfg, "api_key_env", "OPENAI_API_KEY")
    return LLMSettings(
        model=cfg.model,
        base_url=getattr(cfg, "base_url", "https://api.openai.com/v1"),
        api_key_env=None if not key_env or str(key_env).lower() == "none" else str(key_env),
        concurrency=getattr(cfg, "concurrency", 8),
        timeout_s=getattr(cfg, "timeout", 120.0),
        max_retries=getattr(cfg, "max_retries", 6),
        price=price,
        batch_api=bool(getattr(cfg, "batch_api", False)),
    )
