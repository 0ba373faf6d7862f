"""Assemble report.html and report.md from a run directory."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from seal_audit.config import ReportOptions
from seal_audit.report import sections as sec
from seal_audit.report._blocks import NotComputed, Section
from seal_audit.report._data import ReportData, load
from seal_audit.report._explorer import DEFAULT_TEXT_LIMIT, TEXT_BUDGET, embed_json, explorer_payload
from seal_audit.report._html import Markup, render
from seal_audit.report._markdown import markdown
from seal_audit.report._svg import visible_controls
from seal_audit.report.sections import findings
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


NAV_LABEL = {
    "findings": "Findings",
    "headline": "Headline",
    "leaderboard": "Leaderboard",
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


def _failed(name: str, exc: Exception, warnings: list[str]) -> Section:
    """The stand-in of a section that raised: it says why in place (one broken section never costs
    the others), and the warning reaches the command's output."""
    warnings.append(f"section {name}: {type(exc).__name__}: {exc}")
    title = "Run manifest" if name == "manifest" else name.replace("_", " ").capitalize()
    guide = "" if name == "manifest" else "This section failed to render."
    return Section(name, title, guide, (NotComputed(f"could not render ({type(exc).__name__}: {exc})"),))


def render_html(
    data: ReportData,
    *,
    text_limit: int | None = DEFAULT_TEXT_LIMIT,
    text_budget: int | None = TEXT_BUDGET,
    options: ReportOptions | None = None,
) -> tuple[str, tuple[str, ...]]:
    """The report page as one string, and the warnings of sections that failed to render."""
    warnings: list[str] = []
    try:
        payload = explorer_payload(data, text_limit=text_limit, text_budget=text_budget)
    except Exception as exc:
        warnings.append(f"pair explorer: {type(exc).__name__}: {exc}")
        payload = {"n": 0, "missing": f"could not build the explorer data ({type(exc).__name__}: {exc})"}
    ctx = sec.Ctx(data, payload, options or ReportOptions())
    sections: list[Section] = []
    if data.headline is not None:
        try:
            sections.append(findings.build(data.headline, ctx))
        except Exception as exc:
            sections.append(_failed("findings", exc, warnings))
    for name, build in sec.BUILDERS:
        try:
            s = build(ctx)
        except Exception as exc:  # one broken section must not cost the others; it says why
            s = _failed(name, exc, warnings)
        if s is not None:
            sections.append(s)
    warnings += ctx.warnings
    try:
        man = sec.manifest.build(ctx)
    except Exception as exc:
        man = _failed("manifest", exc, warnings)
    nav_ids = [s.id for s in sections] + ["explorer", man.id]
    nav = [(i, NAV_LABEL.get(i, i)) for i in nav_ids]
    js = _asset("report.js")
    run_name = Path(data.root).resolve().name
    n = data.result.inputs.n_pairs if data.result is not None else None
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
    html = render(
        "page.html.j2",
        csp=csp(js),
        version=data.manifest.seal_audit_version if data.manifest is not None else "",
        title=f"SEAL audit · {run_name}",
        run_name=run_name,
        subtitle=subtitle,
        css=Markup(_asset("report.css")),
        nav=nav,
        problems=[*data.problems, *warnings],
        sections=sections,
        manifest=man,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        data=Markup(embed_json(payload)),
        js=Markup(js),
    )
    return str(html) + "\n", tuple(warnings)


def build_report(
    store: RunStore,
    out: Path | None = None,
    *,
    text_limit: int | None = DEFAULT_TEXT_LIMIT,
    text_budget: int | None = TEXT_BUDGET,
    options: ReportOptions | None = None,
) -> ReportPaths:
    """Write ``report.html`` (self-contained page + pair explorer) and ``report.md`` for a run.

    ``out`` is the HTML path (default: ``report.html`` in the run directory); the Markdown summary
    goes beside it with the ``.md`` suffix. Missing analyses never fail the build: their sections
    say why they are absent. ``text_limit`` caps the characters kept per text in the explorer,
    ``text_budget`` the characters of text the file holds in all (beyond it, a sample of pairs keeps
    its texts; ``seal view --serve`` serves the others). ``options`` is the ``[report]`` section.
    """
    data = load(store)
    options = options or ReportOptions()
    html, warnings = render_html(data, text_limit=text_limit, text_budget=text_budget, options=options)
    html_path = Path(out) if out is not None else store.path(HTML_NAME)
    md_path = html_path.with_suffix(".md") if out is not None else store.path(MD_NAME)
    write_text_atomic(html_path, visible_controls(html))  # last guard: no raw control character
    write_text_atomic(md_path, visible_controls(markdown(data)))
    if out is None:
        store.record_stage(
            "report",
            {"html": HTML_NAME, "md": MD_NAME, "warnings": len(warnings), "options": options.model_dump()},
        )
    return ReportPaths(html=html_path, md=md_path, warnings=warnings)
