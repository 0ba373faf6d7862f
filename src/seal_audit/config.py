"""AuditConfig: one TOML file describes a whole run; validated up front, errors name the key.

Only this module knows the file's shape. Stages receive plain, already-validated values, and the
whole config (minus secrets, which are never in it: API keys are read from an environment variable
named here) is recorded in the run manifest.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from seal_audit.data.errors import ConfigError
from seal_audit.data.llm_options import LLMSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataConfig(_Section):
    """One dataset source; several are concatenated (pair ids must stay unique)."""

    path: str
    """File path, or ``hf:owner/name`` for a Hugging Face dataset."""
    format: Literal["auto", "hh-rlhf", "pairs", "conversation", "multi-variant"] = "auto"
    prompt: str = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"
    id: str | None = None
    split_rule: Literal["turn", "reference"] = "turn"
    subset: str | None = None
    split: str = "train"
    limit: int | None = Field(default=None, ge=1)
    sample: float | None = Field(default=None, gt=0)
    seed: int = 0
    on_error: Literal["raise", "skip"] = "raise"


class RMConfig(_Section):
    """A reward model and its role in the audit."""

    name: str
    spec: str
    """``hf:ID``, a local directory, ``local:DIR``, ``python:module:function``, ``length_chars``, ``length_tokens``."""
    role: Literal["pre", "post", "baseline", "extra"] = "extra"
    format: Literal["text-pair", "chat-template", "concat"] = "text-pair"
    template: str | None = None
    max_length: int = 512
    batch_tokens: int = 16384
    label_index: int = 0
    revision: str | None = None
    device: str | None = None
    dtype: str | None = None
    trust_remote_code: bool = False


class TrainRMConfig(_Section):
    """A local RM trained before scoring (the offline pre-D / post-D pair of the demo)."""

    name: str
    role: Literal["pre", "post", "baseline", "extra"]
    data: Literal["A", "A+D"] = "A+D"
    """Train on part A only (pre-D) or on A plus the audited set D (post-D)."""
    kind: Literal["embed", "ngram"] = "embed"
    encoder: str | None = None
    seed: int = 0


LMConfig = LLMSettings
"""``[labels.lm]`` / ``[rewrite.lm]``: the one LM-endpoint options model (``data/llm_options.py``),
also behind the LM flags of ``seal label`` and ``seal rewrite``."""


class LabelsConfig(_Section):
    featurizers: list[str] = Field(default_factory=list)
    """Registered featurizer names: ``lm`` (LM-labeler), ``offline`` (all offline ones) or one by one
    (``length``, ``sentiment``, ``refusal`` …), ``columns`` (dataset-column features)."""
    lm: LMConfig | None = None
    seal_taxonomy: bool = True
    """Label the 19 SEAL keys with the LM-labeler (user LM features are added to them)."""
    features: list[dict[str, Any]] = Field(default_factory=list)
    """User-defined features, ``[[labels.features]]`` tables: name, kind, role, definition, levels,
    source (``lm`` or ``column`` with ``columns = {chosen = "...", rejected = "..."}``)."""


class CustomRewrite(_Section):
    name: str
    instruction: str
    intended_shift: dict[str, int] = Field(default_factory=dict)


class RewriteConfig(_Section):
    transforms: list[str] = Field(default_factory=list)
    sample: float = Field(default=0.01, gt=0)
    seed: int = 0
    scope: Literal["response", "transcript"] = "response"
    sides: list[Literal["chosen", "rejected"]] = Field(default_factory=lambda: ["chosen", "rejected"])  # type: ignore[arg-type]
    drift_threshold: float = Field(default=0.8, ge=-1, le=1)
    embedder: str | None = None
    lm: LMConfig | None = None
    custom: list[CustomRewrite] = Field(default_factory=list)


class AnalysisConfig(_Section):
    seed: int = 0
    n_bootstrap: int = Field(default=1000, ge=0)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    correction: Literal["bonferroni", "holm"] = "bonferroni"
    gamma_features: list[str] = Field(default_factory=lambda: ["is_harmless", "is_helpful"])
    exclude_drifted: bool = True
    drop_constant: bool = True
    """Leave features that never vary (e.g. code blocks in chat data) out of the imprint, named in
    stats.json's notes, instead of stopping; collinear features always stop with their names."""


class RunSection(_Section):
    out: str = "seal-run"
    seed: int = 0
    engine: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    report: bool = True
    holdout: float = Field(default=0.0, ge=0, lt=1)
    """Share of the loaded pairs set aside (seeded) as part A: training data of ``[[train_rm]]``
    entries, not audited. The rest is D."""


class AuditConfig(_Section):
    """The whole run. Sections: run, data, train_rm, rms, labels, rewrite, analysis."""

    run: RunSection = Field(default_factory=RunSection)
    data: list[DataConfig]
    train_rm: list[TrainRMConfig] = Field(default_factory=list)
    rms: list[RMConfig] = Field(default_factory=list)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    rewrite: RewriteConfig | None = None
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)

    @field_validator("data")
    @classmethod
    def _at_least_one(cls, v: list[DataConfig]) -> list[DataConfig]:
        if not v:
            raise ValueError("at least one [[data]] source is needed")
        return v

    def rm_roles(self) -> list[tuple[str, str]]:
        """(name, role) of every RM, trained ones first."""
        out: list[tuple[str, str]] = [(r.name, str(r.role)) for r in self.train_rm]
        return out + [(r.name, str(r.role)) for r in self.rms]

    def rm_names(self) -> list[str]:
        return [name for name, _ in self.rm_roles()]

    def role(self, role: str) -> str | None:
        return next((name for name, r in self.rm_roles() if r == role), None)


def _key(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_config(data: dict[str, Any], source: str = "<config>") -> AuditConfig:
    """Validate a config dict; the first problem is reported with its dotted key."""
    try:
        cfg = AuditConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: key '{_key(e['loc'])}': {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
    names = cfg.rm_names()
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{source}: key 'rms': duplicate RM names {dupes}")
    for role in ("pre", "post"):
        if sum(r == role for _, r in cfg.rm_roles()) > 1:
            raise ConfigError(f"{source}: key 'rms': more than one RM with role '{role}'")
    return cfg


def load_config(path: str | Path) -> AuditConfig:
    """Read and validate a TOML config; relative paths inside it are relative to the file."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    base = p.resolve().parent
    for d in raw.get("data", []) if isinstance(raw.get("data"), list) else []:
        if isinstance(d, dict) and isinstance(d.get("path"), str) and not d["path"].startswith("hf:"):
            d["path"] = str((base / d["path"]).resolve()) if not Path(d["path"]).is_absolute() else d["path"]
    run = raw.get("run")
    if isinstance(run, dict) and isinstance(run.get("out"), str) and not Path(run["out"]).is_absolute():
        run["out"] = str((base / run["out"]).resolve())
    return parse_config(raw, str(p))
