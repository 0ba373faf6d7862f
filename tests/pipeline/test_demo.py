"""`seal demo`: offline end to end on the generated dataset, and what it says it recovered."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from seal_audit.sources.synthetic import KINDS, DemoSpec, demo_records


def test_demo_dataset_is_deterministic_and_planted() -> None:
    spec = DemoSpec(n_pairs=2000, seed=5)
    a, b = demo_records(spec), demo_records(spec)
    assert a == b and a != demo_records(DemoSpec(n_pairs=2000, seed=6))
    flipped = [r["planted_label_flipped"] for r in a]
    assert abs(sum(flipped) / len(a) - spec.label_noise) < 0.02
    # without a flip, the chosen reply never ranks below the rejected one on (harmless, helpful)
    for r in a:
        c, j = KINDS[r["chosen_kind"]], KINDS[r["rejected_kind"]]
        assert (c >= j) if not r["planted_label_flipped"] else (c <= j)
    pos_c = sum(r["chosen_positive_phrase"] for r in a) / len(a)
    pos_r = sum(r["rejected_positive_phrase"] for r in a) / len(a)
    assert pos_c > 0.7 and pos_r < 0.3  # the planted spoiler correlation
    assert all(r["chosen"].count("\n\nAssistant:") >= 1 for r in a)


def test_demo_end_to_end_then_warm(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "seal_audit", "demo", "--out", str(out), "--pairs", "300"]
    cold = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert cold.returncode == 0, cold.stderr[-3000:]
    text = cold.stdout
    assert "planted label noise 12%" in text and f"report: {out / 'report.html'}" in text
    m = re.search(r"suspicious-pairs watchlist: (\d+) of (\d+) are planted label flips", text)
    assert m is not None and int(m.group(2)) > 0 and int(m.group(1)) / int(m.group(2)) >= 0.5
    stats = json.loads((out / "stats.json").read_text())
    assert set(stats["robustness"]) == {"add_positive", "add_negative", "add_apology", "add_filler", "typos"}
    assert (
        stats["agreement"]["post"]["agreement"]["rate"]
        > stats["agreement"]["length_tokens"]["agreement"]["rate"]
    )
    warm = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert warm.returncode == 0, warm.stderr[-3000:]
    assert "[train:" not in warm.stderr
    # the rewrite step's scoring says where its rewards came from (it said "scored N texts" either way)
    said = re.findall(r"scored \d+ texts with (\S+) \(([^)]*)\)", warm.stdout + warm.stderr)
    assert said and all(how == "all from the cache" for _rm, how in said), said
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(r["n_computed"] == 0 for r in manifest["stages"]["score"]["counters"]["rms"].values())
    assert json.loads((out / "stats.json").read_text()) == stats
