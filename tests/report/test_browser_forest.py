"""Issue 20: the imprint forest overlays any chosen RMs. The file opens with ``[report] forest_rms``
(or ``seal report --forest-rm``; default the first six); in the page, checkboxes add or remove any
RM and the URL hash keeps the choice (a reload or a shared link restores it)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from seal_audit._cli import cli
from seal_audit.config import ReportOptions
from seal_audit.report import build_report
from seal_audit.store import RunStore

from .conftest import build_run, opened_report

RMS = ["post", "pre", *(f"rm-{k}" for k in range(1, 8))]  # leaderboard order, baselines aside


@pytest.fixture(scope="module")
def many_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("forest") / "run"
    build_run(root, n_pairs=300, n_bootstrap=0, extra_rms=7)
    return root


def _shown(html: str) -> tuple[list[str], list[str]]:
    """(RMs drawn visible, RMs checked in the picker) of a built page."""
    fig = html[html.index('<figure class="wide forest-overlay">') :]
    fig = fig[: fig.index("</figure>")]
    groups = re.findall(r'<g class="ov ov-\d" data-ov="\d+" data-rm="([^"]+)"[^>]*?( display="none")?>', fig)
    pick = html[html.index('data-picker="forest"') :]
    pick = pick[: pick.index("</fieldset>")]
    checked = re.findall(r'<input type="checkbox" value="([^"]+)" checked>', pick)
    return [rm for rm, hidden in groups if not hidden], checked


def test_default_shows_the_first_six_and_options_choose_any(many_run: Path, tmp_path: Path) -> None:
    html = build_report(RunStore(many_run, create=False), tmp_path / "a.html").html.read_text(
        encoding="utf-8"
    )
    assert _shown(html) == (RMS[:6], RMS[:6])
    assert html.count('<fieldset class="forest-pick" data-picker="forest">') == 1 and html.count(
        'type="checkbox" value='
    ) == len(RMS)
    opts = ReportOptions(forest_rms=("rm-7", "pre"))
    paths = build_report(RunStore(many_run, create=False), tmp_path / "b.html", options=opts)
    assert _shown(paths.html.read_text(encoding="utf-8")) == (["pre", "rm-7"], ["pre", "rm-7"])
    assert paths.warnings == ()
    bad = build_report(
        RunStore(many_run, create=False), tmp_path / "c.html", options=ReportOptions(forest_rms=("nope",))
    )
    assert any("forest_rms" in w and "nope" in w for w in bad.warnings)
    assert "no imprint for: nope" in bad.html.read_text(encoding="utf-8")


def test_cli_flag_and_config_key_are_one_options_model(many_run: Path) -> None:
    res = CliRunner().invoke(cli, ["report", str(many_run), "--forest-rm", "rm-5", "--forest-rm", "post"])
    assert res.exit_code == 0, res.output
    assert _shown((many_run / "report.html").read_text(encoding="utf-8"))[0] == ["post", "rm-5"]
    manifest = json.loads((many_run / "manifest.json").read_text())
    assert manifest["stages"]["report"]["options"] == {"forest_rms": ["rm-5", "post"]}
    from seal_audit.config import parse_config
    from seal_audit.data.errors import ConfigError

    base = {"data": [{"path": "x.jsonl"}], "rms": [{"name": "a", "spec": "length_chars", "role": "post"}]}
    assert parse_config({**base, "report": {"forest_rms": ["a"]}}).report.forest_rms == ("a",)
    with pytest.raises(ConfigError, match=r"report\.forest_rms.*'zz'"):
        parse_config({**base, "report": {"forest_rms": ["zz"]}})


@pytest.fixture(scope="module")
def page(many_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with opened_report(many_run, tmp_path_factory.mktemp("p")) as opened:
        yield opened


def _visible(pg: Any) -> list[str]:
    return pg.evaluate(
        """() => Array.from(document.querySelectorAll('figure.forest-overlay g.ov'))
             .filter(g => g.getAttribute('display') !== 'none' && g.getBoundingClientRect().height > 0)
             .map(g => g.getAttribute('data-rm'))"""
    )


@pytest.mark.browser
def test_checkboxes_overlay_any_rms_and_the_url_keeps_them(page: dict[str, Any]) -> None:
    pg = page["page"]
    assert _visible(pg) == RMS[:6]
    box = 'fieldset[data-picker="forest"] input[value="{}"]'
    pg.check(box.format("rm-7"))  # the ninth RM, beyond the default six
    pg.uncheck(box.format("pre"))
    want = ["post", "rm-1", "rm-2", "rm-3", "rm-4", "rm-7"]
    assert _visible(pg) == want
    # the shown series are re-centred in each row (no gap where an RM was taken out)
    dys = pg.evaluate(
        """() => Array.from(document.querySelectorAll('figure.forest-overlay g.ov:not([display])'))
             .map(g => parseFloat(g.getAttribute('transform').match(/translate\\(0,(-?[\\d.]+)\\)/)[1]))"""
    )
    assert dys == pytest.approx([(j - 2.5) * 7 for j in range(6)])
    h = pg.evaluate("() => location.hash")
    assert "forest=" in h
    # a shared link restores the choice; a door into the explorer keeps it
    other = page["browser"].new_page(viewport={"width": 1440, "height": 900})
    other.goto(page["url"] + h)
    other.wait_for_selector("#explorer-app[data-ready='1']", timeout=20_000)
    assert _visible(other) == want
    assert other.is_checked(box.format("rm-7")) and not other.is_checked(box.format("pre"))
    other.evaluate(
        "() => document.querySelector('#leaderboard a.door').dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true}))"
    )
    assert _visible(other) == want and "forest=" in other.evaluate("() => location.hash")
    other.reload()
    other.wait_for_selector("#explorer-app[data-ready='1']", timeout=20_000)
    assert _visible(other) == want
    other.close()
    # back to the file's choice: the hash drops the key
    pg.uncheck(box.format("rm-7"))
    pg.check(box.format("pre"))
    assert _visible(pg) == RMS[:6] and "forest=" not in pg.evaluate("() => location.hash")
    assert page["errors"] == []
