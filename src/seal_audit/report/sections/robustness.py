"""Alignment robustness: accuracy drop and flip rates per transform, the drift gate, robustness scores."""

from __future__ import annotations

import math

from seal_audit.report import _svg as svg
from seal_audit.report._blocks import (
    Block,
    Cell,
    Details,
    Div,
    Door,
    Heading,
    NotComputed,
    Note,
    Section,
    figure,
    table,
)
from seal_audit.report._data import skip_reason
from seal_audit.report._html import fmt_int, fmt_p
from seal_audit.report._svg import num, pct
from seal_audit.report.sections._common import (
    Ctx,
    ok,
    regression_caption,
    side_forest,
    sig_legend,
    verdict,
)
from seal_audit.stats.regression import Coefficient
from seal_audit.stats.robustness import RobustnessResult

GUIDE = (
    "Does rewording a text (meaning kept) flip the post-D RM's verdict? Accuracy drop and flip rates per "
    "transform, the drift gate, and which feature changes drive new misalignments (robustness score π)."
)


def transform_label(name: str, result: RobustnessResult) -> str:
    """Transform name with the kind of test it is (paraphrase, directed, controlled): paraphrase and
    directed rewrites answer different questions, so every output names which one it shows."""
    return f"{name} ({result.kind})" if result.kind and result.kind != "unknown" else name


def robust_term(term: str) -> tuple[str, str] | None:
    bits = term.split(":")
    if len(bits) != 3 or bits[0] not in ("chosen", "rejected"):
        return None
    side, feat, d = bits
    direction = "weaker" if d == "D+" else "stronger" if d == "D-" else d
    return f"{feat} · {direction}", f"{side} response rewritten"


def _or_ci(c: Coefficient) -> str:
    """The odds-ratio interval that matches the verdict: exp of the adjusted log-odds interval."""
    lo, hi = c.ci_low_adjusted, c.ci_high_adjusted
    if not (math.isfinite(lo) and math.isfinite(hi)):
        olo = c.odds_ratio_ci_low if c.odds_ratio_ci_low is not None else math.nan
        ohi = c.odds_ratio_ci_high if c.odds_ratio_ci_high is not None else math.nan
        lo, hi = math.log(max(olo, 1e-300)), math.log(max(ohi, 1e-300))
    return f"[{num(math.exp(min(lo, 700.0)), 2)}, {num(math.exp(min(hi, 700.0)), 2)}]"


def build(ctx: Ctx) -> Section:
    why = ctx.missing("robustness")
    rob = ok(ctx.result.robustness) if why is None else None
    if rob is None:
        return Section("robustness", "Alignment robustness", GUIDE, (NotComputed(why or ""),))
    parts: list[Block] = []
    bars_drop: list[tuple[str, float, float, float, str]] = []
    bars_flip: list[tuple[str, float, float, float, str]] = []
    acc_rows: list[list[Cell]] = []
    gate_rows: list[list[Cell]] = []
    for t, rr in sorted(rob.items()):
        for ac in rr.accuracy:
            cls = "c-post" if ctx.roles.get(ac.rm) == "post" else "c-pre"
            lab = f"{t} · {ac.rm}"
            bars_drop.append((lab, ac.drop, ac.drop_ci_low, ac.drop_ci_high, cls))
            bars_flip.append((lab, ac.flipped.rate, ac.flipped.ci_low, ac.flipped.ci_high, cls))
            view = {"t": t, "rwrm": ac.rm}
            acc_rows.append(
                [
                    transform_label(t, rr),
                    ctx.rm_label(ac.rm),
                    Door(fmt_int(ac.n), {**view, "rw": "used"}, ac.n),
                    pct(ac.agreement_original.rate),
                    pct(ac.agreement_rewritten.rate),
                    f"{pct(ac.drop)} [{pct(ac.drop_ci_low)}, {pct(ac.drop_ci_high)}]",
                    Door(
                        pct(ac.became_misaligned.rate), {**view, "rw": "misaligned"}, ac.became_misaligned.k
                    ),
                    pct(ac.became_aligned.rate),
                    Door(pct(ac.flipped.rate), {**view, "rw": "flipped"}, ac.flipped.k),
                    fmt_p(ac.mcnemar.p_value),
                ]
            )
        d = rr.drift
        if d is not None:
            gate_rows.append(
                [
                    t,
                    Door(fmt_int(d.n_pairs_with_rewrites), {"t": t, "rw": "has"}, d.n_pairs_with_rewrites),
                    fmt_int(d.n_rows),
                    fmt_int(d.n_ok),
                    fmt_int(d.n_rejected),
                    fmt_int(d.n_failed),
                    fmt_int(d.n_drifted),
                    num(d.mean_similarity, 3),
                    "yes" if d.exclude_drifted else "no",
                    Door(fmt_int(d.n_pairs_excluded), {"t": t, "rw": "excluded"}, d.n_pairs_excluded),
                ]
            )
    parts.append(Heading("Accuracy drop and flip rates per transform"))
    parts.append(
        table(
            [
                "transform",
                "RM",
                "pairs",
                "agreement, original",
                "rewritten",
                f"drop [{ctx.level()} CI]",
                "became misaligned",
                "became aligned",
                "flipped",
                "McNemar p",
            ],
            acc_rows,
            numeric=[2, 3, 4, 5, 6, 7, 8, 9],
        )
    )
    if bars_drop:
        parts.append(
            Div(
                "row",
                (
                    figure(
                        svg.hbars(
                            bars_drop,
                            label="Accuracy drop per transform",
                            x_title="agreement drop (original − rewritten)",
                        ),
                        "Accuracy drop with paired Wald CI.",
                        "half",
                    ),
                    figure(
                        svg.hbars(
                            bars_flip,
                            label="Flip rate per transform",
                            x_title="share of pairs whose verdict flipped",
                        ),
                        "Flip rate (either direction) with exact CI.",
                        "half",
                    ),
                ),
            )
        )
    parts.append(Heading("Drift gate"))
    if gate_rows:
        parts.append(
            table(
                [
                    "transform",
                    "pairs rewritten",
                    "rewrites",
                    "ok",
                    "rejected",
                    "failed",
                    "drifted",
                    "mean similarity",
                    "drifted excluded",
                    "pairs excluded",
                ],
                gate_rows,
                numeric=range(1, 10),
            )
        )
        parts.append(
            Note(
                "Similarity: embedding cosine between original and rewritten text (reference ≈ 0.96); rejected = empty, identical or lost the turn markers."
            )
        )
    else:
        parts.append(NotComputed("no rewrite bookkeeping (rewrites table) in this run"))
    for t, rr in sorted(rob.items()):
        parts.append(Heading(f"Robustness scores π · transform “{transform_label(t, rr)}” · {rr.rm}"))
        lpm = ok(rr.lpm)
        if lpm is None:
            parts.append(NotComputed(str(skip_reason(rr.lpm))))
            continue
        parts.append(sig_legend(ctx))
        parts.append(
            figure(
                side_forest(
                    ctx, lpm, f"Robustness scores, {t}", "Δ P(aligned pair becomes misaligned)", robust_term
                ),
                regression_caption(
                    lpm,
                    f"LPM of Mᵢ = 1[aligned before, misaligned after] on the change indicators (weaker = D+, stronger = D−), {fmt_int(rr.n)} pairs",
                ),
                "wide",
            )
        )
        lg = ok(rr.logit)
        if lg is not None:
            rows: list[list[Cell]] = [
                [c.term, num(c.estimate), num(c.odds_ratio, 2), _or_ci(c), fmt_p(c.p_value), verdict(c)]
                for c in lg.coefficients
                if c.term != "intercept"
            ]
            parts.append(
                Details(
                    "Logit: log-odds and odds ratios (as the paper reads them)",
                    (
                        table(
                            [
                                "term",
                                "log-odds",
                                "odds ratio",
                                "OR CI (adjusted, as the verdict)",
                                "p",
                                "verdict",
                            ],
                            rows,
                            numeric=[1, 2, 3, 4],
                        ),
                    ),
                )
            )
    return Section("robustness", "Alignment robustness", GUIDE, tuple(parts))
