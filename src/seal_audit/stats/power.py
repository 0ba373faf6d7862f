"""Power: what an audit could have detected, so that a null result is not read as 'no effect'.

A coefficient that is not significant says nothing unless the audit could have seen an effect of a
size that matters. Each imprint, misalignment and robustness coefficient therefore carries its
minimum detectable effect (MDE): the |β| that a two-sided test at the level deciding 'significant'
(α/m for the m corrected terms) detects with probability ``power``,

    MDE = (q(1 − level/2) + q(power)) × SE,

q the normal quantile (t with the coefficient's df where the fit has one, e.g. CR2). It is then
flagged ``underpowered`` when not significant and MDE > the stated effect of interest. For Holm
the level α/m is that of Holm's first step, so the MDE is conservative there.

``pairs_needed`` answers the planning question behind ``seal simulate --power``: how many pairs
detect an imprint β of a binary feature with prevalence p, from the closed-form SE of the pair-FE or
pooled estimator (independent sides, the feature uncorrelated with the others; multiply by the VIF
otherwise), and ``simulated_power`` checks that answer by running the real estimator on planted data.
Both assume independent pairs: with pairs that share a prompt (groups, clustered by
``AnalysisOptions.cluster``) a pair carries less information, so read ``n_pairs`` as the number of
independent pairs needed (for m pairs per group with intra-group correlation ρ of the imprint's
scores, multiply by the design effect 1 + (m − 1)ρ, at most m).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Literal

import numpy as np
from scipy import stats as sps

from seal_audit.config import AnalysisOptions
from seal_audit.data.errors import ConfigError
from seal_audit.stats._common import FloatArray, Skipped
from seal_audit.stats.regression import INTERCEPT, ClusterCov, RegressionResult

_F = AnalysisOptions.model_fields
POWER: float = _F["power"].default
"""Power at which every MDE is stated (the default of ``AnalysisOptions.power``)."""
IMPRINT_EFFECT_OF_INTEREST: float = _F["effect_of_interest_imprint"].default
"""Imprint effect of interest, in reward (Bradley–Terry logit) units: a 0.5 margin moves a 50 %
preference to 62 %; the reference's post-D imprints are 0.6–2.1."""
MISALIGNMENT_EFFECT_OF_INTEREST: float = _F["effect_of_interest_misalignment"].default
"""Misalignment LPM effect of interest: 5 percentage points of P(post-D RM misaligned)."""
ROBUSTNESS_EFFECT_OF_INTEREST: float = _F["effect_of_interest_robustness"].default
"""Robustness LPM effect of interest: 10 points of P(aligned pair flips), the size of the
reference's two significant scores (+0.117, +0.098)."""
LOGIT_EFFECT_OF_INTEREST = math.log(2.0)
"""Logit companions: an odds ratio of 2 (log-odds units)."""

Estimator = Literal["fe", "pooled"]


def mde(se: float, level: float, power: float = POWER, df: float | None = None) -> float:
    """(q(1 − level/2) + q(power)) × se; t quantiles when ``df`` is given. NaN when se is."""
    if not (math.isfinite(se) and 0 < level < 1):
        return float("nan")
    if df is not None and math.isfinite(df) and df > 0:
        return float(_multiplier(level, power, df) * se)
    return float(_multiplier(level, power, None) * se)


@functools.lru_cache(maxsize=4096)
def _multiplier(level: float, power: float, df: float | None) -> np.float64:
    """q(1 − level/2) + q(power), cached: one regression asks the same quantiles for every
    coefficient, and each scipy.stats quantile call costs ~1 ms (most of the MDE time with many RMs)."""
    if df is not None:
        return np.float64(sps.t.isf(level / 2, df) + sps.t.ppf(power, df))
    return np.float64(sps.norm.isf(level / 2) + sps.norm.ppf(power))


def per_sd_effects(
    effect_of_interest: float, x: FloatArray, terms: Sequence[str], numeric: Collection[str]
) -> dict[str, float]:
    """For numeric regressors the effect of interest is per SD of the regressor (a reward change
    of ``effect_of_interest`` for a one-SD change), i.e. effect / SD in per-unit terms."""
    out: dict[str, float] = {}
    for j, t in enumerate(terms):
        if t in numeric:
            sd = float(np.std(x[:, j]))
            if sd > 0:
                out[t] = effect_of_interest / sd
    return out


def with_power(
    reg: RegressionResult | Skipped,
    effect_of_interest: float | None,
    power: float = POWER,
    term_effects: Mapping[str, float] | None = None,
) -> RegressionResult | Skipped:
    """The fit with ``mde`` and ``verdict`` on every coefficient (Skipped passes through).

    ``term_effects`` overrides the effect of interest for some terms (numeric regressors: see
    ``per_sd_effects``). The intercept gets an MDE at level α and no verdict (it is not a tested
    imprint)."""
    if isinstance(reg, Skipped):
        return reg
    m = max(reg.family_size, 1)
    level = reg.alpha / m
    coefs = []
    for c in reg.coefficients:
        if c.term == INTERCEPT:
            coefs.append(dataclasses.replace(c, mde=mde(c.se, reg.alpha, power, c.df), verdict=None))
            continue
        d = mde(c.se, level, power, c.df)
        effect = (term_effects or {}).get(c.term, effect_of_interest)
        verdict: str | None
        if c.significant:
            verdict = "significant"
        elif effect is None or not math.isfinite(d):
            verdict = None
        else:
            verdict = "underpowered" if d > effect else "not significant"
        coefs.append(dataclasses.replace(c, mde=d, verdict=verdict))
    return dataclasses.replace(
        reg,
        coefficients=tuple(coefs),
        power=power,
        mde_alpha=level,
        effect_of_interest=effect_of_interest,
        term_effects=dict(term_effects or {}),
    )


@dataclasses.dataclass(frozen=True)
class PowerPlan:
    """How many pairs an imprint audit needs to detect β for a binary feature (``pairs_needed``)."""

    beta: float
    prevalence: float
    """P(feature = 1) on the chosen text."""
    prevalence_rejected: float
    estimator: str
    residual_sd: float
    """SD σ of one text's reward around the features (within a pair)."""
    pair_sd: float
    """SD τ of the reward shift shared by a pair's two texts (cancels in the pair-FE estimator)."""
    alpha: float
    n_tests: int
    """m: terms in the corrected family; the test is at level α/m (Bonferroni)."""
    level: float
    power: float
    vif: float
    n_pairs: int
    """Pairs needed (rounded up)."""
    se_at_n: float
    """The SE of β at that N (closed form)."""
    formula: str
    simulated_power: float | None = None
    """Share of ``simulated_reps`` planted datasets at N where the real estimator detected β."""
    simulated_reps: int = 0


def _check(prevalence: float, prevalence_rejected: float, beta: float, alpha: float, power: float) -> None:
    for name, v in (("prevalence", prevalence), ("prevalence_rejected", prevalence_rejected)):
        if not 0 < v < 1:
            raise ConfigError(f"{name}: must be in (0, 1), got {v!r}")
    if beta == 0 or not math.isfinite(beta):
        raise ConfigError(f"beta: must be a non-zero number, got {beta!r}")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ConfigError(f"alpha and power must be in (0, 1), got {alpha!r}, {power!r}")


def pairs_needed(
    beta: float,
    prevalence: float,
    *,
    prevalence_rejected: float | None = None,
    estimator: Estimator = "fe",
    residual_sd: float = 1.0,
    pair_sd: float = 1.0,
    alpha: float = 0.05,
    n_tests: int = 15,
    power: float = POWER,
    vif: float = 1.0,
) -> PowerPlan:
    """Smallest N with power ≥ ``power`` for β at level α/n_tests (normal approximation).

    Pair FE (no intercept): Var(β̂) = 2σ² / (N E[(x_c − x_r)²]), E[(x_c − x_r)²] = v_c + v_r +
    (p_c − p_r)², v = p(1 − p). Pooled OLS with pair-clustered SEs, same
    prevalence on both sides: Var(β̂) = (σ² + τ²) / (2 N v) (the pair shift τ stays in the residual).
    With different prevalences the pooled form uses the stacked variance of the feature.
    """
    pr = prevalence if prevalence_rejected is None else prevalence_rejected
    _check(prevalence, pr, beta, alpha, power)
    if n_tests < 1 or residual_sd <= 0 or pair_sd < 0 or vif < 1:
        raise ConfigError("n_tests >= 1, residual_sd > 0, pair_sd >= 0 and vif >= 1 are required")
    level = alpha / n_tests
    z = float(sps.norm.isf(level / 2) + sps.norm.ppf(power))
    vc, vr = prevalence * (1 - prevalence), pr * (1 - pr)
    if estimator == "fe":
        unit = 2 * residual_sd**2 / (vc + vr + (prevalence - pr) ** 2)
        formula = (
            "N = VIF (q(1-a/2m) + q(power))^2 2 sigma^2 / (beta^2 E[(x_c - x_r)^2]),  "
            "E[(x_c - x_r)^2] = v_c + v_r + (p_c - p_r)^2, v = p (1 - p)"
        )
    else:
        mean = (prevalence + pr) / 2
        v = mean * (1 - mean)
        # per-pair score variance: (sum of centred x)^2 tau^2 + sum of centred x^2 sigma^2
        centred_sq = vc + vr + (prevalence - mean) ** 2 + (pr - mean) ** 2
        centred_sum_sq = vc + vr + (prevalence + pr - 2 * mean) ** 2
        unit = (centred_sum_sq * pair_sd**2 + centred_sq * residual_sd**2) / (2 * v) ** 2
        formula = "N = VIF (q(1-a/2m) + q(power))^2 (sigma^2 + tau^2) / (2 beta^2 v),  v = p (1 - p)"
    n = max(3, math.ceil(vif * unit * (z / beta) ** 2))
    return PowerPlan(
        beta=beta,
        prevalence=prevalence,
        prevalence_rejected=pr,
        estimator=estimator,
        residual_sd=residual_sd,
        pair_sd=pair_sd,
        alpha=alpha,
        n_tests=n_tests,
        level=level,
        power=power,
        vif=vif,
        n_pairs=n,
        se_at_n=math.sqrt(vif * unit / n),
        formula=formula,
    )


def simulated_power(
    plan: PowerPlan,
    *,
    reps: int = 200,
    seed: int = 0,
    n_pairs: int | None = None,
    cov_type: ClusterCov = "auto",
) -> PowerPlan:
    """Check a plan by simulation: planted β, the real imprint estimator (with its default
    covariance choice), detection = p < α/m. Returns the plan with ``simulated_power`` set."""
    from seal_audit.stats.imprint import imprint_fe, imprint_pooled

    n = plan.n_pairs if n_pairs is None else n_pairs
    rng = np.random.default_rng(seed)
    fit_fn = imprint_fe if plan.estimator == "fe" else imprint_pooled
    hits = 0
    done = 0
    for _ in range(reps):
        xc = (rng.random((n, 1)) < plan.prevalence).astype(np.float64)
        xr = (rng.random((n, 1)) < plan.prevalence_rejected).astype(np.float64)
        if plan.estimator == "fe" and not (xc - xr).any():
            done += 1  # no within-pair variation: nothing detected
            continue
        shift = rng.normal(0, plan.pair_sd, n)
        rewards = np.column_stack([xc[:, 0] * plan.beta, xr[:, 0] * plan.beta]) + shift[:, None]
        rewards = rewards + rng.normal(0, plan.residual_sd, (n, 2))
        fit = fit_fn(rewards, xc, xr, ["f"], correction="bonferroni", alpha=0.05, cov_type=cov_type)
        c = fit.coefficient("f")
        hits += bool(c.p_value < plan.level)
        done += 1
    return dataclasses.replace(
        plan, simulated_power=hits / done if done else float("nan"), simulated_reps=done
    )
