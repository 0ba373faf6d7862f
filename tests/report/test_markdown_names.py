"""report.md keeps any RM name intact: each renders, through a real CommonMark parser
(markdown-it-py, which rich already depends on), as one code span holding exactly that name."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from seal_audit.report._svg import md_code

NAMES = ["post", "a`b", "`lead", "trail`", "a``b`c", " spaced ", "x|y", "*em*", "<b>html</b>", "a\x07b"]


def _code_spans(md: str) -> list[str]:
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    return [
        c.content for t in tokens if t.type == "inline" for c in (t.children or []) if c.type == "code_inline"
    ]


@pytest.mark.parametrize("name", NAMES)
def test_a_name_is_one_code_span_in_a_line(name: str) -> None:
    want = name.replace("\x07", "\u2407")  # controls are shown as their pictures
    assert _code_spans(f"post-D RM {md_code(name)} · pre-D RM {md_code('pre')}") == [want, "pre"]


@pytest.mark.parametrize("name", NAMES)
def test_a_name_is_one_code_span_in_a_table_cell(name: str) -> None:
    cell = md_code(name).replace("|", "\\|")  # what the table writers do to every cell
    md = f"| RM | role |\n|---|---|\n| {cell} | post |\n"
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    cells = [t for t in tokens if t.type == "td_open"]
    assert len(cells) == 2  # the name did not split or break the row
    want = name.replace("\x07", "\u2407")
    assert _code_spans(md) == [want]


SENTENCES = [
    "agreement of post-D RM 'x**b**`c`<i>y': 55.0% [41.6, 67.9], 95% CI",
    "caveat: whether the post-D RM '[x](javascript:alert(1))' was trained on D is not recorded",
    "strongest post-D imprints: refusal_pattern +0.252 [+0.133, +0.37], _lead_ +1, a\\*b &amp; ~~s~~ <b>",
]


@pytest.mark.parametrize("line", SENTENCES)
def test_a_headline_sentence_renders_as_its_own_text(line: str) -> None:
    """report.md's headline bullets quote names as given: rendered, each is exactly its text (no
    emphasis, code span, link or raw HTML), and word-inner underscores are left unescaped."""
    from seal_audit.report._svg import md_text

    tokens = MarkdownIt("commonmark").enable("table").parse(f"- {md_text(line)}\n")
    inline = [t for t in tokens if t.type == "inline"]
    assert len(inline) == 1
    children = inline[0].children or []
    assert {c.type for c in children} == {"text"}, [c.type for c in children]
    assert "".join(c.content for c in children) == line
    assert "refusal\\_pattern" not in md_text(line)
