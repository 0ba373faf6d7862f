"""What ``seal view --serve`` adds to the report: every pair's texts, read from the run's Parquet.

At paper scale report.html holds every pair's numbers but the texts of a sample only (a file with
all 160,800 transcripts and their rewrites is 170 MB and most of a gigabyte in a browser). Served
from a run directory, the same page fetches the texts it lacks from a small JSON endpoint of the
same origin. The served page differs from the file in two places only, both in its ``<head>``: the
``<html>`` element says ``data-texts="served"`` and the CSP's ``connect-src`` is ``'self'`` instead
of ``'none'`` (a file keeps refusing every connection). The script and its hash are the same.

The texts keep the report's security rule: the page writes them with textContent only, and the
endpoint answers JSON (``application/json``, nosniff) for pair ids the run has, nothing else.
"""

from __future__ import annotations

import html as _html
import json
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from seal_audit.report._svg import visible_controls
from seal_audit.store import RunStore

TEXTS_PATH = "/api/texts"
"""The endpoint: ``GET /api/texts?ids=<id>,<id>,…`` → ``{"pairs": {id: texts}, "missing": [id]}``."""
SEARCH_PATH = "/api/search"
"""``GET /api/search?q=<text>`` → ``{"q": text, "ids": [pair ids whose context, chosen or rejected
text contains it, case-insensitive]}``: the explorer's text search over every pair, not the file's
sample."""
MAX_QUERY = 200
"""Characters of a search query."""
MAX_IDS = 500
"""Pair ids one request may name (a page of the explorer is at most 250 pairs)."""
SERVED_TEXT_LIMIT = 1_000_000
"""Characters served per text: every real transcript is whole; a pasted book is cut and says so."""
FILE_MARK = b'<html lang="en" data-texts="file">'
SERVED_MARK = b'<html lang="en" data-texts="served">'
CONNECT = (
    (b"connect-src &#39;none&#39;", b"connect-src &#39;self&#39;"),  # as the template escapes it
    (b"connect-src 'none'", b"connect-src 'self'"),
)


def served_page(html: bytes) -> bytes | None:
    """The report as the server sends it (``data-texts="served"``, ``connect-src 'self'``), or None
    for a page that has no served mode (built by an older version): it is then sent unchanged."""
    head_end = html.find(b"</head>")
    if head_end < 0 or not html.startswith(b"<!DOCTYPE html>\n" + FILE_MARK):
        return None
    head = html[:head_end]
    for file_form, served_form in CONNECT:
        if head.count(file_form) == 1:
            head = head.replace(FILE_MARK, SERVED_MARK, 1).replace(file_form, served_form, 1)
            return head + html[head_end:]
    return None


def served_csp(html: bytes) -> str | None:
    """The Content-Security-Policy of a served page (sent as a header too), read from its meta tag."""
    start = html.find(b'http-equiv="Content-Security-Policy" content="')
    if start < 0:
        return None
    start += len(b'http-equiv="Content-Security-Policy" content="')
    end = html.find(b'"', start)
    return _html.unescape(html[start:end].decode("ascii", errors="replace")) if end > start else None


def _cut(text: Any) -> str:
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return ""
    t = visible_controls(str(text))
    if len(t) > SERVED_TEXT_LIMIT:
        t = (
            t[:SERVED_TEXT_LIMIT]
            + f"\n\n[… {len(t) - SERVED_TEXT_LIMIT:,} more characters not served; see pairs.parquet]"
        )
    return t


def _opt(text: Any) -> str | None:
    """A text that may be absent (a failed rewrite has no rewritten text): None stays None."""
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return None
    return _cut(text)


class PairTexts:
    """The run's texts by pair id, read from pairs.parquet and rewrites.parquet on first use."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._pairs: pd.DataFrame | None = None
        self._rewrites: dict[str, list[list[Any]]] | None = None

    def _load(self) -> tuple[pd.DataFrame, dict[str, list[list[Any]]]]:
        with self._lock:
            if self._pairs is None or self._rewrites is None:
                pairs = self.store.read_table("pairs")
                self._pairs = pairs.drop_duplicates("pair_id").set_index(pairs["pair_id"].astype(str))
                rewrites: dict[str, list[list[Any]]] = {}
                if self.store.has_table("rewrites"):
                    rw = self.store.read_table("rewrites")
                    cols = [c for c in ("pair_id", "transform", "side", "original", "rewritten") if c in rw]
                    if len(cols) == 5:
                        for pid, t, side, orig, new in rw[cols].itertuples(index=False):
                            rewrites.setdefault(str(pid), []).append(
                                [str(t), 1 if str(side) == "rejected" else 0, orig, new]
                            )
                self._rewrites = rewrites
            return self._pairs, self._rewrites

    def texts(self, ids: Sequence[str]) -> dict[str, Any]:
        """Context, chosen, rejected (and the rejected transcript's own context where it differs),
        and every rewrite's original and rewritten text, for each known id."""
        pairs, rewrites = self._load()
        out: dict[str, Any] = {}
        missing: list[str] = []
        for pid in dict.fromkeys(ids):
            if pid not in pairs.index:
                missing.append(pid)
                continue
            row = pairs.loc[pid]
            entry: dict[str, Any] = {
                "ctx": _cut(row.get("context")),
                "ch": _cut(row.get("chosen")),
                "rj": _cut(row.get("rejected")),
            }
            rc = _opt(row.get("rejected_context"))
            if rc is not None:
                entry["rctx"] = rc
            entry["rw"] = [[t, side, _opt(o), _opt(n)] for t, side, o, n in rewrites.get(pid, [])]
            out[pid] = entry
        return {"pairs": out, "missing": missing}

    def search(self, query: str) -> dict[str, Any]:
        """Pair ids whose context, chosen or rejected text contains ``query`` (case-insensitive, a
        plain substring, as the page's own search)."""
        pairs, _ = self._load()
        hit = np.zeros(len(pairs), dtype=bool)
        for col in ("context", "chosen", "rejected"):
            if col in pairs.columns:
                found = pairs[col].astype(str).str.contains(query, case=False, regex=False)
                hit |= found.fillna(False).to_numpy(dtype=bool)
        return {"q": query, "ids": [str(i) for i in pairs.index[hit]]}

    def answer(self, ids: Sequence[str]) -> bytes:
        return self.encode(self.texts(ids))

    @staticmethod
    def encode(doc: dict[str, Any]) -> bytes:
        """An endpoint's body: JSON, ASCII only, with ``<``, ``>`` and ``&`` as ``\\u`` escapes (they
        occur only inside strings), so no markup survives even where the body is read as HTML."""
        text = json.dumps(doc, ensure_ascii=True, separators=(",", ":"))
        for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
            text = text.replace(ch, esc)
        return text.encode("ascii")
