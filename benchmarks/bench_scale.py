"""Paper scale on one machine (issue 18 item 1): every stage of a run at 10k, 40k and 160,800 pairs.

For each size, generated hh-rlhf-style pairs (``sources/synthetic.py``, the demo's planted
structure) go through the stages of ``seal run``, each stage in its own subprocess so that its
peak RSS is its own (``os.wait4``):

    load      the JSONL into pairs (A/D holdout 0.35, drawn by prompt group)
    train     the pre-D / post-D n-gram Bradley-Terry RMs (``seal train-rm --kind ngram``)
    score     both n-gram RMs + the length baselines (length_tokens, length_chars)
    label     every offline featurizer + the generator's two ground-truth columns
    rewrite   a 1% sample of pairs, five controlled transforms, drift gate, re-score, re-label
    analyze   every SEAL statistic, 1,000 bootstrap draws
    report    report.html + report.md
    minilm    the MiniLM encoder (the whole cost of a MiniLM embed RM) on a stated sample of
              texts, with the time it would take on all 2N texts extrapolated from its rate

and the table prints wall time, peak RSS and the disk the stage added to the run directory, then
how each grows from the smallest to each larger size next to the growth in pairs.

    .venv/bin/python benchmarks/bench_scale.py                       # 10k, 40k, 160,800
    .venv/bin/python benchmarks/bench_scale.py --sizes 10000 40000   # what fits
    .venv/bin/python benchmarks/bench_scale.py --minilm-texts 2000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SIZES = (10_000, 40_000, 160_800)
STAGES = ("load", "train", "score", "label", "rewrite", "analyze", "report", "minilm")
TRANSFORMS = ("add_positive", "add_negative", "add_apology", "add_filler", "typos")


def config_for(out: Path, data: Path) -> Any:
    from seal_audit.config import (
        AuditConfig,
        DataConfig,
        LabelsConfig,
        RewriteConfig,
        RMConfig,
        RunSection,
        TrainRMConfig,
    )

    features = [
        {
            "name": f"is_{col}",
            "kind": "binary",
            "role": "target",
            "definition": f"the reply is {col} (generator ground truth)",
            "source": "column",
            "columns": {"chosen": f"chosen_{col}", "rejected": f"rejected_{col}"},
        }
        for col in ("harmless", "helpful")
    ]
    return AuditConfig(
        run=RunSection(out=str(out), seed=0, holdout=0.35),
        data=[DataConfig(path=str(data))],
        train_rm=[
            TrainRMConfig(name="pre", role="pre", data="A", kind="ngram"),
            TrainRMConfig(name="post", role="post", data="A+D", kind="ngram"),
        ],
        rms=[
            RMConfig(name="length_tokens", role="baseline", spec="length_tokens"),
            RMConfig(name="length_chars", role="baseline", spec="length_chars"),
        ],
        labels=LabelsConfig(featurizers=["offline"], features=features, seal_taxonomy=False),
        rewrite=RewriteConfig(transforms=list(TRANSFORMS), sample=0.01, seed=0),
    )


def child(stage: str, config_path: Path, minilm_texts: int) -> dict[str, Any]:
    """Run one stage in this process; returns what it counted."""
    from seal_audit import pipeline
    from seal_audit.config import AuditConfig
    from seal_audit.store import RunStore

    cfg = AuditConfig.model_validate(json.loads(config_path.read_text()))
    store = RunStore(cfg.run.out, lock="run")
    info: dict[str, Any] = {}
    try:
        if stage == "load":
            info["pairs"] = len(pipeline.load_stage(store, cfg))
        elif stage == "train":
            info["rms"] = len(pipeline.train_stage(store, cfg))
        elif stage == "score":
            specs = [*pipeline.train_stage(store, cfg), *pipeline.rm_specs(cfg)]
            res = pipeline.score_stage(store, specs, cfg)
            info["rows"] = res.n_rows
        elif stage == "label":
            out = pipeline.label_stage(store, pipeline.featurizers_for(cfg))
            info["rows"] = len(out.frame)
        elif stage == "rewrite":
            specs = [*pipeline.train_stage(store, cfg), *pipeline.rm_specs(cfg)]
            summary = pipeline.rewrite_stage(store, cfg, specs, pipeline.featurizers_for(cfg))
            info["rewritten"] = {t.name: t.ok for t in summary.transforms}
        elif stage == "analyze":
            pipeline.analyze_stage(store, pipeline.analysis_options(cfg))
        elif stage == "report":
            info["html_mb"] = round(pipeline.report_stage(store).stat().st_size / 1e6, 1)
        elif stage == "minilm":
            from seal_audit.backends.embed.cache import embed_pairs
            from seal_audit.backends.embed.encoder import TextEncoder
            from seal_audit.score import pair_items

            pairs = store.read_pairs()
            items = pair_items(pairs)
            n_texts = len(items)
            sample = items[:: max(1, n_texts // minilm_texts)][:minilm_texts]
            encoder = TextEncoder()
            t0 = time.perf_counter()
            embed_pairs(encoder, [(it.context, it.response) for it in sample])
            seconds = time.perf_counter() - t0
            info.update(
                sample_texts=len(sample),
                texts_per_s=round(len(sample) / seconds, 1),
                all_texts=n_texts,
                extrapolated_s=round(n_texts * seconds / len(sample), 1),
            )
        else:
            raise SystemExit(f"unknown stage {stage}")
    finally:
        store.close()
    return info


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_size(n_pairs: int, root: Path, minilm_texts: int) -> list[dict[str, Any]]:
    from seal_audit.sources.synthetic import DemoSpec, write_demo_dataset

    work = root / f"n{n_pairs}"
    work.mkdir(parents=True, exist_ok=True)
    data = work / "pairs.jsonl"
    t0 = time.perf_counter()
    write_demo_dataset(data, DemoSpec(n_pairs=n_pairs, seed=0))
    print(
        f"[{n_pairs}] generated {data.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f}s",
        flush=True,
    )
    out = work / "run"
    cfg_path = work / "config.json"
    cfg_path.write_text(json.dumps(config_for(out, data).model_dump(mode="json", exclude_unset=True)))
    rows = []
    for stage in STAGES:
        before = disk_bytes(out) if out.exists() else 0
        info_path = work / f"{stage}.json"
        cmd = [sys.executable, __file__, "--child", stage, "--config", str(cfg_path)]
        cmd += ["--minilm-texts", str(minilm_texts), "--info", str(info_path)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"[{n_pairs}] stage {stage} failed with exit code {proc.returncode}")
        row = {
            "pairs": n_pairs,
            "stage": stage,
            "wall_s": round(wall, 2),
            # CPU seconds of the stage's process: on a shared machine they grow with the work, wall
            # time also with the load (its children, e.g. the tokenizers' threads, are included)
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 0),  # kB on Linux
            "disk_mb": round((disk_bytes(out) - before) / 1e6, 2),
            "info": json.loads(info_path.read_text()),
        }
        rows.append(row)
        print(
            f"[{n_pairs}] {stage:8s} {row['wall_s']:8.1f} s ({row['cpu_s']:.1f} s CPU) {row['peak_rss_mb']:7.0f} MB RSS "
            f"{row['disk_mb']:8.2f} MB disk  {row['info']}",
            flush=True,
        )
    return rows


def print_tables(rows: list[dict[str, Any]]) -> None:
    sizes = sorted({r["pairs"] for r in rows})
    by = {(r["pairs"], r["stage"]): r for r in rows}
    print("\n| stage | " + " | ".join(f"{n:,} pairs: wall / peak RSS / disk" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for stage in STAGES:
        cells = []
        for n in sizes:
            r = by.get((n, stage))
            cells.append(
                "-"
                if r is None
                else f"{r['wall_s']:.1f} s / {r['peak_rss_mb']:.0f} MB / {r['disk_mb']:.1f} MB"
            )
        print(f"| {stage} | " + " | ".join(cells) + " |")
    if len(sizes) > 1:
        base = sizes[0]
        print(f"\ngrowth from {base:,} pairs (time x, RSS x, disk x), next to the growth in pairs:")
        for n in sizes[1:]:
            parts = []
            for stage in STAGES:
                a, b = by.get((base, stage)), by.get((n, stage))
                if a is None or b is None:
                    continue
                t = b["wall_s"] / max(a["wall_s"], 1e-9)
                m = b["peak_rss_mb"] / max(a["peak_rss_mb"], 1e-9)
                d = b["disk_mb"] / a["disk_mb"] if a["disk_mb"] > 0 else float("nan")
                parts.append(f"{stage} {t:.1f}x/{m:.1f}x/{d:.1f}x")
            print(f"  {n:,} ({n / base:.1f}x pairs): " + ", ".join(parts))
    total = {n: sum(by[(n, s)]["wall_s"] for s in STAGES if (n, s) in by and s != "minilm") for n in sizes}
    print("\nend to end (all stages but minilm): " + ", ".join(f"{n:,}: {t:.0f} s" for n, t in total.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--minilm-texts", type=int, default=1000, help="MiniLM sample size (texts)")
    ap.add_argument("--keep", default=None, help="work directory to keep (default: temporary)")
    ap.add_argument("--json", default=None, help="also write every row to this JSON file")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--config", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--info", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.child:
        info = child(args.child, Path(args.config), args.minilm_texts)
        Path(args.info).write_text(json.dumps(info))
        return
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        for n in sorted(args.sizes):
            rows.extend(run_size(n, root, args.minilm_texts))
            if args.json:
                Path(args.json).write_text(json.dumps(rows, indent=1))
    print_tables(rows)


if __name__ == "__main__":
    main()
