"""The multiple-testing family: per regression (the default) or across RMs (issue 20).

Per regression, Bonferroni/Holm run over the non-intercept terms of one fit, so adding an RM to an
audit never changes another RM's verdicts. Across RMs, they run over every RM's terms of the same
regression kind at once (the pooled imprints of all RMs, the misalignment LPMs of all RMs, the
robustness logits of all RMs for one transform, ...): the family a reader ranking RMs in the
leaderboard implicitly tests, at the price of verdicts that depend on how many RMs are audited.

The family is applied after the fits: a term's raw p-value, SE and degrees of freedom do not depend
on the family, only its corrected p-values, ``significant``, adjusted interval, MDE level and
verdict do, and those are redone here from the union of the family's p-values with the same
functions the per-regression fit uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from seal_audit.stats.inference import adjust_pvalues
from seal_audit.stats.power import with_power
from seal_audit.stats.regression import (
    INTERCEPT,
    RegressionResult,
    adjusted_label,
    adjusted_levels,
    crit_values,
)

PER_REGRESSION = "per_regression"
ACROSS_RMS = "across_rms"


def refamily(regs: Sequence[RegressionResult], scope: str) -> list[RegressionResult]:
    """The fits with their corrections redone over the union of their non-intercept terms.

    ``scope`` names the family in each fit's ``adjusted_ci`` (e.g. " of the 10 RMs' pooled imprint
    regressions"). With one fit the result equals the per-regression one."""
    if not regs:
        return []
    correction, alpha = regs[0].correction, regs[0].alpha
    if any(r.correction != correction or r.alpha != alpha for r in regs):
        raise ValueError("refamily: the fits of one family must share correction and alpha")
    where = [(i, j) for i, r in enumerate(regs) for j, c in enumerate(r.coefficients) if c.term != INTERCEPT]
    p = np.array([regs[i].coefficients[j].p_value for i, j in where], dtype=np.float64)
    family = np.ones(p.size, dtype=bool)
    p_bonf = adjust_pvalues(p, "bonferroni")
    p_holm = adjust_pvalues(p, "holm")
    chosen = p_bonf if correction == "bonferroni" else p_holm
    levels = adjusted_levels(p, family, correction, alpha)
    m = int(np.isfinite(p).sum())
    label = adjusted_label(correction, alpha, m, scope)
    coefs = [list(r.coefficients) for r in regs]
    for t, (i, j) in enumerate(where):
        c = coefs[i][j]
        if np.isfinite(levels[t]):
            df = None if c.df is None else np.array([c.df], dtype=np.float64)
            crit = float(crit_values(np.array([levels[t]]), df)[0])
            lo, hi = c.estimate - crit * c.se, c.estimate + crit * c.se
        else:
            lo = hi = float("nan")
        coefs[i][j] = dataclasses.replace(
            c,
            p_bonferroni=float(p_bonf[t]),
            p_holm=float(p_holm[t]),
            significant=bool(np.isfinite(chosen[t]) and chosen[t] < alpha),
            ci_low_adjusted=float(lo),
            ci_high_adjusted=float(hi),
        )
    out = []
    for r, cs in zip(regs, coefs, strict=True):
        new = dataclasses.replace(r, coefficients=tuple(cs), family_size=m, adjusted_ci=label)
        if r.power is not None:
            powered = with_power(new, r.effect_of_interest, r.power, r.term_effects)
            assert isinstance(powered, RegressionResult)
            new = powered
        out.append(new)
    return out
