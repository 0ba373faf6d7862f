"""``seal_audit.score``: one name for the public function and the SCORE stage package (issue 17).

The name is the stage package ``seal_audit/score/`` (DESIGN.md's layout), made callable: calling it
calls ``seal_audit.api.score``. Each check runs in a fresh interpreter, because what used to break
depended on import order (a function shadowing the package made ``import seal_audit.score.stage as
m`` an ImportError and ``import seal_audit.score as S`` the function).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HH = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
)

# score 5 real pairs with the length baseline through the public call, printing what came back
CALL = """
run = seal_audit.score({hh!r}, {{"pre": "length_chars", "post": "length_tokens"}}, pre="pre", post="post",
                       out={out!r}, load={{"limit": 5}}, progress=False)
print(json.dumps({{"n": len(run.to_pandas("scores")), "rms": sorted(run.manifest.rms)}}))
"""


def python(code: str) -> dict[str, object]:
    res = subprocess.run(
        [sys.executable, "-c", "import json, sys\n" + code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert res.returncode == 0, res.stderr
    out: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.parametrize(
    "first",
    [
        "import seal_audit",
        "from seal_audit.score import score_run\nimport seal_audit",
        "import seal_audit.score.stage as stage\nimport seal_audit",
        "import seal_audit.score as S\nimport seal_audit\nassert S is seal_audit.score",
        "from seal_audit import score\nimport seal_audit\nassert score is seal_audit.score",
        "import seal_audit.pipeline\nimport seal_audit",
    ],
    ids=["facade", "from-stage", "import-submodule-as", "import-as", "from-facade", "pipeline"],
)
def test_score_is_callable_whatever_was_imported_first(first: str, tmp_path: Path) -> None:
    got = python(first + "\n" + CALL.format(hh=str(HH), out=str(tmp_path / "run")))
    assert got == {"n": 5 * 2 * 2, "rms": ["post", "pre"]}  # 5 pairs x 2 sides x 2 RMs


def test_score_is_the_stage_package_with_the_functions_signature() -> None:
    got = python(
        "import importlib, inspect, seal_audit\n"
        "import seal_audit.score.engine as engine\n"
        "pkg = importlib.import_module('seal_audit.score')\n"
        "from seal_audit.api import score as fn\n"
        "print(json.dumps({'same': seal_audit.score is pkg is sys.modules['seal_audit.score'],\n"
        "  'stage': [hasattr(pkg, n) for n in ('score_run', 'score_texts', 'merge_scores')],\n"
        "  'engine': engine.__name__, 'sig': str(inspect.signature(seal_audit.score)) == str(inspect.signature(fn)),\n"
        "  'params': list(inspect.signature(seal_audit.score).parameters)[:2]}))"
    )
    assert got == {
        "same": True,
        "stage": [True, True, True],
        "engine": "seal_audit.score.engine",
        "sig": True,
        "params": ["pairs", "rm"],
    }


def test_the_facade_stays_cheap() -> None:
    """``import seal_audit`` loads no stage: the package is imported on first use of the name."""
    got = python(
        "import seal_audit\n"
        "before = [m for m in ('seal_audit.score', 'pandas', 'pyarrow', 'torch') if m in sys.modules]\n"
        "listed = 'score' in dir(seal_audit)\n"
        "seal_audit.score\n"
        "print(json.dumps({'before': before, 'listed': listed, 'after': 'seal_audit.score' in sys.modules}))"
    )
    assert got == {"before": [], "listed": True, "after": True}
