"""Round trips, encodings, the empty-reply policy, quarantine and counts on the real hh-rlhf split."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sources_helpers import write_jsonl

from seal_audit.data import InputError, PreferencePair
from seal_audit.sources import LoadOptions, load
from seal_audit.store import RunStore

SEAL = [sys.executable, "-m", "seal_audit"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SEAL, *args], capture_output=True, text=True, timeout=300)


def dumps(pairs: tuple[PreferencePair, ...] | list[PreferencePair]) -> list[dict[str, object]]:
    return [p.model_dump() for p in pairs]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_convert_round_trip_is_identical(
    tmp_path: Path, hh_path: Path, hh_pairs: list[PreferencePair], suffix: str
) -> None:
    out = tmp_path / f"c{suffix}"
    done = run("data", "convert", str(hh_path), "--out", str(out))
    assert done.returncode == 0, done.stderr
    back = load(out)
    assert back.format == "seal" and back.layout == "seal pairs table"
    assert dumps(back.pairs) == dumps(hh_pairs)
    assert sum(not p.context.strip() for p in back.pairs) == 0
    assert sum(p.context_diverges for p in back.pairs) == 5
    # and a second generation is the same again
    again = tmp_path / f"d{suffix}"
    assert run("data", "convert", str(out), "--out", str(again)).returncode == 0
    assert dumps(load(again).pairs) == dumps(hh_pairs)


def test_run_dir_pairs_round_trip_with_groups_and_meta(
    tmp_path: Path, hh_pairs: list[PreferencePair]
) -> None:
    rows = [
        {
            "id": f"r{k}",
            "prompt": hh_pairs[k].context,
            "chosen": [hh_pairs[k].chosen, "Assistant: b"],
            "rejected": [hh_pairs[k].rejected],
            "meta_col": {"nested": [1, 2]},
        }
        for k in range(20)
    ]
    pairs = load(write_jsonl(tmp_path / "mv.jsonl", rows)).pairs
    store = RunStore(tmp_path / "run")
    store.write_pairs(list(pairs))
    assert dumps(store.read_pairs()) == dumps(pairs)
    assert dumps(load(store.table_path("pairs")).pairs) == dumps(pairs)
    assert dumps(load(tmp_path / "run").pairs) == dumps(pairs)  # the run directory itself is a source
    assert store.read_table("pairs")["group_id"].nunique() == 20


def test_group_col_sets_groups(tmp_path: Path, hh_pairs: list[PreferencePair]) -> None:
    rows = [
        {"prompt": p.context, "chosen": p.chosen, "rejected": p.rejected, "conv": f"c{i // 4}"}
        for i, p in enumerate(hh_pairs[:40])
    ]
    path = write_jsonl(tmp_path / "g.jsonl", rows)
    assert len({p.group_id for p in load(path).pairs}) == 40  # default: the context's hash
    got = load(path, LoadOptions(group_col="conv")).pairs
    assert [p.group_id for p in got] == [f"c{i // 4}" for i in range(40)]


def test_hh_groups_share_contexts(hh_pairs: list[PreferencePair]) -> None:
    by_context: dict[str, set[str]] = {}
    for p in hh_pairs:
        by_context.setdefault(p.context, set()).add(p.group_id)
    assert all(len(g) == 1 for g in by_context.values())
    assert len({p.group_id for p in hh_pairs}) == len(by_context) == 2310


# --- encoding ------------------------------------------------------------------------------------
def _first_rows(hh_path: Path, n: int) -> list[dict[str, str]]:
    with gzip.open(hh_path, "rt", encoding="utf-8") as fh:
        return [json.loads(next(fh)) for _ in range(n)]


def test_bom_accepted_in_jsonl_json_csv(tmp_path: Path, hh_path: Path) -> None:
    rows = _first_rows(hh_path, 5)
    want = [p.model_dump(exclude={"source"}) for p in load(write_jsonl(tmp_path / "plain.jsonl", rows)).pairs]
    (tmp_path / "b.jsonl").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "plain.jsonl").read_bytes())
    (tmp_path / "b.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(rows).encode())
    pd.DataFrame(rows).to_csv(tmp_path / "b.csv", index=False, encoding="utf-8-sig")
    for name in ("b.jsonl", "b.json", "b.csv"):
        got = load(tmp_path / name).pairs
        assert [p.model_dump(exclude={"source"}) for p in got] == want, name


def test_lone_surrogate_names_record_and_skip_quarantines_it(tmp_path: Path, hh_path: Path) -> None:
    rows = _first_rows(hh_path, 4)
    lines = [json.dumps(r) for r in rows]
    lines[2] = lines[2].replace('"chosen": "', '"chosen": "\\ud800', 1)
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        load(path)
    assert (err.value.record, err.value.field, err.value.kind) == (3, "chosen", "encoding")
    assert "lone surrogate" in str(err.value)
    q = tmp_path / "q.jsonl"
    result = load(path, LoadOptions(on_error="skip", quarantine=q))
    assert len(result.pairs) == 3 and result.records_skipped == 1 and result.records_read == 4
    (bad,) = [json.loads(x) for x in q.read_text().splitlines()]
    assert bad["record"] == 3 and bad["file"] == str(path) and bad["raw"] == lines[2]
    assert bad["field"] == "chosen" and "lone surrogate" in bad["reason"]


def test_undecodable_byte_names_record_jsonl_and_csv(tmp_path: Path, hh_path: Path) -> None:
    rows = _first_rows(hh_path, 4)
    raw = [json.dumps(r).encode() for r in rows]
    raw[1] = raw[1].replace(b"Human:", b"Hu\xffman:", 1)
    path = tmp_path / "u.jsonl"
    path.write_bytes(b"\n".join(raw) + b"\n")
    with pytest.raises(InputError) as err:
        load(path)
    assert err.value.record == 2 and err.value.kind == "encoding"
    q = tmp_path / "q.jsonl"
    assert len(load(path, LoadOptions(on_error="skip", quarantine=q)).pairs) == 3
    assert "\\xff" in json.loads(q.read_text())["raw"]
    csv = tmp_path / "u.csv"
    rows[2]["chosen"] = rows[2]["chosen"].replace("Human:", "ZQZQHuman:", 1)
    pd.DataFrame(rows).to_csv(csv, index=False)
    csv.write_bytes(csv.read_bytes().replace(b"ZQZQ", b"\xfe"))
    with pytest.raises(InputError) as err:
        load(csv)
    assert (err.value.record, err.value.field) == (3, "chosen") and "undecodable byte 0xfe" in str(err.value)
    assert len(load(csv, LoadOptions(on_error="skip", quarantine=q)).pairs) == 3
    array = tmp_path / "u.json"
    array.write_bytes(json.dumps(rows, ensure_ascii=False).encode().replace(b"ZQZQ", b"\xfe"))
    with pytest.raises(InputError) as err:
        load(array)
    assert (err.value.record, err.value.field) == (3, "chosen") and "undecodable byte 0xfe" in str(err.value)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet", ".json"])
def test_crlf_and_nul_survive(tmp_path: Path, hh_path: Path, suffix: str) -> None:
    rows = _first_rows(hh_path, 3)
    rows[0] = {k: v.replace("\n\nHuman:", "\r\n\r\nHuman:", 1) for k, v in rows[0].items()}
    rows[1] = {k: v + " tail\x00end" for k, v in rows[1].items()}
    path = tmp_path / f"x{suffix}"
    df = pd.DataFrame(rows)
    if suffix == ".jsonl":
        write_jsonl(path, rows)
    elif suffix == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path)
    got = load(path).pairs
    assert [p.context + p.chosen for p in got] == [r["chosen"] for r in rows]
    assert [p.transcript("rejected") for p in got] == [r["rejected"] for r in rows]


def test_quarantine_dev_null_is_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{oops\n', encoding="utf-8")
    out = run("data", "inspect", str(path), "--on-error", "skip", "--quarantine", "/dev/null", "--json")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    info = json.loads(out.stdout)["files"][str(path)]
    assert (info["records_read"], info["records_skipped"], info["pairs"]) == (2, 1, 1)


# --- one empty-reply policy ----------------------------------------------------------------------
def _empty_files(tmp_path: Path, hh_pairs: list[PreferencePair]) -> dict[str, Path]:
    p = hh_pairs[:3]
    hh = [{"chosen": x.context + x.chosen, "rejected": x.context + x.rejected} for x in p]
    hh[1]["chosen"] = p[1].context + "Assistant:"
    flat = [{"prompt": x.context, "chosen": x.chosen, "rejected": x.rejected} for x in p]
    flat[1]["chosen"] = "  "
    chat = [
        {
            "chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": c}],
            "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "no"}],
        }
        for c in ("yes", "", "sure")
    ]
    mv = [{"prompt": "q", "chosen": ["a", ""], "rejected": ["b"]}]
    return {
        "hh": write_jsonl(tmp_path / "hh.jsonl", hh),
        "flat": write_jsonl(tmp_path / "flat.jsonl", flat),
        "chat": write_jsonl(tmp_path / "chat.jsonl", chat),
        "mv": write_jsonl(tmp_path / "mv.jsonl", mv),
    }


@pytest.mark.parametrize("layout", ["hh", "flat", "chat", "mv"])
def test_empty_reply_policy_is_the_same_for_every_format(
    tmp_path: Path, hh_pairs: list[PreferencePair], layout: str
) -> None:
    path = _empty_files(tmp_path, hh_pairs)[layout]
    n = 2 if layout == "mv" else 3
    keep = load(path)
    assert len(keep.pairs) == n and keep.empty_replies == 1
    drop = load(path, LoadOptions(empty="drop"))
    assert len(drop.pairs) == n - 1 and drop.empty_dropped == 1
    with pytest.raises(InputError) as err:
        load(path, LoadOptions(empty="error"))
    assert err.value.kind == "empty" and err.value.record == (1 if layout == "mv" else 2)
    assert err.value.field in ("chosen", "chosen[1]")


def test_duplicate_id_error_names_the_input_column(tmp_path: Path) -> None:
    rows = [
        {"id": "x1", "prompt": "p", "chosen": "a", "rejected": "b"},
        {"id": "x1", "prompt": "p", "chosen": "c", "rejected": "d"},
    ]
    with pytest.raises(InputError) as err:
        load(write_jsonl(tmp_path / "d.jsonl", rows))
    assert err.value.field == "id" and "first seen in record 1" in str(err.value)


def test_counts_distinguish_records_skipped_and_pairs(tmp_path: Path) -> None:
    rows = [
        {"id": "m1", "prompt": "p", "chosen": ["a", "b"], "rejected": ["c", "d"]},
        {"id": "m2", "prompt": "p", "chosen": "not a list", "rejected": ["c"]},
        {"id": "m3", "prompt": "q", "chosen": ["e"], "rejected": ["f", "g", "h"]},
    ]
    q = tmp_path / "q.jsonl"
    result = load(
        write_jsonl(tmp_path / "mv.jsonl", rows),
        LoadOptions(format="multi-variant", on_error="skip", quarantine=q),
    )
    assert (result.records_read, result.records_skipped, len(result.pairs)) == (3, 1, 7)
    (bad,) = [json.loads(x) for x in q.read_text().splitlines()]
    assert json.loads(bad["raw"])["id"] == "m2" and bad["field"] == "chosen"


def test_no_prompt_column_is_said(tmp_path: Path, hh_pairs: list[PreferencePair]) -> None:
    rows = [{"context": p.context, "chosen": p.chosen, "rejected": p.rejected} for p in hh_pairs[:5]]
    result = load(write_jsonl(tmp_path / "c.jsonl", rows))
    assert result.layout == "pairs without a prompt column (empty contexts)"
    (note,) = result.notes
    assert "no 'prompt' column" in note and "context" in note and "--prompt-col" in note
    assert not load(tmp_path / "c.jsonl", LoadOptions(prompt_col="context")).notes


def test_csv_row_with_wrong_cell_count_is_one_skipped_record(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text('prompt,chosen,rejected\np,a,b\np,"a,x"\np,c,d\n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        load(path)
    assert err.value.record == 2 and "2 cells where the header has 3" in str(err.value)
    q = tmp_path / "q.jsonl"
    result = load(path, LoadOptions(on_error="skip", quarantine=q))
    assert [p.chosen for p in result.pairs] == ["a", "c"] and result.records_skipped == 1
    assert json.loads(json.loads(q.read_text())["raw"]) == ["p", "a,x"]


@pytest.mark.parametrize("sep", [",", "\t"])
def test_csv_header_naming_a_column_twice_is_refused(tmp_path: Path, sep: str) -> None:
    # before: the row dict kept the last 'chosen' cell and dropped the first without a word
    path = tmp_path / ("d.csv" if sep == "," else "d.tsv")
    path.write_text(sep.join(["prompt", "chosen", "chosen", "rejected"]) + "\n" + sep.join("pabc") + "\n")
    for options in (LoadOptions(), LoadOptions(on_error="skip", quarantine=tmp_path / "q.jsonl")):
        with pytest.raises(InputError) as err:
            load(path, options)
        assert str(err.value) == f"{path}: the header names column(s) 'chosen' more than once"


def test_folder_mixing_formats_is_refused(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    (tmp_path / "b.csv").write_text("prompt,chosen,rejected\np,c,d\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"mixes data files of several formats \(\.csv, \.jsonl\)"):
        load(tmp_path)
