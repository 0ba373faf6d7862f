"""The JSON schema and client settings shared by the LLM-client tests (fast backoff, no key)."""

from __future__ import annotations

from typing import Any

from fakeserver.server import FakeOpenAIServer
from seal_audit.backends.llm import LLMSettings

SCHEMA = {
    "type": "object",
    "properties": {"is_nice": {"type": "boolean"}, "tone": {"type": "string", "enum": ["low", "high"]}},
    "required": ["is_nice", "tone"],
    "additionalProperties": False,
}


def fake_settings(srv: FakeOpenAIServer, **kw: Any) -> LLMSettings:
    """Settings for the fake server: no key, backoff in milliseconds, the dialect fixed (no probe);
    ``kw`` overrides any field."""
    base: dict[str, Any] = {
        "model": "fake-model",
        "base_url": srv.base_url,
        "api_key_env": None,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        "timeout_s": 0.5,
        "response_format": "json_schema",  # no auto probe: request counts stay exact
    }
    base.update(kw)
    return LLMSettings(**base)
