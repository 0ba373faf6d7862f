"""``seal_audit.score`` with models in memory (issue 17 item 2): a real tiny DeBERTa RM as a
transformers (model, tokenizer) pair and as a pipeline gives the rewards the same weights give
through ``hf:DIR``; a callable is batched and cached per batch; a DataFrame and a datasets.Dataset
are read like the file they came from. Real hh-rlhf pairs throughout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import seal_audit

# ../shared beside the checkout, wherever it is (a missing split fails in the tests, never skips)
HH = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
)


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_rm: Path) -> tuple[Any, Any]:
    import transformers

    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(tiny_rm)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(tiny_rm))
    return model, tok


@pytest.fixture(scope="module")
def hh_frame(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    from seal_audit.sources import load_pairs

    pairs = load_pairs(HH, limit=30)
    return pd.DataFrame(
        {
            "prompt": [p.context for p in pairs],
            "good": [p.chosen for p in pairs],
            "bad": [p.rejected for p in pairs],
        }
    )


def _rewards(run: seal_audit.Run) -> pd.DataFrame:
    df = run.to_pandas("scores")
    return df.pivot_table(index=["pair_id", "side"], columns="rm", values="reward")


def test_public_api_is_listed_and_documented() -> None:
    names = dir(seal_audit)
    assert {"score", "open_run", "run", "export_run", "Run", "LoadOptions"} <= set(names)
    assert "Any" not in names and "TYPE_CHECKING" not in names
    for n in names:
        if n != "__version__":
            doc = getattr(seal_audit, n).__doc__
            assert doc and doc.strip(), n
            assert f"``{n}" in seal_audit.__doc__ or n in seal_audit.__doc__, n
    from seal_audit.score import score_run  # the SCORE stage package is still importable

    assert callable(score_run) and callable(seal_audit.score)  # the package, callable (test_public_api.py)


def test_transformers_model_pipeline_and_dir_agree(
    model_and_tokenizer: tuple[Any, Any], tiny_rm: Path, tmp_path: Path
) -> None:
    import transformers

    model, tok = model_and_tokenizer
    pipe = transformers.pipeline("text-classification", model=model, tokenizer=tok)
    run = seal_audit.score(
        str(HH),
        rm={"dir": f"hf:{tiny_rm}", "mem": (model, tok), "pipe": pipe},
        pre="dir",
        post="mem",
        out=tmp_path / "run",
        load={"limit": 25},
        progress=False,
    )
    assert isinstance(run, seal_audit.Run) and run.stats is None
    assert {n: r.role for n, r in run.manifest.rms.items()} == {"dir": "pre", "mem": "post", "pipe": "extra"}
    r = _rewards(run)
    assert len(r) == 50
    assert (r["mem"] - r["dir"]).abs().max() < 1e-5
    assert (r["pipe"] - r["dir"]).abs().max() < 1e-5
    assert r["dir"].std() > 0  # a real model, not a constant


def test_callable_is_batched_and_cached_per_batch(hh_frame: pd.DataFrame, tmp_path: Path) -> None:
    calls: list[int] = []

    def length_rm(items: list[tuple[str, str]]) -> list[float]:
        calls.append(len(items))
        return [float(len(r)) for _c, r in items]

    load = {"prompt_col": "prompt", "chosen_col": "good", "rejected_col": "bad"}
    run = seal_audit.score(hh_frame, length_rm, out=tmp_path / "run", batch_size=7, load=load, progress=False)
    assert calls and max(calls) <= 7 and sum(calls) <= 60
    r = _rewards(run)
    pairs = run.to_pandas("pairs").set_index("pair_id")
    for (pid, side), v in r["rm"].items():
        assert v == len(pairs.at[pid, side])
    calls.clear()
    again = seal_audit.score(
        hh_frame, length_rm, out=tmp_path / "run", batch_size=7, load=load, progress=False
    )
    assert calls == []  # every batch was cached
    pd.testing.assert_frame_equal(_rewards(again), r)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stages"]["score"]["status"] == "complete"


def test_dataframe_and_dataset_read_like_the_file(hh_frame: pd.DataFrame, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    load = {"prompt_col": "prompt", "chosen_col": "good", "rejected_col": "bad"}
    path = tmp_path / "pairs.jsonl"
    hh_frame.to_json(path, orient="records", lines=True)
    ids = {}
    for name, pairs in (
        ("file", str(path)),
        ("frame", hh_frame),
        ("dataset", datasets.Dataset.from_pandas(hh_frame)),
    ):
        run = seal_audit.score(
            pairs, lambda items: [0.0] * len(items), out=tmp_path / name, load=load, progress=False
        )
        ids[name] = sorted(run.to_pandas("pairs")["pair_id"])
    assert ids["file"] == ids["frame"] == ids["dataset"] and len(ids["file"]) == 30


def test_bad_inputs_are_named(model_and_tokenizer: tuple[Any, Any], tmp_path: Path) -> None:
    model, _tok = model_and_tokenizer
    with pytest.raises(seal_audit.SealError, match="needs its tokenizer"):
        seal_audit.score(str(HH), model, out=tmp_path / "a", load={"limit": 3}, progress=False)
    with pytest.raises(seal_audit.SealError, match="returned 1 rewards for"):
        seal_audit.score(str(HH), lambda items: [1.0], out=tmp_path / "b", load={"limit": 3}, progress=False)
    with pytest.raises(seal_audit.SealError, match="expected a file path, a pandas DataFrame"):
        seal_audit.score(42, lambda items: [0.0] * len(items), out=tmp_path / "c", progress=False)
    with pytest.raises(seal_audit.SealError, match=r"role given to unknown RM\(s\) \['x'\]"):
        seal_audit.score(
            str(HH), lambda items: [0.0] * len(items), post="x", out=tmp_path / "d", progress=False
        )


def test_config_with_a_model_in_memory(model_and_tokenizer: tuple[Any, Any], tmp_path: Path) -> None:
    toml = tmp_path / "seal.toml"
    toml.write_text(
        f'[run]\nout = "{tmp_path / "run"}"\nreport = false\n'
        f'[[data]]\npath = "{HH}"\nlimit = 40\n'
        '[[rms]]\nname = "pre"\nspec = "length_tokens"\nrole = "pre"\n'
        '[[rms]]\nname = "post"\nspec = "memory:post"\nrole = "post"\n'
        '[labels]\nfeaturizers = ["offline"]\n[analysis]\nn_bootstrap = 20\n',
        encoding="utf-8",
    )
    with pytest.raises(seal_audit.SealError, match="names a model held in memory"):
        seal_audit.run(toml)  # without the model: one clear error, naming how to pass it
    run = seal_audit.run(toml, models={"post": model_and_tokenizer})
    assert run.stats is not None and run.manifest.rms["post"].spec == "memory:post"
    assert 0.0 <= run.stats.resistance.rate <= 1.0
    direct = seal_audit.score(
        str(HH), {"post": model_and_tokenizer}, out=tmp_path / "direct", load={"limit": 40}, progress=False
    )
    pd.testing.assert_series_equal(_rewards(run)["post"], _rewards(direct)["post"], atol=1e-6)


def test_a_bad_dataframe_row_is_named_by_its_position(tmp_path: Path) -> None:
    """Errors name the caller's DataFrame and row, not the temporary Parquet file it goes through."""
    frame = pd.DataFrame(
        {"prompt": ["\n\nHuman: hi\n\nAssistant:"] * 4, "good": ["a", "b", None, "d"], "bad": list("wxyz")}
    )
    load = {"prompt_col": "prompt", "chosen_col": "good", "rejected_col": "bad"}
    with pytest.raises(seal_audit.InputError) as err:
        seal_audit.score(
            frame, lambda items: [0.0] * len(items), out=tmp_path / "r", load=load, progress=False
        )
    msg = str(err.value)
    assert msg.startswith("DataFrame(4 rows), record 3, field 'good'") and "row 2 by position" in msg, msg
    assert "seal-api-" not in msg and ".parquet" not in msg, msg
