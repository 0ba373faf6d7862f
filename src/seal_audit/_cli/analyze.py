"""``seal analyze``: every SEAL statistic from a run directory or from user-supplied long tables."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from seal_audit._cli._common import console, model_options, model_overrides
from seal_audit._cli._output import summary
from seal_audit._cli._writer import writer_store
from seal_audit.data.errors import ConfigError, InputError, SealError
from seal_audit.data.records import FeatureSpec
from seal_audit.stats import (
    AnalysisInputs,
    AnalysisOptions,
    AnalysisResult,
    analyze,
    infer_feature_specs,
)
from seal_audit.store import atomic_path, read_any_table, write_parquet_atomic, write_text_atomic
from seal_audit.store.run_store import ANALYSIS_DIR, STATS


def _parse_roles(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, role = item.partition("=")
        if not sep or role.strip() not in ("target", "spoiler"):
            raise ConfigError(f"--roles: expected name=target or name=spoiler, got {item!r}")
        out[name.strip()] = role.strip()
    return out


def _specs_from(obj: Any, source: str) -> tuple[FeatureSpec, ...]:
    if isinstance(obj, dict):
        obj = obj.get("features", obj.get("specs", list(obj.values())))
    if not isinstance(obj, list):
        raise InputError("expected a JSON list of feature specs", file=source)
    out = []
    for i, item in enumerate(obj, start=1):
        try:
            out.append(FeatureSpec.model_validate(item))
        except Exception as exc:  # pydantic's message names the field
            raise InputError(f"invalid feature spec: {exc}", file=source, record=i) from exc
    return tuple(out)


def _apply_roles(specs: tuple[FeatureSpec, ...], roles: dict[str, str]) -> tuple[FeatureSpec, ...]:
    if not roles:
        return specs
    names = {s.name for s in specs}
    unknown = sorted(set(roles) - names)
    if unknown:
        raise ConfigError(f"--roles names unknown feature(s) {unknown}")
    return tuple(s.model_copy(update={"role": roles[s.name]}) if s.name in roles else s for s in specs)


def _summary(result: AnalysisResult, in_sample: dict[str, bool] | None = None) -> None:
    """The headline view-model (the same lines report.md and report.html lead with)."""
    from seal_audit.report import headline

    head = headline(result, in_sample=in_sample)
    for f in head.findings:
        console.print(
            f.text + (f" ({f.caveat})" if f.caveat else ""), markup=False, highlight=False, soft_wrap=True
        )
    for e in result.inputs.notes:
        console.print(f"note: {e}", markup=False, highlight=False, soft_wrap=True)
    for rm, why in result.inputs.absent_rms.items():
        console.print(f"absent RM {rm!r}: {why}", markup=False, highlight=False, soft_wrap=True)
    mt = result.multiple_testing
    many = len(result.per_rm) > 2
    if mt is not None and (many or mt.option != "per_regression"):  # say what the verdicts are corrected over
        console.print(
            f"{len(result.per_rm)} RMs analysed (stats.json per_rm, leaderboard); multiple testing: {mt.detail}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _write_tables(result: AnalysisResult, write: Any | None, csv_dir: Path | None) -> None:
    """Write every table with ``write`` (Parquet) and, with ``csv_dir``, a CSV copy beside it."""
    for name, df in sorted(result.tables().items()):
        if write is not None:
            write(name, df)
        if csv_dir is not None:
            with atomic_path(csv_dir / f"{name}.csv") as tmp:
                df.to_csv(tmp, index=False)


@click.command("analyze")
@click.argument("run_dir", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--pairs",
    "pairs_path",
    type=click.Path(path_type=Path),
    help="Pairs table (pair_id[, context_diverges]).",
)
@click.option(
    "--scores",
    "scores_path",
    type=click.Path(path_type=Path),
    help="Long scores: pair_id, side, rm, reward[, variant].",
)
@click.option(
    "--features",
    "features_path",
    type=click.Path(path_type=Path),
    help="Long features: pair_id, side, feature, value.",
)
@click.option(
    "--rewrites",
    "rewrites_path",
    type=click.Path(path_type=Path),
    help="Rewrites: pair_id, side, transform, status, ...",
)
@click.option("--specs", "specs_path", type=click.Path(path_type=Path), help="JSON list of feature specs.")
@click.option("--roles", default=None, help="Feature roles, e.g. is_harmless=target,sentiment=spoiler.")
@click.option("--pre", default=None, help="Name of the pre-D RM (recorded in the run when given).")
@click.option("--post", default=None, help="Name of the post-D RM (recorded in the run when given).")
@click.option("--baseline", "baselines", multiple=True, metavar="NAME", help="A baseline RM; repeatable.")
@click.option(
    "--compare",
    "compare",
    multiple=True,
    metavar="A:B",
    help="Compare RM A (as pre-D) with RM B (as post-D): regimes, γ, McNemar, θ, imprint B − A; "
    "repeatable; the same as a [[compare]] entry (a = A, b = B). The run's pre:post pair is always in.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Output directory (table mode): stats.json, one table per analysis, and a manifest.json "
    "naming the input tables (path, sha256) and the options.",
)
@click.option("--csv", "write_csv", is_flag=True, help="Also write every table as CSV.")
@click.option("--strict", is_flag=True, help="Exit 2 when any analysis could not be computed.")
@model_options(AnalysisOptions)
@click.option("--quiet", is_flag=True, help="No summary.")
def command(
    run_dir: Path | None,
    pairs_path: Path | None,
    scores_path: Path | None,
    features_path: Path | None,
    rewrites_path: Path | None,
    specs_path: Path | None,
    roles: str | None,
    pre: str | None,
    post: str | None,
    baselines: tuple[str, ...],
    compare: tuple[str, ...],
    out_dir: Path | None,
    write_csv: bool,
    strict: bool,
    quiet: bool,
    **kwargs: Any,
) -> None:
    """Compute agreement, resistance, regimes, γ, reward shift, imprint, misalignment drivers,
    robustness and diagnostics; write stats.json and one table per analysis.

    Either RUN_DIR (reads the run's pairs, scores, features, rewrites tables, and starts from the
    analysis options and RM roles the run recorded: flags override them, and the override is
    recorded) or --pairs/--scores [--features] --post [--pre] --out for your own long tables
    (Parquet, CSV or JSONL). Each analysis succeeds or fails on its own; the ones that could not be
    computed are listed in one warning line (exit 2 with --strict).
    """
    from seal_audit.config import CompareSpec

    overrides = model_overrides(AnalysisOptions, kwargs)
    comparisons = [CompareSpec.parse(c) for c in compare]
    role_map = _parse_roles(roles)
    if run_dir is not None:
        table_mode = {
            "--pairs": pairs_path,
            "--scores": scores_path,
            "--features": features_path,
            "--rewrites": rewrites_path,
            "--specs": specs_path,
            "--out": out_dir,
        }
        given = [flag for flag, value in table_mode.items() if value is not None]
        if given:  # ignored, they would leave the user looking for results that were written elsewhere
            raise ConfigError(
                f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for table mode: give either "
                f"RUN_DIR (results go to RUN_DIR/{STATS}) or --pairs/--scores/... --out DIR, not both"
            )
        from seal_audit.pipeline import analyze_stage

        store = writer_store(run_dir, "analyze")
        with console.status("computing SEAL statistics ..."):
            result = analyze_stage(
                store,
                overrides=overrides,
                pre=pre,
                post=post,
                baselines=baselines or None,
                feature_roles=role_map,
                compare=comparisons or None,
                verb="seal analyze",
            )
        target_dir = Path(run_dir)
        if write_csv:
            _write_tables(result, None, target_dir / ANALYSIS_DIR)
    else:
        if pairs_path is None or scores_path is None or out_dir is None:
            raise ConfigError("without RUN_DIR, --pairs, --scores and --out are required")
        options = AnalysisOptions.model_validate(overrides)
        pairs = read_any_table(pairs_path)
        scores = read_any_table(scores_path)
        features = read_any_table(features_path) if features_path else None
        rewrites = read_any_table(rewrites_path) if rewrites_path else None
        specs: tuple[FeatureSpec, ...] = ()
        if specs_path is not None:
            try:
                specs = _specs_from(json.loads(specs_path.read_text(encoding="utf-8")), str(specs_path))
            except (OSError, ValueError) as exc:
                raise InputError(f"cannot read specs: {exc}", file=str(specs_path)) from exc
        target_dir = out_dir
        if post is None:
            raise ConfigError("the post-D RM is unknown: pass --post NAME")
        if features is not None and not specs:
            specs = infer_feature_specs(features, role_map)
            role_map = {}
        specs = _apply_roles(specs, role_map)
        inputs = AnalysisInputs(
            pairs=pairs,
            scores=scores,
            post=post,
            pre=pre,
            features=features,
            specs=specs,
            rewrites=rewrites,
            baselines=tuple(baselines),
            comparisons=tuple((c.a, c.b) for c in comparisons),
            sources={"pairs": str(pairs_path), "scores": str(scores_path), "features": str(features_path)},
        )
        t0 = time.perf_counter()
        with console.status("computing SEAL statistics ..."):
            result = analyze(inputs, options)
        target_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target_dir / STATS, result.to_json())
        _write_tables(
            result,
            lambda name, df: write_parquet_atomic(target_dir / f"{name}.parquet", df),
            target_dir if write_csv else None,
        )
        from seal_audit.pipeline import record_table_analysis

        record_table_analysis(
            target_dir,
            {
                "pairs": pairs_path,
                "scores": scores_path,
                "features": features_path,
                "rewrites": rewrites_path,
                "specs": specs_path,
            },
            result,
            overrides=overrides,
            seconds=time.perf_counter() - t0,
        )
    in_sample = {n: bool(r.in_sample) for n, r in store.manifest.rms.items()} if run_dir is not None else None
    if not quiet:
        _summary(result, in_sample)
    failed = result.not_computed()
    if failed:
        console.print(
            "[yellow]warning:[/yellow] not computed: "
            + "; ".join(f"{k} ({v.reason})" for k, v in sorted(failed.items())),
            markup=True,
            highlight=False,
            soft_wrap=True,
        )
    click.echo(str(target_dir / STATS))
    from seal_audit.report import headline
    from seal_audit.stats._common import to_jsonable

    summary(  # --json: the same findings as the terminal lines and report.md, and the leaderboard
        stats=str(target_dir / STATS),
        findings=[
            {"key": f.key, "text": f.text, "caveat": f.caveat}
            for f in headline(result, in_sample=in_sample).findings
        ],
        leaderboard=to_jsonable(result.leaderboard),
        not_computed={k: v.reason for k, v in sorted(failed.items())},
        notes=list(result.inputs.notes),
    )
    if failed and strict:
        raise click.exceptions.Exit(2)


__all__ = ["SealError", "command"]
