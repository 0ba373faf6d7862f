"""`seal run` with `[run] engine = "ray"`: scoring and labeling on a private Ray instance give the same
stats.json as the local engine, and the instance is gone afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytestmark = pytest.mark.ray

CONFIG = """
[run]
out = "{out}"
engine = "{engine}"
report = false

[[data]]
path = "{data}"
limit = 30

[[rms]]
name = "post"
role = "post"
spec = "length_chars"

[[rms]]
name = "pre"
role = "pre"
spec = "length_tokens"

[labels]
featurizers = ["sentiment", "refusal"]

[analysis]
n_bootstrap = 50
"""


def test_ray_engine_in_the_pipeline_matches_local(tmp_path: Path, hh_path: Path) -> None:
    # a private, short Ray temp dir (socket paths are limited to ~107 bytes): its path is in every
    # raylet and gcs_server command line, so the leftover check below sees only this command's instance,
    # not another Ray on the same machine (a parallel test worker, a user's cluster)
    ray_tmp = tempfile.mkdtemp(prefix="sealray", dir="/tmp")
    stats = {}
    try:
        for engine in ("local", "ray"):
            cfg = tmp_path / f"{engine}.toml"
            cfg.write_text(CONFIG.format(out=tmp_path / engine, engine=engine, data=hh_path))
            out = subprocess.run(
                [sys.executable, "-m", "seal_audit", "run", str(cfg)],
                capture_output=True,
                text=True,
                timeout=600,
                env={**os.environ, "RAY_TMPDIR": ray_tmp},
            )
            assert out.returncode == 0, out.stderr[-3000:]
            stats[engine] = (tmp_path / engine / "stats.json").read_bytes()
            if engine == "ray":
                assert "ray: started a local instance" in out.stderr
        assert stats["ray"] == stats["local"]
        # the private instance is shut down with the command
        leftover = subprocess.run(
            ["pgrep", "-f", f"(raylet|gcs_server).*{ray_tmp}"], capture_output=True, text=True
        )
        assert leftover.stdout.strip() == "", leftover.stdout
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
