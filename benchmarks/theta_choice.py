"""Which reward shift θ should be the default? The simulation behind docs/results.md, "reward_shift".

For seeded ``seal simulate`` datasets (rewards mostly positive at offset 0) and additive offsets
c0, c1 ∈ {−5, −2, 0, 2, 5} added to all rewards of the pre-D / post-D RM (which move them across
zero, as real RMs' rewards straddle it), each θ variant is scored on:

* ``offset_range``: the largest change of a regime's mean θ over the offsets (0 = offset-invariant);
* ``got+``: share of 'got aligned' pairs (0 → 1) with θ > 0, at the worst offset;
* ``rev-``: share of 'reversed' pairs (1 → 0) with θ < 0, at the worst offset;
* ``corr``: Spearman correlation of θ with the planted change of P(human's choice wins),
  Φ(Δβ1 / σ√2) − Φ(Δβ0 / σ√2), at offset 0.

Usage: ``PYTHONPATH=src python benchmarks/theta_choice.py [--datasets 5] [--pairs 2000]``
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
from scipy import special, stats

from seal_audit.stats.shift import SHIFT_FUNCTIONS
from seal_audit.stats.simulate import SimulationSpec, simulate

OFFSETS = (-5.0, -2.0, 0.0, 2.0, 5.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", type=int, default=5)
    ap.add_argument("--pairs", type=int, default=2000)
    args = ap.parse_args()
    score: dict[str, dict[str, list[float]]] = {
        k: {"range": [], "got": [], "rev": [], "corr": []} for k in SHIFT_FUNCTIONS
    }
    for seed in range(args.datasets):
        spec = SimulationSpec(n_pairs=args.pairs, seed=seed, rewrite_fraction=0.0, truth_mc_pairs=1000)
        data = simulate(spec)
        s = data.scores[data.scores["variant"] == "original"]
        wide = s.pivot_table(index="pair_id", columns=["rm", "side"], values="reward")
        pre = wide["pre"][["chosen", "rejected"]].to_numpy()
        post = wide["post"][["chosen", "rejected"]].to_numpy()
        f = data.features[data.features["variant"] == "original"].pivot_table(
            index="pair_id", columns=["side", "feature"], values="value"
        )
        feats = spec.planted()
        names = [x.name for x in feats]
        d = f["chosen"][names].to_numpy() - f["rejected"][names].to_numpy()
        sd = spec.noise_sd * np.sqrt(2)
        dp = special.ndtr(d @ np.array([x.beta_post for x in feats]) / sd) - special.ndtr(
            d @ np.array([x.beta_pre for x in feats]) / sd
        )
        d0, d1 = pre[:, 0] > pre[:, 1], post[:, 0] > post[:, 1]
        got, rev = ~d0 & d1, d0 & ~d1
        for name, fn in SHIFT_FUNCTIONS.items():
            means = []
            got_pos, rev_neg = [], []
            for c0, c1 in itertools.product(OFFSETS, OFFSETS):
                th = fn(pre + c0, post + c1)
                means.append([th[got].mean(), th[rev].mean(), th[d0 & d1].mean(), th[~d0 & ~d1].mean()])
                got_pos.append(float(np.mean(th[got] > 0)))
                rev_neg.append(float(np.mean(th[rev] < 0)))
            m = np.array(means)
            score[name]["range"].append(float(np.max(m.max(axis=0) - m.min(axis=0))))
            score[name]["got"].append(min(got_pos))
            score[name]["rev"].append(min(rev_neg))
            score[name]["corr"].append(float(stats.spearmanr(fn(pre, post), dp)[0]))
    print(f"{args.datasets} datasets x {args.pairs} pairs, offsets {OFFSETS} on each RM")
    print(f"{'theta':>9} {'offset_range':>13} {'got+':>6} {'rev-':>6} {'corr':>6}")
    for name, sc in score.items():
        print(
            f"{name:>9} {np.mean(sc['range']):13.2f} {np.mean(sc['got']):6.3f} {np.mean(sc['rev']):6.3f}"
            f" {np.mean(sc['corr']):6.3f}"
        )


if __name__ == "__main__":
    main()
