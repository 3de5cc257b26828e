"""Peak memory of one call, on calls whose allocations are known exactly."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import numpy as np
import pytest
import torch

from harness.memory import CUDA, NUMPY, ONNXRUNTIME_ARENA, TORCH_CPU, PeakMemory, measure_peak

N = 2_000_000  # float32: 8 MB; float64: 16 MB
SMALL = 64 * 1024  # Python objects and bookkeeping: far below one buffer


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(N, generator=torch.Generator().manual_seed(0))


def test_numpy_float64_copy_counts_under_numpy(x: torch.Tensor) -> None:
    def call() -> torch.Tensor:
        return torch.from_numpy(x.numpy().astype(np.float64))

    peak = measure_peak(call)
    assert peak.by_source[NUMPY] == pytest.approx(8 * N, rel=0.1)
    assert peak.by_source[TORCH_CPU] < SMALL  # from_numpy shares NumPy's buffer
    assert peak.peak_bytes == pytest.approx(8 * N, rel=0.1)


def test_torch_float32_output_counts_under_torch_cpu(x: torch.Tensor) -> None:
    with torch.no_grad():
        peak = measure_peak(lambda: torch.sin(x))
    assert peak.by_source[TORCH_CPU] == pytest.approx(4 * N, rel=0.1)
    assert peak.by_source[NUMPY] < SMALL
    assert peak.peak_bytes == pytest.approx(4 * N, rel=0.1)


def test_a_view_allocates_nothing(x: torch.Tensor) -> None:
    peak = measure_peak(lambda: x[1:])
    assert peak.peak_bytes is not None and peak.peak_bytes < SMALL


def test_temporaries_count_at_their_peak(x: torch.Tensor) -> None:
    # x * 2 (4N) is alive while + 1 allocates the output (4N): the peak is 8N.
    peak = measure_peak(lambda: x * 2 + 1)
    assert peak.by_source[TORCH_CPU] == pytest.approx(8 * N, rel=0.1)


def test_freed_temporaries_do_not_add_up(x: torch.Tensor) -> None:
    def call() -> torch.Tensor:
        for _ in range(3):
            tmp = x.clone()  # each 4N copy freed before the next is made
            del tmp
        return x[:1].clone()

    peak = measure_peak(call)
    assert peak.by_source[TORCH_CPU] == pytest.approx(4 * N, rel=0.1)


def test_both_allocators_are_summed(x: torch.Tensor) -> None:
    def call() -> torch.Tensor:
        halved = x.numpy() * np.float32(0.5)  # NumPy float32: 4N
        return torch.from_numpy(halved).double()  # torch float64: 8N

    peak = measure_peak(call)
    assert peak.by_source[NUMPY] == pytest.approx(4 * N, rel=0.1)
    assert peak.by_source[TORCH_CPU] == pytest.approx(8 * N, rel=0.1)
    assert peak.peak_bytes == sum(peak.by_source.values())
    assert peak.peak_bytes == pytest.approx(12 * N, rel=0.1)


def test_backward_on_a_prebuilt_graph(x: torch.Tensor) -> None:
    a = x.clone().requires_grad_()
    b = x.clone().requires_grad_()
    out = a * b  # the graph saves a and b: nothing of it is allocated by the call
    grad_out = torch.ones(N)

    def call() -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(out, [a, b], grad_out, retain_graph=True)

    peak = measure_peak(call)
    # two float32 gradients, grad_out * b and grad_out * a, returned alive
    assert peak.by_source[TORCH_CPU] == pytest.approx(8 * N, rel=0.1)
    assert peak.by_source[NUMPY] < SMALL


class _NumpySquare(torch.autograd.Function):
    """A NumPy layer whose backward works in float64 and casts back (as the tutorial's)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.from_numpy(x.detach().numpy() ** 2)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        x64 = x.numpy().astype(np.float64)  # 8N
        g64 = np.multiply(x64, grad.numpy())  # 8N more, both alive
        g64 *= 2
        return torch.from_numpy(g64).to(torch.float)  # a float32 tensor, through torch: 4N


def test_numpy_backward_counts_both_allocators(x: torch.Tensor) -> None:
    leaf = x.clone().requires_grad_()
    out = _NumpySquare.apply(leaf)
    grad_out = torch.ones(N)
    peak = measure_peak(lambda: torch.autograd.grad(out, [leaf], grad_out, retain_graph=True))
    assert peak.by_source[NUMPY] == pytest.approx(16 * N, rel=0.1)
    assert peak.by_source[TORCH_CPU] == pytest.approx(4 * N, rel=0.1)


def test_warm_up_keeps_one_off_allocations_out(x: torch.Tensor) -> None:
    cache: list[torch.Tensor] = []
    calls = 0

    def call() -> torch.Tensor:
        nonlocal calls
        calls += 1
        if not cache:
            cache.append(x.clone())  # lazy initialisation, first call only
        return cache[0][:1]

    peak = measure_peak(call, repeat=3)
    assert calls == 4  # one warm-up, three measured
    assert peak.peak_bytes is not None and peak.peak_bytes < SMALL


def test_sources_and_description() -> None:
    small = torch.ones(8)
    peak = measure_peak(lambda: small + 1)
    assert peak.sources == (NUMPY, TORCH_CPU)
    assert set(peak.by_source) == {NUMPY, TORCH_CPU}
    assert peak.not_counted == ()
    assert peak.describe_sources() == "numpy+torch-cpu"

    ort = measure_peak(lambda: small + 1, onnxruntime=True)
    assert ort.not_counted == (ONNXRUNTIME_ARENA,)
    assert ort.describe_sources() == "numpy+torch-cpu; not counted: onnxruntime arena"
    assert ort.columns() == {
        "peak_bytes": ort.peak_bytes,
        "peak_sources": "numpy+torch-cpu; not counted: onnxruntime arena",
    }


def test_describe_without_sources() -> None:
    assert PeakMemory(None).describe_sources() == "nothing counted"


def test_running_profiler_leaves_torch_uncounted() -> None:
    small = torch.ones(8)
    with torch.autograd.profiler.profile(profile_memory=True):
        peak = measure_peak(lambda: small + 1)
    assert TORCH_CPU not in peak.sources
    assert peak.not_counted == (f"{TORCH_CPU} (a profiler was already running)",)
    assert peak.peak_bytes == peak.by_source[NUMPY]


def test_no_global_state_left_behind() -> None:
    small = torch.ones(8)
    assert not tracemalloc.is_tracing()
    gc_enabled = gc.isenabled()
    measure_peak(lambda: small + 1)
    assert not tracemalloc.is_tracing()
    assert not torch._C._autograd._profiler_enabled()
    assert gc.isenabled() == gc_enabled

    tracemalloc.start()
    try:
        measure_peak(lambda: small + 1)
        assert tracemalloc.is_tracing()  # started by someone else: left running
    finally:
        tracemalloc.stop()


def test_a_failing_call_cleans_up() -> None:
    def call() -> None:
        if tracemalloc.is_tracing():
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        measure_peak(call)
    assert not tracemalloc.is_tracing()
    assert not torch._C._autograd._profiler_enabled()


def test_repeat_must_be_positive() -> None:
    with pytest.raises(ValueError, match="repeat"):
        measure_peak(lambda: None, repeat=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the path without CUDA")
def test_cuda_skipped_without_cuda() -> None:
    small = torch.ones(8)
    peak = measure_peak(lambda: small + 1, device="cuda")
    assert CUDA not in peak.sources
    assert peak.not_counted == (f"{CUDA} (CUDA unavailable)",)
    assert peak.describe_sources() == "numpy+torch-cpu; not counted: cuda (CUDA unavailable)"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_output_counts_under_cuda() -> None:
    x = torch.randn(N, device="cuda")
    with torch.no_grad():
        peak = measure_peak(lambda: torch.sin(x), device="cuda")
    assert peak.sources == (NUMPY, TORCH_CPU, CUDA)
    assert peak.by_source[CUDA] == pytest.approx(4 * N, rel=0.1)
    assert peak.by_source[TORCH_CPU] < SMALL

    # a host round trip, as the harness runs NumPy baselines on CUDA
    def roundtrip() -> torch.Tensor:
        return torch.from_numpy(x.cpu().numpy().astype(np.float64)).to("cuda")

    peak = measure_peak(roundtrip, device="cuda")
    assert peak.by_source[TORCH_CPU] == pytest.approx(4 * N, rel=0.1)  # x.cpu()
    assert peak.by_source[NUMPY] == pytest.approx(8 * N, rel=0.1)  # astype
    assert peak.by_source[CUDA] == pytest.approx(8 * N, rel=0.1)  # .to("cuda"), float64
