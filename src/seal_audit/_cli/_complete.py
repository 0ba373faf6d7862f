"""Tab completion of a verb's options without importing the verb.

Why: a verb's flags are generated from the pydantic options models (``seal_audit.config``), and its
module imports the stage it runs (pandas, pyarrow, scipy); loading that on every Tab costs a second on
a quiet machine and twenty under load. So the first completion of a verb loads it once and writes what
completion needs of it (each parameter's flags, arity, help and value kind: a choice list, a file or a
directory) to a small JSON index in the user's cache; later completions rebuild a stand-in command from
that index, which imports only click.

The index is keyed by the stat signature (path, size, mtime) of every module of the installed package,
so an upgrade, a reinstall or an edit in a checkout makes a new key and the next Tab reloads the verb:
the index can be missing (first Tab, an unwritable cache), never stale. Anything completion cannot
describe faithfully (a parameter type of our own, a custom completion callback) is not indexed, and
that verb is always loaded for real. Nothing here may raise into the shell: a failure means "load the
verb", never an error on a Tab.

This module is imported only during completion, and imports nothing heavy.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import click

INDEX_VERSION = 1
"""Bumped when the index's shape changes (an old file then simply misses)."""


def completing() -> bool:
    """Whether this process is answering a shell's completion request (click's ``_SEAL_COMPLETE``)."""
    return bool(os.environ.get("_SEAL_COMPLETE"))


def cache_dir() -> Path:
    """``$SEAL_COMPLETION_CACHE``, else ``$XDG_CACHE_HOME/seal-audit/completion`` (``~/.cache``)."""
    explicit = os.environ.get("SEAL_COMPLETION_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "seal-audit" / "completion"


def source_key(root: Path | None = None) -> str:
    """A short hash of where the package is and the size and mtime of each of its modules."""
    root = root or Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(f"{INDEX_VERSION}\0{root}".encode())
    for path in sorted(root.rglob("*.py")):
        st = path.stat()
        digest.update(f"\0{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _index_path(verb: str) -> Path:
    return cache_dir() / f"{source_key()}-{verb}.json"


def _describe_type(t: click.ParamType[Any]) -> dict[str, Any] | None:
    if isinstance(t, click.Choice):
        return {"kind": "choice", "choices": [str(c) for c in t.choices]}
    if isinstance(t, click.Path):
        return {"kind": "path", "file_okay": t.file_okay, "dir_okay": t.dir_okay}
    if isinstance(t, click.File):
        return {"kind": "path", "file_okay": True, "dir_okay": False}
    if type(t).shell_complete is not click.ParamType.shell_complete:
        return None  # a type with its own completion: cannot be replayed from an index
    return {"kind": "text"}


def _describe_param(p: click.Parameter) -> dict[str, Any] | None:
    if getattr(p, "_custom_shell_complete", None) is not None:
        return None
    if p.secondary_opts and len(p.secondary_opts) != len(p.opts):
        return None  # not a plain --x/--no-x pair
    kind = _describe_type(p.type)
    if kind is None:
        return None
    out: dict[str, Any] = {
        "name": p.name,
        "opts": list(p.opts),
        "secondary_opts": list(p.secondary_opts),
        "nargs": p.nargs,
        "multiple": p.multiple,
        "type": kind,
    }
    if isinstance(p, click.Option):
        out.update(
            param="option",
            is_flag=bool(p.is_flag),
            count=bool(p.count),
            help=p.help,
            hidden=bool(p.hidden),
        )
    elif isinstance(p, click.Argument):
        out.update(param="argument", required=p.required)
    else:
        return None
    return out


def describe(cmd: click.Command) -> dict[str, Any] | None:
    """What completion needs of ``cmd`` (recursively for a group), or None when it cannot be told."""
    params = [_describe_param(p) for p in cmd.params]
    if any(p is None for p in params):
        return None
    out: dict[str, Any] = {
        "name": cmd.name,
        "help": cmd.get_short_help_str(limit=300),
        "hidden": cmd.hidden,
        "params": params,
    }
    if isinstance(cmd, click.Group):
        subs: dict[str, Any] = {}
        for name, sub in cmd.commands.items():
            d = describe(sub)
            if d is None:
                return None
            subs[name] = d
        out["commands"] = subs
    return out


def _build_type(d: dict[str, Any]) -> click.ParamType[Any]:
    if d["kind"] == "choice":
        return click.Choice(d["choices"])
    if d["kind"] == "path":
        return click.Path(file_okay=d["file_okay"], dir_okay=d["dir_okay"])
    return click.STRING


def _build_param(d: dict[str, Any]) -> click.Parameter:
    decls = [d["name"], *d["opts"]]
    if d["param"] == "argument":
        return click.Argument(
            [d["name"]], nargs=d["nargs"], required=d["required"], type=_build_type(d["type"])
        )
    if d["secondary_opts"]:  # --flag/--no-flag
        decls = [d["name"], *(f"{on}/{off}" for on, off in zip(d["opts"], d["secondary_opts"], strict=True))]
    if d["is_flag"] or d["count"]:  # takes no value
        return click.Option(
            decls, is_flag=not d["count"], count=d["count"], help=d["help"], hidden=d["hidden"]
        )
    return click.Option(
        decls,
        nargs=d["nargs"],
        multiple=d["multiple"],
        type=_build_type(d["type"]),
        help=d["help"],
        hidden=d["hidden"],
    )


def build(d: dict[str, Any]) -> click.Command:
    """A stand-in command with the described parameters (it completes; it never runs)."""
    params = [_build_param(p) for p in d["params"]]
    if "commands" in d:
        group = click.Group(d["name"], params=params, help=d["help"], hidden=d["hidden"])
        for sub in d["commands"].values():
            group.add_command(build(sub))
        return group
    return click.Command(d["name"], params=params, help=d["help"], hidden=d["hidden"])


def cached(verb: str) -> click.Command | None:
    """The stand-in for ``verb`` from the index, or None (no index yet, unreadable, other version)."""
    try:
        d = json.loads(_index_path(verb).read_text(encoding="utf-8"))
        return build(d)
    except Exception:  # a Tab never fails: load the verb instead
        return None


def remember(verb: str, cmd: click.Command) -> None:
    """Write ``verb``'s index (atomically), dropping the indexes of other sources."""
    try:
        d = describe(cmd)
        if d is None:
            return
        path = _index_path(verb)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = path.name.split("-", 1)[0]
        for old in path.parent.glob("*.json"):  # indexes of other sources (an upgrade, an edit)
            if not old.name.startswith(f"{key}-"):
                old.unlink(missing_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(d), encoding="utf-8")
        os.replace(tmp, path)
    except Exception:  # an unwritable cache only costs speed
        return
