"""The typed pieces a section's view-model is made of; ``templates/blocks.html.j2`` turns them into HTML.

A section module decides *what* to say (numbers, wording, which pairs a number stands for) and
returns a :class:`Section` of these frozen records; the templates decide markup only. Text is plain
``str`` and is escaped by the template engine; only ``Raw`` (our own SVG) is inserted verbatim.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

from seal_audit.report._html import Markup


@dataclasses.dataclass(frozen=True)
class Stat:
    """A number tests and the page can find again: ``data-stat`` names it, ``data-value`` is raw."""

    kind: ClassVar[str] = "stat"
    text: str
    key: str
    value: str | None = None
    tag: str = "span"


@dataclasses.dataclass(frozen=True)
class Code:
    kind: ClassVar[str] = "code"
    text: str


@dataclasses.dataclass(frozen=True)
class Strong:
    kind: ClassVar[str] = "strong"
    text: str


@dataclasses.dataclass(frozen=True)
class Door:
    """A number that opens the pair explorer filtered to exactly the pairs it counts.

    ``filters`` are the explorer's filter keys (``regime``, ``gamma``, ``transform``, ``flipped``,
    ``pairs`` ...) with their values; ``n`` is the number of pairs the filter must select (a test
    clicks every door and checks the explorer's count against it).
    """

    kind: ClassVar[str] = "door"
    text: str
    filters: Mapping[str, str]
    n: int | None = None

    def href(self) -> str:
        from urllib.parse import urlencode

        return "#explorer?" + urlencode(sorted(self.filters.items()))


@dataclasses.dataclass(frozen=True)
class PairLink:
    """A pair id that opens that pair in the explorer."""

    kind: ClassVar[str] = "pair"
    pair_id: str
    view: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """The explorer view the pair opens in (so that "next ›" walks that list, e.g. the watchlist)."""

    def href(self) -> str:
        from urllib.parse import urlencode

        return "#explorer?" + urlencode([*sorted(self.view.items()), ("pair", self.pair_id)])


@dataclasses.dataclass(frozen=True)
class Inline:
    """Several inline pieces in one table cell (one door per feature or rewrite), joined by ``sep``."""

    kind: ClassVar[str] = "inline"
    parts: tuple[Cell, ...]
    sep: str = "; "


Cell = str | Stat | Code | Strong | Door | PairLink | Inline


@dataclasses.dataclass(frozen=True)
class Heading:
    kind: ClassVar[str] = "heading"
    text: str


@dataclasses.dataclass(frozen=True)
class Note:
    kind: ClassVar[str] = "note"
    text: str


@dataclasses.dataclass(frozen=True)
class Para:
    """A paragraph of inline pieces (text and links)."""

    kind: ClassVar[str] = "para"
    cells: tuple[Cell, ...]
    cls: str = "note"


@dataclasses.dataclass(frozen=True)
class NotComputed:
    """The visible stand-in for an analysis a run did not compute (never a silent omission)."""

    kind: ClassVar[str] = "not_computed"
    reason: str


@dataclasses.dataclass(frozen=True)
class Table:
    kind: ClassVar[str] = "table"
    headers: tuple[Cell, ...]
    rows: tuple[tuple[Cell, ...], ...]
    cls: str = "data"
    numeric: frozenset[int] = frozenset()
    """Columns right-aligned with tabular figures."""
    sortable: bool = False

    @property
    def has_head(self) -> bool:
        return any(str(getattr(h, "text", h)) for h in self.headers)


def table(
    headers: Sequence[Cell],
    rows: Iterable[Sequence[Cell]] | Iterable[Sequence[str]],
    cls: str = "data",
    numeric: Iterable[int] = (),
) -> Table:
    return Table(tuple(headers), tuple(tuple(r) for r in rows), cls, frozenset(numeric))


@dataclasses.dataclass(frozen=True)
class LegendItem:
    swatch: str
    label: str
    stat: Stat | None = None
    after: str = ""
    door: Door | None = None
    """Shown in brackets after the value: the pairs the value counts."""


@dataclasses.dataclass(frozen=True)
class Legend:
    kind: ClassVar[str] = "legend"
    items: tuple[LegendItem, ...]


@dataclasses.dataclass(frozen=True)
class Raw:
    """Markup this package generated itself (an SVG figure)."""

    kind: ClassVar[str] = "raw"
    html: Markup


@dataclasses.dataclass(frozen=True)
class Figure:
    kind: ClassVar[str] = "figure"
    body: tuple[Block, ...]
    caption: str = ""
    cls: str = ""
    legend: Legend | None = None


def figure(
    svg: str | Sequence[Block], caption: str = "", cls: str = "", legend: Legend | None = None
) -> Figure:
    body = (Raw(Markup(svg)),) if isinstance(svg, str) else tuple(svg)
    return Figure(body, caption, cls, legend)


@dataclasses.dataclass(frozen=True)
class Details:
    """A collapsed part (opened by print CSS); ``summary_heading`` puts the summary in an h3."""

    kind: ClassVar[str] = "details"
    summary: str
    body: tuple[Block, ...]
    summary_heading: bool = False
    open: bool = False


@dataclasses.dataclass(frozen=True)
class Div:
    """A layout box (``row``, ``half``, ``grid``, ``notes``, ...)."""

    kind: ClassVar[str] = "div"
    cls: str
    body: tuple[Block, ...]


@dataclasses.dataclass(frozen=True)
class Bullets:
    kind: ClassVar[str] = "bullets"
    items: tuple[Cell, ...]
    cls: str = ""


@dataclasses.dataclass(frozen=True)
class Pre:
    kind: ClassVar[str] = "pre"
    text: str
    cls: str = "json"


@dataclasses.dataclass(frozen=True)
class Card:
    title: str
    value: str
    key: str
    raw: str
    sub: str = ""
    door: Door | None = None


@dataclasses.dataclass(frozen=True)
class Cards:
    kind: ClassVar[str] = "cards"
    cards: tuple[Card, ...]


@dataclasses.dataclass(frozen=True)
class FindingItem:
    """One sentence of the findings strip, its caveat, and the pairs behind it."""

    text: str
    cls: str
    caveat: str = ""
    door: Door | None = None


@dataclasses.dataclass(frozen=True)
class Findings:
    kind: ClassVar[str] = "findings"
    items: tuple[FindingItem, ...]


@dataclasses.dataclass(frozen=True)
class Picker:
    """Checkboxes choosing which series of a figure show (the page's script acts on them; the URL
    hash keeps the choice). ``options`` are (value, label, swatch class, checked)."""

    kind: ClassVar[str] = "picker"
    name: str
    """The figure's ``data-picker`` and the hash key (``forest``)."""
    legend: str
    options: tuple[tuple[str, str, str, bool], ...]


Block = (
    Picker
    | Heading
    | Note
    | Para
    | NotComputed
    | Table
    | Legend
    | Raw
    | Figure
    | Details
    | Div
    | Bullets
    | Pre
    | Cards
    | Findings
)


@dataclasses.dataclass(frozen=True)
class Section:
    """One report section: its anchor, title, one-line reading guide and body (a view-model)."""

    id: str
    title: str
    guide: str
    body: tuple[Block, ...]
