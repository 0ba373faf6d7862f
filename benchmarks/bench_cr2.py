"""CR2 (Bell–McCaffrey) vs CR1 cluster covariance: time of one pooled imprint-sized OLS fit.

2 texts per pair, 15 binary features; the CR2 time includes the per-coefficient Bell–McCaffrey df.
Usage: ``PYTHONPATH=src python benchmarks/bench_cr2.py [--pairs 2312 20000 160800] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from seal_audit.stats.regression import ols


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, nargs="+", default=[2312, 20000, 160800])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    k = 15
    print(f"{'pairs':>8} {'CR1 s':>8} {'CR2 s':>8}")
    for n in args.pairs:
        x = (rng.random((2 * n, k)) < 0.3).astype(float)
        g = np.repeat(np.arange(n), 2)
        y = x @ rng.normal(size=k) + rng.normal(size=2 * n)
        times = {}
        for cov in ("cluster", "CR2"):
            runs = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                ols(y, x, [f"f{j}" for j in range(k)], cov_type=cov, groups=g)  # type: ignore[arg-type]
                runs.append(time.perf_counter() - t)
            times[cov] = statistics.median(runs)
        print(f"{n:>8} {times['cluster']:8.3f} {times['CR2']:8.3f}")


if __name__ == "__main__":
    main()
