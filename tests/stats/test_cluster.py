"""Group clustering (issue 14 item 8): pairs that share a prompt are one cluster.

Golden checks against statsmodels' ``cov_type="cluster"`` with groups, the group bootstrap against
its closed form, Korn–Graubard intervals on duplicated pairs, and coverage on planted data with a
prompt-level random effect: group clustering covers, pair clustering does not (the reason for the
change).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd
import pytest

from seal_audit.stats import (
    AnalysisOptions,
    AnalysisResult,
    RegressionResult,
    SimulationSpec,
    analyze,
    simulate,
)
from seal_audit.stats.diagnostics import calibration
from seal_audit.stats.imprint import imprint_fe, imprint_pooled, stack_texts
from seal_audit.stats.inference import (
    bootstrap_cell_counts,
    bootstrap_cells,
    clopper_pearson,
    cluster_rate_estimate,
    design_effect,
)
from seal_audit.stats.prepare import prepare


def _grouped_spec(seed: int, n_pairs: int = 900, **kw: Any) -> SimulationSpec:
    base: dict[str, Any] = dict(
        n_pairs=n_pairs,
        seed=seed,
        chosen_per_prompt=3,
        rejected_per_prompt=3,
        prompt_effect_sd=1.0,
        rewrite_fraction=0.0,
        truth_mc_pairs=1000,
        length_baseline=False,
    )
    return SimulationSpec(**(base | kw))


def _arrays(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Per-pair post-D rewards, chosen/rejected features, group codes of one grouped dataset."""
    data = simulate(_grouped_spec(seed))
    prep = prepare(data.inputs())
    names = [f.name for f in _grouped_spec(seed).planted()]
    xc = np.column_stack([prep.features[("original", f)][:, 0] for f in names])
    xr = np.column_stack([prep.features[("original", f)][:, 1] for f in names])
    rew = prep.reward("post")
    assert rew is not None and prep.group_ids is not None
    codes = pd.factorize(pd.Series(prep.group_ids))[0].astype(np.int64)
    return rew, xc, xr, codes, names


def test_group_clustered_imprint_matches_statsmodels() -> None:
    sm = pytest.importorskip("statsmodels.api")
    rew, xc, xr, codes, names = _arrays(3)
    assert np.unique(codes).size == 100
    pooled = imprint_pooled(
        rew, xc, xr, names, correction="bonferroni", alpha=0.05, cov_type="cluster", clusters=codes
    )
    y = stack_texts(rew[:, 0], rew[:, 1])
    x = sm.add_constant(stack_texts(xc, xr))
    ref = sm.OLS(y, x).fit(cov_type="cluster", cov_kwds={"groups": np.repeat(codes, 2)})
    assert pooled.n_clusters == 100
    np.testing.assert_allclose([c.estimate for c in pooled.coefficients], ref.params, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose([c.se for c in pooled.coefficients], ref.bse, rtol=1e-8)
    np.testing.assert_allclose([c.p_value for c in pooled.coefficients], ref.pvalues, rtol=1e-6, atol=1e-12)

    fe = imprint_fe(
        rew, xc, xr, names, correction="bonferroni", alpha=0.05, cov_type="cluster", clusters=codes
    )
    ref_fe = sm.OLS(rew[:, 0] - rew[:, 1], xc - xr).fit(cov_type="cluster", cov_kwds={"groups": codes})
    np.testing.assert_allclose([c.se for c in fe.coefficients], ref_fe.bse, rtol=1e-8)
    # the same data clustered by pair: smaller SEs, statsmodels agrees on those as well
    fe_pair = imprint_fe(rew, xc, xr, names, correction="bonferroni", alpha=0.05, cov_type="cluster")
    ref_pair = sm.OLS(rew[:, 0] - rew[:, 1], xc - xr).fit(
        cov_type="cluster", cov_kwds={"groups": np.arange(len(codes))}
    )
    np.testing.assert_allclose([c.se for c in fe_pair.coefficients], ref_pair.bse, rtol=1e-8)
    assert np.median(np.array([c.se for c in fe.coefficients]) / ref_pair.bse) > 1.3


def test_group_clustered_misalignment_matches_statsmodels() -> None:
    sm = pytest.importorskip("statsmodels.api")
    from seal_audit.stats._common import make_exclusions
    from seal_audit.stats.misalignment import misalignment_drivers, side_design

    rew, xc, xr, codes, names = _arrays(4)
    keep = [0, 1, 9, 11]  # common features (no separation in the logit)
    xc, xr, names = xc[:, keep], xr[:, keep], [names[j] for j in keep]
    delta = rew[:, 0] > rew[:, 1]
    ex = make_exclusions(
        np.array([str(i) for i in range(len(delta))], dtype=object), np.ones(len(delta), bool), ""
    )
    res = misalignment_drivers(
        delta, xc, xr, names, rm="post", exclusions=ex, correction="bonferroni", alpha=0.05, clusters=codes
    )
    x, _ = side_design(xc, xr, names)
    y = (~delta).astype(float)
    ref = sm.OLS(y, sm.add_constant(x)).fit(cov_type="cluster", cov_kwds={"groups": codes})
    assert res.lpm.cov_type == "CR2" and res.lpm.n_clusters == 100  # 100 groups < 1000: CR2
    np.testing.assert_allclose([c.estimate for c in res.lpm.coefficients], ref.params, rtol=1e-9)
    lg = res.logit
    assert isinstance(lg, RegressionResult) and lg.cov_type == "cluster"
    ref_lg = sm.Logit(y, sm.add_constant(x)).fit(disp=0, cov_type="cluster", cov_kwds={"groups": codes})
    np.testing.assert_allclose([c.estimate for c in lg.coefficients], ref_lg.params, rtol=1e-6)
    np.testing.assert_allclose([c.se for c in lg.coefficients], ref_lg.bse, rtol=1e-6)


def test_group_bootstrap_is_the_pair_bootstrap_for_singleton_groups() -> None:
    rng_cells = np.random.default_rng(1).integers(0, 4, 500)
    a = bootstrap_cells(rng_cells, 4, 300, np.random.default_rng(9), np.arange(500))
    b = bootstrap_cell_counts(np.bincount(rng_cells, minlength=4), 300, np.random.default_rng(9))
    np.testing.assert_array_equal(a, b)


def test_group_bootstrap_resamples_groups() -> None:
    """300 independent pairs, each present three times in its own group: resampling groups gives the
    spread of 300 independent pairs (SD √(p(1 − p)/300)), not of 900."""
    y = np.random.default_rng(2).random(300) < 0.3
    cells = np.repeat((~y).astype(np.int64), 3)
    groups = np.repeat(np.arange(300), 3)
    draws = bootstrap_cells(cells, 2, 4000, np.random.default_rng(3), groups)
    rates = draws[:, 0] / draws.sum(axis=1)
    p = y.mean()
    assert set(draws.sum(axis=1).tolist()) == {900}
    assert abs(rates.std() / np.sqrt(p * (1 - p) / 300) - 1) < 0.06
    by_pair = bootstrap_cells(cells, 2, 4000, np.random.default_rng(3), None)
    assert abs((by_pair[:, 0] / 900).std() / np.sqrt(p * (1 - p) / 900) - 1) < 0.06


def test_korn_graubard_interval_of_triplicated_pairs_is_that_of_the_originals() -> None:
    y = np.random.default_rng(4).random(300) < 0.27
    lo, hi = clopper_pearson(int(y.sum()), 300, 0.05)
    dup = np.repeat(y, 3)
    groups = np.repeat(np.arange(300), 3)
    deff, g = design_effect(dup, groups)
    assert g == 300 and deff == pytest.approx(3 * 300 / 299, rel=1e-9)
    r = cluster_rate_estimate(dup, 0.05, groups)
    assert (r.k, r.n) == (3 * int(y.sum()), 900) and r.design_effect == pytest.approx(deff)
    assert r.ci_low == pytest.approx(lo, abs=3e-3) and r.ci_high == pytest.approx(hi, abs=3e-3)
    naive = cluster_rate_estimate(dup, 0.05, None)  # pairs treated as independent: far too narrow
    assert naive.design_effect == 1.0 and (naive.ci_high - naive.ci_low) < 0.6 * (hi - lo)
    assert cluster_rate_estimate(y, 0.05, np.arange(300)).ci_low == lo  # singleton groups: exact CP


def test_calibration_intervals_cluster_by_group() -> None:
    rng = np.random.default_rng(5)
    rewards = rng.normal(0, 1.5, (400, 2)) + np.array([0.5, 0.0])
    one = calibration("r", rewards, alpha=0.05)
    b = (1 - 1 / (1 + np.exp(-(rewards[:, 0] - rewards[:, 1])))) ** 2
    half = 1.9659 * b.std(ddof=1) / np.sqrt(400)  # t(399) quantile
    assert one.n_clusters == 400
    assert one.brier_ci_low == pytest.approx(b.mean() - half, abs=2e-5)
    trip = calibration("r", np.repeat(rewards, 3, axis=0), alpha=0.05, clusters=np.repeat(np.arange(400), 3))
    assert trip.n_clusters == 400 and trip.brier == pytest.approx(one.brier)
    w1, w3 = one.brier_ci_high - one.brier_ci_low, trip.brier_ci_high - trip.brier_ci_low
    assert w3 == pytest.approx(w1, rel=1e-9)  # CR1 of triplicates = s²/n of the originals
    assert one.log_loss_ci_low < one.log_loss < one.log_loss_ci_high


def test_analyze_names_the_clustering_and_the_groups() -> None:
    data = simulate(_grouped_spec(7, n_pairs=450))
    opts = AnalysisOptions(n_bootstrap=50)
    auto = analyze(data.inputs(), opts)
    assert auto.options.cluster == "group"
    assert (auto.inputs.n_groups, auto.inputs.largest_group) == (50, 9)
    assert any(
        "cluster = auto: intervals clustered by group (50 groups of 450 pairs" in n for n in auto.inputs.notes
    )
    assert isinstance(auto.imprint, dict)
    pooled = auto.imprint["pooled"]["post"]
    assert pooled.regression.n_clusters == 50 and "group-clustered" in pooled.description  # type: ignore[union-attr]
    assert auto.agreement["post"].agreement.design_effect > 1
    assert auto.calibration["post"].n_clusters == 50
    back = AnalysisResult.from_json(auto.to_json())
    assert back.options.cluster == "group" and back.inputs.n_groups == 50

    pair = analyze(data.inputs(), opts.model_copy(update={"cluster": "pair"}))
    assert pair.options.cluster == "pair" and pair.inputs.n_groups == 50
    assert pair.imprint["pooled"]["post"].regression.n_clusters == 450  # type: ignore[index,union-attr]
    assert pair.agreement["post"].agreement.design_effect == 1.0
    a_g, a_p = auto.agreement["post"].agreement, pair.agreement["post"].agreement
    assert a_g.rate == a_p.rate and (a_g.ci_high - a_g.ci_low) > (a_p.ci_high - a_p.ci_low)
    s_g, s_p = auto.reward_shift.overall, pair.reward_shift.overall  # type: ignore[union-attr]
    assert s_g.mean == s_p.mean and (s_g.ci_high - s_g.ci_low) > (s_p.ci_high - s_p.ci_low)
    m_g, m_p = auto.misalignment.lpm, pair.misalignment.lpm  # type: ignore[union-attr]
    assert (m_g.n_clusters, m_p.cov_type) == (50, "HC1")

    # no group holds two pairs (or no group_id column): auto is pair clustering, numbers unchanged
    flat = simulate(SimulationSpec(n_pairs=300, seed=1, truth_mc_pairs=1000))
    no_col = analyze(flat.inputs(), opts)
    singles = flat.pairs.assign(group_id=flat.pairs["pair_id"])
    inputs = flat.inputs()
    with_col = analyze(
        type(inputs)(**{**{f: getattr(inputs, f) for f in inputs.__dataclass_fields__}, "pairs": singles}),
        opts,
    )
    assert no_col.options.cluster == "pair" == with_col.options.cluster
    assert with_col.inputs.n_groups == 300
    as_group = analyze(flat.inputs(), opts.model_copy(update={"cluster": "group"}))
    strip = {"options", "inputs"}
    assert {k: v for k, v in no_col.to_dict().items() if k not in strip} == {
        k: v for k, v in with_col.to_dict().items() if k not in strip
    }

    def numbers(result: AnalysisResult) -> dict[str, Any]:
        """Everything but the imprint fits, whose descriptions name the clustering asked for."""
        d = {k: v for k, v in result.to_dict().items() if k not in strip | {"imprint"}}
        d["per_rm"] = {rm: {k: v for k, v in m.items() if k != "imprint"} for rm, m in d["per_rm"].items()}
        d["comparisons"] = {
            c: {k: v for k, v in m.items() if k != "imprint_difference"} for c, m in d["comparisons"].items()
        }
        return d

    assert numbers(as_group) == numbers(no_col)


def _truth() -> dict[str, Any]:
    spec = SimulationSpec(
        n_pairs=10, seed=12345, truth_mc_pairs=2_000_000, rewrite_fraction=0.0, prompt_effect_sd=1.0
    )
    return simulate(spec).truth


def _covers(lo: float | None, hi: float | None, truth: float) -> bool:
    return lo is not None and hi is not None and lo <= truth <= hi


def grouped_coverage(n_datasets: int, seed0: int, n_bootstrap: int = 200) -> dict[str, list[bool]]:
    """Imprint (pooled, FE; post, pre, post − pre), agreement, regime and γ intervals (exact and
    bootstrap) on RM-Bench-shaped data (3 × 3 pairs per prompt, a prompt-level random effect on the
    margin), once clustered by group and once by pair."""
    truth = _truth()
    hits: dict[str, list[bool]] = defaultdict(list)
    for k in range(n_datasets):
        inputs = simulate(_grouped_spec(seed0 + k)).inputs()
        for cl in ("group", "pair"):
            res = analyze(inputs, AnalysisOptions(n_bootstrap=n_bootstrap, seed=k, cluster=cl))
            assert res.options.cluster == cl and isinstance(res.imprint, dict)
            for est, models in res.imprint.items():
                for model, fit in models.items():
                    for c in fit.regression.coefficients:  # type: ignore[union-attr]
                        hits[f"{cl}:imprint_{est}"].append(
                            _covers(c.ci_low, c.ci_high, truth["imprint"][model][c.term])
                        )
            rates = [(res.agreement[rm].agreement, truth[f"agreement_{rm}"]) for rm in ("post", "pre")]
            rates += [(s, truth["regimes"][name]) for name, s in res.regimes.shares.items()]  # type: ignore[union-attr]
            rates += [(g.share, truth["gamma_shares"][g.gamma]) for g in res.lm_agreement.groups]  # type: ignore[union-attr]
            for r, t in rates:
                hits[f"{cl}:rates_exact"].append(_covers(r.ci_low, r.ci_high, t))
                hits[f"{cl}:rates_bootstrap"].append(_covers(r.boot_ci_low, r.boot_ci_high, t))
    return hits


def _summary(hits: dict[str, list[bool]]) -> dict[str, tuple[float, int]]:
    return {k: (round(float(np.mean(v)), 3), len(v)) for k, v in sorted(hits.items())}


def test_group_clustering_covers_a_prompt_random_effect_and_pair_clustering_does_not() -> None:
    """Fast version: 16 datasets × 900 pairs in 100 prompts (~1,800 interval checks per clustering)."""
    hits = grouped_coverage(16, seed0=300, n_bootstrap=200)
    summary = _summary(hits)
    group = [h for k, v in hits.items() if k.startswith("group:") for h in v]
    pair = [h for k, v in hits.items() if k.startswith("pair:") for h in v]
    assert 0.92 <= float(np.mean(group)) <= 0.98, summary
    for fam in ("imprint_pooled", "imprint_fe", "rates_exact", "rates_bootstrap"):
        assert float(np.mean(hits[f"group:{fam}"])) >= 0.88, summary
        assert float(np.mean(hits[f"pair:{fam}"])) <= 0.90, summary  # pairs are not independent
    assert float(np.mean(pair)) <= 0.85, summary


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_group_clustering_coverage_over_120_datasets() -> None:
    """120 datasets × 900 pairs, each analysed twice (~5 min on one idle core)."""
    hits = grouped_coverage(120, seed0=20_000, n_bootstrap=400)
    summary = _summary(hits)
    print(summary)
    for fam in ("imprint_pooled", "imprint_fe", "rates_exact", "rates_bootstrap"):
        assert 0.92 <= float(np.mean(hits[f"group:{fam}"])) <= 0.98, summary
        assert float(np.mean(hits[f"pair:{fam}"])) < 0.90, summary


def test_robustness_clusters_rewritten_pairs_by_group() -> None:
    data = simulate(_grouped_spec(8, n_pairs=1800, rewrite_fraction=0.5))
    group = analyze(data.inputs(), AnalysisOptions(n_bootstrap=100))
    pair = analyze(data.inputs(), AnalysisOptions(n_bootstrap=100, cluster="pair"))
    rg, rp = group.robustness["paraphrase"], pair.robustness["paraphrase"]  # type: ignore[index]
    acc_g, acc_p = rg.accuracy[-1], rp.accuracy[-1]
    assert acc_g.n == acc_p.n and acc_g.drop == acc_p.drop
    assert acc_g.agreement_original.design_effect > 1 and acc_p.agreement_original.design_effect == 1
    assert isinstance(rg.lpm, RegressionResult) and isinstance(rp.lpm, RegressionResult)
    assert rp.lpm.cov_type == "HC3" and rg.lpm.cov_type in ("CR2", "cluster")
    assert rg.lpm.n_clusters is not None and rg.lpm.n_clusters < acc_g.n
    assert [c.estimate for c in rg.lpm.coefficients] == pytest.approx(
        [c.estimate for c in rp.lpm.coefficients]
    )
