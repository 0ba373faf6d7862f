"""``seal analyze``: every SEAL statistic from a run directory or from user-supplied long tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from seal_audit._cli._writer import writer_store
from seal_audit.data.errors import ConfigError, InputError, SealError
from seal_audit.data.records import FeatureSpec
from seal_audit.stats import (
    AnalysisInputs,
    AnalysisOptions,
    AnalysisResult,
    RateEstimate,
    RegimeResult,
    RegressionResult,
    analyze,
    infer_feature_specs,
)
from seal_audit.store import atomic_path, read_any_table, write_parquet_atomic, write_text_atomic

console = Console(stderr=True)


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


def _summary(result: AnalysisResult) -> None:
    t = Table(title="SEAL: agreement with the human label", show_edge=False)
    for col in ("RM", "role", "agreement", "95% CI (exact)", "ties", "n"):
        t.add_column(col, justify="right" if col not in ("RM", "role") else "left")
    for ag in result.agreement.values():
        role = (
            "post-D"
            if ag.rm == result.inputs.post
            else "pre-D"
            if ag.rm == result.inputs.pre
            else ("baseline" if ag.is_baseline else "")
        )
        r = ag.agreement
        t.add_row(
            ag.rm, role, f"{r.rate:.1%}", f"{r.ci_low:.1%} – {r.ci_high:.1%}", str(ag.n_ties), str(ag.n)
        )
    console.print(t)
    res = result.resistance
    if isinstance(res, RateEstimate):
        console.print(
            f"alignment resistance: [bold]{res.rate:.1%}[/bold] (95% CI {res.ci_low:.1%} – {res.ci_high:.1%})"
        )
    reg = result.regimes
    if isinstance(reg, RegimeResult):
        shares = ", ".join(f"{k.replace('_', ' ')} {v.rate:.1%}" for k, v in reg.shares.items())
        console.print(f"regimes: {shares}")
    imp = result.imprint
    if isinstance(imp, dict):
        est = "pooled" if "pooled" in imp else next(iter(imp))
        post = imp[est].get("post")
        reg_post = getattr(post, "regression", None)
        if isinstance(reg_post, RegressionResult):
            top = sorted(
                (c for c in reg_post.coefficients if c.term != "intercept"), key=lambda c: -abs(c.estimate)
            )[:5]
            items = ", ".join(f"{c.term} {c.estimate:+.2f}{'*' if c.significant else ''}" for c in top)
            console.print(
                f"top post-D imprints ({est}; * = significant after {reg_post.correction}): {items}"
            )
    for e in result.inputs.notes:
        console.print(f"[yellow]note:[/yellow] {e}")


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
@click.option("--pre", default=None, help="Name of the pre-D RM in the scores.")
@click.option("--post", default=None, help="Name of the post-D RM in the scores.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Output directory (table mode).",
)
@click.option("--csv", "write_csv", is_flag=True, help="Also write every table as CSV.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option(
    "--bootstrap", "n_bootstrap", type=int, default=1000, show_default=True, help="Bootstrap draws (0 = off)."
)
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option(
    "--correction", type=click.Choice(["bonferroni", "holm"]), default="bonferroni", show_default=True
)
@click.option(
    "--estimator",
    "estimators",
    type=click.Choice(["pooled", "fe"]),
    multiple=True,
    help="Imprint estimator(s); default both.",
)
@click.option(
    "--gamma-features",
    default="is_harmless,is_helpful",
    show_default=True,
    help="Features of γ, in priority order.",
)
@click.option("--keep-drifted", is_flag=True, help="Keep drifted rewrites in the robustness analysis.")
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
    out_dir: Path | None,
    write_csv: bool,
    seed: int,
    n_bootstrap: int,
    alpha: float,
    correction: str,
    estimators: tuple[str, ...],
    gamma_features: str,
    keep_drifted: bool,
    quiet: bool,
) -> None:
    """Compute agreement, resistance, regimes, γ, reward shift, imprint, misalignment drivers,
    robustness and diagnostics; write stats.json and one table per analysis.

    Either RUN_DIR (reads the run's pairs, scores, features, rewrites tables) or --pairs/--scores
    [--features] --post [--pre] --out for your own long tables (Parquet, CSV or JSONL).
    """
    options = AnalysisOptions(
        seed=seed,
        n_bootstrap=n_bootstrap,
        alpha=alpha,
        correction=correction,  # type: ignore[arg-type]
        estimators=tuple(estimators) or ("pooled", "fe"),  # type: ignore[arg-type]
        gamma_features=tuple(f.strip() for f in gamma_features.split(",") if f.strip()),
        exclude_drifted=not keep_drifted,
    )
    role_map = _parse_roles(roles)
    if run_dir is not None:
        if pairs_path or scores_path or features_path:
            raise ConfigError("give either RUN_DIR or --pairs/--scores/--features, not both")
        from seal_audit.pipeline import analyze_stage

        store = writer_store(run_dir, "analyze")
        with console.status("computing SEAL statistics ..."):
            result = analyze_stage(store, options, pre=pre, post=post, feature_roles=role_map)
        target_dir = Path(run_dir)
        if write_csv:
            _write_tables(result, None, target_dir / "analysis")
    else:
        if pairs_path is None or scores_path is None or out_dir is None:
            raise ConfigError("without RUN_DIR, --pairs, --scores and --out are required")
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
            pairs=pairs, scores=scores, post=post, pre=pre, features=features, specs=specs, rewrites=rewrites
        )
        with console.status("computing SEAL statistics ..."):
            result = analyze(inputs, options)
        write_text_atomic(target_dir / "stats.json", result.to_json())
        _write_tables(
            result,
            lambda name, df: write_parquet_atomic(target_dir / f"{name}.parquet", df),
            target_dir if write_csv else None,
        )
    if not quiet:
        _summary(result)
    click.echo(str(target_dir / "stats.json"))


__all__ = ["SealError", "command"]
