"""`seal simulate --power`: pairs needed for an imprint, confirmed by the planted-data check."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from seal_audit._cli import cli


def test_simulate_power_prints_pairs_needed_and_writes_power_json(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        cli,
        [
            "simulate",
            "--power",
            "--beta",
            "0.8",
            "--prevalence",
            "0.1",
            "--check-reps",
            "150",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    plan = json.loads((tmp_path / "power.json").read_text())
    assert f"{plan['n_pairs']} pairs detect beta = 0.8" in res.output
    assert 0.6 < plan["simulated_power"] < 0.95 and plan["simulated_reps"] == 150
    assert plan["level"] == 0.05 / 15


def test_simulate_power_needs_beta_and_prevalence() -> None:
    res = CliRunner().invoke(cli, ["simulate", "--power", "--beta", "0.5"])
    assert res.exit_code == 2 and "--prevalence" in res.output


def test_simulate_without_out_or_power_is_a_usage_error() -> None:
    res = CliRunner().invoke(cli, ["simulate"])
    assert res.exit_code == 2 and "--out" in res.output
