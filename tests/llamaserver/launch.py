"""Start llama-cpp-python's own OpenAI-compatible server (``python -m llama_cpp.server``), unchanged
except for one model parameter: ``use_extra_bufts = False``.

Why: on CPUs with AMX (Sapphire Rapids and later) llama.cpp puts Q4/Q8 weights into AMX / repacked
"extra" buffers, and on machines whose kernel or sandbox does not hand the process AMX tile state
the first prompt longer than one token dies with a segmentation fault (measured here:
``create_chat_completion`` segfaults, a one-token prompt does not). Plain CPU buffers are what
llama.cpp uses everywhere else. Run with the tools venv's Python; arguments go to the server.
"""

import os
import runpy

import llama_cpp.llama_cpp as bindings  # the ctypes module Llama.__init__ reads its defaults from

if os.environ.get("SEAL_LLAMA_EXTRA_BUFTS") != "1":
    _default_params = bindings.llama_model_default_params

    def _params() -> object:
        p = _default_params()
        p.use_extra_bufts = False
        return p

    bindings.llama_model_default_params = _params

runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
