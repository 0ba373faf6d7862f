"""Reward models already in memory: a ``transformers`` model + tokenizer, a ``pipeline``, or any
callable ``list[(context, response)] -> list[float]`` (the Python API, ``seal_audit.score``).

Each becomes an ordinary :class:`RewardModel`, so the scorer batches it, shows progress and caches
every finished batch in the run as it goes, exactly as for ``--rm`` specs. The cache key is the
model's identity: for a callable, the hash of its source code (or its ``seal_version``
attribute); for a transformers model, a fingerprint of its config and of its first and last
weight tensors (the classifier head). ``identity=`` replaces that when you know better (e.g. a
checkpoint name): change it whenever the rewards would change.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from seal_audit.backends.reward.base import Encoded, RewardModel, RMOptions
from seal_audit.data.errors import ConfigError

PairScorer = Callable[[list[tuple[str, str]]], Sequence[float]]
"""What a callable RM is: rewards of (context, response) pairs, in order."""


def _is(obj: Any, class_name: str) -> bool:
    """Is ``obj`` a transformers ``class_name`` (checked by class, without importing transformers)."""
    return any(
        c.__name__ == class_name and c.__module__.startswith("transformers") for c in type(obj).__mro__
    )


class CallableInMemory:
    """A Python callable as a RewardModel: batched by the scorer (``max_batch`` texts per call)."""

    name = "python"

    def __init__(self, fn: PairScorer, rm_name: str, options: RMOptions, identity: str | None = None) -> None:
        self.fn = fn
        self.rm_name = rm_name
        if identity is None:
            try:
                identity = "source:" + hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16]
            except (OSError, TypeError):
                # no source (a REPL, a C function): never share a cache entry with another object
                identity = f"object:{id(fn)}"
        self._identity = {
            "backend": "python",
            "target": f"memory:{getattr(fn, '__qualname__', type(fn).__name__)}",
            "source": identity,
            "version": str(getattr(fn, "seal_version", "")),
        }
        self._batch = options.max_batch

    @property
    def identity(self) -> Mapping[str, Any]:
        return self._identity

    @property
    def batch_tokens(self) -> int:
        return 1 << 62

    @property
    def max_batch(self) -> int:
        return self._batch

    def encode(self, items: Sequence[tuple[str, str]]) -> list[Encoded]:
        return [Encoded(length=1, n_tokens=None, truncated=False, data=(c, r)) for c, r in items]

    def score_batch(self, batch: Sequence[Encoded]) -> list[float]:
        values = list(self.fn([e.data for e in batch]))
        if len(values) != len(batch):
            raise ConfigError(f"RM '{self.rm_name}' returned {len(values)} rewards for {len(batch)} texts")
        out = []
        for i, v in enumerate(values):
            try:
                out.append(float(v))
            except (TypeError, ValueError):
                raise ConfigError(
                    f"RM '{self.rm_name}' returned a non-number for text {i + 1}: {v!r}"
                ) from None
        return out


def model_fingerprint(model: Any) -> str:
    """Config + first and last weight tensors: cheap (no pass over every weight), and changed by
    any fine-tuning step, which moves the classifier head."""
    torch_params = list(model.parameters())
    h = hashlib.sha256()
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_dict"):
        h.update(json.dumps(config.to_dict(), sort_keys=True, default=str).encode())
    h.update(str(sum(p.numel() for p in torch_params)).encode())
    for p in [*torch_params[:1], *torch_params[-2:]]:
        h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def in_memory_reward_model(
    obj: Any, rm_name: str, options: RMOptions | None = None, *, identity: str | None = None
) -> RewardModel:
    """A RewardModel from what the user holds: a RewardModel, a spec string, a (model, tokenizer)
    pair, a transformers text-classification pipeline, or a callable."""
    opts = options or RMOptions()
    if isinstance(obj, RewardModel):
        return obj
    if isinstance(obj, str):
        from seal_audit.backends.reward import load_reward_model

        return load_reward_model(obj, opts)
    if _is(obj, "Pipeline"):
        model, tokenizer = getattr(obj, "model", None), getattr(obj, "tokenizer", None)
        if model is None or tokenizer is None:
            raise ConfigError(f"RM '{rm_name}': the pipeline has no model or tokenizer")
        obj = (model, tokenizer)
    if isinstance(obj, tuple) and len(obj) == 2 and _is(obj[0], "PreTrainedModel"):
        from seal_audit.backends.reward.hf import HFRewardModel

        model, tokenizer = obj
        fingerprint = identity or model_fingerprint(model)
        return HFRewardModel(f"memory:{rm_name}", opts, loaded=(model, tokenizer, fingerprint))
    if _is(obj, "PreTrainedModel"):
        raise ConfigError(
            f"RM '{rm_name}': a transformers model needs its tokenizer: pass (model, tokenizer)"
        )
    if callable(obj):
        return CallableInMemory(obj, rm_name, opts, identity)
    raise ConfigError(
        f"RM '{rm_name}': {type(obj).__name__} is not a reward model (give a transformers (model, tokenizer), "
        "a pipeline, a callable list[(context, response)] -> list[float], or a spec string)"
    )
