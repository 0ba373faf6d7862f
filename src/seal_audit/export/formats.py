"""The export formats: Feedback Forensics AnnotatedPairs 2.0, RewardBench per-prompt results, and
a CSV / Parquet bundle of the run's tables.

Feedback Forensics (AnnotatedPairs, format version 2.0) was validated against the format as
published: the writer ``create_annotated_pairs`` in ``inverse_cai/data/annotated_pairs_format.py``
(rdnfn/icai, ``FORMAT_VERSION = "2.0"``) and the reader
``get_votes_dict_from_annotated_pairs_json`` in ``feedback_forensics/data/loader.py``
(rdnfn/feedback-forensics). What those require, and we write:

- ``metadata``: ``version`` "2.0", ``description``, ``created_at``, ``dataset_name``,
  ``default_annotator`` (an annotator id) and ``available_metadata_keys_per_comparison``;
- ``annotators``: id -> ``{name, description, type}``; every annotator must annotate at least one
  comparison (the reader makes a column per annotator);
- ``comparisons``: ``id``, ``prompt``, ``response_a`` / ``response_b`` as ``{"text": ...}``,
  ``annotations``: annotator id -> ``{"pref": "a" | "b" | None}`` (with ``no_pref_reason`` when
  None), and ``metadata``: key -> value (strings, as the published writer stores them).

The human label is the default annotator; each RM (its recorded role in the description) and the
LM-labeler (γ: which side its labels favour) are annotators; feature values, regime, γ and the
pair's ids are per-comparison metadata. Which response is ``a`` is drawn per pair from its
pair_id (deterministic, about half each way), so position is not confounded with the human label.

RewardBench: per RM, the per-prompt records its ``run_rm.py`` writes (``id``, ``subset``,
``results`` = 1 when the chosen text scores strictly higher, ``scores_chosen``,
``scores_rejected``) and the grouped summary (``model``, ``model_type``, one accuracy per subset).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal

from seal_audit.data.errors import SealError
from seal_audit.export._run import RunView, reward
from seal_audit.store.io import write_parquet_atomic, write_text_atomic

ExportFormat = Literal["feedback-forensics", "rewardbench", "csv", "parquet"]
FORMATS: dict[str, str] = {
    "feedback-forensics": "AnnotatedPairs 2.0 JSON for Feedback Forensics (RMs and the LM-labeler as annotators)",
    "rewardbench": "RewardBench-style per-prompt results and summary, one pair of files per RM",
    "csv": "the run's tables (pairs, scores, features, analysis/*) as CSV files",
    "parquet": "the run's tables (pairs, scores, features, analysis/*) as Parquet files",
}
FF_VERSION = "2.0"
HUMAN = "human"


def annotator_id(kind: str, name: str) -> str:
    """A short stable id, like the published format's (8 hex digits of an MD5)."""
    return hashlib.md5(f"seal-audit|{kind}|{name}".encode()).hexdigest()[:8]


def _a_is_chosen(pair_id: str) -> bool:
    return hashlib.sha256(pair_id.encode()).digest()[0] % 2 == 0


def _pref(a: float | None, b: float | None) -> dict[str, Any]:
    if a is None or b is None:
        return {"pref": None, "no_pref_reason": "missing"}
    if a == b:
        return {"pref": None, "no_pref_reason": "tie"}
    return {"pref": "a" if a > b else "b"}


def _meta_value(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def feedback_forensics(view: RunView, dataset_name: str | None = None) -> dict[str, Any]:
    """The AnnotatedPairs 2.0 document of a run (see the module docstring)."""
    rms = sorted(view.rewards.columns.get_level_values(0).unique().map(str))
    human = annotator_id("human", HUMAN)
    annotators: dict[str, dict[str, str]] = {
        human: {
            "name": "human label",
            "description": "the preference dataset's label (chosen)",
            "type": "human",
        }
    }
    for rm in rms:
        annotators[annotator_id("rm", rm)] = {
            "name": f"RM {rm}",
            "description": f"reward model '{rm}' (role {view.roles.get(rm, 'extra')}): prefers the higher reward",
            "type": "reward_model",
        }
    lm = annotator_id("lm", "gamma")
    # the column is there (empty) in every analyzed run; without an LM-labeler it is not an annotator
    has_gamma = (
        view.diagnostics is not None
        and "gamma" in view.diagnostics.columns
        and bool(view.diagnostics["gamma"].isin(["c", "r", "i"]).any())
    )
    if has_gamma:
        annotators[lm] = {
            "name": "LM-labeler",
            "description": "SEAL LM-labeler: the side its (harmless, helpful) labels rank higher (gamma)",
            "type": "lm_labeler",
        }
    features = sorted({str(f) for f in view.features.columns.get_level_values(0)})
    diag_cols = [c for c in ("regime", "gamma", "theta", "suspicious") if has_gamma or c != "gamma"]
    diag_cols = [c for c in diag_cols if view.diagnostics is not None and c in view.diagnostics.columns]
    meta_keys = ["seal_pair_id", "seal_group_id", "seal_chosen_is", *diag_cols]
    meta_keys += [f"{f}_{ab}" for f in features for ab in ("a", "b")]
    comparisons = []
    for row in view.pairs.itertuples(index=False):
        pid = str(row.pair_id)
        a_chosen = _a_is_chosen(pid)
        side_of = {"a": "chosen" if a_chosen else "rejected", "b": "rejected" if a_chosen else "chosen"}
        text = {"chosen": str(row.chosen), "rejected": str(row.rejected)}
        ann: dict[str, dict[str, Any]] = {human: {"pref": "a" if a_chosen else "b"}}
        for rm in rms:
            ann[annotator_id("rm", rm)] = _pref(
                reward(view, rm, side_of["a"], pid), reward(view, rm, side_of["b"], pid)
            )
        meta: dict[str, str] = {"seal_pair_id": pid, "seal_chosen_is": "a" if a_chosen else "b"}
        group = getattr(row, "group_id", None)
        if group is not None:
            meta["seal_group_id"] = str(group)
        if view.diagnostics is not None and pid in view.diagnostics.index:
            d = view.diagnostics.loc[pid]
            for c in diag_cols:
                v = _meta_value(d[c])
                if v is not None:
                    meta[c] = v
            if has_gamma:
                g = d["gamma"]
                if g == "c":
                    ann[lm] = {"pref": "a" if a_chosen else "b"}
                elif g == "r":
                    ann[lm] = {"pref": "b" if a_chosen else "a"}
                elif g == "i":
                    ann[lm] = {"pref": None, "no_pref_reason": "indifferent"}
                else:
                    ann[lm] = {"pref": None, "no_pref_reason": "not_labeled"}
        for f in features:
            for ab in ("a", "b"):
                try:
                    v = _meta_value(view.features.at[pid, (f, side_of[ab])])
                except KeyError:
                    v = None
                if v is not None:
                    meta[f"{f}_{ab}"] = v
        comparisons.append(
            {
                "id": pid,
                "prompt": str(row.context),
                "response_a": {"text": text[side_of["a"]]},
                "response_b": {"text": text[side_of["b"]]},
                "annotations": ann,
                "metadata": meta,
            }
        )
    if not comparisons:
        raise SealError("the run has no pairs to export")
    used = {k for c in comparisons for k in c["annotations"]}
    annotators = {k: v for k, v in annotators.items() if k in used}
    return {
        "metadata": {
            "version": FF_VERSION,
            "description": f"seal-audit run '{view.run_name}': human labels, RMs and the LM-labeler as annotators",
            "created_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dataset_name": dataset_name or view.run_name,
            "default_annotator": human,
            "available_metadata_keys_per_comparison": meta_keys,
        },
        "annotators": annotators,
        "comparisons": comparisons,
    }


def rewardbench(view: RunView, subset: str) -> dict[str, tuple[list[dict[str, Any]], dict[str, Any]]]:
    """Per RM: (per-prompt records, grouped summary), as RewardBench's ``run_rm.py`` writes them."""
    out: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
    rms = sorted(view.rewards.columns.get_level_values(0).unique().map(str))
    for rm in rms:
        records = []
        for pid in view.pairs["pair_id"].astype(str):
            c, r = reward(view, rm, "chosen", pid), reward(view, rm, "rejected", pid)
            if c is None or r is None:
                continue  # counted below: an unscored pair is not a wrong one
            records.append(
                {"id": pid, "subset": subset, "results": int(c > r), "scores_chosen": c, "scores_rejected": r}
            )
        n = len(records)
        summary = {
            "model": rm,
            "model_type": f"seal-audit RM ({view.roles.get(rm, 'extra')})",
            subset: (sum(1 for x in records if x["results"]) / n) if n else None,
            "n": n,
            "n_unscored": len(view.pairs) - n,
        }
        out[rm] = (records, summary)
    return out


def rm_file_stems(names: list[str]) -> dict[str, str]:
    """One distinct, portable file stem per RM name: RM names are free text (spaces, '?', unicode), so
    a name that is not already a plain ASCII stem, or whose stem would meet another's (also on a
    case-insensitive file system), gets a short hash of the whole name, never a shared file."""
    import hashlib

    def slug(name: str) -> str:
        return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in name).strip(
            "."
        )

    counts: dict[str, int] = {}
    for name in names:
        counts[slug(name).lower()] = counts.get(slug(name).lower(), 0) + 1
    out: dict[str, str] = {}
    for name in names:
        stem = slug(name) or "rm"
        if stem != name or counts[stem.lower()] > 1:
            stem = f"{stem}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"
        out[name] = stem
    return out


def write_export(
    view: RunView, store_root: Path, to: ExportFormat, out: Path, *, subset: str | None = None
) -> dict[str, Any]:
    """Write one export under ``out``; returns what was written (for the verb's summary)."""
    import pandas as pd

    written: list[str] = []
    if to == "feedback-forensics":
        target = out if out.suffix == ".json" else out / "annotated_pairs.json"
        doc = feedback_forensics(view)
        write_text_atomic(target, json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
        return {
            "files": [str(target)],
            "comparisons": len(doc["comparisons"]),
            "annotators": [a["name"] for a in doc["annotators"].values()],
        }
    if to == "rewardbench":
        per_rm = rewardbench(view, subset or view.run_name)
        stems = rm_file_stems(list(per_rm))
        for rm, (records, summary) in per_rm.items():
            p, s = out / f"{stems[rm]}.json", out / f"{stems[rm]}.summary.json"
            write_text_atomic(p, json.dumps(records, indent=1) + "\n")
            write_text_atomic(s, json.dumps(summary, indent=1) + "\n")
            written += [str(p), str(s)]
        return {
            "files": written,
            "rms": {rm: s for rm, (_r, s) in per_rm.items()},
            "file_of_rm": {rm: f"{stems[rm]}.json" for rm in per_rm},
        }
    # csv / parquet: every run table and every analysis table
    from seal_audit.store.run_store import ANALYSIS_DIR, TABLES

    sources = [(name, store_root / f"{name}.parquet") for name in TABLES]
    sources += [(f"analysis/{p.stem}", p) for p in sorted((store_root / ANALYSIS_DIR).glob("*.parquet"))]
    for name, path in sources:
        if not path.exists():
            continue
        df = pd.read_parquet(path)
        if to == "csv":
            for col in df.columns:  # nested values (lists, dicts) as JSON text, one cell each
                if df[col].dtype == object and df[col].map(lambda v: isinstance(v, (list, dict))).any():
                    df[col] = df[col].map(
                        lambda v: json.dumps(v.tolist() if hasattr(v, "tolist") else v, default=str)
                    )
            target = out / f"{name}.csv"
            target.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(target, df.to_csv(index=False))
        else:
            target = out / f"{name}.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            write_parquet_atomic(target, df)
        written.append(str(target))
    stats = store_root / "stats.json"
    if stats.exists():
        target = out / "stats.json"
        write_text_atomic(target, stats.read_text(encoding="utf-8"))
        written.append(str(target))
    return {"files": written}
