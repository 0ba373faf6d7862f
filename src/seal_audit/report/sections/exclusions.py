"""Per-analysis exclusions: shown only when some analysis left pairs out."""

from __future__ import annotations

from seal_audit.report._blocks import Section, table
from seal_audit.report._html import fmt_int
from seal_audit.report.sections._common import Ctx

GUIDE = "Pairs an analysis had to leave out (missing rewards or feature values), by analysis — never silently; ids are in analysis/exclusions.parquet."


def build(ctx: Ctx) -> Section | None:
    if ctx.data.result is None or "exclusions" in ctx.data.unreadable:
        return None
    rows = [
        [k, fmt_int(v.n_used), fmt_int(v.n_excluded), v.reason]
        for k, v in sorted(ctx.result.exclusions.items())
        if v.n_excluded
    ]
    if not rows:
        return None
    return Section(
        "exclusions",
        "Exclusions",
        GUIDE,
        (table(["analysis", "pairs used", "pairs excluded", "reason"], rows, numeric=[1, 2]),),
    )
