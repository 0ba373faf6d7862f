"""The prepared context every analysis reads: arrays built once, masks, the regressors' design.

``analyze`` builds one ``Context`` and hands it to each analysis function in turn. Analyses add what
later ones need (γ, regimes, θ) to it, record their exclusions and tables in it, and never raise for a
data problem: the router turns any failure into a ``Skipped`` record with status ``failed``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from seal_audit.data.records import FeatureSpec
from seal_audit.stats._common import BoolArray, Exclusions, FloatArray, IntArray, StrArray, make_exclusions
from seal_audit.stats.options import AnalysisInputs, AnalysisOptions
from seal_audit.stats.prepare import ORIGINAL, PreparedData, infer_feature_specs
from seal_audit.stats.regression import Coefficient, RegressionResult


def usable(arr: FloatArray | None, n: int) -> BoolArray:
    """Pairs whose (N, 2) values are finite on both sides."""
    if arr is None:
        return np.zeros(n, dtype=bool)
    ok: BoolArray = np.asarray(np.isfinite(arr).all(axis=1), dtype=bool)
    return ok


_COEF_FIELDS = tuple(f.name for f in dataclasses.fields(Coefficient))


def coef_rows(reg: RegressionResult, **extra: Any) -> list[dict[str, Any]]:
    """One table row per coefficient, with the model's inference settings beside it."""
    rows = []
    for c in reg.coefficients:
        row = dict(extra)
        row.update({name: getattr(c, name) for name in _COEF_FIELDS})  # flat: no deep copy needed
        row.update(
            model_type=reg.model,
            cov_type=reg.cov_type,
            correction=reg.correction,
            n_obs=reg.n_obs,
            n_clusters=reg.n_clusters,
        )
        rows.append(row)
    return rows


def rate_cols(prefix: str, r: Any) -> dict[str, Any]:
    """The columns of a RateEstimate in a flat table (none when the rate is absent)."""
    if r is None:
        return {}
    return {
        f"{prefix}": r.rate,
        f"{prefix}_k": r.k,
        f"{prefix}_n": r.n,
        f"{prefix}_ci_low": r.ci_low,
        f"{prefix}_ci_high": r.ci_high,
        f"{prefix}_boot_ci_low": r.boot_ci_low,
        f"{prefix}_boot_ci_high": r.boot_ci_high,
    }


def frame(rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None) -> pd.DataFrame:
    rows = list(rows)
    if not rows and columns is not None:
        return pd.DataFrame({c: [] for c in columns})
    return pd.DataFrame(rows)


@dataclasses.dataclass(frozen=True, eq=False)
class Clustering:
    """The unit every clustered interval of one analysis run uses (``AnalysisOptions.cluster``)."""

    kind: str
    """``group`` or ``pair``: what was used (``auto`` resolved)."""
    codes: IntArray
    """Per pair: its cluster code (group codes under ``group``, 0..N−1 under ``pair``)."""
    n_groups: int
    """Distinct groups in the pairs (whichever clustering is used; N without a ``group_id`` column)."""
    largest_group: int
    note: str

    def of(self, mask: BoolArray) -> IntArray | None:
        """The cluster codes of the pairs in ``mask``, or None under pair clustering or when no group
        holds two pairs (independent pairs: every statistic then takes its pair-level path, unchanged)."""
        return self.codes[mask] if self.kind == "group" and self.largest_group > 1 else None


def resolve_clustering(group_ids: StrArray | None, n: int, requested: str) -> Clustering:
    """``auto`` → group when some group holds more than one pair, else pair; ``group`` / ``pair`` as
    asked. Without a ``group_id`` column every pair is its own group (said in the note)."""
    if group_ids is None:
        codes: IntArray = np.arange(n, dtype=np.int64)
        sizes = np.ones(n, dtype=np.int64)
    else:
        uniq, inv = np.unique(np.asarray(group_ids, dtype=str), return_inverse=True)
        codes = np.asarray(inv, dtype=np.int64).reshape(-1)
        sizes = np.bincount(codes, minlength=uniq.size)
    n_groups = int(sizes.size)
    largest = int(sizes.max()) if sizes.size else 0
    shared = largest > 1
    kind = ("group" if shared else "pair") if requested == "auto" else requested
    where = (
        "no group_id column: every pair is its own group"
        if group_ids is None
        else (f"{n_groups} groups of {n} pairs, largest {largest}")
    )
    if kind == "group":
        note = f"intervals clustered by group ({where}); the bootstrap resamples groups"
    elif shared:
        note = f"intervals clustered by pair although pairs share groups ({where}; cluster = {requested})"
    else:
        note = f"intervals clustered by pair ({where})"
    if requested == "auto":
        note = f"cluster = auto: {note}"
    return Clustering(kind=kind, codes=codes, n_groups=n_groups, largest_group=largest, note=note)


class Design:
    """The regressors as two (N, K) matrices, built once and row-subset per analysis."""

    def __init__(self, feat: Mapping[str, FloatArray], names: tuple[str, ...], n: int) -> None:
        self.names = names
        self.xc = np.empty((n, len(names)))
        self.xr = np.empty((n, len(names)))
        for j, f in enumerate(names):
            self.xc[:, j] = feat[f][:, 0]
            self.xr[:, j] = feat[f][:, 1]

    def __call__(self, mask: BoolArray) -> tuple[FloatArray, FloatArray]:
        return self.xc[mask], self.xr[mask]


@dataclasses.dataclass(eq=False)
class Context:
    """What every analysis reads (filled by ``build_context``) and the bookkeeping they share."""

    inputs: AnalysisInputs
    opt: AnalysisOptions
    data: PreparedData
    specs: tuple[FeatureSpec, ...]
    regressors: tuple[str, ...]
    pre: str | None
    baselines: tuple[str, ...]
    notes: list[str]
    excl: dict[str, Exclusions] = dataclasses.field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)
    gamma: StrArray | None = None
    """Per-pair LM agreement γ ("c", "r", "i"; "" where a γ feature is missing), once computed."""
    gamma_skip: str = ""
    regime: StrArray | None = None
    theta: FloatArray | None = None
    status: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Outcome of every analysis so far, by its stats.json key (filled by the router)."""
    theta_paper: FloatArray | None = None
    theta_centered: FloatArray | None = None
    suspicious_mask: BoolArray | None = None
    suspicious_rows: Any = None
    """Row positions of the watchlist, in rank order, once computed."""
    unused_tables: frozenset[str] = frozenset()
    """Tables nobody reads from this context (a per-RM view's own copies, rebuilt from its results):
    not built (issue 20: DataFrame construction was a fifth of each extra RM's cost)."""
    shared: dict[Any, Any] = dataclasses.field(default_factory=dict)
    """What does not depend on which RM plays post-D (e.g. the rewrites' drift gate), computed once:
    views (``compare.view``) share this dict with the context they come from."""

    def __post_init__(self) -> None:
        n = self.data.n
        self.n = n
        self.ids: StrArray = self.data.pair_ids
        self.post: str = self.inputs.post
        post_r = self.data.reward(self.post)
        assert post_r is not None
        self.post_r: FloatArray = post_r
        self.ok_post = usable(post_r, n)
        self.pre_r: FloatArray | None = self.data.reward(self.pre) if self.pre else None
        self.ok_pre: BoolArray | None = usable(self.pre_r, n) if self.pre_r is not None else None
        self.both: BoolArray | None = self.ok_post & self.ok_pre if self.ok_pre is not None else None
        if "features" not in self.shared:  # the same for every view: built once (issue 20)
            feat_c: dict[str, FloatArray] = {
                f: self.data.features[(ORIGINAL, f)] for f in self.data.feature_names
            }
            feat_ok: BoolArray = np.ones(n, dtype=bool)
            for f in self.regressors:
                feat_ok &= usable(feat_c[f], n)
            spec_by = {s.name: s for s in self.specs}
            self.shared["features"] = (
                feat_c,
                feat_ok,
                Design(feat_c, self.regressors, n),
                spec_by,
                {f for f in self.regressors if f in spec_by and spec_by[f].kind == "numeric"},
                resolve_clustering(self.data.group_ids, n, self.opt.cluster),
            )
        self.feat_c, self.feat_ok, self.design, self.spec_by, self.numeric, self.clustering = self.shared[
            "features"
        ]
        self.regime = np.full(n, "", dtype=object)
        self.theta = np.full(n, np.nan)
        self.theta_paper = np.full(n, np.nan)
        self.theta_centered = np.full(n, np.nan)

    def exclusions(
        self, name: str, used: BoolArray, reason: str, universe: BoolArray | None = None
    ) -> Exclusions:
        """Record which pairs analysis ``name`` left out (never silent) and return the record."""
        ids = self.ids if universe is None else self.ids[universe]
        mask = used if universe is None else used[universe]
        e = make_exclusions(ids, mask, reason, self.opt.max_listed_ids)
        self.excl[name] = e
        return e

    def wants(self, table: str) -> bool:
        """Whether table ``table`` of this context is read by anyone (see ``unused_tables``)."""
        return table not in self.unused_tables

    def role(self, rm: str) -> str:
        """The RM's role as the inputs state it (never guessed from its name)."""
        if rm == self.post:
            return "post"
        if rm == self.pre:
            return "pre"
        return "baseline" if rm in self.baselines else "extra"


def resolve_specs(inputs: AnalysisInputs, data: PreparedData, notes: list[str]) -> tuple[FeatureSpec, ...]:
    """The feature specs the analysis uses, with notes on features that have no spec or no values."""
    specs = tuple(inputs.specs)
    if not specs and data.feature_names and inputs.features is not None:
        specs = infer_feature_specs(inputs.features)
        notes.append("no feature specs given: kinds inferred from values, every feature treated as a spoiler")
    names = {s.name for s in specs}
    unspecified = sorted(set(data.feature_names) - names)
    if unspecified:
        notes.append(f"features without a spec are not analysed: {unspecified}")
    absent = sorted(s.name for s in specs if s.name not in data.feature_names)
    if absent and data.feature_names:
        notes.append(f"specified features absent from the feature table: {absent}")
    return specs
