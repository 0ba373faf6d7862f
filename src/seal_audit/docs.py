"""The reference documents that ship with seal-audit: ``python -m seal_audit.docs [results|license]``.

docs/results.md documents every key of stats.json; the wheel carries it (and the LICENSE) inside the
package, a checkout reads them from the repository, so an installed audit can always look up
what a number means, offline.
"""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path

DOCS: dict[str, str] = {
    "results": "results.md",
    "license": "LICENSE",
}
"""Document name -> file name (in the wheel under ``seal_audit/_docs/``, in a checkout at the
repository's ``docs/results.md`` and ``LICENSE``)."""

_CHECKOUT = {"results": ("docs", "results.md"), "license": ("LICENSE",)}


def doc_text(name: str) -> str:
    """The text of one shipped document (``results`` or ``license``)."""
    from seal_audit.data.errors import SealError

    if name not in DOCS:
        raise SealError(f"no document '{name}' (have {', '.join(sorted(DOCS))})")
    packaged = files("seal_audit").joinpath("_docs", DOCS[name])
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    root = Path(__file__).resolve().parents[2]  # src/seal_audit/docs.py -> the checkout
    checkout = root.joinpath(*_CHECKOUT[name])
    if checkout.is_file():
        return checkout.read_text(encoding="utf-8")
    raise SealError(f"document '{name}' is not installed (looked in {packaged} and {checkout})")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    name = args[0] if args else "results"
    try:
        text = doc_text(name)
    except Exception as exc:  # one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
