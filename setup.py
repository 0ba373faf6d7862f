"""Build hook only (all metadata is in pyproject.toml): the wheel carries the repository's LICENSE and
docs/results.md inside the package (``seal_audit/_docs/``), so ``seal docs results`` works from an
installed wheel while the repository keeps one copy of each file."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {"results.md": ROOT / "docs" / "results.md", "LICENSE": ROOT / "LICENSE"}


class BuildPyWithDocs(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "seal_audit" / "_docs"
        target.mkdir(parents=True, exist_ok=True)
        for name, source in SHIPPED.items():
            if not source.is_file():
                raise SystemExit(f"cannot build seal-audit: {source} is missing")
            (target / name).write_bytes(source.read_bytes())


setup(cmdclass={"build_py": BuildPyWithDocs})
