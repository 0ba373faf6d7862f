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
import json
from collections.abc import Callable, Sequence
from typing import Any

from seal_audit.backends.reward.base import RewardModel, RMOptions
from seal_audit.data.errors import ConfigError

PairScorer = Callable[[list[tuple[str, str]]], Sequence[float]]
"""What a callable RM is: rewards of (context, response) pairs, in order."""


def _is(obj: Any, class_name: str) -> bool:
    """Is ``obj`` a transformers ``class_name`` (checked by class, without importing transformers)."""
    return any(
        c.__name__ == class_name and c.__module__.startswith("transformers") for c in type(obj).__mro__
    )


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
        from seal_audit.backends.reward.simple import CallableRewardModel, source_hash

        target = f"memory:{getattr(obj, '__qualname__', type(obj).__name__)}"
        # no source (a REPL, a C function): never share a cache entry with another object
        source = identity or (f"source:{h}" if (h := source_hash(obj)) else f"object:{id(obj)}")
        return CallableRewardModel.from_callable(obj, target, source, opts)
    raise ConfigError(
        f"RM '{rm_name}': {type(obj).__name__} is not a reward model (give a transformers (model, tokenizer), "
        "a pipeline, a callable list[(context, response)] -> list[float], or a spec string)"
    )
