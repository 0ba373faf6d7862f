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

        ctx = self.plain([c for c, _ in items])
        resp = self.plain([r for _, r in items])
        budget = max(1, max_length - self.single_specials)
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


def _encoded(enc: Any, truncated: bool) -> Encoded:
    ids = enc.ids
    return Encoded(length=len(ids), n_tokens=len(ids), truncated=truncated, data=(ids, enc.type_ids))
