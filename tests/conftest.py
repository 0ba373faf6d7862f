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


@pytest.fixture(scope="session")
def native_kernel() -> object:
    """The C attention kernel (``backends/embed/native.py``). Skipped only on a machine with no C
    compiler at all (the kernel is optional there); where one exists, a kernel that does not build
    or pass its self-check fails the test. This project's CI image has gcc."""
    from seal_audit.backends.embed import native

    try:
        native._compiler()  # the kernel's own search: CC, else cc, gcc or clang on PATH
    except native._Unavailable as exc:
        pytest.skip(f"the native attention kernel cannot be built here: {exc}")
    kernel = native.load()
    if kernel is None:
        pytest.fail(
            f"a C compiler is here but the native attention kernel is unavailable: {native.unavailable_reason()}"
        )
    return kernel


HEAVY = ("tests/llamaserver/", "tests/ray/")
"""One pytest-xdist worker runs every real-server and Ray test, one after another and first. Why: the
llama.cpp server answers one request at a time on one thread, so while it works the other core runs the
rest of the suite (about a third off ``make test``); two local Ray instances at once on 2 CPUs starve;
and these are the long pole, so they start first. (xdist's own ``xdist_group`` mark has no effect under
pytest 9 -- it renames ``item._nodeid``, which pytest 9 no longer reads -- hence a scheduler by path.)"""


def _heavy(nodeid: str) -> bool:
    return nodeid.startswith(HEAVY)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not _heavy(item.nodeid))  # stable: same order in every worker


try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # plain pytest: one process, nothing to schedule
    pass
else:

    class _HeavyTogether(LoadScopeScheduling):  # type: ignore[misc]
        """Module scopes as usual, except that every heavy test is one scope."""

        def _split_scope(self, nodeid: str) -> str:
            return "heavy" if _heavy(nodeid) else str(super()._split_scope(nodeid))

    def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> _HeavyTogether:
        return _HeavyTogether(config, log)
