"""One options model for an LM endpoint: every field of ``LLMSettings`` is accepted by the TOML
sections ``[labels.lm]`` / ``[rewrite.lm]`` and by the LM flags of ``seal label`` and ``seal
rewrite``, with the same default; old TOML keys keep working."""

from __future__ import annotations

from typing import Any

import click
import pytest

from seal_audit._cli._common import llm_options, llm_settings_from_cli
from seal_audit.config import parse_config
from seal_audit.data.errors import ConfigError
from seal_audit.data.llm_options import LLMSettings, llm_field_cli

REQUIRED = {"model": "m", "base_url": "http://127.0.0.1:1/v1"}
# a non-default value for every field: (TOML value, CLI argv, expected model value)
OTHER: dict[str, tuple[Any, list[str], Any]] = {
    "model": ("other", ["--model", "other"], "other"),
    "base_url": ("http://h:2/v1/", ["--base-url", "http://h:2/v1/"], "http://h:2/v1"),
    "api_key_env": ("none", ["--api-key-env", "none"], None),
    "concurrency": (3, ["--concurrency", "3"], 3),
    "timeout_s": (7.5, ["--timeout", "7.5"], 7.5),
    "connect_timeout_s": (1.5, ["--connect-timeout", "1.5"], 1.5),
    "max_retries": (1, ["--max-retries", "1"], 1),
    "breaker_after": (5, ["--breaker-after", "5"], 5),
    "backoff_base_s": (0.5, ["--backoff-base", "0.5"], 0.5),
    "backoff_max_s": (9.0, ["--backoff-max", "9"], 9.0),
    "max_repairs": (4, ["--max-repairs", "4"], 4),
    "temperature": (0.1, ["--temperature", "0.1"], 0.1),
    "max_tokens": (64, ["--max-tokens", "64"], 64),
    "response_format": (
        "json_object_schema",
        ["--response-format", "json_object_schema"],
        "json_object_schema",
    ),
    "price": (
        {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
        ["--price-in", "1", "--price-out", "2"],
        {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
    ),
    "max_cost": (0.25, ["--max-cost", "0.25"], 0.25),
    "max_failed": (0.05, ["--max-failed", "0.05"], 0.05),
    "batch_api": (True, ["--batch-api"], True),
    "batch_poll_s": (5.0, ["--batch-poll", "5"], 5.0),
    "batch_wait_s": (60.0, ["--batch-wait", "60"], 60.0),
}


def _cli(argv: list[str]) -> LLMSettings:
    got: dict[str, Any] = {}

    @click.command()
    @llm_options
    def cmd(**kw: Any) -> None:
        got["s"] = llm_settings_from_cli(kw, what="test")

    cmd.main(argv, standalone_mode=False)
    s = got["s"]
    assert isinstance(s, LLMSettings)
    return s


def _toml(section: dict[str, Any], where: str = "labels") -> LLMSettings:
    cfg = parse_config({"data": [{"path": "x.jsonl"}], where: {"lm": section}})
    lm = cfg.labels.lm if where == "labels" else cfg.rewrite.lm  # type: ignore[union-attr]
    assert isinstance(lm, LLMSettings)
    return lm


def test_every_field_has_a_flag_and_a_test_value() -> None:
    assert set(OTHER) == set(LLMSettings.model_fields) == set(llm_field_cli())


def test_toml_and_cli_share_every_default() -> None:
    argv = ["--model", REQUIRED["model"], "--base-url", REQUIRED["base_url"]]
    assert _cli(argv) == _toml(dict(REQUIRED)) == _toml(dict(REQUIRED), "rewrite") == LLMSettings(**REQUIRED)


@pytest.mark.parametrize("field", sorted(OTHER))
def test_toml_and_cli_accept_each_field(field: str) -> None:
    toml_value, argv, expected = OTHER[field]
    base = {**REQUIRED, field: toml_value}
    cli_argv = [a for k, v in REQUIRED.items() if k != field for a in (f"--{k.replace('_', '-')}", v)] + argv
    from_toml, from_cli = _toml(base), _cli(cli_argv)
    assert from_toml == from_cli
    value = getattr(from_cli, field)
    assert (value.model_dump() if hasattr(value, "model_dump") else value) == expected
    assert value != LLMSettings.model_fields[field].default or field == "model"


def test_old_toml_keys_keep_working_and_clashes_name_the_key() -> None:
    old = _toml({**REQUIRED, "timeout": 9, "prices": {"input": 1, "output": 3}})
    assert old.timeout_s == 9 and old.price is not None and old.price.output_per_mtok == 3
    with pytest.raises(ConfigError, match=r"labels\.lm.*timeout_s only"):
        _toml({**REQUIRED, "timeout": 9, "timeout_s": 3})
    with pytest.raises(ConfigError, match=r"labels\.lm\.tmeperature"):
        _toml({**REQUIRED, "tmeperature": 0.1})


def test_cli_errors_name_the_flag() -> None:
    with pytest.raises(ConfigError, match="--concurrency"):
        _cli(["--model", "m", "--concurrency", "0"])
    with pytest.raises(ConfigError, match="--price-in and --price-out"):
        _cli(["--model", "m", "--price-in", "1"])
    with pytest.raises(ConfigError, match="--max-failed"):
        _cli(["--model", "m", "--max-failed", "2.5"])


def test_max_failed_count_or_fraction() -> None:
    assert LLMSettings(model="m").failed_allowed(100) == 0
    assert LLMSettings(model="m", max_failed=3).failed_allowed(100) == 3
    assert LLMSettings(model="m", max_failed=0.05).failed_allowed(100) == 5
