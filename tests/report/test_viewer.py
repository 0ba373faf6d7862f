"""`seal view --serve` serves the report and nothing else, over real HTTP: not the cache, the logs,
the manifest or the tables; no symlink out of the run; no Host but a loopback name; GET/HEAD only.
Served, the page may connect to its own origin only, for one JSON endpoint of pair texts.
Also: NUL and other control characters in texts are shown visibly in the report, never raw."""

from __future__ import annotations

import http.client
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from seal_audit.report import build_report
from seal_audit.store import RunStore


@pytest.fixture(scope="module")
def served(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """One server for the module, on a private copy of the session run with a report built."""
    import shutil

    from seal_audit._cli.view import serve

    tmp_path = tmp_path_factory.mktemp("viewer")
    fresh_run = tmp_path / "run"
    shutil.copytree(run_dir, fresh_run)
    build_report(RunStore(fresh_run, create=False))
    secret = tmp_path / "outside.txt"
    secret.write_text("root:x:0:0 outside the run\n")
    (fresh_run / "leak.html").symlink_to(secret)
    (fresh_run / "logs").mkdir(exist_ok=True)
    (fresh_run / "logs" / "lm_calls.jsonl").write_text('{"error": "x"}\n')
    server = serve(fresh_run, 0)
    assert server.server_address[0] == "127.0.0.1"
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield fresh_run, int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _request(
    port: int, method: str, path: str, host: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    status, body, _ = _request_h(port, method, path, host, headers)
    return status, body


def _request_h(
    port: int, method: str, path: str, host: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes, http.client.HTTPMessage]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True)
        if host is not None:
            conn.putheader("Host", host)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.headers
    finally:
        conn.close()


def test_serves_the_report(served: tuple[Path, int]) -> None:
    from seal_audit.report._serve import served_page

    run, port = served
    file_bytes = (run / "report.html").read_bytes()
    page = served_page(file_bytes)
    assert page is not None and page != file_bytes
    # the file refuses every connection; the served page may reach its own origin, and says it is served
    none, self_ = b"connect-src &#39;none&#39;", b"connect-src &#39;self&#39;"  # as in the meta tag
    assert none in file_bytes and b'data-texts="file"' in file_bytes
    assert self_ in page and b'data-texts="served"' in page
    assert none not in page.split(b"</head>")[0]
    # nothing else differs (the script and its CSP hash are the file's)
    assert page.replace(self_, none, 1).replace(b'data-texts="served"', b'data-texts="file"', 1) == file_bytes
    for path in ("/report.html", "/", "/report.html?x=1"):
        status, body, headers = _request_h(port, "GET", path, f"127.0.0.1:{port}")
        assert status == 200 and body == page, path
        assert "connect-src 'self'" in headers["Content-Security-Policy"]
    for host in ("localhost", f"localhost:{port}", f"[::1]:{port}"):
        assert _request(port, "HEAD", "/report.html", host) == (200, b"")


@pytest.mark.parametrize(
    "path",
    [
        "/cache.sqlite",
        "/manifest.json",
        "/logs/lm_calls.jsonl",
        "/pairs.parquet",
        "/stats.json",
        "/report.md",
        "/run.lock",
        "/leak.html",
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/logs/",
        "/analysis/",
    ],
)
def test_serves_nothing_else(served: tuple[Path, int], path: str) -> None:
    _, port = served
    status, body = _request(port, "GET", path, f"127.0.0.1:{port}")
    assert status == 404 and b"outside the run" not in body and b"error" not in body


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "192.168.1.5", "127.0.0.1.nip.io", None]
)
def test_rejects_a_host_that_is_not_loopback(served: tuple[Path, int], host: str | None) -> None:
    _, port = served
    status, body = _request(port, "GET", "/report.html", host)
    assert status == 403 and b"pair-data" not in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_is_read_only(served: tuple[Path, int], method: str) -> None:
    run, port = served
    before = sorted(os.listdir(run))
    status, _ = _request(port, method, "/report.html", f"127.0.0.1:{port}")
    assert status == 405 and sorted(os.listdir(run)) == before


def test_texts_endpoint_serves_the_parquet_texts_of_named_pairs(served: tuple[Path, int]) -> None:
    run, port = served
    pairs = pd.read_parquet(run / "pairs.parquet")
    rw = pd.read_parquet(run / "rewrites.parquet")
    pid = str(rw.loc[rw["status"] == "ok", "pair_id"].iloc[0])
    other = str(pairs["pair_id"].iloc[5])
    status, body, headers = _request_h(port, "GET", f"/api/texts?ids={pid},{other},nope", f"127.0.0.1:{port}")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert body.isascii() and b"<" not in body  # markup in the texts is \u-escaped, never raw
    doc = json.loads(body)
    row = pairs.set_index("pair_id").loc[pid]
    got = doc["pairs"][pid]
    assert (got["ctx"], got["ch"], got["rj"]) == (row["context"], row["chosen"], row["rejected"])
    mine = rw[(rw["pair_id"] == pid) & (rw["status"] == "ok")]
    assert {(t, s, o, n) for t, s, o, n in got["rw"]} >= {
        (r.transform, 1 if r.side == "rejected" else 0, r.original, r.rewritten) for r in mine.itertuples()
    }
    assert other in doc["pairs"] and doc["missing"] == ["nope"]


def test_search_endpoint_finds_pairs_by_text(served: tuple[Path, int]) -> None:
    run, port = served
    pairs = pd.read_parquet(run / "pairs.parquet")
    word = str(pairs["chosen"].iloc[7]).split()[3].upper()  # case-insensitive
    from urllib.parse import quote

    status, body = _request(port, "GET", f"/api/search?q={quote(word)}", f"127.0.0.1:{port}")
    assert status == 200
    ids = set(json.loads(body)["ids"])
    hit = set()
    for col in ("context", "chosen", "rejected"):
        hit |= set(pairs.loc[pairs[col].str.lower().str.contains(word.lower(), regex=False), "pair_id"])
    assert ids == hit and str(pairs["pair_id"].iloc[7]) in ids


@pytest.mark.parametrize(
    ("path", "host", "headers", "status"),
    [
        ("/api/search?q=", "127.0.0.1", {}, 400),
        ("/api/search?q=" + "x" * 201, "127.0.0.1", {}, 400),
        ("/api/search?q=a", "127.0.0.1", {"Sec-Fetch-Site": "cross-site"}, 403),
        ("/api/texts", "127.0.0.1", {}, 400),
        ("/api/texts?ids=" + ",".join(f"x{i}" for i in range(501)), "127.0.0.1", {}, 400),
        ("/api/texts?ids=a", "evil.example", {}, 403),
        ("/api/texts?ids=a", "127.0.0.1", {"Sec-Fetch-Site": "cross-site"}, 403),
        ("/api/texts?ids=a", "127.0.0.1", {"Sec-Fetch-Site": "same-site"}, 403),
        ("/api/other", "127.0.0.1", {}, 404),
    ],
)
def test_texts_endpoint_refuses(
    served: tuple[Path, int], path: str, host: str, headers: dict[str, str], status: int
) -> None:
    _, port = served
    got, body = _request(port, "GET", path, host, headers)
    assert got == status and b'"pairs"' not in body


def test_report_itself_a_symlink_out_of_the_run_is_not_served(fresh_run: Path, tmp_path: Path) -> None:
    from seal_audit._cli.view import report_file

    outside = tmp_path / "elsewhere.html"
    outside.write_text("<p>not the run's</p>")
    (fresh_run / "report.html").symlink_to(outside)
    assert report_file(fresh_run, "/report.html") is None


def test_control_characters_are_shown_not_written_raw(fresh_run: Path) -> None:
    store = RunStore(fresh_run, create=False)
    pairs = store.read_table("pairs")
    pairs.loc[0, "chosen"] = pairs.loc[0, "chosen"] + " NUL[\x00] ESC[\x1b] BEL[\x07] DEL[\x7f]"
    store.write_table("pairs", pairs)
    feats = store.read_table("features") if store.has_table("features") else pd.DataFrame()
    if len(feats) and "error" in feats:
        feats["error"] = feats["error"].astype(object)
        feats.loc[feats.index[0], "error"] = "bad\x00value"
        store.write_table("features", feats)
    paths = build_report(store)
    html = paths.html.read_bytes()
    md = paths.md.read_bytes()
    for raw in (b"\x00", b"\x1b", b"\x07", b"\x7f"):
        assert raw not in html and raw not in md
    text = html.decode("utf-8")
    assert "NUL[\u2400] ESC[\u241b] BEL[\u2407] DEL[\u2421]" in text  # visible, in the explorer's data
    from seal_audit.report._svg import esc

    assert esc("a\x00<b>\x1f\tc\n") == "a\u2400&lt;b&gt;\u241f\tc\n"
