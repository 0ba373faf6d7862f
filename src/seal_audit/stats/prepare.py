"""Long tables → per-pair arrays, matched by pair_id (never by row position, a reference weakness).

Rewards become one (N, 2) array per (variant, RM) and features one (N, 2) array per (variant,
feature), column 0 = chosen, column 1 = rejected, NaN where the table has no (usable) value. Every
analysis then picks the pairs it can use and states the rest as exclusions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from seal_audit.data.errors import InputError
from seal_audit.data.records import FeatureSpec
from seal_audit.stats._common import BoolArray, FloatArray, StrArray
from seal_audit.stats.options import AnalysisInputs

ORIGINAL = "original"


@dataclasses.dataclass(frozen=True, eq=False)
class PreparedData:
    """Per-pair arrays of one analysis run (all aligned with ``pair_ids``)."""

    pair_ids: StrArray
    context_diverges: BoolArray
    rewards: Mapping[tuple[str, str], FloatArray]
    """(variant, rm) → (N, 2) rewards."""
    features: Mapping[tuple[str, str], FloatArray]
    """(variant, feature) → (N, 2) values."""
    rms: tuple[str, ...]
    variants: tuple[str, ...]
    """Rewrite variants present in the scores (``original`` excluded)."""
    feature_names: tuple[str, ...]
    unknown_pair_ids: Mapping[str, int]
    """Rows whose pair_id is not in the pairs table, per input table (ignored, counted)."""
    n_truncated: Mapping[str, int]
    """Per RM: texts whose scoring input was truncated (original variant)."""
    group_ids: StrArray | None = None
    """Per pair: the group (pairs that share a prompt, e.g. one multi-variant record) from the pairs
    table's ``group_id``; an empty cell is the pair's own group. None without the column."""

    @property
    def n(self) -> int:
        return int(self.pair_ids.size)

    def reward(self, rm: str, variant: str = ORIGINAL) -> FloatArray | None:
        return self.rewards.get((variant, rm))

    def feature(self, name: str, variant: str = ORIGINAL) -> FloatArray | None:
        return self.features.get((variant, name))


def _require(df: pd.DataFrame, cols: Sequence[str], table: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}; has {list(df.columns)}", file=table, field=missing[0])


def _codes(col: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Factorize a column once (fast on Arrow strings; no per-row Python objects)."""
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), [str(u) for u in uniques]


def _side_codes(side: pd.Series, table: str) -> np.ndarray:
    codes, uniq = _codes(side)
    lookup = np.array([{"chosen": 0, "rejected": 1}.get(u, -1) for u in uniq] + [-1], dtype=np.int64)
    out: np.ndarray = lookup[codes]  # code -1 (missing) maps to the trailing -1
    bad = np.flatnonzero(out < 0)
    if bad.size:
        raise InputError(
            f"side must be 'chosen' or 'rejected', got {side.iloc[int(bad[0])]!r}",
            file=table,
            record=int(bad[0]) + 1,
            field="side",
        )
    return out


def _variant_codes(df: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    if "variant" not in df.columns:
        return np.zeros(len(df), dtype=np.int64), [ORIGINAL]
    return _codes(df["variant"].fillna(ORIGINAL).astype(str))


def _variants(df: pd.DataFrame) -> np.ndarray:
    codes, uniq = _variant_codes(df)
    out: np.ndarray = np.asarray(uniq, dtype=object)[codes]
    return out


def _fill(
    df: pd.DataFrame,
    key_col: str,
    value: np.ndarray,
    index: pd.Index,
    table: str,
) -> tuple[dict[tuple[str, str], FloatArray], int]:
    """Scatter a long table into (variant, key) → (N, 2) arrays; duplicates are an error."""
    n = len(index)
    pcodes_raw, puniq = pd.factorize(df["pair_id"].astype(str), use_na_sentinel=True)
    pcodes = np.asarray(pcodes_raw, dtype=np.int64)
    pos_u = np.append(index.get_indexer(pd.Index(puniq)), -1)
    pos = pos_u[pcodes]
    side = _side_codes(df["side"], table)
    known = pos >= 0
    n_unknown = int((~known).sum())
    vcodes, vuniq = _variant_codes(df)
    kcodes, kuniq = _codes(df[key_col].astype(str))
    if (kcodes < 0).any():
        r = int(np.flatnonzero(kcodes < 0)[0])
        raise InputError(f"missing {key_col}", file=table, record=r + 1, field=key_col)
    nk = len(kuniq)
    combo = vcodes * nk + kcodes
    used_combos = np.unique(combo[known])
    slot = np.full(len(vuniq) * nk, -1, dtype=np.int64)
    slot[used_combos] = np.arange(used_combos.size)
    flat = (slot[combo[known]] * n + pos[known]) * 2 + side[known]
    counts = np.bincount(flat, minlength=used_combos.size * n * 2)
    if (counts > 1).any():
        dup_flat = int(np.flatnonzero(counts > 1)[0])
        r = int(np.flatnonzero(known)[np.flatnonzero(flat == dup_flat)[1]])
        raise InputError(
            f"duplicate row for pair {df['pair_id'].iloc[r]!r}, side {df['side'].iloc[r]!r}, "
            f"{key_col} {df[key_col].iloc[r]!r}, variant {vuniq[vcodes[r]]!r}",
            file=table,
            record=r + 1,
        )
    out = np.full((used_combos.size, n, 2), np.nan)
    out.reshape(-1)[flat] = value[known]
    result = {(vuniq[int(c) // nk], kuniq[int(c) % nk]): out[i] for i, c in enumerate(used_combos)}
    return result, n_unknown


def numeric_column(col: pd.Series, *, table: str, file: str | None, field: str) -> FloatArray:
    """A column of numbers where NaN or an empty cell is the only spelling of "missing".

    Anything else that is not a finite number (a string such as ``np.float64(1.5)``, ``inf``) is an
    error naming the file, the row and the column: a value that silently became "missing" would make
    its pair vanish from every analysis.
    """
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=np.float64)
    vals = pd.to_numeric(col, errors="coerce")
    arr = np.asarray(vals, dtype=np.float64)
    problem = np.isinf(arr)
    if not pd.api.types.is_numeric_dtype(col):
        text = col.astype("string").str.strip().str.lower()
        missing = col.isna().to_numpy() | text.isin(["", "nan"]).fillna(True).to_numpy(dtype=bool)
        problem |= np.isnan(arr) & ~missing
    if problem.any():
        i = int(np.flatnonzero(problem)[0])
        raise InputError(
            f"{field} is not a finite number: {col.iloc[i]!r} ({int(problem.sum())} such row(s); "
            "leave a cell empty or NaN for a missing value)",
            file=file or table,
            record=i + 1,
            field=field,
        )
    return arr


def validate_feature_values(
    features: Mapping[tuple[str, str], FloatArray], specs: Sequence[FeatureSpec], pair_ids: StrArray
) -> None:
    """Binary features must be 0/1 and ordinal ones one of their level values: a wrong value names
    the pair, so a mislabeled record is found, not averaged in."""
    by_name = {s.name: s for s in specs}
    for (variant, name), arr in features.items():
        spec = by_name.get(name)
        if spec is None or spec.kind == "numeric" or spec.list_valued:
            continue
        allowed = (
            (0.0, 1.0) if spec.kind == "binary" else tuple(spec.level_values or range(len(spec.levels or ())))
        )
        if not allowed:
            continue
        bad = np.isfinite(arr) & ~np.isin(arr, np.asarray(allowed, dtype=float))
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise InputError(
                f"{spec.kind} feature {name!r} has value {arr[i, j]!r} (allowed {list(allowed)}) "
                f"for pair {pair_ids[i]!r}, side {('chosen', 'rejected')[j]}, variant {variant!r}",
                file="features",
                field="value",
            )


def prepare(inputs: AnalysisInputs) -> PreparedData:
    """Validate the long tables and build the per-pair arrays."""
    pairs = inputs.pairs
    _require(pairs, ["pair_id"], "pairs")
    ids = pairs["pair_id"].astype(str)
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].iloc[0]
        raise InputError(
            f"duplicate pair_id {dup!r}",
            file="pairs",
            record=int(np.flatnonzero(ids.duplicated())[0]) + 1,
            field="pair_id",
        )
    index = pd.Index(ids.to_numpy(dtype=object))
    diverges = (
        pairs["context_diverges"].fillna(False).astype(bool).to_numpy()
        if "context_diverges" in pairs.columns
        else np.zeros(len(pairs), dtype=bool)
    )
    group_ids: StrArray | None = None
    if "group_id" in pairs.columns:
        g = pairs["group_id"].astype("string").fillna("").to_numpy(dtype=object)
        own = g == ""
        g[own] = np.char.add("pair:", ids.to_numpy(dtype=str)[own]).astype(object)
        group_ids = g
    scores = inputs.scores
    _require(scores, ["pair_id", "side", "rm", "reward"], "scores")
    src = dict(inputs.sources)
    reward_values = numeric_column(scores["reward"], table="scores", file=src.get("scores"), field="reward")
    rewards, unk_s = _fill(scores, "rm", reward_values, index, "scores")
    truncated: dict[str, int] = {}
    if "truncated" in scores.columns:
        orig = _variants(scores) == ORIGINAL
        t = scores.loc[orig & scores["truncated"].fillna(False).astype(bool).to_numpy()]
        truncated = {str(k): int(v) for k, v in t.groupby("rm").size().items()}
    unknown = {"scores": unk_s}
    features: dict[tuple[str, str], FloatArray] = {}
    if inputs.features is not None and len(inputs.features):
        f = inputs.features
        _require(f, ["pair_id", "side", "feature", "value"], "features")
        if "status" in f.columns:
            failed = f["status"].fillna("ok").astype(str).to_numpy() == "failed"
            vals = numeric_column(
                f["value"].where(~failed), table="features", file=src.get("features"), field="value"
            )
        else:
            vals = numeric_column(f["value"], table="features", file=src.get("features"), field="value")
        if "status" in f.columns:
            vals = np.where(f["status"].fillna("ok").astype(str).to_numpy() == "failed", np.nan, vals)
        features, unk_f = _fill(f, "feature", vals, index, "features")
        unknown["features"] = unk_f
        validate_feature_values(features, inputs.specs, index.to_numpy(dtype=object))
    rms = tuple(sorted({rm for (v, rm) in rewards if v == ORIGINAL}))
    variants = tuple(sorted({v for (v, _) in rewards if v != ORIGINAL}))
    feats = tuple(sorted({name for (v, name) in features if v == ORIGINAL}))
    return PreparedData(
        pair_ids=index.to_numpy(dtype=object),
        context_diverges=diverges,
        rewards=rewards,
        features=features,
        rms=rms,
        variants=variants,
        feature_names=feats,
        unknown_pair_ids=unknown,
        n_truncated=truncated,
        group_ids=group_ids,
    )


def infer_feature_specs(
    features: pd.DataFrame, roles: Mapping[str, str] | None = None
) -> tuple[FeatureSpec, ...]:
    """Specs for a user-supplied feature table without a spec file: binary when every value is 0/1,
    ordinal when values are few integers, numeric otherwise; role from ``roles`` (default spoiler,
    the conservative reading: a feature nobody declared a value is not counted as one)."""
    roles = dict(roles or {})
    _require(features, ["feature", "value"], "features")
    out = []
    vals = pd.to_numeric(features["value"], errors="coerce")
    for name, v in vals.groupby(features["feature"].astype(str)):
        u = np.unique(v.dropna().to_numpy(dtype=float))
        if u.size and np.isin(u, (0.0, 1.0)).all():
            kind = "binary"
            levels = None
        elif u.size and u.size <= 7 and np.all(u == np.round(u)):
            kind = "ordinal"
            levels = tuple(float(x) for x in u)
        else:
            kind = "numeric"
            levels = None
        role = roles.pop(str(name), "spoiler")
        if role not in ("target", "spoiler"):
            raise InputError(
                f"role of feature {name!r} must be target or spoiler, got {role!r}", field="roles"
            )
        out.append(
            FeatureSpec(
                name=str(name),
                kind=kind,
                role=role,
                levels=tuple(f"{x:g}" for x in levels) if levels else None,
                level_values=levels,
                source="column",
            )
        )
    if roles:
        raise InputError(f"roles given for unknown feature(s) {sorted(roles)}", field="roles")
    return tuple(out)
