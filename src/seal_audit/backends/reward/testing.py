"""Randomly initialised HF reward models built offline: for tests, self-checks and the GPU check.

They go through exactly the code path of a downloaded OpenAssistant RM (a directory with a
DeBERTa-v2/v3 sequence classifier and a fast tokenizer), with no network and in seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from seal_audit.backends.reward._runtime import import_torch, import_transformers
from seal_audit.data.records import PreferencePair

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tokenizer(texts: Iterable[str], vocab_size: int = 2000) -> Any:
    """A SentencePiece-like (Metaspace) BPE fast tokenizer trained on ``texts``, DeBERTa's specials."""
    import_transformers()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        unk_token="[UNK]",
        mask_token="[MASK]",
        model_max_length=512,
    )


def deberta_config(size: str, vocab_size: int) -> Any:
    """DeBERTa-v3 shapes: ``large`` is OpenAssistant/reward-model-deberta-v3-large-v2's exactly."""
    transformers = import_transformers()
    common: dict[str, Any] = {
        "max_position_embeddings": 512,
        "relative_attention": True,
        "position_buckets": 256,
        "pos_att_type": ["p2c", "c2p"],
        "norm_rel_ebd": "layer_norm",
        "share_att_key": True,
        "max_relative_positions": -1,
        "position_biased_input": False,
        "type_vocab_size": 0,
        "layer_norm_eps": 1e-7,
        "hidden_act": "gelu",
        "pad_token_id": 0,
        "num_labels": 1,
        # a wide init so that random rewards differ between texts (invariance tests need spread)
        "initializer_range": 0.02 if size == "large" else 0.3,
    }
    if size == "large":
        shape = {
            "vocab_size": 128100,
            "hidden_size": 1024,
            "num_hidden_layers": 24,
            "num_attention_heads": 16,
            "intermediate_size": 4096,
        }
    elif size == "tiny":
        shape = {
            "vocab_size": vocab_size,
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
        }
    else:
        raise ValueError(f"unknown size {size!r} (tiny or large)")
    return transformers.DebertaV2Config(**shape, **common)


def build_random_rm(
    out_dir: str | Path, texts: Iterable[str], *, size: str = "tiny", seed: int = 0, vocab_size: int = 2000
) -> Path:
    """Write a random DeBERTa sequence classifier + trained tokenizer to ``out_dir``; return it."""
    torch = import_torch()
    transformers = import_transformers()
    out = Path(out_dir)
    tokenizer = build_tokenizer(texts, vocab_size=vocab_size)
    config = deberta_config(size, max(len(tokenizer), 8))
    torch.manual_seed(seed)
    model = transformers.DebertaV2ForSequenceClassification(config).eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def planted_pairs(
    pairs: Sequence[PreferencePair], marker: str = "Pineapples are wonderful!", seed: int = 0
) -> list[PreferencePair]:
    """Pairs whose chosen side is whichever of the two responses got ``marker`` put at its start.

    A learnable signal unrelated to the original labels: an RM trained on these must find the
    marker to beat 50% pairwise accuracy. It opens the response so that no truncation rule
    (context from the left, long responses from the right) can cut it.
    """
    import random

    rng = random.Random(seed)
    out = []
    for p in pairs:
        a, b = (p.chosen, p.rejected) if rng.random() < 0.5 else (p.rejected, p.chosen)
        body = a[len("Assistant:") :] if a.startswith("Assistant:") else a
        marked = f"Assistant: {marker}{body}"
        update = {"chosen": marked, "rejected": b, "rejected_context": None, "context_diverges": False}
        out.append(p.model_copy(update=update))
    return out
