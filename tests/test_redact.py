"""redact(): secrets out of every text a sink writes; ordinary text untouched."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from seal_audit.data.redact import REDACTED, redact, redact_obj, secret_values


@pytest.mark.parametrize(
    ("text", "secrets", "gone"),
    [
        ("HTTP 401: key k3y-VALUE-7f9c2e41 rejected", ("k3y-VALUE-7f9c2e41",), "k3y-VALUE-7f9c2e41"),
        ("Authorization: Bearer abcdefghijklmnop", (), "abcdefghijklmnop"),
        ('{"Authorization": "Basic dXNlcjpwYXNzd29yZA=="}', (), "dXNlcjpwYXNzd29yZA"),
        ('{\\"authorization\\":\\"Bearer abcdefghijkl\\"}', (), "abcdefghijkl"),  # JSON inside a string
        ("x-api-key: 0123456789abcdef", (), "0123456789abcdef"),
        ('"api-key": "azure-key-123"', (), "azure-key-123"),
        ("proxy said: token sk-proj-AbCdEf0123456789xyz", (), "sk-proj-AbCdEf0123456789xyz"),
        ("bearer ZZZZ1234ZZZZ5678= is wrong", (), "ZZZZ1234ZZZZ5678"),
        ('{"Authorization": "Bearer k3y-VALUE-7f9c2e41"}', ("k3y-VALUE-7f9c2e41",), "k3y"),
    ],
)
def test_redact_removes_secrets(text: str, secrets: tuple[str, ...], gone: str) -> None:
    out = redact(text, secrets)
    assert gone not in out and REDACTED in out
    assert redact(out, secrets) == out  # idempotent: a value redacted by two sinks reads the same
    assert "]]" not in out


@pytest.mark.parametrize(
    "text",
    [
        "Human: who is the bearer of bad news?\n\nAssistant: the messenger.",
        "task-abcdefghijklmnopqrstuvwxyz and risk-assessment-2024",
        '"api_key_env": "OPENAI_API_KEY", "api_key": null',
        "sk-short",
        "the bearer instrument carries responsibility; sk-learn-compatible-estimators",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text, ("k3y-VALUE-7f9c2e41",)) is text  # same object: no copy on the common path


def test_redacted_json_stays_json_and_header_keys_are_blanked() -> None:
    obj = {"headers": {"Authorization": "Bearer abcdefghijkl", "X-Api-Key": "whatever-it-is"}, "n": [1, 2.5]}
    out = redact_obj(obj, ())
    assert out == {"headers": {"Authorization": REDACTED, "X-Api-Key": REDACTED}, "n": [1, 2.5]}
    body = json.dumps({"error": "echo: " + json.dumps(obj)})
    assert json.loads(redact(body)) and "abcdefghijkl" not in redact(body)


def test_secret_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from seal_audit.data import redact as mod

    env = {"OPENAI_API_KEY": "openai-value-123", "MY_SERVICE_TOKEN": "tok-value-456", "SHORT_API_KEY": "x"}
    env["CUSTOM_VAR"] = "custom-value-789"
    assert set(secret_values(env)) == {"openai-value-123", "tok-value-456"}
    monkeypatch.setattr(mod, "_registered", set())
    mod.register_secret_env("CUSTOM_VAR")  # what the LM settings' api_key_env does
    assert "custom-value-789" in secret_values(env)


def test_table_sink_redacts_string_cells(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from seal_audit.store import RunStore

    monkeypatch.setenv("OPENAI_API_KEY", "k3y-VALUE-7f9c2e41")
    store = RunStore(Path(str(tmp_path)) / "run")
    df = pd.DataFrame({"error": ["HTTP 500: k3y-VALUE-7f9c2e41", None], "value": [1.0, 2.0]})
    store.write_table("features", df)
    back = store.read_table("features")
    assert back["error"].iloc[0] == f"HTTP 500: {REDACTED}" and pd.isna(back["error"].iloc[1])
    assert back["value"].tolist() == [1.0, 2.0]
    store.append_log("calls", [{"error": "Authorization: Bearer k3y-VALUE-7f9c2e41"}])
    store.record_stage("label", {"reason": "k3y-VALUE-7f9c2e41"})
    store.cache.put("label", "k", {"error": "k3y-VALUE-7f9c2e41"})
    store.close()
    for p in store.root.rglob("*"):
        if p.is_file():
            assert b"k3y-VALUE-7f9c2e41" not in p.read_bytes(), p


def test_header_redaction_at_name_positions_equals_the_full_scan() -> None:
    """``redact`` tries the header pattern only where a header name occurs (a 30 MB report would
    otherwise cost seconds per pattern); on random mixes of hostile pieces it must give exactly
    what one full ``_HEADER.sub`` then the token patterns give."""
    import random

    from seal_audit.data import redact as r

    rng = random.Random(0)
    pieces = [
        "Authorization: Bearer abcdefghijklmnop1234",
        "proxy-authorization=tok123456789",
        'x-api-key: "k3y"',
        "api_key='sk-abcdefghijklmnopqrstu1'",
        "AUTHORIZATION : null",
        "xauthorization: z",
        "Proxy-Authorization: Basic Zm9vOmJhcg==",
        '"Authorization": "[REDACTED]"',
        "APi_KeY = v1",
        "the api-key is",
        " x-",
        "proxy-",
        "\n",
        "\u0130",  # lower-cases to two characters: the full scan is used
    ]
    for _ in range(5000):
        t = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        full = r._SK_TOKEN.sub(r.REDACTED, r._BEARER.sub(r.REDACTED, r._HEADER.sub(r._header_repl, t)))
        assert r.redact(t) == full, t
