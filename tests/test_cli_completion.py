"""Tab completion of a verb's options imports nothing heavy (issue 17 item 5).

The first completion of a verb loads it and writes its completion index; later ones build a stand-in
from the index. Checked here: the stand-in completes exactly as the real verb does (every verb, every
subcommand: option names and help, argument kinds, every choice list); a completion in a fresh
process with the index in place leaves scipy, pandas, pyarrow, torch (and numpy, pydantic, rich)
unimported; the index is keyed by the sources, and a broken or unwritable cache still completes.
Timing is for ``benchmarks/bench_cli.py``, not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.shell_completion import BashComplete

from seal_audit._cli import _complete, _output, cli

HEAVY = ("scipy", "pandas", "pyarrow", "torch", "transformers", "numpy", "pydantic", "rich")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("completion-cache")


def completions(args: list[str], incomplete: str) -> list[tuple[str, str, str | None]]:
    comp = BashComplete(cli, {}, "seal", "_SEAL_COMPLETE")
    return [(c.value, c.type, c.help) for c in comp.get_completions(args, incomplete)]


def probes(path: list[str], cmd: click.Command) -> list[tuple[list[str], str]]:
    """The completion requests that exercise every parameter of ``cmd`` (reached by ``path``)."""
    out: list[tuple[list[str], str]] = [(path, "-"), (path, "--"), (path, "")]
    for p in cmd.params:
        if isinstance(p, click.Option) and not p.is_flag and not p.count:
            out.append(([*path, p.opts[-1]], ""))
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            out += probes([*path, name], sub)
    return out


def real_verbs() -> dict[str, click.Command]:
    ctx = click.Context(cli)
    verbs = {}
    for name in cli.list_commands(ctx):
        cmd = cli.get_command(ctx, name)  # not completing: the real verb
        assert cmd is not None, name
        verbs[name] = cmd
        # click caches each command's help option with the help names of the first context that
        # asked for it; a test earlier in this process may have invoked the verb on its own
        # (``--help`` only, without the root's ``-h``). A real `seal` Tab is a fresh process.
        for c in (cmd, *getattr(cmd, "commands", {}).values()):
            c._help_option = None
    return verbs


def test_stand_in_completes_like_the_verb(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    verbs = real_verbs()
    assert {"score", "label", "analyze", "report", "export", "data", "view"} <= set(verbs)
    requests = [r for name, cmd in verbs.items() for r in probes([name], cmd)]
    monkeypatch.delenv("_SEAL_COMPLETE", raising=False)
    want = [completions(args, inc) for args, inc in requests]

    monkeypatch.setenv("SEAL_COMPLETION_CACHE", str(cache))
    monkeypatch.setenv("_SEAL_COMPLETE", "bash_complete")
    for name in verbs:  # the first Tab of each verb writes its index
        completions([name], "-")
        assert _complete.cached(name) is not None, f"{name}: no completion index written"
    got = [completions(args, inc) for args, inc in requests]
    for (args, inc), w, g in zip(requests, want, got, strict=True):
        assert g == w, (args, inc)
    # the answers are not trivially empty: options with help, choice values, path kinds
    assert ("--to", "plain", "Export format (see above).") in completions(["export"], "--")
    assert [v for v, _, _ in completions(["export", "--log-to"], "")] == ["mlflow", "wandb"]
    assert completions(["score"], "") == [("", "file", None)]
    assert {"convert", "inspect"} <= {v for v, _, _ in completions(["data"], "")}


def test_completion_with_the_index_imports_nothing_heavy(cache: Path) -> None:
    """A fresh process completes the options of every verb (the index written by the test above,
    or by the first round here) and then names every heavy module it holds."""
    verbs = sorted(real_verbs())
    code = (
        "import os, sys\n"
        "from seal_audit._cli import main\n"
        f"for verb in {verbs!r}:\n"
        "    os.environ.update(COMP_WORDS=f'seal {verb} --', COMP_CWORD='2')\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr)\n"
    ).replace("import os, sys", "import json, os, sys")
    env = {**os.environ, "_SEAL_COMPLETE": "bash_complete", "SEAL_COMPLETION_CACHE": str(cache)}
    for _round in ("builds the index where missing", "uses it"):
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
        )
        assert res.returncode == 0, res.stderr
    assert json.loads(res.stderr.strip().splitlines()[-1]) == []
    assert "plain,--log-to" in res.stdout.splitlines() and "plain,--n-bootstrap" in res.stdout.splitlines()


def test_index_key_follows_the_sources(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    mod = tmp_path / "pkg" / "verb.py"
    mod.write_text("x = 1\n")
    before = _complete.source_key(tmp_path)
    assert _complete.source_key(tmp_path) == before
    os.utime(mod, ns=(mod.stat().st_atime_ns, mod.stat().st_mtime_ns + 1_000_000))
    touched = _complete.source_key(tmp_path)
    assert touched != before
    (tmp_path / "pkg" / "new.py").write_text("")
    assert _complete.source_key(tmp_path) not in (before, touched)


def test_broken_or_unwritable_cache_still_completes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_SEAL_COMPLETE", "bash_complete")
    monkeypatch.setenv("SEAL_COMPLETION_CACHE", str(tmp_path))
    want = completions(["export"], "--")
    index = next(tmp_path.glob("*-export.json"))
    index.write_text("{not json", encoding="utf-8")
    assert completions(["export"], "--") == want  # the verb is loaded instead (and the index rewritten)
    assert json.loads(index.read_text(encoding="utf-8"))["name"] == "export"
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("SEAL_COMPLETION_CACHE", str(blocked / "sub"))  # cannot be created
    assert completions(["export"], "--") == want
    assert _output.STATE.verbosity == 0
