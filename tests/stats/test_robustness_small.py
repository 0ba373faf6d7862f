"""Robustness with few rewrites: inconclusive with reasons, exact never-zero-width intervals, the
HC3 fallbacks; and the caveats record."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import statsmodels.api as sm

from seal_audit.stats import AnalysisOptions, RegressionResult, SimulationSpec, analyze, simulate
from seal_audit.stats.robustness import (
    ROBUSTNESS_MIN_PAIRS,
    IndicatorCount,
    _robust_lpm,
    accuracy_change,
    robustness_status,
)


def test_single_pair_indicator_is_dropped_and_hc3_matches_statsmodels() -> None:
    rng = np.random.default_rng(1)
    n = 80
    x = (rng.random((n, 3)) < 0.3).astype(float)
    x[:, 2] = 0.0
    x[5, 2] = 1.0  # set for a single pair: leverage 1, HC3 undefined
    y = (rng.random(n) < 0.2 + 0.3 * x[:, 0]).astype(float)
    fit = _robust_lpm(y, x, ["a", "b", "single"], correction="bonferroni", alpha=0.05)
    assert isinstance(fit, RegressionResult)
    assert fit.cov_type == "HC3" and "single" in fit.dropped_terms
    assert any("single pair" in note for note in fit.notes)
    ref = sm.OLS(y, sm.add_constant(x[:, :2])).fit(cov_type="HC3")
    np.testing.assert_allclose([c.se for c in fit.coefficients], ref.bse, rtol=1e-9)


def test_hc3_undefined_by_a_combination_falls_back_to_hc1_with_a_note() -> None:
    rng = np.random.default_rng(2)
    n = 60
    x = np.zeros((n, 3))
    x[[1, 2], 0] = 1  # A on pairs 1, 2; B on 2, 3; C on 1, 3: each of pairs 1-3 has leverage 1
    x[[2, 3], 1] = 1
    x[[1, 3], 2] = 1
    y = (rng.random(n) < 0.3).astype(float)
    fit = _robust_lpm(y, x, ["A", "B", "C"], correction="bonferroni", alpha=0.05)
    assert isinstance(fit, RegressionResult) and fit.cov_type == "HC1"
    assert any("HC3 undefined" in note for note in fit.notes)
    status, reasons = robustness_status(60, 15, fit, (IndicatorCount("A", "A", "chosen", "D+", 2),))
    assert status == "inconclusive" and any("HC3 undefined" in r for r in reasons)


def test_status_reasons() -> None:
    counts = (IndicatorCount("t", "f", "chosen", "D+", 40),)
    fit = _robust_lpm(
        (np.arange(300) % 4 == 0).astype(float),
        (np.arange(300) % 3 == 0).astype(float)[:, None],
        ["t"],
        correction="bonferroni",
        alpha=0.05,
    )
    assert robustness_status(300, 75, fit, counts) == ("ok", ())
    status, reasons = robustness_status(56, 3, fit, counts)
    assert status == "inconclusive"
    assert any(f"< {ROBUSTNESS_MIN_PAIRS}" in r for r in reasons) and any("misaligned" in r for r in reasons)


def test_no_flip_at_56_pairs_gives_exact_nonzero_intervals() -> None:
    orig = np.column_stack([np.linspace(1, 2, 56), np.zeros(56)])
    res = accuracy_change("post", orig, orig.copy(), alpha=0.05, n_bootstrap=500, seed=0, transform="t")
    assert res.flipped.k == 0 and res.flipped.ci_low == 0.0 and res.flipped.ci_high > 0.05
    assert np.isnan(res.flipped.boot_ci_low) and np.isnan(res.flipped.boot_ci_high)  # not [0, 0]
    assert res.drop_exact_ci_low < 0 < res.drop_exact_ci_high
    assert res.drop_ci_low == res.drop_ci_high == 0.0  # the Wald interval that misled


def test_exact_drop_interval_covers_at_least_nominally() -> None:
    rng = np.random.default_rng(3)
    pb, pc, n = 0.06, 0.02, 60
    hits = []
    for _ in range(1500):
        cells = rng.multinomial(n, [0.6, pb, pc, 1 - 0.6 - pb - pc])
        a = np.r_[np.ones(cells[0] + cells[1]), np.zeros(cells[2] + cells[3])].astype(bool)
        b = np.r_[np.ones(cells[0]), np.zeros(cells[1]), np.ones(cells[2]), np.zeros(cells[3])].astype(bool)
        orig = np.column_stack([a.astype(float), 0.5 * np.ones(n)])
        rew = np.column_stack([b.astype(float), 0.5 * np.ones(n)])
        r = accuracy_change("p", orig, rew, alpha=0.05, n_bootstrap=0, seed=0, transform="t")
        hits.append(r.drop_exact_ci_low <= pb - pc <= r.drop_exact_ci_high)
        assert r.drop_exact_ci_high > r.drop_exact_ci_low
    assert float(np.mean(hits)) >= 0.95


def _inputs_with(data: object, **changes: object):  # type: ignore[no-untyped-def]
    inputs = data.inputs()  # type: ignore[attr-defined]
    return dataclasses.replace(inputs, **changes)


def test_analysis_records_status_power_and_caveats() -> None:
    data = simulate(SimulationSpec(n_pairs=800, seed=5, rewrite_fraction=0.06, truth_mc_pairs=1000))
    res = analyze(_inputs_with(data, in_sample={"post": True, "pre": False}), AnalysisOptions(n_bootstrap=0))
    js = res.to_dict()
    rob = js["robustness"]["paraphrase"]
    assert rob["status"] == "inconclusive" and any("usable rewritten pairs" in r for r in rob["reasons"])
    assert "drop_exact_ci_low" in rob["accuracy"][0]
    coef = js["imprint"]["fe"]["post"]["regression"]["coefficients"][0]
    assert {"mde", "verdict", "ci_low_adjusted", "ci_high_adjusted", "df"} <= set(coef)
    assert js["imprint"]["fe"]["post"]["regression"]["cov_type"] == "CR2"  # 800 pairs < 1000
    assert js["imprint"]["fe"]["post"]["regression"]["effect_of_interest"] == 0.5
    verdicts = {c["verdict"] for c in js["misalignment"]["lpm"]["coefficients"] if c["term"] != "intercept"}
    assert verdicts <= {"significant", "not significant", "underpowered"} and "underpowered" in verdicts
    cav = js["caveats"]
    assert cav["post_in_sample"] is True
    assert "length_chars" not in cav["in_sample"]  # a baseline is not trained
    assert "in-sample" in cav["notes"][0]
    assert 0 < cav["label_noise"]["disputed"]["rate"] < 0.5


def test_label_noise_ceiling_follows_planted_noise() -> None:
    rates = []
    for noise in (0.02, 0.15, 0.3):
        data = simulate(
            SimulationSpec(n_pairs=3000, seed=6, label_noise=noise, rewrite_fraction=0.0, truth_mc_pairs=1000)
        )
        res = analyze(data.inputs(), AnalysisOptions(n_bootstrap=0))
        assert res.caveats is not None and res.caveats.label_noise is not None
        rates.append(res.caveats.label_noise.disputed.rate)
    assert rates[0] < rates[1] < rates[2], rates
    assert rates[2] == pytest.approx(0.3, abs=0.2)


def _regressions(obj: object, path: str = ""):  # type: ignore[no-untyped-def]
    """Every serialised RegressionResult in a stats.json dict, with its path."""
    if isinstance(obj, dict):
        if "coefficients" in obj and "cov_type" in obj:
            yield path, obj
        for k, v in obj.items():
            yield from _regressions(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _regressions(v, f"{path}[{i}]")


@pytest.mark.parametrize("correction", ["bonferroni", "holm"])
def test_no_verdict_in_stats_json_contradicts_its_adjusted_interval(correction: str) -> None:
    data = simulate(SimulationSpec(n_pairs=1200, seed=8, rewrite_fraction=0.3, truth_mc_pairs=1000))
    js = analyze(data.inputs(), AnalysisOptions(n_bootstrap=0, correction=correction)).to_dict()  # type: ignore[arg-type]
    fits = list(_regressions(js))
    assert len(fits) >= 9  # imprint 2 × 3, misalignment 2, θ, robustness 2
    n_sig = 0
    for path, fit in fits:
        for c in fit["coefficients"]:
            if c["term"] == "intercept" or c["p_value"] is None:
                continue
            excludes = c["ci_low_adjusted"] > 0 or c["ci_high_adjusted"] < 0
            assert excludes == c["significant"], (path, c["term"])
            n_sig += c["significant"]
    assert n_sig > 5
