"""Fast checks of the report without a browser: escaping, sections, numbers, CLI, degraded runs."""

from __future__ import annotations

import dataclasses
import html as html_lib
import json
import re
import threading
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from seal_audit._cli import cli
from seal_audit.report import build_report, embed_json
from seal_audit.report._svg import pct
from seal_audit.store import RunStore, write_text_atomic

from .conftest import XSS_IMG, XSS_SCRIPT, XSS_TEXT

SECTIONS = (
    "headline",
    "imprint",
    "resistance",
    "misalignment",
    "robustness",
    "calibration",
    "watchlist",
    "explorer",
    "manifest",
)


def _outside_data(html: str) -> str:
    """The page without the JSON data block and our own script: where no dataset markup may appear."""
    html = re.sub(r'<script type="application/json" id="pair-data">.*?</script>', "", html, flags=re.S)
    return re.sub(r"<script>.*?</script>", "", html, flags=re.S)


@pytest.fixture(scope="module")
def built(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, dict]:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("out") / "report.html"
    paths = build_report(RunStore(run_dir, create=False), out)
    assert paths.warnings == ()
    stats = json.loads((run_dir / "stats.json").read_text())
    return paths.html.read_text(encoding="utf-8"), paths.md.read_text(encoding="utf-8"), stats


def test_embed_json_round_trips_and_cannot_close_the_script() -> None:
    obj = {"t": [XSS_TEXT, "</SCRIPT >", "<!-- x", "<Script>", "a</b>", "\u2028 é 中"]}
    text = embed_json(obj)
    assert json.loads(text) == obj
    low = text.lower()
    assert "</" not in low and "<!--" not in low and "<script" not in low


def test_every_section_has_a_reading_guide(built: tuple[str, str, dict]) -> None:  # type: ignore[type-arg]
    html, _, _ = built
    for sid in SECTIONS:
        m = re.search(rf'<section id="{sid}">\s*<h2>[^<]+</h2>\s*<p class="guide">([^<]+)</p>', html)
        assert m, f"section {sid} lacks a title and a one-line guide"
    assert "<svg" in html and "not computed" not in html.split('id="explorer"')[0]


def test_self_contained_with_a_strict_csp(built: tuple[str, str, dict]) -> None:  # type: ignore[type-arg]
    html, _, _ = built
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert csp
    policy = html_lib.unescape(csp.group(1))
    assert "default-src 'none'" in policy and "connect-src 'none'" in policy and "img-src data:" in policy
    assert re.search(r"script-src 'unsafe-inline' 'sha256-[A-Za-z0-9+/=]+'", policy)
    # nothing is loaded from anywhere: no external src/href, no @import, no url() to the network
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    assert "@import" not in html and not re.search(r"url\(\s*['\"]?(?:https?:)?//", html)
    assert html.count("</script>") == 2  # the data block and our script; dataset text cannot add one


def test_dataset_markup_is_escaped_everywhere(built: tuple[str, str, dict]) -> None:  # type: ignore[type-arg]
    html, _, _ = built
    rest = _outside_data(html)
    assert XSS_SCRIPT not in rest and "<img" not in rest.lower()
    assert "onerror=" not in re.sub(r"onerror=(&quot;|&#34;)", "", rest)  # only ever as escaped text
    data = re.search(r'<script type="application/json" id="pair-data">(.*?)</script>', html, flags=re.S)
    assert data
    doc = json.loads(data.group(1))
    assert XSS_TEXT in doc["ch"] and any(XSS_IMG in c for c in doc.get("ctx", doc.get("ctx_u", [])))


def test_headline_numbers_are_the_stats_json_numbers(built: tuple[str, str, dict]) -> None:  # type: ignore[type-arg]
    html, _, stats = built
    pattern = r'data-stat="([^"]+)" data-value="([^"]*)">([^<]*)<'
    found = {k: (v, t) for k, v, t in re.findall(pattern, html)}
    assert found["n_pairs"] == (str(stats["inputs"]["n_pairs"]), f"{stats['inputs']['n_pairs']:,}")
    res = stats["resistance"]["rate"]
    assert float(found["resistance"][0]) == res and found["resistance"][1] == pct(res)
    for rm, ag in stats["agreement"].items():
        v, t = found[f"agreement:{rm}"]
        assert float(v) == ag["agreement"]["rate"] and t == pct(ag["agreement"]["rate"])
    for k, share in stats["regimes"]["shares"].items():
        v, t = found[f"regime:{k}"]
        assert float(v) == share["rate"] and t == pct(share["rate"])


def test_markdown_summary(built: tuple[str, str, dict]) -> None:  # type: ignore[type-arg]
    _, md, stats = built
    assert "## Headline" in md and pct(stats["resistance"]["rate"]) in md
    assert "stayed aligned" in md and "Feature imprint" in md and "Robustness" in md


def test_explorer_payload_matches_the_diagnostics(run_dir: Path) -> None:
    from seal_audit.report._data import load
    from seal_audit.report._explorer import explorer_payload

    data = load(RunStore(run_dir, create=False))
    doc = explorer_payload(data)
    diag = data.tables["pair_diagnostics"].set_index("pair_id")
    assert doc["n"] == len(diag) == len(doc["ids"])
    regimes = doc["regimes"]
    for i in (0, 7, doc["n"] - 1):
        pid = doc["ids"][i]
        assert regimes[doc["regime"][i]] == diag.loc[pid, "regime"]
        assert doc["gamma"][i] == diag.loc[pid, "gamma"]
        assert doc["rw"]["post"][0][i] == pytest.approx(diag.loc[pid, "post_chosen"], abs=1e-4)
    assert {f["name"] for f in doc["feats"]} >= {"is_harmless", "sentiment"}
    assert doc["feats"][0]["role"] == "target"


def test_calibration_bins_hold_each_pair_once_and_match_the_symmetric_ece(run_dir: Path) -> None:
    """The pair-once (folded) reliability table: every pair in one bin, bin counts sum to the pairs
    stats.json calibrated, its ECE is the symmetric one, and the page's bin codes say the same."""
    import numpy as np

    from seal_audit.report._data import load
    from seal_audit.report._explorer import BIN_CODES, explorer_payload
    from seal_audit.stats.reliability import winner_bin, winner_reliability

    data = load(RunStore(run_dir, create=False))
    assert data.result is not None
    doc = explorer_payload(data)
    diag = data.tables["pair_diagnostics"]
    for rm, cal in data.result.calibration.items():
        r = diag[[f"{rm}_chosen", f"{rm}_rejected"]].to_numpy(dtype=float)
        folded = winner_reliability(rm, r, data.result.options.calibration_bins)
        assert folded.n == cal.n == sum(b.n for b in folded.bins)
        assert len(folded.bins) == data.result.options.calibration_bins // 2
        assert folded.ece == pytest.approx(cal.ece, abs=1e-9)
        codes = doc["cal"]["rms"][rm]
        assert [codes.count(BIN_CODES[b.bin]) for b in folded.bins] == [b.n for b in folded.bins]
        # observed = share of the bin where the RM agrees with the human (strict, ties miss)
        b = max(folded.bins, key=lambda x: x.n)
        m = r[:, 0] - r[:, 1]
        sel = winner_bin(m, data.result.options.calibration_bins) == b.bin
        assert b.observed == pytest.approx(float(np.mean(m[sel] > 0)))
    # a tie sits in the first bin and counts as a miss; a missing reward is in no bin
    t = winner_reliability("x", np.array([[1.0, 1.0], [2.0, np.nan], [5.0, 0.0]]), 10)
    assert t.n == 2 and t.bins[0].n == 1 and t.bins[0].observed == 0 and t.bins[-1].n == 1


def test_run_without_stats_still_renders(tmp_path: Path, run_dir: Path) -> None:
    store = RunStore(tmp_path / "bare")
    store.write_table("pairs", RunStore(run_dir, create=False).read_table("pairs").head(20))
    paths = build_report(store)
    html = paths.html.read_text(encoding="utf-8")
    assert "not computed:" in html and "no stats.json" in html
    assert '"n":20' in html
    assert "Statistics not computed" in paths.md.read_text(encoding="utf-8")


def test_skipped_and_broken_analyses_are_stated_not_fatal(fresh_run: Path) -> None:
    stats = json.loads((fresh_run / "stats.json").read_text())
    stats["regimes"] = {"status": "skipped", "reason": "no pre-D RM", "features": []}
    stats["robustness"] = {"status": "failed", "reason": "robustness LPM: no rows to fit", "features": []}
    stats["imprint"] = {"pooled": 5}  # a malformed entry from some other version
    write_text_atomic(fresh_run / "stats.json", json.dumps(stats))
    paths = build_report(RunStore(fresh_run, create=False))
    html = paths.html.read_text(encoding="utf-8")
    assert "not computed:</strong> could not be computed: robustness LPM: no rows to fit" in html
    assert "Regimes not computed: no pre-D RM" in html
    assert any("imprint" in w for w in paths.warnings)
    assert "could not render" in html and 'id="calibration"' in html
    # the typed read-back refuses the malformed document and says so, the rest still renders
    assert "does not match the result schema" in html


def test_run_without_pre_d_rm(tmp_path: Path) -> None:
    """A real analysis without a pre-D RM: regime, θ and pre-D panels say so."""
    from seal_audit.stats.analysis import analyze
    from seal_audit.stats.options import AnalysisOptions
    from seal_audit.stats.simulate import SimulationSpec, simulate

    sim = simulate(SimulationSpec(n_pairs=200, seed=1, truth_mc_pairs=5000))
    res = analyze(dataclasses.replace(sim.inputs(), pre=None), AnalysisOptions(n_bootstrap=0))
    store = RunStore(tmp_path / "r")
    write_text_atomic(store.path("stats.json"), res.to_json())
    for name, df in res.tables().items():
        store.write_table(f"analysis/{name}", df)
    store.write_table("scores", sim.scores[sim.scores["rm"] != "pre"])
    html = build_report(store).html.read_text(encoding="utf-8")
    assert "not computed:</strong> no pre-D RM" in html
    assert "pre-D RM (β₀): not computed (no pre-D RM)" in html


def test_cli_report_and_view(fresh_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    out = fresh_run / "elsewhere" / "r.html"
    res = runner.invoke(cli, ["report", str(fresh_run), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and out.with_suffix(".md").exists()
    opened: list[str] = []

    def fake_open(url: str) -> bool:
        opened.append(url)
        return True

    monkeypatch.setattr("webbrowser.open", fake_open)
    res = runner.invoke(cli, ["view", str(fresh_run)])  # no report.html in the run yet: builds it
    assert res.exit_code == 0, res.output
    assert opened == [(fresh_run / "report.html").resolve().as_uri()]


def test_serve_binds_localhost_and_serves_the_report(fresh_run: Path) -> None:
    from seal_audit._cli.view import serve

    build_report(RunStore(fresh_run, create=False))
    server = serve(fresh_run, 0)
    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/report.html", timeout=10) as r:
            assert r.status == 200 and b'id="pair-data"' in r.read()
    finally:
        server.shutdown()
        server.server_close()


def test_statistics_caveats_and_adjusted_intervals_are_stated(built: tuple[str, str, dict]) -> None:  # type: ignore[type-arg]
    """The θ caption states its sign from the numbers it shows, the drawn intervals are the adjusted
    ones that match the verdicts (named), power verdicts are explained, and the caveats reach the
    findings strip and report.md."""
    html, md, stats = built
    sh = stats["reward_shift"]
    got = sh["by_regime"]["got_aligned"]["mean"]
    assert "pairs that got aligned have mean" in html and f"{got:.1f}°" in html
    assert "reward_shift.theta_paper" in html and "offset-invariant" in html
    reg = stats["imprint"]["pooled"]["post"]["regression"]
    assert reg["adjusted_ci"] and "the intervals drawn are the adjusted ones" in html
    assert "adjusted (simultaneous) CI" in html and "minimum detectable effect" in html
    for note in stats["caveats"]["notes"]:
        assert f"caveat: {note}" in md
    assert 'id="findings"' in html


def test_no_verdict_contradicts_the_interval_printed_beside_it(built: tuple[str, str, dict]) -> None:  # type: ignore[type-arg]
    _, md, _ = built
    rows = re.findall(
        r"^\| (\S+) \| \w* \| ([-+0-9.e]+) \[([-+0-9.e]+), ([-+0-9.e]+)\] \| [^|]* \| ([a-z ]+) \|$", md, re.M
    )
    assert rows and "β post-D [adjusted CI]" in md
    for term, _est, lo, hi, verdict in rows:
        excludes_zero = float(lo) > 0 or float(hi) < 0
        assert (verdict == "significant") == excludes_zero, (term, lo, hi, verdict)


def test_text_budget_keeps_every_number_and_a_sample_of_texts(run_dir: Path) -> None:
    """At scale the page embeds all numbers and the texts of a sample: the watchlist first."""
    from seal_audit.report._data import load
    from seal_audit.report._explorer import explorer_payload

    data = load(RunStore(run_dir, create=False))
    full = explorer_payload(data)
    assert "txt_i" not in full
    small = explorer_payload(data, text_budget=60_000)
    kept = small["txt_i"]
    assert 0 < len(kept) < small["n"] and kept == sorted(kept)
    assert len(small["ch"]) == len(small["rj"]) == len(kept)
    # numbers are untouched: every pair keeps its rewards, regime and flags
    assert small["rw"] == full["rw"] and small["regime"] == full["regime"] and small["ids"] == full["ids"]
    susp = data.tables["suspicious_pairs"]["pair_id"].astype(str).head(10)
    pos = {pid: i for i, pid in enumerate(full["ids"])}
    assert {pos[p] for p in susp} <= set(kept)  # the watchlist's texts are always there
    k = kept.index(pos[susp.iloc[0]])
    assert small["ch"][k] == full["ch"][pos[susp.iloc[0]]]
    # rewrite texts only for pairs with texts
    tr = small["tr"][0]
    with_text = {tr["i"][int(key[1:])] for side in tr["txt"] for key in side}
    assert with_text <= set(kept)


def test_headline_lists_the_regimes_in_the_method_order_after_read_back(run_dir: Path) -> None:
    """stats.json has sorted keys; the terminal (fresh result) and report.md (read back) must agree."""
    from seal_audit.report._view import headline
    from seal_audit.stats import REGIMES, AnalysisResult

    result = AnalysisResult.from_json((run_dir / "stats.json").read_text(encoding="utf-8"))
    line = next(f.text for f in headline(result).findings if f.key == "regimes")
    where = [line.index(name.replace("_", " ")) for name in REGIMES]
    assert where == sorted(where), line


def test_headline_imprint_line_names_the_correction_family(run_dir: Path) -> None:
    from seal_audit.report._view import headline
    from seal_audit.stats import AnalysisResult

    result = AnalysisResult.from_json((run_dir / "stats.json").read_text(encoding="utf-8"))
    line = next(f.text for f in headline(result).findings if f.key == "imprint")
    assert "family per regression" in line, line


def test_headline_imprints_quote_the_adjusted_interval(run_dir: Path) -> None:
    """The verdict is the corrected one, so the interval beside it must be the adjusted one."""
    from seal_audit.report._view import headline
    from seal_audit.stats import AnalysisResult

    result = AnalysisResult.from_json((run_dir / "stats.json").read_text(encoding="utf-8"))
    post = result.imprint["pooled"]["post"]  # type: ignore[index]
    sig = [c for c in post.regression.coefficients if c.term != "intercept" and c.significant]
    assert sig, "the fixture run has a significant imprint"
    line = next(f.text for f in headline(result).findings if f.key == "imprint")
    c = max(sig, key=lambda c: abs(c.estimate))
    assert f"{c.term} {c.estimate:+.3g} [{c.ci_low_adjusted:+.3g}, {c.ci_high_adjusted:+.3g}]" in line, line
    assert (c.ci_low_adjusted, c.ci_high_adjusted) != (c.ci_low, c.ci_high)


def test_headline_says_no_rewrite_flipped_when_none_did(run_dir: Path) -> None:
    import dataclasses

    from seal_audit.report._view import headline
    from seal_audit.stats import AnalysisResult

    result = AnalysisResult.from_json((run_dir / "stats.json").read_text(encoding="utf-8"))
    assert isinstance(result.robustness, dict) and result.robustness
    none_flipped = {
        name: dataclasses.replace(
            rob,
            accuracy=tuple(
                dataclasses.replace(a, flipped=dataclasses.replace(a.flipped, rate=0.0)) for a in rob.accuracy
            ),
        )
        for name, rob in result.robustness.items()
    }
    line = next(
        f.text
        for f in headline(dataclasses.replace(result, robustness=none_flipped)).findings
        if f.key == "robustness"
    )
    assert line.startswith("no rewrite flipped a post-D preference"), line
    assert "most fragile" in next(f.text for f in headline(result).findings if f.key == "robustness")


def test_small_whole_number_features_travel_as_digits_and_decode_exactly() -> None:
    """The JS decoder reads char - 48 + lo, '.' missing; floats and wide ranges stay lists."""
    import numpy as np

    from seal_audit.report._explorer import _feature_column, feature_values

    ch = np.array([-1.0, 0.0, 1.0, np.nan, 1.0])
    rj = np.array([1.0, 1.0, -1.0, 0.0, np.nan])
    col = _feature_column(ch, rj)
    assert col == {"lo": -1, "s": ["012.2", "2201."]}
    decoded = [[np.nan if c == "." else ord(c) - 48 + col["lo"] for c in s] for s in col["s"]]
    np.testing.assert_array_equal(np.array(decoded), np.stack([ch, rj]))
    np.testing.assert_array_equal(np.stack(feature_values(col)), np.stack([ch, rj]))
    assert isinstance(_feature_column(np.array([0.5, 1.0]), np.array([0.0, 1.0])), list)
    assert isinstance(_feature_column(np.array([0.0, 10.0]), np.array([0.0, 1.0])), list)
