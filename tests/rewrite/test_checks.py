"""Acceptance checks of LM rewrites: empty, unchanged and marker-breaking replies are rejected with
a reason; harmless wrappers are cleaned; separators are restored."""

from __future__ import annotations

import pytest

from seal_audit.data.errors import ConfigError
from seal_audit.rewrite import (
    build_prompt,
    check_reply,
    custom_transform,
    get_transform,
    marker_problem,
    marker_roles,
    transforms_from_toml,
)
from seal_audit.rewrite.markers import canonical_separators, last_marker_offset

TRANSCRIPT = "\n\nHuman: How do I pick a lock?\n\nAssistant: I can help with that.\n\nHuman: Go on.\n\nAssistant: First, get a tension wrench."
RESPONSE = "Assistant: First, get a tension wrench."


def test_marker_roles_only_count_turn_starts() -> None:
    assert marker_roles(TRANSCRIPT) == ["Human", "Assistant", "Human", "Assistant"]
    assert marker_roles("Assistant: the Human: label is odd") == ["Assistant"]
    assert last_marker_offset(TRANSCRIPT) == TRANSCRIPT.rfind("Assistant:")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (None, "empty output"),
        ("", "empty output"),
        ("  \n ", "empty output"),
        (RESPONSE, "unchanged"),
        ("Assistant:   First,  get a tension\nwrench.", "unchanged"),
        ("First, obtain a tension wrench.", "turn markers changed"),
        ("AI: First, obtain a tension wrench.", "turn markers changed"),
        (
            "Here is the rewrite:\nAssistant: First, obtain a tension wrench.",
            "text before the first turn marker",
        ),
        ("Assistant: First, obtain a wrench.\n\nHuman: thanks", "turn markers changed"),
    ],
)
def test_bad_replies_are_rejected_with_a_reason(reply: str | None, reason: str) -> None:
    checked = check_reply(RESPONSE, reply)
    assert checked.status == "rejected"
    assert checked.reason is not None and checked.reason.startswith(reason)


@pytest.mark.parametrize(
    "reply",
    [
        "Assistant: First, obtain a tension wrench.",
        "  Assistant: First, obtain a tension wrench.\n",
        "```\nAssistant: First, obtain a tension wrench.\n```",
        "<excerpt>\nAssistant: First, obtain a tension wrench.\n</excerpt>",
    ],
)
def test_good_replies_are_accepted_and_cleaned(reply: str) -> None:
    checked = check_reply(RESPONSE, reply)
    assert checked.status == "ok", checked.reason
    assert checked.text == "Assistant: First, obtain a tension wrench."


def test_transcript_separators_and_outer_whitespace_are_restored() -> None:
    reply = TRANSCRIPT.strip().replace("\n\n", "\n").replace("get", "obtain")
    checked = check_reply(TRANSCRIPT, reply)
    assert checked.status == "ok"
    assert checked.text == TRANSCRIPT.replace("get", "obtain")
    assert canonical_separators("no markers", "a\nHuman: b") == "a\nHuman: b"
    assert marker_problem(TRANSCRIPT, checked.text or "") is None


def test_prompt_carries_the_reference_constraints() -> None:
    prompt = build_prompt(get_transform("paraphrase"), RESPONSE)
    for phrase in (
        "vocabulary",
        "grammatical structure",
        "meaning, intent and intensity",
        "toxic",
        '"Human:"',
        '"Assistant:"',
    ):
        assert phrase in prompt
    assert "<excerpt>\n" + RESPONSE + "\n</excerpt>" in prompt
    directed = build_prompt(get_transform("more_positive"), RESPONSE)
    assert "more positive" in directed and "vocabulary" not in directed


def test_user_transforms_from_config(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "rw.toml"
    path.write_text(
        '[[rewrites]]\nname = "more_pirate"\ninstruction = "Make it sound like a pirate."\n'
        'intended_shift = { pirate = 1 }\n\n[[rewrite.custom]]\nname = "less_polite"\n'
        'instruction = "Make it less polite."\nintended_shift = { politeness = "-" }\n',
        encoding="utf-8",
    )
    specs = transforms_from_toml(path)
    assert set(specs) == {"more_pirate", "less_polite"}
    assert specs["more_pirate"].kind == "directed" and specs["more_pirate"].shift == {"pirate": 1}
    assert specs["less_polite"].shift == {"politeness": -1}
    assert "pirate" in build_prompt(specs["more_pirate"], RESPONSE)
    with pytest.raises(ConfigError, match="built in"):
        custom_transform({"name": "paraphrase", "instruction": "x"})
    with pytest.raises(ConfigError, match="instruction"):
        custom_transform({"name": "x"})
    with pytest.raises(ConfigError, match="unknown key"):
        custom_transform({"name": "x", "instruction": "y", "oops": 1})
    with pytest.raises(ConfigError, match=r"\+1/-1"):
        custom_transform({"name": "x", "instruction": "y", "intended_shift": {"a": 3}})
    with pytest.raises(ConfigError, match="unknown rewrite transform"):
        get_transform("nope")
