"""`seal --help` and shell completion against `python -c "import click"`, measured in one run.

The budget (issue 17): `seal --help` and completion may cost at most 0.3 s more than importing click,
so Tab completion stays instant however loaded the machine is. A verb's options are completed from
its completion index (``seal_audit._cli._complete``), written by the first Tab of that verb, whose
one-off cost is printed too but is not part of the budget. Each command runs REPS times,
interleaved, and the medians are compared (the machine's load affects all of them alike).

    python benchmarks/bench_cli.py [REPS]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 0.3


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main() -> int:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    complete = {**env, "_SEAL_COMPLETE": "bash_complete", "COMP_WORDS": "seal ", "COMP_CWORD": "1"}
    # a verb's options: from its completion index (written by the first Tab of that verb, done below)
    index = tempfile.mkdtemp(prefix="seal-completion-")
    options = {**complete, "COMP_WORDS": "seal score --", "COMP_CWORD": "2", "SEAL_COMPLETION_CACHE": index}
    py = sys.executable
    cold = timed([py, "-m", "seal_audit"], options)  # loads `seal score` once and writes its index
    cases = {
        "python -c 'import click'": ([py, "-c", "import click"], env),
        "seal --help": ([py, "-m", "seal_audit", "--help"], env),
        "seal <Tab> (bash completion)": ([py, "-m", "seal_audit"], complete),
        "seal score --<Tab> (index)": ([py, "-m", "seal_audit"], options),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(reps):
        for name, (cmd, e) in cases.items():
            times[name].append(timed(cmd, e))
    base = statistics.median(times["python -c 'import click'"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{reps} runs each, interleaved; load average {load:.2f}")
    worst = 0.0
    for name, ts in times.items():
        med = statistics.median(ts)
        extra = med - base
        if name != "python -c 'import click'":
            worst = max(worst, extra)
        print(f"{name:32s} median {med:.3f} s  (min {min(ts):.3f})  over click {extra:+.3f} s")
    print(f"{'seal score --<Tab>, first time':32s} {cold:.3f} s  (loads the verb, writes the index)")
    shutil.rmtree(index, ignore_errors=True)
    ok = worst <= BUDGET_S
    print(f"budget: at most +{BUDGET_S:.1f} s over click: {'met' if ok else 'NOT met'} (+{worst:.3f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
