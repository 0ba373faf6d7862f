"""The list-based joining and the context tails of ``_tokenize.FastTokenizer.encode_joined`` give
exactly the ids, type ids and ``truncated`` flags of the Rust ``truncate``/``merge``/``post_process``
path they replace, on every hh-rlhf text of the first 400 pairs, at budgets from 8 to 512 tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")

from seal_audit.backends.reward._tokenize import FastTokenizer, _tail, _word_local


def _reference(tok: FastTokenizer) -> FastTokenizer:
    ref = FastTokenizer(tok.hf)
    ref.single_affix = None
    ref.word_local = False
    return ref


def _assert_same(fast: FastTokenizer, items: list[tuple[str, str]]) -> None:
    ref = _reference(fast)
    for max_length in (8, 16, 64, 256, 512):
        got = fast.encode_joined(items, max_length)
        want = ref.encode_joined(items, max_length)
        for g, w in zip(got, want, strict=True):
            assert list(g.data[0]) == list(w.data[0])
            assert list(g.data[1]) == list(w.data[1])
            assert (g.truncated, g.n_tokens, g.length) == (w.truncated, w.n_tokens, w.length)


def _items(hh_pairs: list) -> list[tuple[str, str]]:
    items = [(p.context_for(s), p.response(s)) for p in hh_pairs for s in ("chosen", "rejected")]
    long_ctx = " ".join(c for c, _ in items[:60])  # one context far beyond every budget
    return [*items, (long_ctx, "Sure."), (long_ctx, items[0][1] * 40), ("", ""), ("x" * 5000, "ok")]


def test_minilm_wordpiece_tails_and_lists_equal_the_rust_path(hh_pairs: list) -> None:
    from seal_audit.backends.embed.encoder import TextEncoder

    fast = TextEncoder(None).fast
    assert fast.word_local and fast.single_affix is not None
    _assert_same(fast, _items(hh_pairs))


def test_sentencepiece_tokenizer_keeps_whole_contexts(tiny_rm: Path, hh_pairs: list) -> None:
    from transformers import AutoTokenizer

    fast = FastTokenizer(AutoTokenizer.from_pretrained(str(tiny_rm)))
    assert not fast.word_local  # not BERT's pipeline: contexts are tokenized whole
    _assert_same(fast, _items(hh_pairs))


def test_word_local_only_for_berts_pipeline_and_tail_cuts_at_a_space() -> None:
    bert = '{"normalizer": {"type": "BertNormalizer"}, "pre_tokenizer": {"type": "BertPreTokenizer"}, "model": {"type": "WordPiece"}}'
    assert _word_local(bert)
    assert not _word_local(bert.replace("BertPreTokenizer", "Metaspace"))
    assert not _word_local(bert.replace('{"type": "BertNormalizer"}', "null"))
    assert _tail("short", 10) == "short"
    assert _tail("aaaa bbbb\ncccc dddd", 8) == " dddd"
    assert _tail("aaaa bbbb cccc\ndddd", 8) == "\ndddd"
    assert _tail("x" * 50, 8) == "x" * 50  # no space to cut at: all of it
