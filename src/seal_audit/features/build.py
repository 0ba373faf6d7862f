"""Featurizers from names: the one place that turns ``--featurizer``/config names into objects.

Shared by ``seal label``, the rewrite re-labeling and ``seal run``, so the three never disagree on
what ``offline`` expands to or when the column featurizer joins in.
"""

from __future__ import annotations

from collections.abc import Sequence

from seal_audit.backends.llm import LLMSettings
from seal_audit.data.errors import ConfigError
from seal_audit.data.llm_options import MAX_FAILED_DEFAULT, check_max_failed
from seal_audit.features.base import Featurizer, get_featurizer, offline_featurizer_names
from seal_audit.features.specs import UserFeatures, lm_feature_set


def expand_names(names: Sequence[str]) -> list[str]:
    """``offline`` → every offline featurizer; duplicates dropped, order kept."""
    out: list[str] = []
    for n in names:
        for m in offline_featurizer_names() if n == "offline" else [n]:
            if m not in out:
                out.append(m)
    return out


def build_featurizers(
    names: Sequence[str],
    user: UserFeatures | None = None,
    lm_settings: LLMSettings | None = None,
    *,
    max_cost: float | None = None,
    batch_timeout_s: float | None = None,
    include_seal: bool | None = None,
    max_failed: float | None = None,
) -> list[Featurizer]:
    """Build the named featurizers; column features defined by the user always join (they are free).

    ``max_failed`` (default: the LM settings' ``max_failed``, else none) is the failed texts every
    offline and column featurizer tolerates: one option, the LM-labeler's ``--max-failed``, so a
    featurizer that fails on texts ends the stage ``partial`` and the command exit 3 as an LM does."""
    from seal_audit.features.columns import ColumnFeaturizer
    from seal_audit.features.lm import LMLabeler
    from seal_audit.features.offline import FunctionFeaturizer

    if max_failed is None:
        max_failed = lm_settings.max_failed if lm_settings is not None else MAX_FAILED_DEFAULT
    try:
        check_max_failed(max_failed)
    except ValueError:
        raise ConfigError(
            f"--max-failed {max_failed:g}: a whole count >= 1, or a fraction in (0, 1)"
        ) from None

    wanted = expand_names(names)
    if user and user.columns and "columns" not in wanted:
        wanted.append("columns")
    fz: list[Featurizer] = []
    for n in wanted:
        if n == "lm":
            if lm_settings is None:
                raise ConfigError(
                    "the 'lm' featurizer needs LM settings (model, base_url; [labels.lm] in a config)"
                )
            feats = lm_feature_set(user, include_seal=include_seal)
            fz.append(LMLabeler(lm_settings, feats, max_cost=max_cost, batch_timeout_s=batch_timeout_s))
        elif n == "columns":
            col_specs = [s for s in (user.specs if user else ()) if s.source == "column"]
            fz.append(get_featurizer("columns", specs=col_specs, columns=user.columns if user else {}))
        else:
            fz.append(get_featurizer(n))
    for f in fz:
        if isinstance(f, FunctionFeaturizer | ColumnFeaturizer):
            f.max_failed = max_failed
    return fz
