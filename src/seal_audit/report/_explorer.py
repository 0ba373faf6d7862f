"""The pair explorer's data: every pair, columnar, as one JSON document embedded in the page.

Columnar arrays (one list per field instead of one object per pair) keep 160,800 pairs compact and
let the page filter and sort with plain loops over arrays. The document is placed inside
``<script type="application/json">``, which the browser never executes and never parses as HTML
markup *except* for the sequences that end or re-open a script element; :func:`embed_json` escapes
exactly those, and the page reads the text with ``JSON.parse`` and writes it only via textContent.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd

from seal_audit.report._data import ReportData, rm_roles
from seal_audit.report._svg import visible_controls

REGIMES = ("stayed_aligned", "got_aligned", "resisted_alignment", "reversed_alignment")
DEFAULT_TEXT_LIMIT = 20_000
"""Characters kept per text in the page: real transcripts are far shorter; a pathological one
(a pasted book) must not make a 160,800-pair page unusable. Cut texts say so in the page."""


_UNSAFE = re.compile(r"<(/|!--|script)", re.IGNORECASE)


def _escape_match(m: re.Match[str]) -> str:
    tail = m.group(1)
    if tail == "/":
        return "<\\/"
    return "\\u003c" + tail


def embed_json(obj: Any) -> str:
    """JSON text safe inside a ``<script type="application/json">`` element.

    ``</`` becomes ``<\\/`` (a legal JSON escape; no ``</script`` can close the element early),
    ``<!--`` and ``<script`` start with ``\\u003c`` instead of ``<`` (either could switch the HTML
    tokenizer into the script-data escaped states). ``JSON.parse`` returns the original strings.
    One regex pass, because the document can be hundreds of megabytes.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if _UNSAFE.search(text) is None:  # the common case: no copy of a document that may be huge
        return text
    return _UNSAFE.sub(_escape_match, text)


def _round_list(values: np.ndarray, decimals: int = 4) -> list[float | int | None]:
    """Display values: ``decimals`` decimals, whole-number columns as ints (a binary feature costs
    one character per value), null for NaN. Vectorised: 160,800 pairs × dozens of columns."""
    arr = np.asarray(values, dtype=float)
    finite = np.isfinite(arr)
    r = np.round(np.where(finite, arr, 0.0), decimals)
    if np.array_equal(r, np.round(r)) and bool((np.abs(r) < 2**53).all()):
        out = r.astype(np.int64).astype(object)
    else:
        out = r.astype(object)
    out[~finite] = None
    result: list[float | int | None] = out.tolist()
    return result


def _cut(texts: pd.Series, limit: int | None) -> tuple[list[str], int]:
    vals = [visible_controls(t) for t in texts.fillna("").astype(str).tolist()]
    if limit is None:
        return vals, 0
    n_cut = 0
    out = []
    for t in vals:
        if len(t) > limit:
            n_cut += 1
            t = (
                t[:limit]
                + f"\n\n[… {len(t) - limit:,} more characters not shown in the report; see pairs.parquet]"
            )
        out.append(t)
    return out, n_cut


def explorer_payload(
    data: ReportData, *, text_limit: int | None = DEFAULT_TEXT_LIMIT, max_pairs: int | None = None
) -> dict[str, Any]:
    """The explorer document: texts, rewards of every RM, regime, γ, θ, features, flags.

    Per-pair statistics come from the ``pair_diagnostics`` analysis table when the run has it
    (the same numbers as stats.json); rewards then come from there or, failing that, from the
    scores table, so a run without ``seal analyze`` still has a browsable explorer.
    """
    pairs = data.pairs
    diag = data.table("pair_diagnostics")
    if pairs is None and diag is None:
        return {"n": 0, "missing": "no pairs table in this run"}
    if pairs is not None:
        base = pairs.reset_index(drop=True)
    else:
        assert diag is not None
        base = pd.DataFrame({"pair_id": diag["pair_id"].astype(str)})
    if max_pairs is not None and len(base) > max_pairs:
        base = base.iloc[:max_pairs].reset_index(drop=True)
    ids = base["pair_id"].astype(str)
    index = pd.Index(ids)
    n = len(base)
    doc: dict[str, Any] = {"n": n, "ids": ids.tolist(), "text_limit": text_limit}
    n_cut = 0
    for key, col in (("ctx", "context"), ("ch", "chosen"), ("rj", "rejected")):
        if col not in base.columns:
            doc[key] = [""] * n
            continue
        codes, uniques = pd.factorize(base[col].fillna("").astype(str))
        if key == "ctx" and len(uniques) < 0.8 * n:
            # shared contexts (multi-variant benchmarks: one prompt, many response pairs) go in once
            doc["ctx_u"], k = _cut(pd.Series(uniques), text_limit)
            doc["ctx_i"] = codes.tolist()
        else:
            doc[key], k = _cut(base[col], text_limit)
        n_cut += k
    doc["texts_cut"] = n_cut
    if "rejected_context" in base.columns:
        rc = base["rejected_context"]
        mask = rc.notna().to_numpy()
        cut, _ = _cut(rc[mask], text_limit)
        doc["rctx"] = {str(int(i)): t for i, t in zip(np.flatnonzero(mask), cut, strict=True)}
    if "source_path" in base.columns and "source_record" in base.columns:
        paths = base["source_path"].fillna("").astype(str)
        uniq = sorted(set(paths))
        path_pos = {p: i for i, p in enumerate(uniq)}
        doc["src_paths"] = uniq
        doc["src_path"] = [path_pos[p] for p in paths]
        doc["src_rec"] = [int(r) if pd.notna(r) else None for r in base["source_record"]]

    # rewards per RM (chosen, rejected), original texts only
    roles = rm_roles(data)
    rewards: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if diag is not None:
        dpos = pd.Index(diag["pair_id"].astype(str)).get_indexer(index)
        for rm in roles:
            c, r = f"{rm}_chosen", f"{rm}_rejected"
            if c in diag.columns and r in diag.columns:
                rewards[rm] = (_take(diag[c], dpos), _take(diag[r], dpos))
    else:
        dpos = None
    scores = data.scores
    if scores is not None and {"pair_id", "side", "rm", "reward"} <= set(scores.columns):
        s = scores
        if "variant" in s.columns:
            s = s[s["variant"].fillna("original").astype(str) == "original"]
        for rm, sides in _wide(s, "rm", "reward", index).items():
            if rm not in rewards:
                roles.setdefault(rm, "extra")
                rewards[rm] = sides
        if "truncated" in s.columns:
            tr = s[s["truncated"].fillna(False).astype(bool)]["pair_id"].astype(str)
            doc["trunc"] = sorted(int(i) for i in index.get_indexer(pd.Index(tr.unique())) if i >= 0)
    order = {"post": 0, "pre": 1, "extra": 2, "baseline": 3}
    rm_names = sorted(rewards, key=lambda r: (order.get(roles.get(r, "extra"), 2), r))
    doc["rms"] = [{"name": r, "role": roles.get(r, "extra")} for r in rm_names]
    doc["rw"] = {r: [_round_list(rewards[r][0]), _round_list(rewards[r][1])] for r in rm_names}

    # regime, γ, θ, suspicious: from the analysis
    doc["regimes"] = list(REGIMES)
    if diag is not None and dpos is not None:
        if "regime" in diag.columns:
            reg = diag["regime"].fillna("").astype(str).to_numpy()
            regime_code = {name: i for i, name in enumerate(REGIMES)}
            doc["regime"] = [regime_code.get(reg[p], -1) if p >= 0 else -1 for p in dpos]
        if "gamma" in diag.columns:
            g = diag["gamma"].fillna("").astype(str).to_numpy()
            doc["gamma"] = "".join((g[p][:1] or "-") if p >= 0 else "-" for p in dpos)
        if "theta" in diag.columns:
            doc["theta"] = _round_list(_take(diag["theta"], dpos), 2)
        if "suspicious" in diag.columns:
            flag = _take(diag["suspicious"].astype(float), dpos)
            doc["susp"] = [int(i) for i in np.flatnonzero(flag == 1)]
    susp = data.table("suspicious_pairs")
    if susp is not None and "pair_id" in susp.columns:
        ranks = index.get_indexer(pd.Index(susp["pair_id"].astype(str)))
        doc["susp"] = [int(i) for i in ranks if i >= 0]
    inp = data.result.inputs if data.result is not None else None
    doc["post"] = (inp.post if inp else "") or next((r for r in rm_names if roles.get(r) == "post"), "")
    doc["pre"] = (inp.pre if inp else "") or next((r for r in rm_names if roles.get(r) == "pre"), "")

    # features (original texts), chosen and rejected
    feats = data.features
    finfo = {f.name: f for f in (inp.features if inp else ())}
    doc["feats"] = []
    doc["fv"] = {}
    if feats is not None and {"pair_id", "side", "feature", "value"} <= set(feats.columns):
        f = feats
        if "variant" in f.columns:
            f = f[f["variant"].fillna("original").astype(str) == "original"]
        if "status" in f.columns:
            f = f[f["status"].fillna("ok").astype(str) == "ok"]
        wide = _wide(f, "feature", "value", index)
        rank = {name: i for i, name in enumerate(finfo)}
        names = sorted(
            wide,
            key=lambda x: (
                (finfo[x].role if x in finfo else "") != "target",
                rank.get(x, len(rank)),
                x,
            ),
        )
        for name in names:
            info = finfo.get(name)
            doc["feats"].append(
                {"name": name, "role": info.role if info else "", "kind": info.kind if info else ""}
            )
            doc["fv"][name] = [_round_list(wide[name][0], 4), _round_list(wide[name][1], 4)]
    return doc


def _wide(
    long: pd.DataFrame, key: str, value: str, index: pd.Index
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A long table (pair_id, side, <key>, <value>) as (chosen, rejected) arrays aligned with
    ``index``, per distinct key; the first row wins on duplicates. Vectorised scatter instead of a
    pivot, which takes seconds on the millions of feature rows of a 160,800-pair run."""
    pos = index.get_indexer(pd.Index(long["pair_id"].astype(str)))
    side = long["side"].astype(str).to_numpy()
    side_code = np.where(side == "chosen", 0, np.where(side == "rejected", 1, -1))
    codes, names = pd.factorize(long[key].astype(str))
    vals = pd.to_numeric(long[value], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    out = np.full((len(names), 2, len(index)), np.nan)
    sel = np.flatnonzero((pos >= 0) & (side_code >= 0) & (codes >= 0))[
        ::-1
    ]  # reversed: first row written last
    out[codes[sel], side_code[sel], pos[sel]] = vals[sel]
    return {str(name): (out[j, 0], out[j, 1]) for j, name in enumerate(names)}


def _take(col: pd.Series, pos: np.ndarray) -> np.ndarray:
    """Values of ``col`` at positions ``pos`` (−1 = no row for that pair → NaN)."""
    vals = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    out = np.full(pos.size, np.nan)
    ok = pos >= 0
    out[ok] = vals[pos[ok]]
    return out
