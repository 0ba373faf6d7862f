"""``seal data``: look at a preference dataset and convert it to the canonical pairs table."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.table import Table

from seal_audit._cli._common import console, load_options, load_with_status, source_options
from seal_audit._cli._output import summary
from seal_audit._cli._output import wants_json as json_mode
from seal_audit.data.records import SIDES, PreferencePair
from seal_audit.sources import LoadResult
from seal_audit.sources.formats import reply_text
from seal_audit.store import pairs_to_frame, write_parquet_atomic, write_text_atomic


@click.group("data")
def command() -> None:
    """Inspect and convert preference datasets."""


def _quantiles(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values, dtype=float)
    return {
        "mean": round(float(arr.mean()), 1),
        "p10": round(float(np.percentile(arr, 10)), 1),
        "p50": round(float(np.percentile(arr, 50)), 1),
        "p90": round(float(np.percentile(arr, 90)), 1),
        "max": float(arr.max()),
    }


def describe(pairs: list[PreferencePair]) -> dict[str, Any]:
    """The numbers ``seal data inspect`` prints: counts, divergence, duplicates, groups, lengths."""
    ids = [p.pair_id for p in pairs]
    groups = Counter(p.group_id for p in pairs)
    stats: dict[str, Any] = {
        "pairs": len(pairs),
        "groups": len(groups),
        "largest_group": max(groups.values(), default=0),
        "context_diverges": sum(p.context_diverges for p in pairs),
        "empty_contexts": sum(not p.context.strip() for p in pairs),
        "duplicate_pair_ids": len(ids) - len(set(i.split("~")[0] for i in ids)),
        "empty_replies": {
            s: sum(not reply_text(p.response(s)).strip() for p in pairs) for s in ("chosen", "rejected")
        },
        "system_messages": sum("\n\nSystem: " in p.context for p in pairs),
        "length": {},
    }
    for side in SIDES:
        texts = [p.response(side) for p in pairs]
        stats["length"][side] = {
            "chars": _quantiles([len(t) for t in texts]),
            "words": _quantiles([len(t.split()) for t in texts]),
        }
    stats["chosen_longer_share"] = (
        round(sum(len(p.chosen) > len(p.rejected) for p in pairs) / len(pairs), 4) if pairs else None
    )
    return stats


def _load_counts(result: LoadResult) -> dict[str, Any]:
    """What the loader counted: records read and skipped, empty replies, label orientation."""
    return {
        "format": result.format,
        "layout": result.layout,
        "records_read": result.records_read,
        "records_skipped": result.records_skipped,
        "skipped": len(result.skipped),
        "pairs_skipped": result.pairs_skipped,
        "empty_replies_kept": result.empty_replies,
        "empty_replies_dropped": result.empty_dropped,
        "oriented": result.oriented,
        "ties": result.ties,
        "ties_kept": result.ties_kept,
    }


@command.command("inspect")
@click.argument("files", nargs=-1, required=True)
@source_options
def inspect_cmd(files: tuple[str, ...], **kwargs: Any) -> None:
    """Layout, pair and group counts, diverging contexts, duplicates and length distributions of FILES."""
    options = load_options(kwargs, default_quarantine=Path("quarantine.jsonl"))
    report: dict[str, Any] = {}
    for spec in files:
        result = load_with_status(spec, options)
        info = describe(list(result.pairs))
        info.update(_load_counts(result))
        report[spec] = info
    summary(files=report)  # --json: {"files": {FILE: numbers}, ...}
    if json_mode():
        return
    for spec, info in report.items():
        table = Table(title=f"{spec} ({info['format']})", show_header=True)
        table.add_column("")
        table.add_column("chosen", justify="right")
        table.add_column("rejected", justify="right")
        for unit in ("chars", "words"):
            for q in ("mean", "p10", "p50", "p90", "max"):
                table.add_row(
                    f"{unit} {q}",
                    str(info["length"]["chosen"][unit].get(q, "-")),
                    str(info["length"]["rejected"][unit].get(q, "-")),
                )
        table.add_row(
            "empty replies", str(info["empty_replies"]["chosen"]), str(info["empty_replies"]["rejected"])
        )
        click.echo(f"{spec}: layout {info['layout']} (format {info['format']})")
        click.echo(
            f"  {info['pairs']} pairs in {info['groups']} groups (largest {info['largest_group']}) from "
            f"{info['records_read']} records; {info['records_skipped']} records skipped"
        )
        click.echo(
            f"  {info['empty_contexts']} empty contexts; {info['context_diverges']} with diverging contexts; "
            f"{info['system_messages']} with system messages; {info['duplicate_pair_ids']} duplicate pair ids; "
            f"empty replies kept {info['empty_replies_kept']}, dropped {info['empty_replies_dropped']}; "
            f"chosen longer than rejected in {100 * (info['chosen_longer_share'] or 0):.1f}% of pairs"
        )
        if info["oriented"]:
            o = info["oriented"]
            click.echo(
                f"  label orientation: {o.get('a', 0)} chosen = A, {o.get('b', 0)} chosen = B, "
                f"{info['ties']} ties ({info['ties_kept']} kept)"
            )
        console.print(table)


@command.command("convert")
@click.argument("file")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Output table: .parquet (canonical) or .jsonl.",
)
@source_options
def convert_cmd(file: str, out: Path, **kwargs: Any) -> None:
    """Write FILE as the canonical pairs table (pair_id, context, chosen, rejected, ..., meta)."""
    if out.suffix not in (".parquet", ".jsonl"):
        raise click.BadParameter(f"'{out.name}': write .parquet (canonical) or .jsonl", param_hint="--out")
    options = load_options(kwargs, default_quarantine=out.with_name(out.stem + ".quarantine.jsonl"))
    result = load_with_status(file, options)
    df = pairs_to_frame(list(result.pairs))
    if out.suffix == ".jsonl":
        write_text_atomic(out, df.to_json(orient="records", lines=True, force_ascii=False))
    else:
        write_parquet_atomic(out, df)
    click.echo(f"wrote {len(df)} pairs to {out} ({len(result.skipped)} skipped)")
    summary(out=str(out), pairs=len(df), skipped=len(result.skipped))
