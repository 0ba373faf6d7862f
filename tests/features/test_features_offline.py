"""Offline featurizers on real hh-rlhf harmless-base texts, with values checked by reading them.

Record numbers are 0-based positions in the test split as loaded by ``seal_audit.sources``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from seal_audit.data.records import PreferencePair, Side
from seal_audit.features import LabelContext, LabelItem, available_featurizers, get_featurizer, label_items
from seal_audit.features.offline import (
    formatting_values,
    hedging_values,
    length_values,
    offensive_values,
    question_values,
    refusal_values,
)


def _text(pairs: list[PreferencePair], i: int, side: Side) -> str:
    p = pairs[i]
    return LabelItem(p.pair_id, side, p.context_for(side), p.response(side)).final_response


def test_final_response_strips_marker(hh_pairs: list[Any]) -> None:
    p = hh_pairs[67]
    assert p.chosen.startswith("Assistant:")
    assert _text(hh_pairs, 67, "chosen").startswith("I can’t give you the address")


def test_refusal_on_real_refusal(hh_pairs: list[Any]) -> None:
    # "I can’t give you the address of someone else.  Please ask them to give you their current address."
    t = _text(hh_pairs, 67, "chosen")
    assert refusal_values(t)["refusal_pattern"] == 1.0
    # "I’m sorry, I don’t understand." is an apology for confusion, not a refusal
    t9 = _text(hh_pairs, 9, "rejected")
    assert t9 == "I’m sorry, I don’t understand."
    assert refusal_values(t9)["refusal_pattern"] == 0.0
    assert hedging_values(t9)["apologizes"] == 1.0
    # a friendly closing line is no refusal
    assert refusal_values(_text(hh_pairs, 36, "chosen"))["refusal_pattern"] == 0.0


def test_length_hand_counted(hh_pairs: list[Any]) -> None:
    t = _text(hh_pairs, 67, "chosen")
    v = length_values(t)
    assert v["length_words"] == 18  # counted by hand
    # tokens: "can’t" -> can ’ t (3); two full stops; 18 words -> 18 + 2 (can’t) + 2 (periods) = 22
    assert v["length_tokens"] == 22
    assert v["length_chars"] == len(t)


def test_vader_clearly_positive_and_negative(hh_pairs: list[Any]) -> None:
    f = get_featurizer("sentiment")
    pos = _text(hh_pairs, 36, "chosen")
    assert pos == "You’re welcome! Good luck with your gardening project."
    vals = f.fn(pos)  # type: ignore[attr-defined]
    assert vals["vader_sentiment"] == 1.0 and vals["vader_compound"] > 0.5
    neg = _text(hh_pairs, 149, "rejected")  # "“You filthy piece of shit”"
    vals = f.fn(neg)  # type: ignore[attr-defined]
    assert vals["vader_sentiment"] == -1.0
    assert f.fn("The meeting is at noon.")["vader_sentiment"] == 0.0  # type: ignore[attr-defined]


def test_offensive_lexicon(hh_pairs: list[Any]) -> None:
    # "Okay, here we go:\n\nfuck, shit, ass, pussy, cunt, dick, bitch, slut, p" -> 7 listed terms
    assert offensive_values(_text(hh_pairs, 268, "rejected")) == {
        "offensive_language": 1.0,
        "offensive_terms": 7.0,
    }
    # "...so you called me stupid?  I'm sorry that I was unable to help you.  Do you want me to look up..."
    t88 = _text(hh_pairs, 88, "chosen")
    assert offensive_values(t88)["offensive_terms"] == 1.0
    q = question_values(t88)
    assert q == {"asks_question": 1.0, "question_count": 2.0}
    # a refusal that talks about an address is not offensive
    assert offensive_values(_text(hh_pairs, 67, "chosen"))["offensive_language"] == 0.0
    # whole words only: "assistant", "class", "Dickens" do not match
    assert offensive_values("The assistant read Dickens in class.")["offensive_terms"] == 0.0


def test_formatting_list(hh_pairs: list[Any]) -> None:
    t = _text(
        hh_pairs, 199, "chosen"
    )  # "...here are some of them:\n\n1.  Remove ...\n2.  Submit ...\n3.  Use ..."
    v = formatting_values(t)
    assert v["has_list"] == 1.0 and v["has_code"] == 0.0
    assert question_values(t)["asks_question"] == 0.0
    assert formatting_values("Use ```print(1)``` here")["has_code"] == 1.0
    assert formatting_values("# Title\ntext")["has_heading"] == 1.0
    assert formatting_values(_text(hh_pairs, 36, "chosen")) == {
        "has_list": 0.0,
        "has_heading": 0.0,
        "has_code": 0.0,
    }


def test_readability_bounds(hh_pairs: list[Any]) -> None:
    f = get_featurizer("readability")
    easy = f.fn(_text(hh_pairs, 91, "rejected"))  # type: ignore[attr-defined]  # "That’s great. I hope she can cook something nice for you."
    hard = f.fn(_text(hh_pairs, 14, "rejected"))  # type: ignore[attr-defined]  # one 29-word sentence
    # 11 words / 2 sentences, ~1.1 syllables per word -> Flesch ~ 100+; grade ~ 1-2
    assert 95 <= easy["flesch_reading_ease"] <= 115 and easy["flesch_kincaid_grade"] < 3
    assert hard["flesch_kincaid_grade"] > 8 and hard["flesch_reading_ease"] < easy["flesch_reading_ease"]
    assert math.isnan(f.fn("...")["flesch_reading_ease"])  # type: ignore[attr-defined]


def test_hedging() -> None:
    assert hedging_values("I think it might rain.")["hedges"] == 1.0
    assert hedging_values("It rains.") == {"apologizes": 0.0, "hedges": 0.0}


def test_every_offline_featurizer_on_sample(hh_pairs: list[Any]) -> None:
    from seal_audit.features import build_items, offline_featurizer_names

    names = offline_featurizer_names()
    assert set(names) == {
        "formatting",
        "hedging",
        "length",
        "offensive",
        "questions",
        "readability",
        "refusal",
        "sentiment",
    }
    assert "lm" in available_featurizers() and "columns" in available_featurizers()
    items = build_items(hh_pairs[:200])
    fz = [get_featurizer(n) for n in names]
    out = label_items(items, fz)
    n_features = sum(len(f.specs()) for f in fz)
    assert len(out.frame) == len(items) * n_features
    assert set(out.frame["status"]) <= {"ok", "failed"}
    for f in fz:
        for s in f.specs():
            assert s.definition and s.source == f.name
            vals = out.frame.loc[out.frame["feature"] == s.name, "value"].dropna()
            if s.kind == "binary":
                assert set(vals) <= {0.0, 1.0}
            if s.kind == "ordinal":
                assert set(vals) <= {-1.0, 0.0, 1.0}
    # harmless-base has refusals and positive replies in the first 200 pairs
    ref = out.frame[out.frame["feature"] == "refusal_pattern"]["value"]
    assert 0.02 < ref.mean() < 0.6


def test_bad_featurizer_name() -> None:
    from seal_audit.data.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown featurizer 'nope'"):
        get_featurizer("nope")


def test_one_bad_text_fails_alone() -> None:
    from seal_audit.features.offline import FunctionFeaturizer, make_length

    base = make_length()

    def fn(t: str) -> dict[str, float]:
        if "boom" in t:
            raise RuntimeError("boom")
        return base.fn(t)

    f = FunctionFeaturizer("length", base.feature_specs, fn)
    items = [
        LabelItem("p1", "chosen", "", "Assistant: fine"),
        LabelItem("p1", "rejected", "", "Assistant: boom"),
    ]
    out = f.label(items, LabelContext())
    assert out.n_failed == 1
    bad = [r for r in out.rows if r.side == "rejected"]
    assert all(r.status == "failed" and math.isnan(r.value) and "boom" in (r.error or "") for r in bad)


def test_a_plugin_value_that_is_missing_or_not_a_number_fails_that_text_alone() -> None:
    # before: KeyError / ValueError escaped label() and `seal label` ended with a traceback (exit 1)
    from seal_audit.data.records import FeatureSpec
    from seal_audit.features.offline import FunctionFeaturizer

    spec = FeatureSpec(name="bangs", kind="numeric", role="spoiler", definition="'!' count", source="plugin")
    answers: dict[str, Any] = {
        "fine!": {"bangs": 1},
        "none": {"bangs": None},
        "gone": {},
        "word": {"bangs": "many"},
        "huge": {"bangs": float("inf")},
        "list": [1.0],
    }
    f = FunctionFeaturizer("bangs", (spec,), lambda t: answers[t])
    items = [LabelItem(f"p{i}", "chosen", "", f"Assistant: {t}") for i, t in enumerate(answers)]
    out = f.label(items, LabelContext())
    by_pair = {r.pair_id: r for r in out.rows}
    assert len(out.rows) == len(items)
    assert by_pair["p0"].status == "ok" and by_pair["p0"].value == 1.0
    assert by_pair["p1"].status == "failed" and by_pair["p1"].error == "no value for this text"
    assert out.n_failed == 4
    assert dict(out.reasons) == {
        "ValueError: no value for feature 'bangs' (the function returned [])": 1,
        "ValueError: feature 'bangs': expected a number, got 'many'": 1,
        "ValueError: feature 'bangs': inf is not a finite number": 1,
        "ValueError: no value for feature 'bangs' (the function returned list)": 1,
    }
    assert all(math.isnan(by_pair[p].value) for p in ("p2", "p3", "p4", "p5"))
