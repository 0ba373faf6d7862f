"""Scoring throughput: local engine vs Ray engine on this machine, and what that predicts for N GPUs.

Same RM (a randomly initialised DeBERTa-v2 classifier, hidden 256, 4 layers -- big enough that the
forward pass, not Python, dominates; built offline), same hh-rlhf texts, a fresh run directory
for each engine so that every text is computed. Reports:

- local: ``score_run`` in this process (``--threads`` torch threads);
- Ray: ``score_run_ray`` starting its own local Ray instance (``--actors`` actors x 0.5 CPU,
  1 torch thread each), split into its phases from the engine's log and progress callbacks:
  session start, identity probe, actor start-up (until the first batch is back), steady state
  (first to last batch) -- and the driver's cost per text (cache key + cache write), measured
  separately, which bounds what one driver can absorb however many GPUs feed it.

Then the N-GPU arithmetic. Per actor, the Ray engine runs the local scorer's code, so an actor on
one GPU scores at the single-GPU rate ``g`` (measure it with ``benchmarks/gpu_check.sh``; pass it
as ``--gpu-texts-per-s``). With N actors::

    throughput(N) = min(N x g x e, 1 / driver_s_per_text)
    wall(T texts)  = startup + T / throughput(N)

where ``e`` is the steady-state efficiency of an actor relative to the local scorer, measured
here (Ray steady texts/s / (actors x local texts/s per thread)), and ``startup`` is the measured
session + probe + actor start-up (on a GPU cluster add the model download/load per node).

Usage: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_ray.py [--pairs 300] [--actors 2]
       [--gpu-texts-per-s G] [--gpus 1,4,8,32]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("SEAL_RAY_OBJECT_STORE_MB", "300")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"


def build_rm(out: Path, texts: list[str]) -> Path:
    """A DeBERTa-v2 RM between the test-sized and the real one (the real one: 0.5 texts/s here)."""
    from seal_audit.backends.reward._runtime import import_torch, import_transformers
    from seal_audit.backends.reward.testing import build_tokenizer, deberta_config

    torch = import_torch()
    transformers = import_transformers()
    tok = build_tokenizer(texts, vocab_size=4000)
    cfg = deberta_config("tiny", len(tok))
    cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size = 256, 4, 4, 1024
    cfg.pooler_hidden_size = 256
    torch.manual_seed(0)
    model = transformers.DebertaV2ForSequenceClassification(cfg).eval()
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


def fresh_store(root: Path, name: str, pairs: list[Any]) -> Any:
    from seal_audit.store import RunStore

    store = RunStore(root / name)
    store.write_pairs(pairs)
    return store


def driver_cost_per_text(store: Any, spec: Any, pairs: list[Any]) -> float:
    """Seconds the driver spends per text on keys + cache writes (what the Ray engine adds)."""
    from seal_audit.backends.reward import load_reward_model
    from seal_audit.score import Scorer, pair_items

    items = pair_items(pairs)
    scorer = Scorer(model=load_reward_model(spec.spec, spec.options), rm=spec.name)
    t0 = time.perf_counter()
    keys = [scorer.key(it.context, it.response) for it in items]
    for s in range(0, len(keys), 256):
        store.cache.put_many(
            "bench", {k: {"reward": 0.1, "n_tokens": 100, "truncated": False} for k in keys[s : s + 256]}
        )
    return (time.perf_counter() - t0) / len(keys)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the local run")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument(
        "--batch-size", type=int, default=32, help="texts per Ray batch (more batches: a steadier rate)"
    )
    ap.add_argument("--gpu-texts-per-s", type=float, default=None, help="measured single-GPU rate g")
    ap.add_argument("--gpus", default="1,4,8,32")
    args = ap.parse_args()

    import torch

    from seal_audit.backends.reward import RMOptions, RMSpec
    from seal_audit.score import score_run, score_run_ray
    from seal_audit.sources import load_pairs

    pairs = load_pairs(DATA, limit=args.pairs)
    n_texts = 2 * len(pairs)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rm = build_rm(root / "rm", [p.transcript(s) for p in pairs for s in ("chosen", "rejected")])
        spec = RMSpec("bench", str(rm), options=RMOptions(max_length=args.max_length))

        torch.set_num_threads(args.threads)
        t0 = time.perf_counter()
        local = score_run(fresh_store(root, "local", pairs), [spec])
        local_s = time.perf_counter() - t0
        local_tps = n_texts / local_s
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        one = score_run(fresh_store(root, "local1", pairs), [spec])
        one_tps = n_texts / (time.perf_counter() - t0)
        assert local.rms[0].n_computed == one.rms[0].n_computed == n_texts

        marks: dict[str, float] = {}
        arrivals: list[tuple[float, int]] = []

        def log(msg: str) -> None:
            now = time.perf_counter()
            if msg.startswith("ray: up to"):
                marks.setdefault("session", now)
            elif "identity read on a worker" in msg:
                marks.setdefault("probe", now)

        def progress(name: str, total: int) -> Any:
            def advance(n: int) -> None:
                arrivals.append((time.perf_counter(), n))

            return advance

        t0 = time.perf_counter()
        ray_store = fresh_store(root, "ray", pairs)
        res = score_run_ray(
            ray_store, [spec], num_actors=args.actors, batch_size=args.batch_size, progress=progress, log=log
        )
        ray_s = time.perf_counter() - t0
        assert res.rms[0].n_computed == n_texts
        drv = driver_cost_per_text(ray_store, spec, pairs)

    first, last = arrivals[0][0], arrivals[-1][0]
    steady_n = sum(n for _, n in arrivals[1:])
    steady_tps = steady_n / (last - first) if last > first else float("nan")
    startup = first - t0
    eff = steady_tps / (args.actors * one_tps)
    e = min(eff, 1.0)  # an actor cannot beat the scorer it runs; above 1 is noise of a shared machine
    print(
        f"machine: {os.cpu_count()} CPUs; {n_texts} hh-rlhf texts, DeBERTa-v2 h256x4, max_length {args.max_length}"
    )
    print(f"local ({args.threads} threads): {local_tps:8.1f} texts/s  ({local_s:.1f}s)")
    print(f"local (1 thread):    {one_tps:8.1f} texts/s")
    print(
        f"ray   ({args.actors} actors x 0.5 CPU, 1 thread): {n_texts / ray_s:8.1f} texts/s end to end "
        f"({ray_s:.1f}s) -> ratio ray/local = {n_texts / ray_s / local_tps:.2f}"
    )
    print(
        f"  phases: session {marks['session'] - t0:.1f}s, probe {marks['probe'] - marks['session']:.1f}s, "
        f"actor start-up {first - marks['probe']:.1f}s, steady {last - first:.1f}s "
        f"({len(arrivals)} batches) -> steady {steady_tps:.1f} texts/s = ratio {steady_tps / local_tps:.2f} "
        f"of local; per-actor efficiency e = {eff:.2f}"
    )
    print(f"  driver cost: {drv * 1e6:.0f} us/text (keys + cache writes) -> ceiling {1 / drv:,.0f} texts/s")
    print()
    g = args.gpu_texts_per_s
    label = (
        "measured --gpu-texts-per-s"
        if g
        else "ILLUSTRATIVE g (not measured here: no GPU); pass --gpu-texts-per-s"
    )
    g = g or 300.0
    print(f"N-GPU projection, g = {g:g} texts/s per GPU ({label}), e = {e:.2f}, startup = {startup:.0f}s:")
    print(f"{'GPUs':>5} {'texts/s':>10} {'321,600 texts':>14}")
    for n in (int(x) for x in args.gpus.split(",")):
        tps = min(n * g * e, 1 / drv)
        print(
            f"{n:>5} {tps:>10,.0f} {startup + 321_600 / tps:>13,.0f}s   = min({n} x {g:g} x {e:.2f}, {1 / drv:,.0f})"
        )


if __name__ == "__main__":
    main()
