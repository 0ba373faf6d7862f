"""The report's sections, one module each, every one built from the run's typed results.

A section renders only what the run computed. Anything absent or skipped becomes a visible
"not computed: <reason>" line, using the reason stats.json states, because a report that silently
leaves a figure out is read as "nothing to see there". Each ``build(ctx)`` returns a
:class:`~seal_audit.report._blocks.Section` view-model; the templates turn it into HTML.
"""

from __future__ import annotations

from collections.abc import Callable

from seal_audit.report._blocks import Section
from seal_audit.report.sections import (
    calibration,
    exclusions,
    headline,
    imprint,
    leaderboard,
    manifest,
    misalignment,
    resistance,
    robustness,
    watchlist,
)
from seal_audit.report.sections._common import Ctx

BUILDERS: tuple[tuple[str, Callable[[Ctx], Section | None]], ...] = (
    ("headline", headline.build),
    ("leaderboard", leaderboard.build),
    ("imprint", imprint.build),
    ("resistance", resistance.build),
    ("misalignment", misalignment.build),
    ("robustness", robustness.build),
    ("calibration", calibration.build),
    ("watchlist", watchlist.build),
    ("exclusions", exclusions.build),
)
"""Sections in page order (the manifest comes after the explorer, so it is built on its own)."""

__all__ = ["BUILDERS", "Ctx", "Section", "manifest"]
