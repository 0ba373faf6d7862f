"""RMs without a neural network: the length null models and user Python callables."""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from seal_audit.backends.reward.base import Encoded, RMOptions
from seal_audit.backends.reward.text import whitespace_tokens
from seal_audit.data.errors import ConfigError


class LengthRewardModel:
    """Null baseline: reward = length of the response, in characters or whitespace tokens.

    ``length_tokens`` counts whitespace-separated words of the response as given (for hh-rlhf
    that includes the leading "Assistant:", a constant +1 that changes no comparison); it is
    tokenizer-free on purpose, so the baseline is the same whatever RMs a run uses.
    """

    def __init__(self, unit: str) -> None:
        if unit not in ("chars", "tokens"):
            raise ConfigError(f"unknown length unit '{unit}'")
        self.unit = unit
        self.name = f"length_{unit}"

    @property
    def identity(self) -> Mapping[str, Any]:
        return {"backend": self.name, "version": 1}

    @property
    def batch_tokens(self) -> int:
        return 1 << 62

    @property
    def max_batch(self) -> int:
        return 100_000

    def _length(self, response: str) -> int:
        return len(response) if self.unit == "chars" else whitespace_tokens(response)

    def encode(self, items: Sequence[tuple[str, str]]) -> list[Encoded]:
        out = []
        for _, response in items:
            n = self._length(response)
            out.append(Encoded(length=1, n_tokens=whitespace_tokens(response), truncated=False, data=n))
        return out

    def score_batch(self, batch: Sequence[Encoded]) -> list[float]:
        return [float(e.data) for e in batch]


def source_hash(fn: Any) -> str | None:
    """Hash of a function's source (None for a REPL lambda or a C function: no source to read)."""
    try:
        return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16]
    except (OSError, TypeError):
        return None


class CallableRewardModel:
    """A user function ``fn(list[(context, response)]) -> list[float]``, named ``python:module:function``
    (or held in memory: :meth:`from_callable`, the Python API's way in).

    The function's source code is hashed into the identity, so editing the function invalidates
    its cached rewards; a function may also set ``fn.seal_version`` to do that explicitly.
    """

    name = "python"

    def __init__(self, target: str, options: RMOptions | None = None) -> None:
        module_name, _, fn_name = target.partition(":")
        if not module_name or not fn_name:
            raise ConfigError(f"python RM '{target}': expected python:module:function")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"python RM '{target}': cannot import module '{module_name}': {exc}") from exc
        obj: Any = module
        for part in fn_name.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                raise ConfigError(f"python RM '{target}': module '{module_name}' has no '{fn_name}'")
        if not callable(obj):
            raise ConfigError(f"python RM '{target}': '{fn_name}' is not callable")
        self._setup(obj, target, source_hash(obj), options)

    @classmethod
    def from_callable(
        cls,
        fn: Callable[[list[tuple[str, str]]], Sequence[float]],
        target: str,
        source: str | None,
        options: RMOptions | None = None,
    ) -> CallableRewardModel:
        """A callable the caller already holds; ``source`` is its cache identity (None: its source hash)."""
        self = cls.__new__(cls)
        self._setup(fn, target, source or source_hash(fn), options)
        return self

    def _setup(
        self,
        fn: Callable[[list[tuple[str, str]]], Sequence[float]],
        target: str,
        source: str | None,
        options: RMOptions | None,
    ) -> None:
        self.fn = fn
        self._identity = {
            "backend": "python",
            "target": target,
            "source": source,
            "version": str(getattr(fn, "seal_version", "")),
        }
        self._batch = (options or RMOptions()).max_batch

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
            raise ConfigError(
                f"python RM '{self._identity['target']}' returned {len(values)} rewards for {len(batch)} texts"
            )
        try:
            return [float(v) for v in values]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"python RM '{self._identity['target']}' returned a non-number: {exc}") from exc
