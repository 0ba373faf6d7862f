"""`seal view --serve` in a real browser: the file holds the texts of a sample of pairs; served, the
same page shows the full texts (and rewrites) of a pair outside that sample, read from the run's
Parquet, and says which mode it is in. Dataset markup stays inert when it arrives that way too."""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from seal_audit.report import build_report
from seal_audit.store import RunStore

from .conftest import CHROMIUM_ARGS, XSS_IMG, XSS_SCRIPT, XSS_TEXT, chromium_or_skip

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served_run(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    from seal_audit._cli.view import serve

    run = tmp_path_factory.mktemp("served") / "run"
    shutil.copytree(run_dir, run)
    # a small text budget: the file keeps the texts of a few dozen pairs only
    html = build_report(RunStore(run, create=False), text_budget=40_000).html
    text = html.read_text(encoding="utf-8")
    doc = json.loads(
        re.search(r'<script type="application/json" id="pair-data">(.*?)</script>', text, re.S)[1]
    )
    assert "txt_i" in doc and 0 < len(doc["txt_i"]) < doc["n"] / 2
    # hostile markup in a pair whose text only the server can deliver (written after the build)
    in_file = {doc["ids"][i] for i in doc["txt_i"]}
    store = RunStore(run, create=False)
    pairs = store.read_table("pairs")
    hostile = next(str(p) for p in pairs["pair_id"] if str(p) not in in_file)
    pairs.loc[pairs["pair_id"] == hostile, "chosen"] = XSS_TEXT
    store.write_table("pairs", pairs)
    server = serve(run, 0)
    port = int(server.server_address[1])
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
            yield {
                "browser": browser,
                "doc": doc,
                "run": run,
                "hostile": hostile,
                "file_url": html.as_uri(),
                "url": f"http://127.0.0.1:{port}/report.html",
            }
            browser.close()
    finally:
        server.shutdown()
        server.server_close()


def _open(served_run: dict[str, Any], url: str) -> tuple[Any, list[str]]:
    page = served_run["browser"].new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.wait_for_selector("#explorer-app[data-ready='1']", timeout=20_000)
    return page, errors


def _outside_sample(served_run: dict[str, Any]) -> tuple[str, pd.Series, pd.DataFrame]:
    """A rewritten pair (an ok rewrite) whose texts the file does not hold."""
    doc, run = served_run["doc"], served_run["run"]
    in_file = {doc["ids"][i] for i in doc["txt_i"]}
    rw = pd.read_parquet(run / "rewrites.parquet")
    ok = rw[(rw["status"] == "ok") & ~rw["pair_id"].isin(in_file)]
    pid = str(ok["pair_id"].iloc[-1])
    pairs = pd.read_parquet(run / "pairs.parquet").set_index("pair_id")
    return pid, pairs.loc[pid], ok[ok["pair_id"] == pid]


def _norm(s: str) -> str:
    return " ".join(s.split())


def test_served_page_shows_the_full_text_of_a_pair_outside_the_files_sample(
    served_run: dict[str, Any],
) -> None:
    pid, row, rewrites = _outside_sample(served_run)
    # the file alone: no text for that pair, and it says it holds a sample
    page, errors = _open(served_run, served_run["file_url"] + f"#explorer?pair={pid}")
    assert page.get_attribute("#ex-mode", "data-mode") == "file"
    assert "sample" in page.inner_text("#ex-mode")
    assert _norm(row["chosen"])[:60] not in _norm(page.inner_text("#ex-detail"))
    assert "not in this file" in page.inner_text("#ex-detail")
    page.close()
    # served: the same pair's context, chosen and rejected texts, and its rewrite, from the Parquet
    page, errors = _open(served_run, served_run["url"] + f"#explorer?pair={pid}")
    assert page.get_attribute("#ex-mode", "data-mode") == "served"
    assert "every pair's texts" in page.inner_text("#ex-mode")
    page.wait_for_function(
        "() => !document.querySelector('#ex-detail').innerText.includes('loading')", timeout=20_000
    )
    assert page.locator("#ex-detail h3").inner_text() == pid
    chosen = _norm(page.locator("#ex-detail .col-chosen .text").inner_text())
    rejected = _norm(page.locator("#ex-detail .col-rejected .text").inner_text())
    assert chosen == _norm(row["chosen"]) and rejected == _norm(row["rejected"])
    assert _norm(row["context"])[:200] in _norm(
        page.locator("#ex-detail .col-context .text").first.inner_text()
    )
    assert "served from the run's Parquet" in page.inner_text("#ex-detail")
    viewer = page.locator("#ex-rewrites .rewrite").first
    new = _norm(str(rewrites["rewritten"].iloc[0]))
    assert new[:80] in _norm(viewer.inner_text())
    assert viewer.locator(".diff ins").count() > 0
    # the table's rows get their snippets from the server too
    page.click("#ex-reset")
    page.wait_for_function(
        "() => !document.querySelector('#ex-table tbody').innerText.includes('loading')", timeout=20_000
    )
    assert "not in this file" not in page.inner_text("#ex-table tbody")
    assert errors == []
    page.close()


def test_served_dataset_markup_stays_inert(served_run: dict[str, Any]) -> None:
    """A hostile transcript that reaches the page only through the endpoint shows as text."""
    pid = served_run["hostile"]
    page, errors = _open(served_run, served_run["url"] + f"#explorer?pair={pid}")
    page.wait_for_function(
        "() => !document.querySelector('#ex-detail').innerText.includes('loading')", timeout=20_000
    )
    assert XSS_SCRIPT in page.locator("#ex-detail .col-chosen .text").inner_text()
    assert page.locator("#ex-detail script, #ex-detail img").count() == 0
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert XSS_IMG in page.locator("#ex-detail .col-chosen .text").inner_text()
    assert "served from the run's Parquet" in page.inner_text("#ex-detail")
    assert errors == []
    # the text search covers every pair when served (the server searches the Parquet)
    pairs = pd.read_parquet(served_run["run"] / "pairs.parquet")
    needle = "window.__pwned=1"
    want = set()
    for col in ("context", "chosen", "rejected"):
        want |= set(pairs.loc[pairs[col].str.lower().str.contains(needle, regex=False), "pair_id"])
    assert pid in want
    page.click("#ex-reset")
    page.fill("#ex-search", needle)
    page.wait_for_function(
        "() => document.querySelector('#ex-status').textContent.includes('(served)')", timeout=20_000
    )
    assert int(page.get_attribute("#ex-status", "data-count")) == len(want)
    # the served page may connect only to its own origin
    other = page.evaluate(
        "() => fetch('http://localhost:1/x').then(() => 'reached', e => 'blocked: ' + e.message)"
    )
    assert other.startswith("blocked"), other
    page.close()
