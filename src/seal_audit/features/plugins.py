"""Featurizers from outside seal-audit: an installed entry point or a ``python:module:Attr`` spec.

Two ways in, so a custom featurizer works from the CLI and a TOML config, not only from inside
one's own Python process:

- an installed package declares ``[project.entry-points."seal_audit.featurizers"] NAME =
  "module:Attr"``; ``--featurizer NAME`` (or ``featurizers = ["NAME"]``) then finds it;
- ``--featurizer python:module:Attr`` names any importable object directly (a module on
  ``PYTHONPATH`` or in the working directory), no packaging needed.

``Attr`` is a Featurizer class (built with no arguments), a factory function returning one, or a
ready instance. What it builds is checked against the Featurizer protocol here, with an error that
names the spec and what is missing, before any text is labeled.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from seal_audit.data.errors import ConfigError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from seal_audit.features.base import Featurizer

ENTRY_POINT_GROUP = "seal_audit.featurizers"
"""The entry-point group a package registers its featurizers under."""

PYTHON_PREFIX = "python:"
"""``python:module:Attr`` names a featurizer by its import path."""


def entry_points() -> dict[str, EntryPoint]:
    """The installed featurizer entry points by name (nothing is imported)."""
    from importlib.metadata import entry_points as _eps

    return {ep.name: ep for ep in _eps(group=ENTRY_POINT_GROUP)}


def describe_entry_points() -> dict[str, str]:
    """``name -> "plug-in module:Attr (from DIST)"`` for ``seal label --list``."""
    out = {}
    for name, ep in sorted(entry_points().items()):
        dist = getattr(ep, "dist", None)
        origin = f" (from {dist.name} {dist.version})" if dist is not None else ""
        out[name] = f"plug-in {ep.value}{origin}"
    return out


def _import_spec(spec: str) -> Any:
    """The object ``python:module:Attr`` (``Attr`` may be dotted: ``module:Class.factory``) names."""
    body = spec[len(PYTHON_PREFIX) :]
    module_name, sep, attr = body.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(
            f"featurizer '{spec}': expected python:MODULE:ATTR (e.g. python:my_features:Exclaim)"
        )
    if "" not in sys.path:
        sys.path.insert(0, "")  # a module in the working directory, as `python -m` would find it
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"featurizer '{spec}': cannot import module '{module_name}': {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                f"featurizer '{spec}': module '{module_name}' has no attribute '{attr}'"
            ) from None
    return obj


def _build(obj: Any, where: str) -> Featurizer:
    """An instance from a class / factory / instance, checked against the Featurizer protocol."""
    from seal_audit.features.base import Featurizer

    if not isinstance(obj, Featurizer):  # a class or a factory: build it
        if not callable(obj):
            raise ConfigError(f"featurizer {where}: {obj!r} is neither a Featurizer nor a class/factory")
        try:
            obj = obj()
        except Exception as exc:
            raise ConfigError(f"featurizer {where}: building it failed: {type(exc).__name__}: {exc}") from exc
    missing = [
        a
        for a in ("name", "specs", "label")
        if not hasattr(obj, a) or (a != "name" and not callable(getattr(obj, a)))
    ]
    if missing:
        raise ConfigError(
            f"featurizer {where}: {type(obj).__name__} lacks {', '.join(missing)} "
            "(a Featurizer has a `name`, `specs()` and `label(items, ctx)`)"
        )
    if not isinstance(obj.name, str) or not obj.name.strip():
        raise ConfigError(f"featurizer {where}: its `name` must be a non-empty string, got {obj.name!r}")
    try:
        specs = list(obj.specs())
    except Exception as exc:
        raise ConfigError(f"featurizer {where}: specs() failed: {type(exc).__name__}: {exc}") from exc
    from seal_audit.data.records import FeatureSpec

    bad = [s for s in specs if not isinstance(s, FeatureSpec)]
    if not specs or bad:
        raise ConfigError(f"featurizer {where}: specs() must return one or more FeatureSpec records")
    return obj  # type: ignore[no-any-return]


def load_plugin(name: str, builtin: set[str]) -> Featurizer | None:
    """The featurizer ``name`` names if it is a ``python:`` spec or an installed entry point; None
    when it is neither (the caller reports an unknown name). A plug-in may not take the name of a
    built-in featurizer: rows are attributed by featurizer name in the features table."""
    if name.startswith(PYTHON_PREFIX):
        fz = _build(_import_spec(name), f"'{name}'")
    else:
        ep = entry_points().get(name)
        if ep is None:
            return None
        try:
            obj = ep.load()
        except Exception as exc:
            raise ConfigError(
                f"featurizer '{name}': entry point {ENTRY_POINT_GROUP}:{name} = {ep.value} failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        fz = _build(obj, f"'{name}' (entry point {ep.value})")
    if fz.name in builtin:
        raise ConfigError(
            f"featurizer '{name}' calls itself '{fz.name}', the name of a built-in featurizer: rename it"
        )
    return fz
