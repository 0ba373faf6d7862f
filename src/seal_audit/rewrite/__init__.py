"""REWRITE stage: paraphrase, directed and controlled rewrites with a meaning-drift gate.

SEAL's alignment robustness (SEAL-METHOD.md §5) asks whether an RM's verdict survives a rewrite
that should not matter (paraphrase) or that moves one feature on purpose (directed and controlled
transforms). This package produces and stores the rewrites; scoring and labeling them is the
caller's job (``rewritten_items`` lists what to feed those stages), so the stages stay independent.

Importing this package is cheap: the LLM client and the embedding model load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seal_audit.rewrite.controlled import CONTROLLED, apply_controlled, pair_seed
    from seal_audit.rewrite.drift import DriftGate
    from seal_audit.rewrite.lm import LM_TRANSFORMS, PROMPT_TEMPLATE, build_prompt, check_reply
    from seal_audit.rewrite.markers import marker_problem, marker_roles
    from seal_audit.rewrite.registry import (
        custom_transform,
        custom_transforms,
        get_transform,
        list_transforms,
        register_transform,
        resolve_transforms,
        transforms_from_toml,
    )
    from seal_audit.rewrite.spec import RewriteSettings, Scope, TransformKind, TransformSpec
    from seal_audit.rewrite.stage import (
        RewriteItem,
        RewriteSummary,
        TransformSummary,
        rewrite_run,
        rewritten_items,
        run_rewrites,
        select_pairs,
    )

_LAZY = {
    "CONTROLLED": "controlled",
    "apply_controlled": "controlled",
    "pair_seed": "controlled",
    "DriftGate": "drift",
    "LM_TRANSFORMS": "lm",
    "PROMPT_TEMPLATE": "lm",
    "build_prompt": "lm",
    "check_reply": "lm",
    "marker_problem": "markers",
    "marker_roles": "markers",
    "custom_transform": "registry",
    "custom_transforms": "registry",
    "get_transform": "registry",
    "list_transforms": "registry",
    "register_transform": "registry",
    "resolve_transforms": "registry",
    "transforms_from_toml": "registry",
    "RewriteSettings": "spec",
    "Scope": "spec",
    "TransformKind": "spec",
    "TransformSpec": "spec",
    "RewriteItem": "stage",
    "RewriteSummary": "stage",
    "TransformSummary": "stage",
    "rewrite_run": "stage",
    "rewritten_items": "stage",
    "run_rewrites": "stage",
    "select_pairs": "stage",
}

__all__ = [
    "CONTROLLED",
    "LM_TRANSFORMS",
    "PROMPT_TEMPLATE",
    "DriftGate",
    "RewriteItem",
    "RewriteSettings",
    "RewriteSummary",
    "Scope",
    "TransformKind",
    "TransformSpec",
    "TransformSummary",
    "apply_controlled",
    "build_prompt",
    "check_reply",
    "custom_transform",
    "custom_transforms",
    "get_transform",
    "list_transforms",
    "marker_problem",
    "marker_roles",
    "pair_seed",
    "register_transform",
    "resolve_transforms",
    "rewrite_run",
    "rewritten_items",
    "run_rewrites",
    "select_pairs",
    "transforms_from_toml",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
