"""The transform registry: built-in transforms plus the user's own LM instructions.

Users extend it without code: a config entry ``{name, instruction, intended_shift}`` (TOML
``[[rewrites]]`` or ``[[rewrite.custom]]``) becomes a directed transform with the same prompt
framing, checks and caching as the built-in ones. Code can register controlled transforms too.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from seal_audit.data.errors import ConfigError
from seal_audit.rewrite.controlled import CONTROLLED
from seal_audit.rewrite.lm import LM_TRANSFORMS
from seal_audit.rewrite.spec import TransformSpec, shift_tuple

_REGISTRY: dict[str, TransformSpec] = {t.name: t for t in (*LM_TRANSFORMS, *CONTROLLED)}


def register_transform(spec: TransformSpec, *, replace: bool = False) -> TransformSpec:
    """Add a transform to the process-wide registry (a name may be taken only once)."""
    if spec.name in _REGISTRY and not replace and _REGISTRY[spec.name] != spec:
        raise ConfigError(f"a rewrite transform named '{spec.name}' already exists")
    _REGISTRY[spec.name] = spec
    return spec


def list_transforms() -> list[TransformSpec]:
    """Every registered transform: LM ones first (paraphrase, directed), then controlled."""
    order = {"paraphrase": 0, "directed": 1, "controlled": 2}
    return sorted(_REGISTRY.values(), key=lambda t: (order[t.kind], t.name))


def get_transform(name: str, extra: Mapping[str, TransformSpec] | None = None) -> TransformSpec:
    if extra and name in extra:
        return extra[name]
    if name in _REGISTRY:
        return _REGISTRY[name]
    known = sorted({*_REGISTRY, *(extra or {})})
    raise ConfigError(f"unknown rewrite transform '{name}' (known: {', '.join(known)})")


def custom_transform(entry: Mapping[str, Any]) -> TransformSpec:
    """A directed LM transform from a config entry ``{name, instruction, intended_shift?, description?}``."""
    unknown = sorted(
        set(entry) - {"name", "instruction", "intended_shift", "description", "changes", "preserves"}
    )
    if unknown:
        raise ConfigError(f"rewrite transform entry: unknown key(s) {unknown}")
    name = entry.get("name")
    instruction = entry.get("instruction")
    if not isinstance(name, str) or not isinstance(instruction, str) or not instruction.strip():
        raise ConfigError(f"rewrite transform entry needs a 'name' and an 'instruction', got {dict(entry)!r}")
    if name in _REGISTRY:
        raise ConfigError(f"rewrite transform '{name}' is built in; give your instruction another name")
    shift = entry.get("intended_shift") or {}
    if not isinstance(shift, Mapping):
        raise ConfigError(
            f"rewrite transform '{name}': intended_shift must be a table, e.g. {{sentiment = 1}}"
        )
    return TransformSpec(
        name=name,
        kind="directed",
        description=str(entry.get("description") or f"user instruction: {instruction.strip()[:60]}"),
        changes=str(entry.get("changes") or instruction.strip()),
        preserves=str(entry.get("preserves") or "content, intent, unsafe content, turn markers"),
        intended_shift=shift_tuple(shift),
        instruction=instruction.strip(),
    )


def custom_transforms(entries: Iterable[Mapping[str, Any]]) -> dict[str, TransformSpec]:
    out: dict[str, TransformSpec] = {}
    for entry in entries:
        spec = custom_transform(entry)
        if spec.name in out:
            raise ConfigError(f"rewrite transform '{spec.name}' is defined twice")
        out[spec.name] = spec
    return out


def transforms_from_toml(path: str | Path) -> dict[str, TransformSpec]:
    """User transforms from a TOML file: ``[[rewrites]]`` tables, or ``[[rewrite.custom]]`` in a run config."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    entries: list[Any] = list(data.get("rewrites") or [])
    section = data.get("rewrite")
    if isinstance(section, Mapping):
        entries += list(section.get("custom") or [])
    if not all(isinstance(e, Mapping) for e in entries):
        raise ConfigError(f"{p}: [[rewrites]] entries must be tables")
    try:
        return custom_transforms(entries)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def resolve_transforms(
    names: Sequence[str | TransformSpec], extra: Mapping[str, TransformSpec] | None = None
) -> tuple[TransformSpec, ...]:
    """Names (or specs) → specs; user transforms in ``extra`` shadow nothing built in."""
    return tuple(n if isinstance(n, TransformSpec) else get_transform(n, extra) for n in names)
