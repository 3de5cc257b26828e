"""Thread pools that fight: a NumPy/SciPy call alternating with torch's own ops.

A layer's timed values repeat its call back to back, as a benchmark must. Inside a
model it alternates with torch's ops instead, and there two thread pools meet: after
each parallel region torch's OpenMP threads spin-wait for more work, and so do the
threads of the BLAS under NumPy and SciPy (OpenBLAS). On a machine whose cores both
pools fill (the default: one thread per core each), a call of the one waits for the
other's spinning threads to give the cores back, both ways. Measured on 2026-11-30
(AVX512, 2 threads, this project's 2-core VM) with ``scipy.linalg.logm`` of an 8×8
matrix: 1.30 ms back to back, 4.23 ms right after a ``torch.add`` of 2^18 elements, and
that ``torch.add`` 3.7 ms right after it where it takes 0.03 ms after NumPy's; with
``OMP_WAIT_POLICY=PASSIVE`` 1.31 and 0.07 ms, with ``OPENBLAS_NUM_THREADS=1`` 0.04 ms.

The same fight spoils a benchmark's own values where implementations are timed in
turns in one process: after a SciPy value OpenBLAS's threads spin for about 0.1 s,
after a torch value OpenMP's for about 10 ms, and the next value, of the other
library, starts while they hold the cores. ``PoolWatch`` makes each value start as
the implementation's own loop does: it learns which of the process's threads each
implementation runs (``own_threads``), and before a value waits until the threads of
the others no longer hold the cores its own need (``running_threads``). Measured on
2026-12-01 (AVX512, 2 threads) with ``scipy.linalg.expm`` against
``torch.linalg.matrix_exp`` at n=128, values of 8 calls taken in turns: SciPy/torch
×1.47 and ×1.00 in two runs, where each alone gave ×1.78 and ×1.80; waiting first,
×1.68 and ×1.74.

``probe`` measures it for one call that runs threads of its own (``cpu_share``) in the
setup pass: the time the call adds to a loop
alternating with a small torch parallel op, against the time it adds to a loop
alternating with the same work done by NumPy (one thread, the same memory traffic,
so the caches are disturbed alike). Each cycle is timed whole, so the slowdown of the
torch op after the call counts as much as the call's own. ``Alternation`` holds the
two medians; its ``ratio`` is what the report reads (``alternating_torch_s`` and
``alternating_numpy_s`` in results.csv).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_CALL_S",
    "OWN_POOL_CPU",
    "Alternation",
    "PoolWatch",
    "alternation",
    "cpu_share",
    "own_threads",
    "probe",
    "running_threads",
    "thread_runtimes",
]

#: Calls slower than this are not probed: a spin-wait costs about a millisecond or two
#: per switch (the figures above), a few per cent of such a call at most.
MAX_CALL_S = 0.05
#: Elements of the torch op a call alternates with: past torch's grain size (32,768),
#: so that every intra-op thread takes part, and about 20-70 µs.
PROBE_ELEMENTS = 1 << 18
#: Cycles of each kind; the medians of 15 hold against a few bursts of noise.
CYCLES = 15
#: The process CPU time over wall time of the call back to back from which it runs a
#: pool of its own: a call on one thread cannot hold the cores torch's threads need
#: (2026-11-30: scipy.signal.lfilter, one thread, read ×1.41 under a foreign load and
#: ×1.00 without), so it is not probed.
OWN_POOL_CPU = 1.1
_SPIN_PAUSE_S = 0.25


@dataclass(frozen=True)
class Alternation:
    """What one call adds to a loop of torch ops, and to a loop of NumPy ops."""

    torch_s: float
    """Median seconds a cycle (torch op, then the call) takes beyond the torch op back
    to back: the call's cost, and the torch op's slowdown after it."""
    numpy_s: float
    """The same with the torch op's work done by NumPy instead (no OpenMP pool)."""

    @property
    def ratio(self) -> float:
        """``torch_s / numpy_s``: over 1 where the pools fight."""
        return self.torch_s / self.numpy_s if self.numpy_s > 0 else float("inf")


def alternation(
    torch_cycles: Sequence[float],
    numpy_cycles: Sequence[float],
    torch_alone: Sequence[float],
    numpy_alone: Sequence[float],
) -> Alternation:
    """The medians of cycles net of the medians of their ops back to back. Pure."""
    med = statistics.median
    return Alternation(
        max(0.0, med(torch_cycles) - med(torch_alone)),
        max(0.0, med(numpy_cycles) - med(numpy_alone)),
    )


def cpu_share(
    call: Callable[[], Any],
    calls: int = 5,
    *,
    wall: Callable[[], float] = time.perf_counter,
    cpu: Callable[[], float] = time.process_time,
) -> float:
    """Process CPU time over wall time of ``calls`` calls back to back, after a pause
    that lets any pool's spinning end: about 1 for a call on one thread, more for one
    whose own threads work (or spin) beside it. The pause is long because OpenBLAS's
    threads spin for about 2^28 cycles (~0.1 s) after their last work: after 20 ms a
    one-thread ``lfilter`` read 2.53 once, the BLAS threads of an earlier call still
    spinning (2026-11-30)."""
    call()
    time.sleep(_SPIN_PAUSE_S)
    start_wall, start_cpu = wall(), cpu()
    for _ in range(calls):
        call()
    spent = wall() - start_wall
    return (cpu() - start_cpu) / spent if spent > 0 else 0.0


def probe(
    call: Callable[[], Any],
    per_call_s: float,
    *,
    cycles: int = CYCLES,
    clock: Callable[[], float] = time.perf_counter,
    cpu: Callable[[Callable[[], Any]], float] | None = None,
) -> Alternation | None:
    """``call`` alternating with a torch parallel op and with NumPy's same work (see
    the module docstring); None for a call slower than ``MAX_CALL_S`` (``per_call_s``,
    from the loop calibration), and for one that runs on one thread (``cpu``: the
    process CPU time over wall time of calls back to back, below ``OWN_POOL_CPU``).
    Run where the call is timed: the worker's threads set."""
    if per_call_s > MAX_CALL_S or (cpu or cpu_share)(call) < OWN_POOL_CPU:
        return None
    import numpy as np
    import torch

    x = torch.randn(PROBE_ELEMENTS)
    y = torch.empty_like(x)
    xn, yn = x.numpy(), y.numpy()

    def on_torch() -> None:
        torch.add(x, 1, out=y)

    def on_numpy() -> None:
        np.add(xn, 1, out=yn)

    def cycle(op: Callable[[], None]) -> float:
        start = clock()
        op()
        call()
        return clock() - start

    def alone(op: Callable[[], None]) -> float:
        op()  # back to back: the op after itself
        start = clock()
        op()
        return clock() - start

    cycle(on_torch), cycle(on_numpy)  # warm both paths
    timed: tuple[list[float], list[float], list[float], list[float]] = ([], [], [], [])
    with torch.no_grad():
        for _ in range(cycles):
            timed[0].append(cycle(on_torch))
            timed[1].append(cycle(on_numpy))
            timed[2].append(alone(on_torch))
            timed[3].append(alone(on_numpy))
    return alternation(*timed)


#: A thread is an implementation's own when it was on a CPU for at least this share of
#: one of its values (``own_threads``).
OWN_THREAD_SHARE = 0.2
#: The longest wait before one value: OpenBLAS's spin (~0.1 s) and then some. A thread
#: still running after it is busy for good (a user's background thread), not spinning:
#: it is never waited for again.
MAX_WAIT_S = 0.3
#: Seconds between two looks at the threads' states while waiting.
POLL_S = 0.001


def _tasks() -> list[tuple[int | str, int]]:
    """The process's threads (Linux: /proc/self/task) but the caller's, ``("self",
    tid)`` each; none elsewhere."""
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return []
    me = threading.get_native_id()
    return [("self", int(t)) for t in tids if int(t) != me]


#: Lists threads as ``(pid, tid)``: those of this process (``_tasks``), or of the
#: processes timing a group's implementations (``harness.own_process.thread_pids``).
Threads = Callable[[], Iterable[tuple[int | str, int]]]


def thread_runtimes(threads: Threads = _tasks) -> dict[int, int]:
    """Nanoseconds each of ``threads`` (by default the process's others) has run (its
    ``schedstat``)."""
    times: dict[int, int] = {}
    for pid, tid in threads():
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                times[tid] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # gone, or no schedstat
    return times


def running_threads(threads: Threads = _tasks) -> set[int]:
    """Those of ``threads`` (by default the process's others) on a CPU, or waiting for
    one, right now (state ``R`` in their ``stat``): a pool spinning for work is
    running. About 50 us."""
    running: set[int] = set()
    for pid, tid in threads():
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        end = stat.rfind(b")")  # the name may hold spaces and parentheses
        if stat[end + 2 : end + 3] == b"R":
            running.add(tid)
    return running


def own_threads(
    before: Mapping[int, int], after: Mapping[int, int], elapsed_s: float
) -> frozenset[int]:
    """The threads that ran for ``OWN_THREAD_SHARE`` or more of a value lasting
    ``elapsed_s``, from their runtimes (ns) before and after it. Pure."""
    least = OWN_THREAD_SHARE * elapsed_s * 1e9
    return frozenset(t for t, ns in after.items() if ns - before.get(t, 0) >= max(least, 1))


@dataclass
class PoolWatch:
    """Before each value, wait until the other implementations' threads give back the
    cores this one needs (module docstring).

    ``learn`` wraps a value of the discarded warm-up round, after waiting for every
    other thread to rest, and keeps the threads it ran (``own``). ``settle`` waits
    before a timed value while more threads run that are not the implementation's
    own than the CPUs its own threads and the caller's leave free; a thread still
    running after ``MAX_WAIT_S`` is busy for good and ignored from then on. The
    readers, clock and sleep are injected so that the decisions are tested without
    threads."""

    cpus: int = field(default_factory=lambda: len(os.sched_getaffinity(0)))
    runtimes: Callable[[], dict[int, int]] = thread_runtimes
    running: Callable[[], set[int]] = running_threads
    clock: Callable[[], float] = time.perf_counter
    sleep: Callable[[float], None] = time.sleep
    own: dict[str, frozenset[int]] = field(default_factory=dict)
    ignored: set[int] = field(default_factory=set)
    waited_s: float = 0.0

    def rest(self) -> None:
        """Wait until no other thread of the process runs (``MAX_WAIT_S`` at most)."""
        self._wait(bool)

    def learn(self, name: str, value: Callable[[], float]) -> float:
        """Run ``value`` (a value of ``name``'s, returning its seconds) after every
        other thread has rested, and keep which threads it ran."""
        self.rest()
        before, start = self.runtimes(), self.clock()
        result = value()
        self.own[name] = own_threads(before, self.runtimes(), self.clock() - start)
        return result

    def settle(self, name: str) -> float:
        """Wait until the threads running that are not ``name``'s own leave its own
        threads and the caller a CPU each; the seconds waited."""
        own = self.own.get(name, frozenset())
        free = max(0, self.cpus - 1 - len(own))
        return self._wait(lambda foreign: len(foreign - own) > free)

    def _wait(self, crowded: Callable[[set[int]], bool]) -> float:
        """Sleep while ``crowded``; the seconds slept through (0.0: none, the look
        alone, about 0.1 ms, is no wait)."""
        start = self.clock()
        slept = False
        while True:
            foreign = self.running() - self.ignored
            if not crowded(foreign):
                break
            if self.clock() - start >= MAX_WAIT_S:
                self.ignored |= foreign  # busy for good: waiting does not help
                break
            self.sleep(POLL_S)
            slept = True
        waited = self.clock() - start if slept else 0.0
        self.waited_s += waited
        return waited
