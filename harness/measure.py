"""Timed regions: what exactly is timed for each phase, and loop calibration.

- ``forward``: ``fn(*inputs)`` under ``torch.no_grad()``.
- ``backward``: ``torch.autograd.grad(output, leaves, grad_output, retain_graph=True)``
  on a graph built once, outside the timed region: backward alone, every gradient
  the layer has (input and parameters), returned fresh each call so nothing
  accumulates and no ``.grad`` needs resetting.

On CUDA the device is synchronized before the clock is read at both ends. A time
function takes a loop count and returns the seconds those loops took (pyperf's
``bench_time_func`` contract); setup stays outside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch

__all__ = ["TimeFunc", "backward_time_func", "calibrate_loops", "forward_time_func", "set_threads"]

TimeFunc = Callable[[int], float]
Clock = Callable[[], float]


def _sync_for(device: str) -> Callable[[], None] | None:
    return torch.cuda.synchronize if device.startswith("cuda") else None


def forward_time_func(
    fn: Callable[..., torch.Tensor],
    inputs: Sequence[torch.Tensor],
    device: str = "cpu",
    clock: Clock = time.perf_counter,
) -> TimeFunc:
    sync = _sync_for(device)
    args = tuple(inputs)

    def time_func(loops: int) -> float:
        with torch.no_grad():
            if sync:
                sync()
            t0 = clock()
            for _ in range(loops):
                fn(*args)
            if sync:
                sync()
            return clock() - t0

    return time_func


def backward_time_func(
    output: torch.Tensor,
    leaves: Sequence[torch.Tensor],
    grad_output: torch.Tensor,
    device: str = "cpu",
    clock: Clock = time.perf_counter,
) -> TimeFunc:
    sync = _sync_for(device)
    wrt = list(leaves)
    grad = grad_output.to(output.dtype)
    autograd = torch.autograd.grad

    def time_func(loops: int) -> float:
        if sync:
            sync()
        t0 = clock()
        for _ in range(loops):
            autograd(output, wrt, grad, retain_graph=True, allow_unused=True)
        if sync:
            sync()
        return clock() - t0

    return time_func


def calibrate_loops(
    time_func: TimeFunc, min_time: float, max_loops: int = 2**20
) -> tuple[int, float]:
    """pyperf's calibration: double the loop count until one value lasts ``min_time``.

    Returns (loops, seconds per call of the last try). One untimed warm-up call first.
    """
    time_func(1)
    loops = 1
    while True:
        elapsed = time_func(loops)
        if elapsed >= min_time or loops >= max_loops:
            return loops, elapsed / loops
        # jump close to the target instead of doubling from 1 for fast calls
        per_call = max(elapsed / loops, 1e-9)
        loops = min(max_loops, max(loops * 2, int(min_time / per_call * 1.2)))


def set_threads(threads: int) -> None:
    """Set torch's intra-op threads and NumPy/SciPy's native pools (threadpoolctl)."""
    from threadpoolctl import threadpool_limits

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    threadpool_limits(limits=threads)
