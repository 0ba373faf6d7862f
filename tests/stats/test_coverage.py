"""Planted values vs confidence intervals over many simulated datasets (seal simulate's truth).

If a standard error is wrong (e.g. not pair-clustered while pairs share a reward shift, or a
non-robust SE in the LPM), coverage leaves the band and these tests fail.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from seal_audit.stats import AnalysisOptions, RegressionResult, SimulationSpec, analyze, simulate


@functools.lru_cache(maxsize=4)
def _population_truth(label_noise: float) -> dict[str, Any]:
    """Population values from one large Monte Carlo sample (they do not depend on the seed)."""
    spec = SimulationSpec(
        n_pairs=10, seed=12345, label_noise=label_noise, truth_mc_pairs=2_000_000, rewrite_fraction=0.0
    )
    return simulate(spec).truth


def _covers(lo: float | None, hi: float | None, truth: float) -> bool:
    return lo is not None and hi is not None and lo <= truth <= hi


def coverage(n_datasets: int, n_pairs: int, seed0: int) -> dict[str, list[bool]]:
    truth = _population_truth(0.1)
    hits: dict[str, list[bool]] = defaultdict(list)
    opts = AnalysisOptions(n_bootstrap=0, seed=0)
    for k in range(n_datasets):
        spec = SimulationSpec(
            n_pairs=n_pairs, seed=seed0 + k, rewrite_fraction=1.0, truth_mc_pairs=1000, length_baseline=False
        )
        res = analyze(simulate(spec).inputs(), opts)
        assert isinstance(res.imprint, dict)
        for est, models in res.imprint.items():
            for model, fit in models.items():
                reg = getattr(fit, "regression", None)
                assert isinstance(reg, RegressionResult)
                for c in reg.coefficients:
                    hits[f"imprint_{est}"].append(
                        _covers(c.ci_low, c.ci_high, truth["imprint"][model][c.term])
                    )
        for rm, key in (("post", "agreement_post"), ("pre", "agreement_pre")):
            a = res.agreement[rm].agreement
            hits["rates"].append(_covers(a.ci_low, a.ci_high, truth[key]))
        regimes = res.regimes
        assert not hasattr(regimes, "skipped")
        for name, share in regimes.shares.items():  # type: ignore[union-attr]
            hits["rates"].append(_covers(share.ci_low, share.ci_high, truth["regimes"][name]))
        gamma = res.lm_agreement
        for g in gamma.groups:  # type: ignore[union-attr]
            hits["rates"].append(_covers(g.share.ci_low, g.share.ci_high, truth["gamma_shares"][g.gamma]))
        rob = res.robustness["paraphrase"]  # type: ignore[index]
        assert isinstance(rob.lpm, RegressionResult)
        planted = truth["robustness_lpm"]
        for c in rob.lpm.coefficients:
            t = planted["intercept"] if c.term == "intercept" else planted["terms"][c.term]
            hits["robustness_lpm"].append(_covers(c.ci_low, c.ci_high, t))
    return hits


def test_planted_values_are_covered_fast() -> None:
    """Default run: 12 datasets × 600 pairs (~900 interval checks). Band wider than the slow test's,
    but a systematically wrong SE (coverage ≲ 85%) still fails."""
    hits = coverage(12, 600, seed0=100)
    allhits = [h for v in hits.values() for h in v]
    rate = float(np.mean(allhits))
    assert len(allhits) > 800
    assert 0.90 <= rate <= 0.99, {k: float(np.mean(v)) for k, v in hits.items()}
    for fam, v in hits.items():
        assert np.mean(v) >= 0.85, (fam, float(np.mean(v)))


@pytest.mark.slow
def test_planted_values_are_covered_over_200_datasets() -> None:
    hits = coverage(200, 1500, seed0=10_000)
    summary = {k: (float(np.mean(v)), len(v)) for k, v in hits.items()}
    for v in hits.values():
        assert 0.92 <= float(np.mean(v)) <= 0.98, summary
    print(summary)


RARE_FEATURES = (
    "is_refusal",
    "contains_insult",
    "is_sexually_explicit",
    "breaks_privacy",
    "is_discriminatory",
    "is_manipulative",
)


def _rare_fe_coverage(n_datasets: int, seed0: int) -> dict[str, list[bool]]:
    """Pair-FE post − pre intervals of the 3–8 % prevalence features at N = 400 (issue 15)."""
    from seal_audit.stats import imprint_fe

    hits: dict[str, list[bool]] = defaultdict(list)
    for k in range(n_datasets):
        spec = SimulationSpec(
            n_pairs=400, seed=seed0 + k, rewrite_fraction=0.0, truth_mc_pairs=1000, length_baseline=False
        )
        data = simulate(spec)
        s = data.scores[data.scores["variant"] == "original"]
        w = s.pivot_table(index="pair_id", columns=["rm", "side"], values="reward")
        f = data.features.pivot_table(index="pair_id", columns=["side", "feature"], values="value")
        names = [p.name for p in spec.planted()]
        diff = w["post"][["chosen", "rejected"]].to_numpy() - w["pre"][["chosen", "rejected"]].to_numpy()
        truth = data.truth["imprint"]["post_minus_pre"]
        for cov in ("cluster", "CR2"):
            fit = imprint_fe(
                diff,
                f["chosen"][names].to_numpy(),
                f["rejected"][names].to_numpy(),
                names,
                correction="bonferroni",
                alpha=0.05,
                cov_type=cov,  # type: ignore[arg-type]
            )
            for c in fit.coefficients:
                if c.term in RARE_FEATURES:
                    hits[cov].append(_covers(c.ci_low, c.ci_high, truth[c.term]))
                    hits[f"{cov}:{c.term}"].append(_covers(c.ci_low, c.ci_high, truth[c.term]))
    return hits


@pytest.mark.slow
def test_cr2_covers_rare_features_at_400_pairs() -> None:
    """CR2 with Bell–McCaffrey df (the default below CR2_MAX_CLUSTERS) covers the planted post − pre
    imprint of every 3–5 % prevalence feature at N = 400 at >= 92 % (300 datasets × 6 features)."""
    hits = _rare_fe_coverage(300, seed0=70_000)
    summary = {k: round(float(np.mean(v)), 3) for k, v in hits.items()}
    print(summary)
    assert float(np.mean(hits["CR2"])) >= 0.93, summary
    for f in RARE_FEATURES:
        assert float(np.mean(hits[f"CR2:{f}"])) >= 0.90, summary
    assert float(np.mean(hits["CR2"])) >= float(np.mean(hits["cluster"])), summary


@pytest.mark.slow
@pytest.mark.parametrize("prevalence", [0.03, 0.05])
def test_cr2_covers_a_rare_heteroskedastic_feature_independent_generator(prevalence: float) -> None:
    """A generator independent of ``seal simulate``: one rare feature whose texts have 3× the reward
    noise (the case where CR1 under-covers), six common ones, pair effects; N = 400; 1000 datasets."""
    from seal_audit.stats import imprint_fe, imprint_pooled

    rng = np.random.default_rng(int(prevalence * 1000))
    pc = np.r_[prevalence, np.linspace(0.2, 0.8, 6)]
    beta = np.r_[1.0, np.linspace(-1, 1, 6)]
    names = [f"f{j}" for j in range(7)]
    hits: dict[str, list[bool]] = defaultdict(list)
    for _ in range(1000):
        xc = (rng.random((400, 7)) < pc).astype(float)
        xr = (rng.random((400, 7)) < pc).astype(float)
        if not (xc[:, 0] - xr[:, 0]).any():
            continue
        u = rng.normal(0, 1, 400)
        r = np.column_stack(
            [
                xc @ beta + u + rng.normal(size=400) * (1 + 2 * xc[:, 0]),
                xr @ beta + u + rng.normal(size=400) * (1 + 2 * xr[:, 0]),
            ]
        )
        for est, fn, j in (("fe", imprint_fe, 0), ("pooled", imprint_pooled, 1)):
            fit = fn(r, xc, xr, names, correction="bonferroni", alpha=0.05)  # default: auto → CR2
            assert fit.cov_type == "CR2"
            c = fit.coefficients[j]
            hits[est].append(_covers(c.ci_low, c.ci_high, 1.0))
    summary = {k: (round(float(np.mean(v)), 3), len(v)) for k, v in hits.items()}
    print(summary)
    for v in hits.values():
        assert float(np.mean(v)) >= 0.92, summary
