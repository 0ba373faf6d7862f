"""CLI conventions (issue 17 item 5): ``--json`` on every verb, ``-v/-q``, NO_COLOR and non-TTY
output, the documented exit codes. Run as real subprocesses (and under a real pseudo-terminal for
colour), on real hh-rlhf pairs scored by the length baselines."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from seal_audit._cli import _output, cli

# ../shared beside the checkout, wherever it is (a missing split fails in the tests, never skips)
HH = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
)
SEAL = [sys.executable, "-m", "seal_audit"]


def seal(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SEAL, *args],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("conv") / "run"
    args = ["score", str(HH), "--limit", "40", "--rm", "a=length_chars", "--rm", "b=length_tokens"]
    res = seal(*args, "--pre", "a", "--post", "b", "--out", str(out))
    assert res.returncode == 0, res.stderr
    return out


def test_every_verb_and_subcommand_takes_json_verbose_quiet() -> None:
    ctx = click.Context(cli)
    seen = []
    for name in cli.list_commands(ctx):
        cmd = cli.get_command(ctx, name)
        assert cmd is not None, name
        subs = list(cmd.commands.values()) if isinstance(cmd, click.Group) else [cmd]
        for sub in subs:
            opts = {o for p in sub.params for o in getattr(p, "opts", ())}
            assert {"--json", "-v", "-q"} <= opts, (name, sub.name, sorted(opts))
            seen.append(sub.name)
    assert {"score", "label", "analyze", "report", "run", "demo", "inspect", "convert"} <= set(seen)


def test_json_is_one_object_on_stdout_and_messages_go_to_stderr(run_dir: Path) -> None:
    res = seal("score", str(run_dir), "--json")
    assert res.returncode == 0, res.stderr
    obj = json.loads(res.stdout)  # the whole of stdout is one JSON object
    assert res.stdout.count("\n") == 1
    assert obj["verb"] == "score" and obj["ok"] is True and obj["exit_code"] == 0
    assert [(r["name"], r["role"], r["texts"], r["cached"]) for r in obj["rms"]] == [
        ("a", "pre", 80, 80),
        ("b", "post", 80, 80),
    ]
    assert "scores:" in res.stderr  # the human table moved to stderr


def test_json_before_the_verb_and_on_failure() -> None:
    res = seal("--json", "data", "inspect", "/nonexistent/pairs.jsonl")
    assert res.returncode == 2
    obj = json.loads(res.stdout)
    assert obj == {
        "verb": "data inspect",
        "ok": False,
        "exit_code": 2,
        "error": "/nonexistent/pairs.jsonl: file not found",
    }
    assert "error: /nonexistent/pairs.jsonl: file not found" in res.stderr


def test_usage_error_is_2_with_json() -> None:
    res = seal("score", "--json", "--no-such-flag", str(HH))
    assert res.returncode == 2
    obj = json.loads(res.stdout)
    assert obj["ok"] is False and "no-such-flag" in obj["error"]


def test_quiet_prints_only_the_result_and_verbose_the_traceback(run_dir: Path) -> None:
    loud = seal("score", str(run_dir))
    quiet = seal("-q", "score", str(run_dir))
    assert "scores:" in loud.stderr and quiet.stderr == "", quiet.stderr
    bad = ["score", str(run_dir), "--rm", "x=python:no_such_module_h17:fn"]
    plain, verbose = seal(*bad), seal(*bad, "-v")
    assert plain.returncode == verbose.returncode == 2
    assert "Traceback" not in plain.stderr and "Traceback" in verbose.stderr
    assert plain.stderr.strip().splitlines()[-1].startswith("error: no RM could be loaded: x: python RM")
    assert seal("-q", *bad).stderr.strip().startswith("error:")  # -q never hides the error


def test_an_rm_that_cannot_load_is_3_and_one_line(tmp_path: Path) -> None:
    """A directory that is no model (a bare config.json): transformers explains in five lines; seal
    says it in one, exits 3 (a stage failed), keeps the other RM's scores, and --json says the same."""
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    args = ["score", str(HH), "--limit", "20", "--rm", "pre=length_tokens", "--rm", f"post=hf:{broken}"]
    res = seal("-q", *args, "--pre", "pre", "--post", "post", "--out", str(tmp_path / "run"), "--json")
    assert res.returncode == 3, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: score: RM(s) failed to load (post: "), errors
    doc = json.loads(res.stdout)
    assert doc["exit_code"] == 3 and doc["ok"] is False and "\n" not in doc["error"]
    assert [r["name"] for r in doc["rms"]] == ["pre"]


@pytest.mark.parametrize(
    ("sig", "code", "msg"),
    [
        ("SIGINT", 130, "interrupted: finished work is stored; run the same command again to resume"),
        ("SIGTERM", 143, "stopped by SIGTERM: finished work is stored; run the same command again to resume"),
    ],
)
def test_ctrl_c_is_130_interrupted_and_resumable(tmp_path: Path, sig: str, code: int, msg: str) -> None:
    """SIGINT while a slow RM scores: exit 130, the documented "interrupted" line (click reports a
    Ctrl-C during a verb as an Abort, which used to print "aborted"), the --json object says the
    same, and the same command then finishes from the cache. SIGTERM (a plain ``kill``) takes the
    same path with exit 143: it used to end the process at once, silently, leaving the run's lock
    for the next command to take over as stale."""
    import signal
    import time

    (tmp_path / "slowrm.py").write_text(
        "import time\ndef fn(items):\n    time.sleep(0.3)\n    return [float(len(r)) for _c, r in items]\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    run = tmp_path / "run"
    args = [*SEAL, "score", str(HH), "--limit", "150", "--rm", "slow=python:slowrm:fn?max_batch=8"]
    args += ["--out", str(run), "--json"]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not (run / "cache.sqlite").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)  # a few batches in (150 pairs take ~12 s)
    assert proc.poll() is None, "scoring finished before it could be interrupted"
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == msg
    doc = json.loads(out)
    assert doc["exit_code"] == code and doc["ok"] is False and doc["error"] == msg
    again = subprocess.run(
        args, capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL
    )
    assert again.returncode == 0, again.stderr
    assert "stale lock" not in again.stderr  # the stopped command released it
    (rm,) = json.loads(again.stdout)["rms"]
    assert rm["cached"] > 0 and rm["cached"] + rm["computed"] == 300, rm


def test_cost_not_confirmed_without_stdin_is_2_not_130(run_dir: Path) -> None:
    res = seal(
        "label",
        str(run_dir),
        "--featurizer",
        "lm",
        "--model",
        "m",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--price-in",
        "1",
        "--price-out",
        "1",
    )
    assert res.returncode == 2, res.stderr
    assert "not confirmed: stdin is not a terminal; pass --yes" in res.stderr
    assert "aborted" not in res.stderr


def test_piped_output_is_not_hard_wrapped(tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-directory-name-" * 4) / "pairs-that-do-not-exist.jsonl"
    res = seal("data", "inspect", str(deep))
    assert res.returncode == 2
    line = f"error: {deep}: file not found"
    assert len(line) > 120 and line in res.stderr.splitlines()
    assert "\x1b[" not in res.stderr  # no colour when stderr is not a terminal


def _on_a_terminal(args: list[str], **env: str) -> str:
    """stderr of ``seal ARGS`` when it is a real pseudo-terminal (where colour is on by default)."""
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*SEAL, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env={**base, "TERM": "xterm-256color", **env},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO once the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


def test_no_color_is_honoured_on_a_terminal() -> None:
    args = ["data", "inspect", "/nonexistent/x.jsonl"]
    coloured, plain = _on_a_terminal(args), _on_a_terminal(args, NO_COLOR="1")
    sgr = re.compile(r"\x1b\[[0-9;]*m")  # colour and style codes (cursor moves of a spinner are not)
    line = "error: /nonexistent/x.jsonl: file not found"
    assert line in sgr.sub("", coloured) and sgr.search(coloured)
    assert line in plain and not sgr.search(plain), plain


def test_exit_codes_are_documented() -> None:
    res = seal("--help")
    assert res.returncode == 0
    for code in (0, 2, 3, 130):
        assert f"  {code:<4d} {_output.EXIT_CODES[code]}" in res.stdout
    assert "_SEAL_COMPLETE=bash_source seal" in res.stdout


def test_completion_lists_verbs() -> None:
    res = subprocess.run(
        [*SEAL],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "_SEAL_COMPLETE": "bash_complete", "COMP_WORDS": "seal sc", "COMP_CWORD": "1"},
    )
    assert "plain,score" in res.stdout.splitlines()  # bash_complete: one "type,value" per line
