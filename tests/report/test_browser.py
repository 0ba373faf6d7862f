"""The report in a real browser: headless Debian chromium driven by Playwright for Python.

Never downloads a browser (no ``playwright install``): it uses /usr/bin/chromium and skips with
the reason when that is absent. One browser and one page load serve all checks (< 60 s).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seal_audit.report._svg import pct

from .conftest import XSS_IMG, XSS_SCRIPT, opened_report

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def loaded(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The report opened from file:// with every console message and network request recorded."""
    with opened_report(run_dir, tmp_path_factory.mktemp("b"), width=1300) as opened:
        yield opened


def _count(page: Any) -> int:
    return int(page.get_attribute("#ex-status", "data-count"))


def test_loads_without_errors_or_network(loaded: dict[str, Any]) -> None:
    page = loaded["page"]
    page.wait_for_timeout(200)
    assert loaded["errors"] == []
    assert [m for m in loaded["console"] if m.startswith(("error", "warning"))] == []
    assert loaded["requests"] == [loaded["url"]]  # the file itself, nothing else
    assert page.title().startswith("SEAL audit")


def test_headline_numbers_equal_stats_json(loaded: dict[str, Any]) -> None:
    page, stats = loaded["page"], loaded["stats"]

    def stat(key: str) -> str:
        return str(page.locator(f'[data-stat="{key}"]').first.inner_text()).strip()

    assert stat("n_pairs") == f"{stats['inputs']['n_pairs']:,}"
    assert stat("resistance") == pct(stats["resistance"]["rate"])
    for rm, ag in stats["agreement"].items():
        assert stat(f"agreement:{rm}") == pct(ag["agreement"]["rate"])
    for k, share in stats["regimes"]["shares"].items():
        assert stat(f"regime:{k}") == pct(share["rate"])


def test_filters_narrow_the_explorer(loaded: dict[str, Any]) -> None:
    page, stats = loaded["page"], loaded["stats"]
    n = stats["inputs"]["n_pairs"]
    assert _count(page) == n
    page.select_option("#ex-regime", "2")  # resisted alignment
    assert _count(page) == stats["regimes"]["counts"]["resisted_alignment"] < n
    page.select_option("#ex-feature", "is_harmless")
    page.select_option("#ex-feature-side", "chosen")
    page.select_option("#ex-feature-op", "=")
    page.fill("#ex-feature-value", "0")
    narrowed = _count(page)
    assert 0 < narrowed < stats["regimes"]["counts"]["resisted_alignment"]
    page.fill("#ex-margin-min", "0")  # post-D margin ≥ 0 contradicts 'resisted': nothing left
    assert _count(page) == 0
    page.click("text=Reset")
    assert _count(page) == n
    page.fill("#ex-search", "pwned")
    page.wait_for_function(f"() => document.querySelector('#ex-status').getAttribute('data-count') !== '{n}'")
    assert _count(page) == 2  # the two pairs with injected markup
    page.click("text=Reset")


def test_click_opens_a_pair(loaded: dict[str, Any]) -> None:
    page = loaded["page"]
    page.click("#ex-table tbody tr:nth-child(4)")
    detail = page.locator("#ex-detail")
    assert detail.is_visible()
    pid = page.locator("#ex-table tbody tr:nth-child(4) td").first.inner_text()
    assert detail.locator("h3").inner_text() == pid
    assert detail.locator(".col-chosen .text").inner_text().strip()
    assert "post" in detail.locator(".col-chosen").inner_text()  # rewards shown beside the text


def test_injected_markup_shows_as_text_and_never_runs(loaded: dict[str, Any]) -> None:
    page = loaded["page"]
    page.fill("#ex-search", "pwned")
    page.wait_for_function("() => document.querySelector('#ex-status').getAttribute('data-count') === '2'")
    texts = []
    for i in (1, 2):
        page.click(f"#ex-table tbody tr:nth-child({i})")
        texts.append(page.locator("#ex-detail").inner_text())
        assert page.locator("#ex-detail img, #ex-detail script").count() == 0
    joined = "\n".join(texts)
    assert XSS_SCRIPT in joined and XSS_IMG in joined
    page.wait_for_timeout(100)
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert page.locator("img").count() == 0
    page.click("text=Reset")


def test_watchlist_link_opens_the_pair(loaded: dict[str, Any]) -> None:
    page = loaded["page"]
    link = page.locator("#watchlist a.pair-link").first
    pid = link.inner_text()
    link.click()
    assert page.locator("#ex-detail h3").inner_text() == pid
