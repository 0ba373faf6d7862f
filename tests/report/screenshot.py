"""Take the README screenshot (docs/report.png) of a realistic report with headless Debian chromium.

    .venv/bin/python tests/report/screenshot.py [OUT.png] [--full] [--run RUN_DIR]

With ``--run`` it screenshots that run's report (the README's image comes from a real
``seal demo`` run); without, it builds a simulated run with real hh-rlhf texts. Never downloads a
browser: it uses /usr/bin/chromium.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import sync_playwright

from report.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, build_run
from seal_audit.report import build_report
from seal_audit.store import RunStore


def main() -> None:
    argv = sys.argv[1:]
    run_dir = None
    if "--run" in argv:
        i = argv.index("--run")
        run_dir = Path(argv[i + 1])
        del argv[i : i + 2]
    args = [a for a in argv if not a.startswith("--")]
    out = Path(args[0]) if args else ROOT / "docs" / "report.png"
    full = "--full" in argv
    with tempfile.TemporaryDirectory() as tmp:
        if run_dir is not None:
            html = build_report(RunStore(run_dir, create=False)).html
        else:
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
