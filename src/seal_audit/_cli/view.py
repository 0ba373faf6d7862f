"""``seal view RUN_DIR``: open a run's report in the browser, or serve the run on localhost."""

from __future__ import annotations

import functools
import http.server
import webbrowser
from pathlib import Path
from typing import Any

import click

from seal_audit._cli._common import console
from seal_audit.data.errors import SealError
from seal_audit.report import HTML_NAME, build_report
from seal_audit.store import RunStore


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files of the run directory; request lines are not echoed (the URL is printed once)."""

    def log_message(self, format: str, *args: Any) -> None:
        return


def serve(root: Path, port: int) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``root`` bound to 127.0.0.1 only (never reachable from other machines)."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    try:
        return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise SealError(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc} (try --port 0 for any free port)"
        ) from exc


@click.command("view")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "--serve",
    "serve_",
    is_flag=True,
    help="Serve RUN_DIR on http://127.0.0.1 until Ctrl-C instead of opening the file.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port for --serve (0 = any free port).",
)
@click.option(
    "--open/--no-open",
    "open_",
    default=None,
    help="Open a browser (default: yes without --serve, no with it).",
)
def command(run_dir: Path, serve_: bool, port: int, open_: bool | None) -> None:
    """Open RUN_DIR's report.html (building it first if the run has none)."""
    store = RunStore(run_dir, create=False)
    html = store.path(HTML_NAME)
    if not html.exists():
        console.print("no report.html yet: building it ...")
        html = build_report(store).html
    if not serve_:
        url = html.resolve().as_uri()
        click.echo(url)
        if open_ is not False and not webbrowser.open(url):
            console.print("[yellow]no browser found: open the URL above yourself[/yellow]")
        return
    server = serve(store.root, port)
    url = f"http://127.0.0.1:{server.server_address[1]}/{HTML_NAME}"
    click.echo(f"serving {store.root} at {url} (Ctrl-C to stop)")
    if open_:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.server_close()
