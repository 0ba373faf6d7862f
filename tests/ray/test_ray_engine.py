"""Scoring and LM labeling on a local Ray instance: same results as the local engines, shared cache,
resume after an interruption, one global limit per endpoint, and no Ray process left behind.

Cost on 2 cores is dominated by Ray workers importing torch, so the module runs one in-process
Ray session (a module fixture, 200 MB object store) plus one CLI subprocess with its own session.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from fakeserver.server import FakeOpenAIServer
from seal_audit.backends.llm import LLMSettings
from seal_audit.backends.reward import RMSpec
from seal_audit.data.errors import ConfigError, MissingDependencyError
from seal_audit.data.records import PreferencePair
from seal_audit.features import label_run
from seal_audit.features.lm import LMLabeler
from seal_audit.score import NAMESPACE, score_run, score_texts
from seal_audit.score.ray_engine import plan_resources
from seal_audit.store import RunStore

if TYPE_CHECKING:
    from conftest import LocalRay, RayProcesses

pytest.importorskip("ray")
pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
SEAL = str(Path(sys.executable).parent / "seal")
N_PAIRS = 40


def make_store(path: Path, pairs: list[PreferencePair]) -> RunStore:
    store = RunStore(path)
    store.write_pairs(pairs)
    return store


def sorted_scores(store: RunStore) -> pd.DataFrame:
    return store.read_table("scores").sort_values(["pair_id", "side", "rm"]).reset_index(drop=True)


# --- no Ray session needed -------------------------------------------------------------------------
def test_missing_ray_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pairs: list[PreferencePair], rm_spec: RMSpec
) -> None:
    from seal_audit.features.ray_label import label_run_ray
    from seal_audit.score import score_run_ray

    store = make_store(tmp_path / "run", pairs[:2])
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"seal-audit\[ray\]"):
        score_run_ray(store, [rm_spec])
    with pytest.raises(MissingDependencyError, match=r"seal-audit\[ray\]"):
        label_run_ray(store, [])


def test_plan_resources() -> None:
    small = plan_resources({"CPU": 2.0})
    assert (small.num_actors, small.num_cpus, small.num_gpus) == (2, 0.5, 0.0)
    big = plan_resources({"CPU": 64.0})
    assert (big.num_actors, big.num_cpus) == (32, 1.0)
    gpu = plan_resources({"CPU": 32.0, "GPU": 8.0})
    assert (gpu.num_actors, gpu.num_gpus, gpu.num_cpus) == (8, 1.0, 1.0)
    half = plan_resources({"CPU": 32.0, "GPU": 8.0}, num_gpus=0.5)
    assert half.num_actors == 16
    with pytest.raises(ConfigError, match="GPU"):
        plan_resources({"CPU": 2.0}, num_gpus=1)
    with pytest.raises(ConfigError, match="CPU"):
        plan_resources({"CPU": 2.0}, num_cpus=4)


def test_endpoint_limiter_semaphore_and_token_bucket() -> None:
    from seal_audit.features.ray_label import EndpointLimiter

    async def scenario(lim: EndpointLimiter, n: int, hold_s: float) -> float:
        async def one(i: int) -> None:
            await lim.acquire(f"h{i % 3}")
            await asyncio.sleep(hold_s)
            await lim.release(f"h{i % 3}")

        t0 = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.monotonic() - t0

    sem = EndpointLimiter(2)
    asyncio.run(scenario(sem, 8, 0.02))
    assert sem.max_in_use == 2 and sem.in_use == 0 and sem.acquired == 8
    bucket = EndpointLimiter(2, rate_per_s=20.0)
    elapsed = asyncio.run(scenario(bucket, 6, 0.0))
    assert elapsed >= (6 - 2) / 20.0 * 0.9  # a burst of 2, then 20 per second


def test_endpoint_limiter_keeps_a_lost_holders_slots_for_the_hold() -> None:
    """A holder lost with its node: its waiting and late requests get no slot, and its slots stay
    taken for the hold (the server may still be answering what it sent), then come back."""
    from seal_audit.features.ray_label import EndpointLimiter

    async def scenario() -> None:
        lim = EndpointLimiter(2)
        assert await lim.acquire("dead") and await lim.acquire("dead")
        waiting = asyncio.ensure_future(lim.acquire("dead"))
        other = asyncio.ensure_future(lim.acquire("alive"))
        await asyncio.sleep(0.05)
        await lim.release_all("dead", hold_s=0.5)  # returns at once; the actor frees them later
        assert await asyncio.wait_for(waiting, 5.0) is False
        await asyncio.sleep(0.05)
        assert not other.done() and lim.in_use == 2  # the dead holder's slots are still taken
        assert await asyncio.wait_for(other, 5.0) is True
        assert lim.in_use == 1 and lim.held_for_lost == 2 and lim.max_in_use == 2
        assert await lim.acquire("dead") is False  # a request of the lost holder arriving late
        await lim.release("alive")
        assert lim.in_use == 0

    asyncio.run(scenario())


# --- the CLI in a subprocess: its own local Ray instance, started and stopped -----------------------
def test_cli_score_engine_ray_then_local_is_a_cache_read(
    tmp_path: Path, rm_spec: RMSpec, ray_procs: RayProcesses, local_ray: LocalRay
) -> None:
    ray_tmp, env = local_ray.temp, local_ray.env
    run = tmp_path / "run"
    rm = f"tiny={rm_spec.spec}?max_length=96"
    r = subprocess.run(
        [SEAL, "score", str(DATA), "--limit", "12", "--out", str(run), "--no-progress",
         "--engine", "ray", "--ray-actors", "1", "--rm", rm],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ray: started a local instance" in r.stderr
    left = ray_procs.wait_gone(ray_tmp)
    assert not left, f"Ray processes left behind: {left}"
    ray_df = pd.read_parquet(run / "scores.parquet")
    assert len(ray_df) == 24 and ray_df["reward"].notna().all()
    stage = RunStore(run, create=False).manifest.stages["score"].counters
    assert stage["engine"] == "ray" and stage["rms"]["tiny"]["n_computed"] == 24

    loc = subprocess.run(
        [SEAL, "score", str(run), "--no-progress", "--rm", rm],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert loc.returncode == 0, loc.stderr[-3000:]
    stage = RunStore(run, create=False).manifest.stages["score"].counters
    assert stage["rms"]["tiny"]["n_computed"] == 0 and stage["rms"]["tiny"]["n_cached"] == 24
    pd.testing.assert_frame_equal(
        pd.read_parquet(run / "scores.parquet").sort_values(["pair_id", "side"]).reset_index(drop=True),
        ray_df.sort_values(["pair_id", "side"]).reset_index(drop=True),
    )


# --- one in-process Ray session for the rest --------------------------------------------------------
@pytest.fixture(scope="module")
def ray_local(ray_procs: RayProcesses) -> Iterator[Any]:
    import ray

    if ray.is_initialized():
        pytest.skip("a Ray session is already open in this process")
    tmp = tempfile.mkdtemp(prefix="sr", dir="/tmp")
    ray.init(
        num_cpus=2,
        object_store_memory=200 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        _temp_dir=tmp,
    )
    try:
        yield ray
    finally:
        ray.shutdown()
        left = ray_procs.wait_gone(tmp)
        ray_procs.stop(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, f"Ray processes left behind: {left}"


class Interrupt:
    """A progress factory that raises KeyboardInterrupt after the first batch computed by Ray:
    what Ctrl-C does to a run mid-way, at a deterministic point."""

    def __init__(self, hits: int) -> None:
        self.hits = hits
        self.calls = 0

    def __call__(self, name: str, total: int) -> Callable[[int], None]:
        def advance(n: int) -> None:
            self.calls += 1
            if self.calls == (2 if self.hits else 1):
                raise KeyboardInterrupt

        return advance


def test_ray_scores_equal_local_resume_after_interrupt_and_share_the_cache(
    ray_local: Any, tmp_path: Path, pairs: list[PreferencePair], rm_spec: RMSpec
) -> None:
    from seal_audit.backends.reward import load_reward_model
    from seal_audit.score import pair_items, score_run_ray

    local = make_store(tmp_path / "local", pairs)
    score_run(local, [rm_spec])
    expected = sorted_scores(local)

    store = make_store(tmp_path / "ray", pairs)
    items = pair_items(pairs)
    # a killed local run left the first quarter of the texts in the cache
    score_texts(load_reward_model(rm_spec.spec, rm_spec.options), items[: len(items) // 4], cache=store.cache)
    n_prefilled = len(store.cache.get_many(NAMESPACE, _keys(store, rm_spec)))

    with pytest.raises(KeyboardInterrupt):
        score_run_ray(store, [rm_spec], num_actors=2, batch_size=8, progress=Interrupt(n_prefilled))
    n_after_kill = len(store.cache.get_many(NAMESPACE, _keys(store, rm_spec)))
    n_distinct = len(set(_keys(store, rm_spec)))
    assert n_prefilled < n_after_kill < n_distinct  # the batches that arrived before Ctrl-C were kept

    result = score_run_ray(store, [rm_spec], num_actors=2, batch_size=8)
    info = result.rms[0]
    assert info.n_computed == n_distinct - n_after_kill  # only the misses went to Ray
    assert info.n_texts == len(items) and info.n_cached == len(items) - info.n_computed
    got = sorted_scores(store)
    assert (got["reward"] - expected["reward"]).abs().max() <= 1e-6
    pd.testing.assert_frame_equal(got.drop(columns="reward"), expected.drop(columns="reward"))
    assert store.manifest.rms["tiny"].identity == local.manifest.rms["tiny"].identity

    again = score_run(store, [rm_spec])  # local after Ray: a pure cache read
    assert again.rms[0].n_computed == 0 and again.rms[0].n_cached == len(items)


def _keys(store: RunStore, spec: RMSpec) -> list[str]:
    from seal_audit.backends.reward import load_reward_model
    from seal_audit.score import Scorer, pair_items

    scorer = Scorer(model=load_reward_model(spec.spec, spec.options), rm=spec.name)
    return [scorer.key(it.context, it.response) for it in pair_items(store.read_pairs())]


# --- LM labeling ----------------------------------------------------------------------------------
def _labeler(srv: FakeOpenAIServer, concurrency: int) -> LMLabeler:
    settings = LLMSettings(
        model="gpt-4o-mini",
        base_url=srv.base_url,
        api_key_env=None,
        concurrency=concurrency,
        timeout_s=5.0,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
    )
    return LMLabeler(settings)


def test_ray_labeling_respects_the_endpoint_limit_and_equals_local(
    ray_local: Any, tmp_path: Path, pairs: list[PreferencePair], fake_server: FakeOpenAIServer
) -> None:
    from seal_audit.features import label_run_ray

    fake_server.latency_s = 0.05  # long enough for requests to overlap
    subset = pairs[:20]
    local = make_store(tmp_path / "local", subset)
    label_run(local, [_labeler(fake_server, 3)])
    fake_server.reset_counts()
    fake_server.max_in_flight = 0

    store = make_store(tmp_path / "ray", subset)
    out = label_run_ray(store, [_labeler(fake_server, 3)], num_workers=4, shard_size=3)
    assert not out.stopped and out.outcomes[0].n_failed == 0
    assert fake_server.chat_requests() == 2 * len(subset)
    assert 2 <= fake_server.max_in_flight <= 3  # fanned out, never above the global limit

    cols = ["pair_id", "side", "variant", "feature"]
    a = local.read_table("features").sort_values(cols).reset_index(drop=True)
    b = store.read_table("features").sort_values(cols).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert len(store.read_log("lm_calls")) == 2 * len(subset)

    fake_server.reset_counts()
    again = label_run_ray(store, [_labeler(fake_server, 3)], num_workers=4, shard_size=3)
    assert fake_server.chat_requests() == 0 and again.outcomes[0].n_cached == 2 * len(subset)


def test_a_lost_limiter_costs_a_resend_not_a_label(ray_local: Any, fake_server: FakeOpenAIServer) -> None:
    """The endpoint limiter is gone (as when the node it lived on dies): the shards cannot get a
    slot, so they end as lost shards -- no request goes out without a slot, none counts as a
    failed label -- and the driver makes a new limiter on its own node and sends them again."""
    from seal_audit.backends.llm.client import ChatRequest, Message
    from seal_audit.features.ray_label import EndpointLimiter, FanOut, RayChatClient

    settings = _labeler(fake_server, 2).settings
    fanout = FanOut(ray_local, num_workers=2, shard_size=3, num_cpus=0.25)
    dead = ray_local.remote(EndpointLimiter).options(num_cpus=0).remote(2)
    ray_local.get(dead.stats.remote())
    ray_local.kill(dead)
    fanout.limiters[settings.base_url] = dead  # what the run holds when the limiter's node dies
    client = RayChatClient(settings, fanout=fanout)
    reqs = [ChatRequest(f"k{i}", (Message("user", f"text number {i}"),)) for i in range(8)]
    try:
        out = client.chat_many(reqs)
    finally:
        client.close()
    assert sorted(r.key for r in out.results) == sorted(q.key for q in reqs)
    assert all(r.status == "ok" for r in out.results), [r.error for r in out.results]
    assert fake_server.chat_requests() == len(reqs)  # each once: nothing was sent without a slot
    assert client.ray_lost_shards >= 1 and client.ray_resent >= 3
    assert (
        out.info["ray_lost_shards"] == client.ray_lost_shards and out.info["ray_resent"] == client.ray_resent
    )
    assert out.info["requests"] == len(reqs)  # the shards' requests are in the record
    assert fanout.limiters[settings.base_url] is not dead
