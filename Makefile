# seal-audit: `make demo` (set up + main job), `make test` (set up + every check), `make install`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test lint typecheck imports pytest browser llama-tools bench clean

install: $(STAMP)

# torch is pinned first: an unpinned torch (or a package pulling it in) would fetch a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[all,dev]"
	touch $(STAMP)

demo: install
	$(VENV)/bin/seal demo --out seal-demo

browser:
	@bash scripts/ensure-chromium.sh

# The real llama-cpp-python server of tests/llamaserver (built once into ~/.cache; never fails the
# build: without a usable server the tests skip and say why; SEAL_REQUIRE_LLAMA=1 makes that a failure).
llama-tools:
	@bash scripts/ensure-llama-server.sh || true

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: install
	$(VENV)/bin/mypy

imports: install
	$(VENV)/bin/lint-imports

# Two workers: one runs the real llama.cpp-server and Ray tests in turn (tests/conftest.py HEAVY),
# the other everything else. SEAL_REQUIRE_LLAMA=1: a missing real server fails the run instead of skipping
# (`make test SEAL_REQUIRE_LLAMA=0` on a machine that cannot build it).
PYTEST_WORKERS ?= 2
SEAL_REQUIRE_LLAMA ?= 1
export SEAL_REQUIRE_LLAMA
pytest: install browser llama-tools
	$(PY) -m pytest -q -n $(PYTEST_WORKERS)

# Setup runs in parallel: the llama.cpp compile (CPU) overlaps the venv install (network, disk).
test:
	$(MAKE) -j3 install browser llama-tools
	$(MAKE) lint typecheck imports
	$(MAKE) pytest

bench: install
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
