"""Test files in every layout people bring, built from the real hh-rlhf texts (into tmp dirs)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from seal_audit.data import PreferencePair

_TURN = re.compile(r"\n\n(Human|Assistant): ")


def turns(context: str) -> list[dict[str, str]]:
    """An hh-rlhf context ``"\\n\\nHuman: a\\n\\nAssistant: b\\n\\n"`` as OpenAI-style messages."""
    parts = _TURN.split(context.removesuffix("\n\n"))
    assert parts[0] == "", context[:80]
    role = {"Human": "user", "Assistant": "assistant"}
    return [{"role": role[parts[i]], "content": parts[i + 1]} for i in range(1, len(parts), 2)]


def reply(response: str) -> str:
    """``"Assistant: text"`` → ``"text"``."""
    assert response.startswith("Assistant: ")
    return response[len("Assistant: ") :]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def chat_pairs(hh_pairs: list[PreferencePair]) -> list[PreferencePair]:
    """hh-rlhf pairs that render exactly as chat messages (shared context, both replies non-empty).

    Contexts whose turns hold the marker text itself cannot be told apart from a turn boundary
    and are left out, so every expectation below is an exact string equality.
    """
    out = []
    for p in hh_pairs:
        if (
            p.context_diverges
            or not p.chosen.startswith("Assistant: ")
            or not p.rejected.startswith("Assistant: ")
        ):
            continue
        if not reply(p.chosen).strip() or not reply(p.rejected).strip():
            continue
        try:
            msgs = turns(p.context)
        except (AssertionError, KeyError):
            continue
        if any(("\n\nHuman: " in m["content"]) or ("\n\nAssistant: " in m["content"]) for m in msgs):
            continue
        if msgs[-1]["role"] != "user":
            continue
        out.append(p)
        if len(out) == 120:
            break
    assert len(out) == 120
    return out
