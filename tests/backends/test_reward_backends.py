"""RM backends: spec parsing, the HF text-pair/chat/concat paths, truncation, baselines, errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from seal_audit.backends.reward import RMOptions, load_reward_model, parse_rm_arg, plan_batches, split_spec
from seal_audit.backends.reward.text import hh_messages
from seal_audit.data.errors import ConfigError, OfflineError
from seal_audit.score import ScoreItem, Scorer, pair_items, score_fixed_batches


def test_importing_stage_and_backends_does_not_import_torch() -> None:
    code = (
        "import sys, seal_audit.score, seal_audit.backends, seal_audit.backends.reward, "
        "seal_audit.backends.embed, seal_audit._cli.score, seal_audit._cli.train_rm; "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_spec_parsing(tiny_rm: Path, tmp_path: Path) -> None:
    s = parse_rm_arg("post=hf:OpenAssistant/reward-model-deberta-v3-large-v2?max_length=256&dtype=float32")
    assert (s.name, s.role, s.options.max_length, s.options.dtype) == (
        "post",
        "extra",
        256,
        "float32",
    )  # a name never sets a role
    assert split_spec("OpenAssistant/reward-model-deberta-v3-large")[0] == "hf"
    assert split_spec(str(tiny_rm))[0] == "hf"
    assert split_spec("python:mod:fn")[:2] == ("python", "mod:fn")
    assert parse_rm_arg("length_chars").name == "length_chars"
    assert parse_rm_arg("x=length_tokens", RMOptions(max_length=9)).options.max_length == 9
    with pytest.raises(ConfigError, match="unknown RM option"):
        parse_rm_arg("a=length_chars?colour=red")
    with pytest.raises(ConfigError, match="format"):
        parse_rm_arg("a=length_chars?format=xml")
    with pytest.raises(ConfigError):
        split_spec(str(tmp_path / "missing" / "dir" / "x"))


def test_plan_batches_respects_budget_and_sorts() -> None:
    lengths = [5, 100, 30, 100, 7, 64]
    batches = plan_batches(lengths, batch_tokens=200, max_batch=8)
    assert sorted(i for b in batches for i in b) == list(range(6))
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 200
    assert batches[0][0] in (1, 3)  # longest first


def test_plan_batches_weighs_padding_against_more_batches() -> None:
    # three length groups fit one 4,096-token batch, padded to 27 each (810 tokens for 600 real);
    # a batch costs 64 tokens here (4096 // BATCH_OVERHEAD_SHARE), so one per group is cheaper
    lengths = [13, 27, 20] * 10
    batches = plan_batches(lengths, batch_tokens=4096, max_batch=512)
    assert sorted(i for b in batches for i in b) == list(range(30))
    assert [sorted({lengths[i] for i in b}) for b in batches] == [[27], [20], [13]]
    # a handful of near-equal lengths is not worth a forward pass of its own
    near = [40, 39, 38, 37] * 4
    assert len(plan_batches(near, batch_tokens=4096, max_batch=512)) == 1
    # tiny budgets and max_batch still bound every batch; an over-long item runs alone
    for b in plan_batches([300, 5, 5, 5, 90, 90], batch_tokens=100, max_batch=2):
        assert len(b) <= 2 and (len(b) == 1 or len(b) * max([300, 5, 5, 5, 90, 90][i] for i in b) <= 100)
    assert plan_batches([], batch_tokens=100, max_batch=2) == []


def test_text_pair_ids_equal_tokenizer_call(tiny_rm: Path, hh_pairs: list) -> None:
    from transformers import AutoTokenizer

    model = load_reward_model(str(tiny_rm))
    tok = AutoTokenizer.from_pretrained(str(tiny_rm))
    items = [(p.context, p.chosen) for p in hh_pairs[:20]]
    for (c, r), e in zip(items, model.encode(items), strict=True):
        if not e.truncated:
            assert e.data[0] == tok(c, r)["input_ids"]
    assert model.identity["format"] == "text-pair" and model.identity["dtype"] == "float32"


def test_batch_invariance_tiny_deberta(tiny_rm: Path, hh_pairs: list) -> None:
    """Same texts at batch sizes 1, 7 and 64 (mixed lengths, real padding) agree within 1e-4."""
    model = load_reward_model(str(tiny_rm))
    items = pair_items(hh_pairs[:35])
    runs = [np.array(score_fixed_batches(model, items, b)) for b in (1, 7, 64)]
    assert runs[0].std() > 1e-3, "random RM gives near-constant rewards; the test would prove nothing"
    for other in runs[1:]:
        assert np.max(np.abs(runs[0] - other)) < 1e-4
    sorted_run = [s.reward for s in Scorer(model=model).score(items)]
    assert np.max(np.abs(runs[0] - np.array(sorted_run))) < 1e-4


def test_truncation_keeps_response_and_is_counted(tiny_rm: Path, hh_pairs: list) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_rm))
    model = load_reward_model(str(tiny_rm), RMOptions(max_length=40))
    long_ctx = "\n\nHuman: " + " ".join(["please tell me about the weather"] * 30) + "\n\n"
    response = "Assistant: It is sunny today."
    too_long_response = "Assistant: " + "word " * 80
    enc = model.encode([(long_ctx, response), (long_ctx, too_long_response), ("\n\nHuman: hi\n\n", response)])
    assert [e.truncated for e in enc] == [True, True, False]
    resp_ids = tok(response, add_special_tokens=False)["input_ids"]
    assert len(enc[0].data[0]) == 40
    assert enc[0].data[0][-len(resp_ids) - 1 : -1] == resp_ids  # response intact before the final [SEP]
    first = tok(too_long_response, add_special_tokens=False)["input_ids"][:37]
    assert enc[1].data[0][2:-1] == first  # [CLS] [SEP] response-start [SEP]
    items = [
        ScoreItem("a", "chosen", long_ctx, response),
        ScoreItem("b", "chosen", "\n\nHuman: hi\n\n", response),
    ]
    scorer = Scorer(model=model)
    scores = scorer.score(items)
    assert [s.truncated for s in scores] == [True, False]
    assert scorer.stats.n_truncated == 1
    assert scores[0].n_tokens == 40


def test_chat_template_and_concat_formats(tiny_rm: Path, tmp_path: Path) -> None:
    import shutil

    from transformers import AutoTokenizer

    chat_dir = tmp_path / "chat-rm"
    shutil.copytree(tiny_rm, chat_dir)
    tok = AutoTokenizer.from_pretrained(str(chat_dir))
    tok.chat_template = "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
    tok.save_pretrained(str(chat_dir))
    ctx = "\n\nHuman: first question\n\nAssistant: first answer\n\nHuman: second question\n\n"
    model = load_reward_model(str(chat_dir))
    assert model.identity["format"] == "chat-template"  # auto: the tokenizer has a template
    (e,) = model.encode([(ctx, "Assistant: final answer")])
    text = tok.decode(e.data[0])
    assert "second question" in text and "final answer" in text and not e.truncated
    small = load_reward_model(str(chat_dir), RMOptions(max_length=24))
    (t,) = small.encode([(ctx, "Assistant: final answer")])
    assert t.truncated and len(t.data[0]) <= 24 and "final answer" in tok.decode(t.data[0])
    concat = load_reward_model(
        str(tiny_rm), RMOptions(format="concat", template="Q:{context} A:{response}", max_length=30)
    )
    (c,) = concat.encode([(ctx * 5, "Assistant: final answer")])
    assert c.truncated and len(c.data[0]) <= 30 and "final answer" in tok.decode(c.data[0])
    assert np.isfinite(concat.score_batch([c])[0])


def test_hh_messages_parsing() -> None:
    msgs = hh_messages("\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye\n\n", "Assistant: see you")
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert msgs[-1]["content"] == "see you" and msgs[0]["content"] == "hi"
    assert hh_messages("plain prompt", "answer") == [
        {"role": "user", "content": "plain prompt"},
        {"role": "assistant", "content": "answer"},
    ]


def test_offline_hub_id_fails_fast_with_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.perf_counter()
    with pytest.raises(OfflineError, match="local directory"):
        load_reward_model("hf:seal-audit-tests/no-such-reward-model")
    assert time.perf_counter() - t < 10


def test_length_baselines() -> None:
    chars = load_reward_model("length_chars")
    words = load_reward_model("length_tokens")
    items = [("ctx", "Assistant: one two three"), ("ctx", "Assistant: x")]
    assert chars.score_batch(chars.encode(items)) == [24.0, 12.0]
    assert words.score_batch(words.encode(items)) == [4.0, 2.0]


def test_python_callable_rm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_rm_module.py").write_text(
        textwrap.dedent(
            """
            def reward(batch):
                return [float(r.count("!")) - 0.01 * len(c) for c, r in batch]

            def broken(batch):
                return [1.0]
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = parse_rm_arg("fun=python:my_rm_module:reward")
    model = load_reward_model(spec.spec, spec.options)
    scores = Scorer(model=model, rm="fun").score(
        [ScoreItem("a", "chosen", "ab", "wow!!"), ScoreItem("a", "rejected", "ab", "meh")]
    )
    assert [s.reward for s in scores] == pytest.approx([1.98, -0.02])
    assert model.identity["source"]  # source hash: editing the function invalidates the cache
    bad = load_reward_model("python:my_rm_module:broken")
    with pytest.raises(ConfigError, match="returned 1 rewards for 2"):
        bad.score_batch(bad.encode([("a", "b"), ("c", "d")]))
    with pytest.raises(ConfigError, match="cannot import"):
        load_reward_model("python:no_such_module_xyz:f")


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_import_torch_sets_omp_wait_policy_unless_given(given: str | None, expected: str) -> None:
    """A fresh interpreter: the policy must be in the environment before libgomp loads with torch."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    code = (
        "import os, sys; from seal_audit.backends.reward._runtime import import_torch; import_torch(); "
        "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [expected, "True"]
