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
    # each pattern only where its own trigger occurs (a replacement never creates one), and the
    # header pattern only at its names' occurrences: a case-insensitive scan of a 30 MB report
    # costs seconds per pattern, a match at a handful of positions nothing
    if "authorization" in low or "api-key" in low or "api_key" in low:
        text = _sub_headers(text, low)
    if "bearer" in low:
        text = _BEARER.sub(REDACTED, text)
    if "sk-" in low:
        text = _SK_TOKEN.sub(REDACTED, text)
    return text


def _header_repl(m: re.Match[str]) -> str:
    return m.group("name") + m.group("sep") + REDACTED


def _sub_headers(text: str, low: str) -> str:
    """``_HEADER.sub`` on ``text``, trying the pattern only where a header name occurs in ``low``
    (its lower-cased copy): the same matches, left to right, non-overlapping."""
    if len(low) != len(text):  # lower-casing changed the length: positions would not line up
        return _HEADER.sub(_header_repl, text)
    starts: list[list[int]] = []
    for name, prefix in (("authorization", "proxy-"), ("api-key", "x-"), ("api_key", "x-")):
        j = low.find(name)
        while j >= 0:
            k = j - len(prefix)
            # the longer name first, as the pattern's alternation would match it from further left
            starts.append([k, j] if k >= 0 and low.startswith(prefix, k) else [j])
            j = low.find(name, j + 1)
    starts.sort()
    out: list[str] = []
    done = 0
    for cands in starts:
        for start in cands:
            if start < done:
                continue
            m = _HEADER.match(text, start)
            if m is not None:
                out += [text[done : m.start()], _header_repl(m)]
                done = m.end()
                break
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


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
