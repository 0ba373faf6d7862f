"""The vLLM backend (issue 17 item 6): ``vllm:MODEL`` for decoder reward models.

On a machine with vLLM and a CUDA GPU (``benchmarks/gpu_check.sh`` runs this file there), a tiny
random Qwen2 sequence classifier built from a config is scored by vLLM and by transformers on the
same token ids of real hh-rlhf texts, and the rewards must agree. Elsewhere that test skips with
"skipped: needs vLLM + GPU", and what runs is the missing-dependency path: one line, exit 2.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# ../shared beside the checkout, wherever it is (a missing split fails in the tests, never skips)
HH = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
)
HAVE_VLLM = importlib.util.find_spec("vllm") is not None


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed here: this test is about its absence")
def test_without_vllm_the_spec_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "seal_audit", "score", str(HH), "--limit", "5", "--out", str(out)]
    res = subprocess.run(
        [*cmd, "--rm", "v=vllm:Skywork/Skywork-Reward-V2-Qwen3-0.6B"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 2, res.stderr
    assert (
        res.stderr.strip().splitlines()[-1]
        == "error: no RM could be loaded: v: this feature needs the 'vllm' package: pip install 'seal-audit[vllm]'"
    )


@pytest.mark.gpu
@pytest.mark.skipif(not (HAVE_VLLM and _cuda()), reason="skipped: needs vLLM + GPU")
def test_vllm_rewards_match_transformers(tmp_path: Path, hh_pairs: list[Any]) -> None:
    import torch
    import transformers

    from seal_audit.backends.reward import load_reward_model
    from seal_audit.backends.reward.testing import build_tokenizer

    texts = [p.transcript(s) for p in hh_pairs[:150] for s in ("chosen", "rejected")]
    tok = build_tokenizer(texts, vocab_size=1000)
    config = transformers.Qwen2Config(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        num_labels=1,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = transformers.Qwen2ForSequenceClassification(config).eval()
    model_dir = tmp_path / "tiny-qwen2-rm"
    model.save_pretrained(str(model_dir))
    tok.save_pretrained(str(model_dir))

    rm = load_reward_model(f"vllm:{model_dir}?dtype=float32&max_length=256")
    items = [(p.context, p.chosen) for p in hh_pairs[:40]]
    encoded = rm.encode(items)
    ours = rm.score_batch(encoded)
    with torch.inference_mode():
        ref = [model(torch.tensor([e.data])).logits[0, 0].item() for e in encoded]
    assert len(ours) == 40 and max(abs(a - b) for a, b in zip(ours, ref, strict=True)) < 1e-3
    assert sum(e.truncated for e in encoded) >= 0 and len(set(ours)) > 1
