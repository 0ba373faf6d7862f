"""No API key on disk or on the terminal, even from a server that echoes the request headers
(Authorization included) in its error bodies: `seal label --featurizer lm` against the real local
HTTP server, with texts that fail once and then succeed, and texts that fail for good; then every
file of the run directory is searched for the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakeserver.server import FakeOpenAIServer
from seal_audit.data.records import PreferencePair
from seal_audit.store import RunStore

KEY = "k3y-VALUE-7f9c2e41d0b8a6e5"
"""Deliberately not ``sk-``-shaped: it must be caught as the value of the LM settings' key variable."""


def _tail(text: str) -> str:
    return text[-40:]


def test_echoed_key_never_reaches_a_file_or_the_terminal(
    fake_server: FakeOpenAIServer,
    hh_pairs: list[PreferencePair],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from seal_audit._cli import main

    monkeypatch.setenv("SEAL_H19_LABELER", KEY)
    fake_server.echo_headers = True
    pairs = hh_pairs[:6]
    for p in pairs[:2]:  # fails once, then labeled (the error of the first try is kept for the record)
        fake_server.script(_tail(p.chosen), ["500", "ok"])
    for p in pairs[2:4]:  # fails for good: the error text is the stored reason
        fake_server.script(_tail(p.rejected), ["500"] * 10)
    store = RunStore(tmp_path / "run")
    store.write_pairs(pairs)
    store.close()
    args = ["label", str(store.root), "--featurizer", "lm", "--model", "gpt-4o-mini", "--yes"]
    args += ["--base-url", fake_server.base_url, "--api-key-env", "SEAL_H19_LABELER", "--max-retries", "1"]
    try:
        main(args)
    except SystemExit as exc:  # texts that failed for good may make the stage exit non-zero
        assert exc.code in (0, 3, None)  # 3: the stage failed (texts over max_failed)
    main(["report", str(store.root)])
    out = capsys.readouterr()

    assert fake_server.auth_headers and all(h == f"Bearer {KEY}" for h in fake_server.auth_headers)
    assert fake_server.counts["fault:500"] >= 4  # the echoing errors did happen
    log = (store.root / "logs" / "lm_calls.jsonl").read_text(encoding="utf-8")
    assert "[REDACTED]" in log  # ... reached the log, redacted
    import pandas as pd

    errors = pd.read_parquet(store.root / "features.parquet")["error"].dropna().astype(str)
    assert errors.str.contains('"Authorization": "[REDACTED]"', regex=False).any()  # echoed, then redacted
    files = [p for p in store.root.rglob("*") if p.is_file()]
    assert {"features.parquet", "manifest.json", "report.html", "cache.sqlite"} <= {p.name for p in files}
    for p in files:
        data = p.read_bytes()
        assert KEY.encode() not in data, f"the key is in {p.relative_to(store.root)}"
        assert b"Bearer k3y" not in data, p
    assert KEY not in out.out and KEY not in out.err
