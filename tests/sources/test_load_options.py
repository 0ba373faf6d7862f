"""One options model for loading: TOML ``[[data]]`` and the CLI flags accept every field, same default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import click
import pytest

from seal_audit._cli import cli
from seal_audit._cli._common import load_options
from seal_audit.config import DataConfig, load_config, parse_config
from seal_audit.data import ConfigError
from seal_audit.data.load_options import RENAMED_KEYS, LoadOptions, flag

# A non-default value for every field, valid for both surfaces.
NON_DEFAULT: dict[str, tuple[Any, str]] = {
    "format": ("pairs", "pairs"),
    "prompt_col": ("q", "q"),
    "chosen_col": ("good", "good"),
    "rejected_col": ("bad", "bad"),
    "id_col": ("uid", "uid"),
    "group_col": ("conv", "conv"),
    "label_col": ("winner", "winner"),
    "a_col": ("ra", "ra"),
    "b_col": ("rb", "rb"),
    "label_values": ("x,y,t", "x,y,t"),
    "ties": ("keep", "keep"),
    "empty": ("drop", "drop"),
    "split_rule": ("reference", "reference"),
    "limit": (7, "7"),
    "sample": (0.5, "0.5"),
    "seed": (3, "3"),
    "on_error": ("skip", "skip"),
    "quarantine": (Path("q.jsonl"), "q.jsonl"),
    "subset": ("harmless-base", "harmless-base"),
    "split": ("test", "test"),
}
NEEDS = {"label_col": {"a_col": "ra", "b_col": "rb"}}


def _inspect_params() -> dict[str, click.Option]:
    group = cli
    data = group.get_command(click.Context(group), "data")
    assert isinstance(data, click.Group)
    inspect = data.get_command(click.Context(data), "inspect")
    assert inspect is not None
    return {p.name: p for p in inspect.params if isinstance(p, click.Option) and p.name}


def test_every_field_is_listed_here() -> None:
    assert set(NON_DEFAULT) == set(LoadOptions.model_fields)


@pytest.mark.parametrize("name", list(LoadOptions.model_fields))
def test_both_surfaces_accept_each_field_with_the_same_default(name: str) -> None:
    field = LoadOptions.model_fields[name]
    params = _inspect_params()
    opt = params[name]
    assert opt.opts == [flag(name)]
    assert opt.default == field.default, f"CLI default of {flag(name)} differs from the model"
    assert DataConfig(path="x").model_dump()[name] == field.default
    if get_origin(field.annotation) is Literal:  # a choice on the CLI, the same choices
        assert isinstance(opt.type, click.Choice)
        assert list(opt.type.choices) == list(get_args(field.annotation))
    value, cli_text = NON_DEFAULT[name]
    extra = NEEDS.get(name, {})
    cfg = parse_config({"data": [{"path": "x", name: value, **extra}]})
    assert getattr(cfg.data[0], name) == value
    ctx = click.Context(click.Command("x"))
    kwargs = {k: p.default for k, p in params.items() if k in LoadOptions.model_fields}
    kwargs[name] = opt.type_cast_value(ctx, cli_text)
    kwargs.update(extra)
    assert getattr(load_options(kwargs), name) == value


def test_old_toml_keys_still_work_and_both_spellings_are_refused(tmp_path: Path) -> None:
    cfg = parse_config(
        {"data": [{"path": "x", "prompt": "q", "chosen": "good", "rejected": "bad", "id": "uid"}]}
    )
    d = cfg.data[0]
    assert (d.prompt_col, d.chosen_col, d.rejected_col, d.id_col) == ("q", "good", "bad", "uid")
    with pytest.raises(ConfigError, match="'prompt' was renamed to 'prompt_col'"):
        parse_config({"data": [{"path": "x", "prompt": "q", "prompt_col": "q"}]})
    assert set(RENAMED_KEYS.values()) <= set(LoadOptions.model_fields)


def test_unknown_key_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\[0\]\.prompt_column"):
        parse_config({"data": [{"path": "x", "prompt_column": "q"}]})


def test_toml_and_cli_read_a_file_the_same_way(tmp_path: Path, hh_pairs: list[Any]) -> None:
    from click.testing import CliRunner

    from seal_audit.pipeline import _load_options
    from seal_audit.sources import load

    rows = [{"question": p.context, "good": p.chosen, "bad": p.rejected} for p in hh_pairs[:10]]
    path = tmp_path / "own.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    toml = tmp_path / "seal.toml"
    toml.write_text(
        f'[[data]]\npath = "{path.name}"\nprompt_col = "question"\nchosen_col = "good"\nrejected_col = "bad"\n',
        encoding="utf-8",
    )
    d = load_config(toml).data[0]
    from_toml = load(d.path, _load_options(d))
    out = CliRunner().invoke(
        cli,
        [
            "data",
            "inspect",
            str(path),
            "--json",
            "--prompt-col",
            "question",
            "--chosen-col",
            "good",
            "--rejected-col",
            "bad",
        ],
    )
    assert out.exit_code == 0, out.output
    info = json.loads(out.stdout)["files"][str(path)]
    assert info["pairs"] == len(from_toml.pairs) == 10 and info["empty_contexts"] == 0
    assert [p.context for p in from_toml.pairs] == [p.context for p in hh_pairs[:10]]


def test_label_col_without_response_columns_is_refused() -> None:
    with pytest.raises(ConfigError, match="label_col needs a_col and b_col"):
        parse_config({"data": [{"path": "x", "label_col": "winner"}]})


def test_no_two_options_of_a_verb_share_a_keyword() -> None:
    """``seal score`` takes the source options and the RM options; both have a ``format`` field."""
    for verb in ("score", "train-rm"):
        cmd = cli.get_command(click.Context(cli), verb)
        assert cmd is not None
        names = [p.name for p in cmd.params]
        assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
