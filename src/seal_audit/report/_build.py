"""Assemble report.html and report.md from a run directory."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from seal_audit.report import _sections as sec
from seal_audit.report._data import ReportData, dig, load
from seal_audit.report._explorer import DEFAULT_TEXT_LIMIT, embed_json, explorer_payload
from seal_audit.report._html import Markup, join, not_computed, tag
from seal_audit.report._leaderboard import section as leaderboard_section
from seal_audit.report._markdown import markdown
from seal_audit.report._svg import esc, visible_controls
from seal_audit.store import RunStore, write_text_atomic
from seal_audit.store.run_store import REPORT_HTML, REPORT_MD

HTML_NAME = REPORT_HTML
MD_NAME = REPORT_MD


@dataclasses.dataclass(frozen=True)
class ReportPaths:
    """Where ``build_report`` wrote the report, and what it could not render."""

    html: Path
    md: Path
    warnings: tuple[str, ...] = ()
    """Sections that failed to render (each also shows its error in the page)."""


def _asset(name: str) -> str:
    return resources.files("seal_audit.report").joinpath("assets", name).read_text(encoding="utf-8")


def csp(script: str) -> str:
    """The page's Content-Security-Policy: nothing may be fetched or connected to.

    Only the one inline script whose SHA-256 is listed may run (an injected script or an
    ``onerror`` attribute would be blocked even if escaping ever failed), inline styles are
    allowed for the SVG figures, images only from data: URIs; no connections, frames, fonts or
    form targets. ``'unsafe-inline'`` is listed only for CSP-1 browsers: browsers that know hashes
    ignore it when a hash is present.
    """
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; "
        f"script-src 'unsafe-inline' 'sha256-{digest}'; "
        "style-src 'unsafe-inline'; img-src data:; connect-src 'none'; font-src 'none'; "
        "frame-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'"
    )


def _fill(template: str, values: dict[str, str]) -> str:
    """Replace ``{{name}}`` placeholders in one pass, so inserted text is never re-scanned."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], template)


def render_html(
    data: ReportData, *, text_limit: int | None = DEFAULT_TEXT_LIMIT
) -> tuple[str, tuple[str, ...]]:
    """The report page as one string, and the warnings of sections that failed to render."""
    ctx = sec.Ctx(data)
    warnings: list[str] = []
    sections: list[sec.Section] = []
    builders = [*sec.BUILDERS[:1], leaderboard_section, *sec.BUILDERS[1:], sec.exclusions]  # issue 20
    for build in builders:
        try:
            s = build(ctx)
        except Exception as exc:  # one broken section must not cost the others; it says why
            name = build.__name__
            warnings.append(f"section {name}: {type(exc).__name__}: {exc}")
            s = sec.Section(
                name,
                name.replace("_", " ").capitalize(),
                "This section failed to render.",
                not_computed(f"could not render ({type(exc).__name__}: {exc})"),
            )
        if s is not None:
            sections.append(s)
    try:
        man = sec.manifest(ctx)
    except Exception as exc:
        warnings.append(f"section manifest: {type(exc).__name__}: {exc}")
        man = sec.Section(
            "manifest", "Run manifest", "", not_computed(f"could not render ({type(exc).__name__}: {exc})")
        )

    def html_section(s: sec.Section) -> Markup:
        return (
            Markup(f'<section id="{esc(s.id)}">')
            + tag("h2", s.title)
            + tag("p", s.guide, cls="guide")
            + s.body
            + Markup("</section>")
        )

    if data.headline is not None:
        items = [
            tag("li", f.text + (f" — {f.caveat}" if f.caveat else ""), cls=f"finding k-{f.key.split(':')[0]}")
            for f in data.headline.findings
        ]
        items += [
            tag("li", f"not computed: {x}", cls="finding not-computed") for x in data.headline.not_computed
        ]
        sections.insert(
            0,
            sec.Section(
                "findings",
                "Findings",
                "The three SEAL questions in a few lines: what the RMs agree with, where they resist, "
                "what they imprint and which rewrite hurts most.",
                tag("ul", join(items), cls="findings"),
            ),
        )
    nav_items = [*sections, sec.Section("explorer", "Pair explorer", "", Markup("")), man]
    short = {
        "findings": "Findings",
        "headline": "Headline",
        "imprint": "Imprint",
        "resistance": "Resistance",
        "misalignment": "Misalignment",
        "robustness": "Robustness",
        "calibration": "Calibration",
        "watchlist": "Watchlist",
        "exclusions": "Exclusions",
        "explorer": "Pair explorer",
        "manifest": "Manifest",
    }
    nav = join(tag("a", short.get(s.id, s.title), href=f"#{s.id}") for s in nav_items)
    problems = ""
    if data.problems or warnings:
        problems = (
            Markup('<section class="problems"><h2>Problems reading this run</h2><ul>')
            + join(tag("li", p) for p in [*data.problems, *warnings])
            + Markup("</ul></section>")
        )
    try:
        payload = explorer_payload(data, text_limit=text_limit)
    except Exception as exc:
        warnings.append(f"pair explorer: {type(exc).__name__}: {exc}")
        payload = {"n": 0, "missing": f"could not build the explorer data ({type(exc).__name__}: {exc})"}
    js = _asset("report.js")
    run_name = Path(data.root).resolve().name
    n = dig(data.stats, "inputs", "n_pairs")
    post, pre = ctx.post, ctx.pre
    subtitle = " · ".join(
        x
        for x in (
            f"{n:,} pairs"
            if isinstance(n, int)
            else (f"{payload.get('n', 0):,} pairs" if payload.get("n") else ""),
            f"post-D RM {post}" if post else "",
            f"pre-D RM {pre}" if pre else "",
            f"features: {len(ctx.features)}" if ctx.features else "",
            "Systematic Error Analysis for Value ALignment (Revel et al., AAAI 2025)",
        )
        if x
    )
    values = {
        "csp": esc(csp(js)),
        "version": esc(data.manifest.get("seal_audit_version", "")),
        "title": esc(f"SEAL audit · {run_name}"),
        "title_run": esc(run_name),
        "subtitle": esc(subtitle),
        "css": _asset("report.css"),
        "nav": nav,
        "problems": problems,
        "sections": join(html_section(s) for s in sections),
        "manifest": html_section(man),
        "generated": esc(datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        "data": embed_json(payload),
        "js": js,
    }
    return _fill(_asset("report.html"), values), tuple(warnings)


def build_report(
    store: RunStore, out: Path | None = None, *, text_limit: int | None = DEFAULT_TEXT_LIMIT
) -> ReportPaths:
    """Write ``report.html`` (self-contained page + pair explorer) and ``report.md`` for a run.

    ``out`` is the HTML path (default: ``report.html`` in the run directory); the Markdown summary
    goes beside it with the ``.md`` suffix. Missing analyses never fail the build: their sections
    say why they are absent. ``text_limit`` caps the characters kept per text in the explorer.
    """
    data = load(store)
    html, warnings = render_html(data, text_limit=text_limit)
    html_path = Path(out) if out is not None else store.path(HTML_NAME)
    md_path = html_path.with_suffix(".md") if out is not None else store.path(MD_NAME)
    write_text_atomic(html_path, visible_controls(html))  # last guard: no raw control character
    write_text_atomic(md_path, visible_controls(markdown(data)))
    if out is None:
        store.record_stage("report", {"html": HTML_NAME, "md": MD_NAME, "warnings": len(warnings)})
    return ReportPaths(html=html_path, md=md_path, warnings=warnings)
