"""Reward-model backends: a Protocol, a registry of factories, and the ``NAME=SPEC`` spec syntax.

Spec strings (what ``--rm NAME=SPEC`` takes):

- ``hf:OWNER/NAME`` or a bare ``OWNER/NAME`` — a Hugging Face hub id (looked up in the local
  cache first); ``hf:DIR`` or a directory path — a local Hugging Face model;
- ``local:DIR`` or a directory whose ``config.json`` has ``seal_rm_type`` — an RM written by
  ``seal train-rm``;
- ``python:module:function`` — a Python callable ``fn(list[(context, response)]) -> list[float]``;
- ``vllm:MODEL`` / ``vllm-classify:MODEL`` — a decoder RM run by vLLM (the ``[vllm]`` extra, a GPU);
- ``memory:NAME`` — a model held in memory, given from Python (``seal_audit.score``,
  ``seal_audit.run(config, models=...)``; ``backends/reward/python.py``);
- ``length_chars`` / ``length_tokens`` — the null baselines.

Options may follow a ``?`` as ``key=value`` pairs joined by ``&``, e.g.
``post=hf:OpenAssistant/reward-model-deberta-v3-large-v2?format=text-pair&max_length=512``.
Factories import torch/transformers only when called.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from seal_audit.backends.reward.base import (
    INPUT_FORMATS,
    CachesEmbeddings,
    Encoded,
    InputFormat,
    PaddingFree,
    RewardModel,
    RMOptions,
    RMSpec,
    fixed_batches,
    is_padding_free,
    options_from_mapping,
    plan_batches,
    plan_for,
)
from seal_audit.data.errors import ConfigError

__all__ = [
    "INPUT_FORMATS",
    "CachesEmbeddings",
    "Encoded",
    "InputFormat",
    "PaddingFree",
    "RMOptions",
    "RMSpec",
    "RewardModel",
    "fixed_batches",
    "is_padding_free",
    "load_reward_model",
    "parse_rm_arg",
    "plan_batches",
    "plan_for",
    "register_reward_model",
    "split_spec",
]

Factory = Callable[[str, RMOptions], RewardModel]


def _hf(target: str, options: RMOptions) -> RewardModel:
    from seal_audit.backends.reward.hf import HFRewardModel

    return HFRewardModel(target, options)


def _local(target: str, options: RMOptions) -> RewardModel:
    from seal_audit.backends.reward.local import load_local_rm

    return load_local_rm(target, options)


def _python(target: str, options: RMOptions) -> RewardModel:
    from seal_audit.backends.reward.simple import CallableRewardModel

    return CallableRewardModel(target, options)


def _length(unit: str) -> Factory:
    def factory(target: str, options: RMOptions) -> RewardModel:
        from seal_audit.backends.reward.simple import LengthRewardModel

        return LengthRewardModel(unit)

    return factory


def _memory(target: str, options: RMOptions) -> RewardModel:
    # a model held in a Python process cannot be loaded from its name (backends/reward/python.py)
    raise ConfigError(
        f"RM spec 'memory:{target}' names a model held in memory: pass it from Python, "
        f"seal_audit.run(config, models={{'{target}': model}}) or seal_audit.score(pairs, rm=...)"
    )


def _vllm(task: str) -> Factory:
    def factory(target: str, options: RMOptions) -> RewardModel:
        from seal_audit.backends.reward.vllm import make_vllm

        model: RewardModel = make_vllm(task)(target, options)
        return model

    return factory


_REGISTRY: dict[str, Factory] = {
    "hf": _hf,
    "local": _local,
    "python": _python,
    "memory": _memory,
    "vllm": _vllm("reward"),
    "vllm-classify": _vllm("classify"),
    "length_chars": _length("chars"),
    "length_tokens": _length("tokens"),
}


def register_reward_model(kind: str, factory: Factory) -> None:
    """Add a backend: ``KIND:TARGET`` specs (or a bare ``KIND``) are then built by ``factory``."""
    _REGISTRY[kind] = factory


def split_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """(backend kind, target, options) of a spec string, without loading anything."""
    base, _, query = spec.partition("?")
    opts: dict[str, str] = {}
    if query:
        for part in query.split("&"):
            if not part:
                continue
            key, eq, value = part.partition("=")
            if not eq:
                raise ConfigError(f"RM spec '{spec}': option '{part}' is not key=value")
            opts[key.strip()] = value.strip()
    base = base.strip()
    if base in _REGISTRY and ":" not in base:
        return base, "", opts
    kind, colon, target = base.partition(":")
    if colon and kind in _REGISTRY and len(kind) > 1:  # len>1: not a Windows drive letter
        return kind, target, opts
    path = Path(base).expanduser()
    if path.is_dir():
        from seal_audit.backends.reward.local import local_rm_type

        return ("local" if local_rm_type(path) else "hf"), base, opts
    if base.count("/") == 1 and not base.startswith((".", "/", "~")) and " " not in base:
        return "hf", base, opts
    raise ConfigError(
        f"RM spec '{spec}': not a directory, hub id (owner/name) or known kind "
        f"({', '.join(sorted(_REGISTRY))})"
    )


def load_reward_model(spec: str, options: RMOptions | None = None) -> RewardModel:
    """Build the RM a spec names. ``?key=value`` options in the spec override ``options``."""
    kind, target, query = split_spec(spec)
    opts = options_from_mapping(query, options)
    return _REGISTRY[kind](target, opts)


def parse_rm_arg(arg: str, options: RMOptions | None = None) -> RMSpec:
    """``NAME=SPEC`` (or a bare SPEC, named after its kind) → RMSpec with role ``extra``: roles come
    from ``--pre/--post/--baseline`` or the config, never from the RM's name."""
    name, eq, spec = arg.partition("=")
    if not eq:
        spec = arg
        kind, target, _ = split_spec(arg)
        name = kind if not target else Path(target.rstrip("/")).name or kind
    name, spec = name.strip(), spec.strip()
    if not name or not spec:
        raise ConfigError(f"--rm '{arg}': expected NAME=SPEC")
    _, _, query = split_spec(spec)
    opts = options_from_mapping(query, options)
    return RMSpec(name=name, spec=spec, options=opts)
