"""Turning raw records of each supported shape into PreferencePairs.

Each normaliser validates what it reads and raises an InputError naming the record and field; the
loader decides whether that error stops the run or sends the record to quarantine. Every shape ends
in the same text form (an hh-rlhf style context ending in ``"\\n\\n"`` and responses starting with
``"Assistant:"`` for chat data), so RMs and labelers see one format whatever the file looked like.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from seal_audit.data.errors import InputError
from seal_audit.data.load_options import Format, LoadOptions, SplitRule
from seal_audit.data.records import PreferencePair, SourceRef, content_pair_id, context_group_id

__all__ = [
    "SEAL_COLUMNS",
    "ColumnMap",
    "Format",
    "Normalised",
    "SplitRule",
    "detect_format",
    "detect_layout",
    "normalise",
    "render_turns",
    "reply_text",
    "split_transcript",
]

TURN_MARKER = "\n\nAssistant:"
BARE_MARKER = "Assistant:"

SEAL_COLUMNS = ("pair_id", "context", "chosen", "rejected", "context_diverges", "meta")
"""Columns that mark seal's own canonical pairs table (``seal data convert``, a run's pairs)."""

Orientation = Literal["a", "b", "tie"]


@dataclass(frozen=True)
class ColumnMap:
    """Which input columns hold the prompt, the two responses and (optionally) the pair id.

    Kept for the Python API; it maps onto the ``*_col`` fields of LoadOptions (the one source of truth).
    """

    prompt: str = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"
    id: str | None = None

    def as_options(self) -> dict[str, Any]:
        """The LoadOptions fields this map sets (only those that differ from the defaults)."""
        default = ColumnMap()
        out: dict[str, Any] = {}
        for name in ("prompt", "chosen", "rejected", "id"):
            if getattr(self, name) != getattr(default, name):
                out[f"{name}_col"] = getattr(self, name)
        return out


@dataclass(frozen=True)
class Normalised:
    """What one record became: its pairs and, for labelled A/B records, how the label oriented it."""

    pairs: list[PreferencePair]
    orientation: Orientation | None = None
    empty_fields: list[str] = field(default_factory=list)
    """The response columns whose final reply is empty (one entry per affected pair and side)."""


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


def reply_text(response: str) -> str:
    """The reply without its ``Assistant:`` marker (what "empty reply" is judged on)."""
    return response[len(BARE_MARKER) :] if response.startswith(BARE_MARKER) else response


def _string_field(fields: Mapping[str, Any], name: str, path: str, number: int) -> str:
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
    return value


def _explicit_id(
    fields: Mapping[str, Any], opts: LoadOptions, path: str, number: int
) -> tuple[str | None, str | None]:
    """The input's own id and the column it came from, if it has one."""
    if opts.id_col is not None:
        if fields.get(opts.id_col) in (None, ""):
            raise InputError("missing id", file=path, record=number, field=opts.id_col, kind="missing_field")
        return str(fields[opts.id_col]), opts.id_col
    for name in ("pair_id", "id"):
        if fields.get(name) not in (None, ""):
            return str(fields[name]), name
    return None, None


def _group(fields: Mapping[str, Any], opts: LoadOptions, path: str, number: int) -> str | None:
    """The user's group column value, when ``group_col`` is set (else the caller's default)."""
    if opts.group_col is None:
        return None
    value = fields.get(opts.group_col)
    if value in (None, ""):
        raise InputError(
            "missing group", file=path, record=number, field=opts.group_col, kind="missing_field"
        )
    return str(value)


def _meta(fields: Mapping[str, Any], used: set[str], repeats: Sequence[Any] = ()) -> dict[str, Any]:
    """Extra columns, except those that merely repeat a response (UltraFeedback's ``messages``).

    A repeated column is not copied into every pair; its name is kept under ``same_as_response``
    so nothing disappears without a trace.
    """
    meta: dict[str, Any] = {}
    same: list[str] = []
    for k, v in fields.items():
        if k in used:
            continue
        if isinstance(v, list) and v and any(v == r for r in repeats):
            same.append(k)
            continue
        meta[k] = v
    if same:
        meta["same_as_response"] = same
    return meta


def _pair(
    *,
    own_id: str | None,
    group: str | None,
    ctx_c: str,
    resp_c: str,
    ctx_r: str,
    resp_r: str,
    path: str,
    number: int,
    meta: dict[str, Any],
    variant: tuple[int, int] | None = None,
    id_suffix: str = "",
) -> PreferencePair:
    diverges = ctx_c != ctx_r
    rc = ctx_r if diverges else None
    return PreferencePair(
        pair_id=(own_id + id_suffix) if own_id else content_pair_id(ctx_c, resp_c, resp_r, rc),
        context=ctx_c,
        chosen=resp_c,
        rejected=resp_r,
        rejected_context=rc,
        context_diverges=diverges,
        source=SourceRef(path=path, record=number, variant=variant),
        meta=meta,
        group_id=group or context_group_id(ctx_c),
    )


# --- chat messages --------------------------------------------------------------------------------
def _messages(value: Any, path: str, number: int, name: str) -> list[tuple[str, str]]:
    if not isinstance(value, list) or not value:
        raise InputError(
            "expected a non-empty list of {role, content} messages",
            file=path,
            record=number,
            field=name,
            kind="type",
        )
    out: list[tuple[str, str]] = []
    for i, msg in enumerate(value):
        content = msg.get("content") if isinstance(msg, Mapping) else None
        if isinstance(content, list):
            content = _text_parts(content, i, path, number, name)
        if (
            not isinstance(msg, Mapping)
            or not isinstance(msg.get("role"), str)
            or not isinstance(content, str)
        ):
            raise InputError(
                f"message {i} is not a {{role, content}} object with string values",
                file=path,
                record=number,
                field=name,
                kind="type",
            )
        out.append((str(msg["role"]), content))
    return out


def _text_parts(parts: list[Any], i: int, path: str, number: int, name: str) -> str:
    """OpenAI-style content parts (``[{"type": "text", "text": ...}]``) as one string, the texts
    concatenated as they are; a part that is not text cannot be scored, so it is an error naming it."""
    texts: list[str] = []
    for j, part in enumerate(parts):
        if (
            not isinstance(part, Mapping)
            or part.get("type") != "text"
            or not isinstance(part.get("text"), str)
        ):
            kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
            raise InputError(
                f"message {i}, content part {j} is not a text part (type {kind!r}): only text can be scored",
                file=path,
                record=number,
                field=name,
                kind="type",
            )
        texts.append(part["text"])
    return "".join(texts)


def render_turns(turns: Sequence[tuple[str, str]]) -> str:
    """Messages → hh-rlhf transcript text, so every format reaches the RMs and labelers alike."""
    names = {"user": "Human", "human": "Human", "assistant": "Assistant", "system": "System"}
    return "".join(f"\n\n{names.get(role.lower(), role.capitalize())}: {content}" for role, content in turns)


def _prompt_turns(value: Any, path: str, number: int, name: str) -> list[tuple[str, str]]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [("user", value)]
    return _messages(value, path, number, name)


def _chat_side(
    prompt: list[tuple[str, str]], value: Any, path: str, number: int, name: str
) -> tuple[str, str]:
    """(context, response) of one side: the prompt once, then the side's messages.

    A side that repeats the prompt (UltraFeedback-binarized, TRL implicit prompt written next to an
    explicit one) is not prefixed with it a second time.
    """
    turns = [("assistant", value)] if isinstance(value, str) else _messages(value, path, number, name)
    full = turns if prompt and turns[: len(prompt)] == prompt else prompt + turns
    if full[-1][0].lower() != "assistant":
        raise InputError(
            "the last message is not the assistant's", file=path, record=number, field=name, kind="no_marker"
        )
    return render_turns(full[:-1]) + "\n\n", f"Assistant: {full[-1][1]}"


def _is_chat(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, Mapping) for m in value)


def _sides(
    fields: Mapping[str, Any], opts: LoadOptions, path: str, number: int, col_c: str, col_r: str
) -> tuple[str, str, str, str]:
    """Contexts and responses of a flat or chat record (chosen first)."""
    for col in (col_c, col_r):
        if col not in fields or fields[col] is None:
            raise InputError("missing field", file=path, record=number, field=col, kind="missing_field")
    prompt_value = fields.get(opts.prompt_col)
    vc, vr = fields[col_c], fields[col_r]
    if _is_chat(vc) or _is_chat(vr) or _is_chat(prompt_value):
        prompt = _prompt_turns(prompt_value, path, number, opts.prompt_col)
        ctx_c, resp_c = _chat_side(prompt, vc, path, number, col_c)
        ctx_r, resp_r = _chat_side(prompt, vr, path, number, col_r)
        return ctx_c, resp_c, ctx_r, resp_r
    prompt_text = "" if prompt_value is None else _string_field(fields, opts.prompt_col, path, number)
    return (
        prompt_text,
        _string_field(fields, col_c, path, number),
        prompt_text,
        _string_field(fields, col_r, path, number),
    )


def _empty(pairs: Sequence[PreferencePair], col_c: str, col_r: str) -> list[str]:
    out: list[str] = []
    for p in pairs:
        if not reply_text(p.chosen).strip():
            out.append(col_c)
        if not reply_text(p.rejected).strip():
            out.append(col_r)
    return out


# --- the shapes -----------------------------------------------------------------------------------
def from_hh_rlhf(fields: Mapping[str, Any], path: str, number: int, opts: LoadOptions) -> Normalised:
    """An hh-rlhf record: two full transcripts, split into a shared context and two responses."""
    parts: dict[str, tuple[str, str]] = {}
    for side, col in (("chosen", opts.chosen_col), ("rejected", opts.rejected_col)):
        text = _string_field(fields, col, path, number)
        split = split_transcript(text, opts.split_rule)
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
    own_id, id_col = _explicit_id(fields, opts, path, number)
    used = {opts.chosen_col, opts.rejected_col} | ({id_col} if id_col else set())
    pair = _pair(
        own_id=own_id,
        group=_group(fields, opts, path, number),
        ctx_c=ctx_c,
        resp_c=resp_c,
        ctx_r=ctx_r,
        resp_r=resp_r,
        path=path,
        number=number,
        meta=_meta(fields, used),
    )
    return Normalised([pair], empty_fields=_empty([pair], opts.chosen_col, opts.rejected_col))


def from_pairs(fields: Mapping[str, Any], path: str, number: int, opts: LoadOptions) -> Normalised:
    """A flat or chat record: prompt (optional), chosen, rejected (column names by mapping)."""
    ctx_c, resp_c, ctx_r, resp_r = _sides(fields, opts, path, number, opts.chosen_col, opts.rejected_col)
    own_id, id_col = _explicit_id(fields, opts, path, number)
    used = {opts.prompt_col, opts.chosen_col, opts.rejected_col} | ({id_col} if id_col else set())
    pair = _pair(
        own_id=own_id,
        group=_group(fields, opts, path, number),
        ctx_c=ctx_c,
        resp_c=resp_c,
        ctx_r=ctx_r,
        resp_r=resp_r,
        path=path,
        number=number,
        meta=_meta(fields, used, [fields.get(opts.chosen_col), fields.get(opts.rejected_col)]),
    )
    return Normalised([pair], empty_fields=_empty([pair], opts.chosen_col, opts.rejected_col))


from_conversation = from_pairs
"""Chat records go through the same path: message lists are detected per value."""


def from_multi_variant(fields: Mapping[str, Any], path: str, number: int, opts: LoadOptions) -> Normalised:
    """A prompt with lists of chosen and rejected responses: every (chosen, rejected) combination.

    All pairs of one record share its group: they answer the same prompt.
    """
    prompt = (
        _string_field(fields, opts.prompt_col, path, number)
        if fields.get(opts.prompt_col) is not None
        else ""
    )
    lists: dict[str, list[str]] = {}
    for side, col in (("chosen", opts.chosen_col), ("rejected", opts.rejected_col)):
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
            if not isinstance(v, str):
                raise InputError(
                    f"response {i} is not a string",
                    file=path,
                    record=number,
                    field=f"{col}[{i}]",
                    kind="type",
                )
        lists[side] = value
    own_id, id_col = _explicit_id(fields, opts, path, number)
    used = {opts.prompt_col, opts.chosen_col, opts.rejected_col} | ({id_col} if id_col else set())
    meta = _meta(fields, used)
    group = _group(fields, opts, path, number) or (f"g:{own_id}" if own_id else context_group_id(prompt))
    out: list[PreferencePair] = []
    empty: list[str] = []
    for i, chosen in enumerate(lists["chosen"]):
        for j, rejected in enumerate(lists["rejected"]):
            out.append(
                _pair(
                    own_id=own_id,
                    group=group,
                    ctx_c=prompt,
                    resp_c=chosen,
                    ctx_r=prompt,
                    resp_r=rejected,
                    path=path,
                    number=number,
                    meta={**meta, "chosen_variant": i, "rejected_variant": j},
                    variant=(i, j),
                    id_suffix=f":{i}:{j}",
                )
            )
            empty += [f"{opts.chosen_col}[{i}]"] * (not chosen.strip())
            empty += [f"{opts.rejected_col}[{j}]"] * (not rejected.strip())
    return Normalised(out, empty_fields=empty)


DEFAULT_LABELS: dict[Orientation, tuple[str, ...]] = {
    "a": ("model_a", "a", "1", "true"),
    "b": ("model_b", "b", "0", "false"),
    "tie": ("tie", "tie (bothbad)", "both_bad", "both-bad"),
}
"""Recognised label values: Chatbot Arena ``winner``, SHP ``labels`` (1 = A preferred), a/b."""


def label_values(opts: LoadOptions) -> dict[Orientation, tuple[str, ...]]:
    """The label values that mean A preferred / B preferred / tie (``label_values`` overrides)."""
    if opts.label_values is None:
        return DEFAULT_LABELS
    parts = [v.strip().lower() for v in opts.label_values.split(",")]
    return {"a": (parts[0],), "b": (parts[1],), "tie": tuple(parts[2:])}


def orient(value: Any, opts: LoadOptions, path: str, number: int) -> Orientation:
    """Which response a label value prefers; an unknown value is an error naming it."""
    key = str(value).strip().lower() if not isinstance(value, bool) else str(value).lower()
    if isinstance(value, float) and value.is_integer():
        key = str(int(value))
    for orientation, values in label_values(opts).items():
        if key in values:
            return orientation
    known = ", ".join(f"{k}: {'/'.join(v) or '-'}" for k, v in label_values(opts).items())
    raise InputError(
        f"unrecognised label value {value!r} (known: {known}; set --label-values A,B[,TIE])",
        file=path,
        record=number,
        field=opts.label_col,
        kind="label",
    )


def from_labelled(fields: Mapping[str, Any], path: str, number: int, opts: LoadOptions) -> Normalised:
    """Two responses A and B and a label saying which the human preferred (Arena, SHP).

    The pair is oriented chosen = preferred; a tie is left out (counted by the loader) unless
    ``ties='keep'``, when A is stored as chosen and ``meta['tie']`` is true.
    """
    assert opts.label_col is not None and opts.a_col is not None and opts.b_col is not None
    if fields.get(opts.label_col) in (None, ""):
        raise InputError(
            "missing label", file=path, record=number, field=opts.label_col, kind="missing_field"
        )
    orientation = orient(fields[opts.label_col], opts, path, number)
    if orientation == "tie" and opts.ties == "exclude":
        return Normalised([], orientation="tie")
    col_c, col_r = (opts.b_col, opts.a_col) if orientation == "b" else (opts.a_col, opts.b_col)
    ctx_c, resp_c, ctx_r, resp_r = _sides(fields, opts, path, number, col_c, col_r)
    own_id, id_col = _explicit_id(fields, opts, path, number)
    used = {opts.prompt_col, opts.a_col, opts.b_col} | ({id_col} if id_col else set())
    meta = _meta(fields, used, [fields.get(opts.a_col), fields.get(opts.b_col)])
    meta["chosen_is"] = "tie" if orientation == "tie" else orientation.upper()
    if orientation == "tie":
        meta["tie"] = True
    pair = _pair(
        own_id=own_id,
        group=_group(fields, opts, path, number),
        ctx_c=ctx_c,
        resp_c=resp_c,
        ctx_r=ctx_r,
        resp_r=resp_r,
        path=path,
        number=number,
        meta=meta,
    )
    return Normalised([pair], orientation=orientation, empty_fields=_empty([pair], col_c, col_r))


def from_seal(fields: Mapping[str, Any], path: str, number: int, opts: LoadOptions) -> Normalised:
    """seal's own pairs table (``seal data convert``, a run's pairs): read back exactly as written."""
    pair_id = fields.get("pair_id")
    if pair_id in (None, ""):
        raise InputError("missing pair_id", file=path, record=number, field="pair_id", kind="missing_field")
    ctx = _string_field(fields, "context", path, number)
    rc = fields.get("rejected_context")
    diverges = fields.get("context_diverges")
    if isinstance(diverges, str):
        diverges = diverges.strip().lower() in ("true", "1")
    meta_raw = fields.get("meta")
    try:
        meta = json.loads(meta_raw) if isinstance(meta_raw, str) and meta_raw else dict(meta_raw or {})
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"meta is not a JSON object ({exc})", file=path, record=number, field="meta"
        ) from exc
    variant_raw = fields.get("source_variant")
    variant = json.loads(variant_raw) if isinstance(variant_raw, str) and variant_raw else variant_raw
    src_path = fields.get("source_path")
    src_record = fields.get("source_record")
    group = _group(fields, opts, path, number) or (
        str(fields["group_id"]) if fields.get("group_id") else None
    )
    pair = PreferencePair(
        pair_id=str(pair_id),
        context=ctx,
        chosen=_string_field(fields, "chosen", path, number),
        rejected=_string_field(fields, "rejected", path, number),
        rejected_context=rc if isinstance(rc, str) and bool(diverges) else None,
        context_diverges=bool(diverges),
        source=SourceRef(
            path=str(src_path) if src_path not in (None, "") else path,
            record=int(src_record) if src_record not in (None, "") else number,
            variant=tuple(variant) if variant else None,
        ),
        meta=meta,
        group_id=group or context_group_id(ctx),
    )
    return Normalised([pair], empty_fields=_empty([pair], "chosen", "rejected"))


# --- detection ------------------------------------------------------------------------------------
def detect_format(fields: Mapping[str, Any], opts: LoadOptions) -> Format:
    """Guess a record's shape from its fields (the first good record decides for the whole file)."""
    if opts.label_col is not None:
        return "labelled"
    if all(c in fields for c in SEAL_COLUMNS) and "source_path" in fields:
        return "seal"
    chosen = fields.get(opts.chosen_col)
    if isinstance(chosen, list):
        if _is_chat(chosen):
            return "conversation"
        return "multi-variant"
    if isinstance(chosen, str) and opts.prompt_col not in fields and TURN_MARKER in chosen:
        return "hh-rlhf"  # a whole transcript; a bare "Assistant: ..." reply is a response, not one
    if _is_chat(fields.get(opts.prompt_col)):
        return "conversation"
    return "pairs"


def _has_system(*values: Any) -> bool:
    return any(_is_chat(v) and any(str(m.get("role", "")).lower() == "system" for m in v) for v in values)


def detect_layout(fmt: Format, fields: Mapping[str, Any], opts: LoadOptions) -> str:
    """A name for the layout of a file, from its first good record, that ``seal data inspect`` prints."""
    chosen, prompt = fields.get(opts.chosen_col), fields.get(opts.prompt_col)
    if fmt == "labelled":
        a = fields.get(opts.a_col or "")
        kind = "chat" if _is_chat(a) else "text"
        return f"labelled A/B {kind} (label column '{opts.label_col}')"
    if fmt == "seal":
        return "seal pairs table"
    if fmt == "hh-rlhf":
        return "hh-rlhf transcripts (TRL implicit prompt, text)"
    if fmt == "multi-variant":
        return "multi-variant (lists of chosen and rejected responses)"
    if fmt == "conversation":
        system = " with system messages" if _has_system(chosen, prompt, fields.get(opts.rejected_col)) else ""
        turns = [m for v in (prompt, chosen) if _is_chat(v) for m in (v or [])]
        users = sum(str(m.get("role", "")).lower() in ("user", "human") for m in turns)
        multi = ", multi-turn" if users > 1 else ""
        if prompt is None or opts.prompt_col not in fields:
            return f"TRL conversational, implicit prompt{system}{multi}"
        if isinstance(prompt, str):
            if _is_chat(chosen) and chosen and str(chosen[0].get("content")) == prompt:
                extra = f", '{k}' column repeats chosen" if (k := _repeat_column(fields, opts)) else ""
                return f"UltraFeedback-binarized (prompt repeated in the message lists{extra}){system}{multi}"
            return f"chat messages with a text prompt{system}{multi}"
        return f"TRL conversational, explicit prompt{system}{multi}"
    if prompt is None or opts.prompt_col not in fields:
        return "pairs without a prompt column (empty contexts)"
    return "pairs (prompt / chosen / rejected text, TRL explicit prompt)"


def _repeat_column(fields: Mapping[str, Any], opts: LoadOptions) -> str | None:
    chosen = fields.get(opts.chosen_col)
    for k, v in fields.items():
        if k not in (opts.chosen_col, opts.rejected_col) and v == chosen:
            return k
    return None


NORMALISERS = {
    "hh-rlhf": from_hh_rlhf,
    "pairs": from_pairs,
    "conversation": from_pairs,
    "multi-variant": from_multi_variant,
    "labelled": from_labelled,
    "seal": from_seal,
}


def normalise(
    fmt: Format, fields: Mapping[str, Any], path: str, number: int, opts: LoadOptions
) -> Normalised:
    if fmt == "auto":
        fmt = detect_format(fields, opts)
    return NORMALISERS[fmt](fields, path, number, opts)
