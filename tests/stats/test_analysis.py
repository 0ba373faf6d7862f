"""The analyze() entry point: determinism, exclusions, skips, input and config errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from seal_audit.data.errors import ConfigError, InputError
from seal_audit.stats import (
    AnalysisInputs,
    AnalysisOptions,
    RegressionResult,
    SimulationSpec,
    Skipped,
    analyze,
    change_indicators,
    simulate,
)


@pytest.fixture(scope="module")
def sim():  # type: ignore[no-untyped-def]
    return simulate(SimulationSpec(n_pairs=800, seed=5, rewrite_fraction=0.5, truth_mc_pairs=10_000))


def test_same_inputs_same_seed_give_byte_identical_json(sim) -> None:  # type: ignore[no-untyped-def]
    opts = AnalysisOptions(seed=3, n_bootstrap=200)
    a = analyze(sim.inputs(), opts).to_json()
    # same data in another row order: matched by pair_id, not by position
    shuffled = AnalysisInputs(
        pairs=sim.pairs,
        scores=sim.scores.sample(frac=1.0, random_state=1),
        post="post",
        pre="pre",
        features=sim.features.sample(frac=1.0, random_state=2),
        specs=sim.specs,
        rewrites=sim.rewrites,
        baselines=("length_chars",),
    )
    b = analyze(shuffled, opts).to_json()
    assert a == analyze(sim.inputs(), opts).to_json()
    ja, jb = json.loads(a), json.loads(b)
    assert ja["agreement"] == jb["agreement"] and ja["regimes"] == jb["regimes"]
    c = json.loads(analyze(sim.inputs(), AnalysisOptions(seed=4, n_bootstrap=200)).to_json())
    assert (
        c["agreement"]["post"]["agreement"]["boot_ci_low"]
        != ja["agreement"]["post"]["agreement"]["boot_ci_low"]
    )
    assert c["agreement"]["post"]["agreement"]["ci_low"] == ja["agreement"]["post"]["agreement"]["ci_low"]
    assert "NaN" not in a and ja["schema"] == "seal-audit/stats/2"


def test_missing_rewards_and_features_are_excluded_and_stated(sim) -> None:  # type: ignore[no-untyped-def]
    scores = sim.scores
    drop_s = (scores["pair_id"] == "sim0000003") & (scores["rm"] == "post") & (scores["side"] == "rejected")
    feats = sim.features.copy()
    bad_f = (
        (feats["pair_id"] == "sim0000007")
        & (feats["feature"] == "is_helpful")
        & (feats["variant"] == "original")
    )
    feats.loc[bad_f & (feats["side"] == "chosen"), "value"] = np.nan
    inputs = AnalysisInputs(
        pairs=sim.pairs, scores=scores[~drop_s], post="post", pre="pre", features=feats, specs=sim.specs
    )
    res = analyze(inputs, AnalysisOptions(n_bootstrap=0))
    assert res.exclusions["agreement:post"].excluded_pair_ids == ("sim0000003",)
    assert res.exclusions["agreement:pre"].n_excluded == 0
    assert res.exclusions["regimes"].excluded_pair_ids == ("sim0000003",)
    assert set(res.exclusions["imprint:pooled:post"].excluded_pair_ids) == {"sim0000003", "sim0000007"}
    assert res.exclusions["imprint:pooled:pre"].excluded_pair_ids == ("sim0000007",)
    assert res.agreement["post"].n == 799
    ex = res.tables()["exclusions"]
    assert {"analysis", "pair_id", "reason"} <= set(ex.columns)
    assert "sim0000003" in set(ex["pair_id"])
    out = json.loads(res.to_json())
    assert out["exclusions"]["misalignment"]["n_excluded"] == 2


def test_analyses_without_inputs_are_skipped_with_a_reason(sim) -> None:  # type: ignore[no-untyped-def]
    inputs = AnalysisInputs(pairs=sim.pairs, scores=sim.scores[sim.scores["rm"] == "post"], post="post")
    res = analyze(inputs, AnalysisOptions(n_bootstrap=0))
    out = json.loads(res.to_json())
    assert out["imprint"] == {"status": "skipped", "reason": "no regressor features", "features": []}
    assert out["regimes"] == {"status": "skipped", "reason": "no pre-D RM", "features": []}
    assert out["lm_agreement"]["status"] == "skipped"
    assert isinstance(res.robustness, dict)  # rewritten scores of the post-D RM are still there
    inputs2 = AnalysisInputs(
        pairs=sim.pairs, scores=sim.scores[sim.scores["variant"] == "original"], post="post", pre="pre"
    )
    assert json.loads(analyze(inputs2, AnalysisOptions(n_bootstrap=0)).to_json())["robustness"] == {
        "status": "skipped",
        "reason": "no rewrites",
        "features": [],
    }


def test_result_sections_and_tables(sim) -> None:  # type: ignore[no-untyped-def]
    res = analyze(sim.inputs(), AnalysisOptions(n_bootstrap=100))
    tables = res.tables()
    for name in (
        "imprint",
        "regimes",
        "robustness",
        "robustness_summary",
        "misalignment",
        "pair_diagnostics",
        "suspicious_pairs",
        "calibration_bins",
        "vif",
    ):
        assert name in tables and len(tables[name]) > 0, name
    pdg = tables["pair_diagnostics"]
    assert pdg["pair_id"].is_unique and len(pdg) == 800
    imp = tables["imprint"]
    assert set(imp["estimator"]) == {"pooled", "fe"}
    assert set(imp["model"]) == {"post", "pre", "post_minus_pre"}
    assert {"p_bonferroni", "p_holm", "correction", "cov_type"} <= set(imp.columns)
    assert res.agreement["length_chars"].is_baseline
    assert "length_chars" not in res.calibration
    rob = res.robustness["paraphrase"]  # type: ignore[index]
    assert rob.drift is not None and rob.drift.n_drifted > 0
    assert rob.exclusions.n_excluded >= rob.drift.n_pairs_excluded > 0
    assert isinstance(rob.lpm, RegressionResult) and rob.lpm.cov_type == "HC3"
    mis = res.misalignment
    assert not isinstance(mis, Skipped) and isinstance(mis.logit, RegressionResult)
    assert mis.logit.coefficients[1].odds_ratio is not None


def test_keeping_drifted_rewrites_uses_more_pairs(sim) -> None:  # type: ignore[no-untyped-def]
    a = analyze(sim.inputs(), AnalysisOptions(n_bootstrap=0)).robustness
    b = analyze(sim.inputs(), AnalysisOptions(n_bootstrap=0, exclude_drifted=False)).robustness
    assert b["paraphrase"].n > a["paraphrase"].n  # type: ignore[index]


def test_numeric_change_indicators_use_a_tolerance() -> None:
    orig = np.array([[10.0, 5.0], [3.0, 3.0]])
    rew = np.array([[9.95, 7.0], [1.0, 3.04]])
    dp, dm = change_indicators(orig, rew, "numeric", tolerance=0.1)
    assert dp.tolist() == [[False, False], [True, False]]
    assert dm.tolist() == [[False, True], [False, False]]
    dp2, dm2 = change_indicators(np.array([[1.0, -1.0]]), np.array([[-1.0, 0.0]]), "ordinal")
    assert dp2.tolist() == [[True, False]] and dm2.tolist() == [[False, True]]


def test_collinear_specs_fail_with_the_feature_names(sim) -> None:  # type: ignore[no-untyped-def]
    f = sim.features
    dup = f[f["feature"] == "is_helpful"].assign(feature="is_helpful_copy")
    specs = (*sim.specs, sim.specs[1].model_copy(update={"name": "is_helpful_copy"}))
    inputs = AnalysisInputs(
        pairs=sim.pairs, scores=sim.scores, post="post", pre="pre", features=pd.concat([f, dup]), specs=specs
    )
    res = analyze(inputs, AnalysisOptions(n_bootstrap=0))
    doc = json.loads(res.to_json())
    # every regression on the collinear design fails on its own, naming both features ...
    for key in ("imprint.pooled.post", "imprint.fe.pre"):
        st = doc["status"][key]
        assert st["status"] == "failed", key
        assert "is_helpful ~ is_helpful_copy" in st["reason"], key
        assert {"is_helpful", "is_helpful_copy"} <= set(st["features"]), key
    for key in ("misalignment", "theta_regression"):  # side designs name the side terms
        st = doc["status"][key]
        assert st["status"] == "failed" and "chosen:is_helpful_copy" in st["features"], key
    assert doc["imprint"]["pooled"]["post"]["status"] == "failed"
    # ... and every other analysis is still computed
    assert doc["status"]["regimes"]["status"] == "ok" and doc["resistance"]["rate"] > 0
    assert doc["status"]["reward_shift"]["status"] == "ok"
    assert set(res.not_computed()) >= {"imprint.pooled.post", "misalignment"}


def test_constant_feature_errors_or_is_dropped_and_named(sim) -> None:  # type: ignore[no-untyped-def]
    f = sim.features
    const = f[f["feature"] == "is_helpful"].assign(feature="never", value=0.0)
    specs = (*sim.specs, sim.specs[1].model_copy(update={"name": "never"}))
    inputs = AnalysisInputs(
        pairs=sim.pairs,
        scores=sim.scores,
        post="post",
        pre="pre",
        features=pd.concat([f, const]),
        specs=specs,
    )
    strict = json.loads(analyze(inputs, AnalysisOptions(n_bootstrap=0, drop_constant=False)).to_json())
    st = strict["status"]["imprint.pooled.post"]
    assert st["status"] == "failed" and st["features"] == ["never"]
    assert "constant feature(s) ['never']" in st["reason"]
    assert strict["status"]["regimes"]["status"] == "ok"  # the others are still computed
    doc = json.loads(analyze(inputs, AnalysisOptions(n_bootstrap=0)).to_json())
    assert doc["status"]["imprint.pooled.post"] == {
        "status": "ok",
        "reason": "left out constant feature(s) ['never']",
        "features": ["never"],
    }
    terms = {c["term"] for c in doc["imprint"]["pooled"]["post"]["regression"]["coefficients"]}
    assert "never" not in terms and "is_helpful" in terms
    assert doc["imprint"]["pooled"]["post"]["regression"]["dropped_terms"] == ["never"]


def test_bad_inputs_name_the_record(sim) -> None:  # type: ignore[no-untyped-def]
    scores = sim.scores.copy()
    scores.loc[5, "side"] = "left"
    with pytest.raises(InputError, match="record 6"):
        analyze(AnalysisInputs(pairs=sim.pairs, scores=scores, post="post"))
    dup = pd.concat([sim.scores, sim.scores.iloc[[0]]])
    with pytest.raises(InputError, match="duplicate row for pair 'sim0000000'"):
        analyze(AnalysisInputs(pairs=sim.pairs, scores=dup, post="post"))
    feats = sim.features.copy()
    feats.loc[feats.index[0], "value"] = 2.0
    with pytest.raises(InputError, match=r"is_harmless.*sim0000000"):
        analyze(
            AnalysisInputs(pairs=sim.pairs, scores=sim.scores, post="post", features=feats, specs=sim.specs)
        )
    with pytest.raises(InputError, match="no scores"):
        analyze(AnalysisInputs(pairs=sim.pairs, scores=sim.scores, post="nope"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"correction": "fdr"},
        {"alpha": 1.5},
        {"n_bootstrap": -1},
        {"estimators": ("ols",)},
        {"estimators": ()},
        {"drop_constant": "sometimes"},
    ],
)
def test_options_are_validated_early(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        AnalysisOptions(**kwargs)  # type: ignore[arg-type]


def test_simulation_recovers_planted_imprint() -> None:
    data = simulate(SimulationSpec(n_pairs=4000, seed=9, truth_mc_pairs=10_000))
    res = analyze(data.inputs(), AnalysisOptions(n_bootstrap=0))
    fit = res.imprint["fe"]["post"].regression  # type: ignore[index,union-attr]
    for c in fit.coefficients:
        assert abs(c.estimate - data.truth["imprint"]["post"][c.term]) < 5 * c.se
    assert abs(fit.coefficient("is_harmless").estimate - 2.1) < 0.15
