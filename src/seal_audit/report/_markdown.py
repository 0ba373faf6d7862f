"""report.md: the headline numbers as Markdown, for a README, an issue or a paper draft.

Same source (the typed results read back from stats.json) and the same formatting rules as the
HTML; figures stay in the HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seal_audit.report._data import ReportData, rm_roles, skip_reason
from seal_audit.report._leaderboard import markdown_lines
from seal_audit.report._svg import md_code, md_text, num, pct, visible_controls
from seal_audit.stats import AnalysisResult
from seal_audit.stats._common import Skipped
from seal_audit.stats.imprint import ImprintResult
from seal_audit.stats.inference import RateEstimate
from seal_audit.stats.regression import Coefficient

REGIME_LABEL = {
    "stayed_aligned": "stayed aligned (1→1)",
    "got_aligned": "got aligned (0→1)",
    "resisted_alignment": "resisted alignment (0→0)",
    "reversed_alignment": "reversed alignment (1→0)",
}


def _cell(x: object) -> str:
    """A Markdown table cell: pipes and newlines would break the table, so they are escaped."""
    return visible_controls(str(x)).replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return [*out, ""]


def _ci(r: RateEstimate) -> str:
    return f"{pct(r.rate)} [{pct(r.ci_low)}, {pct(r.ci_high)}]"


def _verdict(c: Coefficient) -> str:
    return c.verdict or ("significant" if c.significant else "not significant")


def _headline(data: ReportData, res: AnalysisResult, level: str) -> list[str]:
    lines: list[str] = []
    inp = res.inputs
    roles = rm_roles(data)
    lines += [
        f"{inp.n_pairs:,} pairs · post-D RM {md_code(inp.post)} · pre-D RM {md_code(inp.pre or '—')}",
        "",
    ]
    lines += ["## Headline", ""]
    if data.headline is not None:
        lines += [f"- {md_text(line)}" for line in data.headline.lines()] + [""]
    rows = []
    for rm, ag in sorted(
        res.agreement.items(), key=lambda kv: ({"post": 0, "pre": 1}.get(roles.get(kv[0], ""), 2), kv[0])
    ):
        role = "baseline" if ag.is_baseline else roles.get(rm, "extra")
        rows.append([md_code(rm), role, _ci(ag.agreement), f"{ag.n_ties:,}"])
    lines += _table(["RM", "role", f"agreement [{level} CI]", "ties"], rows)
    if isinstance(res.resistance, RateEstimate):
        lines += [f"**Alignment resistance** (post-D RM fails): **{_ci(res.resistance)}**", ""]
    reg = res.regimes
    if not isinstance(reg, Skipped):
        lines += ["## Regimes (pre-D → post-D)", ""]
        lines += _table(
            ["regime", "pairs", f"share [{level} CI]"],
            [[REGIME_LABEL[k], f"{reg.counts.get(k, 0):,}", _ci(reg.shares[k])] for k in REGIME_LABEL],
        )
    else:
        lines += [f"_Regimes not computed: {skip_reason(reg)}._", ""]
    return lines


def _imprint(data: ReportData, res: AnalysisResult, level: str) -> list[str]:
    imp = res.imprint
    if isinstance(imp, Skipped) or not imp:
        return []
    order: list[str] = [*res.options.estimators] or [*imp]
    est = next(iter(order), None)
    models = imp.get(est or "") or {}
    post = models.get("post")
    if not isinstance(post, ImprintResult):
        return []
    reg = post.regression
    corr = reg.correction or "bonferroni"
    lines = [f"## Feature imprint (post-D, {est}; {corr}-corrected)", "", f"_{post.description or ''}_", ""]
    pre = models.get("pre")
    pre_c = {c.term: c for c in pre.regression.coefficients} if isinstance(pre, ImprintResult) else {}
    coefs = sorted((c for c in reg.coefficients if c.term != "intercept"), key=lambda c: -abs(c.estimate))
    feat_role = {f.name: f.role for f in res.inputs.features}
    adjusted = bool(reg.adjusted_ci)

    def ci(c: Coefficient) -> str:
        lo, hi = (c.ci_low_adjusted, c.ci_high_adjusted) if adjusted else (c.ci_low, c.ci_high)
        return f"[{num(lo)}, {num(hi)}]"

    lines += _table(
        ["feature", "role", "β post-D [adjusted CI]" if adjusted else "β post-D [CI]", "β₀ pre-D", "verdict"],
        [
            [
                c.term,
                feat_role.get(c.term, ""),
                f"{num(c.estimate)} {ci(c)}",
                num(pre_c[c.term].estimate if c.term in pre_c else None),
                _verdict(c),
            ]
            for c in coefs
        ],
    )
    if adjusted:
        lines += [f"_Intervals: {reg.adjusted_ci}._", ""]
    return lines


def _rest(data: ReportData, res: AnalysisResult, level: str) -> list[str]:
    lines: list[str] = []
    rob = res.robustness
    if not isinstance(rob, Skipped):
        lines += ["## Robustness", ""]
        rows = [
            [
                t,
                md_code(ac.rm),
                f"{ac.n:,}",
                pct(ac.agreement_original.rate),
                pct(ac.agreement_rewritten.rate),
                pct(ac.flipped.rate),
            ]
            for t, rr in sorted(rob.items())
            for ac in rr.accuracy
        ]
        lines += _table(["transform", "RM", "pairs", "agreement original", "rewritten", "flipped"], rows)
        for t, rr in sorted(rob.items()):
            lpm = rr.lpm
            sig = (
                [c for c in lpm.coefficients if c.significant and c.term != "intercept"]
                if not isinstance(lpm, Skipped)
                else []
            )
            if sig:
                lines += [
                    f"Significant robustness scores ({t}): "
                    + ", ".join(f"{md_code(c.term)} {num(c.estimate)}" for c in sig),
                    "",
                ]
    sp = res.suspicious_pairs
    if not isinstance(sp, Skipped):
        lines += [f"**Suspicious pairs** ({sp.criterion}): {sp.n:,}", ""]
    skipped = [
        (k, skip_reason(getattr(res, k)))
        for k in sorted(f for f in res.status if "." not in f)
        if isinstance(getattr(res, k, None), Skipped) and getattr(res, k).status == "skipped"
    ]
    if skipped:
        lines += ["## Not computed", ""] + [f"- {k}: {why}" for k, why in skipped] + [""]
    if res.inputs.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in res.inputs.notes] + [""]
    return lines


def markdown(data: ReportData) -> str:
    """The Markdown summary of one run (headline, regimes, imprint, robustness, skips)."""
    run = data.root
    lines = [f"# SEAL audit: {Path(run).name}", "", f"Run directory: {md_code(run)}", ""]
    res = data.result
    if res is None:
        lines += [f"_Statistics not computed: {data.stats_missing}._", ""]
        return "\n".join(lines)
    level = f"{100 * (1 - res.options.alpha):g}%"
    for part in (_headline, markdown_lines, _imprint, _rest):  # markdown_lines: the leaderboard
        try:
            lines += part(data, res, level)
        except Exception as exc:  # a malformed entry costs its own lines, never the summary
            lines += [
                f"_{part.__name__.strip('_')} could not be summarised: {type(exc).__name__}: {exc}_",
                "",
            ]
    lines += ["Full report with figures and the pair explorer: `report.html`.", ""]
    return "\n".join(lines)
