"""LM rewrites against the local OpenAI-compatible test server: paraphrase and directed transforms,
malformed replies rejected with a reason, failures retried next time, and zero calls on a re-run."""

from __future__ import annotations

from typing import Any

from seal_audit.rewrite import rewrite_run, rewritten_items
from seal_audit.rewrite.markers import marker_roles, split_lead_marker


def _table(store: Any, transform: str) -> Any:
    df = store.read_table("rewrites")
    return df[df["transform"] == transform].set_index(["pair_id", "side"])


def test_paraphrase_malformed_replies_and_resume(
    run_store: Any, rewrite_server: Any, llm_settings: Any, minilm: Any
) -> None:
    pairs = run_store.read_pairs()[:12]
    kinds = ["empty", "unchanged", "same_words", "adds_turn", "echoes_marker", "preamble", "fenced", "tagged"]
    scripted = {}
    for p, kind in zip(pairs, kinds, strict=False):
        # response scope: the model is sent the reply's body only, never its "Assistant:" marker
        prefix, body = split_lead_marker(p.rejected)
        assert prefix.startswith("Assistant:") and "Assistant:" not in body
        rewrite_server.bad[body] = kind
        scripted[(p.pair_id, "rejected")] = kind
    summary = rewrite_run(
        run_store,
        ["paraphrase"],
        sample=12,
        seed=3,
        llm_settings=llm_settings,
        embedder=minilm,
        drift_threshold=0.5,
    )
    calls = rewrite_server.calls()
    t = summary.transforms[0]
    assert t.kind == "paraphrase" and t.rows == 24 and t.lm_calls == calls == 24
    df = _table(run_store, "paraphrase")
    sampled = {pid for pid, _ in df.index}
    expected_reason = {
        "empty": "empty output",
        "unchanged": "unchanged",
        "same_words": "unchanged",
        "adds_turn": "turn markers changed",
        "preamble": "text before the reply (a preamble was added)",
    }
    for (pid, side), kind in scripted.items():
        if pid not in sampled:
            continue
        row = df.loc[(pid, side)]
        if kind in expected_reason:
            assert row["status"] == "rejected", kind
            assert str(row["reason"]).startswith(expected_reason[kind]), (kind, row["reason"])
            assert row["similarity"] != row["similarity"]  # NaN: no similarity for a rejected text
        else:  # fenced / tagged / marker-echoing replies are cleaned and accepted
            assert row["status"] == "ok", (kind, row["reason"])
            assert str(row["rewritten"]).startswith("Assistant:"), kind  # the marker is put back
    ok = df[df["status"] == "ok"]
    assert len(ok) >= 12
    for (_, _), row in ok.iterrows():
        assert row["rewritten"] != row["original"]
        assert marker_roles(row["rewritten"]) == marker_roles(row["original"])
        assert 0.5 < row["similarity"] <= 1.0 + 1e-6
    # a second run sends nothing and stores the same table
    before = run_store.read_table("rewrites")
    again = rewrite_run(
        run_store,
        ["paraphrase"],
        sample=12,
        seed=3,
        llm_settings=llm_settings,
        embedder=minilm,
        drift_threshold=0.5,
    )
    assert rewrite_server.calls() == calls
    assert again.transforms[0].lm_calls == 0 and again.transforms[0].lm_cached == 24
    after = run_store.read_table("rewrites")
    assert before.drop(columns=["similarity"]).equals(after.drop(columns=["similarity"]))
    # the calls log records every call, never the prompt or a text
    log = run_store.read_log("lm_calls")
    assert len(log) == 24
    assert all("prompt_sha256" in r for r in log)
    assert not any(pairs[0].chosen[:40] in str(r) for r in log)


def test_failed_calls_are_recorded_then_retried(
    run_store: Any, rewrite_server: Any, llm_settings: Any, minilm: Any
) -> None:
    pairs = run_store.read_pairs()
    target = pairs[0]
    rewrite_server.server.script(split_lead_marker(target.chosen)[1], ["500"])  # the body is what is sent
    rewrite_run(
        run_store, ["paraphrase"], sample=None, sides="chosen", llm_settings=llm_settings, embedder=minilm
    )
    df = _table(run_store, "paraphrase")
    row = df.loc[(target.pair_id, "chosen")]
    assert row["status"] == "failed" and "500" in str(row["reason"])
    assert (df["status"] == "ok").sum() == len(pairs) - 1
    # items to score skip the pair whose rewrite failed
    assert target.pair_id not in {i.pair_id for i in rewritten_items(run_store)}
    n = rewrite_server.calls()
    rewrite_run(
        run_store, ["paraphrase"], sample=None, sides="chosen", llm_settings=llm_settings, embedder=minilm
    )
    assert rewrite_server.calls() == n + 1  # only the failed text is asked again
    assert _table(run_store, "paraphrase").loc[(target.pair_id, "chosen")]["status"] == "ok"


def test_directed_and_user_transforms_send_their_instruction(
    run_store: Any, rewrite_server: Any, llm_settings: Any, minilm: Any
) -> None:
    from seal_audit.rewrite import custom_transforms

    extra = custom_transforms(
        [
            {
                "name": "more_pirate",
                "instruction": "Make it sound like a pirate.",
                "intended_shift": {"pirate": 1},
            }
        ]
    )
    summary = rewrite_run(
        run_store,
        ["more_positive", "more_concise", "more_pirate"],
        sample=3,
        llm_settings=llm_settings,
        embedder=minilm,
        extra=extra,
    )
    assert [t.kind for t in summary.transforms] == ["directed"] * 3
    assert sum("more positive" in p for p in rewrite_server.prompts) == 6
    assert sum("half as long" in p for p in rewrite_server.prompts) == 6
    assert sum("pirate" in p for p in rewrite_server.prompts) == 6
    docs = run_store.read_json("rewrite_transforms")
    assert (
        docs["more_pirate"]["intended_shift"] == {"pirate": 1} and docs["more_pirate"]["kind"] == "directed"
    )
    assert set(run_store.read_table("rewrites")["kind"]) == {"directed"}


def test_transcript_scope_splits_back_into_context_and_response(
    run_store: Any, rewrite_server: Any, llm_settings: Any, minilm: Any
) -> None:
    pairs = {p.pair_id: p for p in run_store.read_pairs()}
    first = next(iter(pairs.values()))
    rewrite_server.bad[first.transcript("chosen")] = "single_newline"
    rewrite_run(
        run_store,
        ["paraphrase"],
        sample=5,
        seed=0,
        scope="transcript",
        llm_settings=llm_settings,
        embedder=minilm,
    )
    df = run_store.read_table("rewrites")
    assert set(df["scope"]) == {"transcript"}
    items = rewritten_items(run_store)
    assert items
    for item in items:
        p = pairs[item.pair_id]
        assert item.response.startswith("Assistant:")
        assert item.context.endswith("\n\n") and item.context.startswith("\n\nHuman:")
        assert marker_roles(item.context + item.response) == marker_roles(p.transcript(item.side))
        assert item.context + item.response != p.transcript(item.side)


def test_cli_paraphrase_against_the_local_server(
    run_store: Any, rewrite_server: Any, minilm: Any, monkeypatch: Any
) -> None:
    from click.testing import CliRunner

    from seal_audit._cli.rewrite import command
    from seal_audit.rewrite import drift as drift_mod

    monkeypatch.setattr(drift_mod.DriftGate, "embedder", property(lambda self: minilm))
    run = str(run_store.root)
    run_store.close()
    args = [
        run,
        "-t",
        "paraphrase",
        "--base-url",
        rewrite_server.base_url,
        "--model",
        "fake",
        "--api-key-env",
        "none",
        "--sample",
        "3",
        "--no-score",
        "--no-label",
        "--no-progress",
    ]
    res = CliRunner().invoke(command, args)
    assert res.exit_code == 0, res.output
    assert rewrite_server.calls() == 6
    res = CliRunner().invoke(command, args)
    assert res.exit_code == 0 and rewrite_server.calls() == 6  # resumed from the cache
    res = CliRunner().invoke(command, [run, "-t", "paraphrase", "--sample", "x"])
    assert res.exit_code != 0 and "--sample" in res.output


def test_summary_is_readable_in_80_columns() -> None:
    import io

    from rich.console import Console

    from seal_audit._cli.rewrite import print_summary
    from seal_audit.rewrite.stage import RewriteSummary, TransformSummary

    ts = tuple(
        TransformSummary(
            name=name,
            kind=kind,
            scope="response",
            pairs=1234,
            rows=2468,
            ok=2400,
            rejected=60,
            failed=8,
            drifted=123,
            mean_similarity=0.9634,
            lm_calls=2468,
            lm_cached=1000,
            reasons=(("turn markers changed", 40), ("empty output", 20)),
            lm_info={"requests": 2470, "resends": 2, "server_slots": 4, "concurrency": 4},
        )
        for name, kind in (
            ("paraphrase", "paraphrase"),
            ("more_positive", "directed"),
            ("add_apology", "controlled"),
        )
    )
    buf = io.StringIO()
    print_summary(RewriteSummary(1234, ts, 1.0), Console(file=buf, width=80, force_terminal=False))
    lines = buf.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    text = buf.getvalue()
    assert "…" not in text  # nothing cut off
    for word in ("transform", "rejected", "drifted", "more_positive", "controlled", "0.963", "2468"):
        assert word in text
    assert "40× turn markers changed" in text and "2,470 LM requests, 2 resends" in text
