"""Tolerant extraction of a JSON object from a chat reply.

Endpoints without structured output wrap JSON in markdown fences, prepend "Here is the analysis:",
or append chatter; rejecting such replies would waste paid calls, so we extract the first complete
JSON object and let the caller validate its contents.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


class ReplyError(ValueError):
    """A reply that cannot be used as it is; the message is shown to the model in a repair turn."""


def extract_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text`` (inside a code fence if there is one); ReplyError if none.

    A truncated object (cut by a token limit or a dropped connection) is reported as such, so the
    repair turn can say so.
    """
    if not text or not text.strip():
        raise ReplyError("the reply was empty")
    if "```" not in text:
        # Fast path for the usual reply, a bare JSON object (structured output): the same object
        # the scan below would find first, at a fraction of the cost.
        try:
            whole = json.loads(text)
        except ValueError:
            pass
        else:
            if isinstance(whole, dict):
                return whole
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    saw_brace = False
    for cand in candidates:
        start = cand.find("{")
        while start >= 0:
            saw_brace = True
            try:
                obj, _ = decoder.raw_decode(cand, start)
            except ValueError:
                start = cand.find("{", start + 1)
                continue
            if isinstance(obj, dict):
                return obj
            start = cand.find("{", start + 1)
    if saw_brace:
        raise ReplyError("the reply contains no complete JSON object (it may be truncated or malformed)")
    raise ReplyError("the reply contains no JSON object")
