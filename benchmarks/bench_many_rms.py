"""Benchmark: the SEAL analysis of ten RMs against two on the real hh-rlhf harmless-base test split.

Issue 20 asks that ten RMs analyze in under 3x the time of two. The run directory is built once (all
2,312 pairs, offline featurizers, controlled rewrites of 10% of the pairs so that robustness is in
the timing): eight hashed n-gram RMs trained with different seeds (on D: in-sample, which does not
matter for timing) plus the two length RMs, none a baseline (a baseline gets agreement and
calibration only, which would flatter the ratio). Then ``analyze`` + ``to_json`` run on the same
tables with the scores of two RMs (the pre-D and post-D ones) and of all ten, REPS times each, in a
child process per BLAS setting: the environment's default BLAS threads (OMP/OPENBLAS/MKL_NUM_THREADS
unset) and BLAS pinned to one thread. The medians (wall and CPU) and their ratios are printed per
setting, with the multiple-testing family every output states. Nothing is cached between the
repetitions (the design memo lives for one ``analyze`` call).

    .venv/bin/python benchmarks/bench_many_rms.py [RUN_DIR]     # default: a temporary directory
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
REPS = 5

CONFIG = """
[run]
out = "{out}"
seed = 1
report = false

[[data]]
path = "{data}"

{train}

[[rms]]
name = "length chars"
role = "extra"
spec = "length_chars"

[[rms]]
name = "length_tokens"
role = "extra"
spec = "length_tokens"

[labels]
featurizers = ["offline"]

[rewrite]
transforms = ["typos", "add_apology"]
sample = 0.1
"""


def _train_block() -> str:
    out = []
    for i in range(8):
        role = "pre" if i == 0 else "post" if i == 1 else "extra"
        out.append(
            f'[[train_rm]]\nname = "ngram-{i}"\nrole = "{role}"\ndata = "A+D"\nkind = "ngram"\nseed = {i}\n'
        )
    return "\n".join(out)


def build(run: Path) -> float:
    cfg = run.parent / "bench_many_rms.toml"
    cfg.write_text(CONFIG.format(out=run, data=DATA, train=_train_block()))
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "seal_audit", "run", str(cfg), "--quiet"], capture_output=True, text=True
    )
    if r.returncode != 0:
        raise SystemExit(f"seal run failed ({r.returncode}): {r.stderr[-2000:]}")
    return time.perf_counter() - t0


def time_analysis(run: Path) -> dict[str, object]:
    """Median times of two vs ten RMs in this process (its BLAS setting comes from the environment)."""
    from threadpoolctl import threadpool_info

    from seal_audit.pipeline import read_feature_specs, recorded_analysis_options
    from seal_audit.stats import AnalysisInputs, analyze
    from seal_audit.store import RunStore

    store = RunStore(run)
    m = store.manifest
    opts = recorded_analysis_options(store)
    scores = store.read_table("scores")
    base = dict(
        pairs=store.read_table("pairs"),
        post=m.role_of("post"),
        pre=m.role_of("pre"),
        features=store.read_table("features"),
        specs=read_feature_specs(store),
        rewrites=store.read_table("rewrites") if store.has_table("rewrites") else None,
    )
    rms = sorted(set(scores["rm"].astype(str)))
    two = [base["pre"], base["post"]]
    out: dict[str, object] = {
        "blas_env": {v: os.environ.get(v, "unset") for v in BLAS_VARS},
        "blas_threads_outside_analyze": sorted(
            {i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"}
        ),
    }
    for label, names in (("two", two), ("ten", rms)):
        inputs = AnalysisInputs(scores=scores[scores["rm"].astype(str).isin(names)], **base)  # type: ignore[arg-type]
        times, cpu = [], []
        for _ in range(REPS):
            t0, c0 = time.perf_counter(), time.process_time()
            res = analyze(inputs, opts)
            res.to_json()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        out[f"{label}_rms"] = len(names)
        out[f"{label}_s"] = round(statistics.median(times), 3)
        out[f"{label}_all_s"] = [round(t, 3) for t in times]
        out[f"{label}_cpu_s"] = round(statistics.median(cpu), 3)
        out[f"{label}_not_computed"] = sorted(res.not_computed())
        mt = res.multiple_testing
        out["correction"] = mt.correction if mt else None
        out["correction_family"] = mt.detail if mt else None
    out["ratio_ten_over_two"] = round(float(out["ten_s"]) / float(out["two_s"]), 2)  # type: ignore[arg-type]
    # CPU time of this process: on a shared machine wall time also counts other processes' load
    out["cpu_ratio_ten_over_two"] = round(float(out["ten_cpu_s"]) / float(out["two_cpu_s"]), 2)  # type: ignore[arg-type]
    return out


def main(argv: list[str]) -> None:
    if argv[:1] == ["--time"]:  # the child: one BLAS setting
        print(json.dumps(time_analysis(Path(argv[1]))))
        return
    tmp = None
    if argv:
        run = Path(argv[0])
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-many-rms-")
        run = Path(tmp.name) / "run"
    build_s = build(run) if not (run / "stats.json").exists() else None
    from seal_audit.store import RunStore

    out: dict[str, object] = {
        "pairs": len(RunStore(run).read_table("pairs")),
        "build_run_s": round(build_s, 1) if build_s is not None else "reused",
        "reps": REPS,
        "target": "ten < 3 x two",
    }
    for setting in ("default_blas_threads", "blas_one_thread"):
        env = {k: v for k, v in os.environ.items() if k not in BLAS_VARS}
        if setting == "blas_one_thread":
            env.update({v: "1" for v in BLAS_VARS})
        r = subprocess.run(
            [sys.executable, __file__, "--time", str(run)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if r.returncode != 0:
            raise SystemExit(f"timing child failed ({r.returncode}): {r.stderr[-2000:]}")
        out[setting] = json.loads(r.stdout.strip().splitlines()[-1])
    print(json.dumps(out, indent=1))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main(sys.argv[1:])
