"""Benchmark of report.html at paper scale: 160,800 pairs with rewrites, real hh-rlhf texts.

Builds a run directory (simulated SEAL data with planted effects, 10% of pairs rewritten, texts from
the hh-rlhf harmless-base test split cycled and made unique), analyses it, writes the report, and
opens it in headless Debian chromium to measure what a reader waits for:

- the size of report.html and the time ``seal report`` takes;
- JS heap after load (Chromium's ``JSHeapUsedSize``) and the time to a ready explorer;
- the time of one filter (regime), of a text search, and of a door (regime × γ, a robustness row).

    .venv/bin/python benchmarks/bench_report.py              # 160,800 pairs
    .venv/bin/python benchmarks/bench_report.py 20000 /tmp/r # another size, keep the run there
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

HH = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
CHROMIUM = "/usr/bin/chromium"
REPEATS = 5
"""Each interaction is timed this many times; the median and the range are printed (a shared machine
makes single timings noisy)."""


def build(root: Path, n_pairs: int) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    from seal_audit.sources import load_pairs
    from seal_audit.stats import AnalysisOptions, SimulationSpec, analyze, simulate
    from seal_audit.store import RunStore, pairs_to_frame, write_text_atomic

    t0 = time.perf_counter()
    sim = simulate(SimulationSpec(n_pairs=n_pairs, seed=1, rewrite_fraction=0.1, truth_mc_pairs=10_000))
    result = analyze(sim.inputs(), AnalysisOptions(seed=1, n_bootstrap=50))
    t1 = time.perf_counter()
    store = RunStore(root)
    frame = pairs_to_frame(load_pairs(HH))
    texts = pd.concat([frame] * -(-n_pairs // len(frame)), ignore_index=True).iloc[:n_pairs]
    texts = texts.reset_index(drop=True)
    tag = pd.Series([f" [{i}]" for i in range(n_pairs)])
    for col in ("context", "chosen", "rejected"):
        texts[col] = texts[col] + tag
    texts["pair_id"] = sim.pairs["pair_id"].astype(str).to_numpy()
    store.write_table("pairs", texts)
    store.write_table("scores", sim.scores)
    feats = sim.features.copy()
    feats["status"] = "ok"
    store.write_table("features", feats)
    rw = sim.rewrites.copy()
    by_id = texts.set_index("pair_id")
    rw["kind"] = "paraphrase"
    rw["original"] = [str(by_id.loc[p, s]) for p, s in zip(rw["pair_id"], rw["side"], strict=True)]
    rw["rewritten"] = np.where(rw["status"] == "ok", rw["original"].str.replace(" the ", " a ", n=2), None)
    store.write_table("rewrites", rw)
    write_text_atomic(store.path("stats.json"), result.to_json())
    for name, df in result.tables().items():
        store.write_table(f"analysis/{name}", df)
    return {"simulate_and_analyze_s": round(t1 - t0, 1), "write_run_s": round(time.perf_counter() - t1, 1)}


def report(root: Path) -> dict[str, float]:
    from seal_audit.report import build_report
    from seal_audit.store import RunStore

    t0 = time.perf_counter()
    paths = build_report(RunStore(root, create=False))
    return {
        "report_s": round(time.perf_counter() - t0, 1),
        "html_mb": round(paths.html.stat().st_size / 1e6, 1),
    }


def browse(html: Path) -> dict[str, float | str]:
    from playwright.sync_api import sync_playwright

    out: dict[str, float | str] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        t0 = time.perf_counter()
        page.goto(html.as_uri(), timeout=600_000)
        page.wait_for_selector("#explorer-app[data-ready='1']", timeout=600_000)
        out["load_to_ready_s"] = round(time.perf_counter() - t0, 2)
        cdp.send("HeapProfiler.collectGarbage")
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        out["js_heap_mb"] = round(metrics["JSHeapUsedSize"] / 2**20, 1)

        def timed(js: str) -> float:
            ms: float = page.evaluate(
                "(code) => { const t = performance.now(); (new Function(code))(); return performance.now() - t; }",
                js,
            )
            return ms

        reset = "document.querySelector('#ex-reset').click();"
        actions = {
            "filter_regime_ms": (
                reset,
                "const s = document.querySelector('#ex-regime'); s.value = '2'; s.dispatchEvent(new Event('change'));",
            ),
            "filter_transform_flipped_ms": (
                reset,
                "const t = document.querySelector('#ex-transform'); t.value = 'paraphrase';"
                "t.dispatchEvent(new Event('change'));"
                "const r = document.querySelector('#ex-rewrite'); r.value = 'flipped'; r.dispatchEvent(new Event('change'));",
            ),
            "door_regime_x_gamma_ms": (
                reset,
                'document.querySelector(\'a.door[href*="gamma=r"][href*="regime="]\').click();',
            ),
            # the sort of all 160,800 pairs (no filter), and once more the other way
            "sort_margin_ms": (reset, "document.querySelector('#ex-table th[data-key=\"m:post\"]').click();"),
            "sort_margin_desc_ms": (
                "",
                "document.querySelector('#ex-table th[data-key=\"m:post\"]').click();",
            ),
            "door_calibration_bin_ms": (
                reset,
                "document.querySelector('#calibration a.door').dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true}));",
            ),
            "open_pair_ms": (reset, "document.querySelector('#ex-table tbody tr').click();"),
        }
        runs: dict[str, list[float]] = {k: [] for k in actions}
        for _ in range(REPEATS):
            for key, (before_js, js) in actions.items():
                if before_js:
                    timed(before_js)
                runs[key].append(timed(js))
        for key, vals in runs.items():
            vals.sort()
            out[key] = round(vals[len(vals) // 2], 1)  # the median of REPEATS runs
            out[key.replace("_ms", "_range_ms")] = f"{vals[0]:.0f}-{vals[-1]:.0f}"
        page.click("#ex-reset")
        before = page.get_attribute("#ex-status", "data-count")
        t1 = time.perf_counter()
        page.fill("#ex-search", "knife")  # debounced by 200 ms, then one pass over every text
        page.wait_for_function(
            f"() => document.querySelector('#ex-status').getAttribute('data-count') !== '{before}'"
        )
        out["search_ms_after_debounce"] = round((time.perf_counter() - t1) * 1000 - 200, 1)
        browser.close()
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 160_800
    root = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp()) / "run"
    import os

    res: dict[str, float | int | str] = {"n_pairs": n, "run": str(root)}
    res["load_average_at_start"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    if not (root / "stats.json").exists():
        res.update(build(root, n))
    res.update(report(root))
    print(json.dumps(res), file=sys.stderr)
    res.update(browse(root / "report.html"))
    res["load_average_at_end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
