"""Calibration: is σ(r(t_c) − r(t_r)) a trustworthy probability? Reliability diagram and scores."""

from __future__ import annotations

from seal_audit.report import _svg as svg
from seal_audit.report._blocks import Div, NotComputed, Section, figure, table
from seal_audit.report._html import fmt_int
from seal_audit.report._svg import num, pct
from seal_audit.report.sections._common import Ctx

GUIDE = "Is σ(r(t_c) − r(t_r)) a trustworthy probability that the human prefers t_c? On the diagonal = calibrated; lower Brier and ECE are better."


def build(ctx: Ctx) -> Section:
    why = ctx.missing("calibration")
    cal = ctx.result.calibration if why is None else {}
    if why or not cal:
        return Section("calibration", "Calibration", GUIDE, (NotComputed(why or "no RM to calibrate"),))
    series = []
    rows = []
    for rm, c in sorted(cal.items(), key=lambda kv: (kv[0] != ctx.post, kv[0])):
        cls = (
            "c-post" if ctx.roles.get(rm) == "post" else "c-pre" if ctx.roles.get(rm) == "pre" else "c-other"
        )
        series.append((ctx.rm_label(rm), cls, [(b.mean_predicted, b.observed, b.n) for b in c.bins]))
        rows.append(
            [
                ctx.rm_label(rm),
                fmt_int(c.n),
                num(c.brier, 4),
                num(c.log_loss, 4),
                num(c.ece, 4),
                pct(c.mean_probability),
            ]
        )
    body = Div(
        "row",
        (
            figure(
                svg.reliability(series, label="Reliability diagram"),
                "Each pair counted in both orientations (p and 1 − p); point area ∝ pairs in the bin.",
                "half",
            ),
            Div(
                "half",
                (
                    table(
                        ["RM", "pairs", "Brier", "log loss", "ECE", "mean P(chosen)"],
                        rows,
                        numeric=[1, 2, 3, 4, 5],
                    ),
                ),
            ),
        ),
    )
    return Section("calibration", "Calibration", GUIDE, (body,))
