"""Pytest fixtures around the fake OpenAI-compatible server.

Enable for the whole suite with one line in ``tests/conftest.py``::

    pytest_plugins = ["fakeserver.conftest_plugin"]
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakeserver.server import FakeOpenAIServer


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAIServer]:
    """A fresh server on 127.0.0.1 (random port), no latency, no faults; stopped after the test."""
    srv = FakeOpenAIServer(latency_s=0.0, slow_s=1.5).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A dummy key in an env var, so tests can check it is sent but never logged."""
    monkeypatch.setenv("SEAL_TEST_KEY", "sk-test-SECRET-0123456789")
    return "SEAL_TEST_KEY"
