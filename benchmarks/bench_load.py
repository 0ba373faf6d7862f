"""Benchmark of LOAD on every supported layout, built from the real hh-rlhf harmless-base test split.

Each layout file is written into a temporary folder from the 2,312 real pairs (the chat layouts
from the pairs whose context renders as messages), then loaded with ``seal_audit.sources.load``;
the time is the best of three loads. ``--inspect`` also prints the key lines of ``seal data
inspect`` for each file (what a user sees), for the README and the issue notes.

    .venv/bin/python benchmarks/bench_load.py            # timings
    .venv/bin/python benchmarks/bench_load.py --inspect  # timings + inspect lines per layout
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from seal_audit.data import PreferencePair
from seal_audit.sources import LoadOptions, load

HH = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
_TURN = re.compile(r"\n\n(Human|Assistant): ")
SYSTEM = {"role": "system", "content": "You are a careful assistant."}


def _turns(context: str) -> list[dict[str, str]] | None:
    parts = _TURN.split(context.removesuffix("\n\n"))
    if parts[0] != "" or len(parts) < 3:
        return None
    role = {"Human": "user", "Assistant": "assistant"}
    msgs = [{"role": role[parts[i]], "content": parts[i + 1]} for i in range(1, len(parts), 2)]
    return msgs if msgs[-1]["role"] == "user" else None


def _reply(response: str) -> str:
    return response.removeprefix("Assistant:").removeprefix(" ")


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def build(folder: Path, pairs: list[PreferencePair]) -> dict[str, tuple[Path, list[str]]]:
    """Every layout as a file (or folder), with the CLI flags it needs."""
    chat = [(p, t) for p in pairs if not p.context_diverges and (t := _turns(p.context))]
    out: dict[str, tuple[Path, list[str]]] = {}
    out["hh-rlhf (TRL implicit, text)"] = (HH, [])

    def side(t: list[dict[str, str]], r: str) -> list[dict[str, str]]:
        return [*t, {"role": "assistant", "content": _reply(r)}]

    out["TRL conversational implicit"] = (
        _jsonl(
            folder / "trl_implicit.jsonl",
            [{"chosen": side(t, p.chosen), "rejected": side(t, p.rejected)} for p, t in chat],
        ),
        [],
    )
    out["TRL conversational explicit"] = (
        _jsonl(
            folder / "trl_explicit.jsonl",
            [{"prompt": t, "chosen": side([], p.chosen), "rejected": side([], p.rejected)} for p, t in chat],
        ),
        [],
    )
    out["TRL standard explicit (text)"] = (
        _jsonl(
            folder / "trl_text.jsonl",
            [{"prompt": p.context, "chosen": p.chosen, "rejected": p.rejected} for p in pairs],
        ),
        [],
    )
    uf = []
    for i, (p, t) in enumerate(chat):
        c, r = side(t, p.chosen), side(t, p.rejected)
        uf.append(
            {
                "prompt": t[0]["content"],
                "prompt_id": f"u{i}",
                "chosen": c,
                "rejected": r,
                "messages": c,
                "score_chosen": 8.0,
                "score_rejected": 3.0,
            }
        )
    single = [u for u, (_, t) in zip(uf, chat, strict=True) if len(t) == 1]
    ufp = folder / "ultrafeedback.parquet"
    pd.DataFrame(single).to_parquet(ufp)
    out["UltraFeedback-binarized"] = (ufp, [])
    out["OpenAI messages + system"] = (
        _jsonl(
            folder / "openai.jsonl",
            [
                {"chosen": [SYSTEM, *side(t, p.chosen)], "rejected": [SYSTEM, *side(t, p.rejected)]}
                for p, t in chat
            ],
        ),
        [],
    )
    multi = [(p, t) for p, t in chat if len(t) >= 3]
    out["multi-turn explicit"] = (
        _jsonl(
            folder / "multi.jsonl",
            [{"prompt": t, "chosen": side([], p.chosen), "rejected": side([], p.rejected)} for p, t in multi],
        ),
        [],
    )
    mv = [
        {
            "id": f"m{k}",
            "prompt": pairs[3 * k].context,
            "chosen": [p.chosen for p in pairs[3 * k : 3 * k + 3]],
            "rejected": [p.rejected for p in pairs[3 * k : 3 * k + 3]],
        }
        for k in range(len(pairs) // 3)
    ]
    out["RM-Bench multi-variant"] = (_jsonl(folder / "rmbench.jsonl", mv), [])
    arena = []
    for i, p in enumerate(pairs):
        a_first = i % 2 == 0
        a, b = (p.chosen, p.rejected) if a_first else (p.rejected, p.chosen)
        winner = "tie" if i % 5 == 4 else ("model_a" if a_first else "model_b")
        arena.append(
            {
                "prompt": p.context,
                "model_a": "m1",
                "model_b": "m2",
                "response_a": a,
                "response_b": b,
                "winner": winner,
            }
        )
    ap = folder / "arena.parquet"
    pd.DataFrame(arena).to_parquet(ap)
    out["Chatbot Arena winner"] = (
        ap,
        ["--label-col", "winner", "--a-col", "response_a", "--b-col", "response_b"],
    )
    shp = []
    for i, p in enumerate(pairs):
        a_first = i % 3 != 0
        a, b = (p.chosen, p.rejected) if a_first else (p.rejected, p.chosen)
        shp.append(
            {
                "post_id": f"s{i}",
                "history": p.context,
                "human_ref_A": a,
                "human_ref_B": b,
                "labels": int(a_first),
            }
        )
    sp = folder / "shp.csv"
    pd.DataFrame(shp).to_csv(sp, index=False)
    out["SHP labels (CSV)"] = (
        sp,
        [
            "--label-col",
            "labels",
            "--a-col",
            "human_ref_A",
            "--b-col",
            "human_ref_B",
            "--prompt-col",
            "history",
        ],
    )
    own = pd.DataFrame(
        {
            "question": [p.context for p in pairs],
            "good": [p.chosen for p in pairs],
            "bad": [p.rejected for p in pairs],
        }
    )
    op = folder / "own.parquet"
    own.to_parquet(op)
    out["own column names (Parquet)"] = (
        op,
        ["--prompt-col", "question", "--chosen-col", "good", "--rejected-col", "bad"],
    )
    try:
        import datasets
    except ImportError:
        return out
    ds = datasets.Dataset.from_list(
        [{"prompt": p.context, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]
    )
    ds.save_to_disk(str(folder / "hf_disk"), num_shards=2)
    out["HF save_to_disk folder"] = (folder / "hf_disk", [])
    out["HF .arrow file"] = (sorted((folder / "hf_disk").glob("*.arrow"))[0], [])
    (folder / "hf_parquet" / "data").mkdir(parents=True)
    for i in range(3):
        ds.shard(3, i, contiguous=True).to_parquet(
            str(folder / "hf_parquet" / "data" / f"train-{i:05d}-of-00003.parquet")
        )
    out["HF parquet shards folder"] = (folder / "hf_parquet", [])
    conv = folder / "converted.parquet"
    subprocess.run(
        [sys.executable, "-m", "seal_audit", "data", "convert", str(HH), "--out", str(conv)],
        check=True,
        capture_output=True,
    )
    out["seal convert round trip"] = (conv, [])
    return out


def _options(flags: list[str]) -> LoadOptions:
    names = [f.removeprefix("--").replace("-", "_") for f in flags[::2]]
    return LoadOptions(**dict(zip(names, flags[1::2], strict=True)))


def main() -> None:
    pairs = list(load(HH).pairs)
    with tempfile.TemporaryDirectory() as tmp:
        files = build(Path(tmp), pairs)
        print(f"{'layout':34} {'pairs':>6} {'seconds':>8} {'pairs/s':>9}")
        for name, (path, flags) in files.items():
            opts = _options(flags)
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                result = load(path, opts)
                best = min(best, time.perf_counter() - t0)
            print(f"{name:34} {len(result.pairs):>6} {best:>8.3f} {len(result.pairs) / best:>9.0f}")
        if "--inspect" in sys.argv:
            for name, (path, flags) in files.items():
                done = subprocess.run(
                    [sys.executable, "-m", "seal_audit", "data", "inspect", str(path), *flags],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                lines = [
                    ln.replace(tmp, "<tmp>")
                    for ln in done.stdout.splitlines()[:4]
                    if not ln.startswith(" ") or ln.startswith("  ")
                ]
                print(f"\n## {name}\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
