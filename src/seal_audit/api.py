"""``seal_audit.score``: score pairs with reward models you already hold in memory.

    import seal_audit
    run = seal_audit.score("pairs.jsonl", rm={"pre": (model0, tok0), "post": pipe}, pre="pre", post="post")
    run.to_pandas("scores")

``pairs`` is a file (anything ``seal data inspect`` reads), a pandas DataFrame or a
``datasets.Dataset`` (read with the same column options: ``load={"prompt_col": ...}``), or a list
of ``PreferencePair``. ``rm`` is one model or a mapping name -> model, each a ``transformers``
(model, tokenizer) pair, a text-classification ``pipeline``, a callable
``list[(context, response)] -> list[float]``, a ``RewardModel``, or a ``--rm`` spec string. The
pairs and rewards land in a run directory (``out``), batch by batch in its cache, so a second
call is a cache read and ``seal label`` / ``seal analyze`` continue from it; the return value is
the run read back typed (``seal_audit.open_run``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seal_audit.data.errors import InputError, SealError

if TYPE_CHECKING:
    from seal_audit.data.load_options import LoadOptions
    from seal_audit.pipeline import Run
    from seal_audit.sources import LoadResult
    from seal_audit.store import RunStore

DEFAULT_RUN_DIR = Path("seal-run")
"""Where ``seal_audit.score`` writes without ``out`` (the ``seal score`` default too)."""


def store_loaded_pairs(
    store: RunStore, source: str, result: LoadResult, options: LoadOptions, *, verb: str
) -> None:
    """Put freshly loaded pairs into a run (or check that the run holds the same ones) and record
    the load stage: one function behind ``seal score FILE`` and ``seal_audit.score``."""
    if not result.pairs:
        raise SealError(f"{source}: no pairs to score")
    if store.has_table("pairs"):
        have = {p.pair_id for p in store.read_pairs()}
        if have != {p.pair_id for p in result.pairs}:
            raise SealError(
                f"{store.root} already holds different pairs ({len(have)}); pass another --out or the run dir"
            )
        return
    from seal_audit.config import DataConfig
    from seal_audit.pipeline import load_record

    store.write_pairs(result.pairs)
    store.record_input(source, result.format)
    source_cfg = DataConfig(path=source, **options.model_dump())
    record, key = load_record([source_cfg], holdout=0.0, seed=options.seed)
    store.record_stage(
        "load",
        {
            "options": record,
            "settings_hash": key,
            "verb": verb,
            "pairs": len(result.pairs),
            "pairs_a": 0,
            "records_read": result.records_read,
            "skipped": result.records_skipped,
            "context_diverges": sum(p.context_diverges for p in result.pairs),
        },
    )
    store.update_manifest(seed=options.seed)


def _load(pairs: Any, options: LoadOptions, tmp: Path) -> tuple[str, LoadResult]:
    """(a name for the source, the loaded pairs) from a path, a DataFrame or a datasets.Dataset."""
    from seal_audit.sources import LoadResult, load

    if isinstance(pairs, (str, Path)):
        return str(pairs), load(str(pairs), options)
    frame = None
    kind = type(pairs)
    if kind.__module__.startswith("datasets") and hasattr(pairs, "to_pandas"):
        frame, name = pairs.to_pandas(), f"datasets.Dataset({getattr(pairs, 'num_rows', '?')} rows)"
    elif kind.__module__.startswith("pandas") and kind.__name__ == "DataFrame":
        frame, name = pairs, f"DataFrame({len(pairs)} rows)"
    if frame is not None:
        # through a Parquet file, so a DataFrame is read, mapped, validated and quarantined exactly
        # as the same table on disk would be (errors name the row and the column)
        path = tmp / "pairs.parquet"
        frame.to_parquet(path, index=False)
        try:
            result = load(str(path), options)
        except InputError as e:  # name the caller's table and its row, not our temporary file
            if e.file != str(path):
                raise
            reason = e.reason if e.record is None else f"{e.reason} (row {e.record - 1} by position, iloc)"
            raise InputError(reason, file=name, record=e.record, field=e.field, kind=e.kind) from None
        except SealError as e:
            if str(path) not in str(e):
                raise
            raise SealError(str(e).replace(str(path), name)) from None
        return name, result
    if isinstance(pairs, Sequence) and all(type(p).__name__ == "PreferencePair" for p in pairs):
        records = tuple(pairs)
        result = LoadResult(
            pairs=records, skipped=(), format="records", records_read=len(records), duplicates=0
        )
        return f"{len(records)} PreferencePair records", result
    raise SealError(
        f"pairs: expected a file path, a pandas DataFrame, a datasets.Dataset or PreferencePair records, "
        f"got {kind.__name__}"
    )


def score(
    pairs: Any,
    rm: Any,
    *,
    out: str | Path | None = None,
    pre: str | None = None,
    post: str | None = None,
    baselines: Sequence[str] = (),
    batch_size: int | None = None,
    identity: Mapping[str, str] | None = None,
    load: Mapping[str, Any] | LoadOptions | None = None,
    progress: bool = True,
) -> Run:
    """Score ``pairs`` with ``rm`` (see the module docstring) into the run directory ``out``.

    ``batch_size`` is the number of texts per model call (default: the RM option ``max_batch``);
    every finished batch is cached in the run. ``pre`` / ``post`` / ``baselines`` name the RMs'
    roles (never guessed from names). ``identity`` maps an RM name to a string that identifies
    its weights in the cache (default: a fingerprint; see ``backends/reward/python.py``).
    """
    from dataclasses import replace

    from seal_audit.backends.reward import RMSpec
    from seal_audit.backends.reward.python import in_memory_reward_model
    from seal_audit.config import RMOptions
    from seal_audit.data.load_options import LoadOptions
    from seal_audit.pipeline import open_run
    from seal_audit.score import score_run
    from seal_audit.store import RunStore

    models_in = dict(rm) if isinstance(rm, Mapping) else {"rm": rm}
    if not models_in:
        raise SealError("rm: give at least one reward model")
    options = load if isinstance(load, LoadOptions) else LoadOptions(**dict(load or {}))
    opts = RMOptions() if batch_size is None else RMOptions(max_batch=batch_size)
    run_dir = Path(out) if out is not None else DEFAULT_RUN_DIR
    roles: dict[str, str] = {b: "baseline" for b in baselines}
    for role, name in (("pre", pre), ("post", post)):
        if name is not None:
            roles[name] = role
    unknown = sorted(set(roles) - set(models_in))
    if unknown:
        raise SealError(f"role given to unknown RM(s) {unknown} (have {sorted(models_in)})")
    with tempfile.TemporaryDirectory(prefix="seal-api-") as tmp:
        source, result = _load(pairs, options, Path(tmp))
    if not result.pairs:  # before the run directory is made
        raise SealError(f"{source}: no pairs to score")
    store = RunStore(run_dir, create=True, lock="score (python api)")
    try:
        store_loaded_pairs(store, source, result, options, verb="seal_audit.score")
        models = {
            name: in_memory_reward_model(obj, name, opts, identity=(identity or {}).get(name))
            for name, obj in models_in.items()
        }
        specs = [
            RMSpec(
                name=name,
                spec=obj if isinstance(obj, str) else f"memory:{name}",
                role=roles.get(name, "extra"),  # type: ignore[arg-type]  # checked above
                options=opts,
            )
            for name, obj in models_in.items()
        ]
        recorded = {n: r.role for n, r in store.manifest.rms.items()}
        specs = [replace(s, role=roles.get(s.name) or recorded.get(s.name) or "extra") for s in specs]  # type: ignore[arg-type]
        if progress:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            ) as bar:

                def make(name: str, total: int) -> Any:
                    task = bar.add_task(f"scoring {name}", total=total)
                    return lambda n: bar.advance(task, n)

                score_run(store, specs, models=models, progress=make)
        else:
            score_run(store, specs, models=models)
    finally:
        store.close()
    return open_run(run_dir)
