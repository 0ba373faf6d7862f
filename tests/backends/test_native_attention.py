"""The C attention kernel (``backends/embed/attention.c``, built by ``native.py``).

Checked against a float64 NumPy reference and torch's own ``scaled_dot_product_attention`` on the
shapes that stress its blocking (lengths around multiples of 8, 16 and 32, one token, empty texts,
head sizes 16-64), for thread-count invariance (bit for bit), after ``fork`` and under concurrent
callers; the build's failure paths are driven with a missing compiler and a broken source.
"""

from __future__ import annotations

import multiprocessing
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from seal_audit.backends.embed import native  # noqa: E402
from seal_audit.backends.embed.encoder import TextEncoder  # noqa: E402
from seal_audit.data.errors import ConfigError  # noqa: E402


@pytest.fixture(scope="module")
def kernel(native_kernel: native.NativeAttention) -> native.NativeAttention:
    return native_kernel  # skips only where there is no C compiler at all (see conftest)


def _problem(lengths: list[int], heads: int, d: int, scale: float = 1.0, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    lens = np.array(lengths, dtype=np.int64)
    starts = (np.cumsum(lens) - lens).astype(np.int64)
    qkv = (rng.normal(size=(int(lens.sum()), 3 * heads * d)) * scale).astype(np.float32)
    return qkv, starts, lens


def _run(
    kernel: native.NativeAttention,
    qkv: np.ndarray,
    starts: np.ndarray,
    lens: np.ndarray,
    heads: int,
    threads: int,
) -> np.ndarray:
    out = torch.full((qkv.shape[0], qkv.shape[1] // 3), float("nan"))
    assert kernel(
        torch.from_numpy(qkv), out, torch.from_numpy(starts), torch.from_numpy(lens), heads, threads
    )
    return out.numpy()


@pytest.mark.parametrize(
    ("heads", "d", "lengths"),
    [
        (12, 32, [20, 1, 7, 8, 9, 15, 16, 17]),
        (2, 32, [31, 32, 33, 63, 64, 65]),
        (2, 64, [255, 256, 257]),
        (4, 16, [1, 2, 3, 100]),
        (1, 48, [40, 0, 12]),  # head size 48: one 32-wide and one 16-wide output pass; an empty text
        (1, 32, [512]),
    ],
)
def test_kernel_matches_float64_reference_and_torch(
    kernel: native.NativeAttention, heads: int, d: int, lengths: list[int]
) -> None:
    qkv, starts, lens = _problem(lengths, heads, d)
    got = _run(kernel, qkv, starts, lens, heads, threads=2)
    assert np.isfinite(got).all()  # every row written, none left NaN
    want = native.reference(qkv, starts, lens, heads)
    assert float(np.abs(got - want).max()) < 1e-5
    # torch's attention on the same problem, text by text
    hidden = heads * d
    for s, n in zip(starts.tolist(), lens.tolist(), strict=True):
        if n == 0:
            continue
        q, k, v = torch.from_numpy(qkv[s : s + n]).view(1, n, 3, heads, d).permute(2, 0, 3, 1, 4).unbind(0)
        ref = torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, hidden)
        assert float(np.abs(got[s : s + n] - ref.numpy()).max()) < 1e-5


def test_large_scores_stay_finite_and_exact(kernel: native.NativeAttention) -> None:
    """Scores in the hundreds (one key dominates): the row maximum is subtracted before exp."""
    qkv, starts, lens = _problem([50, 3], heads=2, d=32, scale=6.0, seed=2)
    got = _run(kernel, qkv, starts, lens, 2, threads=2)
    want = native.reference(qkv, starts, lens, 2)
    assert np.isfinite(got).all()
    assert float(np.abs(got - want).max()) < 1e-4 * float(np.abs(want).max())


def test_thread_count_does_not_change_a_bit(kernel: native.NativeAttention) -> None:
    qkv, starts, lens = _problem([37, 5, 130, 64, 1, 90], heads=12, d=32, seed=4)
    one = _run(kernel, qkv, starts, lens, 12, threads=1)
    for threads in (2, 3, 7):  # more threads than texts x heads shares and than cores
        assert np.array_equal(_run(kernel, qkv, starts, lens, 12, threads=threads), one)


def test_bad_shapes_are_refused_not_computed(kernel: native.NativeAttention) -> None:
    assert native.supports(384, 12) and native.supports(768, 12)
    assert not native.supports(48, 4) and not native.supports(50, 3) and not native.supports(64, 0)
    qkv, starts, lens = _problem([4], heads=4, d=12)
    out = torch.zeros(4, 48)
    assert not kernel(torch.from_numpy(qkv), out, torch.from_numpy(starts), torch.from_numpy(lens), 4, 2)


def test_layouts_the_c_code_cannot_take_are_errors(kernel: native.NativeAttention) -> None:
    qkv, starts, lens = _problem([5, 6], heads=2, d=32)
    q, s, n = torch.from_numpy(qkv), torch.from_numpy(starts), torch.from_numpy(lens)
    out = torch.empty(11, 64)
    bad = [
        ((q[:, :96], out, s, n), "shapes"),
        ((q.double(), out, s, n), "qkv: needs a contiguous CPU torch.float32"),
        ((q, torch.empty(64, 11).t(), s, n), "out: needs a contiguous"),
        ((q, out, s.int(), n), "starts: needs"),
        ((q, out, s, n[:1]), "one int64 entry per text"),
        ((q, out, s, n + 1), "outside the 11 rows"),
        ((q, out, s - 1, n), "outside the 11 rows"),
    ]
    for args, why in bad:
        with pytest.raises(ValueError, match=why):
            kernel(*args, heads=2, threads=2)


def _child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    k = native.load()
    assert k is not None
    qkv, starts, lens = _problem([33, 70], heads=2, d=32, seed=6)
    got = _run(k, qkv, starts, lens, 2, threads=2)
    queue.put(float(np.abs(got - native.reference(qkv, starts, lens, 2)).max()))


def test_a_forked_child_gets_a_pool_of_its_own(kernel: native.NativeAttention) -> None:
    """The parent's worker threads do not exist after fork; a child that waited for them would hang."""
    _run(kernel, *_problem([64, 64], heads=2, d=32), 2, threads=2)  # the parent's pool is running
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung in the kernel")
    assert child.exitcode == 0
    assert queue.get(timeout=5) < 1e-5


def test_concurrent_callers_each_get_their_own_result(kernel: native.NativeAttention) -> None:
    problems = [_problem([20 + 7 * i, 45], heads=2, d=32, seed=10 + i) for i in range(4)]
    want = [native.reference(*p, 2) for p in problems]
    errors: list[float] = [float("inf")] * len(problems)

    def call(i: int) -> None:
        worst = 0.0
        for _ in range(20):
            worst = max(worst, float(np.abs(_run(kernel, *problems[i], 2, threads=2) - want[i]).max()))
        errors[i] = worst

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(problems))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert max(errors) < 1e-5


def test_self_check_refuses_a_wrong_kernel(kernel: native.NativeAttention) -> None:
    """Fault injection: a kernel that writes zeros fails the check a miscompiled build would."""

    class Zeros:
        def __call__(self, qkv, out, starts, lens, heads, threads) -> bool:  # type: ignore[no-untyped-def]
            out.zero_()
            return True

    assert native.self_check(kernel) < native.SELF_CHECK_TOLERANCE
    assert native.self_check(Zeros()) > native.SELF_CHECK_TOLERANCE  # type: ignore[arg-type]


def test_builds_are_cached_per_source_and_failures_say_why(
    kernel: native.NativeAttention, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    built = native._build_and_check()
    assert built.path.parent == tmp_path / "cache" / "seal-audit" / "native"
    assert [p.name for p in built.path.parent.iterdir()] == [built.path.name]  # no temporary left
    assert native._build_and_check().path == built.path  # the second load reuses the build
    assert stat.S_IMODE(built.path.stat().st_mode) == 0o755  # loadable by others sharing the cache
    # a damaged build (cut short, as by a full disk) is found by its digest and rebuilt, never loaded:
    # dlopen of a truncated library can kill the process with SIGBUS
    data = built.path.read_bytes()
    cut = built.path.with_suffix(".cut")
    cut.write_bytes(data[:1000])
    cut.replace(
        built.path
    )  # a new file: this process has the old one mapped, truncating it would SIGBUS here
    rebuilt = native._build_and_check()
    assert rebuilt.path.read_bytes() == data or native.self_check(rebuilt) < native.SELF_CHECK_TOLERANCE
    assert [p.name for p in rebuilt.path.parent.iterdir()] == [rebuilt.path.name]
    assert rebuilt.path.stat().st_size > 1000
    monkeypatch.setenv("CC", "ccache-that-is-not-installed gcc")
    with pytest.raises(
        native._Unavailable, match="no C compiler: 'ccache-that-is-not-installed' \\(from CC\\)"
    ):
        native._build_and_check()
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(native._Unavailable, match="no C compiler"):
        native._build_and_check()
    monkeypatch.delenv("CC")
    broken = tmp_path / "attention.c"
    broken.write_text("int seal_attention(void) { return oops; }\n", encoding="utf-8")
    monkeypatch.setattr(native, "SOURCE", broken)
    with pytest.raises(native._Unavailable, match=r"could not build attention\.c: .*oops"):
        native._build_and_check()
    assert sorted(p.suffix for p in built.path.parent.iterdir()) == [".so"]  # the failed build left nothing


def test_encoder_native_choices(kernel: native.NativeAttention, hh_pairs: list) -> None:
    on = TextEncoder(None, max_length=96)
    off = TextEncoder(None, max_length=96, native=False)
    assert on.packed is not None and on.packed.native is not None
    assert off.packed is not None and off.packed.native is None
    assert on.identity["attention"] == "native" and "attention" not in off.identity
    items = [(p.context_for(s), p.response(s)) for p in hh_pairs[:30] for s in ("chosen", "rejected")]
    encoded = on.encode_pairs(items)
    a, b = on.embed_batch(encoded), off.embed_batch(encoded)
    assert float(np.abs(a - b).max()) < 1e-5
    assert TextEncoder(None, max_length=96, native=True).packed.native is not None  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="no native attention kernel: it runs in the packed forward only"):
        TextEncoder(None, packed=False, native=True)


def test_kernel_that_cannot_run_falls_back_to_torch(hh_pairs: list) -> None:
    """Fault injection at the edge: the kernel reports failure (out of memory); every layer then
    uses torch's attention and the embeddings are those of the torch path."""
    enc = TextEncoder(None, max_length=64)
    ref = TextEncoder(None, max_length=64, native=False)
    calls: list[int] = []

    class Failing:
        def __call__(self, *args: object) -> bool:
            calls.append(1)
            return False

    assert enc.packed is not None
    enc.packed.native = Failing()  # type: ignore[assignment]
    encoded = enc.encode_pairs([(p.context_for("chosen"), p.response("chosen")) for p in hh_pairs[:8]])
    assert np.array_equal(enc.embed_batch(encoded), ref.embed_batch(encoded))
    assert len(calls) == 6  # asked once per layer
