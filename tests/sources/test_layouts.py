"""Every layout people bring, built from real hh-rlhf pairs: each must load back to the same texts.

The expectation of every test is the hh-rlhf pair the file was built from (context and both
responses as exact strings), so a duplicated prompt, a lost system message or a reversed pair fails.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from sources_helpers import reply, turns, write_jsonl

from seal_audit._cli import cli
from seal_audit.data import InputError, PreferencePair
from seal_audit.sources import LoadOptions, load

SYSTEM = "You are a careful assistant. Refuse harmful requests."


def inspect_json(*args: str) -> dict[str, Any]:
    out = CliRunner().invoke(cli, ["data", "inspect", "--json", *args])
    assert out.exit_code == 0, out.output
    return dict(json.loads(out.stdout)["files"])


def same_texts(got: tuple[PreferencePair, ...], want: list[PreferencePair]) -> None:
    assert [(p.context, p.chosen, p.rejected) for p in got] == [
        (p.context, p.chosen, p.rejected) for p in want
    ]


def test_trl_conversational_implicit_prompt(tmp_path: Path, chat_pairs: list[PreferencePair]) -> None:
    rows = [
        {
            "chosen": [*turns(p.context), {"role": "assistant", "content": reply(p.chosen)}],
            "rejected": [*turns(p.context), {"role": "assistant", "content": reply(p.rejected)}],
        }
        for p in chat_pairs
    ]
    path = write_jsonl(tmp_path / "trl_implicit.jsonl", rows)
    result = load(path)
    same_texts(result.pairs, chat_pairs)
    assert result.format == "conversation" and result.layout.startswith("TRL conversational, implicit prompt")
    info = inspect_json(str(path))[str(path)]
    assert info["pairs"] == 120 and info["empty_contexts"] == 0 and info["context_diverges"] == 0


def test_trl_conversational_explicit_prompt(tmp_path: Path, chat_pairs: list[PreferencePair]) -> None:
    rows = [
        {
            "prompt": turns(p.context),
            "chosen": [{"role": "assistant", "content": reply(p.chosen)}],
            "rejected": [{"role": "assistant", "content": reply(p.rejected)}],
        }
        for p in chat_pairs
    ]
    result = load(write_jsonl(tmp_path / "trl_explicit.jsonl", rows))
    same_texts(result.pairs, chat_pairs)
    assert result.layout.startswith("TRL conversational, explicit prompt")


def test_trl_standard_explicit_prompt_text(tmp_path: Path, chat_pairs: list[PreferencePair]) -> None:
    rows = [{"prompt": p.context, "chosen": p.chosen, "rejected": p.rejected} for p in chat_pairs]
    result = load(write_jsonl(tmp_path / "trl_text.jsonl", rows))
    same_texts(result.pairs, chat_pairs)
    assert result.format == "pairs" and "explicit prompt" in result.layout


def test_ultrafeedback_binarized_prompt_once_messages_not_copied(
    tmp_path: Path, chat_pairs: list[PreferencePair]
) -> None:
    single = [p for p in chat_pairs if len(turns(p.context)) == 1]
    assert len(single) >= 20
    rows = []
    for i, p in enumerate(single):
        prompt = turns(p.context)[0]["content"]
        chosen = [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply(p.chosen)}]
        rejected = [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply(p.rejected)}]
        rows.append(
            {
                "prompt": prompt,
                "prompt_id": f"u{i}",
                "chosen": chosen,
                "rejected": rejected,
                "messages": chosen,
                "score_chosen": 8.0,
                "score_rejected": 3.0,
            }
        )
    path = tmp_path / "ultrafeedback.parquet"
    pd.DataFrame(rows).to_parquet(path)
    result = load(path)
    same_texts(result.pairs, single)
    for p in result.pairs:
        assert p.context.count("Human:") == 1
        assert "messages" not in p.meta and p.meta["same_as_response"] == ["messages"]
        assert p.meta["score_chosen"] == 8.0 and p.meta["prompt_id"].startswith("u")
    assert (
        result.layout.startswith("UltraFeedback-binarized") and "'messages' column repeats" in result.layout
    )


def test_openai_messages_with_system_kept_once(tmp_path: Path, chat_pairs: list[PreferencePair]) -> None:
    system = {"role": "system", "content": SYSTEM}
    rows = [
        {
            "chosen": [system, *turns(p.context), {"role": "assistant", "content": reply(p.chosen)}],
            "rejected": [system, *turns(p.context), {"role": "assistant", "content": reply(p.rejected)}],
        }
        for p in chat_pairs
    ]
    path = write_jsonl(tmp_path / "openai.jsonl", rows)
    result = load(path)
    for got, want in zip(result.pairs, chat_pairs, strict=True):
        assert got.context == f"\n\nSystem: {SYSTEM}" + want.context
        assert got.chosen == want.chosen and got.rejected == want.rejected
    assert "with system messages" in result.layout
    assert inspect_json(str(path))[str(path)]["system_messages"] == 120


def test_openai_content_parts_are_read_as_their_text(
    tmp_path: Path, chat_pairs: list[PreferencePair]
) -> None:
    # before: any message whose content was a list of parts was "not a {role, content} object"
    def parts(text: str) -> list[dict[str, str]]:
        cut = len(text) // 2
        return [{"type": "text", "text": text[:cut]}, {"type": "text", "text": text[cut:]}]

    rows = [
        {
            "prompt": [{**m, "content": parts(m["content"])} for m in turns(p.context)],
            "chosen": [{"role": "assistant", "content": parts(reply(p.chosen))}],
            "rejected": [{"role": "assistant", "content": reply(p.rejected)}],
        }
        for p in chat_pairs
    ]
    same_texts(load(write_jsonl(tmp_path / "parts.jsonl", rows)).pairs, chat_pairs)
    rows[3]["chosen"][0]["content"].append({"type": "image_url", "image_url": {"url": "x.png"}})
    with pytest.raises(InputError) as err:
        load(write_jsonl(tmp_path / "image.jsonl", rows))
    assert (err.value.record, err.value.field) == (4, "chosen")
    assert "message 0, content part 2 is not a text part (type 'image_url'): only text can be scored" in str(
        err.value
    )


def test_multi_turn_contexts(tmp_path: Path, chat_pairs: list[PreferencePair]) -> None:
    multi = [p for p in chat_pairs if len(turns(p.context)) >= 3]
    assert len(multi) >= 20
    rows = [
        {
            "prompt": turns(p.context),
            "chosen": [{"role": "assistant", "content": reply(p.chosen)}],
            "rejected": [{"role": "assistant", "content": reply(p.rejected)}],
        }
        for p in multi
    ]
    result = load(write_jsonl(tmp_path / "multi.jsonl", rows))
    same_texts(result.pairs, multi)
    assert "multi-turn" in result.layout


def test_rm_bench_multi_variant_groups(tmp_path: Path, chat_pairs: list[PreferencePair]) -> None:
    rows = []
    for k in range(10):
        ps = chat_pairs[3 * k : 3 * k + 3]
        rows.append(
            {
                "id": f"rmb{k}",
                "prompt": ps[0].context,
                "chosen": [p.chosen for p in ps],
                "rejected": [p.rejected for p in ps],
                "domain": "safety",
            }
        )
    path = write_jsonl(tmp_path / "rmbench.jsonl", rows)
    result = load(path)
    assert len(result.pairs) == 90 and result.format == "multi-variant"
    assert len({p.group_id for p in result.pairs}) == 10
    assert all(p.group_id == f"g:{p.pair_id.split(':')[0]}" for p in result.pairs)
    info = inspect_json(str(path))[str(path)]
    assert (info["pairs"], info["groups"], info["largest_group"], info["records_read"]) == (90, 10, 9, 10)


def _arena(pairs: list[PreferencePair]) -> tuple[list[dict[str, Any]], list[str]]:
    """Arena rows: the chosen reply goes to A or B in turn; every fifth pair is a tie."""
    rows, winners = [], []
    for i, p in enumerate(pairs):
        a_first = i % 2 == 0
        winner = "tie" if i % 5 == 4 else ("model_a" if a_first else "model_b")
        a, b = (p.chosen, p.rejected) if a_first else (p.rejected, p.chosen)
        rows.append(
            {
                "prompt": p.context,
                "model_a": "m1",
                "model_b": "m2",
                "response_a": a,
                "response_b": b,
                "winner": winner,
            }
        )
        winners.append(winner)
    return rows, winners


def test_arena_winner_orients_pairs_and_counts_ties(tmp_path: Path, chat_pairs: list[PreferencePair]) -> None:
    rows, winners = _arena(chat_pairs)
    path = tmp_path / "arena.parquet"
    pd.DataFrame(rows).to_parquet(path)
    opts = LoadOptions(label_col="winner", a_col="response_a", b_col="response_b")
    result = load(path, opts)
    kept = [p for p, w in zip(chat_pairs, winners, strict=True) if w != "tie"]
    same_texts(result.pairs, kept)
    assert result.oriented == {"a": winners.count("model_a"), "b": winners.count("model_b")}
    assert result.ties == 24 and result.ties_kept == 0 and len(result.pairs) == 96
    assert result.layout == "labelled A/B text (label column 'winner')"
    kept_ties = load(path, opts.model_copy(update={"ties": "keep"}))
    assert len(kept_ties.pairs) == 120 and sum(bool(p.meta.get("tie")) for p in kept_ties.pairs) == 24
    info = inspect_json(str(path), "--label-col", "winner", "--a-col", "response_a", "--b-col", "response_b")[
        str(path)
    ]
    assert info["oriented"] == {"a": 48, "b": 48} and info["ties"] == 24 and info["pairs"] == 96


def test_arena_file_without_label_options_names_the_columns(
    tmp_path: Path, chat_pairs: list[PreferencePair]
) -> None:
    rows, _ = _arena(chat_pairs[:5])
    path = write_jsonl(tmp_path / "arena.jsonl", rows)
    with pytest.raises(InputError) as err:
        load(path)
    assert err.value.field == "chosen" and "response_a" in str(err.value) and "winner" in str(err.value)


def test_shp_labels_csv_own_columns(tmp_path: Path, chat_pairs: list[PreferencePair]) -> None:
    rows = []
    for i, p in enumerate(chat_pairs):
        a_first = i % 3 != 0
        a, b = (p.chosen, p.rejected) if a_first else (p.rejected, p.chosen)
        rows.append(
            {
                "post_id": f"s{i}",
                "history": p.context,
                "human_ref_A": a,
                "human_ref_B": b,
                "labels": int(a_first),
            }
        )
    path = tmp_path / "shp.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    opts = LoadOptions(label_col="labels", a_col="human_ref_A", b_col="human_ref_B", prompt_col="history")
    result = load(path, opts)
    same_texts(result.pairs, chat_pairs)
    assert result.oriented == {"a": 80, "b": 40} and result.ties == 0
    assert {p.meta["chosen_is"] for p in result.pairs} == {"A", "B"}


def test_label_values_override_and_unknown_value(tmp_path: Path, chat_pairs: list[PreferencePair]) -> None:
    p, q = chat_pairs[:2]
    rows = [
        {"prompt": p.context, "x": p.rejected, "y": p.chosen, "pref": "right"},
        {"prompt": q.context, "x": q.chosen, "y": q.rejected, "pref": "left"},
        {"prompt": q.context, "x": q.chosen, "y": q.rejected, "pref": "same"},
    ]
    path = write_jsonl(tmp_path / "own_labels.jsonl", rows)
    opts = LoadOptions(label_col="pref", a_col="x", b_col="y", label_values="left,right,same")
    result = load(path, opts)
    same_texts(result.pairs, [p, q])
    assert result.ties == 1
    with pytest.raises(InputError) as err:
        load(path, LoadOptions(label_col="pref", a_col="x", b_col="y"))
    assert err.value.record == 1 and err.value.field == "pref" and "'right'" in str(err.value)


def test_csv_and_parquet_with_own_column_names(tmp_path: Path, chat_pairs: list[PreferencePair]) -> None:
    df = pd.DataFrame(
        {
            "question": [p.context for p in chat_pairs],
            "good": [p.chosen for p in chat_pairs],
            "bad": [p.rejected for p in chat_pairs],
        }
    )
    opts = LoadOptions(prompt_col="question", chosen_col="good", rejected_col="bad")
    for name in ("own.csv", "own.parquet", "own.tsv"):
        path = tmp_path / name
        if name.endswith(".parquet"):
            df.to_parquet(path)
        else:
            df.to_csv(path, index=False, sep="\t" if name.endswith(".tsv") else ",")
        same_texts(load(path, opts).pairs, chat_pairs)


def test_misspelled_prompt_col_is_an_error_listing_columns(
    tmp_path: Path, chat_pairs: list[PreferencePair]
) -> None:
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [{"question": p.context, "chosen": p.chosen, "rejected": p.rejected} for p in chat_pairs],
    )
    with pytest.raises(InputError) as err:
        load(path, LoadOptions(prompt_col="questoin"))
    msg = str(err.value)
    assert "'questoin'" in msg and "--prompt-col" in msg and "chosen, question, rejected" in msg
    out = subprocess.run(
        [sys.executable, "-m", "seal_audit", "data", "inspect", str(path), "--prompt-col", "questoin"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "column 'questoin'" in out.stderr and "Traceback" not in out.stderr


# --- Hugging Face on-disk datasets -------------------------------------------------------------
@pytest.fixture()
def hf_rows(chat_pairs: list[PreferencePair]) -> list[dict[str, str]]:
    return [{"prompt": p.context, "chosen": p.chosen, "rejected": p.rejected} for p in chat_pairs]


def test_save_to_disk_dataset_and_arrow_file(
    tmp_path: Path, hf_rows: list[dict[str, str]], chat_pairs: list[PreferencePair]
) -> None:
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(hf_rows).save_to_disk(str(tmp_path / "ds"), num_shards=3)
    same_texts(load(tmp_path / "ds").pairs, chat_pairs)
    same_texts(load(f"hf:{tmp_path / 'ds'}").pairs, chat_pairs)  # offline: a folder needs no network
    arrow = sorted((tmp_path / "ds").glob("*.arrow"))
    assert len(arrow) == 3
    got = load(arrow[0]).pairs
    same_texts(got, chat_pairs[: len(got)])
    assert got[0].source.path == str(arrow[0]) and got[0].source.record == 1


def test_save_to_disk_dataset_dict_picks_the_split(
    tmp_path: Path, hf_rows: list[dict[str, str]], chat_pairs: list[PreferencePair]
) -> None:
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(hf_rows[:100]),
            "test": datasets.Dataset.from_list(hf_rows[100:]),
        }
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    same_texts(load(tmp_path / "dd", LoadOptions(split="train")).pairs, chat_pairs[:100])
    same_texts(load(tmp_path / "dd", LoadOptions(split="test")).pairs, chat_pairs[100:])
    with pytest.raises(InputError, match=r"no split 'validation'.*train, test"):
        load(tmp_path / "dd", LoadOptions(split="validation"))
    # in Python, Dataset and DatasetDict objects are sources too
    same_texts(load(dd["test"]).pairs, chat_pairs[100:])
    same_texts(load(dd, LoadOptions(split="test")).pairs, chat_pairs[100:])


def test_dataset_dict_with_several_splits_and_no_split_is_an_error(tmp_path: Path, hh_path: Path) -> None:
    """Before: with no --split a DatasetDict of several splits silently loaded 'train' (the default
    split), so an audit of the test split could run on the training pairs. Now the user chooses;
    a DatasetDict of one split loads it."""
    datasets = pytest.importorskip("datasets")
    with gzip.open(hh_path, "rt", encoding="utf-8") as fh:
        raw = [json.loads(line) for _, line in zip(range(300), fh, strict=False)]
    both = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(raw[:200]), "test": datasets.Dataset.from_list(raw[200:])}
    )
    both.save_to_disk(str(tmp_path / "dd"))
    datasets.DatasetDict({"test": both["test"]}).save_to_disk(str(tmp_path / "one"))

    def inspect(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "seal_audit", "data", "inspect", "--json", *args],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    none = inspect(str(tmp_path / "dd"))
    assert none.returncode == 2, none.stderr
    assert next(line for line in none.stderr.splitlines() if line.strip()) == (
        f"error: {tmp_path / 'dd'}: this DatasetDict has 2 splits (train, test) and no split was given; "
        "choose one with --split"
    ), none.stderr
    assert "Traceback" not in none.stderr
    for args, n in (((str(tmp_path / "dd"), "--split", "test"), 100), ((str(tmp_path / "one"),), 100)):
        out = inspect(*args)
        assert out.returncode == 0, out.stderr
        (info,) = json.loads(out.stdout)["files"].values()
        assert info["records_read"] == n and info["format"] == "hh-rlhf"
    train = inspect(str(tmp_path / "dd"), "--split", "train")
    assert (
        train.returncode == 0
        and next(iter(json.loads(train.stdout)["files"].values()))["records_read"] == 200
    )
    # in Python, a DatasetDict object: the same rule, the option named as in Python
    with pytest.raises(
        InputError, match=r"2 splits \(train, test\) and no split was given; choose one with split="
    ):
        load(both)
    assert len(load(datasets.DatasetDict({"test": both["test"]})).pairs) == 100


def test_parquet_folder_with_split_shards(
    tmp_path: Path, hf_rows: list[dict[str, str]], chat_pairs: list[PreferencePair]
) -> None:
    datasets = pytest.importorskip("datasets")
    data = tmp_path / "repo" / "data"
    data.mkdir(parents=True)
    ds = datasets.Dataset.from_list(hf_rows[:100])
    for i in range(4):
        ds.shard(4, i, contiguous=True).to_parquet(str(data / f"train-{i:05d}-of-00004.parquet"))
    datasets.Dataset.from_list(hf_rows[100:]).to_parquet(str(data / "test-00000-of-00001.parquet"))
    with pytest.raises(InputError, match=r"this folder has 2 splits \(test, train\) and no split was given"):
        load(tmp_path / "repo")
    result = load(tmp_path / "repo", LoadOptions(split="train"))
    same_texts(result.pairs, chat_pairs[:100])
    assert result.pairs[-1].source.path.endswith("train-00003-of-00004.parquet")
    same_texts(load(tmp_path / "repo", LoadOptions(split="test")).pairs, chat_pairs[100:])


def test_hf_id_served_from_local_hub_cache_offline(
    tmp_path: Path,
    hf_rows: list[dict[str, str]],
    chat_pairs: list[PreferencePair],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    datasets = pytest.importorskip("datasets")
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "datasets--someone--hh-chat"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    snap = repo / "snapshots" / sha / "data"
    snap.mkdir(parents=True)
    datasets.Dataset.from_list(hf_rows).to_parquet(str(snap / "train-00000-of-00001.parquet"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    same_texts(load("hf:someone/hh-chat").pairs, chat_pairs)


def test_arena_conversation_columns_and_bothbad_ties(
    tmp_path: Path, chat_pairs: list[PreferencePair]
) -> None:
    rows = []
    for i, p in enumerate(chat_pairs[:30]):
        conv_c = [*turns(p.context), {"role": "assistant", "content": reply(p.chosen)}]
        conv_r = [*turns(p.context), {"role": "assistant", "content": reply(p.rejected)}]
        a, b = (conv_c, conv_r) if i % 2 else (conv_r, conv_c)
        winner = "tie (bothbad)" if i % 10 == 9 else ("model_a" if i % 2 else "model_b")
        rows.append({"question_id": f"q{i}", "conversation_a": a, "conversation_b": b, "winner": winner})
    path = write_jsonl(tmp_path / "arena33k.jsonl", rows)
    opts = LoadOptions(label_col="winner", a_col="conversation_a", b_col="conversation_b")
    result = load(path, opts)
    same_texts(result.pairs, [p for i, p in enumerate(chat_pairs[:30]) if i % 10 != 9])
    assert result.ties == 3 and result.layout == "labelled A/B chat (label column 'winner')"
    assert not any(p.context_diverges for p in result.pairs)


def test_hh_rlhf_hub_snapshot_with_jsonl_subsets_offline(
    tmp_path: Path, hh_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub layout of Anthropic/hh-rlhf itself: ``<subset>/<split>.jsonl.gz`` files."""
    pytest.importorskip("huggingface_hub")
    sha = "fedcba9876543210fedcba9876543210fedcba98"
    repo = tmp_path / "hub" / "datasets--Anthropic--hh-rlhf"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    snap = repo / "snapshots" / sha
    (snap / "harmless-base").mkdir(parents=True)
    (snap / "README.md").write_text("# hh-rlhf\n")
    (snap / "harmless-base" / "test.jsonl.gz").write_bytes(hh_path.read_bytes())
    (snap / "harmless-base" / "train.jsonl.gz").write_bytes(b"")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = load("hf:Anthropic/hh-rlhf", LoadOptions(subset="harmless-base", split="test"))
    assert result.format == "hh-rlhf" and len(result.pairs) == 2312
    assert sum(p.context_diverges for p in result.pairs) == 5
    assert result.pairs[0].source.path.endswith("harmless-base/test.jsonl.gz")
