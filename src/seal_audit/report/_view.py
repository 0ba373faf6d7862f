"""The headline view-model: the few findings every surface leads with, built once from typed results.

The terminal summary of ``seal analyze`` / ``seal run``, the top of report.md and the findings strip
of report.html all render this one record, so they always say the same thing, for any RM names: roles
come from the analysis inputs (which come from the manifest), never from a name.
"""

from __future__ import annotations

import dataclasses
import math

from seal_audit.stats import REGIMES, AnalysisResult, RateEstimate, RegimeResult, RegressionResult
from seal_audit.stats.imprint import ImprintResult
from seal_audit.stats.robustness import RobustnessResult


@dataclasses.dataclass(frozen=True)
class Finding:
    """One line of the headline: what it is about, the sentence, and where its pairs are."""

    key: str
    """Which SEAL question and measure (``agreement:NAME``, ``resistance``, ``imprint``, ...)."""
    text: str
    caveat: str = ""
    """What the reader must know to read the number right (in-sample, underpowered, ...)."""


@dataclasses.dataclass(frozen=True)
class Headline:
    findings: tuple[Finding, ...]
    not_computed: tuple[str, ...]
    """``key: reason`` of every analysis that could not be computed."""

    def lines(self) -> list[str]:
        out = [f.text + (f" ({f.caveat})" if f.caveat else "") for f in self.findings]
        if self.not_computed:
            out.append("not computed: " + "; ".join(self.not_computed))
        return out


def _pct(r: RateEstimate) -> str:
    return f"{100 * r.rate:.1f}% [{100 * r.ci_low:.1f}, {100 * r.ci_high:.1f}]"


def _adjusted(lo: float, hi: float, raw_lo: float, raw_hi: float) -> tuple[float, float]:
    """The adjusted interval; the raw one only where a stats.json predates adjusted intervals."""
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else (raw_lo, raw_hi)


def headline(result: AnalysisResult, in_sample: dict[str, bool] | None = None, top: int = 3) -> Headline:
    """The findings strip. ``in_sample`` marks RMs trained on D here (their agreement on D is a
    training accuracy, and their resistance a lower bound)."""
    inp = result.inputs
    in_sample = in_sample or {}
    level = f"{100 * (1 - result.options.alpha):g}% CI"
    out: list[Finding] = []
    roles = [(inp.post, "post-D")] + ([(inp.pre, "pre-D")] if inp.pre else [])
    roles += [(b, "baseline") for b in inp.baselines]
    roles += [(rm, "extra") for rm in inp.rms if rm not in {inp.post, inp.pre, *inp.baselines}]
    for rm, label in roles:
        ag = result.agreement.get(rm)
        if ag is None:
            continue
        cav = "in-sample: this RM was trained on these pairs" if in_sample.get(rm) else ""
        out.append(
            Finding(f"agreement:{rm}", f"agreement of {label} RM {rm!r}: {_pct(ag.agreement)}, {level}", cav)
        )
    if isinstance(result.resistance, RateEstimate):
        out.append(
            Finding(
                "resistance",
                f"alignment resistance (post-D RM {inp.post!r} disagrees with the human label): "
                f"{_pct(result.resistance)}",
                "in-sample: a lower bound on out-of-sample resistance" if in_sample.get(inp.post) else "",
            )
        )
    if isinstance(result.regimes, RegimeResult):
        # The method's order, not the order of the keys: stats.json is written with sorted keys, so a
        # read-back result would otherwise list the regimes alphabetically, unlike a fresh one.
        got = result.regimes.shares
        order = [k for k in REGIMES if k in got] + sorted(k for k in got if k not in REGIMES)
        shares = ", ".join(f"{k.replace('_', ' ')} {100 * got[k].rate:.1f}%" for k in order)
        out.append(Finding("regimes", f"regimes (pre-D → post-D): {shares}"))
    if isinstance(result.imprint, dict):
        est = "pooled" if "pooled" in result.imprint else next(iter(result.imprint), None)
        post = result.imprint.get(est, {}).get("post") if est else None
        if isinstance(post, ImprintResult):
            mt = result.multiple_testing
            family = f", family {mt.family}" if mt is not None else ""
            sig = sorted(
                (c for c in post.regression.coefficients if c.term != "intercept" and c.significant),
                key=lambda c: -abs(c.estimate),
            )[:top]
            if sig:
                # The interval that matches the verdict (simultaneous / step-down), as the tables show.
                items = ", ".join(
                    f"{c.term} {c.estimate:+.3g} [{lo:+.3g}, {hi:+.3g}]"
                    for c in sig
                    for lo, hi in [_adjusted(c.ci_low_adjusted, c.ci_high_adjusted, c.ci_low, c.ci_high)]
                )
                out.append(
                    Finding(
                        "imprint",
                        f"strongest post-D imprints ({est}, {post.regression.correction}-significant{family}; "
                        f"adjusted intervals): "
                        f"{items}",
                    )
                )
            else:
                weak = [c.term for c in post.regression.coefficients if c.verdict == "underpowered"]
                out.append(
                    Finding(
                        "imprint",
                        f"no post-D imprint is significant after {post.regression.correction}{family}",
                        f"underpowered: {len(weak)} of the features could hide an effect of interest "
                        f"({', '.join(weak[:5])}{', …' if len(weak) > 5 else ''})"
                        if weak
                        else "",
                    )
                )
    if isinstance(result.robustness, dict) and result.robustness:
        worst: tuple[float, str, RobustnessResult] | None = None
        for name, rob in result.robustness.items():
            acc = next((a for a in rob.accuracy if a.rm == rob.rm), None)
            if (
                acc is not None
                and math.isfinite(acc.flipped.rate)
                and (worst is None or acc.flipped.rate > worst[0])
            ):
                worst = (acc.flipped.rate, name, rob)
        if worst is not None and worst[0] == 0:
            out.append(
                Finding(
                    "robustness",
                    f"no rewrite flipped a post-D preference ({len(result.robustness)} transform(s))",
                )
            )
        elif worst is not None:
            _rate, name, rob = worst
            acc = next(a for a in rob.accuracy if a.rm == rob.rm)
            out.append(
                Finding(
                    "robustness",
                    f"most fragile rewrite: {name} ({rob.kind}) flips the post-D preference of "
                    f"{_pct(acc.flipped)} of {acc.n} pairs",
                    f"inconclusive: {'; '.join(rob.reasons)}" if rob.status == "inconclusive" else "",
                )
            )
    if result.caveats is not None:
        out += [Finding("caveat", f"caveat: {note}") for note in result.caveats.notes]
    failed = tuple(f"{k}: {v.reason}" for k, v in sorted(result.not_computed().items()))
    return Headline(tuple(out), failed)


__all__ = ["Finding", "Headline", "RegressionResult", "headline"]
