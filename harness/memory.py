"""Peak memory of one call: the most bytes allocated at any moment during the call,
above what was live just before it, per allocator the call uses.

Measured in the setup pass, never inside a timed region: tracemalloc and the torch
profiler slow calls down. Sources:

- ``numpy``: :mod:`tracemalloc`. NumPy reports its data buffers to tracemalloc (in a
  domain of its own), so this counts every NumPy array the call creates (``.numpy()``
  of a tensor shares its buffer and allocates nothing; ``astype``, ``rfft2``,
  ``correlate2d`` do), and a tensor made by ``torch.from_numpy`` keeps counting here.
  It also counts Python objects (a few hundred bytes per call, usually).
- ``torch-cpu``: the torch profiler with ``profile_memory=True``: the CPU allocator's
  allocation and free events, summed in time order; the source's peak is the largest
  running sum. A free of a block allocated before any profiling began is not reported
  by torch, so such frees do not lower the sum (the figure errs high, never low).
  Not counted when a profiler is already running in this thread.
- ``cuda``: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``,
  minus ``memory_allocated`` before the call (tensors, not the caching allocator's
  reserve). Only for a ``cuda`` device, and only where CUDA is available.
- ONNX Runtime's arena (its intermediate buffers, and the output it hands to NumPy
  without a copy) goes through its own allocator, which neither tracemalloc nor torch
  sees: it is *not counted*, and a measurement of a call running a session says so in
  ``not_counted``.

``peak_bytes`` is the sum of the per-source peaks: an upper bound of the true combined
peak when two allocators peak at different moments of the call (tracemalloc has no
timestamps to merge its events with the profiler's). Each source's peak includes the
call's result (output tensor or gradients), which is kept alive until the readings
are taken: it is part of what the call allocates.

The call runs once unmeasured first (lazy initialisation and caches are not the
steady state); with ``repeat`` > 1 each source keeps its largest peak over the
repeats. Nothing global is left changed: tracemalloc is stopped only if it was started
here (if it was already tracing, its peak is reset, which cannot be undone), the
profiler is stopped, and the garbage collector is left as it was.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "CUDA",
    "NUMPY",
    "ONNXRUNTIME_ARENA",
    "TORCH_CPU",
    "PeakMemory",
    "measure_peak",
]

NUMPY = "numpy"
TORCH_CPU = "torch-cpu"
CUDA = "cuda"
ONNXRUNTIME_ARENA = "onnxruntime arena"

_MEMORY_EVENT = "[memory]"


@dataclass(frozen=True)
class PeakMemory:
    """Peak bytes of one call above what was live before it, per counted source."""

    peak_bytes: int | None
    by_source: Mapping[str, int] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    not_counted: tuple[str, ...] = ()

    def describe_sources(self) -> str:
        """``numpy+torch-cpu; not counted: onnxruntime arena`` (the ``peak_sources`` column)."""
        text = "+".join(self.sources) if self.sources else "nothing counted"
        if self.not_counted:
            text += "; not counted: " + ", ".join(self.not_counted)
        return text

    def columns(self) -> dict[str, Any]:
        """The results frame's ``peak_bytes`` and ``peak_sources`` for this measurement."""
        return {"peak_bytes": self.peak_bytes, "peak_sources": self.describe_sources()}


@contextlib.contextmanager
def _fd2_silenced() -> Iterator[None]:
    """Kineto prints a line to file descriptor 2 as the profiler starts and stops."""
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _profiler_busy() -> bool:
    """Whether a torch profiler is already running in this thread (they do not nest)."""
    try:
        return bool(torch._C._autograd._profiler_enabled())
    except AttributeError:  # pragma: no cover - a torch without it
        return bool(getattr(torch.autograd.profiler, "_is_profiler_enabled", False))


class _TorchCPU:
    """The torch profiler, memory events only (no shapes, no stacks)."""

    def __init__(self) -> None:
        self._prof = torch.autograd.profiler.profile(profile_memory=True, use_cpu=True)

    def __enter__(self) -> _TorchCPU:
        with _fd2_silenced():
            self._prof.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        with _fd2_silenced():
            self._prof.__exit__(None, None, None)

    def peak(self) -> int:
        """Largest running sum of the CPU allocator's byte deltas, in time order."""
        results = self._prof.kineto_results
        if results is None:
            raise RuntimeError("the torch profiler recorded nothing")
        cpu = torch._C._autograd.DeviceType.CPU  # type: ignore[attr-defined]
        events = [
            (e.start_ns(), i, int(e.nbytes()))  # type: ignore[attr-defined]
            for i, e in enumerate(results.events())
            if e.name() == _MEMORY_EVENT and e.device_type() == cpu
        ]
        running = peak = 0
        for _, _, delta in sorted(events):
            running += delta
            peak = max(peak, running)
        return peak


def _cuda_index(device: str) -> torch.device:
    dev = torch.device(device)
    if dev.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return dev


def measure_peak(
    call: Callable[[], Any],
    *,
    device: str = "cpu",
    onnxruntime: bool = False,
    repeat: int = 1,
) -> PeakMemory:
    """Peak bytes allocated during one ``call()`` above what was live before it.

    ``call`` takes no argument and runs one forward call (under ``no_grad``) or one
    backward call (``torch.autograd.grad`` on a graph built beforehand); what it
    returns is counted (it stays alive until the readings are taken). ``device`` is
    the device the call computes on: ``cuda`` adds the CUDA allocator where CUDA is
    available. ``onnxruntime=True`` marks a call that runs an ONNX Runtime session,
    whose arena is not counted. The call runs ``repeat`` + 1 times: one warm-up, then
    ``repeat`` measured calls, each source keeping its largest peak.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    not_counted: list[str] = []
    if onnxruntime:
        not_counted.append(ONNXRUNTIME_ARENA)
    use_torch = not _profiler_busy()
    if not use_torch:
        not_counted.append(f"{TORCH_CPU} (a profiler was already running)")
    use_cuda = False
    cuda_dev: torch.device | None = None
    if device.startswith("cuda"):
        if torch.cuda.is_available():
            use_cuda = True
            cuda_dev = _cuda_index(device)
        else:
            not_counted.append(f"{CUDA} (CUDA unavailable)")

    result = call()  # warm-up: lazy initialisation is not the steady state
    del result

    peaks: dict[str, int] = {}

    def keep(source: str, value: int) -> None:
        peaks[source] = max(peaks.get(source, 0), max(0, int(value)))

    started_here = not tracemalloc.is_tracing()
    gc_was_enabled = gc.isenabled()
    # No collection during a measured call (it would free older garbage in the middle
    # of it). Disabling is enough: gc.collect() here would cost ~80 ms a call with
    # torch loaded, which adds up over a grid's setup pass.
    gc.disable()
    if started_here:
        tracemalloc.start()
    try:
        for _ in range(repeat):
            if use_cuda:
                torch.cuda.synchronize(cuda_dev)
                torch.cuda.reset_peak_memory_stats(cuda_dev)
                cuda_before = torch.cuda.memory_allocated(cuda_dev)
            profiler = _TorchCPU() if use_torch else None
            with profiler if profiler is not None else contextlib.nullcontext():
                tracemalloc.reset_peak()
                traced_before, _ = tracemalloc.get_traced_memory()
                result = call()
                if use_cuda:
                    torch.cuda.synchronize(cuda_dev)
                _, traced_peak = tracemalloc.get_traced_memory()
                if use_cuda:
                    keep(CUDA, torch.cuda.max_memory_allocated(cuda_dev) - cuda_before)
                del result
            keep(NUMPY, traced_peak - traced_before)
            if profiler is not None:
                keep(TORCH_CPU, profiler.peak())
    finally:
        if started_here:
            tracemalloc.stop()
        if gc_was_enabled:
            gc.enable()

    sources = tuple(s for s in (NUMPY, TORCH_CPU, CUDA) if s in peaks)
    by_source = {s: peaks[s] for s in sources}
    total = sum(by_source.values()) if sources else None
    return PeakMemory(total, by_source, sources, tuple(not_counted))
