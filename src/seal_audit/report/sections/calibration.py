"""Calibration: is σ(r(t_c) − r(t_r)) a trustworthy probability? Reliability diagram and scores.

The diagram is the pair-once (folded) form of ``stats.reliability``: each pair once, at the RM's
probability for the response it ranks higher, so that a bin is a set of pairs and opens exactly
those pairs in the explorer. Brier, log loss and ECE come from stats.json (the symmetric table; its
ECE equals the folded one at the same bin width)."""

from __future__ import annotations

import numpy as np

from seal_audit.report import _svg as svg
from seal_audit.report._blocks import Details, Div, Door, NotComputed, Section, figure, table
from seal_audit.report._explorer import BIN_CODES
from seal_audit.report._html import fmt_int
from seal_audit.report._svg import num, pct
from seal_audit.report.sections._common import Ctx
from seal_audit.stats.reliability import WinnerReliability, winner_reliability

GUIDE = (
    "Is σ(r(t_c) − r(t_r)) a trustworthy probability that the human prefers t_c? Each pair is drawn "
    "once, at the probability the RM gives to the response it ranks higher: on the diagonal = "
    "calibrated. Lower Brier and ECE are better."
)
CAPTION = (
    "Each pair counted once: x = σ(|r(t_c) − r(t_r)|), the RM's probability for its own pick; y = share "
    "of the bin where its pick is the human's chosen response (a tie counts as a miss). Point area ∝ "
    "pairs in the bin; a point opens exactly those pairs. This is the symmetric diagram (each pair at "
    "p and 1 − p) folded at 0.5, so the ECE in the table is the same."
)


def _folded(ctx: Ctx, rm: str, n_bins: int) -> WinnerReliability | None:
    got = ctx.pair_rewards(rm)
    if got is None:
        return None
    _, c, r = got
    return winner_reliability(rm, np.column_stack([c, r]), n_bins)


def build(ctx: Ctx) -> Section:
    why = ctx.missing("calibration")
    cal = ctx.result.calibration if why is None else {}
    if why or not cal:
        return Section("calibration", "Calibration", GUIDE, (NotComputed(why or "no RM to calibrate"),))
    n_bins = ctx.result.options.calibration_bins
    codes = ctx.payload.get("cal", {})
    series = []
    rows = []
    bin_rows = []
    for rm, c in sorted(cal.items(), key=lambda kv: (kv[0] != ctx.post, kv[0])):
        cls = (
            "c-post" if ctx.roles.get(rm) == "post" else "c-pre" if ctx.roles.get(rm) == "pre" else "c-other"
        )
        folded = _folded(ctx, rm, n_bins)
        code = codes.get("rms", {}).get(rm)
        pts: list[tuple[float, float, int, str | None]] = []
        for b in folded.bins if folded is not None else ():
            door = None
            if code is not None:
                # the door's count is the explorer's own: the pairs whose bin code is this bin
                n_door = code.count(BIN_CODES[b.bin])
                door = Door(f"{n_door:,}", {"cal": f"{rm}:{b.bin}"}, n_door)
            pts.append((b.mean_predicted, b.observed, b.n, door.href() if door else None))
            if b.n:
                bin_rows.append(
                    [
                        ctx.rm_label(rm),
                        f"{b.lower:.2f}–{b.upper:.2f}",
                        door if door is not None else fmt_int(b.n),
                        num(b.mean_predicted, 3),
                        num(b.observed, 3),
                    ]
                )
        series.append((ctx.rm_label(rm), cls, pts))
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
            figure(svg.reliability(series, label="Reliability diagram, each pair once"), CAPTION, "half"),
            Div(
                "half",
                (
                    table(
                        ["RM", "pairs", "Brier", "log loss", "ECE", "mean P(chosen)"],
                        rows,
                        numeric=[1, 2, 3, 4, 5],
                    ),
                    Details(
                        "Bins: pairs, mean P(its pick wins), share its pick is chosen",
                        (
                            table(
                                ["RM", "P(its pick wins)", "pairs", "mean P", "its pick chosen"],
                                bin_rows,
                                numeric=[2, 3, 4],
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )
    return Section("calibration", "Calibration", GUIDE, (body,))
