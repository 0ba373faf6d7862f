"""Torch/transformers plumbing shared by the HF and local-encoder backends (imported lazily)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seal_audit.data.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    import torch

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}


OMP_WAIT_POLICY = "PASSIVE"
"""OpenMP wait policy set (unless the user set one) before torch is first imported.

torch's CPU kernels run each op as an OpenMP parallel region; by default libgomp's idle threads
spin for up to 300,000 iterations at every barrier. When the cores are shared (other jobs, Ray
actors, the tokenizer), the spinning threads take the CPU from the thread that still has work, and
an encoder forward of ~100 ops waits a scheduler time slice at many of them. Measured with
``benchmarks/bench_score.py`` on 2 shared cores (load average 4-6): MiniLM on short texts went from
18-22% to 35-62% of the same run's 2048^3 matmul rate, long texts from 41-46% to 67-70%. Sleeping
at a barrier costs a futex wake-up (microseconds) per op, small next to a batch's milliseconds.
libgomp reads the variable when it is loaded, so it has no effect if torch was imported first."""


def import_torch() -> Any:
    """torch, or the one clear "install the [hf] extra" error (see ``OMP_WAIT_POLICY``)."""
    import os
    import sys

    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("hf", "torch") from exc
    return torch


CPU_ALLOCATOR_MMAP_BYTES = 128 << 20
"""Allocations below this come from glibc's heap (and are reused) while a model runs on the CPU:
above every activation of the models here (MiniLM at 4,096 tokens: 25 MB; DeBERTa-v3-large's FFN
at 4,096 tokens: 64 MB), below the big arrays of the analysis, which still go back to the kernel."""

CPU_ALLOCATOR_TRIM_BYTES = 512 << 20
"""Free memory at the top of the heap kept for reuse rather than returned to the kernel."""

_allocator_tuned = False


def tune_cpu_allocator() -> bool:
    """Keep freed activation buffers in the process instead of returning them to the kernel.

    torch's CPU tensors come from glibc ``malloc``. By default it serves each large allocation
    (over 128 KiB to 32 MiB, adjusted as it goes) with a fresh ``mmap`` and gives it back on free,
    so every activation of every forward pass is page-faulted and zero-filled by the kernel
    again: a memory-bound op on a fresh buffer ran at a quarter of its speed on a reused one
    (``clone`` of a 50 MB tensor, 11.9 ms vs 3.0 ms). ``mallopt`` raises the mmap threshold to
    ``CPU_ALLOCATOR_MMAP_BYTES`` and the trim threshold to ``CPU_ALLOCATOR_TRIM_BYTES``, so freed
    buffers are reused: the MiniLM forward on 256-token texts went from 61-64 % to 68-71 % of the
    same run's matmul rate (Hugging Face forward, ``bench_score.py --workload long``). This is what
    Intel's PyTorch CPU guide gets with jemalloc or tcmalloc, done in-process, for the rest of the
    process's life. The cost: up to the trim threshold of freed memory stays in the process's RSS
    (peak RSS is unchanged). Linux/glibc only; elsewhere a no-op (False).
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = bool(mallopt(m_mmap_threshold, CPU_ALLOCATOR_MMAP_BYTES)) and bool(
        mallopt(m_trim_threshold, CPU_ALLOCATOR_TRIM_BYTES)
    )
    _allocator_tuned = ok
    return ok


def import_transformers() -> Any:
    import_torch()
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("hf", "transformers") from exc
    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return transformers


def choose_device(requested: str | None) -> torch.device:
    """The requested device, else CUDA, then MPS, then CPU."""
    import_torch()
    import torch

    if requested:
        try:
            dev = torch.device(requested)
        except RuntimeError as exc:
            raise ConfigError(f"unknown device '{requested}'") from exc
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device '{requested}' requested but CUDA is not available")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def choose_dtype(requested: str | None, device: torch.device) -> torch.dtype:
    """The requested dtype, else bf16 on CUDA (fp16 where bf16 is unsupported), fp16 on MPS, fp32 on CPU.

    CPU stays fp32 because CPU half-precision kernels are slower than fp32 on most machines and
    the batch-invariance check (1e-4) only holds in fp32.
    """
    import_torch()
    import torch

    if requested:
        key = _DTYPES.get(requested.lower())
        if key is None:
            raise ConfigError(f"unknown dtype '{requested}' (use float32, bfloat16 or float16)")
        dt = getattr(torch, key)
        assert isinstance(dt, torch.dtype)
        return dt
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def default_batch_tokens(device: torch.device) -> int:
    """Token budget per forward pass: big enough to fill a GPU; on CPU, 4,096.

    Measured on CPU with MiniLM (``bench_score.py``, 2 shared cores, in one process per setting):
    on 256-token texts budgets of 2,048 and 4,096 ran at the same rate (65-70% of the matmul
    rate), 512 and 1,024 slower (56-68%, each extra forward pays its barriers); on short texts the
    planner's padding trade-off (``plan_batches``) matters more than the budget. One setting for
    every max_length: the budget only caps a batch, the planner decides where to cut."""
    return 32768 if device.type == "cuda" else 4096


def dir_fingerprint(path: Path) -> str:
    """A cheap content fingerprint of a model directory, so retrained weights invalidate the cache.

    Config and tokenizer files are hashed whole; weight files by name, size and their first and
    last MiB (hashing gigabytes of weights on every run would cost seconds for no practical gain).
    """
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        size = f.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        with open(f, "rb") as fh:
            if size <= 4 << 20:
                h.update(fh.read())
            else:
                h.update(fh.read(1 << 20))
                fh.seek(size - (1 << 20))
                h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data
