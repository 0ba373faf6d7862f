"""A padding-free forward pass of BERT encoders (MiniLM) for CPU inference.

Why not the Hugging Face forward: on a CPU every padded token is paid for in full by every GEMM,
and the short ops between the GEMMs (bias copies, residual adds, mask handling) are memory-bound
passes that weigh as much as the attention itself at hidden size 384. Measured on the project's
scoring benchmark (``benchmarks/bench_score.py``, MiniLM, 2 cores, quiet machine): the HF forward
ran short texts at 53-55 % and 256-token texts at 61-71 % of the same run's fp32 matmul rate;
this one at 71-72 % and 74-77 % (see the README's scoring section).

What it does differently, all exact in real arithmetic (fp32 results agree with the HF forward to
about 3e-7 on the L2-normalised embeddings, checked by the tests on the real MiniLM weights):

- **Packed tokens.** The batch's texts are laid end to end as one ``(tokens, hidden)`` matrix, so
  the GEMMs see no padding at all. Attention is one call per layer to the C kernel of
  ``native.py`` where it builds (any lengths, output written in place); otherwise torch's attention
  runs per group of equal-length texts (the batch is sorted by length), each group a strided view
  of the packed Q/K/V: no mask, no padded copy.
- **One QKV GEMM** (the three projections concatenated) instead of three.
- **Residual adds folded into the GEMMs.** ``o = x + W ctx + b`` becomes an in-place
  ``x.addmm_(ctx, W)`` on a residual that already holds ``b``: the bias of the attention output is
  added to the preceding layer norm's beta, and the next consumer of that layer norm's output
  (the QKV projection) gets ``b_qkv - W_qkv b`` as its bias. The same for the FFN output bias.
  That removes, per layer, two bias copies and two residual passes over the activations.
- **The other two biases folded into the weights** where that is numerically safe: a GEMM whose
  input is a layer norm's output can carry its bias in its weights (``_fold_bias``), so ``addmm``
  no longer writes the bias into the whole output first. 10 of MiniLM's 12 qualify.
- **GELU in place.**

Only what a plain ``BertModel`` computes is supported (``supported_reason`` says why not
otherwise: another architecture, activation, position embedding, dtype or device); the encoder then
keeps the Hugging Face forward. The result is recorded in the encoder's identity (``forward``), so
embeddings cached by one forward are never mixed with the other's.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from seal_audit.backends.embed.native import NativeAttention, supports
from seal_audit.backends.reward._runtime import import_torch


def supported_reason(model: Any, device: Any, dtype: Any) -> str | None:
    """None when ``PackedBert`` computes exactly what ``model`` does; else why it does not."""
    torch = import_torch()
    from transformers import BertModel

    if type(model) is not BertModel:  # a subclass may change the forward: only the class itself
        return f"{type(model).__name__} (only a bare BertModel)"
    cfg = model.config
    if getattr(device, "type", None) != "cpu":
        return f"device {device} (the packed forward is for CPU)"
    if dtype != torch.float32:
        return f"dtype {dtype} (only float32)"
    if getattr(cfg, "hidden_act", None) != "gelu":
        return f"activation {getattr(cfg, 'hidden_act', None)!r} (only exact 'gelu')"
    if getattr(cfg, "position_embedding_type", "absolute") != "absolute":
        return f"position embeddings {cfg.position_embedding_type!r} (only 'absolute')"
    if getattr(cfg, "is_decoder", False) or getattr(cfg, "add_cross_attention", False):
        return "a decoder configuration"
    if getattr(cfg, "chunk_size_feed_forward", 0):
        return "chunked feed-forward"
    if cfg.hidden_size % cfg.num_attention_heads:
        return "hidden size not divisible by the number of heads"
    return None


class PackedBert:
    """Mean-pooled last hidden states of a ``BertModel``, computed on packed tokens (see module).

    ``native``: the attention kernel of ``native.py``, or None for torch's attention per group."""

    def __init__(self, model: Any, native: NativeAttention | None = None) -> None:
        torch = import_torch()
        cfg = model.config
        self.hidden = int(cfg.hidden_size)
        self.heads = int(cfg.num_attention_heads)
        self.native = native if native is not None and supports(self.hidden, self.heads) else None
        emb = model.embeddings
        self.word = emb.word_embeddings.weight.detach()
        self.position = emb.position_embeddings.weight.detach()
        self.token_type = emb.token_type_embeddings.weight.detach()

        def f64(t: Any) -> Any:
            return t.detach().to(torch.float64)

        def f32(t: Any) -> Any:
            return t.to(torch.float32).contiguous()

        self.layers: list[dict[str, Any]] = []
        prev_norm = emb.LayerNorm
        for layer in model.encoder.layer:
            att, att_out = layer.attention.self, layer.attention.output
            b_att = f64(att_out.dense.bias)  # carried in the residual: see the module docstring
            b_ffn = f64(layer.output.dense.bias)
            w_qkv = torch.cat([f64(att.query.weight), f64(att.key.weight), f64(att.value.weight)])
            b_qkv = torch.cat([f64(att.query.bias), f64(att.key.bias), f64(att.value.bias)])
            w_in = f64(layer.intermediate.dense.weight)
            beta_in = f64(prev_norm.bias) + b_att
            beta_att = f64(att_out.LayerNorm.bias) + b_ffn
            w_qkv_t, b_qkv_f = _fold_bias(f64(prev_norm.weight), beta_in, w_qkv.t(), b_qkv - w_qkv @ b_att)
            w_in_t, b_in_f = _fold_bias(
                f64(att_out.LayerNorm.weight),
                beta_att,
                w_in.t(),
                f64(layer.intermediate.dense.bias) - w_in @ b_ffn,
            )
            self.layers.append(
                {
                    "norm_in": (prev_norm.weight.detach(), f32(beta_in), prev_norm.eps),
                    "w_qkv": f32(w_qkv_t),
                    "b_qkv": None if b_qkv_f is None else f32(b_qkv_f),
                    "w_att": f32(att_out.dense.weight.detach().t()),
                    "norm_att": (att_out.LayerNorm.weight.detach(), f32(beta_att), att_out.LayerNorm.eps),
                    "w_in": f32(w_in_t),
                    "b_in": None if b_in_f is None else f32(b_in_f),
                    "w_out": f32(layer.output.dense.weight.detach().t()),
                }
            )
            prev_norm = layer.output.LayerNorm
        self.norm_final = (prev_norm.weight.detach(), prev_norm.bias.detach(), prev_norm.eps)

    def mean_pooled(self, ids: Sequence[Sequence[int]], types: Sequence[Sequence[int]] | None) -> Any:
        """(len(ids), hidden) float32 tensor: the mean over each text's tokens, rows in input order."""
        torch = import_torch()
        f = torch.nn.functional
        n = len(ids)
        h, heads = self.hidden, self.heads
        order = sorted(range(n), key=lambda i: -len(ids[i]))  # equal lengths adjacent
        lengths = [len(ids[i]) for i in order]
        total = sum(lengths)
        if total == 0:
            return torch.zeros(n, h)
        flat_ids = torch.from_numpy(_flat([ids[i] for i in order], total))
        if types is not None:
            flat_types = torch.from_numpy(_flat([types[i] for i in order], total))
        else:
            flat_types = torch.zeros(total, dtype=torch.int64)
        positions = torch.from_numpy(np.concatenate([np.arange(k, dtype=np.int64) for k in lengths]))
        groups = _equal_length_groups(lengths)
        counts = torch.tensor(lengths, dtype=torch.int64)
        starts = torch.cumsum(counts, 0) - counts
        threads = torch.get_num_threads()
        with torch.inference_mode():
            z = self.word[flat_ids] + self.token_type[flat_types]
            z += self.position[positions]
            ctx_buf = torch.empty(total, h) if len(groups) > 1 or self.native is not None else None
            x = z
            for p in self.layers:
                w, b, eps = p["norm_in"]
                x = f.layer_norm(x, (h,), w, b, eps)  # the residual, + b_att
                qkv = _linear(x, p["w_qkv"], p["b_qkv"])
                if self.native is not None and self.native(qkv, ctx_buf, starts, counts, heads, threads):
                    ctx = ctx_buf
                else:  # torch's attention (also where the kernel could not run: out of memory)
                    ctx = _attention(qkv, groups, heads, h, ctx_buf)
                x.addmm_(ctx, p["w_att"])
                w, b, eps = p["norm_att"]
                x = f.layer_norm(x, (h,), w, b, eps)  # the residual, + b_ffn
                inner = _linear(x, p["w_in"], p["b_in"])
                torch.ops.aten.gelu_(inner)
                x.addmm_(inner, p["w_out"])
            w, b, eps = self.norm_final
            x = f.layer_norm(x, (h,), w, b, eps)
            sums = torch.zeros(n, h).index_add_(0, torch.repeat_interleave(torch.arange(n), counts), x)
            sums /= counts.clamp(min=1).to(torch.float32)[:, None]
            pooled = torch.empty_like(sums)
            pooled[torch.tensor(order)] = sums
        return pooled


MAX_FOLD_AMPLIFICATION = 200.0
"""Largest rounding amplification (see ``_fold_bias``) at which a bias is folded into the weights."""


def _fold_bias(gamma: Any, beta: Any, w_t: Any, bias: Any) -> tuple[Any, Any]:
    """(weights, None) with the bias folded into the weights, or (weights, bias) unchanged.

    The input of this GEMM is a layer norm's output ``x = gamma * n + beta``, whose normalised
    ``n`` sums to zero in every row. So ``u = (1 / gamma) / sum(beta / gamma)`` gives ``u . x = 1``
    for every row, and ``x (W + u b') = x W + b``: the bias costs nothing (``addmm`` otherwise
    writes it into the whole output before the GEMM, 5-8 % of a MiniLM forward). The fold sums
    terms of size ``|n_j + beta_j / gamma_j| / |sum(beta / gamma)|`` to make 1; when their bound
    ``(sum |beta / gamma| + hidden) / |sum(beta / gamma)|`` exceeds ``MAX_FOLD_AMPLIFICATION`` (beta
    / gamma nearly cancelling) the rounding would grow with it, and the bias is kept as it is.
    """
    torch = import_torch()
    if bool((gamma == 0).any()):
        return w_t, bias
    ratio = beta / gamma
    total = float(ratio.sum())
    amplification = (float(ratio.abs().sum()) + ratio.numel()) / max(abs(total), 1e-300)
    if amplification > MAX_FOLD_AMPLIFICATION:
        return w_t, bias
    u = (1.0 / gamma) / total
    return w_t + torch.outer(u, bias), None


def _linear(x: Any, w_t: Any, bias: Any) -> Any:
    torch = import_torch()
    return torch.mm(x, w_t) if bias is None else torch.addmm(bias, x, w_t)


def _flat(seqs: Sequence[Sequence[int]], total: int) -> np.ndarray:
    return np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int64, count=total)


def _equal_length_groups(lengths: Sequence[int]) -> list[tuple[int, int, int]]:
    """(first token row, texts, length) of each run of equal lengths; empty texts are left out."""
    groups: list[tuple[int, int, int]] = []
    row = i = 0
    while i < len(lengths):
        j = i
        while j < len(lengths) and lengths[j] == lengths[i]:
            j += 1
        if lengths[i] > 0:
            groups.append((row, j - i, lengths[i]))
        row += (j - i) * lengths[i]
        i = j
    return groups


def _attention(
    qkv: Any,
    groups: Sequence[tuple[int, int, int]],
    heads: int,
    hidden: int,
    out: Any | None,
) -> Any:
    """Scaled dot-product attention of each equal-length group on views of the packed Q/K/V."""
    torch = import_torch()
    sdpa = torch.nn.functional.scaled_dot_product_attention
    d = hidden // heads
    if out is None:  # one group: the whole batch, no copy
        _, n, length = groups[0]
        q, k, v = qkv.view(n, length, 3, heads, d).permute(2, 0, 3, 1, 4).unbind(0)
        return sdpa(q, k, v).transpose(1, 2).reshape(n * length, hidden)
    for row, n, length in groups:
        rows = slice(row, row + n * length)
        q, k, v = qkv[rows].view(n, length, 3, heads, d).permute(2, 0, 3, 1, 4).unbind(0)
        out[rows].view(n, length, heads, d).copy_(sdpa(q, k, v).transpose(1, 2))
    return out
