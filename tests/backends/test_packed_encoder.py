"""The padding-free BERT forward (``backends/embed/packed.py``) against the Hugging Face forward.

Real MiniLM weights on real hh-rlhf texts, and small random ``BertModel``s whose biases and layer
norms are randomised (BERT's own init sets them to zero, which would hide a wrong bias fold).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from seal_audit.backends.embed.encoder import TextEncoder  # noqa: E402
from seal_audit.backends.embed.packed import PackedBert, supported_reason  # noqa: E402
from seal_audit.backends.reward.base import plan_batches  # noqa: E402
from seal_audit.data.errors import ConfigError  # noqa: E402


@pytest.fixture(scope="module")
def encoders() -> tuple[TextEncoder, TextEncoder]:
    packed = TextEncoder(None, max_length=128)
    plain = TextEncoder(None, max_length=128, packed=False)
    return packed, plain


def test_minilm_packed_equals_hf_forward_on_real_texts(encoders: tuple, hh_pairs: list) -> None:
    packed, plain = encoders
    assert packed.packed is not None and plain.packed is None
    items = [(p.context_for(s), p.response(s)) for p in hh_pairs[:40] for s in ("chosen", "rejected")]
    encoded = packed.encode_pairs(items)
    lengths = [e.n_tokens for e in encoded]
    assert len(set(lengths)) > 10 and lengths.count(128) >= 2  # many lengths, some cut, ties
    # one mixed batch (groups of equal length), one of equal lengths (the no-copy path), one text
    full = [i for i, n in enumerate(lengths) if n == 128]
    for batch in (list(range(len(encoded))), full, [5]):
        a = packed.embed_batch([encoded[i] for i in batch])
        b = plain.embed_batch([encoded[i] for i in batch])
        assert a.shape == b.shape == (len(batch), 384)
        assert float(np.abs(a - b).max()) < 1e-5


def test_packed_rows_follow_input_order_and_batch_does_not_matter(encoders: tuple, hh_pairs: list) -> None:
    packed, _ = encoders
    items = [(p.context_for("chosen"), p.response("chosen")) for p in hh_pairs[:24]]
    encoded = packed.encode_pairs(items)
    together = packed.embed_batch(encoded)
    rng = np.random.default_rng(3)
    perm = rng.permutation(len(encoded))
    shuffled = packed.embed_batch([encoded[i] for i in perm])
    assert float(np.abs(shuffled - together[perm]).max()) < 1e-6
    alone = np.stack([packed.embed_batch([e])[0] for e in encoded[:6]])
    assert float(np.abs(alone - together[:6]).max()) < 1e-5


def test_identity_names_the_forward(encoders: tuple, native_kernel: object) -> None:
    packed, plain = encoders
    assert packed.identity["forward"] == "packed"
    assert packed.identity["attention"] == "native"  # MiniLM's head size 32 suits the C kernel
    assert "forward" not in plain.identity  # the Hugging Face forward keeps its old cache keys
    assert "attention" not in plain.identity
    assert packed.padding_free and not plain.padding_free


def _random_bert(**overrides: object) -> object:
    shape: dict[str, object] = {
        "hidden_size": 48,
        "num_attention_heads": 4,
    }  # head size 12: torch's attention
    cfg = transformers.BertConfig(
        vocab_size=97,
        num_hidden_layers=3,
        intermediate_size=80,
        max_position_embeddings=64,
        type_vocab_size=2,
        **{**shape, **overrides},
    )
    torch.manual_seed(0)
    model = transformers.BertModel(cfg, add_pooling_layer=False).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                p.copy_(torch.randn_like(p) * 0.5 + (1.0 if name.endswith("LayerNorm.weight") else 0.0))
    return model


@pytest.mark.parametrize(
    ("fold_limit", "heads"),
    [(0.0, 4), (float("inf"), 4), (float("inf"), 2)],
    ids=["bias-kept", "bias-folded", "native-attention"],
)
def test_random_bert_with_token_types_and_nonzero_biases(
    fold_limit: float, heads: int, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Both ways of adding a GEMM's bias: kept (``addmm``), and folded into the weights; and the
    C attention kernel (head size 64 / 2 = 32) where it builds, torch's attention otherwise."""
    import seal_audit.backends.embed.native as native
    import seal_audit.backends.embed.packed as packed_module

    monkeypatch.setattr(packed_module, "MAX_FOLD_AMPLIFICATION", fold_limit)
    model = _random_bert(**({"hidden_size": 64, "num_attention_heads": 2} if heads == 2 else {}))
    # the kernel for head size 32 (skipped only where there is no C compiler at all; see conftest)
    kernel = request.getfixturevalue("native_kernel") if heads == 2 else native.load()
    folded = [p["b_qkv"] is None for p in PackedBert(model, kernel).layers]
    assert folded == [fold_limit > 0] * 3
    assert (PackedBert(model, kernel).native is not None) == (heads == 2)
    assert supported_reason(model, torch.device("cpu"), torch.float32) is None
    rng = np.random.default_rng(1)
    lengths = [17, 5, 17, 1, 30, 5, 5, 12]
    ids = [rng.integers(1, 97, size=n).tolist() for n in lengths]
    types = [(np.arange(n) >= n // 2).astype(int).tolist() for n in lengths]
    got = PackedBert(model, kernel).mean_pooled(ids, types).numpy()
    longest = max(lengths)
    pad_ids = torch.zeros(len(ids), longest, dtype=torch.long)
    pad_types = torch.zeros_like(pad_ids)
    mask = torch.zeros_like(pad_ids)
    for r, (s, t) in enumerate(zip(ids, types, strict=True)):
        pad_ids[r, : len(s)] = torch.tensor(s)
        pad_types[r, : len(t)] = torch.tensor(t)
        mask[r, : len(s)] = 1
    with torch.inference_mode():
        hidden = model(input_ids=pad_ids, attention_mask=mask, token_type_ids=pad_types).last_hidden_state
        m = mask.unsqueeze(-1).float()
        want = ((hidden * m).sum(1) / m.sum(1)).numpy()
    assert float(np.abs(got - want).max()) < 1e-4 * float(np.abs(want).max())
    # without token types the model's own default (type 0 everywhere) is used
    no_types = PackedBert(model, kernel).mean_pooled(ids, None).numpy()
    with torch.inference_mode():
        h0 = model(input_ids=pad_ids, attention_mask=mask).last_hidden_state
        want0 = ((h0 * m).sum(1) / m.sum(1)).numpy()
    assert float(np.abs(no_types - want0).max()) < 1e-4 * float(np.abs(want0).max())
    # an empty sequence pools to zeros and does not disturb the others
    with_empty = PackedBert(model, kernel).mean_pooled([[], *ids], [[], *types]).numpy()
    assert np.all(with_empty[0] == 0.0)
    assert float(np.abs(with_empty[1:] - got).max()) < 1e-6


def test_fold_bias_is_exact_on_layer_norm_outputs_and_refuses_cancelling_betas() -> None:
    from seal_audit.backends.embed.packed import _fold_bias

    g = torch.Generator().manual_seed(5)
    hidden, out = 64, 96
    gamma = torch.rand(hidden, generator=g, dtype=torch.float64) + 0.5
    beta = torch.randn(hidden, generator=g, dtype=torch.float64) * 0.3 + 0.2
    w_t = torch.randn(hidden, out, generator=g, dtype=torch.float64)
    bias = torch.randn(out, generator=g, dtype=torch.float64)
    z = torch.randn(200, hidden, generator=g, dtype=torch.float64) * 3 + 1
    x = torch.nn.functional.layer_norm(z, (hidden,), gamma, beta, 1e-12)
    w_folded, rest = _fold_bias(gamma, beta, w_t, bias)
    assert rest is None
    assert float((x @ w_folded - (x @ w_t + bias)).abs().max()) < 1e-10
    # beta / gamma summing to almost zero: folding would amplify rounding, so the bias is kept
    beta_cancel = beta - (beta / gamma).mean() * gamma
    assert _fold_bias(gamma, beta_cancel, w_t, bias)[1] is bias
    assert _fold_bias(torch.zeros(hidden, dtype=torch.float64), beta, w_t, bias)[1] is bias


@pytest.mark.parametrize(
    ("overrides", "device", "dtype", "why"),
    [
        ({"hidden_act": "gelu_new"}, "cpu", "float32", "activation 'gelu_new'"),
        ({"position_embedding_type": "relative_key"}, "cpu", "float32", "position embeddings"),
        ({}, "cpu", "bfloat16", "dtype torch.bfloat16"),
        ({}, "meta", "float32", "device meta"),
    ],
)
def test_unsupported_models_are_named(overrides: dict, device: str, dtype: str, why: str) -> None:
    model = _random_bert(**overrides)
    reason = supported_reason(model, torch.device(device), getattr(torch, dtype))
    assert reason is not None and why in reason


def test_packed_true_on_an_unsupported_encoder_is_an_error(tmp_path: Path) -> None:
    model = _random_bert(hidden_act="gelu_new")
    model.save_pretrained(tmp_path)
    src = TextEncoder(None).tokenizer
    src.save_pretrained(tmp_path)
    assert TextEncoder(str(tmp_path)).packed is None  # auto: falls back to the HF forward
    with pytest.raises(ConfigError, match="no packed forward for activation 'gelu_new'"):
        TextEncoder(str(tmp_path), packed=True)


def test_padding_free_plan_fills_batches_by_summed_tokens() -> None:
    lengths = [30, 5, 300, 17, 17, 64, 2, 90, 40]
    plan = plan_batches(lengths, 100, 4, padding_free=True)
    assert sorted(i for b in plan for i in b) == list(range(len(lengths)))
    flat = [lengths[i] for b in plan for i in b]
    assert flat == sorted(lengths, reverse=True)
    assert plan[0] == [2]  # longer than the budget: a batch of its own
    for b in plan[1:]:
        assert sum(lengths[i] for i in b) <= 100 and len(b) <= 4
    assert [[lengths[i] for i in b] for b in plan] == [[300], [90], [64], [40, 30, 17], [17, 5, 2]]
    # the padded planner counts [40, 30, 17] as 3 x 40 = 120 tokens, over the budget
    assert [40, 30, 17] not in [[lengths[i] for i in b] for b in plan_batches(lengths, 100, 4)]


def test_tuned_allocator_stops_page_faults_on_reused_buffers() -> None:
    """A fresh interpreter allocates and frees a 64 MB tensor 20 times, twice: glibc's default maps
    and unmaps it each time (16,384 page faults each); tuned, once the heap has grown (the first
    round), the freed block is reused with no page fault."""
    code = (
        "import resource, sys\n"
        "from seal_audit.backends.reward._runtime import import_torch, tune_cpu_allocator\n"
        "torch = import_torch()\n"
        "if sys.argv[1] == 'tuned': assert tune_cpu_allocator()\n"
        "for _ in range(20): torch.ones(16 << 20)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(20): torch.ones(16 << 20)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )
    faults = {
        mode: int(
            subprocess.run(
                [sys.executable, "-c", code, mode], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        for mode in ("default", "tuned")
    }
    assert faults["default"] > 20 * 10_000
    assert faults["tuned"] < 2_000
