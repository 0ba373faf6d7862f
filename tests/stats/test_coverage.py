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
