"""Timed regions: what exactly is timed for each phase, and loop calibration.

- ``step``: one iteration of a training loop, as the user's runs it. Each call runs
  a forward that records the autograd graph (``fn(*leaves)`` with grad enabled), then
  ``torch.autograd.grad(output, leaves, grad_output)`` for every gradient the layer
  has (input and parameters), *without* ``retain_graph``: the graph is freed by the
  backward, and the next call builds a fresh one. What the forward allocates to save
  for backward, and what the backward frees, is part of the cost, under the worker's
  allocator. Gradients are returned fresh each call, so nothing accumulates. Training
  verdicts are decided on it.
- ``forward``: inference, as a deployed model serves a request: each call enters
  ``torch.inference_mode()`` (native candidates and their TorchScript and compile
  forms) or ``torch.no_grad()`` (NumPy/SciPy baselines: their tensor-to-array bridge
  is what ``no_grad`` code runs), then runs ``fn(*inputs)``; an ONNX Runtime session
  is called bare, as a deployment that never enters torch's modes. Entering the mode
  is part of a request's cost: 2.5 us of torch's 15 us conv2d at n=16 (2026-11-30,
  AVX512), which a loop entering it once per value would leave out. Inference
  verdicts are decided on it.
- ``backward``: ``torch.autograd.grad(output, leaves, grad_output, retain_graph=True)``
  on a graph built once, outside the timed region: backward alone, to show where a
  step's time goes (a step's backward may cost more: its graph is fresh).

Each value of more than one call starts with one untimed call, right before the clock
starts (``warm_first``). Why: a loop of steps keeps the thread pools of torch (OpenMP)
and of NumPy/SciPy's BLAS awake from one call to the next, while the harness's values
are interleaved with other implementations' (paired rounds), long enough for those
pools to go to sleep; waking
them is then timed as the first call's. On this 2-core VM (2026-11-30, AVX512)
torch's conv2d forward at n=128 on 2 threads took 0.06 ms in a loop and 0.16 ms as a
first call after 5 ms of other work; with another process busy on a core, 0.11 ms in
a loop and 15 ms as that first call (a waking thread waits for the busy core), and
the harness timed 13-32 ms per call where the user's loop runs 0.17 ms. The untimed
call leaves the pools as a loop does. A value of one call (a call that lasts
``min_time`` or more) has none: it would double the cost of the largest points, and
such a call re-forms its thread team many times anyway.

On CUDA the device is synchronized before the clock is read at both ends. A time
function takes a loop count and returns the seconds those loops took (pyperf's
``bench_time_func`` contract); setup, and the untimed call, stay outside it.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from harness.errors import inference_mode_only
from harness.outputs import Outputs, differentiable, several

__all__ = [
    "TimeFunc",
    "backward_time_func",
    "calibrate_loops",
    "forward_time_func",
    "served_call",
    "set_threads",
    "step_time_func",
    "warm_first",
]

TimeFunc = Callable[[int], float]
Clock = Callable[[], float]


def warm_first(loops: int) -> bool:
    """Whether a value of ``loops`` calls starts with one untimed call (module
    docstring): every value but one of a single call."""
    return loops > 1


def _sync_for(device: str) -> Callable[[], None] | None:
    return torch.cuda.synchronize if device.startswith("cuda") else None


def forward_time_func(
    fn: Callable[..., torch.Tensor],
    inputs: Sequence[torch.Tensor],
    device: str = "cpu",
    clock: Clock = time.perf_counter,
    inference: bool = False,
    grad_mode: bool = True,
) -> TimeFunc:
    """Forward without a graph, as a served request runs it: each call enters its own
    ``inference_mode`` when ``inference``, else ``no_grad``; with ``grad_mode=False``
    the call is bare (an ONNX Runtime session, which never enters torch's modes)."""
    sync = _sync_for(device)
    args = tuple(inputs)
    mode = _served_mode(inference, grad_mode)

    def time_func(loops: int) -> float:
        if warm_first(loops):
            _call_in(fn, args, mode)  # untimed: wakes the thread pools, as a previous call
        if sync:
            sync()
        if mode is None:
            t0 = clock()
            for _ in range(loops):
                fn(*args)
        else:
            t0 = clock()
            for _ in range(loops):
                with mode():
                    fn(*args)
        if sync:
            sync()
        return clock() - t0

    return time_func


def served_call(
    fn: Callable[..., torch.Tensor],
    inputs: Sequence[torch.Tensor],
    inference: bool = False,
    grad_mode: bool = True,
) -> torch.Tensor:
    """One call as ``forward_time_func`` times each of its calls (same arguments), for
    the checks around the timing, never inside it. A call that fails under
    ``inference_mode`` is tried once under ``no_grad``; where that runs, the error says
    the serving mode is the trigger (``errors.inference_mode_only``; 2026-12-02: a
    compiled native with ``torch.from_numpy`` inside failed a Dynamo guard under
    ``inference_mode`` alone, beside a capability matrix that said compile ✓)."""
    args, mode = tuple(inputs), _served_mode(inference, grad_mode)
    try:
        return _call_in(fn, args, mode)  # type: ignore[no-any-return]
    except Exception as exc:
        if mode is not torch.inference_mode:
            raise
        try:
            _call_in(fn, args, torch.no_grad)
        except Exception:
            raise exc from None
        raise inference_mode_only(exc) from exc


def _served_mode(inference: bool, grad_mode: bool) -> Callable[[], Any] | None:
    """The mode a served call enters: ``inference_mode`` or ``no_grad``; None: bare."""
    if not grad_mode:
        return None
    return torch.inference_mode if inference else torch.no_grad


def _call_in(fn: Callable[..., Any], args: tuple[Any, ...], mode: Callable[[], Any] | None) -> Any:
    """``fn(*args)`` inside ``mode`` unless it is None."""
    if mode is None:
        return fn(*args)
    with mode():
        return fn(*args)


def backward_time_func(
    output: Outputs,
    leaves: Sequence[torch.Tensor],
    grad_output: Outputs,
    device: str = "cpu",
    clock: Clock = time.perf_counter,
) -> TimeFunc:
    sync = _sync_for(device)
    wrt = list(leaves)
    outs, grads = differentiable(output, grad_output)  # every output with a graph
    # one output is handed to autograd as the tensor itself, as it always was
    grad: Outputs
    output, grad = (outs, grads) if several(output) else (outs[0], grads[0])
    autograd = torch.autograd.grad

    def time_func(loops: int) -> float:
        if warm_first(loops):
            autograd(output, wrt, grad, retain_graph=True, allow_unused=True)  # untimed
        if sync:
            sync()
        t0 = clock()
        for _ in range(loops):
            autograd(output, wrt, grad, retain_graph=True, allow_unused=True)
        if sync:
            sync()
        return clock() - t0

    return time_func


def step_time_func(
    fn: Callable[..., Outputs],
    leaves: Sequence[torch.Tensor],
    grad_mask: Sequence[bool],
    grad_output: Outputs,
    device: str = "cpu",
    clock: Clock = time.perf_counter,
    pick: tuple[int, ...] | None = None,
) -> TimeFunc:
    """A training step per call: forward recording the graph, backward freeing it.

    ``leaves`` are the inputs, those with ``grad_mask`` requiring grad; gradients of
    all of those are computed. Grad mode is switched on inside the timed region
    whatever the caller's, so the step records its graph. ``pick``: for a layer of
    several outputs, the indices of those a backward differentiates (those with a
    graph; ``grad_output`` then holds their gradients, in that order)."""
    sync = _sync_for(device)
    args = tuple(leaves)
    wrt = [t for t, m in zip(args, grad_mask, strict=True) if m]
    autograd = torch.autograd.grad
    if pick is None:
        call = fn
    else:

        def call(*xs: torch.Tensor) -> Any:
            out = fn(*xs)
            return tuple(out[i] for i in pick)

    def time_func(loops: int) -> float:
        with torch.enable_grad():
            out = None
            if warm_first(loops):  # untimed: a step, waking the pools as a loop's previous
                out = call(*args)
                autograd(out, wrt, grad_output, allow_unused=True)
            if sync:
                sync()
            t0 = clock()
            for _ in range(loops):
                out = call(*args)
                autograd(out, wrt, grad_output, allow_unused=True)
            if sync:
                sync()
            elapsed = clock() - t0
        del out
        return elapsed

    return time_func


def calibrate_loops(
    time_func: TimeFunc, min_time: float, max_loops: int = 2**20
) -> tuple[int, float]:
    """pyperf's calibration: double the loop count until one value lasts ``min_time``.

    Returns (loops, seconds per call of the last try). One untimed warm-up call first.
    The first try is of 2 calls, so that it starts with the untimed call of
    ``warm_first``: a single call timed cold, its thread pools asleep, can look long
    enough to be a value alone (beside a busy core, torch's 0.1 ms conv2d at n=128 on 2
    threads took 15 ms so), and a value of one call has no untimed call to wake them:
    the loop count would keep timing the stall (2026-11-30, AVX512).
    """
    time_func(1)
    loops = min(2, max_loops)
    while True:
        elapsed = time_func(loops)
        if loops == 2 and elapsed / 2 >= min_time:
            return 1, elapsed / 2  # each call is a value alone
        if elapsed >= min_time or loops >= max_loops:
            return loops, elapsed / loops
        # jump close to the target instead of doubling from 1 for fast calls
        per_call = max(elapsed / loops, 1e-9)
        loops = min(max_loops, max(loops * 2, int(min_time / per_call * 1.2)))


def recalibrated_loops(loops: int, per_call: float, min_time: float) -> int:
    """The loop count to time with, given the warm-up round's seconds per call.

    ``loops`` comes from the setup pass (or, on a warm run, the cache's copy of a cold
    run's calibration); it is kept unless one value of ``loops`` calls would last less
    than half of ``min_time``, when it is calibrated again from ``per_call`` (with
    pyperf's 20% margin). Only upwards: a warm-up call can be much slower than the
    steady state (a first backward in a fresh process: 51 ms against 0.3 ms for
    SciPy's conv2d at n=64), so a warm-up that says "too short" is sure of it, one that
    says "too long" is not. Pure."""
    if per_call <= 0 or loops * per_call >= min_time / 2:
        return loops
    return max(loops, math.ceil(min_time * 1.2 / per_call))


def set_threads(threads: int) -> None:
    """Set torch's intra-op threads and NumPy/SciPy's native pools (threadpoolctl)."""
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    _pools().limit(limits=threads)


#: threadpoolctl's view of the process's native pools, and ``len(sys.modules)`` when
#: it was taken (``_pools``).
_POOLS: tuple[int, Any] | None = None


def _pools() -> Any:
    """threadpoolctl's controller of the pools this process has loaded, found afresh only
    when a module was imported since (a library loads with the extension that links
    it: SciPy's OpenBLAS with its first ``scipy.linalg``). ``threadpool_limits`` scans
    every loaded library on each call: 2.5 ms, 21 calls and 0.05 s per timed group in
    its child (2026-12-01, AVX512), outside the timed region but inside the run."""
    global _POOLS
    loaded = len(sys.modules)
    if _POOLS is None or _POOLS[0] != loaded:
        from threadpoolctl import ThreadpoolController

        _POOLS = (len(sys.modules), ThreadpoolController())
    return _POOLS[1]
