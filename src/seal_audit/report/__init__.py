"""REPORT stage: one self-contained ``report.html`` (figures + pair explorer) and ``report.md``.

Reads only the run directory (stats.json, analysis tables, pairs, scores, features, manifest)
through the store, never the statistics code, so a report can be rebuilt from any run directory
on any machine.
"""

from seal_audit.report._build import HTML_NAME, MD_NAME, ReportPaths, build_report, render_html
from seal_audit.report._explorer import DEFAULT_TEXT_LIMIT, embed_json

__all__ = [
    "DEFAULT_TEXT_LIMIT",
    "HTML_NAME",
    "MD_NAME",
    "ReportPaths",
    "build_report",
    "embed_json",
    "render_html",
]
