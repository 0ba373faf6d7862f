"""Secret redaction, applied where data leaves the process (every table, log, manifest, cache value,
report and terminal line), so that no caller can forget it.

An endpoint or proxy that echoes the request headers in its error body hands the API key back to
us; the LM client keeps error bodies for the record, so without this the key ends up on disk. The
sinks call :func:`scrub`, which redacts with :func:`redact` (pure: the secrets are arguments) using
the values of the environment variables that hold keys (:func:`secret_values`).

What is redacted: the literal values of those variables; the values of ``Authorization``,
``Proxy-Authorization`` and ``api-key`` / ``x-api-key`` headers in ``Name: value``, ``"Name": "value"``
and ``Name=value`` forms; ``Bearer <token>``; ``sk-``-style tokens. Each becomes ``[REDACTED]``.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"

DEFAULT_KEY_ENVS = ("OPENAI_API_KEY",)
"""Variables always treated as secret: the LM settings' default ``api_key_env``."""

MIN_SECRET_LENGTH = 8
"""Shorter environment values are not redacted as literals (``1`` or ``true`` would erase text)."""

_SECRET_NAME = re.compile(r"(?:API_?KEY|_TOKEN|_SECRET|PASSWORD)$", re.IGNORECASE)
"""Defence in depth: variables named like key holders are redacted even if no setting named them."""

_registered: set[str] = set()

_HEADER_NAMES = r"(?:proxy-)?authorization|(?:x-)?api[-_]key"
_HEADER = re.compile(
    rf"(?P<name>\b(?:{_HEADER_NAMES}))(?![\w-])(?P<sep>\\?[\"']?\s*[:=]\s*\\?[\"']?)"
    r"(?!\[REDACTED\]|(?:null|true|false|none)\b)"
    r"(?P<value>(?:(?:bearer|basic|token)\s+)?(?:\[REDACTED\]|[^\s\"',;}\[\]\\]+))",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\bbearer\s+(?=[A-Za-z0-9\-._~+/]*\d)[A-Za-z0-9\-._~+/]{16,}=*", re.IGNORECASE)
"""A token: 16+ token characters including a digit, so "the bearer instrument" is left alone."""
_SK_TOKEN = re.compile(r"(?<![A-Za-z0-9])sk-(?=[A-Za-z0-9_\-]*\d)[A-Za-z0-9_\-]{16,}")
"""An ``sk-`` key (OpenAI, Anthropic style): random, so it has digits; "sk-learn-compatible" has none."""
TRIGGER_WORDS = ("authorization", "api-key", "api_key", "bearer", "sk-")
"""Substrings (of the lower-cased text) without which no pattern can match: ``in`` tests are far
faster than a case-insensitive regex alternation, so text with none of them costs one scan."""
_HEADER_KEY = re.compile(rf"^(?:{_HEADER_NAMES})$", re.IGNORECASE)


def register_secret_env(name: str | None) -> None:
    """Treat the value of environment variable ``name`` as a secret from now on (the LM settings'
    ``api_key_env``; called where those settings are built)."""
    if name:
        _registered.add(name)


def secret_values(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The secret literals in the environment: registered key variables, the default key variable
    and any variable named like a key holder; longest first so a longer key is never cut by a shorter."""
    env = os.environ if environ is None else environ
    names = set(DEFAULT_KEY_ENVS) | _registered | {n for n in env if _SECRET_NAME.search(n)}
    values = {env[n] for n in names if len(env.get(n, "")) >= MIN_SECRET_LENGTH}
    return tuple(sorted(values, key=lambda v: (-len(v), v)))


@functools.lru_cache(maxsize=16)
def _literal_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    if not secrets:
        return None
    return re.compile("|".join(re.escape(s) for s in secrets))


def needs_redaction(text: str, secrets: Iterable[str] = ()) -> bool:
    """Whether :func:`redact` could change ``text``: one scan, used to skip whole table columns
    (joined into one string) that hold nothing to redact."""
    if any(s and s in text for s in secrets):
        return True
    low = text.lower()
    return any(w in low for w in TRIGGER_WORDS)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the given secret literals, key-bearing headers, Bearer and ``sk-`` tokens
    replaced by ``[REDACTED]``. Pure; text without any of them is returned unchanged (same object)."""
    lits = tuple(s for s in secrets if s and s in text)
    if lits:
        literal = _literal_pattern(lits)
        assert literal is not None
        text = literal.sub(REDACTED, text)
    low = text.lower()
    if not any(w in low for w in TRIGGER_WORDS):
        return text
    text = _HEADER.sub(lambda m: m.group("name") + m.group("sep") + REDACTED, text)
    text = _BEARER.sub(REDACTED, text)
    return _SK_TOKEN.sub(REDACTED, text)


def redact_obj(obj: Any, secrets: tuple[str, ...]) -> Any:
    """``obj`` (JSON-like: dicts, lists, tuples, strings, scalars) with every string redacted; the
    value under a header-named key (``Authorization``, ``api-key``) is replaced whole."""
    if isinstance(obj, str):
        return redact(obj, secrets)
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        for k, v in obj.items():
            if isinstance(k, str) and _HEADER_KEY.match(k) and isinstance(v, str) and v:
                out[k] = REDACTED
            else:
                out[redact(k, secrets) if isinstance(k, str) else k] = redact_obj(v, secrets)
        return out
    if isinstance(obj, list):
        return [redact_obj(v, secrets) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact_obj(v, secrets) for v in obj)
    return obj


def scrub(obj: Any) -> Any:
    """What a sink writes instead of ``obj``: redacted with the secrets of the current environment."""
    return redact_obj(obj, secret_values())


def scrub_text(text: str) -> str:
    """A text a sink writes (a document, a terminal line), redacted with the current secrets."""
    return redact(text, secret_values())
