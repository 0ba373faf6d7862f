"""The one options model of an LM endpoint: ``[labels.lm]``, ``[rewrite.lm]`` and the LM flags of
``seal label`` / ``seal rewrite`` all validate into ``LLMSettings``, so a default is written once.

It lives in ``data`` (the lowest layer) because both ``config`` and ``backends`` need it and
``config`` may not import ``backends``. The settings hold the *name* of the environment variable
with the API key, never the key, so they can be written to the run manifest and hashed into cache
keys without leaking a secret.

Every field carries its CLI spelling in ``json_schema_extra["cli"]`` (the historical flag names,
e.g. ``--timeout`` for ``timeout_s``); ``_cli._common.llm_options`` builds the click options from
the fields, and a test checks that the TOML and the CLI accept every field with the same default.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ResponseFormatMode = Literal[
    "auto", "json_schema", "json_object_schema", "json_object", "guided_json", "none"
]
"""How a reply's JSON schema is sent. ``json_schema``: OpenAI structured outputs (also vLLM and
llama.cpp's own ``llama-server``); ``json_object_schema``: ``{"type": "json_object", "schema": ...}``
(llama-cpp-python's server); ``guided_json``: vLLM's extra body field; ``json_object``: JSON mode
without a schema (Ollama, older servers); ``none``: nothing sent, the schema is only in the prompt
and invalid replies get repair turns. ``auto``: one small probe per endpoint per run settles it."""

StageStatus = Literal["complete", "partial", "failed", "stopped"]
"""``complete`` (failures within ``max_failed``), ``partial`` (too many failed texts), ``failed``
(none done), ``stopped`` (a cost budget or a stop request ended it; the next run continues)."""

DIALECTS: tuple[str, ...] = ("json_schema", "json_object_schema", "guided_json", "json_object", "none")
"""The dialects in the order ``auto`` tries them (most to least constrained)."""


MAX_FAILED_DEFAULT: float = 0
"""Failed texts a labeling or rewrite stage tolerates unless told otherwise (``--max-failed``, the
``max_failed`` key): none, so a stage that lost texts says so."""


def check_max_failed(v: float) -> float:
    """``max_failed`` is a whole count >= 0 or a fraction in (0, 1); ValueError says so."""
    if v < 0 or (v >= 1 and v != int(v)):
        raise ValueError("max_failed: a whole count >= 1, or a fraction in (0, 1)")
    return v


def failed_allowed(max_failed: float, n_texts: int) -> int:
    """How many of ``n_texts`` may fail before the stage counts as failed."""
    if 0 < max_failed < 1:
        return math.floor(max_failed * n_texts)
    return int(max_failed)


def failure_status(
    n_texts: int, n_failed: int, max_failed: float, *, budget_stop: bool = False
) -> StageStatus:
    """The status rule of every stage that labels or rewrites texts one by one (the LM-labeler and
    rewriter, the offline and column featurizers): more failed texts than ``max_failed`` allows is a
    failure -- ``failed`` when none succeeded -- whatever else happened; a budget or stop request
    that left texts unsent on purpose is ``stopped``."""
    if n_failed > failed_allowed(max_failed, n_texts):
        return "failed" if n_failed >= n_texts else "partial"
    return "stopped" if budget_stop else "complete"


class ModelPrice(BaseModel):
    """USD per million tokens, input and output."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


PRICES_DATE = "2025-04-14"
"""When the built-in prices were last checked against OpenAI's public price list. Prices change:
pass your own (``LLMSettings.price`` / ``--price-in/--price-out``) for anything that matters."""

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


def lookup_price(model: str) -> ModelPrice | None:
    """Built-in price by exact name, else by the name without a provider prefix (``openai/``)."""
    if model in BUILTIN_PRICES:
        return BUILTIN_PRICES[model]
    return BUILTIN_PRICES.get(model.rsplit("/", 1)[-1])


def _cli(flag: str, help: str, **extra: Any) -> dict[str, Any]:
    return {"cli": flag, "help": help, **extra}


class LLMSettings(BaseModel):
    """How to reach and drive one chat endpoint. Hashable into cache keys (no secret inside)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(json_schema_extra=_cli("--model", "Model name the endpoint serves."))
    """Model name sent to the endpoint (e.g. ``gpt-4o-mini``, a vLLM served-model name)."""
    base_url: str = Field(
        default="https://api.openai.com/v1",
        json_schema_extra=_cli("--base-url", "OpenAI-compatible endpoint root (ends in /v1)."),
    )
    """Any OpenAI-compatible endpoint root (ends in ``/v1`` for most servers)."""
    api_key_env: str | None = Field(
        default="OPENAI_API_KEY",
        json_schema_extra=_cli(
            "--api-key-env", "Environment variable holding the API key ('none' for a keyless server)."
        ),
    )
    """Name of the environment variable holding the key; None (or "none") for servers without one."""
    concurrency: int = Field(
        default=8,
        ge=1,
        le=1024,
        json_schema_extra=_cli(
            "--concurrency", "Most LM calls in flight (lowered to the server's slots when it says them)."
        ),
    )
    """Most calls in flight at once; capped by the server's own parallelism where it reports it
    (llama.cpp ``/props`` or ``/slots``), so requests never queue inside the server."""
    timeout_s: float = Field(
        default=120.0, gt=0, json_schema_extra=_cli("--timeout", "Seconds to wait for one LM reply.")
    )
    """Wait for one reply; after a timeout the call is re-sent once the backoff has passed, with a
    doubled timeout (a busy server gets more time, not more copies of the same work)."""
    connect_timeout_s: float = Field(
        default=3.0,
        gt=0,
        json_schema_extra=_cli("--connect-timeout", "Seconds to open a connection to the endpoint."),
    )
    max_retries: int = Field(
        default=6, ge=0, json_schema_extra=_cli("--max-retries", "Retries on 429/5xx/timeouts per call.")
    )
    """Retries of transient failures (429, 5xx, timeouts) per call; connection failures count
    towards ``breaker_after`` instead."""
    breaker_after: int = Field(
        default=3,
        ge=1,
        json_schema_extra=_cli(
            "--breaker-after", "Stop after this many connection failures in a row (endpoint unreachable)."
        ),
    )
    """Consecutive connection failures (refused, DNS, TLS, connect timeout) after which the stage
    stops with "endpoint unreachable", instead of retrying every text."""
    backoff_base_s: float = Field(
        default=1.0,
        ge=0,
        json_schema_extra=_cli("--backoff-base", "First retry delay (s); doubles per retry."),
    )
    """First backoff delay; doubles per retry, with jitter, capped at ``backoff_max_s``."""
    backoff_max_s: float = Field(
        default=60.0, ge=0, json_schema_extra=_cli("--backoff-max", "Longest retry delay (s).")
    )
    max_repairs: int = Field(
        default=2,
        ge=0,
        json_schema_extra=_cli("--max-repairs", "Follow-up turns asking the model to fix an invalid reply."),
    )
    """Follow-up turns asking the model to fix an invalid or incomplete reply, per text."""
    temperature: float = Field(
        default=0.0, ge=0, json_schema_extra=_cli("--temperature", "Sampling temperature.")
    )
    max_tokens: int | None = Field(
        default=None, ge=1, json_schema_extra=_cli("--max-tokens", "Output token limit per call.")
    )
    response_format: ResponseFormatMode = Field(
        default="auto",
        json_schema_extra=_cli(
            "--response-format", "Structured-output dialect; auto probes the endpoint once."
        ),
    )
    """See ``ResponseFormatMode``. ``auto`` settles the dialect with one probe per endpoint and run,
    and still steps down when a reply's error names the response format."""
    price: ModelPrice | None = Field(
        default=None,
        json_schema_extra=_cli("--price-in/--price-out", "USD per 1M input / output tokens."),
    )
    """Overrides the built-in price of ``model``; needed for ``max_cost`` on unknown models."""
    max_cost: float | None = Field(
        default=None, ge=0, json_schema_extra=_cli("--max-cost", "Stop before spending more (USD).")
    )
    """Stop sending before the spend (estimated for the calls in flight) would pass this."""
    max_failed: float = Field(
        default=MAX_FAILED_DEFAULT,
        ge=0,
        json_schema_extra=_cli(
            "--max-failed", "Failed texts tolerated: a count, or a fraction in (0, 1); more fails the stage."
        ),
    )
    """More failed texts than this (a count >= 1, or a fraction of the texts when in (0, 1)) makes
    the stage ``partial`` (or ``failed`` when nothing succeeded) and the command exit non-zero."""
    batch_api: bool = Field(
        default=False, json_schema_extra=_cli("--batch-api", "Use the OpenAI Batch API (half price, slow).")
    )
    """Use the OpenAI Batch API (half price, up to 24 h) instead of live calls."""
    batch_poll_s: float = Field(
        default=30.0, gt=0, json_schema_extra=_cli("--batch-poll", "Seconds between Batch API polls.")
    )
    batch_wait_s: float | None = Field(
        default=None,
        ge=0,
        json_schema_extra=_cli("--batch-wait", "Stop polling after this many seconds (run again to resume)."),
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        """Old TOML keys keep working: ``timeout`` (now ``timeout_s``), ``prices = {input, output}``
        (now ``price = {input_per_mtok, output_per_mtok}``)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "timeout" in data:
            if "timeout_s" in data:
                raise ValueError("give timeout_s only ('timeout' is its old name)")
            data["timeout_s"] = data.pop("timeout")
        if "prices" in data:
            if "price" in data:
                raise ValueError("give price only ('prices' is its old name)")
            prices = data.pop("prices") or {}
            if prices:
                if not isinstance(prices, dict) or "input" not in prices or "output" not in prices:
                    raise ValueError(
                        "prices needs both 'input' and 'output' (USD per 1M tokens); "
                        "or write price = {input_per_mtok = ..., output_per_mtok = ...}"
                    )
                data["price"] = {"input_per_mtok": prices["input"], "output_per_mtok": prices["output"]}
        return data

    @field_validator("base_url")
    @classmethod
    def _strip(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {v!r}")
        return v.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _no_key(cls, v: str | None) -> str | None:
        return None if v is None or v.strip().lower() in ("", "none") else v

    @field_validator("max_failed")
    @classmethod
    def _count_or_fraction(cls, v: float) -> float:
        return check_max_failed(v)

    def failed_allowed(self, n_texts: int) -> int:
        """How many of ``n_texts`` may fail before the stage counts as failed."""
        return failed_allowed(self.max_failed, n_texts)

    def stage_status(self, n_texts: int, n_failed: int, *, budget_stop: bool = False) -> StageStatus:
        """The status rule of every LM stage (labeler and rewriter alike): ``failure_status``."""
        return failure_status(n_texts, n_failed, self.max_failed, budget_stop=budget_stop)

    def effective_price(self) -> ModelPrice | None:
        """The price used for cost figures: the override, else the built-in one, else unknown."""
        if self.price is not None:
            return self.price
        return lookup_price(self.model)

    def cache_settings(self) -> dict[str, object]:
        """The settings that change an answer (and so belong in a cache key); endpoint and
        concurrency do not -- the same model behind a different URL gives the same labels."""
        return {"model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens}


def llm_field_cli() -> dict[str, dict[str, Any]]:
    """field name -> its CLI metadata (flag, help), in field order."""
    out: dict[str, dict[str, Any]] = {}
    for name, info in LLMSettings.model_fields.items():
        extra = info.json_schema_extra
        assert isinstance(extra, dict), name
        out[name] = dict(extra)
    return out
