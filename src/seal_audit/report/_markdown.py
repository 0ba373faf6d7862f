"""report.md: the headline numbers as Markdown, for a README, an issue or a paper draft.

Same source and same formatting rules as the HTML (stats.json); figures stay in the HTML.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from seal_audit.report._data import ReportData, dig, fnum, rm_roles, skip_reason
from seal_audit.report._leaderboard import markdown_lines
from seal_audit.report._svg import num, pct, visible_controls

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


def _ci(r: Any) -> str:
    return f"{pct(fnum(dig(r, 'rate')))} [{pct(fnum(dig(r, 'ci_low')))}, {pct(fnum(dig(r, 'ci_high')))}]"


def _headline(data: ReportData, st: dict[str, Any], level: str) -> list[str]:
    lines: list[str] = []
    inp = st.get("inputs") or {}
    roles = rm_roles(data)
    lines += [
        f"{inp.get('n_pairs', '?'):,} pairs · post-D RM `{inp.get('post')}` · pre-D RM `{inp.get('pre') or '—'}`",
        "",
    ]
    lines += ["## Headline", ""]
    if data.headline is not None:
        lines += [f"- {line}" for line in data.headline.lines()] + [""]
    rows = []
    for rm, ag in sorted(
        (st.get("agreement") or {}).items(),
        key=lambda kv: ({"post": 0, "pre": 1}.get(roles.get(kv[0], ""), 2), kv[0]),
    ):
        role = "baseline" if dig(ag, "is_baseline") else roles.get(rm, "extra")
        rows.append([f"`{rm}`", role, _ci(dig(ag, "agreement")), f"{dig(ag, 'n_ties') or 0:,}"])
    lines += _table(["RM", "role", f"agreement [{level} CI]", "ties"], rows)
    res = st.get("resistance")
    if skip_reason(res) is None:
        lines += [f"**Alignment resistance** (post-D RM fails): **{_ci(res)}**", ""]
    reg = st.get("regimes")
    if skip_reason(reg) is None:
        lines += ["## Regimes (pre-D → post-D)", ""]
        lines += _table(
            ["regime", "pairs", f"share [{level} CI]"],
            [
                [REGIME_LABEL[k], f"{dig(reg, 'counts', k) or 0:,}", _ci(dig(reg, "shares", k))]
                for k in REGIME_LABEL
            ],
        )
    else:
        lines += [f"_Regimes not computed: {skip_reason(reg)}._", ""]
    return lines


def _imprint(data: ReportData, st: dict[str, Any], level: str) -> list[str]:
    lines: list[str] = []
    inp = st.get("inputs") or {}
    imp = st.get("imprint")
    if skip_reason(imp) is None and isinstance(imp, dict):
        est = next(iter(dig(st, "options", "estimators") or list(imp)), None)
        models = imp.get(est) or {}
        post = models.get("post")
        if skip_reason(post) is None:
            corr = str(dig(post, "regression", "correction") or "bonferroni")
            lines += [
                f"## Feature imprint (post-D, {est}; {corr}-corrected)",
                "",
                f"_{dig(post, 'description') or ''}_",
                "",
            ]
            pre_c = {
                c.get("term"): c
                for c in dig(models, "pre", "regression", "coefficients") or []
                if isinstance(c, dict)
            }
            coefs = [
                c
                for c in dig(post, "regression", "coefficients") or []
                if isinstance(c, dict) and c.get("term") != "intercept"
            ]
            coefs.sort(key=lambda c: -abs(fnum(c.get("estimate"))))
            feat_role = {
                str(f.get("name")): f.get("role") for f in inp.get("features") or [] if isinstance(f, dict)
            }
            adjusted = bool(dig(post, "regression", "adjusted_ci"))

            def ci(c: dict[str, Any]) -> str:
                lo, hi = ("ci_low_adjusted", "ci_high_adjusted") if adjusted else ("ci_low", "ci_high")
                return f"[{num(fnum(c.get(lo)))}, {num(fnum(c.get(hi)))}]"

            lines += _table(
                [
                    "feature",
                    "role",
                    "β post-D [adjusted CI]" if adjusted else "β post-D [CI]",
                    "β₀ pre-D",
                    "verdict",
                ],
                [
                    [
                        c.get("term"),
                        feat_role.get(str(c.get("term")), ""),
                        f"{num(fnum(c.get('estimate')))} {ci(c)}",
                        num(fnum(dig(pre_c.get(c.get("term")), "estimate"))),
                        c.get("verdict") or ("significant" if c.get("significant") else "not significant"),
                    ]
                    for c in coefs
                ],
            )
            if adjusted:
                lines += [f"_Intervals: {dig(post, 'regression', 'adjusted_ci')}._", ""]
    return lines


def _rest(data: ReportData, st: dict[str, Any], level: str) -> list[str]:
    lines: list[str] = []
    inp = st.get("inputs") or {}
    rob = st.get("robustness")
    if skip_reason(rob) is None and isinstance(rob, dict):
        lines += ["## Robustness", ""]
        rows = []
        for t, rr in sorted(rob.items()):
            for ac in dig(rr, "accuracy") or []:
                rows.append(
                    [
                        t,
                        f"`{ac.get('rm')}`",
                        f"{ac.get('n', 0):,}",
                        pct(fnum(dig(ac, "agreement_original", "rate"))),
                        pct(fnum(dig(ac, "agreement_rewritten", "rate"))),
                        pct(fnum(dig(ac, "flipped", "rate"))),
                    ]
                )
        lines += _table(["transform", "RM", "pairs", "agreement original", "rewritten", "flipped"], rows)
        for t, rr in sorted(rob.items()):
            sig = [
                c
                for c in dig(rr, "lpm", "coefficients") or []
                if isinstance(c, dict) and c.get("significant") and c.get("term") != "intercept"
            ]
            if sig:
                lines += [
                    f"Significant robustness scores ({t}): "
                    + ", ".join(f"`{c.get('term')}` {num(fnum(c.get('estimate')))}" for c in sig),
                    "",
                ]
    sp = st.get("suspicious_pairs")
    if skip_reason(sp) is None:
        lines += [f"**Suspicious pairs** ({dig(sp, 'criterion')}): {dig(sp, 'n') or 0:,}", ""]
    skipped = [
        (k, skip_reason(v))
        for k, v in sorted(st.items())
        if isinstance(v, dict) and skip_reason(v) is not None and "skipped" in v
    ]
    if skipped:
        lines += ["## Not computed", ""] + [f"- {k}: {why}" for k, why in skipped] + [""]
    notes = inp.get("notes") or []
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return lines


def markdown(data: ReportData) -> str:
    """The Markdown summary of one run (headline, regimes, imprint, robustness, skips)."""
    st = data.stats
    run = data.root
    lines = [f"# SEAL audit: {Path(run).name}", "", f"Run directory: `{run}`", ""]
    if data.stats_missing:
        lines += [f"_Statistics not computed: {data.stats_missing}._", ""]
        return "\n".join(lines)
    alpha = fnum(dig(st, "options", "alpha"))
    level = f"{100 * (1 - (alpha if math.isfinite(alpha) else 0.05)):g}%"
    for part in (_headline, markdown_lines, _imprint, _rest):  # issue 20: the leaderboard
        try:
            lines += part(data, st, level)
        except Exception as exc:  # a malformed entry costs its own lines, never the summary
            lines += [
                f"_{part.__name__.strip('_')} could not be summarised: {type(exc).__name__}: {exc}_",
                "",
            ]
    lines += ["Full report with figures and the pair explorer: `report.html`.", ""]
    return "\n".join(lines)
