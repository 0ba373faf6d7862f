"""The packed forward's attention kernel (``attention.c``), built on first use with the host's compiler.

Why built here and not shipped as a wheel: the kernel is compiled with ``-march=native`` for the
CPU it runs on, and seal-audit stays a pure-Python package that installs without a compiler.
Where there is no working C compiler (or the build, the load or the self-check fails), the packed
forward keeps torch's ``scaled_dot_product_attention``; ``load()`` returns None and
``unavailable_reason()`` says why. The built library is cached under the user's cache directory,
keyed by the source, the compiler, its flags and the CPU, so a shared home directory on a cluster
with mixed CPUs never loads a library built for another CPU; its name carries a digest of its
content, checked before it is loaded, so a damaged file is rebuilt instead of crashing ``dlopen``.

Every build is checked before use: the kernel's output on a few random problems must match a
float64 NumPy reference (``SELF_CHECK_TOLERANCE``), so a miscompiled library is refused, not used.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from seal_audit.backends.reward._runtime import import_torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("attention.c")
CFLAGS = ("-O3", "-march=native", "-std=gnu11", "-fPIC", "-shared", "-pthread")
BUILD_TIMEOUT_S = 120
SELF_CHECK_TOLERANCE = 1e-5
"""Largest |kernel - float64 reference| accepted on the self-check's unit-scale problems (fp32
attention, exp to about 1 ulp: the measured error is about 1e-6)."""

_ARGTYPES = [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 4 + [ctypes.c_int]


def cache_dir() -> Path:
    """Where built kernels are kept: ``$XDG_CACHE_HOME/seal-audit/native`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "seal-audit" / "native"


class NativeAttention:
    """ctypes handle on a built, self-checked kernel."""

    def __init__(self, lib: ctypes.CDLL, path: Path) -> None:
        self.path = path
        self._fn = lib.seal_attention
        self._fn.argtypes = _ARGTYPES
        self._fn.restype = ctypes.c_int

    def __call__(self, qkv: Any, out: Any, starts: Any, lens: Any, heads: int, threads: int) -> bool:
        """Attention of every text into ``out`` ((tokens, hidden), float32, contiguous); False when
        the kernel could not run (out of memory, bad shapes): the caller then computes it otherwise.

        ``qkv``: (tokens, 3 hidden) float32 contiguous, Q | K | V; ``starts``/``lens``: int64 first
        row and length of each text. ctypes releases the GIL for the call. Shapes, dtypes, layout
        and text bounds are checked first (ValueError): the C code trusts its pointers."""
        _check_layout(qkv, out, starts, lens, heads)
        hidden = int(out.shape[1])
        rc = self._fn(
            qkv.data_ptr(),
            out.data_ptr(),
            starts.data_ptr(),
            lens.data_ptr(),
            int(lens.shape[0]),
            heads,
            hidden // heads,
            hidden,
            threads,
        )
        return bool(rc == 0)


def _check_layout(qkv: Any, out: Any, starts: Any, lens: Any, heads: int) -> None:
    torch = import_torch()
    tokens, hidden = (int(x) for x in out.shape)
    if tuple(qkv.shape) != (tokens, 3 * hidden) or heads <= 0 or hidden % heads:
        raise ValueError(f"attention shapes: qkv {tuple(qkv.shape)}, out {tuple(out.shape)}, {heads} heads")
    for name, t, dtype in (
        ("qkv", qkv, torch.float32),
        ("out", out, torch.float32),
        ("starts", starts, torch.int64),
        ("lens", lens, torch.int64),
    ):
        if t.dtype != dtype or not t.is_contiguous() or t.device.type != "cpu":
            raise ValueError(
                f"attention {name}: needs a contiguous CPU {dtype} tensor, got {t.dtype} on {t.device}"
            )
    if starts.shape != lens.shape or starts.dim() != 1:
        raise ValueError("attention starts and lens: one int64 entry per text each")
    if len(lens) and (
        bool((starts < 0).any()) or bool((lens < 0).any()) or int((starts + lens).max()) > tokens
    ):
        raise ValueError(f"attention texts run outside the {tokens} rows")


def supports(hidden: int, heads: int) -> bool:
    """The kernel's shapes: head size a multiple of 16 (MiniLM: 32; BERT-base: 64)."""
    return heads > 0 and hidden % heads == 0 and (hidden // heads) % 16 == 0


@functools.cache
def _load() -> tuple[NativeAttention | None, str | None]:
    try:
        return _build_and_check(), None
    except _Unavailable as exc:
        log.info("native attention kernel unavailable (torch attention is used): %s", exc)
        return None, str(exc)


def load() -> NativeAttention | None:
    """The kernel, built and checked once per process; None where it is unavailable."""
    return _load()[0]


def unavailable_reason() -> str | None:
    """Why ``load()`` is None, in one line; None when the kernel is available."""
    return _load()[1]


class _Unavailable(Exception):
    pass


def _compiler() -> str:
    cc = os.environ.get("CC")
    if cc:
        if shutil.which(cc.split()[0]) is None:
            raise _Unavailable(f"no C compiler: {cc.split()[0]!r} (from CC) is not found")
        return cc
    found = next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    if found is None:
        raise _Unavailable("no C compiler (set CC, or install gcc or clang)")
    return found


def _cpu_signature() -> str:
    """The CPU's model and feature flags: what ``-march=native`` compiles for."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    fields = {"model name", "flags", "Features", "CPU part"}
    keep = [ln for ln in text.split("\n\n", 1)[0].splitlines() if ln.split(":")[0].strip() in fields]
    return f"{platform.machine()}\n" + "\n".join(sorted(keep))


def _build_and_check() -> NativeAttention:
    cc = _compiler()
    try:
        version = subprocess.run(
            [*cc.split(), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise _Unavailable(f"compiler {cc!r} does not run: {exc}") from exc
    source = SOURCE.read_bytes()
    key = hashlib.sha256(
        b"\0".join(
            [source, cc.encode(), version.encode(), " ".join(CFLAGS).encode(), _cpu_signature().encode()]
        )
    ).hexdigest()[:20]
    target = _cached(key) or _build(cc, key)
    try:
        kernel = NativeAttention(ctypes.CDLL(str(target)), target)
    except OSError as exc:
        raise _Unavailable(f"cannot load {target}: {exc}") from exc
    error = self_check(kernel)
    if error > SELF_CHECK_TOLERANCE:
        raise _Unavailable(f"{target} failed its self-check (error {error:.1e} > {SELF_CHECK_TOLERANCE:.0e})")
    return kernel


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _cached(key: str) -> Path | None:
    """A cached build for ``key`` whose content matches the digest in its name, or None.

    Why the digest: ``dlopen`` of a truncated or overwritten library can kill the process with
    SIGBUS, which no Python code can catch. A file that does not match is deleted and rebuilt."""
    for path in sorted(cache_dir().glob(f"attention-{key}-*.so")):
        try:
            if _digest(path) == path.stem.rsplit("-", 1)[1]:
                return path
            path.unlink()
            log.info("native attention kernel: deleted the damaged build %s", path)
        except OSError:
            continue
    return None


def _build(cc: str, key: str) -> Path:
    """Compile ``SOURCE`` into the cache as ``attention-<key>-<digest>.so``; its path."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"attention-{key}", suffix=".so.tmp", dir=folder)
        os.close(fd)
    except OSError as exc:
        raise _Unavailable(f"cannot write to {folder}: {exc}") from exc
    try:
        done = subprocess.run(
            [*cc.split(), *CFLAGS, "-o", tmp, str(SOURCE)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
        if done.returncode != 0:
            first = next((ln for ln in done.stderr.splitlines() if "error" in ln), done.stderr.strip()[:200])
            raise _Unavailable(f"{cc} could not build {SOURCE.name}: {first}")
        os.chmod(
            tmp, 0o755
        )  # mkstemp's 0600 would survive the link: others sharing the cache could not load it
        target = folder / f"attention-{key}-{_digest(Path(tmp))}.so"
        os.replace(tmp, target)  # atomic: concurrent builders (test workers, Ray actors) race safely
        return target
    except (OSError, subprocess.SubprocessError) as exc:
        raise _Unavailable(f"building {SOURCE.name} with {cc} failed: {exc}") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


def reference(qkv: np.ndarray, starts: np.ndarray, lens: np.ndarray, heads: int) -> np.ndarray:
    """What the kernel computes, in float64 NumPy: softmax(Q K^T / sqrt(d)) V per text and head."""
    hidden = qkv.shape[1] // 3
    d = hidden // heads
    out = np.zeros((qkv.shape[0], hidden))
    for s, n in zip(starts.tolist(), lens.tolist(), strict=True):
        if n == 0:
            continue
        block = qkv[s : s + n].astype(np.float64)
        for h in range(heads):
            q, k, v = (block[:, part * hidden + h * d : part * hidden + (h + 1) * d] for part in range(3))
            z = q @ k.T / np.sqrt(d)
            p = np.exp(z - z.max(axis=1, keepdims=True))
            out[s : s + n, h * d : (h + 1) * d] = (p / p.sum(axis=1, keepdims=True)) @ v
    return out


def self_check(kernel: NativeAttention) -> float:
    """Largest error of ``kernel`` against ``reference`` on texts of 1-70 tokens, two head sizes."""
    torch = import_torch()
    rng = np.random.default_rng(0)
    worst = 0.0
    for heads, d, lengths in ((2, 32, (1, 7, 16, 33, 70)), (1, 48, (5, 31, 32))):
        hidden = heads * d
        lens = np.array(lengths, dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        qkv = rng.normal(size=(int(lens.sum()), 3 * hidden)).astype(np.float32)
        out = torch.full((qkv.shape[0], hidden), float("nan"))
        ok = kernel(torch.from_numpy(qkv), out, torch.from_numpy(starts), torch.from_numpy(lens), heads, 2)
        if not ok:
            return float("inf")
        got = out.numpy()
        if not np.isfinite(got).all():
            return float("inf")
        worst = max(worst, float(np.abs(got - reference(qkv, starts, lens, heads)).max()))
    return worst
