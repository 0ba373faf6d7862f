"""Install as written (issue 17 item 1): the wheel built from this checkout, installed with the
``[local]`` extra into a fresh virtualenv outside the repository, runs ``seal demo``.

Offline: the wheel is built without build isolation and installed with ``--no-index --no-deps``;
the fresh venv sees the project venv's site-packages through a ``.pth`` line (so the extras'
packages are there, as ``pip install`` would have put them), and every requirement of
``seal-audit[local]`` is checked against what that venv can import, besides ``pip check``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # build from a clean copy of what the wheel is made of: an in-tree build/ directory would keep
    # files of earlier builds (a deleted module would still ship)
    tree = tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (tree / "docs").mkdir()
    shutil.copy2(ROOT / "docs" / "results.md", tree / "docs" / "results.md")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out)]
    res = subprocess.run([*cmd, str(tree)], capture_output=True, text=True, timeout=300, env=_clean_env())
    assert res.returncode == 0, res.stderr
    (whl,) = out.glob("seal_audit-*.whl")
    return whl


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("venv") / "v"
    venv.create(home, with_pip=True)
    py = home / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the project venv's packages stand in for what pip would download (a plain path line: its own
    # .pth files, such as the editable seal-audit of the checkout, are not processed)
    Path(site, "_project_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    pip = [str(py), "-m", "pip", "-q"]
    # the venv's bundled old setuptools would shadow the project's (torch needs a newer one)
    subprocess.run([*pip, "uninstall", "-y", "setuptools"], check=True, env=_clean_env())
    res = subprocess.run(
        [*pip, "install", "--no-index", "--no-deps", f"{wheel}[local]"],
        capture_output=True,
        text=True,
        env=_clean_env(),
    )
    assert res.returncode == 0, res.stderr
    return home


def test_wheel_ships_license_and_results_reference(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert "seal_audit-0.1.0.dist-info/licenses/LICENSE" in names
        assert z.read("seal_audit/_docs/results.md") == (ROOT / "docs" / "results.md").read_bytes()
        assert z.read("seal_audit/_docs/LICENSE") == (ROOT / "LICENSE").read_bytes()
        assert "seal_audit/templates/paper.toml" in names
        meta = z.read("seal_audit-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in meta
    extras = {line.split(": ", 1)[1] for line in meta.splitlines() if line.startswith("Provides-Extra: ")}
    assert {"hf", "features", "llm", "ray", "local", "all", "dev"} <= extras
    requires = [line.split(": ", 1)[1] for line in meta.splitlines() if line.startswith("Requires-Dist: ")]
    local = [r for r in requires if 'extra == "local"' in r]
    assert sorted(r.split(";")[0].strip() for r in local) == ["seal-audit[features,hf,llm]"]
    assert not any(r.startswith("ray") and 'extra == "local"' in r for r in requires)
    assert [r.split(";")[0].strip() for r in requires if 'extra == "all"' in r] == ["seal-audit[local,ray]"]


def test_fresh_venv_install_runs_demo(fresh_venv: Path, tmp_path: Path) -> None:
    py, seal = fresh_venv / "bin" / "python", fresh_venv / "bin" / "seal"
    env = _clean_env()
    check = subprocess.run([str(py), "-m", "pip", "check"], capture_output=True, text=True, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    # every requirement of seal-audit[local] (hf + features + llm), resolved through the extras
    probe = r"""
import importlib.metadata as md
from packaging.requirements import Requirement
todo, seen, missing = [("seal-audit", {"local"})], set(), []
while todo:
    name, extras = todo.pop()
    for req in map(Requirement, md.requires(name) or []):
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in extras or {""}):
            continue
        if req.name == "seal-audit":
            todo.append(("seal-audit", set(req.extras)))
            continue
        if (req.name, tuple(sorted(req.extras))) in seen:
            continue
        seen.add((req.name, tuple(sorted(req.extras))))
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            missing.append(str(req))
            continue
        if not req.specifier.contains(version, prereleases=True):
            missing.append(f"{req} (have {version})")
import seal_audit
print(seal_audit.__file__)
print(len(seen), "requirements")
print("MISSING", missing)
"""
    res = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith(str(fresh_venv)), lines[0]  # the wheel, not the checkout
    assert int(lines[1].split()[0]) >= 15 and lines[2] == "MISSING []", res.stdout
    docs = subprocess.run(
        [str(seal), "docs", "results"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert docs.returncode == 0 and docs.stdout == (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    lic = subprocess.run(
        [str(py), "-m", "seal_audit.docs", "license"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert lic.returncode == 0 and lic.stdout.startswith("MIT License")
    demo = subprocess.run(
        [str(seal), "demo", "--pairs", "200", "--out", str(tmp_path / "demo"), "-q", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    import json

    summary = json.loads(demo.stdout)
    assert summary["ok"] is True and Path(summary["stats"]).is_file() and Path(summary["report"]).is_file()
    assert any("planted" in line for line in summary["findings"])
