"""Findings first: the headline view-model (``report/_view.py``) as the strip that opens the page,
the same sentences report.md and the terminal lead with, each with a link to the pairs behind it."""

from __future__ import annotations

import math

from seal_audit.report._blocks import Door, FindingItem, Findings, Section
from seal_audit.report._view import Headline
from seal_audit.report.sections._common import Ctx, differs_door, ok
from seal_audit.stats.imprint import ImprintResult

GUIDE = (
    "The three SEAL questions in a few lines: what the RMs agree with, where they resist, "
    "what they imprint and which rewrite hurts most. Each link opens the pairs behind the number."
)


def _door(ctx: Ctx, key: str) -> Door | None:
    """The pairs a finding is about, keyed as ``_view.Finding.key`` (never parsed from its text)."""
    res = ctx.data.result
    if res is None:
        return None
    what, _, rm = key.partition(":")
    agree = ctx.payload.get("agree", {})
    if what == "agreement" and rm in res.agreement and rm in agree:
        a = res.agreement[rm].agreement
        return Door(f"the {a.n - a.k:,} pairs it gets wrong", {"agree": f"{rm}:0"}, a.n - a.k)
    if what == "resistance":
        r = ok(res.resistance)
        if r is not None and res.inputs.post in agree:
            return Door(f"the {r.k:,} pairs", {"agree": f"{res.inputs.post}:0"}, r.k)
    if what == "regimes":
        reg = ok(res.regimes)
        if reg is not None:
            k = reg.counts.get("resisted_alignment", 0)
            return Door(f"the {k:,} pairs that resisted", {"regime": "resisted_alignment"}, k)
    if what == "imprint":
        imp = ok(res.imprint)
        est = ("pooled" if "pooled" in imp else next(iter(imp), None)) if imp else None
        post = imp.get(est, {}).get("post") if imp and est else None
        if isinstance(post, ImprintResult):
            sig = sorted(
                (c for c in post.regression.coefficients if c.term != "intercept" and c.significant),
                key=lambda c: -abs(c.estimate),
            )
            if sig:
                d = differs_door(ctx, sig[0].term)
                if d is not None:
                    return Door(f"{d.text} where {sig[0].term} differs", d.filters, d.n)
    if what == "robustness":
        rob = ok(res.robustness)
        worst: tuple[float, str, str, int] | None = None
        for name, rr in (rob or {}).items():
            acc = next((a for a in rr.accuracy if a.rm == rr.rm), None)
            if (
                acc is not None
                and math.isfinite(acc.flipped.rate)
                and (worst is None or acc.flipped.rate > worst[0])
            ):
                worst = (acc.flipped.rate, name, rr.rm, acc.flipped.k)
        if worst is not None:
            _, name, rm_, k = worst
            return Door(f"the {k:,} flipped pairs", {"t": name, "rw": "flipped", "rwrm": rm_}, k)
    return None


def build(head: Headline, ctx: Ctx) -> Section:
    items = [
        FindingItem(f.text, f"k-{f.key.split(':')[0]}", f.caveat, _door(ctx, f.key)) for f in head.findings
    ]
    items += [FindingItem(f"not computed: {x}", "not-computed") for x in head.not_computed]
    return Section("findings", "Findings", GUIDE, (Findings(tuple(items)),))
