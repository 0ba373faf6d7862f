"""What every section needs: the run's typed results with a few lookups, and the shared pieces of
wording (regime labels, regression captions, coefficient estimates) so that every section says
them the same way."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from seal_audit.config import ReportOptions
from seal_audit.report import _svg as svg
from seal_audit.report._blocks import Door, Legend, LegendItem
from seal_audit.report._data import ReportData, fnum, rm_roles, skip_reason
from seal_audit.report._explorer import feature_values
from seal_audit.report._html import fmt_int, fmt_p
from seal_audit.report._svg import num, pct
from seal_audit.stats import AnalysisResult
from seal_audit.stats._common import Skipped
from seal_audit.stats.analysis import FeatureInfo
from seal_audit.stats.inference import RateEstimate
from seal_audit.stats.regression import Coefficient, RegressionResult

REGIMES = ("stayed_aligned", "got_aligned", "resisted_alignment", "reversed_alignment")
REGIME_LABEL = {
    "stayed_aligned": "stayed aligned (1→1)",
    "got_aligned": "got aligned (0→1)",
    "resisted_alignment": "resisted alignment (0→0)",
    "reversed_alignment": "reversed alignment (1→0)",
}
GAMMA_LABEL = {"c": "LM agrees with human", "i": "LM indifferent", "r": "LM disagrees"}

T = TypeVar("T")


class StatsUnreadable(Exception):
    """A stats.json key this section needs did not match the result schema (the message says where)."""


class Ctx:
    """What every section builder needs: the typed results and a few lookups computed once."""

    def __init__(
        self, data: ReportData, payload: Mapping[str, Any] | None = None, options: ReportOptions | None = None
    ) -> None:
        self.data = data
        self.options = options or ReportOptions()
        """The ``[report]`` section (``seal report`` flags)."""
        self.differs_cache: dict[str, int] = {}
        """Pairs per feature whose sides differ (several sections link to them; 160,800 pairs each)."""
        self.warnings: list[str] = []
        """Problems a section found with the options (the command prints them)."""
        self.payload: Mapping[str, Any] = payload or {}
        """The explorer's data: door counts are computed on it, so a link's promised count is what
        the explorer's filter finds."""
        self.roles = rm_roles(data)
        res = data.result
        inp = res.inputs if res is not None else None
        self.post: str | None = (inp.post if inp else "") or next(
            (r for r, v in self.roles.items() if v == "post"), None
        )
        self.pre: str | None = (inp.pre if inp else "") or next(
            (r for r, v in self.roles.items() if v == "pre"), None
        )
        self.features: tuple[FeatureInfo, ...] = inp.features if inp else ()
        self.role_of = {f.name: f.role for f in self.features}
        self.correction = res.options.correction if res is not None else "bonferroni"
        self.alpha = res.options.alpha if res is not None else 0.05

    @property
    def result(self) -> AnalysisResult:
        """The typed results (sections call this only after ``missing`` said they exist)."""
        if self.data.result is None:
            raise StatsUnreadable(self.data.stats_missing or "no stats.json")
        return self.data.result

    def missing(self, key: str) -> str | None:
        """Why there is nothing for ``key`` (no stats.json, skipped with a reason, absent); a key that
        did not match the schema raises, so its section shows "could not render" and the cause."""
        if self.data.result is None:
            return self.data.stats_missing or "no stats.json"
        if key in self.data.unreadable:
            raise StatsUnreadable(self.data.unreadable[key])
        return skip_reason(getattr(self.data.result, key, None))

    def rm_label(self, rm: str) -> str:
        role = self.roles.get(rm, "extra")
        return {"post": "post-D", "pre": "pre-D", "baseline": "baseline"}.get(role, "RM") + f" · {rm}"

    def rm_class(self, rm: str) -> str:
        return {"post": "c-post", "pre": "c-pre", "baseline": "c-base"}.get(self.roles.get(rm, ""), "c-other")

    def level(self) -> str:
        return f"{100 * (1 - self.alpha):g}%"

    def correction_text(self) -> str:
        return f"{self.correction.capitalize()}-corrected p < {self.alpha:g}"

    def pair_rewards(self, rm: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(pair_ids, chosen, rejected) rewards of ``rm`` on the original texts."""
        diag = self.data.table("pair_diagnostics")
        if diag is not None and f"{rm}_chosen" in diag.columns and f"{rm}_rejected" in diag.columns:
            return (
                diag["pair_id"].astype(str).to_numpy(),
                pd.to_numeric(diag[f"{rm}_chosen"], errors="coerce").to_numpy(dtype=float),
                pd.to_numeric(diag[f"{rm}_rejected"], errors="coerce").to_numpy(dtype=float),
            )
        sc = self.data.scores
        if sc is None or not {"pair_id", "side", "rm", "reward"} <= set(sc.columns):
            return None
        s = sc[sc["rm"].astype(str) == rm]
        if "variant" in s.columns:
            s = s[s["variant"].fillna("original").astype(str) == "original"]
        if s.empty:
            return None
        wide = s.pivot_table(index="pair_id", columns="side", values="reward", aggfunc="first")
        if "chosen" not in wide.columns or "rejected" not in wide.columns:
            return None
        return (
            wide.index.astype(str).to_numpy(),
            wide["chosen"].to_numpy(dtype=float),
            wide["rejected"].to_numpy(dtype=float),
        )


def differs(ctx: Ctx, feature: str) -> int | None:
    """Pairs whose chosen and rejected values of ``feature`` differ, as the explorer's
    "chosen − rejected != 0" filter counts them (None when the explorer has no such feature)."""
    if feature in ctx.differs_cache:
        return ctx.differs_cache[feature]
    fv = ctx.payload.get("fv", {}).get(feature)
    if fv is None:
        return None
    c, r = feature_values(fv)  # missing → NaN: never counted
    n = int(np.count_nonzero(np.isfinite(c) & np.isfinite(r) & (c != r)))
    ctx.differs_cache[feature] = n
    return n


def differs_door(ctx: Ctx, feature: str) -> Door | None:
    n = differs(ctx, feature)
    if n is None:
        return None
    return Door(f"{n:,} pairs", {"f": feature, "fside": "diff", "fop": "!=", "fval": "0"}, n)


def ok(x: T | Skipped | None) -> T | None:
    """The record itself when it was computed, None when it is skipped or absent."""
    return None if x is None or isinstance(x, Skipped) else x


def rate_estimate(r: RateEstimate) -> svg.Estimate:
    """A rate with its exact Clopper–Pearson interval, as a plot estimate."""
    tip = f"{pct(r.rate)} [{pct(r.ci_low)}, {pct(r.ci_high)}], {fmt_int(r.k)}/{fmt_int(r.n)}"
    return svg.Estimate(r.rate, r.ci_low, r.ci_high, True, tip)


def rate_text(r: RateEstimate | None) -> str:
    if r is None:
        return f"{pct(math.nan)} [{pct(math.nan)}, {pct(math.nan)}]"
    return f"{pct(r.rate)} [{pct(r.ci_low)}, {pct(r.ci_high)}]"


def verdict(c: Coefficient) -> str:
    return c.verdict or ("significant" if c.significant else "not significant")


def coef_estimate(c: Coefficient, unit: str = "") -> svg.Estimate:
    e, lo, hi = c.estimate, c.ci_low, c.ci_high
    alo, ahi = c.ci_low_adjusted, c.ci_high_adjusted
    p = c.p_bonferroni if not math.isnan(c.p_bonferroni) else c.p_value
    mde = fnum(c.mde)
    tip = f"{c.term}: {num(e)}{unit}, corrected p = {fmt_p(p)}, {verdict(c)}"
    if math.isfinite(alo) and math.isfinite(ahi):
        # the drawn interval is the adjusted one, so that no verdict contradicts the bar beside it
        tip += f"; adjusted (simultaneous) CI [{num(alo)}, {num(ahi)}], unadjusted [{num(lo)}, {num(hi)}]"
        lo, hi = alo, ahi
    else:
        tip += f"; CI [{num(lo)}, {num(hi)}]"
    if math.isfinite(mde):
        tip += f"; minimum detectable effect {num(mde)}{unit}"
    return svg.Estimate(e, lo, hi, c.significant, tip)


def terms(reg: RegressionResult) -> dict[str, Coefficient]:
    """Coefficients by term, intercept left out."""
    return {c.term: c for c in reg.coefficients if c.term != "intercept"}


def feature_rows(ctx: Ctx, names: Sequence[str]) -> list[svg.ForestRow]:
    """Rows of a forest plot: target features first, then spoilers, each in stats.json's order."""
    order = {f.name: i for i, f in enumerate(ctx.features)}
    uniq = sorted(
        dict.fromkeys(names),
        key=lambda n: (ctx.role_of.get(n, "spoiler") != "target", order.get(n, 10**6), n),
    )
    return [svg.ForestRow(n, ctx.role_of.get(n, "spoiler")) for n in uniq]


def sig_legend(ctx: Ctx) -> Legend:
    return Legend(
        (
            LegendItem("g-target", "target feature"),
            LegendItem("g-spoiler", "spoiler feature"),
            LegendItem("solid", f"significant ({ctx.correction_text()})"),
            LegendItem("faded", "not significant"),
        )
    )


def regime_legend() -> Legend:
    return Legend(tuple(LegendItem(f"r-{k}", REGIME_LABEL[k]) for k in REGIMES))


def regression_caption(reg: RegressionResult, what: str) -> str:
    k = len(terms(reg))
    s = (
        f"{what}; {fmt_int(reg.n_obs)} rows"
        + (f", {fmt_int(reg.n_clusters)} clusters" if reg.n_clusters else "")
        + f"; covariance {reg.cov_type or '?'}; "
    )
    corr = reg.correction or "bonferroni"
    if reg.adjusted_ci:
        s += (
            f"{corr.capitalize()} correction over {k} coefficients; the intervals drawn are the adjusted "
            f"ones ({reg.adjusted_ci}), so they agree with the verdicts."
        )
    else:
        s += f"{corr.capitalize()} correction over {k} coefficients; intervals are unadjusted {100 * (1 - (reg.alpha or 0.05)):g}% CIs."
    if reg.power is not None:
        s += (
            f" 'Underpowered' marks a non-significant coefficient whose minimum detectable effect at "
            f"{100 * reg.power:g}% power exceeds the effect of interest "
            f"({num(fnum(reg.effect_of_interest))}): not evidence of no effect."
        )
    if reg.notes:
        s += " " + " ".join(reg.notes)
    if reg.dropped_terms:
        s += f" Dropped (never vary): {', '.join(reg.dropped_terms)}."
    return s


def side_forest(
    ctx: Ctx,
    reg: RegressionResult,
    label: str,
    x_title: str,
    transform: Callable[[str], tuple[str, str] | None],
) -> str:
    """A coefficient plot with one panel per side: ``transform`` maps a term to (row, panel)."""
    rows: list[str] = []
    panels: dict[str, dict[str, svg.Estimate]] = {}
    for term, c in terms(reg).items():
        key = transform(term)
        if key is None:
            continue
        row, panel = key
        rows.append(row)
        panels.setdefault(panel, {})[row] = coef_estimate(c)
    for t in reg.dropped_terms:  # named in the caption; a row of n/a says nothing
        key = transform(t)
        if key:
            panels.setdefault(key[1], {})
    ordered = sorted(panels, key=lambda p: (not p.startswith("chosen"), p))
    frows = []
    for fr in feature_rows(ctx, [r.split(" ·")[0] for r in rows]):
        for r in dict.fromkeys(rows):
            if r.split(" ·")[0] == fr.label:
                frows.append(svg.ForestRow(r, fr.group))
    return svg.forest(frows, [svg.Panel(p, panels[p]) for p in ordered], x_title=x_title, label=label)


def side_term(term: str) -> tuple[str, str] | None:
    side, _, feat = term.partition(":")
    if side not in ("chosen", "rejected") or not feat:
        return None
    return feat, f"{side} response's feature"
