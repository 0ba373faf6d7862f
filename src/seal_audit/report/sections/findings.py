"""Findings first: the headline view-model (``report/_view.py``) as the strip that opens the page,
the same sentences report.md and the terminal lead with."""

from __future__ import annotations

from seal_audit.report._blocks import FindingItem, Findings, Section
from seal_audit.report._view import Headline

GUIDE = (
    "The three SEAL questions in a few lines: what the RMs agree with, where they resist, "
    "what they imprint and which rewrite hurts most."
)


def build(head: Headline) -> Section:
    items = [FindingItem(f.text, f"k-{f.key.split(':')[0]}", f.caveat) for f in head.findings]
    items += [FindingItem(f"not computed: {x}", "not-computed") for x in head.not_computed]
    return Section("findings", "Findings", GUIDE, (Findings(tuple(items)),))
