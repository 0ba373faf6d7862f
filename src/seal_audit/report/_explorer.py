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
from seal_audit.stats._common import Skipped
from seal_audit.stats.gate import drift_gate
from seal_audit.stats.imprint import ImprintResult
from seal_audit.stats.prepare import ORIGINAL
from seal_audit.stats.reliability import folded_bins, winner_bin

REGIMES = ("stayed_aligned", "got_aligned", "resisted_alignment", "reversed_alignment")
BIN_CODES = "0123456789abcdefghijklmnopqrstuvwxyz"
"""One character per pair and RM names its calibration bin in the page ("-": no bin)."""
TEXT_BUDGET = 10_000_000
"""Characters of text (contexts, responses, rewrites) the page embeds at most. Every pair's numbers
are always in the page (so every count and filter is exact); beyond this budget only a sample of
pairs brings its texts: a 160,800-pair run would otherwise be a 170 MB file that a browser takes
most of a gigabyte to hold. Which pairs: the watchlist first, then rewritten pairs, then a
deterministic hash sample (same run, same sample). The page says how many pairs have their texts."""
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


def _digit_string(values: np.ndarray, lo: int) -> str:
    """One ASCII digit per pair (``'0' + value - lo``), ``'.'`` for missing."""
    arr = np.asarray(values, dtype=float)
    finite = np.isfinite(arr)
    codes = np.where(finite, np.where(finite, arr, lo) - lo + 48, 46).astype(np.uint8)
    return codes.tobytes().decode("ascii")


def _feature_column(chosen: np.ndarray, rejected: np.ndarray) -> Any:
    """A feature's values for both sides. Whole numbers spanning at most ten values (binary and
    ordinal features, small counts) travel as one digit per pair, ``{"lo", "s": [chosen, rejected]}``,
    a third of ``0, `` lists: at paper scale the feature columns are most of the page. Anything else
    is a list of display values."""
    both = np.concatenate([np.asarray(chosen, dtype=float), np.asarray(rejected, dtype=float)])
    finite = both[np.isfinite(both)]
    if finite.size and np.array_equal(finite, np.round(finite)) and finite.max() - finite.min() <= 9:
        lo = int(finite.min())
        return {"lo": lo, "s": [_digit_string(chosen, lo), _digit_string(rejected, lo)]}
    return [_round_list(chosen, 4), _round_list(rejected, 4)]


def feature_values(col: Any) -> tuple[np.ndarray, np.ndarray]:
    """A page feature column back as (chosen, rejected) float arrays, NaN for missing: the Python
    twin of report.js ``featVal``, for the sections that count the pairs a door opens."""
    if isinstance(col, dict):
        out = []
        for s in col["s"]:
            codes = np.frombuffer(s.encode("ascii"), dtype=np.uint8).astype(float)
            out.append(np.where((codes >= 48) & (codes <= 57), codes - 48 + col["lo"], np.nan))
        return out[0], out[1]
    c, r = (np.array(side, dtype=float) for side in col)  # None → NaN
    return c, r


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


def _text_sample(
    data: ReportData, base: pd.DataFrame, index: pd.Index, budget: int | None
) -> np.ndarray | None:
    """Positions of the pairs whose texts the page embeds (None: all of them fit the budget)."""
    n = len(base)
    lengths = np.zeros(n, dtype=np.int64)
    for col in ("context", "chosen", "rejected"):
        if col in base.columns:
            lengths += base[col].fillna("").astype(str).str.len().to_numpy()
    if budget is None or int(lengths.sum()) <= budget:
        return None
    prio = np.full(n, 3, dtype=np.int64)
    rew = data.rewrites
    if rew is not None and "pair_id" in rew.columns:
        prio[index.get_indexer(pd.Index(rew["pair_id"].astype(str).unique()))] = 2
    rank = np.zeros(n, dtype=np.int64)
    susp = data.table("suspicious_pairs")
    if susp is not None and "pair_id" in susp.columns:
        pos = index.get_indexer(pd.Index(susp["pair_id"].astype(str)))
        prio[pos[pos >= 0]] = 1
        rank[pos[pos >= 0]] = np.arange(len(pos))[pos >= 0]  # the watchlist in its rank order
    hashes = pd.util.hash_pandas_object(pd.Series(index.astype(str)), index=False).to_numpy()
    order = np.lexsort((hashes, rank, prio))
    # rewritten pairs carry their rewrites too: count them twice
    cost = np.where(prio <= 2, 2 * lengths, lengths)[order]
    k = int(np.searchsorted(np.cumsum(cost), budget, side="right"))
    return np.sort(order[:k])


def explorer_payload(
    data: ReportData,
    *,
    text_limit: int | None = DEFAULT_TEXT_LIMIT,
    max_pairs: int | None = None,
    text_budget: int | None = TEXT_BUDGET,
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
    sample = _text_sample(data, base, index, text_budget)
    tbase = base
    if sample is not None:
        doc["txt_i"] = sample.tolist()  # texts below are of these pairs only, in this order
        tbase = base.iloc[sample].reset_index(drop=True)
    nt = len(tbase)
    n_cut = 0
    for key, col in (("ctx", "context"), ("ch", "chosen"), ("rj", "rejected")):
        if col not in tbase.columns:
            doc[key] = [""] * nt
            continue
        codes, uniques = pd.factorize(tbase[col].fillna("").astype(str))
        if key == "ctx" and len(uniques) < 0.8 * nt:
            # shared contexts (multi-variant benchmarks: one prompt, many response pairs) go in once
            doc["ctx_u"], k = _cut(pd.Series(uniques), text_limit)
            doc["ctx_i"] = codes.tolist()
        else:
            doc[key], k = _cut(tbase[col], text_limit)
        n_cut += k
    doc["texts_cut"] = n_cut
    if "rejected_context" in base.columns:
        rc = base["rejected_context"]
        mask = rc.notna().to_numpy()
        if sample is not None:
            keep = np.zeros(n, dtype=bool)
            keep[sample] = True
            mask = mask & keep
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

    # per-RM agreement bits as the analysis computed them (a margin rebuilt from rounded rewards
    # could turn a near-tie around, and every count a link promises must match exactly)
    doc["agree"] = {}
    if diag is not None and dpos is not None:
        for rm in rm_names:
            if f"{rm}_agree" in diag.columns:
                a = _take(diag[f"{rm}_agree"].astype(float), dpos)
                doc["agree"][rm] = _bits(a != 0, np.isfinite(a))

    doc["cal"] = _calibration_bins(data, rewards, rm_names)

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
            doc["fv"][name] = _feature_column(wide[name][0], wide[name][1])
    doc["beta"] = _betas(data)
    doc["tr"] = _rewrites(data, index, rm_names, text_limit, sample)
    return doc


def _calibration_bins(
    data: ReportData, rewards: dict[str, tuple[np.ndarray, np.ndarray]], rm_names: list[str]
) -> dict[str, Any]:
    """Per calibrated RM, the pair-once reliability bin of every pair (``stats.reliability``, from
    the unrounded rewards), so that a bin of the calibration figure opens exactly its pairs."""
    res = data.result
    if res is None or isinstance(res.calibration, Skipped) or not res.calibration:
        return {}
    n_bins = res.options.calibration_bins
    k = folded_bins(n_bins)
    if k > len(BIN_CODES):
        return {}
    out: dict[str, Any] = {"k": k, "rms": {}}
    for rm in rm_names:
        if rm not in res.calibration or rm not in rewards:
            continue
        c, r = rewards[rm]
        idx = winner_bin(c - r, n_bins)
        table = np.frombuffer((BIN_CODES + "-").encode("ascii"), dtype=np.uint8)
        out["rms"][rm] = table[np.where(idx >= 0, idx, len(BIN_CODES))].tobytes().decode("ascii")
    return out


def _betas(data: ReportData) -> dict[str, Any] | None:
    """The post-D imprint coefficients, for the detail panel's β·Δτ: the pair fixed-effects fit
    (it models the margin r(t_c) − r(t_r) = β·(τ_c − τ_r) itself), else the pooled one."""
    res = data.result
    if res is None or isinstance(res.imprint, Skipped):
        return None
    for est in ("fe", "pooled"):
        fit = res.imprint.get(est, {}).get("post")
        if isinstance(fit, ImprintResult):
            coef = {c.term: c.estimate for c in fit.regression.coefficients if c.term != "intercept"}
            sig = [c.term for c in fit.regression.coefficients if c.significant]
            return {"estimator": est, "rm": fit.rm, "coef": coef, "sig": sig}
    return None


def _rewrites(
    data: ReportData, index: pd.Index, rm_names: list[str], text_limit: int | None, sample: np.ndarray | None
) -> list[dict[str, Any]]:
    """Per transform, the pairs it rewrote (sparse: entry j is pair ``i[j]``): gate status, drift
    score, rewritten texts, rewards of every RM on the rewritten pair, changed feature values and
    whether the robustness analysis used the pair (the same rule as ``stats.analyses``)."""
    rew = data.rewrites
    scores = data.scores
    res = data.result
    rob = res.robustness if res is not None and not isinstance(res.robustness, Skipped) else {}
    exclude_drifted = res.options.exclude_drifted if res is not None else True
    post = res.inputs.post if res is not None else ""
    transforms: set[str] = set()
    if rew is not None and "transform" in rew.columns:
        transforms |= {str(t) for t in rew["transform"].unique()}
    if scores is not None and "variant" in scores.columns:
        transforms |= {str(t) for t in scores["variant"].fillna(ORIGINAL).unique()}
    transforms.discard(ORIGINAL)
    out: list[dict[str, Any]] = []
    n = len(index)
    if not transforms:
        return out
    # one pass over each long table, keyed by (variant, name): the tables have millions of rows
    by_variant_rw: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    if scores is not None and {"pair_id", "side", "rm", "reward"} <= set(scores.columns):
        by_variant_rw = _wide_by_variant(scores, "rm", "reward", index)
    by_variant_fv: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    feats = data.features
    if feats is not None and {"pair_id", "side", "feature", "value", "variant"} <= set(feats.columns):
        f = feats[feats["status"].fillna("ok").astype(str) == "ok"] if "status" in feats.columns else feats
        by_variant_fv = _wide_by_variant(f, "feature", "value", index)
    orig_rw = by_variant_rw.get(ORIGINAL, {})
    w_0 = by_variant_fv.get(ORIGINAL, {})
    for t in sorted(transforms):
        has = np.zeros(n, dtype=bool)
        bad = np.zeros(n, dtype=bool)
        code = np.full(n, "", dtype=object)
        sim = np.full((2, n), np.nan)
        texts: list[dict[str, str]] = [{}, {}]
        reasons: dict[int, str] = {}
        kind = rob[t].kind if t in rob else ""
        if rew is not None and "transform" in rew.columns:
            g = drift_gate(rew, t, index, exclude_drifted)  # the analysis' own gate
            rw, pos = g.rows, g.pos
            if not kind and "kind" in rw.columns and len(rw):
                kind = str(rw["kind"].iloc[0])
            side = np.where(rw["side"].astype(str).to_numpy() == "rejected", 1, 0)
            simv = (
                pd.to_numeric(rw["similarity"], errors="coerce").to_numpy(dtype=float)
                if "similarity" in rw.columns
                else np.full(len(rw), np.nan)
            )
            has |= g.has
            bad = g.has & ~g.passes
            sim[side, pos] = simv
            code = g.verdict.copy()  # the worst verdict of a pair's rows: failed > rejected > drifted > ok
            reasons = g.reasons
            with_text = np.ones(len(rw), dtype=bool)
            if sample is not None:
                keep = np.zeros(n, dtype=bool)
                keep[sample] = True
                with_text = keep[pos]
            for col in ("original", "rewritten"):
                if col not in rw.columns:
                    continue
                vals, _ = _cut(rw[col][with_text], text_limit)
                for p_, sd, v, present in zip(
                    pos[with_text], side[with_text], vals, rw[col][with_text].notna().to_numpy(), strict=True
                ):
                    if present:
                        texts[sd].setdefault(f"{col}:{int(p_)}", v)
        t_rw = by_variant_rw.get(t, {})
        post_t = t_rw.get(post)
        post_o = orig_rw.get(post)
        if post_t is not None:
            has |= np.isfinite(post_t[0]) | np.isfinite(post_t[1])  # universe: rows or rewritten rewards
        entries = np.flatnonzero(has)
        if not entries.size:
            continue
        use = has & ~bad  # the post-D RM's rule; another RM also needs its own rewards (below)
        for pair in (post_t, post_o):
            use &= (
                np.isfinite(pair[0]) & np.isfinite(pair[1]) if pair is not None else np.zeros(n, dtype=bool)
            )
        code[has & (code == "")] = "n"  # rewritten rewards without a rewrite record
        feats_t: list[list[Any]] = []
        w_t = by_variant_fv.get(t, {})
        if w_t:
            for name, (c_t, r_t) in w_t.items():
                c_0, r_0 = w_0.get(name, (np.full(n, np.nan), np.full(n, np.nan)))
                for sd, (new, old) in enumerate(((c_t, c_0), (r_t, r_0))):
                    changed = np.flatnonzero(has & np.isfinite(new) & ~np.isclose(new, old, equal_nan=True))
                    feats_t += [
                        [i, sd, name, v]
                        for i, v in zip(changed.tolist(), _round_each(new[changed]), strict=True)
                    ]
        entry_pos = {int(i): j for j, i in enumerate(entries)}
        flips: dict[str, str] = {}
        became: dict[str, str] = {}
        for rm in rm_names:
            if rm not in t_rw or rm not in orig_rw:
                continue
            (oc, orj), (tc, trj) = orig_rw[rm], t_rw[rm]
            u = use & np.isfinite(oc) & np.isfinite(orj) & np.isfinite(tc) & np.isfinite(trj)
            a_, b_ = oc > orj, tc > trj  # as stats.robustness.accuracy_change, on unrounded rewards
            flips[rm] = _bits((a_ != b_)[entries], u[entries])
            became[rm] = _bits((a_ & ~b_)[entries], u[entries])
        out.append(
            {
                "name": t,
                "kind": kind or "unknown",
                "i": entries.tolist(),
                "st": "".join(code[entries]),
                "use": _bits(use[entries], np.ones(entries.size, dtype=bool)),
                "sim": [_round_list(sim[0, entries], 3), _round_list(sim[1, entries], 3)],
                "rw": {
                    rm: [_round_list(t_rw[rm][0][entries]), _round_list(t_rw[rm][1][entries])]
                    for rm in rm_names
                    if rm in t_rw
                },
                "txt": [
                    {k.split(":")[0][0] + str(entry_pos[int(k.split(":")[1])]): v for k, v in side_t.items()}
                    for side_t in texts
                ],
                "why": {str(entry_pos[i]): r for i, r in reasons.items() if i in entry_pos},
                "fch": [[entry_pos[i], sd, name, v] for i, sd, name, v in feats_t if i in entry_pos],
                "fl": flips,
                "bm": became,
                "exclude_drifted": bool(exclude_drifted),
            }
        )
    return out


def _bits(bit: np.ndarray, known: np.ndarray) -> str:
    """One character per element: "1"/"0" for ``bit`` where ``known``, "-" elsewhere (vectorised:
    160,800 pairs per RM and per string)."""
    chars = np.where(known, np.where(bit, ord("1"), ord("0")), ord("-")).astype(np.uint8)
    return chars.tobytes().decode("ascii")


def _round_each(values: np.ndarray, decimals: int = 4) -> list[float | int]:
    """``_round_list`` of each value on its own (a whole number is an int even among fractions)."""
    r = np.round(np.asarray(values, dtype=float), decimals)
    return [int(x) if x == int(x) else x for x in r.tolist()]


def _positions(ids: pd.Series, index: pd.Index) -> np.ndarray:
    """Position in ``index`` of each id (−1: not there), by the distinct ids: a long table repeats
    each pair_id many times, and one lookup per distinct id is far cheaper than one per row."""
    codes, uniq = pd.factorize(ids, use_na_sentinel=True)
    found = index.get_indexer(pd.Index(np.asarray(uniq, dtype=object).astype(str)))
    return np.where(codes >= 0, found[np.maximum(codes, 0)], -1)


def _wide_array(
    long: pd.DataFrame, value: str, index: pd.Index, codes: np.ndarray, n_keys: int
) -> np.ndarray:
    """(key, side, pair) array of ``value`` scattered from a long table whose key column is already
    factorised (``codes``: −1 = no key); the first row wins on duplicates."""
    pos = _positions(long["pair_id"], index)
    side = long["side"].astype(str).to_numpy()
    side_code = np.where(side == "chosen", 0, np.where(side == "rejected", 1, -1))
    vals = pd.to_numeric(long[value], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    out = np.full((n_keys, 2, len(index)), np.nan)
    sel = np.flatnonzero((pos >= 0) & (side_code >= 0) & (codes >= 0))[::-1]  # first row written last
    out[codes[sel], side_code[sel], pos[sel]] = vals[sel]
    return out


def _wide(
    long: pd.DataFrame, key: str, value: str, index: pd.Index
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A long table (pair_id, side, <key>, <value>) as (chosen, rejected) arrays aligned with
    ``index``, per distinct key; the first row wins on duplicates. Vectorised scatter instead of a
    pivot, which takes seconds on the millions of feature rows of a 160,800-pair run."""
    codes, names = pd.factorize(long[key].astype(str))
    out = _wide_array(long, value, index, codes, len(names))
    return {str(name): (out[j, 0], out[j, 1]) for j, name in enumerate(names)}


def _wide_by_variant(
    long: pd.DataFrame, key: str, value: str, index: pd.Index
) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """``_wide`` per variant (original and every transform) in one pass over the long table."""
    variant = (
        long["variant"].fillna(ORIGINAL)
        if "variant" in long.columns
        else pd.Series(ORIGINAL, index=long.index)
    )
    v_codes, v_names = pd.factorize(variant)
    k_codes, k_names = pd.factorize(long[key])
    # one code per (variant, name) that occurs, without joining millions of strings
    combo = np.where((v_codes >= 0) & (k_codes >= 0), v_codes.astype(np.int64) * len(k_names) + k_codes, -1)
    c_codes, c_uniq = pd.factorize(combo)
    out = _wide_array(long, value, index, np.where(c_uniq[c_codes] >= 0, c_codes, -1), len(c_uniq))
    result: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for j, c in enumerate(c_uniq.tolist()):
        if c >= 0:
            name = str(k_names[c % len(k_names)])
            result.setdefault(str(v_names[c // len(k_names)]), {})[name] = (out[j, 0], out[j, 1])
    return result


def _take(col: pd.Series, pos: np.ndarray) -> np.ndarray:
    """Values of ``col`` at positions ``pos`` (−1 = no row for that pair → NaN)."""
    vals = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    out = np.full(pos.size, np.nan)
    ok = pos >= 0
    out[ok] = vals[pos[ok]]
    return out
