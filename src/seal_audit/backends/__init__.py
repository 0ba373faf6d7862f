"""Adapters behind Protocols (reward models, sentence embedders), with heavy imports in factories.

Importing this package (or any of its subpackages) must stay cheap: torch and transformers are
imported only when a factory builds a model, so ``seal --help`` and the pure stages never pay for
them, and a machine without the ``[hf]`` extra gets one clear error at the point of use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seal_audit.backends.embed import Embedder, load_embedder
    from seal_audit.backends.reward import (
        Encoded,
        RewardModel,
        RMOptions,
        RMSpec,
        load_reward_model,
        parse_rm_arg,
    )

_LAZY = {
    "Embedder": "seal_audit.backends.embed",
    "load_embedder": "seal_audit.backends.embed",
    "Encoded": "seal_audit.backends.reward",
    "RewardModel": "seal_audit.backends.reward",
    "RMOptions": "seal_audit.backends.reward",
    "RMSpec": "seal_audit.backends.reward",
    "load_reward_model": "seal_audit.backends.reward",
    "parse_rm_arg": "seal_audit.backends.reward",
}

__all__ = [
    "Embedder",
    "Encoded",
    "RMOptions",
    "RMSpec",
    "RewardModel",
    "load_embedder",
    "load_reward_model",
    "parse_rm_arg",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
