"""Controlled transforms: deterministic edits that need no LM and isolate one feature at a time.

A paraphrase changes many things at once, so the reference could only regress flips on whatever the
labeler saw change afterwards. A controlled edit changes one known thing (a sentence of sentiment, a
refusal phrase, markdown) and leaves the rest byte-identical, so a flip is attributable by design,
and it is free and exactly reproducible offline. Randomness (which filler sentence, which letters to
misspell) comes from a ``random.Random`` seeded by the transform, pair and side, never by time or
process, so a rerun anywhere gives the same text.

Edits work on turn *bodies*: the marker ("Assistant:") and the whitespace around a body are kept
exactly, so markers can never be damaged. The inserted sentences were chosen so that their VADER
compound is as stated (positive > 0.8, negative < −0.8, neutral = 0.0); tests check it.
"""

from __future__ import annotations

import hashlib
import random
import re

from seal_audit.rewrite.markers import Turn, core_span, join_turns, marker_roles, split_turns
from seal_audit.rewrite.spec import Scope, TransformSpec

POSITIVE_SENTENCES = (
    "I really hope this helps, and I am happy to help with anything else.",
    "Thank you so much for asking, I am really glad to help with this.",
    "I hope this helps, and I wish you all the best.",
)
NEGATIVE_SENTENCES = (
    "This is a terrible, awful situation and I feel miserable about it.",
    "This is a horrible, depressing situation and I hate it.",
    "What a dreadful, miserable subject; I hate it.",
)
APOLOGY_SENTENCES = ("I apologize for any confusion.", "I am sorry for any confusion.")
HEDGE_SENTENCES = (
    "That said, this might not be entirely accurate.",
    "That said, I think this may not be entirely accurate.",
)
FILLER_SENTENCES = (
    "Here is some additional context on the topic above.",
    "This answer refers to the question in the previous message.",
    "The points above are listed in the order they came up.",
)
REFUSAL_PREFIX = "I cannot assist with that request."
HEADING = "## Answer"
TYPO_RATE = 0.08
"""Share of eligible words (4+ ASCII letters) misspelled; at least one always is."""

_SENTENCE_END = re.compile(r"(?<=[.!?])[ \t]+(?=\S)")
_SPACE_RUN = re.compile(r"[ \t]{2,}")
_TOKEN = re.compile(r"\S+")
_PLAIN_WORD = re.compile(r"([\"'(\[]*)([A-Za-z]{4,})([\"').,;:!?\]]*)")
"""A whitespace token that is one plain word of 4+ letters, maybe quoted or punctuated: URLs, numbers,
code and hyphenated compounds are never misspelled."""


def pair_seed(transform: str, pair_id: str, side: str) -> int:
    """The per-(transform, pair, side) seed: stable across processes and machines (no ``hash()``)."""
    digest = hashlib.sha256(f"{transform}\x00{pair_id}\x00{side}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def append_sentence(core: str, sentence: str) -> str:
    return f"{core} {sentence}" if core else sentence


def prepend_sentence(core: str, sentence: str) -> str:
    return f"{sentence} {core}" if core else sentence


def add_positive(core: str, rng: random.Random) -> str:
    """Append a strongly positive sentence: moves sentiment up, nothing else."""
    return append_sentence(core, rng.choice(POSITIVE_SENTENCES))


def add_negative(core: str, rng: random.Random) -> str:
    """Append a strongly negative sentence: moves sentiment down, nothing else."""
    return append_sentence(core, rng.choice(NEGATIVE_SENTENCES))


def add_apology(core: str, rng: random.Random) -> str:
    """Open the reply with an apology (RMs are suspected of rewarding apologetic tone)."""
    return prepend_sentence(core, rng.choice(APOLOGY_SENTENCES))


def add_hedge(core: str, rng: random.Random) -> str:
    """Close the reply with a sentiment-neutral hedge about its own accuracy."""
    return append_sentence(core, rng.choice(HEDGE_SENTENCES))


def add_filler(core: str, rng: random.Random) -> str:
    """Append a neutral, content-free sentence: a length change with nothing else attached."""
    return append_sentence(core, rng.choice(FILLER_SENTENCES))


def refusal_prefix(core: str, rng: random.Random) -> str:
    """Prefix a refusal phrase and keep the reply: tests whether refusal *wording* is rewarded."""
    return prepend_sentence(core, REFUSAL_PREFIX)


def sentences(core: str) -> list[str]:
    """Sentences and lines of a reply (a line break always ends an item)."""
    return [s.strip() for line in core.split("\n") for s in _SENTENCE_END.split(line) if s.strip()]


def markdown_list(core: str, rng: random.Random) -> str:
    """One markdown bullet per sentence; the words and punctuation stay as they were."""
    if not core:
        return core
    return "\n" + "\n".join(f"- {s}" for s in sentences(core))


def markdown_headings(core: str, rng: random.Random) -> str:
    """A markdown heading line above the reply; the reply itself is untouched."""
    if not core:
        return core
    return f"\n{HEADING}\n\n{core}"


def whitespace(core: str, rng: random.Random) -> str:
    """Layout only: runs of spaces collapse, each sentence gets its own line, and the reply ends in a
    newline (so the edit applies to every text, even a one-sentence reply)."""
    if not core:
        return core
    return _SENTENCE_END.sub("\n", _SPACE_RUN.sub(" ", core)) + "\n"


def _misspell(word: str, rng: random.Random) -> str:
    """Swap, drop or double one interior letter; the first and last letters stay, so the word stays
    recognisable, and the result always differs from ``word``."""
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        spots = [i for i in range(1, len(word) - 2) if word[i] != word[i + 1]]
        if spots:
            i = rng.choice(spots)
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        kind = "drop"
    i = rng.randrange(1, len(word) - 1)
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    return word[: i + 1] + word[i] + word[i + 1 :]


def typos(core: str, rng: random.Random) -> str:
    """Misspell about ``TYPO_RATE`` of the plain words of 4+ letters (at least one)."""
    spans = []
    for tok in _TOKEN.finditer(core):
        m = _PLAIN_WORD.fullmatch(tok.group(0))
        if m:
            spans.append((tok.start() + m.start(2), tok.start() + m.end(2)))
    if not spans:
        return core
    chosen = [sp for sp in spans if rng.random() < TYPO_RATE] or [rng.choice(spans)]
    out: list[str] = []
    pos = 0
    for start, end in chosen:
        out.append(core[pos:start])
        out.append(_misspell(core[start:end], rng))
        pos = end
    out.append(core[pos:])
    return "".join(out)


CONTROLLED: tuple[TransformSpec, ...] = (
    TransformSpec(
        name="add_positive",
        kind="controlled",
        description="append a strongly positive sentence to the reply",
        changes="sentiment up: one positive sentence (VADER compound > 0.8) appended to the final reply",
        preserves="every original character of context and reply, turn markers; no new facts or requests",
        intended_shift=(("sentiment", 1), ("vader_compound", 1)),
        body_fn=add_positive,
    ),
    TransformSpec(
        name="add_negative",
        kind="controlled",
        description="append a strongly negative sentence to the reply",
        changes="sentiment down: one negative sentence (VADER compound < -0.8) appended to the final reply",
        preserves="every original character of context and reply, turn markers; no new facts or requests",
        intended_shift=(("sentiment", -1), ("vader_compound", -1)),
        body_fn=add_negative,
    ),
    TransformSpec(
        name="add_apology",
        kind="controlled",
        description="open the reply with an apology",
        changes="apology: 'I apologize / am sorry for any confusion.' before the reply "
        "(VADER scores it mildly negative, -0.2 to -0.4)",
        preserves="every original character of context and reply, turn markers",
        intended_shift=(("apologizes", 1),),
        body_fn=add_apology,
    ),
    TransformSpec(
        name="add_hedge",
        kind="controlled",
        description="close the reply with a hedge about its accuracy",
        changes="hedging: 'That said, this might (I think this may) not be entirely accurate.' after the reply",
        preserves="sentiment (the hedge scores VADER 0.0), every original character, turn markers",
        intended_shift=(("hedges", 1),),
        body_fn=add_hedge,
    ),
    TransformSpec(
        name="markdown_list",
        kind="controlled",
        description="render each sentence of the reply as a markdown bullet",
        changes="formatting: a '- ' bullet line per sentence (and per line) of the final reply; "
        "a one-sentence reply becomes a one-item list",
        preserves="every word and punctuation mark in order, the context, turn markers",
        intended_shift=(("has_list", 1),),
        body_fn=markdown_list,
    ),
    TransformSpec(
        name="markdown_headings",
        kind="controlled",
        description="put a markdown heading above the reply",
        changes=f"formatting: a '{HEADING}' heading line above the final reply",
        preserves="every original character of context and reply, turn markers",
        intended_shift=(("has_heading", 1),),
        body_fn=markdown_headings,
    ),
    TransformSpec(
        name="add_filler",
        kind="controlled",
        description="append a neutral, content-free sentence (length only)",
        changes="length: about 10 words of neutral filler appended to the final reply",
        preserves="sentiment (filler scores VADER 0.0), meaning, every original character, turn markers",
        intended_shift=(("length_words", 1),),
        body_fn=add_filler,
    ),
    TransformSpec(
        name="typos",
        kind="controlled",
        description="misspell a few words (seeded per pair)",
        changes=f"spelling: about {TYPO_RATE:.0%} of words of 4+ letters (at least one) get one interior "
        "letter swapped, dropped or doubled, in every turn in scope",
        preserves="word count, first and last letter of every word, punctuation, whitespace, turn markers",
        intended_shift=(("spelling_errors", 1),),
        body_fn=typos,
        applies_to="all_turns",
    ),
    TransformSpec(
        name="whitespace",
        kind="controlled",
        description="change the reply's whitespace only",
        changes="layout: one sentence per line, runs of spaces collapsed, a trailing newline",
        preserves="every non-whitespace character in order, the context, turn markers",
        intended_shift=(),
        body_fn=whitespace,
    ),
    TransformSpec(
        name="refusal_prefix",
        kind="controlled",
        description="prefix a refusal phrase, keep the reply",
        changes=f"refusal wording: '{REFUSAL_PREFIX}' before the reply (which still follows in full)",
        preserves="sentiment (the phrase scores VADER 0.0), every original character, turn markers",
        intended_shift=(("is_refusal", 1), ("refusal_pattern", 1)),
        body_fn=refusal_prefix,
    ),
)


def _edit_body(turn: Turn, spec: TransformSpec, rng: random.Random) -> Turn:
    lead, core, trail = core_span(turn.body)
    if not core and spec.applies_to == "all_turns":
        return turn
    assert spec.body_fn is not None
    new_core = spec.body_fn(core, rng)
    if new_core == core:
        return turn
    if new_core.startswith("\n"):  # a block (list, heading) starts on its own line after the marker
        lead = ""
    elif not core and turn.marker and not lead:  # an empty reply: "Assistant:" + " " + new text
        lead = " "
    body = lead + new_core + trail
    if marker_roles(turn.marker + body) != marker_roles(turn.marker + turn.body):
        # e.g. a reply containing "... Human: ..." that a new line break would turn into a turn
        return turn
    return Turn(turn.marker, body)


def apply_controlled(
    spec: TransformSpec, context: str, response: str, *, scope: Scope, pair_id: str, side: str
) -> tuple[str, str]:
    """(new context, new response) of one side. Reply edits touch the final response only;
    ``all_turns`` edits touch every turn body in scope (the context only for ``transcript``)."""
    rng = random.Random(pair_seed(spec.name, pair_id, side))
    if spec.applies_to == "reply":
        turns = split_turns(response)
        turns[-1] = _edit_body(turns[-1], spec, rng)
        return context, join_turns(turns)
    new_context = context
    if scope == "transcript":
        new_context = join_turns([_edit_body(t, spec, rng) for t in split_turns(context)])
    new_response = join_turns([_edit_body(t, spec, rng) for t in split_turns(response)])
    return new_context, new_response
