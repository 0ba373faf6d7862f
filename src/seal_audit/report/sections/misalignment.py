"""What drives misalignment: side features in the LPM / logit of post-D misalignment, θ drivers."""

from __future__ import annotations

from seal_audit.report._blocks import Block, Details, Heading, NotComputed, Note, Section, figure, table
from seal_audit.report._data import skip_reason
from seal_audit.report._html import fmt_int
from seal_audit.report._svg import num
from seal_audit.report.sections._common import (
    Ctx,
    ok,
    rate_text,
    regression_caption,
    side_forest,
    side_term,
    sig_legend,
)

GUIDE = (
    "Which features of the chosen or rejected response make the post-D RM side against the human: "
    "right of zero = makes the RM more likely to rank the rejected response first."
)


def build(ctx: Ctx) -> Section:
    why = ctx.missing("misalignment")
    parts: list[Block] = []
    mis = ok(ctx.result.misalignment) if why is None else None
    if mis is None:
        parts.append(NotComputed(why or ""))
    else:
        parts.append(sig_legend(ctx))
        parts.append(
            figure(
                side_forest(ctx, mis.lpm, "Misalignment drivers (LPM)", "Δ P(misaligned)", side_term),
                regression_caption(
                    mis.lpm,
                    f"Linear probability model of 1 − δ(r₁) for {mis.rm} ({fmt_int(mis.misaligned)} of {fmt_int(mis.n)} pairs misaligned), as in the reference",
                ),
                "wide",
            )
        )
        lg = ok(mis.logit)
        if lg is not None:
            parts.append(
                Details(
                    "Logit of the same model (log-odds)",
                    (
                        figure(
                            side_forest(
                                ctx,
                                lg,
                                "Misalignment drivers (logit)",
                                "Δ log-odds of misalignment",
                                side_term,
                            ),
                            regression_caption(lg, "Logit, robust SEs"),
                            "wide",
                        ),
                    ),
                )
            )
        else:
            parts.append(Note(f"Logit not computed: {skip_reason(mis.logit)}"))
    parts.append(Heading("What drives the reward shift θ"))
    why_t = ctx.missing("theta_regression")
    tr = ok(ctx.result.theta_regression) if why_t is None else None
    if tr is None:
        parts.append(NotComputed(why_t or ""))
    else:
        parts.append(
            figure(
                side_forest(ctx, tr, "Reward shift drivers", "Δ θ (degrees)", side_term),
                regression_caption(tr, "OLS of θᵢ on the side features"),
                "wide",
            )
        )
    rbf = ok(ctx.result.resistance_by_feature) if ctx.missing("resistance_by_feature") is None else None
    if rbf is not None:
        rows = [
            [r.feature, r.side, rate_text(r.present), rate_text(r.absent), num(100 * r.difference, 1) + " pp"]
            for r in rbf
        ]
        parts.append(
            Details(
                "Resistance with and without each binary feature",
                (
                    table(
                        ["feature", "side", "misaligned when present", "when absent", "difference"],
                        rows,
                        numeric=[4],
                    ),
                ),
            )
        )
    return Section("misalignment", "What drives misalignment", GUIDE, tuple(parts))
