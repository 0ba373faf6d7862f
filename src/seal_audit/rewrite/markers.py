"""Turn markers ("Human:" / "Assistant:") of hh-rlhf-style transcripts.

The RMs, the labeler and the context/response split all read these markers, so a rewrite that
drops, renames, adds or moves one is not a rewrite of the same conversation: the reference rejected
such outputs and so do we. Controlled transforms never touch markers because they edit turn bodies
only (``split_turns``); LM outputs are checked with ``marker_problem``.
"""

from __future__ import annotations

import dataclasses
import re

ROLES = ("Human", "Assistant")
_MARKER = re.compile(r"(?:^|\n)[ \t]*(Human|Assistant):")
_LOOSE_SEP = re.compile(r"[ \t]*\n\s*(Human|Assistant):")


def marker_roles(text: str) -> list[str]:
    """The roles of the turn markers of ``text``, in order (markers count only at a line start)."""
    return [m.group(1) for m in _MARKER.finditer(text)]


def starts_with_marker(text: str) -> bool:
    m = _MARKER.match(text.lstrip(" \t\n"))
    return m is not None and m.start() == 0


def marker_problem(original: str, rewritten: str) -> str | None:
    """Why ``rewritten`` does not keep ``original``'s turn markers, or None when it does."""
    before, after = marker_roles(original), marker_roles(rewritten)
    if before != after:
        return f"turn markers changed: expected {_show(before)}, got {_show(after)}"
    if starts_with_marker(original) and not starts_with_marker(rewritten):
        return "text before the first turn marker (a preamble was added)"
    return None


def _show(roles: list[str]) -> str:
    if not roles:
        return "none"
    if len(roles) > 6:
        return " ".join(r[0] for r in roles) + f" ({len(roles)} markers)"
    return ", ".join(roles)


def canonical_separators(original: str, rewritten: str) -> str:
    """Give ``rewritten``'s markers the ``"\\n\\n"`` separator when ``original`` uses it throughout.

    LMs often write "\\nAssistant:" for "\\n\\nAssistant:"; the scorer's input must not differ from the
    original in formatting the rewrite was not asked to change, and the hh-rlhf split rule looks for
    the two-newline form.
    """
    inner = [m.start(1) for m in _MARKER.finditer(original) if m.start(1) > 0]
    if not inner or not all(original[max(0, i - 2) : i] == "\n\n" for i in inner):
        return rewritten
    return _LOOSE_SEP.sub(lambda m: "\n\n" + m.group(1) + ":", rewritten)


def last_marker_offset(text: str) -> int | None:
    """Where the last "Assistant:" marker starts (the context/response split), or None."""
    offset = None
    for m in _MARKER.finditer(text):
        if m.group(1) == "Assistant":
            offset = m.start(1)
    return offset


@dataclasses.dataclass(frozen=True)
class Turn:
    """A piece of a text: the marker (with the separator before it) and the body after it."""

    marker: str
    """``"\\n\\nHuman:"``, ``"Assistant:"``, or ``""`` for text before the first marker / unmarked text."""
    body: str


def split_turns(text: str) -> list[Turn]:
    """Cut ``text`` at its markers; ``"".join(marker + body)`` gives ``text`` back exactly."""
    turns: list[Turn] = []
    pos = 0
    marker = ""
    for m in _MARKER.finditer(text):
        turns.append(Turn(marker, text[pos : m.start()]))
        marker, pos = m.group(0), m.end()
    turns.append(Turn(marker, text[pos:]))
    if len(turns) > 1 and turns[0] == Turn("", ""):
        turns.pop(0)
    return turns


def join_turns(turns: list[Turn]) -> str:
    return "".join(t.marker + t.body for t in turns)


def core_span(body: str) -> tuple[str, str, str]:
    """(leading whitespace, core, trailing whitespace) of a turn body: edits change the core only."""
    core = body.strip()
    if not core:
        return body, "", ""
    start = body.index(core)
    return body[:start], core, body[start + len(core) :]


def split_lead_marker(text: str) -> tuple[str, str]:
    """``(prefix, body)`` of a single-turn text that starts with its only marker
    (``"Assistant: Sure, ..."`` → ``("Assistant: ", "Sure, ...")``); ``("", text)`` otherwise.

    A response-scope LM rewrite sends only the body, so the model never sees (and cannot drop,
    rename or duplicate) the marker; the prefix is put back on the accepted rewrite. Small models
    that cannot be trusted with markers can then still paraphrase a reply.
    """
    turns = split_turns(text)
    if len(turns) != 1 or not turns[0].marker:
        return "", text
    lead, core, _trail = core_span(turns[0].body)
    if not core:
        return "", text
    prefix = turns[0].marker + lead
    return prefix, text[len(prefix) :]
