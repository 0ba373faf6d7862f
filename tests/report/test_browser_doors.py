"""Every number is a door, the view lives in the URL, the rewrite viewer and the detail panel, in a
real browser (Debian chromium driven by Playwright; skips with the reason when absent).

Each door promises a count (``data-n``, from stats.json); clicking it must show exactly that many
pairs in the explorer. The counts are the analysis' own, so this checks the explorer's filters
against the statistics, not against themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import XSS_IMG, chromium_or_skip, opened_report

pytestmark = pytest.mark.browser

XSS_REWRITE = "<script>window.__pwned=2</script>"


@pytest.fixture(scope="module")
def browser_page(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with opened_report(run_dir, tmp_path_factory.mktemp("d")) as opened:
        yield opened


def _count(page: Any) -> int:
    return int(page.get_attribute("#ex-status", "data-count"))


def test_every_door_opens_exactly_the_pairs_it_counts(browser_page: dict[str, Any]) -> None:
    page = browser_page["page"]
    doors = page.evaluate(
        """() => Array.from(document.querySelectorAll('a.door')).map((a, k) => {
               a.setAttribute('data-k', String(k));
               const s = a.closest('section');
               return {k, n: a.getAttribute('data-n'), href: a.getAttribute('href'), text: a.textContent,
                       section: s ? s.id : ''};
           })"""
    )
    sections = {d["section"] for d in doors}
    # regime and γ cells, robustness rows and the gate, the watchlist, imprint rows, findings, cards
    assert {
        "findings",
        "headline",
        "imprint",
        "resistance",
        "robustness",
        "watchlist",
        "calibration",
    } <= sections
    assert page.locator("#resistance svg a.door").count() >= 12  # the mosaic's segments
    # every calibration bin is a door, in the figure (each RM's points) and in the bins table
    n_points = page.locator("#calibration svg circle.pt").count()
    assert page.locator("#calibration svg a.door").count() >= 5
    assert (
        page.locator("#calibration table a.door").count() == page.locator("#calibration svg a.door").count()
    )
    assert n_points > page.locator("#calibration svg a.door").count()  # the legend's dots are not doors
    assert len(doors) >= 30
    for d in doors:
        assert d["n"] is not None, d
        page.evaluate(  # a real click event (SVG links, the mosaic's, have no .click())
            f"() => document.querySelector('a.door[data-k=\"{d['k']}\"]')"
            ".dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true}))"
        )
        assert _count(page) == int(d["n"]), d
        # the URL now holds the view: the door's filters are in the hash
        h = page.evaluate("() => location.hash")
        assert h.startswith("#explorer?"), (d, h)
    assert browser_page["errors"] == []


def test_counts_are_the_analysis_counts(browser_page: dict[str, Any]) -> None:
    """Spot-check that doors carry stats.json's numbers (not the explorer's own count)."""
    page, stats = browser_page["page"], browser_page["stats"]
    ns = {
        a["href"]: int(a["n"])
        for a in page.evaluate(
            "() => Array.from(document.querySelectorAll('a.door')).map(a => ({href: a.getAttribute('href'), n: a.getAttribute('data-n')}))"
        )
    }
    assert ns["#explorer?regime=got_aligned"] == stats["regimes"]["counts"]["got_aligned"]
    assert ns["#explorer?agree=post%3A0"] == stats["resistance"]["k"]
    acc = next(a for a in stats["robustness"]["paraphrase"]["accuracy"] if a["rm"] == "post")
    assert ns["#explorer?rw=flipped&rwrm=post&t=paraphrase"] == acc["flipped"]["k"]
    assert ns["#explorer?rw=used&rwrm=post&t=paraphrase"] == acc["n"]
    g = {x["gamma"]: x for x in stats["lm_agreement"]["groups"]}
    assert ns["#explorer?gamma=r"] == g["r"]["n"]
    assert ns["#explorer?gamma=r&regime=resisted_alignment"] == g["r"]["regime_counts"]["resisted_alignment"]


def test_url_state_round_trips_through_a_reload(browser_page: dict[str, Any]) -> None:
    page = browser_page["page"]
    page.click("#ex-reset")
    page.select_option("#ex-regime", "1")  # got aligned
    page.select_option("#ex-gamma", "c")
    page.click('#ex-table th[data-key="m:post"]')
    page.click('#ex-table th[data-key="m:post"]')  # descending
    page.select_option("#ex-page-size", "50")
    n = _count(page)
    page.click("#ex-table tbody tr:nth-child(2)")
    pid = page.locator("#ex-detail h3").inner_text()
    first_rows = page.locator("#ex-table tbody tr td.mono").all_inner_texts()
    h = page.evaluate("() => location.hash")
    assert "regime=got_aligned" in h and "gamma=c" in h and "sort=m%3Apost" in h and "dir=-1" in h
    assert "size=50" in h and f"pair={pid}" in h
    assert page.get_attribute('#ex-table th[data-key="m:post"]', "aria-sort") == "descending"
    # a fresh tab opened on the shared link restores the same view
    other = browser_page["browser"].new_page(viewport={"width": 1440, "height": 900})
    other.goto(browser_page["url"] + h)
    other.wait_for_selector("#explorer-app[data-ready='1']", timeout=20_000)
    assert _count(other) == n
    assert other.locator("#ex-detail h3").inner_text() == pid
    assert other.locator("#ex-table tbody tr td.mono").all_inner_texts() == first_rows
    assert other.input_value("#ex-regime") == "1" and other.input_value("#ex-page-size") == "50"
    other.reload()
    other.wait_for_selector("#explorer-app[data-ready='1']", timeout=20_000)
    assert _count(other) == n and other.locator("#ex-detail h3").inner_text() == pid
    other.close()
    page.click("#ex-reset")


def test_sorting_by_a_margin_orders_every_pair_missing_last(browser_page: dict[str, Any]) -> None:
    """The explorer's radix sort: the whole view in margin order (ties in pair order) both ways."""
    page = browser_page["page"]
    page.click("#ex-reset")
    for clicks, sign in ((1, 1), (1, -1)):
        for _ in range(clicks):
            page.click('#ex-table th[data-key="m:post"]')
        got = page.evaluate(
            """() => { const s = document.querySelector('#ex-page-size'); s.value = '250';
                 s.dispatchEvent(new Event('change'));
                 return Array.from(document.querySelectorAll('#ex-table tbody tr')).map(tr =>
                   [parseInt(tr.getAttribute('data-index'), 10),
                    tr.querySelector('td.num').textContent.replace('−', '-')]); }"""
        )
        margins = [(i, float(m)) for i, m in got if m not in ("–", "")]
        keys = [(sign * m, i) for i, m in margins]
        # rounded display: the order may differ only between pairs shown with the same margin
        assert [round(k, 2) for k, _ in keys] == sorted(round(k, 2) for k, _ in keys)
        assert len(margins) == 250
    page.click("#ex-reset")


def test_watchlist_row_opens_the_watchlist_and_next_stays_in_it(browser_page: dict[str, Any]) -> None:
    page, stats = browser_page["page"], browser_page["stats"]
    row = page.locator("#watchlist table.watch tbody tr").nth(2)
    pid = row.locator("a.pair-link").inner_text()
    row.locator("td").nth(4).click()  # a click anywhere on the row, not only on the link
    assert page.locator("#ex-detail h3").inner_text() == pid
    assert _count(page) == stats["suspicious_pairs"]["n"]
    page.click("#ex-detail-next")
    nxt = page.locator("#watchlist table.watch tbody tr").nth(3).locator("a.pair-link").inner_text()
    assert page.locator("#ex-detail h3").inner_text() == nxt  # the next suspicious pair, by rank
    page.click("#ex-reset")


def test_scatter_point_opens_its_pair(browser_page: dict[str, Any]) -> None:
    page = browser_page["page"]
    dot = page.locator("#resistance circle[data-pair]").nth(5)
    pid = dot.get_attribute("data-pair")
    page.evaluate(
        "(id) => document.querySelector(`#resistance circle[data-pair='${id}']`).dispatchEvent(new MouseEvent('click', {bubbles: true}))",
        pid,
    )
    assert _count(page) == 1 and page.locator("#ex-detail h3").inner_text() == pid
    page.click("#ex-reset")


def test_rewrite_viewer_shows_both_texts_with_a_word_diff(browser_page: dict[str, Any]) -> None:
    page, stats = browser_page["page"], browser_page["stats"]
    page.click("#ex-reset")
    page.select_option("#ex-transform", "paraphrase")
    page.select_option("#ex-rewrite", "flipped")
    acc = next(a for a in stats["robustness"]["paraphrase"]["accuracy"] if a["rm"] == "post")
    assert _count(page) == acc["flipped"]["k"] > 0
    page.click("#ex-table tbody tr:nth-child(1)")
    viewer = page.locator("#ex-rewrites .rewrite[data-transform='paraphrase']")
    assert viewer.count() == 1
    text = viewer.inner_text()
    assert "original" in text and "rewrite" in text and "drift score" in text and "gate" in text
    assert viewer.locator(".diff ins").count() > 0 and viewer.locator(".diff del").count() > 0
    # rewards and margin before → after for every RM, with the verdict that flipped for post
    table = viewer.locator("table").first.inner_text()
    assert "→" in table and "post" in table and "pre" in table and "flipped" in table
    for sel, label in (("drifted", "drifted"), ("failed", "failed")):
        page.select_option("#ex-rewrite", sel)
        assert _count(page) > 0, sel
        page.click("#ex-table tbody tr:nth-child(1)")
        assert label in page.locator("#ex-rewrites").inner_text()
    page.click("#ex-reset")


def test_injected_rewrite_text_is_inert(browser_page: dict[str, Any]) -> None:
    page = browser_page["page"]
    page.click("#ex-reset")
    page.select_option("#ex-transform", "paraphrase")
    page.select_option("#ex-rewrite", "has")
    for k in range(1, _count(page) + 1):
        if k > 25:
            break
        page.click(f"#ex-table tbody tr:nth-child({k})")
        if XSS_REWRITE in page.locator("#ex-rewrites").inner_text():
            break
    else:
        pytest.fail("the injected rewrite was not shown")
    assert XSS_IMG in page.locator("#ex-rewrites").inner_text()
    assert page.locator("#ex-detail script, #ex-detail img").count() == 0
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    page.click("#ex-reset")


def test_detail_panel_lists_differing_features_by_contribution(browser_page: dict[str, Any]) -> None:
    page = browser_page["page"]
    page.click("#ex-reset")
    page.click("#ex-table tbody tr:nth-child(3)")
    rows = page.locator("#ex-contrib tbody tr").all()
    assert len(rows) >= 2
    contrib = []
    for r in rows[:-1]:  # the last row is the sum
        cells = r.locator("td").all_inner_texts()
        assert cells[1] != cells[2]  # only features that differ within the pair
        contrib.append(abs(float(cells[5].replace("−", "-"))))
    assert contrib == sorted(contrib, reverse=True)  # largest first
    page.click("#ex-reset")


@pytest.mark.parametrize("width", [390, 1440])
def test_no_horizontal_scroll_and_readable_figures(browser_page: dict[str, Any], width: int) -> None:
    page = browser_page["browser"].new_page(viewport={"width": width, "height": 900})
    page.goto(browser_page["url"])
    page.wait_for_selector("#explorer-app[data-ready='1']", timeout=20_000)
    sizes = page.evaluate(
        """() => ({doc: document.documentElement.scrollWidth, win: window.innerWidth,
                   box: document.querySelector('#ex-table').closest('.table-wrap').clientWidth,
                   main: document.querySelector('main').clientWidth})"""
    )
    assert sizes["doc"] <= sizes["win"], sizes
    # the smallest rendered text in any figure stays readable
    smallest = page.evaluate(
        """() => Math.min(...Array.from(document.querySelectorAll('figure svg text')).map(t => {
               const r = t.getBoundingClientRect(); return r.height > 0 ? parseFloat(getComputedStyle(t).fontSize) *
               (t.ownerSVGElement.getBoundingClientRect().width / t.ownerSVGElement.viewBox.baseVal.width) : 99; }))"""
    )
    assert smallest >= 10, smallest
    # a jump to a heading is not hidden under the sticky header
    page.evaluate("() => document.querySelector('nav a[href=\"#robustness\"]').click()")
    page.wait_for_timeout(300)
    top = page.evaluate("() => document.querySelector('#robustness h2').getBoundingClientRect().top")
    header = page.evaluate("() => document.querySelector('header.top').getBoundingClientRect().bottom")
    assert top >= header - 1, (top, header)
    page.close()


def _axe_source() -> str:
    """axe-core as bundled by the installed axe-playwright-python (MPL-2.0); never downloaded."""
    try:
        import importlib.resources as res

        return (res.files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")
    except (ImportError, FileNotFoundError, ModuleNotFoundError):
        pytest.skip("axe-core not installed: pip install axe-playwright-python (the dev extra)")


@pytest.mark.parametrize(
    ("width", "scheme"), [(1440, "light"), (390, "light"), (1440, "dark"), (390, "dark")]
)
def test_axe_finds_no_serious_or_critical_violation(
    browser_page: dict[str, Any], width: int, scheme: str
) -> None:
    src = _axe_source()
    # axe is injected by the test (the page's CSP rightly refuses any script but its own)
    page = browser_page["browser"].new_page(
        viewport={"width": width, "height": 900}, bypass_csp=True, color_scheme=scheme
    )
    page.goto(browser_page["url"])
    page.wait_for_selector("#explorer-app[data-ready='1']", timeout=20_000)
    page.select_option("#ex-transform", "paraphrase")
    page.click("#ex-table tbody tr:nth-child(2)")  # the detail panel and the rewrite viewer are checked too
    page.evaluate(src)
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
             .filter(v => v.impact === 'serious' || v.impact === 'critical')
             .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))"""
    )
    page.close()
    assert found == []


def test_dark_scheme_follows_the_system(browser_page: dict[str, Any]) -> None:
    page = browser_page["browser"].new_page(color_scheme="dark")
    page.goto(browser_page["url"])
    page.wait_for_selector("#explorer-app[data-ready='1']", timeout=20_000)
    bg = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    page.close()
    assert bg == "rgb(17, 20, 26)"


def test_print_opens_every_details_and_hides_the_controls(browser_page: dict[str, Any]) -> None:
    page = browser_page["browser"].new_page()
    page.goto(browser_page["url"])
    page.wait_for_selector("#explorer-app[data-ready='1']", timeout=20_000)
    closed = page.evaluate("() => document.querySelectorAll('details:not([open])').length")
    assert closed > 0
    page.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
    page.emulate_media(media="print")
    assert page.evaluate("() => document.querySelectorAll('details:not([open])').length") == 0
    assert page.evaluate("() => getComputedStyle(document.querySelector('.controls')).display") == "none"
    pdf = page.pdf()
    assert pdf[:4] == b"%PDF"
    page.evaluate("() => window.dispatchEvent(new Event('afterprint'))")
    assert page.evaluate("() => document.querySelectorAll('details:not([open])').length") == closed
    page.close()


@pytest.mark.slow
def test_paper_scale_report_loads_small_and_answers_fast(tmp_path: Path) -> None:
    """160,800 pairs with rewrites: file ≤ 30 MB, JS heap ≤ 300 MB, filters ≤ 300 ms (run with -m slow;
    benchmarks/bench_report.py prints the same figures)."""
    chromium_or_skip()
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_report", Path(__file__).resolve().parents[2] / "benchmarks" / "bench_report.py"
    )
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    root = tmp_path / "run"
    bench.build(root, 160_800)
    rep = bench.report(root)
    assert rep["html_mb"] <= 30, rep
    got = bench.browse(root / "report.html")
    print(json.dumps({**rep, **got}))  # the figures, with -s (the README quotes the benchmark's)
    assert got["js_heap_mb"] <= 300, got
    for key in (
        "filter_regime_ms",
        "filter_transform_flipped_ms",
        "door_regime_x_gamma_ms",
        "sort_margin_ms",
    ):
        assert got[key] <= 300, (key, got)
