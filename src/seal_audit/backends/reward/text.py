"""Turning SEAL's (context, response) strings into what different RM families expect."""

from __future__ import annotations

import re

_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")
_ROLE = {"Human": "user", "Assistant": "assistant"}


def strip_assistant_prefix(response: str) -> str:
    """hh-rlhf responses start with 'Assistant:'; chat templates add their own role markers."""
    text = response.lstrip()
    if text.startswith("Assistant:"):
        text = text[len("Assistant:") :]
    return text.strip()


def hh_messages(context: str, response: str) -> list[dict[str, str]]:
    """Parse an hh-rlhf style context ("\\n\\nHuman: ...\\n\\nAssistant: ...") into chat messages.

    The final assistant message is the response. Text before the first marker (rare) becomes a
    system message; a context with no markers at all is one user message, so plain
    prompt/response data works too.
    """
    messages: list[dict[str, str]] = []
    marks = list(_TURN.finditer(context))
    if not marks:
        if context.strip():
            messages.append({"role": "user", "content": context.strip()})
    else:
        head = context[: marks[0].start()].strip()
        if head:
            messages.append({"role": "system", "content": head})
        for i, m in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(context)
            messages.append({"role": _ROLE[m.group(1)], "content": context[m.end() : end].strip()})
    messages.append({"role": "assistant", "content": strip_assistant_prefix(response)})
    return messages


def whitespace_tokens(text: str) -> int:
    """Whitespace-separated word count: the tokenizer-free length used by ``length_tokens``."""
    return len(text.split())
