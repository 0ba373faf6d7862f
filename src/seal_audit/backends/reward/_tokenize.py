"""Fast-tokenizer encoding with SEAL's truncation rule: cut the context from the left, keep the response.

Context and response are encoded separately by the Rust ``tokenizers`` backend (one batched call
each) and joined by the tokenizer's own post-processor, which gives exactly the ids of
``tokenizer(context, response)`` when nothing is cut, and lets the cut fall on token boundaries
of the context only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seal_audit.backends.reward.base import Encoded
from seal_audit.data.errors import ConfigError


class FastTokenizer:
    """A private, padding- and truncation-free copy of a HF tokenizer's Rust backend."""

    def __init__(self, hf_tokenizer: Any) -> None:
        backend = getattr(hf_tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ConfigError(
                f"{type(hf_tokenizer).__name__} is not a fast (Rust) tokenizer; seal-audit needs one "
                "(save the model with a tokenizer.json)"
            )
        from tokenizers import Tokenizer

        # a copy: the HF wrapper's own backend may carry padding/truncation settings
        self.tok = Tokenizer.from_str(backend.to_str())
        self.tok.no_padding()
        self.tok.no_truncation()
        self.hf = hf_tokenizer
        self.pair_specials = self.tok.num_special_tokens_to_add(True)
        self.single_specials = self.tok.num_special_tokens_to_add(False)
        self.single_affix = _single_affix(self.tok)
        self.word_local = _word_local(self.tok.to_str())

    def plain(self, texts: Sequence[str]) -> list[Any]:
        return list(self.tok.encode_batch(list(texts), add_special_tokens=False))

    def encode_text_pairs(self, items: Sequence[tuple[str, str]], max_length: int) -> list[Encoded]:
        """``tokenizer(context, response)`` with left truncation of the context."""
        ctx = self.plain([c for c, _ in items])
        resp = self.plain([r for _, r in items])
        budget = max(1, max_length - self.pair_specials)
        out: list[Encoded] = []
        for c, r in zip(ctx, resp, strict=True):
            truncated = len(c) + len(r) > budget
            if truncated:
                if len(r) >= budget:
                    r.truncate(budget, direction="right")
                    c = self.tok.encode("", add_special_tokens=False)
                else:
                    c.truncate(budget - len(r), direction="left")
            enc = self.tok.post_process(c, r, add_special_tokens=True)
            out.append(_encoded(enc, truncated))
        return out

    def encode_joined(self, items: Sequence[tuple[str, str]], max_length: int) -> list[Encoded]:
        """One sequence ``context + response`` (encoders, the local RM) with left truncation."""
        from tokenizers import Encoding

        budget = max(1, max_length - self.single_specials)
        resp = self.plain([r for _, r in items])
        contexts = [c for c, _ in items]
        ctx = self._context_tails(contexts, resp, budget) if self.word_local else self.plain(contexts)
        if self.single_affix is not None:
            return _joined_ids(ctx, resp, budget, self.single_affix)
        out: list[Encoded] = []
        for c, r in zip(ctx, resp, strict=True):
            truncated = len(c) + len(r) > budget
            if truncated:
                if len(r) >= budget:
                    r.truncate(budget, direction="right")
                    joined = r
                else:
                    c.truncate(budget - len(r), direction="left")
                    joined = Encoding.merge([c, r])
            else:
                joined = Encoding.merge([c, r])
            out.append(_encoded(self.tok.post_process(joined, None, add_special_tokens=True), truncated))
        return out

    def _context_tails(self, contexts: Sequence[str], resp: Sequence[Any], budget: int) -> list[Any]:
        """Encodings of the contexts, or of a tail long enough to give the tokens that are kept.

        Only the last ``budget - len(response)`` context tokens survive the left cut, yet a long
        context used to be tokenized whole (on the 50 longest hh-rlhf texts, 28,625 tokens for
        at most 12,700 kept). For a tokenizer whose tokens never cross a space (``word_local``),
        tokenizing the text from a space on gives exactly the full tokenization's tail from that
        word on; a tail that yields no more than the tokens kept (so that the cut and the
        ``truncated`` flag could differ) is tokenized again whole.
        """
        window = TAIL_CHARS_PER_TOKEN * budget
        cut = [_tail(c, window) for c in contexts]
        enc = self.plain(cut)
        redo = [
            i
            for i, (c, t, e, r) in enumerate(zip(contexts, cut, enc, resp, strict=True))
            if len(t) < len(c) and len(e.ids) <= max(1, budget - len(r.ids))
        ]
        for i, e in zip(redo, self.plain([contexts[i] for i in redo]), strict=True):
            enc[i] = e
        return enc

    def encode_texts(self, texts: Sequence[str], max_length: int) -> list[Encoded]:
        """Single texts, cut on the right (sentence-transformers' convention for embeddings)."""
        budget = max(1, max_length - self.single_specials)
        out: list[Encoded] = []
        for e in self.plain(texts):
            truncated = len(e) > budget
            if truncated:
                e.truncate(budget, direction="right")
            out.append(_encoded(self.tok.post_process(e, None, add_special_tokens=True), truncated))
        return out

    def encode_rendered(self, text: str, max_length: int) -> tuple[list[int], bool]:
        """A fully rendered string (chat template / concat), specials already in the text."""
        ids: list[int] = self.tok.encode(text, add_special_tokens=False).ids
        return ids, len(ids) > max_length


TAIL_CHARS_PER_TOKEN = 8
"""Characters of a long context tokenized per token that can be kept (English WordPiece averages
about 4.5 characters a token on hh-rlhf); a tail that falls short is tokenized again whole."""


def _word_local(tokenizer_json: str) -> bool:
    """True for BERT's WordPiece pipeline, whose tokens are made word by word: the normalizer maps
    each character on its own and the pre-tokenizer splits at every space, so no token spans one."""
    import json

    spec = json.loads(tokenizer_json)
    kind = {part: (spec.get(part) or {}).get("type") for part in ("normalizer", "pre_tokenizer", "model")}
    return kind == {"normalizer": "BertNormalizer", "pre_tokenizer": "BertPreTokenizer", "model": "WordPiece"}


def _tail(text: str, chars: int) -> str:
    """``text`` from the first space or newline at or after ``len(text) - chars`` (all of it if short)."""
    if len(text) <= chars:
        return text
    start = len(text) - chars
    cuts = [i for i in (text.find(" ", start), text.find("\n", start)) if i >= 0]
    return text[min(cuts) :] if cuts else text


Affix = tuple[list[int], list[int], list[int], list[int], int]
"""The single-sequence post-processor as plain lists: (prefix ids, suffix ids, prefix type ids,
suffix type ids, the sequence's type id)."""


def _single_affix(tok: Any) -> Affix | None:
    """What the post-processor adds around one sequence, when it only adds fixed tokens.

    ``Encoding.truncate``/``merge``/``post_process`` build new Rust objects (offsets, words,
    overflow pieces) for every text: on the 50 longest hh-rlhf texts they took 35 of the 60 ms
    of ``encode_joined``. Where the post-processor provably only wraps the ids (a probe of two
    lengths gives the same prefix and suffix, as BERT's and RoBERTa's templates do), the joined
    ids are cut and wrapped as plain lists. Anything else keeps the Rust path (None).
    """
    affixes = set()
    for probe in ("a", "hello there, world"):
        plain = tok.encode(probe, add_special_tokens=False)
        done = tok.post_process(plain, None, add_special_tokens=True)
        ids, types, n = list(done.ids), list(done.type_ids), len(plain.ids)
        for start in range(len(ids) - n + 1):
            if ids[start : start + n] == list(plain.ids):
                break
        else:
            return None
        seq_types = set(types[start : start + n])
        if len(seq_types) != 1:
            return None
        end = start + n
        affixes.add(
            (tuple(ids[:start]), tuple(ids[end:]), tuple(types[:start]), tuple(types[end:]), *seq_types)
        )
    if len(affixes) != 1:
        return None
    pre, suf, pre_t, suf_t, seq_type = affixes.pop()
    return list(pre), list(suf), list(pre_t), list(suf_t), int(seq_type)


def _joined_ids(ctx: Sequence[Any], resp: Sequence[Any], budget: int, affix: Affix) -> list[Encoded]:
    pre, suf, pre_t, suf_t, seq_type = affix
    out: list[Encoded] = []
    for c, r in zip(ctx, resp, strict=True):
        c_ids, r_ids = c.ids, r.ids
        truncated = len(c_ids) + len(r_ids) > budget
        if not truncated:
            body = c_ids + r_ids
        elif len(r_ids) >= budget:
            body = r_ids[:budget]
        else:
            body = c_ids[len(c_ids) - (budget - len(r_ids)) :] + r_ids
        ids = pre + body + suf
        types = pre_t + [seq_type] * len(body) + suf_t
        out.append(Encoded(length=len(ids), n_tokens=len(ids), truncated=truncated, data=(ids, types)))
    return out


def _encoded(enc: Any, truncated: bool) -> Encoded:
    ids = enc.ids
    return Encoded(length=len(ids), n_tokens=len(ids), truncated=truncated, data=(ids, enc.type_ids))
