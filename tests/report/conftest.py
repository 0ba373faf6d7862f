"""Real inputs for the report tests: a simulated SEAL dataset with planted effects, analysed by the
statistics package and stored in a run directory exactly as ``seal analyze`` would store it.

Texts come from the real hh-rlhf harmless-base test split (so the explorer shows realistic
transcripts), with two hostile texts injected to check that dataset text never executes.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from seal_audit.data.records import RMRecord
from seal_audit.store import RunStore, pairs_to_frame, write_text_atomic

ROOT = Path(__file__).resolve().parents[2]
HH_PATH = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
XSS_SCRIPT = "<script>window.__pwned=1</script>"
XSS_IMG = '<img src=x onerror="window.__pwned=1">'
XSS_TEXT = f"Assistant: Sure. {XSS_SCRIPT} and {XSS_IMG} </script><!-- done"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


def _texts(n: int) -> pd.DataFrame:
    """n pairs of real hh-rlhf text (cycled when n exceeds the split), keyed later by the sim ids."""
    from seal_audit.sources import load_pairs

    pairs = load_pairs(HH_PATH) if HH_PATH.exists() else []
    if not pairs:
        rows = [
            {
                "context": f"\n\nHuman: question {i}?",
                "chosen": f"Assistant: answer {i}",
                "rejected": f"Assistant: other {i}",
            }
            for i in range(n)
        ]
        df = pd.DataFrame(rows)
        df["rejected_context"] = None
        df["context_diverges"] = False
        df["source_path"] = "synthetic"
        df["source_record"] = range(1, n + 1)
        df["source_variant"] = None
        df["meta"] = "{}"
        return df
    frame = pairs_to_frame(pairs)
    reps = -(-n // len(frame))
    return pd.concat([frame] * reps, ignore_index=True).iloc[:n].reset_index(drop=True)


XSS_REWRITE = "<script>window.__pwned=2</script>"


def _rewritten(text: str, k: int) -> str:
    """A deterministic word-level edit of a real text (a swap, a drop and an insert), so the
    viewer's word diff has something to show."""
    words = text.split(" ")
    if len(words) > 4:
        words[1], words[2] = words[2], words[1]
        del words[-2]
    words.insert(min(3, len(words)), f"indeed{k % 7}")
    return " ".join(words)


def _with_texts(rewrites: pd.DataFrame, texts: pd.DataFrame, inject: bool) -> pd.DataFrame:
    """The simulated rewrites table with what the rewrite stage stores: kind, original and rewritten
    unit (the response), and a reason for a failed row."""
    rw = rewrites.copy()
    by_id = texts.set_index("pair_id")
    rw["kind"] = "paraphrase"
    rw["scope"] = "response"
    rw["original"] = [str(by_id.loc[p, s]) for p, s in zip(rw["pair_id"], rw["side"], strict=True)]
    rw["rewritten"] = [
        _rewritten(o, k) if st == "ok" else None
        for k, (o, st) in enumerate(zip(rw["original"], rw["status"], strict=True))
    ]
    rw["reason"] = [None if st == "ok" else "LM error: timeout after 3 retries" for st in rw["status"]]
    if inject:
        first_ok = int(np.flatnonzero((rw["status"] == "ok").to_numpy())[0])
        rw.loc[rw.index[first_ok], "rewritten"] = "Assistant: fine " + XSS_REWRITE + " " + XSS_IMG
    return rw


def build_run(
    root: Path,
    n_pairs: int = 600,
    seed: int = 3,
    n_bootstrap: int = 200,
    inject: bool = True,
    unique_texts: bool = False,
    extra_rms: int = 0,
) -> RunStore:
    """Simulate, analyse and store one run under ``root`` (pairs, scores, features, stats, tables);
    ``extra_rms`` adds that many RMs of role extra ("rm-1" …: the post-D rewards plus noise)."""
    from seal_audit.stats.analysis import analyze
    from seal_audit.stats.options import AnalysisOptions
    from seal_audit.stats.simulate import SimulationSpec, simulate

    sim = simulate(SimulationSpec(n_pairs=n_pairs, seed=seed, truth_mc_pairs=20_000))
    if extra_rms:
        rng = np.random.default_rng(seed)
        base = sim.scores[sim.scores["rm"] == "post"]
        extra = [
            base.assign(rm=f"rm-{k}", reward=base["reward"] + rng.normal(0, 0.3 * k, len(base)))
            for k in range(1, extra_rms + 1)
        ]
        sim = dataclasses.replace(sim, scores=pd.concat([sim.scores, *extra], ignore_index=True))
    inputs = sim.inputs()
    if extra_rms:  # the simulation's inputs call every RM but pre and post a baseline
        inputs = dataclasses.replace(inputs, baselines=("length_chars",))
    result = analyze(inputs, AnalysisOptions(seed=seed, n_bootstrap=n_bootstrap))
    store = RunStore(root)
    texts = _texts(n_pairs)
    texts["pair_id"] = sim.pairs["pair_id"].astype(str).to_numpy()
    if unique_texts:  # every text distinct, as in a real dataset of this size (no sharing to exploit)
        tag = pd.Series([f" [{i}]" for i in range(n_pairs)])
        for col in ("context", "chosen", "rejected"):
            texts[col] = texts[col] + tag
    texts["context_diverges"] = sim.pairs["context_diverges"].to_numpy()
    if inject:
        texts.loc[0, "chosen"] = XSS_TEXT
        texts.loc[1, "context"] = "\n\nHuman: what is " + XSS_IMG + "?\n\n"
    store.write_table("pairs", texts)
    scores = sim.scores.copy()
    scores["n_tokens"] = 100
    store.write_table("scores", scores)
    feats = sim.features.copy()
    feats["featurizer"] = "lm"
    feats["status"] = "ok"
    store.write_table("features", feats)
    store.write_table("rewrites", _with_texts(sim.rewrites, texts, inject))
    write_text_atomic(store.path("stats.json"), result.to_json())
    for name, df in result.tables().items():
        store.write_table(f"analysis/{name}", df)
    store.record_rms(
        {
            "post": RMRecord(
                spec="OpenAssistant/reward-model-deberta-v3-large-v2",
                role="post",
                options={"format": "text-pair", "revision": "c355404"},
            ),
            "pre": RMRecord(
                spec="OpenAssistant/reward-model-deberta-v3-large",
                role="pre",
                options={"format": "text-pair", "revision": "2a3d7f1"},
            ),
            "length_chars": RMRecord(spec="length:chars", role="baseline"),
            **{f"rm-{k}": RMRecord(spec=f"simulated:{k}", role="extra") for k in range(1, extra_rms + 1)},
        }
    )
    store.update_manifest(seed=seed)
    store.record_stage(
        "label",
        {"options": {"featurizers": ["lm"], "llm": {"model": "gpt-4-turbo-2024-04-09", "temperature": 0}}},
    )
    store.record_stage("score", {"seconds": 12.5, "texts": 2 * n_pairs})
    store.record_stage("analyze", {"seconds": 1.9, "n_bootstrap": n_bootstrap})
    return store


def chromium_or_skip() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian chromium not installed: /usr/bin/chromium is absent (make browser installs it as root)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip(
            "playwright (Python package) not installed: pip install playwright (never `playwright install`)"
        )
    return CHROMIUM


@contextmanager
def opened_report(run: Path, out_dir: Path, *, width: int = 1440) -> Iterator[dict[str, Any]]:
    """The report of ``run``, built into ``out_dir`` and opened from file:// in headless chromium
    once the explorer is ready (skips when chromium or playwright is absent): the page, its browser,
    its URL, the run's stats.json, and what the page said -- ``errors`` (uncaught exceptions and
    console errors), every ``console`` message, every ``requests`` URL. One setup for every
    browser test module, each of which holds the page in a module-scoped fixture."""
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    from seal_audit.report import build_report

    html = build_report(RunStore(run, create=False), out_dir / "report.html").html
    url = html.as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": 900})
        console: list[str] = []
        requests: list[str] = []
        errors: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url)
        page.wait_for_selector("#explorer-app[data-ready='1']", timeout=20_000)
        yield {
            "page": page,
            "browser": browser,
            "url": url,
            "console": console,
            "requests": requests,
            "errors": errors,
            "stats": json.loads((run / "stats.json").read_text(encoding="utf-8")),
        }
        browser.close()


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report") / "run"
    build_run(root)
    return root


@pytest.fixture()
def fresh_run(run_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session run, for tests that write or break things."""
    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst)
    return dst
