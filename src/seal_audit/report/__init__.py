"""REPORT stage: one self-contained ``report.html`` (figures + pair explorer) and ``report.md``.

Reads only the run directory (stats.json, analysis tables, pairs, scores, features, manifest)
through the store, so a report can be rebuilt from any run directory on any machine. stats.json is
read back into the typed result records of ``seal_audit.stats`` (its schema), never recomputed.
"""

from seal_audit.report._build import HTML_NAME, MD_NAME, ReportPaths, build_report, render_html
from seal_audit.report._explorer import DEFAULT_TEXT_LIMIT, embed_json
from seal_audit.report._view import Finding, Headline, headline

__all__ = [
    "DEFAULT_TEXT_LIMIT",
    "HTML_NAME",
    "MD_NAME",
    "Finding",
    "Headline",
    "ReportPaths",
    "build_report",
    "embed_json",
    "headline",
    "render_html",
]
