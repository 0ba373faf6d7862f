"""Turning raw records of each supported shape into PreferencePairs.

Each normaliser validates what it reads and raises an InputError naming the record and field; the
loader decides whether that error stops the run or sends the record to quarantine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from seal_audit.data.errors import InputError
from seal_audit.data.records import PreferencePair, SourceRef, content_pair_id

Format = Literal["auto", "hh-rlhf", "pairs", "conversation", "multi-variant"]
SplitRule = Literal["turn", "reference"]

TURN_MARKER = "\n\nAssistant:"
BARE_MARKER = "Assistant:"


@dataclass(frozen=True)
class ColumnMap:
    """Which input columns hold the prompt, the two responses and (optionally) the pair id."""

    prompt: str = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"
    id: str | None = None
    """Id column; when None, ``pair_id`` or ``id`` is used if present, else the content hash."""


def split_transcript(text: str, rule: SplitRule = "turn") -> tuple[str, str] | None:
    """Split an hh-rlhf transcript into (context, final response), or None without a marker.

    ``reference`` splits at the last bare ``"Assistant:"`` exactly as the released SEAL code does.
    ``turn`` (default) splits at the last turn marker ``"\\n\\nAssistant:"`` — the same split on every
    record except those whose final reply itself contains a bare ``"Assistant:"`` (one pair of the
    harmless-base test split), where the reference cuts inside the reply. Either way the context
    ends right before ``"Assistant:"`` and the response starts with it (SEAL-METHOD.md §1).
    """
    if rule == "turn":
        cut = text.rfind(TURN_MARKER)
        if cut >= 0:
            cut += 2
        else:
            cut = text.rfind(BARE_MARKER)
    else:
        cut = text.rfind(BARE_MARKER)
    if cut < 0:
        return None
    return text[:cut], text[cut:]


def _string_field(
    fields: Mapping[str, Any], name: str, path: str, number: int, *, allow_empty: bool = False
) -> str:
    if name not in fields or fields[name] is None:
        raise InputError("missing field", file=path, record=number, field=name, kind="missing_field")
    value = fields[name]
    if not isinstance(value, str):
        raise InputError(
            f"expected a string, got {type(value).__name__}",
            file=path,
            record=number,
            field=name,
            kind="type",
        )
    if not allow_empty and not value.strip():
        raise InputError("empty text", file=path, record=number, field=name, kind="empty")
    return value


def _explicit_id(
    fields: Mapping[str, Any], cols: ColumnMap, path: str, number: int
) -> tuple[str | None, str | None]:
    """The input's own id and the column it came from, if it has one."""
    if cols.id is not None:
        if fields.get(cols.id) in (None, ""):
            raise InputError("missing id", file=path, record=number, field=cols.id, kind="missing_field")
        return str(fields[cols.id]), cols.id
    for name in ("pair_id", "id"):
        if fields.get(name) not in (None, ""):
            return str(fields[name]), name
    return None, None


def _meta(fields: Mapping[str, Any], used: set[str]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in used}


def from_hh_rlhf(
    fields: Mapping[str, Any], path: str, number: int, cols: ColumnMap, rule: SplitRule = "turn"
) -> list[PreferencePair]:
    """An hh-rlhf record: two full transcripts, split into a shared context and two responses."""
    parts: dict[str, tuple[str, str]] = {}
    for side, col in (("chosen", cols.chosen), ("rejected", cols.rejected)):
        text = _string_field(fields, col, path, number)
        split = split_transcript(text, rule)
        if split is None:
            raise InputError(
                "no 'Assistant:' marker in the transcript",
                file=path,
                record=number,
                field=col,
                kind="no_marker",
            )
        parts[side] = split
    (ctx_c, resp_c), (ctx_r, resp_r) = parts["chosen"], parts["rejected"]
    diverges = ctx_c != ctx_r
    own_id, id_col = _explicit_id(fields, cols, path, number)
    used = {cols.chosen, cols.rejected} | ({id_col} if id_col else set())
    return [
        PreferencePair(
            pair_id=own_id or content_pair_id(ctx_c, resp_c, resp_r, ctx_r if diverges else None),
            context=ctx_c,
            chosen=resp_c,
            rejected=resp_r,
            rejected_context=ctx_r if diverges else None,
            context_diverges=diverges,
            source=SourceRef(path=path, record=number),
            meta=_meta(fields, used),
        )
    ]


def from_pairs(fields: Mapping[str, Any], path: str, number: int, cols: ColumnMap) -> list[PreferencePair]:
    """A flat record: prompt, chosen response, rejected response (column names by mapping)."""
    prompt = (
        _string_field(fields, cols.prompt, path, number, allow_empty=True) if cols.prompt in fields else ""
    )
    chosen = _string_field(fields, cols.chosen, path, number)
    rejected = _string_field(fields, cols.rejected, path, number)
    own_id, id_col = _explicit_id(fields, cols, path, number)
    used = {cols.prompt, cols.chosen, cols.rejected} | ({id_col} if id_col else set())
    return [
        PreferencePair(
            pair_id=own_id or content_pair_id(prompt, chosen, rejected),
            context=prompt,
            chosen=chosen,
            rejected=rejected,
            source=SourceRef(path=path, record=number),
            meta=_meta(fields, used),
        )
    ]


def _render_messages(messages: Any, path: str, number: int, field: str) -> list[tuple[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise InputError(
            "expected a non-empty list of {role, content} messages",
            file=path,
            record=number,
            field=field,
            kind="type",
        )
    out: list[tuple[str, str]] = []
    for i, msg in enumerate(messages):
        if (
            not isinstance(msg, Mapping)
            or not isinstance(msg.get("role"), str)
            or not isinstance(msg.get("content"), str)
        ):
            raise InputError(
                f"message {i} is not a {{role, content}} object with string values",
                file=path,
                record=number,
                field=field,
                kind="type",
            )
        out.append((str(msg["role"]), str(msg["content"])))
    return out


def render_turns(turns: Sequence[tuple[str, str]]) -> str:
    """Messages → hh-rlhf transcript text, so every format reaches the RMs and labelers alike."""
    names = {"user": "Human", "human": "Human", "assistant": "Assistant", "system": "System"}
    return "".join(f"\n\n{names.get(role.lower(), role.capitalize())}: {content}" for role, content in turns)


def from_conversation(
    fields: Mapping[str, Any], path: str, number: int, cols: ColumnMap
) -> list[PreferencePair]:
    """TRL-style conversational record: chosen/rejected are message lists (prompt optional)."""
    sides: dict[str, list[tuple[str, str]]] = {}
    for side, col in (("chosen", cols.chosen), ("rejected", cols.rejected)):
        if col not in fields:
            raise InputError("missing field", file=path, record=number, field=col, kind="missing_field")
        sides[side] = _render_messages(fields[col], path, number, col)
    prompt_turns: list[tuple[str, str]] = []
    if cols.prompt in fields and fields[cols.prompt] is not None:
        if isinstance(fields[cols.prompt], str):
            prompt_turns = [("user", fields[cols.prompt])]
        else:
            prompt_turns = _render_messages(fields[cols.prompt], path, number, cols.prompt)
    contexts: dict[str, str] = {}
    responses: dict[str, str] = {}
    for side, turns in sides.items():
        full = prompt_turns + turns if prompt_turns else turns
        if full[-1][0].lower() != "assistant":
            raise InputError(
                "the last message is not the assistant's",
                file=path,
                record=number,
                field=cols.chosen if side == "chosen" else cols.rejected,
                kind="no_marker",
            )
        if not full[-1][1].strip():
            raise InputError(
                "empty text",
                file=path,
                record=number,
                field=cols.chosen if side == "chosen" else cols.rejected,
                kind="empty",
            )
        contexts[side] = render_turns(full[:-1]) + "\n\n"
        responses[side] = f"Assistant: {full[-1][1]}"
    diverges = contexts["chosen"] != contexts["rejected"]
    own_id, id_col = _explicit_id(fields, cols, path, number)
    used = {cols.prompt, cols.chosen, cols.rejected} | ({id_col} if id_col else set())
    ctx_r = contexts["rejected"] if diverges else None
    return [
        PreferencePair(
            pair_id=own_id
            or content_pair_id(contexts["chosen"], responses["chosen"], responses["rejected"], ctx_r),
            context=contexts["chosen"],
            chosen=responses["chosen"],
            rejected=responses["rejected"],
            rejected_context=ctx_r,
            context_diverges=diverges,
            source=SourceRef(path=path, record=number),
            meta=_meta(fields, used),
        )
    ]


def from_multi_variant(
    fields: Mapping[str, Any], path: str, number: int, cols: ColumnMap
) -> list[PreferencePair]:
    """A prompt with lists of chosen and rejected responses: every (chosen, rejected) combination."""
    prompt = (
        _string_field(fields, cols.prompt, path, number, allow_empty=True) if cols.prompt in fields else ""
    )
    lists: dict[str, list[str]] = {}
    for side, col in (("chosen", cols.chosen), ("rejected", cols.rejected)):
        value = fields.get(col)
        if not isinstance(value, list) or not value:
            raise InputError(
                "expected a non-empty list of responses",
                file=path,
                record=number,
                field=col,
                kind="type" if col in fields else "missing_field",
            )
        for i, v in enumerate(value):
            if not isinstance(v, str) or not v.strip():
                raise InputError(
                    f"response {i} is empty or not a string",
                    file=path,
                    record=number,
                    field=f"{col}[{i}]",
                    kind="empty",
                )
        lists[side] = value
    own_id, id_col = _explicit_id(fields, cols, path, number)
    used = {cols.prompt, cols.chosen, cols.rejected} | ({id_col} if id_col else set())
    meta = _meta(fields, used)
    out = []
    for i, chosen in enumerate(lists["chosen"]):
        for j, rejected in enumerate(lists["rejected"]):
            out.append(
                PreferencePair(
                    pair_id=f"{own_id}:{i}:{j}" if own_id else content_pair_id(prompt, chosen, rejected),
                    context=prompt,
                    chosen=chosen,
                    rejected=rejected,
                    source=SourceRef(path=path, record=number, variant=(i, j)),
                    meta={**meta, "chosen_variant": i, "rejected_variant": j},
                )
            )
    return out


def detect_format(fields: Mapping[str, Any], cols: ColumnMap) -> Format:
    """Guess a record's shape from its fields (the first good record decides for the whole file)."""
    chosen = fields.get(cols.chosen)
    if isinstance(chosen, list):
        if chosen and all(isinstance(m, Mapping) for m in chosen):
            return "conversation"
        return "multi-variant"
    if isinstance(chosen, str) and cols.prompt not in fields and BARE_MARKER in chosen:
        return "hh-rlhf"
    return "pairs"


def normalise(
    fmt: Format, fields: Mapping[str, Any], path: str, number: int, cols: ColumnMap, rule: SplitRule = "turn"
) -> list[PreferencePair]:
    if fmt == "hh-rlhf":
        return from_hh_rlhf(fields, path, number, cols, rule)
    if fmt == "conversation":
        return from_conversation(fields, path, number, cols)
    if fmt == "multi-variant":
        return from_multi_variant(fields, path, number, cols)
    return from_pairs(fields, path, number, cols)
