"""Shared fixtures. Tests are offline: nothing may reach a hub or an API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["fakeserver.conftest_plugin"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
HH_PATH = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"


@pytest.fixture(scope="session")
def hh_path() -> Path:
    """The real hh-rlhf harmless-base test split (2,312 pairs), read from ../shared, never copied."""
    if not HH_PATH.exists():
        pytest.fail(f"the shared hh-rlhf data is missing at {HH_PATH}")
    return HH_PATH


@pytest.fixture(scope="session")
def hh_pairs(hh_path: Path) -> list:  # type: ignore[type-arg]
    from seal_audit.sources import load_pairs

    return load_pairs(hh_path)


HEAVY_GROUP = "llama-and-ray"
"""One pytest-xdist worker runs every real-server and Ray test, one after another. Why: the llama.cpp
server answers one request at a time on one thread, so while it works the other core runs the rest of
the suite (about a third off ``make test``); and two local Ray instances at once on 2 CPUs starve."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("llama") or item.get_closest_marker("ray"):
            item.add_marker(pytest.mark.xdist_group(HEAVY_GROUP))
