"""The run config: validated up front, errors name the key; `seal init` writes a valid example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from seal_audit.config import load_config, parse_config
from seal_audit.data import ConfigError


def test_unknown_and_invalid_keys_are_named() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(
            {
                "data": [{"path": "x.jsonl", "formt": "pairs"}],
                "rms": [{"name": "a", "spec": "b", "role": "pree"}],
            }
        )
    msg = str(err.value)
    assert "key 'data[0].formt'" in msg and "key 'rms[0].role'" in msg


def test_missing_data_and_duplicate_roles() -> None:
    with pytest.raises(ConfigError, match="key 'data'"):
        parse_config({"rms": []})
    with pytest.raises(ConfigError, match="more than one RM with role 'post'"):
        parse_config(
            {
                "data": [{"path": "x"}],
                "rms": [
                    {"name": "a", "spec": "length_chars", "role": "post"},
                    {"name": "b", "spec": "length_chars", "role": "post"},
                ],
            }
        )
    with pytest.raises(ConfigError, match="duplicate RM names"):
        parse_config(
            {
                "data": [{"path": "x"}],
                "rms": [{"name": "a", "spec": "length_chars"}, {"name": "a", "spec": "length_tokens"}],
            }
        )


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nout = 1")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(bad)


def test_init_writes_the_paper_setup(tmp_path: Path) -> None:
    target = tmp_path / "seal.toml"
    out = subprocess.run(
        [sys.executable, "-m", "seal_audit", "init", str(target)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    cfg = load_config(target)
    assert cfg.role("pre") == "pre" and cfg.role("post") == "post"
    specs = {r.name: r.spec for r in cfg.rms}
    assert specs["pre"] == "hf:OpenAssistant/reward-model-deberta-v3-large"
    assert specs["post"] == "hf:OpenAssistant/reward-model-deberta-v3-large-v2"
    assert cfg.labels.lm is not None and cfg.labels.lm.model == "gpt-4-turbo-2024-04-09"
    assert cfg.rewrite is not None and cfg.rewrite.transforms == ["paraphrase"] and cfg.rewrite.sample == 0.01
    again = subprocess.run(
        [sys.executable, "-m", "seal_audit", "init", str(target)], capture_output=True, text=True
    )
    assert again.returncode == 2 and "--force" in again.stderr


@pytest.mark.parametrize(
    ("spec", "cause"),
    [
        ("no such spec", "RM spec 'no such spec': not a directory, hub id (owner/name) or known kind"),
        ("length_chars?max_lenght=3", "unknown RM option 'max_lenght'"),
    ],
)
def test_an_unparseable_rm_spec_is_a_usage_error_for_run_and_score(
    tmp_path: Path, hh_path: Path, spec: str, cause: str
) -> None:
    """Before: `seal score --rm` refused it (exit 2) but `seal run` loaded the data, scored the other
    RMs and then called it an RM that failed to load (a partial stage, exit 3)."""

    def seal(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "seal_audit", *args],
            capture_output=True, text=True, timeout=300, cwd=tmp_path, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    cfg = tmp_path / "audit.toml"
    cfg.write_text(
        f'[[data]]\npath = "{hh_path}"\nlimit = 200\n\n'
        '[[rms]]\nname = "a"\nspec = "length_chars"\nrole = "pre"\n\n'
        f'[[rms]]\nname = "b"\nspec = "{spec}"\nrole = "post"\n\n'
        f'[run]\nout = "{tmp_path / "run"}"\n',
        encoding="utf-8",
    )
    run = seal("run", str(cfg))
    score = seal("score", str(hh_path), "--limit", "200", "--out", str(tmp_path / "scored"),
                 "--rm", "a=length_chars", "--rm", f"b={spec}")  # fmt: skip
    for res, where in ((run, "[[rms]] 'b': "), (score, "")):
        errors = [line for line in res.stderr.splitlines() if line.strip()]
        assert res.returncode == 2, res.stderr
        assert len(errors) == 1 and errors[0].startswith(f"error: {where}") and cause in errors[0], errors
    assert not (tmp_path / "run").exists()  # refused before any stage ran
