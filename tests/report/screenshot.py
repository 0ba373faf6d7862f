"""Take the README screenshot (docs/report.png) of a realistic report with headless Debian chromium.

    .venv/bin/python tests/report/screenshot.py [OUT.png] [--full]

Builds a simulated run with real hh-rlhf texts (2,312 pairs, rewrites included), renders it, and
screenshots the top of the page. Never downloads a browser: it uses /usr/bin/chromium.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import sync_playwright

from report.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, build_run
from seal_audit.report import build_report


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = Path(args[0]) if args else ROOT / "docs" / "report.png"
    full = "--full" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        store = build_run(Path(tmp) / "hh-rlhf-harmless-test", n_pairs=2312, inject=False)
        html = build_report(store).html
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 1640}, device_scale_factor=1)
            page.goto(html.as_uri())
            page.wait_for_selector("#explorer-app[data-ready='1']")
            page.add_style_tag(content="header.top{position:static}")
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=full)
            browser.close()
    print(out)


if __name__ == "__main__":
    main()
