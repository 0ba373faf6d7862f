"""Benchmark of the SEAL statistics (``seal_audit.stats.analyze``) on simulated data.

Each size runs in its own subprocess so that its peak memory (ru_maxrss of that process, which
includes the simulated input tables) is not inflated by the previous size. The analysis is the full
one: agreement for 2 RMs (post, pre), regimes, γ, McNemar, θ, imprint (pooled + FE × post, pre,
post − pre), VIF, misalignment LPM + logit, robustness on a 1% rewrite sample, calibration,
breakdowns, suspicious pairs, per-pair tables and stats.json serialisation, 1,000 bootstrap draws.

    .venv/bin/python benchmarks/bench_stats.py            # 10k, 40k, 160.8k, 640k pairs
    .venv/bin/python benchmarks/bench_stats.py 160800     # one size
"""

from __future__ import annotations

import json
import subprocess
import sys

SIZES = (10_000, 40_000, 160_800, 640_000)


def _child(n_pairs: int) -> None:
    import resource
    import time

    from seal_audit.stats import AnalysisOptions, SimulationSpec, analyze, simulate

    t0 = time.perf_counter()
    data = simulate(
        SimulationSpec(
            n_pairs=n_pairs,
            seed=1,
            n_features=15,
            rewrite_fraction=0.01,
            length_baseline=False,
            truth_mc_pairs=10_000,
        )
    )
    t1 = time.perf_counter()
    result = analyze(data.inputs(), AnalysisOptions(seed=1, n_bootstrap=1000))
    text = result.to_json()
    tables = result.tables()
    t2 = time.perf_counter()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "pairs": n_pairs,
                "simulate_s": round(t1 - t0, 2),
                "analyze_s": round(t2 - t1, 2),
                "peak_rss_mb": round(peak_mb),
                "stats_json_kb": round(len(text) / 1024),
                "n_tables": len(tables),
            }
        )
    )


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--child":
        _child(int(argv[1]))
        return
    sizes = [int(a) for a in argv] or list(SIZES)
    print(f"{'pairs':>8} {'simulate s':>11} {'analyze s':>10} {'peak RSS MB':>12} {'µs/pair':>8}")
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n)], check=True, capture_output=True, text=True
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        per = row["analyze_s"] / n * 1e6
        print(
            f"{n:>8} {row['simulate_s']:>11.2f} {row['analyze_s']:>10.2f} {row['peak_rss_mb']:>12} {per:>8.1f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
