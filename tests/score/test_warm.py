"""Warm runs do no model work (issue 18 item 2): with every reward cached, no model or tokenizer loads.

Real models: the tiny DeBERTa RM (an HF directory) and a MiniLM embed RM trained here. "Loads
nothing" is checked where loading happens: transformers' ``from_pretrained`` is replaced by a
function that fails the test.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from seal_audit.backends.reward import RMSpec
from seal_audit.backends.reward.warm import load_inputs
from seal_audit.score import score_run
from seal_audit.score.warm import IDENTITY_NAMESPACE
from seal_audit.store import RunStore


def _forbid_loading(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every transformers ``from_pretrained`` (models, tokenizers, configs) record and fail."""
    import transformers

    calls: list[str] = []

    def forbidden(name: str) -> Any:
        def fn(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"{name}.from_pretrained called on a warm run")

        return classmethod(fn)

    for cls in (
        transformers.PreTrainedModel,
        transformers.AutoModel,
        transformers.AutoModelForSequenceClassification,
        transformers.AutoTokenizer,
        transformers.AutoConfig,
        transformers.PreTrainedTokenizerBase,
    ):
        monkeypatch.setattr(cls, "from_pretrained", forbidden(cls.__name__))
    return calls


def _specs(tiny_rm: Path, embed_dir: Path) -> list[RMSpec]:
    return [
        RMSpec(name="hf", spec=str(tiny_rm), role="pre"),
        RMSpec(name="embed", spec=f"local:{embed_dir}", role="post"),
        RMSpec(name="len", spec="length_tokens", role="baseline"),
    ]


def _rewards(store: RunStore) -> dict[tuple[str, str, str], float]:
    df = store.read_table("scores")
    return {(r.pair_id, r.side, r.rm): float(r.reward) for r in df.itertuples()}


def test_warm_run_loads_no_model_and_gives_the_same_scores(
    tiny_rm: Path,
    planted_embed_rm: tuple[Path, object],
    hh_pairs: list,  # type: ignore[type-arg]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = RunStore(tmp_path / "run")
    store.write_pairs(hh_pairs[:10])
    specs = _specs(tiny_rm, planted_embed_rm[0])
    cold = score_run(store, specs)
    assert all(i.loaded for i in cold.rms) and cold.rms[0].n_computed == 20
    cold_rewards = _rewards(store)
    cold_identity = {n: r.identity for n, r in store.manifest.rms.items()}
    assert {ns for ns, _, _ in store.cache.summary()} >= {IDENTITY_NAMESPACE, "score", "embed"}

    calls = _forbid_loading(monkeypatch)
    warm = score_run(store, specs)
    assert calls == []
    assert [i.loaded for i in warm.rms if i.name != "len"] == [False, False]
    assert all(i.n_cached == 20 and i.n_computed == 0 for i in warm.rms)
    assert _rewards(store) == cold_rewards
    # the manifest records the same identity as the run that loaded the models
    assert {n: r.identity for n, r in store.manifest.rms.items()} == cold_identity
    assert store.manifest.stages["score"].counters["rms"]["hf"]["loaded"] is False


def test_one_missing_text_loads_the_model_and_scores_it(
    tiny_rm: Path,
    hh_pairs: list,  # type: ignore[type-arg]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = RunStore(tmp_path / "run")
    store.write_pairs(hh_pairs[:6])
    specs = [RMSpec(name="hf", spec=str(tiny_rm), role="pre")]
    score_run(store, specs)
    first = _rewards(store)
    store.write_pairs(hh_pairs[:7])  # one new pair: two texts not in the cache
    res = score_run(store, specs)
    assert res.rms[0].loaded and res.rms[0].n_computed == 2 and res.rms[0].n_cached == 12
    again = _rewards(store)
    assert {k: v for k, v in again.items() if k in first} == first and len(again) == 14
    # and with no text missing, nothing loads again
    calls = _forbid_loading(monkeypatch)
    assert not score_run(store, specs).rms[0].loaded and calls == []


def test_changed_weights_are_not_served_from_the_memo(
    tiny_rm: Path,
    hh_pairs: list,  # type: ignore[type-arg]
    tmp_path: Path,
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_rm, model)
    store = RunStore(tmp_path / "run")
    store.write_pairs(hh_pairs[:4])
    specs = [RMSpec(name="hf", spec=str(model), role="pre")]
    before = load_inputs(specs[0].spec, specs[0].options)
    score_run(store, specs)
    cfg = model / "config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "seal_test_edit": 1}))
    after = load_inputs(specs[0].spec, specs[0].options)
    assert before is not None and after is not None and before["fingerprint"] != after["fingerprint"]
    res = score_run(store, specs)
    assert res.rms[0].loaded  # new fingerprint: the identity is learned again from a real load


def test_self_check_still_runs_the_model(
    tiny_rm: Path,
    hh_pairs: list,  # type: ignore[type-arg]
    tmp_path: Path,
) -> None:
    store = RunStore(tmp_path / "run")
    store.write_pairs(hh_pairs[:4])
    specs = [RMSpec(name="hf", spec=str(tiny_rm), role="pre")]
    score_run(store, specs)
    res = score_run(store, specs, run_self_check=True)
    assert res.rms[0].loaded and res.self_checks[0].passed
