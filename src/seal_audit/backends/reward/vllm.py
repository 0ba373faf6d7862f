"""``vllm:MODEL``: a decoder reward model served by vLLM's pooling runner (the ``[vllm]`` extra, a
CUDA GPU).

vLLM runs the model (``LLM(model, runner="pooling")``, or ``task="reward"`` on older vLLM) and
returns one reward per sequence (``LLM.reward``; ``vllm-classify:MODEL`` uses ``LLM.classify`` and
the probability at ``logit_index``). Tokenizing and truncation stay ours, as for the ``hf`` backend:
the conversation is rendered with the tokenizer's chat template (``hh_messages``), and a text over
``max_length`` loses tokens from the left (the response is kept), counted as truncated. vLLM gets
token ids, so what it scores is exactly what we counted. Tested on a GPU by
``tests/backends/test_vllm.py`` (run from ``benchmarks/gpu_check.sh``); elsewhere it skips, saying so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from seal_audit.backends.reward.base import Encoded, RMOptions
from seal_audit.backends.reward.text import hh_messages
from seal_audit.data.errors import ConfigError, MissingDependencyError

VLLM_TASKS = ("reward", "classify")


def import_vllm() -> Any:
    try:
        import vllm  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise MissingDependencyError("vllm", "vllm") from None
    return vllm


class VLLMRewardModel:
    """A reward model run by vLLM; batches are sent whole (vLLM schedules them itself)."""

    name = "vllm"

    def __init__(
        self, target: str, options: RMOptions | None = None, *, task: str = "reward", **engine: Any
    ) -> None:
        if not target:
            raise ConfigError("vllm RM: expected vllm:MODEL (a hub id in the local cache, or a directory)")
        if task not in VLLM_TASKS:
            raise ConfigError(f"vllm RM '{target}': task must be one of {VLLM_TASKS}, got '{task}'")
        vllm = import_vllm()
        opts = options or RMOptions()
        from seal_audit.backends.reward._runtime import import_transformers

        transformers = import_transformers()
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(
            target, revision=opts.revision, trust_remote_code=opts.trust_remote_code
        )
        self.max_length = int(opts.max_length or min(getattr(self.tokenizer, "model_max_length", 4096), 4096))
        kw: dict[str, Any] = {
            "model": target,
            "revision": opts.revision,
            "trust_remote_code": opts.trust_remote_code,
            "max_model_len": self.max_length,
            "dtype": opts.dtype or "auto",
            **engine,
        }
        try:
            self.llm = vllm.LLM(runner="pooling", **kw)
        except TypeError:  # vLLM before the runner= argument
            self.llm = vllm.LLM(task="reward" if task == "reward" else "classify", **kw)
        self.task = task
        self.logit_index = opts.logit_index
        self.chat = bool(getattr(self.tokenizer, "chat_template", None))
        self._max_batch = opts.max_batch
        template = str(getattr(self.tokenizer, "chat_template", "") or "")
        self._identity = {
            "backend": "vllm",
            "model": target,
            "revision": opts.revision,
            "task": task,
            "max_length": self.max_length,
            "logit_index": self.logit_index,
            "dtype": opts.dtype or "auto",
            "chat_template": hashlib.sha256(template.encode()).hexdigest()[:16],
            "vllm": str(getattr(vllm, "__version__", "")),
        }

    @property
    def identity(self) -> Mapping[str, Any]:
        return self._identity

    @property
    def batch_tokens(self) -> int:
        return 1 << 62  # vLLM packs its own batches

    @property
    def max_batch(self) -> int:
        return self._max_batch

    def _ids(self, context: str, response: str) -> list[int]:
        if self.chat:
            ids = self.tokenizer.apply_chat_template(hh_messages(context, response), tokenize=True)
            return list(ids["input_ids"] if isinstance(ids, Mapping) else ids)
        return list(self.tokenizer(context + response)["input_ids"])

    def encode(self, items: Sequence[tuple[str, str]]) -> list[Encoded]:
        out = []
        for context, response in items:
            ids = self._ids(context, response)
            truncated = len(ids) > self.max_length
            if truncated:
                ids = ids[-self.max_length :]  # context goes first; the response is kept
            out.append(Encoded(length=len(ids), n_tokens=len(ids), truncated=truncated, data=ids))
        return out

    def score_batch(self, batch: Sequence[Encoded]) -> list[float]:
        prompts = [{"prompt_token_ids": list(e.data)} for e in batch]
        if self.task == "classify":
            outs = self.llm.classify(prompts, use_tqdm=False)
            return [float(o.outputs.probs[self.logit_index]) for o in outs]
        outs = self.llm.reward(prompts, use_tqdm=False)
        return [_one_reward(o.outputs.data, self.logit_index) for o in outs]


def _one_reward(data: Any, logit_index: int) -> float:
    """One reward from what ``LLM.reward`` returns for a sequence: a scalar, one value per label,
    or (a token-level RM) one row per token, of which the last token's is the sequence's."""
    dim = int(data.dim()) if hasattr(data, "dim") else 1
    if dim == 0:
        return float(data)
    if dim == 2:
        data = data[-1]
    return float(data[0] if len(data) == 1 else data[logit_index])


def make_vllm(task: str) -> Any:
    """The factory of ``vllm:MODEL`` (task reward) and ``vllm-classify:MODEL`` (task classify)."""

    def factory(target: str, options: RMOptions) -> VLLMRewardModel:
        return VLLMRewardModel(target, options, task=task)

    return factory
