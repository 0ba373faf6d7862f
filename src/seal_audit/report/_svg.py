"""Inline SVG figures, drawn by hand so the report needs no plotting library and no network.

Every figure is a string of SVG markup that goes straight into the HTML. Colours come from CSS
classes defined in ``assets/report.css`` (one palette for the whole report: target vs spoiler,
pre-D vs post-D, the four regimes, significant vs faded), so a figure never hard-codes a colour and
the legend, the tables and the figures always agree. Every label that can come from user data
(feature names, RM names) goes through :func:`esc`.
"""

from __future__ import annotations

import dataclasses
import html
import math
import re
from collections.abc import Callable, Sequence

FONT = 12
"""Base font size of figure text in SVG user units (figures scale with their container)."""


_CONTROL_PICTURES = {c: 0x2400 + c for c in range(0x20) if chr(c) not in "\t\n\r"} | {0x7F: 0x2421}
"""NUL and the other C0 controls (tab, newline, carriage return excepted) and DEL → the Unicode
control pictures (U+2400 "␀" ...): shown, never written raw (a raw NUL truncates or garbles the page
in some viewers, and an escape character could drive a terminal that cats the file)."""


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def visible_controls(text: str) -> str:
    """``text`` with every C0 control (but tab, newline, CR) and DEL shown as its control picture.
    A regex search first: ``str.translate`` with a mapping is slow, and almost no text has one."""
    if _CONTROL.search(text) is None:
        return text
    return text.translate(_CONTROL_PICTURES)


def _md_line(text: object) -> str:
    """One line of Markdown: controls made visible, line breaks as spaces (a break would end a
    table row or a list item)."""
    return visible_controls(str(text)).replace("\r", " ").replace("\n", " ")


def md_code(text: object) -> str:
    """``text`` as one Markdown code span whatever it holds: a name with backticks (an RM called
    ``a`b``) gets a fence one backtick longer than its longest run, padded when it starts or ends
    with one (CommonMark strips one space each side); newlines become spaces, controls visible."""
    s = _md_line(text)
    runs = [len(m) for m in re.findall(r"`+", s)]
    fence = "`" * (max(runs, default=0) + 1)
    stripped = s.startswith(" ") and s.endswith(" ") and bool(s.strip())
    pad = " " if s.startswith("`") or s.endswith("`") or stripped else ""
    return f"{fence}{pad}{s}{pad}{fence}"


_MD_INLINE = re.compile(r"[\\`*~<>&]|\](?=[(\[])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md_text(text: object) -> str:
    """``text`` as literal Markdown inline text: the headline sentences quote RM and feature names
    as they were given, and a name such as ``x**b**`c`<i>`` must not turn into emphasis, a code
    span, a link or raw HTML in report.md. Only what can start markup is escaped (an underscore
    inside a word, as in ``refusal_pattern``, cannot), so the file stays readable as plain text."""
    s = _md_line(text)
    return _MD_INLINE.sub(lambda m: "\\" + m.group(0), s)


def esc(value: object) -> str:
    """Escape any value for HTML text and attribute context (quotes included); controls made visible."""
    return visible_controls(html.escape(str(value), quote=True))


def num(x: float | None, digits: int = 3) -> str:
    """A compact number for labels: fixed decimals, or an en dash when missing or non-finite."""
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.{digits}f}".replace("-", "−")


def pct(x: float | None, digits: int = 1) -> str:
    """A share as a percentage label (0.257 → 25.7%), an en dash when missing."""
    if x is None or not math.isfinite(x):
        return "–"
    return f"{100 * x:.{digits}f}%"


def _c(v: float) -> str:
    """Coordinates with two decimals keep figures small without visible rounding."""
    return f"{v:.2f}".rstrip("0").rstrip(".") if abs(v) < 1e9 else "0"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values ('nice numbers': 1, 2, 2.5, 5 × 10^k) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = mag
    for m in (1, 2, 2.5, 5, 10):
        step = m * mag
        if raw <= step:
            break
    start = math.ceil(lo / step - 1e-9) * step
    out = []
    v = start
    while v <= hi + 1e-9 * step:
        out.append(round(v, 10))
        v += step
    return out


def tick_label(v: float) -> str:
    if abs(v) >= 1000 or (v != 0 and abs(v) < 0.01):
        return f"{v:.2g}".replace("-", "−")
    s = f"{v:.3f}".rstrip("0").rstrip(".")
    return s.replace("-", "−") if s != "-0" else "0"


@dataclasses.dataclass(frozen=True)
class Scale:
    """A linear map from data to pixels."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, v: float) -> float:
        if self.d1 == self.d0:
            return (self.r0 + self.r1) / 2
        return self.r0 + (v - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)


def padded(lo: float, hi: float, frac: float = 0.06) -> tuple[float, float]:
    """Extend a data range a little on both sides so marks never sit on the frame."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return -1.0, 1.0
    if hi <= lo:
        return lo - 1.0, hi + 1.0
    pad = (hi - lo) * frac
    return lo - pad, hi + pad


def root(
    width: float, height: float, body: Sequence[str], label: str, cls: str = "fig", role: str = "img"
) -> str:
    """The outer ``<svg>`` element; ``label`` is the accessible name read by screen readers
    (``role="group"`` when the figure holds links: an image cannot contain controls)."""
    return (
        f'<svg class="{cls}" viewBox="0 0 {_c(width)} {_c(height)}" width="{_c(width)}" '
        f'role="{role}" aria-label="{esc(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{esc(label)}</title>{''.join(body)}</svg>"
    )


def text(x: float, y: float, s: str, cls: str = "", anchor: str = "start", extra: str = "") -> str:
    a = f' text-anchor="{anchor}"' if anchor != "start" else ""
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{_c(x)}" y="{_c(y)}"{a}{c}{extra}>{esc(s)}</text>'


def line(x1: float, y1: float, x2: float, y2: float, cls: str) -> str:
    return f'<line x1="{_c(x1)}" y1="{_c(y1)}" x2="{_c(x2)}" y2="{_c(y2)}" class="{cls}"/>'


def rect(x: float, y: float, w: float, h: float, cls: str, tip: str | None = None) -> str:
    t = f"<title>{esc(tip)}</title>" if tip else ""
    return f'<rect x="{_c(x)}" y="{_c(y)}" width="{_c(max(w, 0))}" height="{_c(max(h, 0))}" class="{cls}">{t}</rect>'


def x_axis(
    scale: Scale,
    y: float,
    ticks: Sequence[float],
    *,
    grid_to: float | None = None,
    title: str = "",
    fmt: Callable[[float], str] = tick_label,
) -> list[str]:
    """A bottom axis with tick labels; optional vertical grid lines up to ``grid_to``."""
    out = [line(scale.r0, y, scale.r1, y, "axis")]
    for t in ticks:
        x = scale(t)
        if grid_to is not None:
            out.append(line(x, grid_to, x, y, "grid"))
        out.append(line(x, y, x, y + 4, "axis"))
        out.append(text(x, y + 16, fmt(t), "tick", "middle"))
    if title:
        out.append(text((scale.r0 + scale.r1) / 2, y + 32, title, "axis-title", "middle"))
    return out


def y_axis(
    scale: Scale, x: float, ticks: Sequence[float], *, grid_to: float | None = None, title: str = ""
) -> list[str]:
    """A left axis with tick labels; optional horizontal grid lines to ``grid_to``."""
    out = [line(x, scale.r0, x, scale.r1, "axis")]
    for t in ticks:
        y = scale(t)
        if grid_to is not None:
            out.append(line(x, y, grid_to, y, "grid"))
        out.append(line(x - 4, y, x, y, "axis"))
        out.append(text(x - 7, y + 4, tick_label(t), "tick", "end"))
    if title:
        my = (scale.r0 + scale.r1) / 2
        out.append(
            f'<text transform="translate({_c(x - 40)},{_c(my)}) rotate(-90)" text-anchor="middle" '
            f'class="axis-title">{esc(title)}</text>'
        )
    return out


# --------------------------------------------------------------------------------------------
# Forest / coefficient plots


@dataclasses.dataclass(frozen=True)
class Estimate:
    """One point estimate with its interval, and whether it survived the multiple-testing correction."""

    estimate: float
    low: float
    high: float
    significant: bool
    tip: str = ""


@dataclasses.dataclass(frozen=True)
class ForestRow:
    label: str
    group: str
    """Group name shown as a band header (e.g. 'target', 'spoiler'); also the CSS colour class."""


@dataclasses.dataclass(frozen=True)
class Panel:
    title: str
    values: dict[str, Estimate]
    """Row label → estimate; rows without one show 'n/a'."""


def _row_groups(rows: Sequence[ForestRow]) -> list[tuple[str, list[ForestRow]]]:
    """Consecutive rows of one group, as (group, rows): the bands both forest plots draw."""
    groups: list[tuple[str, list[ForestRow]]] = []
    for r in rows:
        if groups and groups[-1][0] == r.group:
            groups[-1][1].append(r)
        else:
            groups.append((r.group, [r]))
    return groups


def forest(
    rows: Sequence[ForestRow], panels: Sequence[Panel], *, x_title: str, label: str, shared_scale: bool = True
) -> str:
    """Side-by-side forest plot: one row per term, one panel per model, groups as bands.

    Significant estimates are solid; the others are faded, so the eye lands on what survived the
    correction. Panels share the x scale by default because pre-D and post-D imprints are in the
    same reward units and the point is to compare them.
    """
    label_w = 190.0
    panel_w = 250.0 if len(panels) > 1 else 360.0
    gap = 26.0
    row_h = 19.0
    head_h = 22.0
    top = 30.0
    groups = _row_groups(rows)
    n_rows = len(rows)
    height = top + len(groups) * head_h + n_rows * row_h + 48
    width = label_w + len(panels) * panel_w + (len(panels) - 1) * gap + 12

    def rng(ps: Sequence[Panel]) -> tuple[float, float]:
        vals = [
            v for p in ps for e in p.values.values() for v in (e.low, e.high, e.estimate) if math.isfinite(v)
        ]
        lo, hi = (min([*vals, 0.0]), max([*vals, 0.0])) if vals else (-1.0, 1.0)
        return padded(lo, hi)

    shared = rng(panels)
    body: list[str] = []
    # row positions
    ys: dict[str, float] = {}
    y = top
    bands: list[tuple[str, float, float]] = []
    for g, rs in groups:
        y0 = y
        y += head_h
        for r in rs:
            ys[r.label] = y + row_h / 2
            y += row_h
        bands.append((g, y0, y))
    y_end = y
    for g, y0, y1 in bands:
        body.append(rect(0, y0, width, y1 - y0, f"band band-{esc(g)}"))
        body.append(rect(0, y0, 4, y1 - y0, f"swatch g-{esc(g)}"))
        body.append(
            text(10, y0 + 15, f"{g} features" if g in ("target", "spoiler") else g, f"group-title g-{esc(g)}")
        )
    for r in rows:
        body.append(text(label_w - 8, ys[r.label] + 4, r.label, "row-label", "end"))
    for i, p in enumerate(panels):
        x0 = label_w + i * (panel_w + gap)
        lo, hi = shared if shared_scale else rng([p])
        sc = Scale(lo, hi, x0 + 6, x0 + panel_w - 6)
        ticks = nice_ticks(lo, hi, 5)
        body.append(text(x0 + panel_w / 2, 18, p.title, "panel-title", "middle"))
        body.extend(x_axis(sc, y_end + 4, ticks, grid_to=top, title=x_title))
        if lo < 0 < hi:
            body.append(line(sc(0), top, sc(0), y_end + 4, "zero"))
        for r in rows:
            e = p.values.get(r.label)
            yy = ys[r.label]
            if e is None or not math.isfinite(e.estimate):
                body.append(text(x0 + panel_w / 2, yy + 4, "n/a", "na", "middle"))
                continue
            cls = f"g-{esc(r.group)}" + ("" if e.significant else " ns")
            l_, h_ = (
                (e.low, e.high)
                if math.isfinite(e.low) and math.isfinite(e.high)
                else (e.estimate, e.estimate)
            )
            tip = e.tip or f"{r.label}: {num(e.estimate)} [{num(l_)}, {num(h_)}]"
            body.append(
                f'<g class="{cls}"><title>{esc(tip)}</title>'
                + line(sc(max(l_, lo)), yy, sc(min(h_, hi)), yy, "ci")
                + f'<circle cx="{_c(sc(e.estimate))}" cy="{_c(yy)}" r="4.2" class="pt"/></g>'
            )
    return root(width, height, body, label)


OVERLAY_COLOURS = 7
"""Series colours of the overlaid forest (``.ov-0`` … in the CSS); beyond them the marker shape changes."""
OVERLAY_STEP = 7.0
"""Vertical distance between two RMs' estimates within one row of the overlaid forest."""


def overlay_offsets(shown: Sequence[int]) -> dict[int, float]:
    """Vertical offset of each shown series within a row, centred (the page's script uses the same rule)."""
    n = len(shown)
    return {k: (j - (n - 1) / 2) * OVERLAY_STEP for j, k in enumerate(shown)}


def forest_overlay(
    rows: Sequence[ForestRow],
    series: Sequence[tuple[str, dict[str, Estimate]]],
    shown: Sequence[int],
    *,
    x_title: str,
    label: str,
) -> str:
    """One forest panel with several RMs overlaid: per row, each RM's estimate and interval, offset a
    little so they do not hide each other; colour (then marker shape) tells the RMs apart.

    Every series is drawn (``<g class="ov" data-ov=k>``); those not in ``shown`` carry
    ``display="none"``. The page's script shows any chosen set and re-centres them with the same
    offsets as :func:`overlay_offsets` (``transform`` of each group), so the file and the script agree.
    """
    label_w, panel_w, row_h, head_h, top = 190.0, 560.0, max(19.0, OVERLAY_STEP * len(series) + 6), 22.0, 12.0
    groups = _row_groups(rows)
    width = label_w + panel_w + 12
    ys: dict[str, float] = {}
    y = top
    body: list[str] = []
    for g, rs in groups:
        y0 = y
        y += head_h
        for r in rs:
            ys[r.label] = y + row_h / 2
            y += row_h
        body.append(rect(0, y0, width, y - y0, f"band band-{esc(g)}"))
        body.append(rect(0, y0, 4, y - y0, f"swatch g-{esc(g)}"))
        body.append(
            text(10, y0 + 15, f"{g} features" if g in ("target", "spoiler") else g, f"group-title g-{esc(g)}")
        )
    y_end = y
    vals = [
        v for _, vs in series for e in vs.values() for v in (e.low, e.high, e.estimate) if math.isfinite(v)
    ]
    lo, hi = padded(min([*vals, 0.0]), max([*vals, 0.0])) if vals else (-1.0, 1.0)
    sc = Scale(lo, hi, label_w + 6, label_w + panel_w - 6)
    body.extend(x_axis(sc, y_end + 4, nice_ticks(lo, hi, 5), grid_to=top, title=x_title))
    if lo < 0 < hi:
        body.append(line(sc(0), top, sc(0), y_end + 4, "zero"))
    for r in rows:
        body.append(text(label_w - 8, ys[r.label] + 4, r.label, "row-label", "end"))
    offsets = overlay_offsets(shown)
    for k, (name, vs) in enumerate(series):
        shape = k // OVERLAY_COLOURS % 3
        parts = []
        for r in rows:
            e = vs.get(r.label)
            if e is None or not math.isfinite(e.estimate):
                continue
            yy = ys[r.label]
            l_, h_ = (
                (e.low, e.high)
                if math.isfinite(e.low) and math.isfinite(e.high)
                else (e.estimate, e.estimate)
            )
            x = sc(e.estimate)
            if shape == 0:
                mark = f'<circle cx="{_c(x)}" cy="{_c(yy)}" r="3.6" class="pt"/>'
            elif shape == 1:
                mark = f'<rect x="{_c(x - 3.4)}" y="{_c(yy - 3.4)}" width="6.8" height="6.8" class="pt"/>'
            else:
                mark = f'<path d="M{_c(x)},{_c(yy - 4.4)}L{_c(x + 4.4)},{_c(yy)}L{_c(x)},{_c(yy + 4.4)}L{_c(x - 4.4)},{_c(yy)}Z" class="pt"/>'
            tip = f"{name} · " + (e.tip or f"{r.label}: {num(e.estimate)} [{num(l_)}, {num(h_)}]")
            parts.append(
                f'<g class="{"" if e.significant else "ns"}"><title>{esc(tip)}</title>'
                + line(sc(max(l_, lo)), yy, sc(min(h_, hi)), yy, "ci")
                + mark
                + "</g>"
            )
        hidden = "" if k in offsets else ' display="none"'
        dy = offsets.get(k, 0.0)
        body.append(
            f'<g class="ov ov-{k % OVERLAY_COLOURS}" data-ov="{k}" data-rm="{esc(name)}" data-step="{OVERLAY_STEP:g}" '
            f'transform="translate(0,{_c(dy)})"{hidden}>{"".join(parts)}</g>'
        )
    return root(width, y_end + 48, body, label)


# --------------------------------------------------------------------------------------------
# Small figures


def interval_dots(
    items: Sequence[tuple[str, Estimate, str]],
    *,
    label: str,
    lo: float = 0.0,
    hi: float = 1.0,
    ref: float | None = 0.5,
    as_pct: bool = True,
) -> str:
    """Horizontal dots with intervals on a fixed [lo, hi] axis (agreement of each RM vs chance)."""
    label_w = 170.0
    w = 520.0
    row_h = 24.0
    top = 8.0
    height = top + len(items) * row_h + 40
    sc = Scale(lo, hi, label_w, w - 56)
    body: list[str] = []
    ticks = nice_ticks(lo, hi, 5)
    y_end = top + len(items) * row_h
    body.extend(
        x_axis(sc, y_end + 2, ticks, grid_to=top, fmt=(lambda t: pct(t, 0)) if as_pct else tick_label)
    )
    if ref is not None:
        body.append(line(sc(ref), top, sc(ref), y_end + 2, "zero"))
    for i, (name, e, cls) in enumerate(items):
        y = top + i * row_h + row_h / 2
        body.append(text(label_w - 10, y + 4, name, "row-label", "end"))
        if not math.isfinite(e.estimate):
            body.append(text(sc((lo + hi) / 2), y + 4, "n/a", "na", "middle"))
            continue
        l_ = e.low if math.isfinite(e.low) else e.estimate
        h_ = e.high if math.isfinite(e.high) else e.estimate
        body.append(
            f'<g class="{esc(cls)}"><title>{esc(e.tip or name)}</title>'
            + line(sc(l_), y, sc(h_), y, "ci")
            + f'<circle cx="{_c(sc(e.estimate))}" cy="{_c(y)}" r="5" class="pt"/></g>'
        )
        body.append(text(w - 4, y + 4, pct(e.estimate) if as_pct else num(e.estimate), "value", "end"))
    return root(w, height, body, label)


def stacked_bar(parts: Sequence[tuple[str, float, str]], *, label: str, width: float = 520.0) -> str:
    """One 100% bar split into labelled segments (the four regimes)."""
    h = 30.0
    body: list[str] = []
    total = sum(v for _, v, _ in parts if math.isfinite(v)) or 1.0
    x = 0.0
    for name, v, cls in parts:
        if not math.isfinite(v) or v <= 0:
            continue
        w = v / total * width
        body.append(rect(x, 0, w, h, f"seg {esc(cls)}", f"{name}: {pct(v / total)}"))
        if w > 44:
            body.append(text(x + w / 2, 19, pct(v / total, 1), "seg-label", "middle"))
        x += w
    return root(width, h, body, label, "fig bar")


def mosaic(
    columns: Sequence[tuple[str, float, Sequence[tuple[str, float, str]]]],
    *,
    label: str,
    links: Sequence[Sequence[tuple[str, int]]] | None = None,
) -> str:
    """A mosaic: column widths are the γ shares, segment heights the regime mix within each γ.

    ``links[column][segment]`` = (href, pairs): each segment is then a link to its pairs."""
    w, h, top, bottom = 440.0, 260.0, 8.0, 40.0
    body: list[str] = []
    total = sum(c[1] for c in columns if math.isfinite(c[1])) or 1.0
    gap = 4.0
    usable = w - gap * (len(columns) - 1)
    x = 0.0
    for ci, (name, share, segs) in enumerate(columns):
        cw = max(share / total * usable, 0.0)
        seg_total = sum(s[1] for s in segs) or 1.0
        y = top
        for si, (sname, v, cls) in enumerate(segs):
            sh = v / seg_total * (h - top - bottom)
            r = rect(x, y, cw, sh, f"seg {esc(cls)}", f"γ={name}: {sname} {pct(v / seg_total)}")
            if links is not None:
                href, n = links[ci][si]
                r = f'<a href="{esc(href)}" class="door" data-n="{n}">{r}</a>'
            body.append(r)
            if sh > 15 and cw > 40:
                body.append(text(x + cw / 2, y + sh / 2 + 4, pct(v / seg_total, 0), "seg-label", "middle"))
            y += sh
        body.append(text(x + cw / 2, h - bottom + 16, f"γ = {name}", "tick strong", "middle"))
        # a narrow column gets the short label, so neighbouring labels never overlap
        share_label = pct(share / total, 1) + (" of pairs" if cw >= 100 else "")
        body.append(text(x + cw / 2, h - bottom + 30, share_label, "tick", "middle"))
        x += cw + gap
    return root(w, h, body, label, role="group" if links is not None else "img")


def scatter(
    xs: Sequence[float],
    ys: Sequence[float],
    classes: Sequence[str],
    *,
    label: str,
    x_title: str,
    y_title: str,
    title: str,
    note: str = "",
    ids: Sequence[str] | None = None,
) -> str:
    """Reward-vector scatter in the (chosen, rejected) plane with the diagonal: below = aligned.

    With ``ids`` every dot carries its pair id (``data-pair``): a click opens that pair."""
    size, left, top, bottom = 300.0, 48.0, 24.0, 40.0
    keep = [k for k, (x, y) in enumerate(zip(xs, ys, strict=True)) if math.isfinite(x) and math.isfinite(y)]
    pts = [(xs[k], ys[k]) for k in keep]
    pids = [ids[k] for k in keep] if ids is not None else None
    if pts:
        lo = min(min(p[0] for p in pts), min(p[1] for p in pts))
        hi = max(max(p[0] for p in pts), max(p[1] for p in pts))
    else:
        lo, hi = -1.0, 1.0
    lo, hi = padded(lo, hi, 0.04)
    sx = Scale(lo, hi, left, left + size)
    sy = Scale(lo, hi, top + size, top)
    ticks = nice_ticks(lo, hi, 5)
    body = [text(left + size / 2, 14, title, "panel-title", "middle")]
    body.extend(x_axis(sx, top + size, ticks, grid_to=top, title=x_title))
    body.extend(y_axis(sy, left, ticks, grid_to=left + size, title=y_title))
    body.append(
        f'<polygon points="{_c(sx(lo))},{_c(sy(lo))} {_c(sx(hi))},{_c(sy(lo))} {_c(sx(hi))},{_c(sy(hi))}" class="aligned-zone"/>'
    )
    body.append(line(sx(lo), sy(lo), sx(hi), sy(hi), "diag"))
    body.append(text(sx(hi) - 4, sy(lo) - 6, "aligned (chosen > rejected)", "zone-label", "end"))
    body.append(text(sx(lo) + 4, sy(hi) + 12, "misaligned", "zone-label"))
    dots = []
    for k, ((x, y), cls) in enumerate(zip(pts, classes, strict=False)):
        pid = f' data-pair="{esc(pids[k])}"' if pids is not None else ""
        dots.append(f'<circle cx="{_c(sx(x))}" cy="{_c(sy(y))}" r="1.9" class="{esc(cls)}"{pid}/>')
    body.append('<g class="dots">' + "".join(dots) + "</g>")
    if note:
        body.append(text(left + size, top + size + 34, note, "note", "end"))
    return root(left + size + 12, top + size + bottom, body, label)


def polar_histogram(
    theta_deg: Sequence[float],
    *,
    title: str,
    label: str,
    cls: str,
    bins: int = 36,
    radius: float = 82.0,
    mean: float | None = None,
) -> str:
    """A rose diagram of angles in degrees: wedge area ∝ count (radius ∝ sqrt) so wide spreads do
    not exaggerate the tails; 0° points right and positive angles turn counter-clockwise as θ does."""
    counts = [0] * bins
    n = 0
    for t in theta_deg:
        if not math.isfinite(t):
            continue
        a = (t + 180.0) % 360.0
        counts[min(int(a / 360.0 * bins), bins - 1)] += 1
        n += 1
    pad = 26.0
    cx = cy = radius + pad
    size = 2 * (radius + pad)
    body = [text(cx, 14, title, "panel-title", "middle")]
    for frac in (0.5, 1.0):
        body.append(
            f'<circle cx="{_c(cx)}" cy="{_c(cy + 6)}" r="{_c(radius * frac)}" class="grid" fill="none"/>'
        )
    cy += 6
    for deg, lab, anchor, dx, dy in (
        (0, "0°", "start", 4, 4),
        (90, "+90°", "middle", 0, -4),
        (180, "±180°", "end", -4, 4),
        (-90, "−90°", "middle", 0, 12),
    ):
        r = math.radians(deg)
        x2, y2 = cx + radius * math.cos(r), cy - radius * math.sin(r)
        body.append(line(cx, cy, x2, y2, "grid"))
        body.append(text(x2 + dx, y2 + dy, lab, "tick", anchor))
    peak = max(counts) if n else 1
    wedges = []
    for i, c in enumerate(counts):
        if c == 0:
            continue
        rr = radius * math.sqrt(c / peak)
        a0 = math.radians(-180.0 + i * 360.0 / bins)
        a1 = math.radians(-180.0 + (i + 1) * 360.0 / bins)
        x0, y0 = cx + rr * math.cos(a0), cy - rr * math.sin(a0)
        x1, y1 = cx + rr * math.cos(a1), cy - rr * math.sin(a1)
        wedges.append(
            f'<path d="M{_c(cx)},{_c(cy)} L{_c(x0)},{_c(y0)} A{_c(rr)},{_c(rr)} 0 0 0 {_c(x1)},{_c(y1)} Z" class="wedge {esc(cls)}">'
            f"<title>{esc(f'{-180 + i * 360 / bins:.0f}° to {-180 + (i + 1) * 360 / bins:.0f}°: {c} pairs')}</title></path>"
        )
    body.extend(wedges)
    if mean is not None and math.isfinite(mean):
        r = math.radians(mean)
        body.append(line(cx, cy, cx + radius * math.cos(r), cy - radius * math.sin(r), "mean-ray"))
    body.append(
        text(
            cx,
            size + 2,
            f"n = {n:,}" + (f" · mean {num(mean, 1)}°" if mean is not None else ""),
            "note",
            "middle",
        )
    )
    return root(size, size + 8, body, label, "fig polar")


def reliability(
    series: Sequence[tuple[str, str, Sequence[tuple[float, float, int, str | None]]]], *, label: str
) -> str:
    """Pair-once reliability diagram: the RM's confidence in the response it ranks higher (x, from
    0.5) against how often that response is the chosen one (y), per bin and RM, with the diagonal of
    perfect calibration; point area ∝ pairs in the bin. A point with an href is a door to its pairs."""
    size, left, top, bottom = 280.0, 48.0, 12.0, 40.0
    sx = Scale(0.5, 1, left, left + size)
    sy = Scale(0, 1, top + size, top)
    body: list[str] = []
    body.extend(
        x_axis(sx, top + size, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0], grid_to=top, title="RM's P(its pick wins)")
    )
    body.extend(
        y_axis(sy, left, [0.0, 0.25, 0.5, 0.75, 1.0], grid_to=left + size, title="share its pick is chosen")
    )
    body.append(line(sx(0.5), sy(0.5), sx(1), sy(1), "diag"))
    legend_y = top + 8
    linked = False
    for name, cls, pts in series:
        good = [(p, o, n, h) for p, o, n, h in pts if math.isfinite(p) and math.isfinite(o) and n > 0]
        if not good:
            continue
        nmax = max(n for _, _, n, _ in good)
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{_c(sx(p))},{_c(sy(o))}" for i, (p, o, _, _) in enumerate(good)
        )
        body.append(f'<g class="{esc(cls)}"><path d="{path}" class="series"/>')
        for p, o, n, href in good:
            r = 2 + 4 * math.sqrt(n / nmax)
            pt = f'<circle cx="{_c(sx(p))}" cy="{_c(sy(o))}" r="{_c(r)}" class="pt"><title>{esc(f"{name}: P(its pick wins) {p:.2f}, its pick chosen {o:.2f}, {n:,} pairs")}</title></circle>'
            if href is not None:
                linked = True
                pt = f'<a href="{esc(href)}" class="door" data-n="{n}">{pt}</a>'
            body.append(pt)
        body.append("</g>")
        body.append(
            f'<g class="{esc(cls)}"><circle cx="{_c(left + 14)}" cy="{_c(legend_y - 4)}" r="4" class="pt"/></g>'
        )
        body.append(text(left + 24, legend_y, name, "legend"))
        legend_y += 16
    return root(left + size + 12, top + size + bottom, body, label, role="group" if linked else "img")


def hbars(
    items: Sequence[tuple[str, float, float, float, str]], *, label: str, x_title: str, as_pct: bool = True
) -> str:
    """Horizontal bars with interval whiskers (accuracy drop and flip rates per transform)."""
    label_w, w, row_h, top = 170.0, 500.0, 22.0, 6.0
    vals = [v for _, e, lo_, hi_, _ in items for v in (e, lo_, hi_) if math.isfinite(v)]
    lo, hi = padded(min([*vals, 0.0]), max([*vals, 0.0])) if vals else (0.0, 1.0)
    sc = Scale(lo, hi, label_w, w - 60)
    y_end = top + len(items) * row_h
    body = x_axis(
        sc,
        y_end + 2,
        nice_ticks(lo, hi, 5),
        grid_to=top,
        title=x_title,
        fmt=(lambda t: pct(t, 0)) if as_pct else tick_label,
    )
    body.append(line(sc(0), top, sc(0), y_end + 2, "zero"))
    for i, (name, e, lo_, hi_, cls) in enumerate(items):
        y = top + i * row_h
        body.append(text(label_w - 8, y + row_h / 2 + 4, name, "row-label", "end"))
        if not math.isfinite(e):
            continue
        x0, x1 = sorted((sc(0), sc(e)))
        body.append(
            rect(x0, y + 4, x1 - x0, row_h - 8, f"bar {esc(cls)}", f"{name}: {pct(e) if as_pct else num(e)}")
        )
        if math.isfinite(lo_) and math.isfinite(hi_):
            body.append(line(sc(lo_), y + row_h / 2, sc(hi_), y + row_h / 2, "whisker"))
        body.append(text(w - 4, y + row_h / 2 + 4, pct(e) if as_pct else num(e), "value", "end"))
    return root(w, y_end + 40, body, label)
