"""Controlled transforms on real hh-rlhf texts: they change what they say, keep what they must, and
are exactly reproducible (in this process and in a fresh one)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from typing import Any

import pytest

from seal_audit.features import LabelItem, get_featurizer, label_items
from seal_audit.rewrite import CONTROLLED, apply_controlled, get_transform, list_transforms, marker_roles
from seal_audit.rewrite.controlled import (
    FILLER_SENTENCES,
    HEDGE_SENTENCES,
    NEGATIVE_SENTENCES,
    POSITIVE_SENTENCES,
    REFUSAL_PREFIX,
)
from seal_audit.rewrite.markers import core_span, split_turns

NAMES = [t.name for t in CONTROLLED]


def _reply(response: str) -> str:
    """The final reply without its marker (what offline featurizers read)."""
    return split_turns(response)[-1].body.strip()


def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _apply(name: str, pairs: list, scope: str = "response") -> list[tuple[Any, str, str, str]]:  # type: ignore[type-arg]
    spec = get_transform(name)
    out = []
    for p in pairs:
        for side in ("chosen", "rejected"):
            ctx, resp = apply_controlled(
                spec,
                p.context_for(side),
                p.response(side),
                scope=scope,
                pair_id=p.pair_id,
                side=side,  # type: ignore[arg-type]
            )
            out.append((p, side, ctx, resp))
    return out


def test_registry_lists_every_required_transform_with_documentation() -> None:
    names = {t.name for t in list_transforms()}
    required = {
        "paraphrase",
        "more_positive",
        "more_negative",
        "more_formal",
        "more_verbose",
        "more_concise",
        "add_positive",
        "add_negative",
        "add_apology",
        "add_hedge",
        "markdown_list",
        "markdown_headings",
        "add_filler",
        "typos",
        "whitespace",
        "refusal_prefix",
    }
    assert required <= names
    for t in list_transforms():
        assert t.changes and t.preserves and t.description, t.name
        if t.kind == "controlled":
            assert t.body_fn is not None and t.body_fn.__doc__, t.name
        else:
            assert t.instruction


def test_inserted_sentences_have_the_documented_sentiment() -> None:
    v = _vader()
    assert all(v.polarity_scores(s)["compound"] > 0.8 for s in POSITIVE_SENTENCES)
    assert all(v.polarity_scores(s)["compound"] < -0.8 for s in NEGATIVE_SENTENCES)
    for s in (*FILLER_SENTENCES, *HEDGE_SENTENCES, REFUSAL_PREFIX):
        assert v.polarity_scores(s)["compound"] == 0.0, s


@pytest.mark.parametrize("name", NAMES)
def test_markers_and_context_are_kept(name: str, hh_sample: list) -> None:  # type: ignore[type-arg]
    for p, side, ctx, resp in _apply(name, hh_sample):
        assert ctx == p.context_for(side)  # response scope: the context is byte-identical
        assert marker_roles(resp) == marker_roles(p.response(side)) == ["Assistant"]
        assert resp.startswith("Assistant:")
        assert marker_roles(ctx + resp) == marker_roles(p.transcript(side))


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_within_process(name: str, hh_sample: list) -> None:  # type: ignore[type-arg]
    assert _apply(name, hh_sample[:30]) == _apply(name, hh_sample[:30])


def _digest(pairs: list) -> str:  # type: ignore[type-arg]
    h = hashlib.sha256()
    for name in NAMES:
        for scope in ("response", "transcript"):
            for _, _, ctx, resp in _apply(name, pairs, scope):
                h.update(json.dumps([name, scope, ctx, resp]).encode())
    return h.hexdigest()


def test_deterministic_across_processes(hh_sample: list, hh_path: Any) -> None:  # type: ignore[type-arg]
    """A fresh interpreter (another hash seed) produces byte-identical rewrites."""
    ids = [p.pair_id for p in hh_sample[:25]]
    code = f"""
import sys; sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parent)!r})
from test_controlled import _digest
from seal_audit.sources import load_pairs
by_id = {{p.pair_id: p for p in load_pairs({str(hh_path)!r})}}
print(_digest([by_id[i] for i in {ids!r}]))
"""
    env = {**__import__("os").environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == _digest(hh_sample[:25])


def test_sentiment_transforms_move_vader_the_intended_way(hh_sample: list) -> None:  # type: ignore[type-arg]
    v = _vader()
    for name, sign in (("add_positive", 1), ("add_negative", -1)):
        deltas = []
        for p, side, _, resp in _apply(name, hh_sample):
            before = v.polarity_scores(_reply(p.response(side)))["compound"]
            after = v.polarity_scores(_reply(resp))["compound"]
            deltas.append(sign * (after - before))
        assert min(deltas) >= 0, name  # never the wrong way
        assert sum(d > 0 for d in deltas) >= 0.95 * len(deltas), name  # ties only at saturation
        assert sum(deltas) / len(deltas) > 0.4, name


@pytest.mark.parametrize(
    "name", ["add_hedge", "add_filler", "refusal_prefix", "markdown_list", "markdown_headings", "whitespace"]
)
def test_sentiment_neutral_transforms_leave_vader_unchanged(name: str, hh_sample: list) -> None:  # type: ignore[type-arg]
    v = _vader()
    # VADER reads line starts and dashes slightly differently, so a list may move it a hair
    tolerance = 0.05 if name == "markdown_list" else 0.0
    for p, side, _, resp in _apply(name, hh_sample):
        after = v.polarity_scores(_reply(resp))["compound"]
        assert abs(after - v.polarity_scores(_reply(p.response(side)))["compound"]) <= tolerance


@pytest.mark.parametrize(
    "name",
    [
        "add_positive",
        "add_negative",
        "add_apology",
        "add_hedge",
        "add_filler",
        "refusal_prefix",
        "markdown_headings",
    ],
)
def test_additive_transforms_keep_the_original_reply_verbatim(name: str, hh_sample: list) -> None:  # type: ignore[type-arg]
    skipped = 0
    for p, side, _, resp in _apply(name, hh_sample):
        original = _reply(p.response(side))
        assert original in resp
        if resp == p.response(side):
            # a block edit that would put a "Human:" inside the reply at a line start is not applied
            assert name == "markdown_headings" and "Human:" in original
            skipped += 1
            continue
        assert len(resp) > len(p.response(side))
    assert skipped <= 2


def test_filler_adds_only_length(hh_sample: list) -> None:  # type: ignore[type-arg]
    for p, side, _, resp in _apply("add_filler", hh_sample):
        added = len(resp.split()) - len(p.response(side).split())
        assert 8 <= added <= 11


def test_whitespace_changes_only_whitespace(hh_sample: list) -> None:  # type: ignore[type-arg]
    for p, side, _, resp in _apply("whitespace", hh_sample):
        assert resp != p.response(side)
        assert "".join(resp.split()) == "".join(p.response(side).split())


def test_markdown_list_keeps_words_in_order(hh_sample: list) -> None:  # type: ignore[type-arg]
    for p, side, _, resp in _apply("markdown_list", hh_sample):
        reply = _reply(p.response(side))
        if not reply:
            continue
        lines = resp.split("\n")[1:]
        assert all(line.startswith("- ") for line in lines)
        assert " ".join(line[2:] for line in lines).split() == reply.split()


def test_typos_misspell_inside_words_only(hh_sample: list) -> None:  # type: ignore[type-arg]
    changed_words = 0
    for p, side, _, resp in _apply("typos", hh_sample):
        before, after = p.response(side).split(), resp.split()
        assert len(before) == len(after)  # word count kept
        diff = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
        if any(len(w) >= 4 and w.isalpha() for w in _reply(p.response(side)).split()):
            assert diff
        for a, b in diff:
            assert a[0] == b[0] and a[-1] == b[-1]
            assert abs(len(a) - len(b)) <= 1
        changed_words += len(diff)
    assert changed_words > len(hh_sample)


def test_transcript_scope_typos_touch_every_turn_but_no_marker(hh_sample: list) -> None:  # type: ignore[type-arg]
    touched_context = 0
    for p, side, ctx, resp in _apply("typos", hh_sample, scope="transcript"):
        assert marker_roles(ctx + resp) == marker_roles(p.transcript(side))
        assert [t.marker for t in split_turns(ctx)] == [t.marker for t in split_turns(p.context_for(side))]
        touched_context += ctx != p.context_for(side)
    assert touched_context > 0.9 * 2 * len(hh_sample)


def test_transcript_scope_reply_transforms_leave_context_alone(hh_sample: list) -> None:  # type: ignore[type-arg]
    for p, side, ctx, _ in _apply("add_positive", hh_sample[:20], scope="transcript"):
        assert ctx == p.context_for(side)


def test_offline_featurizers_see_the_intended_shift(hh_sample: list) -> None:  # type: ignore[type-arg]
    """Each transform moves the feature it names in its intended_shift (as measured by the offline
    featurizers of the labeling stage)."""
    featurizers = [get_featurizer(n) for n in ("hedging", "refusal", "formatting", "length")]
    checks = {
        "add_apology": "apologizes",
        "add_hedge": "hedges",
        "refusal_prefix": "refusal_pattern",
        "markdown_headings": "has_heading",
    }
    for name, feature in checks.items():
        assert (feature, 1) in get_transform(name).intended_shift
        items = [
            LabelItem(p.pair_id, side, ctx, resp, variant=name)  # type: ignore[arg-type]
            for p, side, ctx, resp in _apply(name, hh_sample)
            if resp != p.response(side)
        ]
        frame = label_items(items, featurizers).frame
        values = frame[frame["feature"] == feature]["value"]
        assert len(values) == len(items) >= 2 * len(hh_sample) - 2
        assert (values == 1.0).all(), name
    items = [
        LabelItem(p.pair_id, side, ctx, resp, variant="markdown_list")  # type: ignore[arg-type]
        for p, side, ctx, resp in _apply("markdown_list", hh_sample)
        if _reply(resp).count("\n- ") >= 1
    ]
    frame = label_items(items, featurizers).frame
    assert (frame[frame["feature"] == "has_list"]["value"] == 1.0).all()


def test_empty_and_unmarked_replies() -> None:
    spec = get_transform("add_positive")
    _, resp = apply_controlled(
        spec, "\n\nHuman: hi\n\n", "Assistant:", scope="response", pair_id="p", side="chosen"
    )
    assert resp.startswith("Assistant: ") and resp[len("Assistant: ") :] in POSITIVE_SENTENCES
    # generic data without markers: the whole response is the reply
    _, resp = apply_controlled(spec, "What is 2+2?", "It is 4.", scope="response", pair_id="p", side="chosen")
    assert resp.startswith("It is 4. ") and marker_roles(resp) == []
    # nothing to misspell: the text stays as it is (the stage records it as rejected/unchanged)
    _, resp = apply_controlled(
        get_transform("typos"), "", "Assistant: ok", scope="response", pair_id="p", side="chosen"
    )
    assert resp == "Assistant: ok"


def test_core_span_and_split_turns_round_trip(hh_pairs: list) -> None:  # type: ignore[type-arg]
    for p in hh_pairs[:500]:
        for text in (p.transcript("chosen"), p.context, p.rejected):
            turns = split_turns(text)
            assert "".join(t.marker + t.body for t in turns) == text
            for t in turns:
                lead, core, trail = core_span(t.body)
                assert lead + core + trail == t.body
