"""``seal view RUN_DIR``: open a run's report in the browser, or serve the report on localhost.

The server exposes the report and nothing else of the run directory: the cache, the logs and the
manifest can hold texts and settings a user never meant to publish, and a symlink planted in a
run directory must not turn the viewer into a file server for the machine. It answers only GET
and HEAD, and only requests whose ``Host`` is a loopback name (a web page elsewhere cannot reach
it through DNS rebinding).

Served, the report fetches the texts its file lacks (it holds a sample at scale) from a JSON
endpoint, ``/api/texts?ids=…``, and searches every pair's texts with ``/api/search?q=…``, both read
from the run's Parquet (``report._serve``): the page it sends
is the file with ``data-texts="served"`` and ``connect-src 'self'`` (the file itself keeps
``'none'``); a request another site's page makes (``Sec-Fetch-Site`` cross-site) is refused.
"""

from __future__ import annotations

import http.server
import os
import shutil
import urllib.parse
import webbrowser
from pathlib import Path
from typing import Any

import click

from seal_audit._cli._common import console
from seal_audit._cli._output import summary
from seal_audit.data.errors import SealError
from seal_audit.report import HTML_NAME, build_report
from seal_audit.report._serve import (
    MAX_IDS,
    MAX_QUERY,
    SEARCH_PATH,
    TEXTS_PATH,
    PairTexts,
    served_csp,
    served_page,
)
from seal_audit.store import RunStore

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "localhost.localdomain"})
DEFAULT_HOST = "127.0.0.1"
SERVED = (HTML_NAME,)
"""The files the viewer serves: the report is self-contained (styles, script, figures and data are
inlined), so it needs nothing else."""


def _host_name(header: str | None) -> str | None:
    """The host part of a ``Host`` header (``[::1]:8000`` → ``::1``), lower-cased."""
    if not header:
        return None
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else None
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def report_file(root: Path, url_path: str) -> Path | None:
    """The file to serve for ``url_path``, or None: only a served name, only a regular file whose
    real path (symlinks resolved) is inside the real run directory."""
    name = url_path.split("?", 1)[0].split("#", 1)[0].lstrip("/") or HTML_NAME
    if name not in SERVED:
        return None
    real_root = os.path.realpath(root)
    real = os.path.realpath(root / name)
    if os.path.commonpath([real_root, real]) != real_root or not os.path.isfile(real):
        return None
    return Path(real)


class ReportHandler(http.server.BaseHTTPRequestHandler):
    """Serves the report file of one run directory, read-only; request lines are not echoed."""

    root: Path = Path(".")
    allowed_hosts: frozenset[str] = LOOPBACK_NAMES
    texts: PairTexts | None = None
    server_version = "seal-view"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _refuse(self, status: int, reason: str) -> None:
        body = f"{status} {reason}\n".encode()
        self.send_response(status, reason)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if status == 405:
            self.send_header("Allow", "GET, HEAD")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self, with_body: bool) -> None:
        if _host_name(self.headers.get("Host")) not in self.allowed_hosts:
            self._refuse(403, "Host is not a loopback name")
            return
        if self.path.split("?", 1)[0] in (TEXTS_PATH, SEARCH_PATH):
            self._serve_texts(with_body)
            return
        target = report_file(self.root, self.path)
        if target is None:
            self._refuse(404, "Not Found (this server serves the run's report only)")
            return
        with open(target, "rb") as fh:
            page = served_page(fh.read())
        if page is not None:
            self._send(page, "text/html; charset=utf-8", with_body, csp=served_csp(page))
            return
        with open(target, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(size))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            if with_body:
                shutil.copyfileobj(fh, self.wfile)

    def _send(self, body: bytes, ctype: str, with_body: bool, csp: str | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        if csp:
            self.send_header("Content-Security-Policy", csp)
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def _serve_texts(self, with_body: bool) -> None:
        """The texts of the named pairs, or the pairs whose texts contain a query, as JSON; only for
        the page itself (same origin)."""
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            self._refuse(403, "Forbidden (texts are served to the report's own page only)")
            return
        if self.texts is None:
            self._refuse(404, "Not Found (no pairs table in this run)")
            return
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        q = query.get("q", [""])[0]
        ids = [i for part in query.get("ids", []) for i in part.split(",") if i]
        if url.path == SEARCH_PATH and (not q.strip() or len(q) > MAX_QUERY):
            self._refuse(400, f"Bad Request (search for 1 to {MAX_QUERY} characters: ?q=<text>)")
            return
        if url.path == TEXTS_PATH and (not ids or len(ids) > MAX_IDS):
            self._refuse(400, f"Bad Request (name 1 to {MAX_IDS} pair ids: ?ids=<id>,<id>)")
            return
        try:
            doc = self.texts.search(q) if url.path == SEARCH_PATH else self.texts.texts(ids)
            body = self.texts.encode(doc)
        except Exception as exc:  # an unreadable table: the page shows this line
            reason = " ".join(f"cannot read the run's texts: {type(exc).__name__}: {exc}".split())
            self._refuse(500, reason.encode("ascii", "replace").decode("ascii")[:300])
            return
        self._send(body, "application/json", with_body)

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def _read_only(self) -> None:
        self._refuse(405, "Method Not Allowed (read-only)")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _read_only


def serve(root: Path, port: int, host: str = DEFAULT_HOST) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``root``'s report on ``host`` (default 127.0.0.1: not reachable from
    other machines). Requests must name a loopback host, or ``host`` itself when it is not a wildcard."""
    allowed = LOOPBACK_NAMES | ({host.lower()} if host not in ("", "0.0.0.0", "::") else frozenset())
    store = RunStore(root, create=False)
    texts = PairTexts(store) if store.has_table("pairs") else None
    handler = type(
        "BoundReportHandler",
        (ReportHandler,),
        {"root": Path(root), "allowed_hosts": allowed, "texts": texts},
    )
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise SealError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (try --port 0 for any free port)"
        ) from exc


@click.command("view")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "--serve",
    "serve_",
    is_flag=True,
    help="Serve RUN_DIR's report on http://127.0.0.1 until Ctrl-C instead of opening the file; "
    "served, the explorer shows every pair's texts (read from the run's Parquet), not the file's sample.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port for --serve (0 = any free port).",
)
@click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    help="Address for --serve to bind; anything but a loopback address exposes the report to the network.",
)
@click.option(
    "--open/--no-open",
    "open_",
    default=None,
    help="Open a browser (default: yes without --serve, no with it).",
)
def command(run_dir: Path, serve_: bool, port: int, host: str, open_: bool | None) -> None:
    """Open RUN_DIR's report.html (building it first if the run has none)."""
    store = RunStore(run_dir, create=False)  # viewing only reads; building the report takes the lock
    html = store.path(HTML_NAME)
    if not html.exists():
        console.print("no report.html yet: building it ...")
        with RunStore(run_dir, create=False, lock="view") as writer:
            html = build_report(writer).html
    if not serve_:
        url = html.resolve().as_uri()
        click.echo(url)
        summary(url=url, html=str(html))
        if open_ is not False and not webbrowser.open(url):
            console.print("[yellow]no browser found: open the URL above yourself[/yellow]")
        return
    if host.lower() not in LOOPBACK_NAMES:
        console.print(
            f"[yellow]warning: binding {host}: the report is reachable from other machines[/yellow]"
        )
    server = serve(store.root, port, host)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.server_address[1]}/{HTML_NAME}"
    click.echo(f"serving {store.root / HTML_NAME} at {url} (Ctrl-C to stop)")
    summary(url=url, html=str(store.root / HTML_NAME), served=True)
    if open_:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.server_close()
