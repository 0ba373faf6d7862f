"""The multiple-testing family (issue 20): per regression by default, across RMs on request.

The independent check is statsmodels' ``multipletests`` over the union of the RMs' raw p-values."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from seal_audit.stats import (
    AnalysisInputs,
    AnalysisOptions,
    AnalysisResult,
    SimulationSpec,
    analyze,
    simulate,
)
from seal_audit.stats.family import refamily
from seal_audit.stats.regression import design_memo, ols

EXTRA = ("extra:a", "extra b")


@pytest.fixture(scope="module")
def inputs() -> AnalysisInputs:
    """The simulated pre/post pair plus two extra RMs (noisy copies) and the length baseline."""
    sim = simulate(SimulationSpec(n_pairs=600, seed=11, rewrite_fraction=0.5, truth_mc_pairs=5_000))
    rng = np.random.default_rng(0)
    rows = [sim.scores]
    for name, src, noise in ((EXTRA[0], "post", 0.5), (EXTRA[1], "pre", 1.0)):
        s = sim.scores[sim.scores["rm"].astype(str) == src].copy()
        s["rm"] = name
        s["reward"] = s["reward"].to_numpy() + rng.normal(0.0, noise, len(s))
        rows.append(s)
    return AnalysisInputs(
        pairs=sim.pairs,
        scores=pd.concat(rows, ignore_index=True),
        post="post",
        pre="pre",
        features=sim.features,
        specs=sim.specs,
        rewrites=sim.rewrites,
        baselines=("length_chars",),
    )


def _fits(st: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Per RM (non-baseline): the regression of ``kind`` as stats.json holds it."""
    out = {}
    for rm, m in st["per_rm"].items():
        if m["role"] == "baseline":
            continue
        if kind in ("pooled", "fe"):
            out[rm] = m["imprint"][kind]["regression"]
        elif kind.startswith("misalignment."):
            out[rm] = m["misalignment"][kind.split(".")[1]]
        else:
            _, t, model = kind.split(".")
            out[rm] = m["robustness"][t][model]
    return {rm: f for rm, f in out.items() if "coefficients" in f}


def _terms(fit: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in fit["coefficients"] if c["term"] != "intercept" and c["p_value"] is not None]


@pytest.fixture(scope="module")
def both(inputs: AnalysisInputs) -> tuple[dict[str, Any], dict[str, Any]]:
    per = json.loads(analyze(inputs, AnalysisOptions(n_bootstrap=50)).to_json())
    across = json.loads(
        analyze(inputs, AnalysisOptions(n_bootstrap=50, correction_family="across_rms")).to_json()
    )
    return per, across


@pytest.mark.parametrize("correction", ["bonferroni", "holm"])
def test_across_rms_matches_statsmodels_multipletests(inputs: AnalysisInputs, correction: str) -> None:
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    st = json.loads(
        analyze(
            inputs, AnalysisOptions(n_bootstrap=50, correction=correction, correction_family="across_rms")
        ).to_json()
    )
    kinds = ["pooled", "fe", "misalignment.lpm", "robustness.paraphrase.lpm"]
    for kind in kinds:
        fits = _fits(st, kind)
        assert set(fits) == {"post", "pre", *EXTRA}, kind  # four RMs in one family
        coefs = [c for rm in sorted(fits) for c in _terms(fits[rm])]
        p = np.array([c["p_value"] for c in coefs])
        rej_b, p_b, _, _ = multipletests(p, alpha=0.05, method="bonferroni")
        rej_h, p_h, _, _ = multipletests(p, alpha=0.05, method="holm")
        got_b = np.array([c["p_bonferroni"] for c in coefs])
        got_h = np.array([c["p_holm"] for c in coefs])
        np.testing.assert_allclose(got_b, p_b, rtol=1e-9, err_msg=kind)
        np.testing.assert_allclose(got_h, p_h, rtol=1e-9, err_msg=kind)
        want = rej_b if correction == "bonferroni" else rej_h
        assert [c["significant"] for c in coefs] == want.tolist(), kind
        for rm, fit in fits.items():
            assert fit["family_size"] == len(coefs) and f"of the {len(fits)} RMs'" in fit["adjusted_ci"], rm
            for c in _terms(fit):  # the adjusted interval still excludes 0 exactly when significant
                lo, hi = c["ci_low_adjusted"], c["ci_high_adjusted"]
                assert (lo > 0 or hi < 0) == c["significant"], (kind, rm, c["term"])
        # a wider family: never more rejections than per regression, and some p-value got larger
        assert len(p) > max(len(_terms(f)) for f in fits.values())


def test_default_is_per_regression_and_the_family_is_stated(
    both: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    per, across = both
    for rm, fit in _fits(per, "pooled").items():
        terms = _terms(fit)
        _, p_b, _, _ = multipletests([c["p_value"] for c in terms], method="bonferroni")
        np.testing.assert_allclose([c["p_bonferroni"] for c in terms], p_b, rtol=1e-9, err_msg=rm)
        assert fit["family_size"] == len(terms)
    assert per["options"]["correction_family"] == "per_regression"
    assert per["multiple_testing"]["family"] == "per regression"
    assert per["leaderboard"]["correction_family"] == "per regression"
    assert "not across RMs" in per["leaderboard"]["correction_detail"]
    assert across["options"]["correction_family"] == "across_rms"
    assert across["multiple_testing"]["family"] == "across RMs"
    assert across["leaderboard"]["correction_family"] == "across RMs"
    assert "every RM's regressions" in across["multiple_testing"]["detail"]


def test_across_rms_changes_only_the_corrected_parts(both: tuple[dict[str, Any], dict[str, Any]]) -> None:
    per, across = both
    fixed = ("estimate", "se", "p_value", "ci_low", "ci_high", "statistic", "df")
    for kind in ("pooled", "misalignment.lpm"):
        a, b = _fits(per, kind), _fits(across, kind)
        for rm in a:
            for ca, cb in zip(a[rm]["coefficients"], b[rm]["coefficients"], strict=True):
                assert {k: ca[k] for k in fixed} == {k: cb[k] for k in fixed}
                if ca["term"] != "intercept" and ca["p_bonferroni"] is not None:
                    assert cb["p_bonferroni"] >= ca["p_bonferroni"]
                    assert not (cb["significant"] and not ca["significant"])
    # the top-level post-D / pre-D entries are those RMs' per-RM fits, with the same verdicts
    for est in ("pooled", "fe"):
        assert (
            across["imprint"][est]["post"]["regression"]
            == across["per_rm"]["post"]["imprint"][est]["regression"]
        )
        assert (
            across["imprint"][est]["pre"]["regression"]
            == across["per_rm"]["pre"]["imprint"][est]["regression"]
        )
        # comparisons stay per regression
        assert (
            across["imprint"][est]["post_minus_pre"]["regression"]
            == per["imprint"][est]["post_minus_pre"]["regression"]
        )
    assert across["misalignment"] == across["per_rm"]["post"]["misalignment"]
    assert across["robustness"] == across["per_rm"]["post"]["robustness"]


def test_the_tables_and_the_leaderboard_follow_the_family(inputs: AnalysisInputs) -> None:
    res = analyze(inputs, AnalysisOptions(n_bootstrap=50, correction_family="across_rms"))
    text = res.to_json()
    assert AnalysisResult.from_json(text).to_json() == text  # the report reads it back typed
    # the one-pass writer gives the standard library's text, byte for byte
    assert (
        text
        == json.dumps(res.to_dict(), sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    )
    st = json.loads(text)
    tab = res.tables()["per_rm_imprint"]
    for rm, fit in _fits(st, "pooled").items():
        rows = tab[(tab["rm"] == rm) & (tab["estimator"] == "pooled")].set_index("term")
        for c in fit["coefficients"]:
            got = rows.loc[c["term"], "p_bonferroni"]
            assert (math.isnan(got) and c["p_bonferroni"] is None) or math.isclose(
                got, c["p_bonferroni"], rel_tol=1e-9
            )
    top = res.tables()["imprint"]
    post = top[(top["model"] == "post") & (top["estimator"] == "pooled")].set_index("term")
    for c in st["imprint"]["pooled"]["post"]["regression"]["coefficients"]:
        assert bool(post.loc[c["term"], "significant"]) == c["significant"]
    board = {r["rm"]: r for r in st["leaderboard"]["rows"]}
    for rm, fit in _fits(st, "pooled").items():
        by_term = {c["term"]: c for c in fit["coefficients"]}
        for t in board[rm]["top_imprints"]:
            assert t["significant"] == by_term[t["term"]]["significant"]


def test_one_fit_alone_is_its_own_family() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 4))
    y = x @ np.array([0.3, 0.0, -0.2, 0.05]) + rng.normal(size=200)
    for correction in ("bonferroni", "holm"):
        fit = ols(y, x, ["a", "b", "c", "d"], correction=correction)
        (again,) = refamily([fit], "")
        assert repr(again.coefficients) == repr(fit.coefficients) and again.adjusted_ci == fit.adjusted_ci


def test_design_memo_gives_the_fits_computed_without_it() -> None:
    rng = np.random.default_rng(4)
    x = (rng.random((300, 3)) < 0.3).astype(float)
    groups = np.repeat(np.arange(150), 2)
    ys = [x @ np.array([0.5, -0.2, 0.1]) + rng.normal(size=300) for _ in range(3)]
    for cov in ("CR2", "cluster", "HC3", "nonrobust"):
        plain = [ols(y, x, ["a", "b", "c"], cov_type=cov, groups=groups) for y in ys]
        with design_memo():
            memo = [ols(y, x, ["a", "b", "c"], cov_type=cov, groups=groups) for y in ys]
        for a, b in zip(plain, memo, strict=True):
            assert repr(a.coefficients) == repr(b.coefficients) and np.array_equal(a.cov, b.cov), (
                cov
            )  # repr: NaN-safe, exact


def test_cli_flag_and_toml_set_the_family(tmp_path: Path) -> None:
    """One source: the [analysis] key and the generated flag of ``seal analyze``."""
    out = subprocess.run(
        [sys.executable, "-m", "seal_audit", "analyze", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "--correction-family" in out.stdout
    assert "across_rms" in out.stdout and "per_regression" in out.stdout
    from seal_audit.config import load_config

    cfg = tmp_path / "seal.toml"
    cfg.write_text(
        '[run]\nout = "x"\n[[data]]\npath = "d.jsonl"\n[analysis]\ncorrection_family = "across_rms"\n'
    )
    assert load_config(cfg).analysis.correction_family == "across_rms"
    cfg.write_text('[run]\nout = "x"\n[[data]]\npath = "d.jsonl"\n[analysis]\ncorrection_family = "all"\n')
    with pytest.raises(Exception, match="correction_family"):
        load_config(cfg)
