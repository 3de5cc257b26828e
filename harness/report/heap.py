"""Times that depend on the heap, not on the code: cases whose timing processes ran in
different page-fault regimes.

Under glibc's default malloc a call's large buffers are either reused from one call to
the next or handed back to the kernel after each free (the top of the heap trimmed, or
an mmapped block unmapped) and faulted in afresh by the next call. Which one happens
depends on everything else the process has allocated, so two timing processes of one
case can land in different regimes, and the slower one is the one that faults. The
harness's interval then spans both; this module names the cases and says by how much,
from each pyperf run's ``harness_minor_faults`` (the median faults per call of that
process's values) and its values. A user's process, with its own heap, may see either;
``--allocator glibc-fixed`` (fixed mmap and trim thresholds) measures the reuse regime.

Pure: runs in, findings and Markdown lines out (``markdown.render_report`` places them).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from harness.text import fmt_seconds

__all__ = ["FAULTING", "HeapRegimes", "heap_lines", "heap_regimes"]

#: Page faults per call from which a process counts as faulting a call's buffers afresh
#: (256 faults: 1 MiB of 4 KiB pages); one with at most a quarter of the most faulting
#: process's count reuses them.
FAULTING = 256.0


@dataclass(frozen=True)
class HeapRegimes:
    """One case whose timing processes disagree on page faults."""

    case: str
    label: str
    """What it is, in words: ``torch's training step at n=512,k=7``."""
    reused_s: float
    """Median seconds per call over the processes that reused their buffers."""
    reused_faults: float
    reused_runs: int
    faulted_s: float
    """Median seconds per call over the processes that faulted them afresh."""
    faulted_faults: float
    faulted_runs: int

    @property
    def cost(self) -> float:
        """How much slower the faulting processes ran: faulted / reused."""
        return self.faulted_s / self.reused_s if self.reused_s > 0 else float("nan")


def heap_regimes(
    runs: Mapping[str, Sequence[tuple[float, float]]], labels: Mapping[str, str]
) -> list[HeapRegimes]:
    """The cases of ``runs`` (case -> one (faults per call, median seconds per call) per
    timing process) whose processes ran in two regimes: the most faulting one at least
    ``FAULTING`` faults per call, another at most a quarter of that. Processes in
    between belong to neither side. Most costly first; cases without a label are
    skipped (not in the report's rows)."""
    found = []
    for case, pairs in runs.items():
        if case not in labels or len(pairs) < 2:
            continue
        high = max(f for f, _ in pairs)
        if high < FAULTING:
            continue
        reused = [(f, s) for f, s in pairs if f <= high / 4]
        faulted = [(f, s) for f, s in pairs if f >= high / 2]
        if not reused or not faulted:
            continue
        regimes = HeapRegimes(
            case,
            labels[case],
            statistics.median(s for _, s in reused),
            statistics.median(f for f, _ in reused),
            len(reused),
            statistics.median(s for _, s in faulted),
            statistics.median(f for f, _ in faulted),
            len(faulted),
        )
        # faults cost time: where the processes that reused their buffers ran slower,
        # something else set the times (2026-11-30: a foreign load read "117 ms where it
        # reused its buffers, 3.97 ms where it faulted them afresh")
        if regimes.cost > 1:
            found.append(regimes)
    return sorted(found, key=lambda r: -r.cost)


def _processes(n: int) -> str:
    return f"{n} process" + ("es" if n != 1 else "")


def heap_lines(found: Iterable[HeapRegimes], shown: int = 4) -> list[str]:
    """A paragraph on the cases of ``found`` (``shown`` of them named, most costly
    first), or nothing."""
    found = list(found)
    if not found:
        return []
    parts = [
        f"{r.label}: {fmt_seconds(r.reused_s)} where it reused its buffers "
        f"({r.reused_faults:,.0f} faults per call, {_processes(r.reused_runs)}), "
        f"{fmt_seconds(r.faulted_s)} where it faulted them afresh "
        f"({r.faulted_faults:,.0f}, {_processes(r.faulted_runs)})"
        for r in found[:shown]
    ]
    more = len(found) - shown
    if more > 0:
        parts.append(f"{more} more case{'s' if more > 1 else ''}")
    return [
        "**Times that depend on the heap, not on the code.** Some timing processes got "
        "these calls' buffers afresh from the kernel every call (page faults) and others "
        "reused them, with glibc's default malloc in both: which one happens depends on "
        "what else the process allocated, so a user's process may see either, and the "
        "intervals here span both. " + "; ".join(parts) + ". `--allocator glibc-fixed` "
        "(fixed mmap and trim thresholds) times the reuse regime.",
        "",
    ]
