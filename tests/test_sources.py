"""LOAD: every supported shape, the hh-rlhf split, ids, sampling, and every kind of bad record."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from seal_audit.data import InputError, OfflineError
from seal_audit.sources import (
    ColumnMap,
    LoadOptions,
    load,
    load_conversations,
    load_hf_dataset,
    load_hh_rlhf,
    load_multi_variant,
    load_pairs,
    load_pairs_file,
    split_transcript,
)


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --- hh-rlhf on the real split -----------------------------------------------------------------
def test_hh_rlhf_real_split_counts(hh_path: Path) -> None:
    result = load(hh_path)
    assert result.format == "hh-rlhf"
    assert len(result.pairs) == 2312
    assert sum(p.context_diverges for p in result.pairs) == 5
    assert not result.skipped
    assert len({p.pair_id for p in result.pairs}) == 2312


def test_hh_rlhf_reference_rule_cuts_inside_one_reply(hh_path: Path) -> None:
    # The released code splits at the last bare "Assistant:"; one reply of this split contains
    # "\nAssistant:" itself, so the reference rule reports one more diverging pair.
    pairs = load_hh_rlhf(hh_path, split_rule="reference")
    assert sum(p.context_diverges for p in pairs) == 6


def test_hh_rlhf_split_is_exact(hh_path: Path) -> None:
    with gzip.open(hh_path, "rt", encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    pair = load_hh_rlhf(hh_path, limit=1)[0]
    assert pair.context + pair.chosen == first["chosen"]
    assert pair.context + pair.rejected == first["rejected"]
    assert pair.chosen.startswith("Assistant:") and pair.context.endswith("\n\n")
    assert "Assistant:" not in pair.chosen[len("Assistant:") :]
    assert pair.source.record == 1 and pair.source.path == str(hh_path)


def test_diverging_pair_keeps_both_contexts(hh_pairs: list) -> None:  # type: ignore[type-arg]
    div = [p for p in hh_pairs if p.context_diverges]
    assert len(div) == 5
    for p in div:
        assert p.rejected_context is not None and p.rejected_context != p.context
        assert p.transcript("rejected") == p.rejected_context + p.rejected


def test_split_transcript_rules() -> None:
    t = "\n\nHuman: hi\n\nAssistant: a\n\nHuman: b\n\nAssistant: c said\nAssistant: d"
    assert split_transcript(t, "turn") == (
        "\n\nHuman: hi\n\nAssistant: a\n\nHuman: b\n\n",
        "Assistant: c said\nAssistant: d",
    )
    assert split_transcript(t, "reference")[1] == "Assistant: d"  # type: ignore[index]
    assert split_transcript("no marker here") is None


def test_pair_id_stable_across_row_order(tmp_path: Path) -> None:
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(5)]
    a = {p.chosen: p.pair_id for p in load_pairs(_jsonl(tmp_path / "a.jsonl", rows))}
    b = {p.chosen: p.pair_id for p in load_pairs(_jsonl(tmp_path / "b.jsonl", rows[::-1]))}
    assert a == b and len(set(a.values())) == 5


# --- generic files -------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "json", "parquet", "csv", "csv.gz"])
def test_generic_formats_with_column_mapping(tmp_path: Path, fmt: str) -> None:
    df = pd.DataFrame({"q": ["Q1", "Q2"], "good": ["A1", "A2"], "bad": ["B1", "B2"], "score": ["0.5", "0.7"]})
    path = tmp_path / f"pairs.{fmt}"
    if fmt.startswith("jsonl"):
        df.to_json(path, orient="records", lines=True, compression="infer")
    elif fmt == "json":
        df.to_json(path, orient="records")
    elif fmt == "parquet":
        df.to_parquet(path)
    else:
        df.to_csv(path, index=False, compression="infer")
    pairs = load_pairs_file(path, columns=ColumnMap(prompt="q", chosen="good", rejected="bad"))
    assert [(p.context, p.chosen, p.rejected) for p in pairs] == [("Q1", "A1", "B1"), ("Q2", "A2", "B2")]
    assert str(pairs[1].meta["score"]) == "0.7" and pairs[1].source.record == 2


def test_own_id_column_kept_and_duplicates_named(tmp_path: Path) -> None:
    rows = [
        {"id": "x1", "prompt": "p", "chosen": "a", "rejected": "b"},
        {"id": "x2", "prompt": "p", "chosen": "c", "rejected": "d"},
    ]
    assert [p.pair_id for p in load_pairs(_jsonl(tmp_path / "ok.jsonl", rows))] == ["x1", "x2"]
    rows[1]["id"] = "x1"
    with pytest.raises(InputError) as err:
        load_pairs(_jsonl(tmp_path / "dup.jsonl", rows))
    assert err.value.record == 2 and "record 1" in str(err.value) and err.value.kind == "duplicate"


def test_content_duplicates_are_kept_and_counted(tmp_path: Path) -> None:
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}] * 3
    result = load(_jsonl(tmp_path / "d.jsonl", rows))
    assert result.duplicates == 2
    assert len({p.pair_id for p in result.pairs}) == 3


def test_conversational_format(tmp_path: Path) -> None:
    rows = [
        {
            "chosen": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello!"}],
            "rejected": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Go away."}],
        }
    ]
    (pair,) = load_conversations(_jsonl(tmp_path / "c.jsonl", rows))
    assert pair.context == "\n\nHuman: Hi?\n\n"
    assert pair.chosen == "Assistant: Hello!" and pair.rejected == "Assistant: Go away."
    assert not pair.context_diverges
    assert load(_jsonl(tmp_path / "c2.jsonl", rows)).format == "conversation"


def test_multi_variant_expansion(tmp_path: Path) -> None:
    rows = [{"prompt": "p", "chosen": ["c0", "c1"], "rejected": ["r0", "r1", "r2"], "id": "m"}]
    pairs = load_multi_variant(_jsonl(tmp_path / "m.jsonl", rows))
    assert len(pairs) == 6
    assert pairs[5].meta["chosen_variant"] == 1 and pairs[5].meta["rejected_variant"] == 2
    assert pairs[5].pair_id == "m:1:2" and pairs[5].source.variant == (1, 2)


def test_limit_and_seeded_sample(hh_path: Path) -> None:
    assert len(load_pairs(hh_path, limit=10)) == 10
    a = load_pairs(hh_path, sample=50, seed=3)
    b = load_pairs(hh_path, sample=50, seed=3)
    c = load_pairs(hh_path, sample=50, seed=4)
    assert [p.pair_id for p in a] == [p.pair_id for p in b] != [p.pair_id for p in c]
    assert len(load_pairs(hh_path, sample=0.01, seed=0)) == 23


@pytest.mark.parametrize("sample", [2.5, float("inf")])
def test_sample_neither_whole_count_nor_fraction_is_refused(sample: float) -> None:
    # 2.5 used to load a sample of 2 pairs without a word, inf to crash the loader with OverflowError
    with pytest.raises(ValueError, match="whole count >= 1 or a fraction in"):
        LoadOptions(sample=sample)
    assert LoadOptions(sample=3.0).sample == 3.0 and LoadOptions(sample=0.5).sample == 0.5


def test_cli_bad_sample_is_one_line_naming_the_flag(hh_path: Path) -> None:
    import subprocess
    import sys

    for value in ("2.5", "inf"):
        res = subprocess.run(
            [sys.executable, "-m", "seal_audit", "data", "inspect", str(hh_path), "--sample", value],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 2, res.stderr
        assert "Traceback" not in res.stderr
        assert res.stderr.strip() == (
            f"error: --sample: expected a whole count >= 1 or a fraction in (0, 1), got {value}"
        )


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.jsonl", ""),
        ("blank.jsonl", "\n\n"),
        ("header.csv", "prompt,chosen,rejected\n"),
        ("a.json", "[]"),
    ],
)
def test_empty_source_is_an_error_not_zero_pairs(tmp_path: Path, name: str, content: str) -> None:
    # before: `seal data convert` wrote a 0-pair table and `seal data inspect` printed "layout  (format
    # auto)", both exiting 0
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match="holds no records") as err:
        load(path, LoadOptions(on_error="skip", quarantine=tmp_path / "q.jsonl"))
    assert err.value.file == str(path)
    all_bad = tmp_path / "bad.jsonl"
    all_bad.write_text("{oops\n")
    result = load(all_bad, LoadOptions(on_error="skip", quarantine=tmp_path / "q.jsonl"))
    assert result.pairs == () and result.records_skipped == 1  # bad records stay counted skips


def test_cli_empty_file_exits_2_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "empty.jsonl"
    path.write_text("")
    out = tmp_path / "out.parquet"
    for verb in (["inspect", str(path)], ["convert", str(path), "--out", str(out)]):
        res = subprocess.run(
            [sys.executable, "-m", "seal_audit", "data", *verb], capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 2, res.stderr
        assert res.stderr.strip() == f"error: {path}: holds no records (the source is empty)"
    assert not out.exists()


def test_invalid_json_message_reads_as_one_sentence(tmp_path: Path) -> None:
    # json's own messages end in "at" ("Unterminated string starting at"): no "at at column" here
    path = tmp_path / "cut.jsonl"
    path.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": "a\n')
    with pytest.raises(InputError) as err:
        load(path)
    assert err.value.record == 2
    assert "invalid JSON (Unterminated string starting at: column 27)" in str(err.value)
    assert "at at" not in str(err.value)
    array = tmp_path / "cut.json"
    array.write_text('[{"chosen": "x", ')
    with pytest.raises(InputError, match=r"invalid JSON \(Expecting property name .*: line 1 column 18\)"):
        load(array)


def test_hf_dataset_fails_fast_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match=r"not in the local Hugging Face cache.*save_to_disk"):
        load_hf_dataset("Anthropic/hh-rlhf", split="test")


# --- bad input: each kind names file, record and field ------------------------------------------
BAD_CASES = [
    ("invalid_json", b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n{not json\n', 2, None),
    ("missing_field", b'{"prompt": "p", "chosen": "a"}\n', 1, "rejected"),
    ("non_string", b'{"prompt": "p", "chosen": 5, "rejected": "b"}\n', 1, "chosen"),
    (
        "no_marker",
        b'{"chosen": "\\n\\nHuman: a\\n\\nAssistant: b", "rejected": "\\n\\nHuman: a"}\n'
        b'{"chosen": "Human: x", "rejected": "Human: y"}\n',
        1,
        "rejected",
    ),
    ("bad_bytes", b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "\xff\xfe"}\n', 2, "prompt"),
]


@pytest.mark.parametrize(("name", "content", "record", "field"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_records_are_named(
    tmp_path: Path, name: str, content: bytes, record: int, field: str | None
) -> None:
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        load(path)
    assert err.value.file == str(path)
    assert err.value.record == record
    assert err.value.field == field
    assert str(path) in str(err.value) and f"record {record}" in str(err.value)


def test_truncated_gzip(tmp_path: Path, hh_path: Path) -> None:
    data = hh_path.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt gzip") as err:
        load(cut)
    assert err.value.record is not None and err.value.record > 100
    result = load(cut, LoadOptions(on_error="skip", quarantine=tmp_path / "q.jsonl"))
    assert len(result.pairs) == err.value.record - 1 and len(result.skipped) == 1


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "pairs.xlsx"
    path.write_text("x")
    with pytest.raises(InputError, match="unknown format"):
        load(path)


def test_skip_writes_quarantine(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    good = {"prompt": "p", "chosen": "a", "rejected": "b"}
    path.write_bytes(
        (
            json.dumps(good)
            + "\n{oops\n"
            + json.dumps({"prompt": "p", "chosen": ""})
            + "\n"
            + json.dumps({**good, "chosen": "c"})
            + "\n"
        ).encode()
    )
    q = tmp_path / "quarantine.jsonl"
    result = load(path, LoadOptions(on_error="skip", quarantine=q))
    assert len(result.pairs) == 2 and len(result.skipped) == 2
    lines = [json.loads(x) for x in q.read_text().splitlines()]
    assert [(x["record"], x["kind"]) for x in lines] == [(2, "json"), (3, "missing_field")]
    assert lines[1]["raw"] == json.dumps({"prompt": "p", "chosen": ""})


def test_running_again_does_not_quarantine_a_record_twice(tmp_path: Path) -> None:
    # before: every re-run of the same command (the way to resume) appended another copy of each
    good = {"prompt": "p", "chosen": "a", "rejected": "b"}
    a = tmp_path / "a.jsonl"
    a.write_text(json.dumps(good) + "\n{oops\n")
    b = tmp_path / "b.jsonl"
    b.write_text(
        json.dumps({**good, "chosen": "c"}) + "\n" + json.dumps({"prompt": "p", "chosen": "x"}) + "\n"
    )
    q = tmp_path / "quarantine.jsonl"
    options = LoadOptions(on_error="skip", quarantine=q)
    for _ in range(3):
        assert load(a, options).records_skipped == 1
        assert load(b, options).records_skipped == 1  # two sources of one run still share the file
    lines = [json.loads(x) for x in q.read_text().splitlines()]
    assert [(x["file"], x["record"], x["kind"]) for x in lines] == [
        (str(a), 2, "json"),
        (str(b), 2, "missing_field"),
    ]
    a.write_text(json.dumps(good) + "\n{oops, edited\n")  # a different bad record at the same place
    load(a, options)
    assert len(q.read_text().splitlines()) == 3


def test_a_json_key_given_twice_is_named_not_read_as_the_last(tmp_path: Path) -> None:
    # before: json.loads kept "b" and dropped "a" without a word
    line = '{"prompt": "p", "chosen": "a", "chosen": "b", "rejected": "c"}'
    path = tmp_path / "dup.jsonl"
    path.write_text('{"prompt": "p", "chosen": "x", "rejected": "y"}\n' + line + "\n")
    with pytest.raises(InputError) as err:
        load(path)
    assert (err.value.record, err.value.field) == (2, "chosen")
    assert "the key 'chosen' appears twice in one JSON object" in str(err.value)
    result = load(path, LoadOptions(on_error="skip", quarantine=tmp_path / "q.jsonl"))
    assert [p.chosen for p in result.pairs] == ["x"] and result.records_skipped == 1
    nested = tmp_path / "nested.json"  # inside a message too, and in a JSON array file
    nested.write_text('[{"prompt": [{"role": "user", "role": "assistant", "content": "hi"}], "chosen": "a"}]')
    with pytest.raises(InputError, match="the key 'role' appears twice"):
        load(nested)
