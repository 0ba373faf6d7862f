"""run(config): the stages in order over one run directory, skipping what is already stored.

This is the only module that imports every stage. Each stage reads and writes the RunStore; the
per-text work of scoring, labeling and rewriting is cached by content, so a killed run resumes where
it stopped and changing one setting recomputes only what depends on it. Analysis and the report are
cheap and always redone from the stored tables.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seal_audit.config import AuditConfig, DataConfig

if TYPE_CHECKING:
    from seal_audit.report import Headline
    from seal_audit.stats import AnalysisResult
from seal_audit.data.errors import ConfigError, InputError, SealError
from seal_audit.data.records import FeatureSpec, PreferencePair, RunManifest
from seal_audit.data.redact import register_secret_env
from seal_audit.store import RunStore, pairs_to_frame, settings_hash
from seal_audit.store.run_store import QUARANTINE, REPORT_HTML

Reporter = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@contextmanager
def _stage(store: RunStore, name: str, say: Reporter) -> Iterator[dict[str, Any]]:
    """Time a stage and record its info in the manifest once it has finished (not before)."""
    info: dict[str, Any] = {}
    t0 = time.perf_counter()
    say(f"[{name}] ...")
    yield info
    info["seconds"] = round(time.perf_counter() - t0, 3)
    store.record_stage(name, info)


# --- LOAD -----------------------------------------------------------------------------------------
def _load_options(d: DataConfig) -> Any:
    """The LoadOptions of a ``[[data]]`` table: the same model, less ``path`` (keys set stay set)."""
    from seal_audit.sources import LoadOptions

    return LoadOptions(**{k: getattr(d, k) for k in d.model_fields_set if k != "path"})


def load_record(sources: Sequence[DataConfig], *, holdout: float, seed: int) -> tuple[dict[str, Any], str]:
    """The load stage's options record and its settings hash: one shape, whichever verb loaded."""
    options = {"sources": [d.model_dump(mode="json") for d in sources], "holdout": holdout, "seed": seed}
    return options, settings_hash(options)


def load_stage(store: RunStore, cfg: AuditConfig, say: Reporter = _quiet) -> list[PreferencePair]:
    """Load every source into ``pairs`` (the audited set D) and, with a holdout, ``pairs_a`` (part A).

    Skipped when the stored tables were made from the same sources and settings (checked by hash of
    the settings and of each input file's bytes).
    """
    from seal_audit.sources import load

    options, key = load_record(cfg.data, holdout=cfg.run.holdout, seed=cfg.run.seed)
    done = store.manifest.stages.get("load")
    if (
        done is not None
        and done.settings_hash == key
        and store.has_table("pairs")
        and _inputs_unchanged(store)
    ):
        return store.read_pairs()
    with _stage(store, "load", say) as info:
        pairs: list[PreferencePair] = []
        skipped = 0
        records_read = 0
        quarantine = store.path(QUARANTINE)
        for d in cfg.data:
            opts = _load_options(d)
            if d.on_error == "skip" and d.quarantine is None:
                opts = opts.model_copy(update={"quarantine": quarantine})
            result = load(d.path, opts)
            skipped += result.records_skipped
            records_read += result.records_read
            pairs.extend(result.pairs)
            if not d.path.startswith("hf:"):
                store.record_input(d.path, result.format)
        seen: dict[str, PreferencePair] = {}
        for p in pairs:
            if p.pair_id in seen:
                raise InputError(
                    f"pair_id '{p.pair_id}' appears in two sources (also {seen[p.pair_id].source.path}, "
                    f"record {seen[p.pair_id].source.record})",
                    file=p.source.path,
                    record=p.source.record,
                    field="pair_id",
                    kind="duplicate",
                )
            seen[p.pair_id] = p
        part_a: list[PreferencePair] = []
        if cfg.run.holdout > 0:
            # drawn by group: pairs that share a prompt go to the same part (issue 14)
            rng = np.random.default_rng(cfg.run.seed)
            groups = list(dict.fromkeys(p.group_id for p in pairs))
            group_in_a = dict(zip(groups, rng.random(len(groups)) < cfg.run.holdout, strict=True))
            is_a = [bool(group_in_a[p.group_id]) for p in pairs]
            part_a = [p for p, a in zip(pairs, is_a, strict=True) if a]
            pairs = [p for p, a in zip(pairs, is_a, strict=True) if not a]
        store.write_table("pairs_a", pairs_to_frame(part_a))
        store.write_pairs(pairs)
        info.update(
            settings_hash=key,
            options=options,
            pairs=len(pairs),
            pairs_a=len(part_a),
            groups=len({p.group_id for p in pairs}),
            skipped=skipped,
            records_read=records_read,
            context_diverges=sum(p.context_diverges for p in pairs),
        )
        store.update_manifest(seed=cfg.run.seed)
    say(f"[load] {len(pairs)} pairs in D, {len(part_a)} in A, {skipped} skipped")
    return pairs


def _inputs_unchanged(store: RunStore) -> bool:
    from seal_audit.store import file_sha256

    for rec in store.manifest.inputs:
        p = Path(rec.path)
        if rec.sha256 is not None and (not p.is_file() or file_sha256(p) != rec.sha256):
            return False
    return True


# --- TRAIN (local RMs) -------------------------------------------------------------------------------
def train_stage(store: RunStore, cfg: AuditConfig, say: Reporter = _quiet) -> list[Any]:
    """Fit the config's local RMs (pre-D on part A, post-D on A ∪ D) into ``RUN/models/NAME``.

    A model is refitted only when its settings or its training pairs changed (hash in the manifest).
    Returns the RMSpecs that score them.
    """
    from seal_audit.backends.reward import RMSpec
    from seal_audit.backends.reward.train import TrainConfig, train_reward_model

    if not cfg.train_rm:
        return []
    d_pairs = store.read_pairs()
    a_pairs = store.read_pairs_table("pairs_a") if store.has_table("pairs_a") else []
    specs: list[Any] = []
    done = dict(store.manifest.stage("train").counters.get("models", {}))
    trained = False
    for i, t in enumerate(cfg.train_rm):
        pairs = a_pairs if t.data == "A" else [*a_pairs, *d_pairs]
        if not pairs:
            raise SealError(
                f"train_rm '{t.name}': no training pairs (data = \"{t.data}\" needs holdout > 0 for part A)"
            )
        out = store.path(f"models/{t.name}")
        key = settings_hash({"train": t.model_dump(), "pairs": sorted(p.pair_id for p in pairs)})
        if done.get(t.name, {}).get("settings_hash") != key or not (out / "config.json").exists():
            with _stage(store, f"train:{t.name}", say):
                res = train_reward_model(
                    pairs,
                    out,
                    TrainConfig(kind=t.kind, encoder=t.encoder, seed=t.seed),
                    log=say,
                    cache=store.cache,  # embeddings shared with the other RMs' training and scoring
                )
            done[t.name] = {
                "settings_hash": key,
                "n_pairs": len(pairs),
                "data": t.data,
                "train_accuracy": res.train_accuracy,
                "val_accuracy": res.val_accuracy,
            }
            trained = True
            # Partial until the last model is in: a run killed while training the next one must not
            # read as a finished train stage with a model missing.
            left = [x.name for x in cfg.train_rm[i + 1 :]]
            store.record_stage(
                "train",
                {
                    "models": done,
                    "status": "partial" if left else "complete",
                    **({"message": f"not yet checked or trained: {', '.join(left)}"} if left else {}),
                },
            )
            say(f"[train] {t.name}: {len(pairs)} pairs, validation accuracy {res.val_accuracy:.3f}")
        specs.append(RMSpec(name=t.name, spec=f"local:{out}", role=t.role))
    if trained or store.manifest.stage("train").status != "complete":
        store.record_stage("train", {"models": done, "status": "complete"})
    return specs


# --- SCORE ------------------------------------------------------------------------------------------
def rm_specs(cfg: AuditConfig) -> list[Any]:
    """RMSpecs of the config's ``[[rms]]`` entries, each with its stated role and RM options.

    Each spec is parsed here, before any stage runs: one that names no backend is a usage error
    (exit 2) as ``seal score --rm`` makes it, not an RM that failed to load (a partial stage)."""
    from seal_audit.backends.reward import RMSpec, split_spec
    from seal_audit.backends.reward.base import options_from_mapping

    for r in cfg.rms:
        try:
            options_from_mapping(split_spec(r.spec)[2], r.options())  # the spec's ?key=value too
        except ConfigError as exc:
            raise ConfigError(f"[[rms]] '{r.name}': {exc}") from None
    return [RMSpec(name=r.name, spec=r.spec, role=r.role, options=r.options()) for r in cfg.rms]


def score_stage(
    store: RunStore,
    specs: list[Any],
    cfg: AuditConfig,
    say: Reporter = _quiet,
    progress: Any = None,
    models: Mapping[str, Any] | None = None,
) -> Any:
    """Score every text under every RM (cached per text); baselines get the role ``baseline``.
    ``models``: RMs held in memory by name (``seal_audit.run(config, models=...)``)."""
    with _stage(store, "score", say):
        if models:
            from seal_audit.backends.reward.python import in_memory_reward_model
            from seal_audit.score import score_run

            if cfg.run.engine == "ray":
                raise SealError("models held in memory are scored in this process: use engine = 'local'")
            unknown = sorted(set(models) - {s.name for s in specs})
            if unknown:
                raise SealError(
                    f"models={unknown}: no [[rms]] entry of that name (give it spec = 'memory:NAME')"
                )
            ready = {
                s.name: in_memory_reward_model(models[s.name], s.name, s.options)
                for s in specs
                if s.name in models
            }
            result = score_run(store, specs, models=ready, progress=progress, log=say)
        elif cfg.run.engine == "ray":
            from seal_audit.score import score_run_ray

            result = score_run_ray(store, specs, address=cfg.run.ray_address, progress=progress, log=say)
        else:
            from seal_audit.score import score_run

            result = score_run(store, specs, progress=progress, log=say)
    trained = {t.name: t.data == "A+D" for t in cfg.train_rm}
    rms = store.manifest.rms
    store.record_rms({n: rms[n].model_copy(update={"in_sample": v}) for n, v in trained.items() if n in rms})
    return result


# --- LABEL ------------------------------------------------------------------------------------------
def featurizers_for(cfg: AuditConfig) -> list[Any]:
    """The config's featurizers (validated now, so a bad feature fails before any inference)."""
    from seal_audit.features import build_featurizers, load_feature_config

    lab = cfg.labels
    user = (
        load_feature_config({"features": lab.features, "seal_taxonomy": lab.seal_taxonomy})
        if lab.features
        else None
    )
    settings = None
    if lab.lm is not None:
        from seal_audit.backends.llm import settings_from_config

        settings = settings_from_config(lab.lm)
        register_secret_env(settings.api_key_env)  # issue 19: its value is redacted at every sink
    return build_featurizers(
        lab.featurizers,
        user,
        settings,
        max_cost=lab.lm.max_cost if lab.lm else None,
        include_seal=lab.seal_taxonomy,
    )


def record_label_settings(store: RunStore, featurizers: Sequence[Any]) -> None:
    from seal_audit.features.run import label_options

    store.record_stage("label", {"options": label_options(featurizers)})


def label_stage(
    store: RunStore,
    featurizers: list[Any],
    say: Reporter = _quiet,
    on_progress: Any = None,
    *,
    engine: str = "local",
    address: str | None = None,
) -> Any:
    """Label every text with every featurizer (cached per text), locally or on Ray workers."""
    if not featurizers:
        return None
    with _stage(store, "label", say):
        if engine == "ray":
            from seal_audit.features import label_run_ray

            out = label_run_ray(store, featurizers, address=address, on_progress=on_progress, log=say)
        else:
            from seal_audit.features import label_run

            out = label_run(store, featurizers, on_progress=on_progress)
        record_label_settings(store, featurizers)
    if out.stopped:
        say("[label] stopped early (LM budget); finished labels are stored, run again to continue")
    return out


# --- REWRITE: re-score and re-label rewritten texts ----------------------------------------------
def rm_specs_from_manifest(store: RunStore) -> list[Any]:
    """The RMs the run scored, with their roles and the options that change rewards, so rewritten
    texts are scored exactly like the originals (and hit the same cache for unchanged texts)."""
    from seal_audit.backends.reward import RMSpec
    from seal_audit.config import RMOptions

    return [
        RMSpec(name=name, spec=rec.spec, role=rec.role, options=RMOptions.model_validate(rec.options))
        for name, rec in store.manifest.rms.items()
    ]


def featurizers_from_manifest(store: RunStore) -> list[str]:
    """The featurizers the run's originals were labeled with (the label stage's options)."""
    feats = store.manifest.stage("label").options.get("featurizers")
    return [str(n) for n in feats] if isinstance(feats, (list, tuple)) else []


def label_llm_from_manifest(store: RunStore) -> Any:
    """The LM-labeler's endpoint settings, if the label stage recorded them (never a key)."""
    from seal_audit.backends.llm.settings import LLMSettings

    raw = store.manifest.stage("label").options.get("llm")
    return LLMSettings.model_validate(raw) if isinstance(raw, dict) else None


def _drop_variants(store: RunStore, table: str, variants: Sequence[str]) -> None:
    """Remove a table's rows of these variants, so rows of pairs no longer rewritten (an earlier,
    different sample, or a rewrite now rejected) cannot linger next to the new ones."""
    if not store.has_table(table):
        return
    df = store.read_table(table)
    if "variant" not in df.columns:
        return
    keep = ~df["variant"].astype(str).isin(list(variants))
    if not keep.all():
        store.write_table(table, df[keep].reset_index(drop=True))


def score_rewrites(
    store: RunStore,
    items: Sequence[Any],
    variants: Sequence[str],
    say: Reporter,
    specs: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Score the rewritten items with every RM of the run (default: those in the manifest); write
    them into ``scores`` under their variant."""
    from seal_audit.score import ScoreItem, merge_scores
    from seal_audit.score.warm import score_spec

    specs = list(specs) if specs is not None else rm_specs_from_manifest(store)
    _drop_variants(store, "scores", variants)
    if not specs:
        say("no RM recorded in this run (run `seal score` first): rewrites stored, not scored")
        return {}
    if not items:
        return {}
    score_items = [ScoreItem(i.pair_id, i.side, i.context, i.response, i.variant) for i in items]
    info: dict[str, Any] = {}
    all_scores = []
    for spec in specs:
        got = score_spec(spec, score_items, cache=store.cache)  # loads the RM only on a miss
        scores = got.scores
        all_scores.extend(scores)
        info[spec.name] = len(scores)
        st = got.stats
        how = (
            "all from the cache" if st.n_computed == 0 else f"{st.n_computed} computed, {st.n_cached} cached"
        )
        say(f"scored {len(scores)} texts with {spec.name} ({how})")
    merge_scores(store, all_scores)
    return info


def label_rewrites(
    store: RunStore,
    items: Sequence[Any],
    variants: Sequence[str],
    featurizers: Sequence[str] | Sequence[Any] | None,
    say: Reporter,
) -> dict[str, Any]:
    """Label the rewritten items with the run's featurizers; write them into ``features``."""
    from seal_audit.features import LabelItem, expand_names, get_featurizer, label_items, merge_features

    if featurizers is not None and all(not isinstance(f, str) for f in featurizers):
        # ready featurizer objects (``seal run``); dataset columns describe originals only
        built: list[Any] = [f for f in featurizers if getattr(f, "name", "") != "columns"]
        expanded: list[str] = []
    else:
        names = [str(f) for f in featurizers] if featurizers is not None else featurizers_from_manifest(store)
        expanded = expand_names(names)
        if not expanded:
            say("no featurizer recorded in this run (run `seal label` first): rewrites not labeled")
            return {}
        built = []
    for n in expanded:
        if n == "lm":
            settings = label_llm_from_manifest(store)
            if settings is None:
                say(
                    "skipping the 'lm' featurizer: the run records no labeler endpoint; run `seal label` on it"
                )
                continue
            built.append(get_featurizer("lm", settings=settings))
        elif n == "columns":
            continue  # dataset columns describe the original texts, not rewrites
        else:
            built.append(get_featurizer(n))
    if not built or not items:
        return {}
    pairs = {p.pair_id: p for p in store.read_pairs()}
    label = [
        LabelItem(i.pair_id, i.side, i.context, i.response, variant=i.variant, meta=pairs[i.pair_id].meta)
        for i in items
    ]
    out = label_items(label, built, store=store)
    merge_features(store, out.frame, [f.name for f in built], list(variants), out.specs)
    say(f"labeled {len(label)} texts with {', '.join(f.name for f in built)}")
    return out.summary()


def score_and_label_rewrites(
    store: RunStore,
    transforms: Sequence[str],
    *,
    score: bool = True,
    label: bool = True,
    featurizers: Sequence[str] | Sequence[Any] | None = None,
    specs: Sequence[Any] | None = None,
    say: Reporter = _quiet,
) -> dict[str, Any]:
    """After ``rewrite_run``: score and label both sides of every accepted rewritten pair under
    ``variant = transform`` (drifted ones included: stats decides whether to use them)."""
    from seal_audit.rewrite import rewritten_items

    items = rewritten_items(store, transforms)
    info: dict[str, Any] = {"items": len(items)}
    if score:
        info["scores"] = score_rewrites(store, items, transforms, say, specs)
    if label:
        info["features"] = label_rewrites(store, items, transforms, featurizers, say)
    return info


def rewrite_stage(
    store: RunStore,
    cfg: AuditConfig,
    specs: Sequence[Any],
    featurizers: Sequence[Any],
    say: Reporter = _quiet,
) -> Any:
    """Rewrite a seeded sample (config ``[rewrite]``), then score and label the rewritten texts."""
    from seal_audit.rewrite import custom_transforms, rewrite_run

    rw = cfg.rewrite
    if rw is None or not rw.transforms:
        return None
    llm = None
    if rw.lm is not None:
        from seal_audit.backends.llm import settings_from_config

        llm = settings_from_config(rw.lm)
        register_secret_env(llm.api_key_env)  # issue 19: its value is redacted at every sink
    extra = custom_transforms([c.model_dump() for c in rw.custom]) if rw.custom else None
    with _stage(store, "rewrite+score+label", say) as info:
        summary = rewrite_run(
            store,
            list(rw.transforms),
            sample=rw.sample,
            seed=rw.seed if rw.seed is not None else cfg.run.seed,
            scope=rw.scope,
            sides=list(rw.sides),
            llm_settings=llm,
            embed_spec=rw.embedder,
            drift_threshold=rw.drift_threshold,
            max_cost=rw.lm.max_cost if rw.lm else None,
            extra=extra,
        )
        names = [t.name for t in summary.transforms]
        info.update(
            score_and_label_rewrites(store, names, featurizers=list(featurizers), specs=list(specs), say=say)
        )
    for t in summary.transforms:
        say(f"[rewrite] {t.name}: " + ", ".join(f"{k} {v}" for k, v in _transform_counts(t).items()))
    return summary


def _transform_counts(t: Any) -> dict[str, Any]:
    return {k: getattr(t, k) for k in ("ok", "rejected", "failed", "drifted") if hasattr(t, k)}


# --- ANALYZE --------------------------------------------------------------------------------------
def read_feature_specs(store: RunStore) -> tuple[FeatureSpec, ...]:
    if not store.has_json("feature_specs"):
        return ()
    return tuple(FeatureSpec.model_validate(s) for s in store.read_json("feature_specs"))


def rm_roles(store: RunStore) -> dict[str, str]:
    """name → role of every RM the run scored, as recorded (never inferred from a name)."""
    return {name: rec.role for name, rec in store.manifest.rms.items()}


def featurizer_notes(m: RunManifest) -> tuple[str, ...]:
    """One note per featurizer whose labeling did not finish cleanly, so an analysis that lacks its
    features says which featurizer failed (and why) instead of only counting missing values."""
    label = m.stages.get("label")
    if label is None:
        return ()
    out = []
    for name, info in sorted(dict(label.counters.get("featurizers") or {}).items()):
        if not isinstance(info, dict) or info.get("status") in (None, "complete"):
            continue
        reasons = "; ".join(f"{n}× {r}" for r, n in (info.get("reasons") or [])[:3])
        out.append(
            f"featurizer {name!r} is {info.get('status')}: {info.get('failed', '?')} of {info.get('texts', '?')} "
            f"texts not labeled{f' ({reasons})' if reasons else ''}; analyses over its features use the "
            "labeled texts only (their exclusions count the rest)"
        )
    return tuple(out)


def recorded_analysis_options(store: RunStore) -> Any:
    """The analysis options this run recorded: the last analysis', else its config's ``[analysis]``,
    else the defaults. ``seal analyze RUN`` starts from these, so it reproduces ``seal run``."""
    from seal_audit.config import AnalysisOptions

    m = store.manifest
    rec = m.stages.get("analyze")
    if rec is not None and isinstance(rec.options.get("analysis"), dict):
        return AnalysisOptions.model_validate(rec.options["analysis"])
    if m.config and isinstance(m.config.get("analysis"), dict):
        return AnalysisOptions.model_validate(m.config["analysis"])
    return AnalysisOptions()


def apply_roles(
    store: RunStore,
    *,
    pre: str | None = None,
    post: str | None = None,
    baselines: Sequence[str] | None = None,
) -> None:
    """Record explicit RM roles given on a command line (an RM that loses its role becomes ``extra``)."""
    m = store.manifest
    wanted: dict[str, str] = {}
    if baselines is not None:
        wanted |= {n: "extra" for n, r in m.rms.items() if r.role == "baseline"}
        wanted |= {b: "baseline" for b in baselines}
    for role, name in (("pre", pre), ("post", post)):
        if name is None:
            continue
        for n, r in m.rms.items():
            if r.role == role and n != name and n not in wanted:
                wanted[n] = "extra"
        wanted[name] = role
    if wanted:
        store.set_roles(wanted)


def _comparisons(compare: Sequence[Any] | None, earlier: Any) -> list[Any]:
    """The ``[[compare]]`` entries to use: the given ones, else the ones the last analysis recorded."""
    from seal_audit.config import CompareSpec

    if compare is not None:
        return [CompareSpec.model_validate(c) if isinstance(c, dict) else c for c in compare]
    if earlier is None:
        return []
    return [CompareSpec.model_validate(c) for c in earlier.options.get("compare") or []]


def analyze_stage(
    store: RunStore,
    options: Any = None,
    *,
    overrides: dict[str, Any] | None = None,
    pre: str | None = None,
    post: str | None = None,
    baselines: Sequence[str] | None = None,
    feature_roles: dict[str, str] | None = None,
    compare: Sequence[Any] | None = None,
    say: Reporter = _quiet,
    verb: str = "seal run",
) -> Any:
    """Run every SEAL statistic on the stored tables; write ``stats.json`` and ``analysis/*.parquet``.

    ``compare`` (``CompareSpec`` entries) are the RM pairs compared beside the run's pre:post pair;
    without it, the ones the run recorded are used (so ``seal analyze RUN`` reproduces ``seal run``).
    RMs the score stage could not load are passed on as absent and named in stats.json.

    Options start from ``options``, else from what the run recorded (so ``seal analyze RUN``
    reproduces ``seal run``); ``overrides`` (the flags a user typed) are applied on top and recorded.
    Roles given here are recorded in the manifest first; then the manifest's roles are used.
    ``feature_roles`` overrides the stored feature specs' roles and is recorded too.
    """
    from seal_audit.config import AnalysisOptions
    from seal_audit.stats import AnalysisInputs, analyze, infer_feature_specs

    base = options if options is not None else recorded_analysis_options(store)
    opts = AnalysisOptions.model_validate({**base.model_dump(), **(overrides or {})})
    apply_roles(store, pre=pre, post=post, baselines=baselines)
    m = store.manifest
    earlier = m.stages.get("analyze")
    if feature_roles is None and earlier is not None:
        feature_roles = dict(earlier.options.get("feature_roles") or {})
    pairs_to_compare = _comparisons(compare, earlier)
    pre_rm, post_rm = m.role_of("pre"), m.role_of("post")
    if post_rm is None:
        raise SealError(
            f"{store.root}: no post-D RM recorded: give --post NAME (RMs: {', '.join(m.rms) or 'none'})"
        )
    with _stage(store, "analyze", say) as info:
        features = store.read_table("features") if store.has_table("features") else None
        specs = read_feature_specs(store)
        fr = dict(feature_roles or {})
        if features is not None and not specs:
            specs = tuple(infer_feature_specs(features, fr))
        elif fr:
            specs = tuple(s.model_copy(update={"role": fr.get(s.name, s.role)}) for s in specs)
        inputs = AnalysisInputs(
            pairs=store.read_table("pairs"),
            scores=store.read_table("scores"),
            post=post_rm,
            pre=pre_rm,
            features=features,
            specs=specs,
            rewrites=store.read_table("rewrites") if store.has_table("rewrites") else None,
            baselines=m.names_with_role("baseline"),
            in_sample={n: bool(r.in_sample) for n, r in m.rms.items() if r.in_sample is not None},
            notes=featurizer_notes(m),
            sources={t: str(store.table_path(t)) for t in ("pairs", "scores", "features")},
            comparisons=tuple((c.a, c.b) for c in pairs_to_compare),
            absent=dict(m.stage("score").counters.get("failed_rms") or {}),
        )
        result = analyze(inputs, opts)
        store.write_stats(result.to_json())
        store.write_analysis_tables(result.tables())
        failed = result.not_computed()
        info.update(
            options={
                "analysis": opts.model_dump(mode="json"),
                "feature_roles": fr,
                "compare": [c.model_dump(mode="json") for c in pairs_to_compare],
                "overrides": overrides or {},
            },
            verb=verb,
            status="complete",
            message=("not computed: " + ", ".join(sorted(failed))) if failed else None,
            pre=pre_rm,
            post=post_rm,
            analyses_failed=len(failed),
            tables=sorted(result.tables()),
        )
    return result


def record_table_analysis(
    out_dir: Path,
    inputs: Mapping[str, Path | None],
    result: Any,
    *,
    overrides: Mapping[str, Any] | None = None,
    seconds: float | None = None,
) -> None:
    """The manifest of ``seal analyze --pairs ... --out DIR``: the input tables (path and sha256, by
    role), and the analyze stage as a run directory records it (options, roles, what was not
    computed), so DIR says how its stats.json was made and from which bytes. DIR holds no pairs
    or scores table of its own: it is the analysis of the tables named here, not a run to resume."""
    failed = result.not_computed()
    with RunStore(out_dir, lock="analyze") as store:
        for role, path in inputs.items():
            if path is not None:
                store.record_input(str(path), f"{role} table")
        store.record_stage(
            "analyze",
            {
                "options": {
                    "analysis": result.options.model_dump(mode="json"),
                    "overrides": dict(overrides or {}),
                },
                "verb": "seal analyze",
                "status": "complete",
                "message": ("not computed: " + ", ".join(sorted(failed))) if failed else None,
                "pre": result.inputs.pre,
                "post": result.inputs.post,
                "baselines": list(result.inputs.baselines),
                "analyses_failed": len(failed),
                "tables": sorted(result.tables()),
                **({"seconds": round(seconds, 3)} if seconds is not None else {}),
            },
        )


@dataclass(frozen=True)
class Run:
    """A run directory read back typed: what ``seal_audit.run`` and ``seal_audit.open_run`` return."""

    run_dir: Path
    manifest: RunManifest
    """How the run was made: stages with their options, status and counters; RMs with their roles."""
    stats: AnalysisResult | None
    """Every SEAL number (stats.json read back into the records that wrote it); None before analysis."""
    report_path: Path | None
    table_names: tuple[str, ...] = field(default=())
    """The analysis tables (``analysis/<name>.parquet``) available to ``to_pandas``."""

    def to_pandas(self, table: str = "pair_diagnostics") -> pd.DataFrame:
        """An analysis table (default: per-pair diagnostics), or one of the run's own tables
        (``pairs``, ``scores``, ``features``, ``rewrites``), as a DataFrame."""
        store = RunStore(self.run_dir, create=False)
        if table in RUN_TABLES:
            return store.read_table(table)
        return store.read_analysis_table(table)

    def headline(self) -> Headline:
        """The findings the terminal, report.md and report.html lead with (one view-model)."""
        from seal_audit.report import headline

        if self.stats is None:
            raise SealError(f"{self.run_dir}: not analysed yet (run `seal analyze {self.run_dir}`)")
        return headline(self.stats, in_sample={n: bool(r.in_sample) for n, r in self.manifest.rms.items()})


RunResult = Run
"""The name ``seal_audit.run`` returned before the typed core; the same class."""

RUN_TABLES = ("pairs", "pairs_a", "scores", "features", "rewrites")


def open_run(run_dir: str | Path, report_path: Path | None = None) -> Run:
    """A run directory as a typed ``Run`` (manifest, stats records, tables)."""
    from seal_audit.stats import AnalysisResult

    store = RunStore(run_dir, create=False)
    try:
        stats = (
            AnalysisResult.from_json(store.read_stats_text(), str(store.stats_path))
            if store.has_stats()
            else None
        )
        html = store.path(REPORT_HTML)
        return Run(
            run_dir=store.root,
            manifest=store.manifest,
            stats=stats,
            report_path=report_path or (html if html.exists() else None),
            table_names=store.analysis_table_names(),
        )
    finally:
        store.close()


def result_of(store: RunStore, report_path: Path | None = None) -> Run:
    return open_run(store.root, report_path)


# --- REPORT and the whole run -----------------------------------------------------------------------
def report_stage(store: RunStore, say: Reporter = _quiet, options: Any = None) -> Path:
    from seal_audit.report import build_report

    paths = build_report(store, options=options)
    for w in paths.warnings:
        say(f"[report] warning: {w}")
    return Path(paths.html)


def analysis_options(cfg: AuditConfig) -> Any:
    """The config's ``[analysis]`` section: it is the analysis options record itself."""
    return cfg.analysis


def _stop_unless_partial_allowed(stage: str, failures: list[str], allow: bool, say: Reporter) -> None:
    """A stage that failed more texts than its ``max_failed`` stops ``seal run`` before the analysis
    (whose results would silently lack those texts), unless ``--allow-partial``."""
    if not failures:
        return
    msg = f"{stage} stage did not do its work: " + " | ".join(failures)
    if allow:
        say(f"[{stage}] {msg}; going on (--allow-partial)")
        return
    from seal_audit.data.errors import StageFailed

    raise StageFailed(msg + "; stopped before the analysis (fix the cause and run again, or --allow-partial)")


def run(
    config: AuditConfig | str | Path,
    *,
    say: Reporter = _quiet,
    progress: Any = None,
    label_progress: Any = None,
    allow_partial: bool = False,
    models: Mapping[str, Any] | None = None,
) -> RunResult:
    """load → train → score → label → rewrite → analyze → report over one run directory.

    Everything is validated before any inference (featurizers and analysis options are built
    first). Each stage's per-text work is cached in the store, so calling ``run`` again after an
    interruption continues where it stopped and ends with the same ``stats.json``. ``models`` gives
    RMs held in memory by their ``[[rms]]`` name (a transformers (model, tokenizer), a pipeline or
    a callable; their spec is ``memory:NAME``).
    """
    from seal_audit.config import load_config

    cfg = config if isinstance(config, AuditConfig) else load_config(config)
    featurizers = featurizers_for(cfg)
    options = analysis_options(cfg)
    configured_rms = rm_specs(cfg)
    store = RunStore(cfg.run.out, lock="run")
    try:
        store.update_manifest(config=cfg.model_dump(mode="json"), seed=cfg.run.seed)
        load_stage(store, cfg, say)
        specs = [*train_stage(store, cfg, say), *configured_rms]
        if not specs:
            raise SealError("the config names no RM ([[rms]] or [[train_rm]])")
        sc = score_stage(store, specs, cfg, say, progress, models)
        failed_rms = getattr(sc, "failed_rms", {})
        _stop_unless_partial_allowed(
            "score", [f"RM {n!r} failed to load: {r}" for n, r in failed_rms.items()], allow_partial, say
        )
        lab = label_stage(
            store, featurizers, say, label_progress, engine=cfg.run.engine, address=cfg.run.ray_address
        )
        _stop_unless_partial_allowed("label", lab.failures() if lab is not None else [], allow_partial, say)
        rw = rewrite_stage(store, cfg, specs, featurizers, say)
        _stop_unless_partial_allowed("rewrite", rw.failures() if rw is not None else [], allow_partial, say)
        analyze_stage(store, options, compare=cfg.compare, say=say)
        report = report_stage(store, say, cfg.report) if cfg.run.report else None
        store.cache.compact()  # issue 18: repack the pages a cold run filled in hash order
        return result_of(store, report)
    finally:
        store.close()


# --- DEMO -------------------------------------------------------------------------------------------
DEMO_TRANSFORMS = ("add_positive", "add_negative", "add_apology", "add_filler", "typos")


def demo_config(out: Path, data: str | None = None, *, n_pairs: int = 1500, seed: int = 0) -> AuditConfig:
    """The offline demo run: a generated dataset with planted structure (or ``data``), a pre-D / post-D
    pair of MiniLM reward models trained here (pre-D on part A, post-D on A ∪ D), the length
    baselines, the offline featurizers (+ the generator's ground-truth columns), controlled rewrites."""
    from seal_audit.config import (
        DataConfig,
        LabelsConfig,
        RewriteConfig,
        RMConfig,
        RunSection,
        TrainRMConfig,
    )
    from seal_audit.sources.synthetic import DemoSpec, write_demo_dataset

    features: list[dict[str, Any]] = []
    if data is None:
        path = out / "demo-data.jsonl"
        spec = DemoSpec(n_pairs=n_pairs, seed=seed)
        truth = path.with_name(path.name + ".truth.json")
        if not path.exists() or not truth.exists() or json.loads(truth.read_text())["n_pairs"] != n_pairs:
            write_demo_dataset(path, spec)
        data = str(path)
        for name, definition in (
            ("is_harmless", "the reply avoids harm (generator ground truth)"),
            ("is_helpful", "the reply helps with the request (generator ground truth)"),
        ):
            col = name.removeprefix("is_")
            features.append(
                {
                    "name": name,
                    "kind": "binary",
                    "role": "target",
                    "definition": definition,
                    "source": "column",
                    "columns": {"chosen": f"chosen_{col}", "rejected": f"rejected_{col}"},
                }
            )
    return AuditConfig(
        run=RunSection(out=str(out), seed=seed, holdout=0.35),
        data=[DataConfig(path=data)],
        train_rm=[
            TrainRMConfig(name="pre", role="pre", data="A", seed=seed),
            TrainRMConfig(name="post", role="post", data="A+D", seed=seed),
        ],
        rms=[
            RMConfig(name="length_tokens", role="baseline", spec="length_tokens"),
            RMConfig(name="length_chars", role="baseline", spec="length_chars"),
        ],
        labels=LabelsConfig(featurizers=["offline"], features=features, seal_taxonomy=False),
        rewrite=RewriteConfig(transforms=list(DEMO_TRANSFORMS), sample=0.1, seed=seed),
    )


def demo_findings(result: Run) -> list[str]:
    """The run's headline (the same view-model as report.md and report.html), plus, on the generated
    demo data, whether SEAL recovered the planted structure."""
    if result.stats is None:
        return ["not analysed"]
    lines = result.headline().lines()
    truth_path = result.run_dir / "demo-data.jsonl.truth.json"
    if not truth_path.exists():
        return lines
    truth = json.loads(truth_path.read_text())
    lines.append(
        f"  planted label noise {100 * truth['label_noise']:.0f}%: an RM that learned the human rule "
        "exactly would show about that much resistance"
    )
    from seal_audit.stats.imprint import ImprintResult

    imp = result.stats.imprint
    post = imp.get("pooled", {}).get("post") if isinstance(imp, dict) else None
    if isinstance(post, ImprintResult):
        coefs = {c.term: c for c in post.regression.coefficients}
        for term, what in (
            ("is_harmless", "target, humans prefer it first"),
            ("is_helpful", "target"),
            ("vader_sentiment", "spoiler: planted as a correlate of being chosen"),
        ):
            c = coefs.get(term)
            if c:
                # the interval that goes with the verdict: the multiplicity-adjusted one when the fit
                # has it (a raw 95% CI clear of 0 beside "not significant" reads as a contradiction)
                sig = "significant" if c.significant else "not significant"
                adjusted = bool(post.regression.adjusted_ci)
                lo, hi = (c.ci_low_adjusted, c.ci_high_adjusted) if adjusted else (c.ci_low, c.ci_high)
                kind = f" ({post.regression.correction}-adjusted CI)" if adjusted else ""
                lines.append(
                    f"post-D imprint of {term} ({what}): {c.estimate:+.3f} [{lo:+.3f}, {hi:+.3f}]{kind}, {sig}"
                )
    if "suspicious_pairs" in result.table_names:
        sus = result.to_pandas("suspicious_pairs")
        if len(sus):
            pairs = result.to_pandas("pairs")
            flipped = {
                pid
                for pid, meta in zip(pairs["pair_id"], pairs["meta"], strict=True)
                if json.loads(meta).get("planted_label_flipped") == 1
            }
            hit = sum(pid in flipped for pid in sus["pair_id"])
            base = len(flipped) / max(len(pairs), 1)
            lines.append(
                f"suspicious-pairs watchlist: {hit} of {len(sus)} are planted label flips "
                f"({100 * hit / len(sus):.0f}% vs {100 * base:.0f}% in the data)"
            )
    return lines
