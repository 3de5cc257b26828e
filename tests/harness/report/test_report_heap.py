"""harness.report.heap: cases whose timing processes ran in different page-fault
regimes, found from (faults per call, seconds per call) per process. Pure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from harness.report.heap import FAULTING, heap_lines, heap_regimes

LABELS = {
    "conv2d/torch/step": "torch's training step at n=512,k=7",
    "conv2d/scipy/step": "scipy's training step at n=512,k=7",
    "fft/numpy/forward": "numpy's forward at n=1024",
}


def test_processes_that_fault_and_processes_that_reuse_are_told_apart() -> None:
    # the default run of 2026-11-30 03:39 (AVX512): torch's step at n=512 (k=7), one
    # timing process per pair
    runs = {
        "conv2d/torch/step": [
            (8314, 0.04797),
            (8315, 0.05739),
            (0, 0.03583),
            (8314, 0.05763),
            (8190, 0.07245),
        ],
        # every process faults alike: one regime, nothing to say
        "conv2d/scipy/step": [(8000, 0.03), (7900, 0.031), (8100, 0.029)],
        # faults too few to count as a regime
        "fft/numpy/forward": [(200, 0.011), (0, 0.010)],
    }
    (found,) = heap_regimes(runs, LABELS)
    assert found.case == "conv2d/torch/step"
    assert (found.reused_runs, found.faulted_runs) == (1, 4)
    assert found.reused_s == 0.03583 and found.reused_faults == 0
    assert math.isclose(found.faulted_s, (0.05739 + 0.05763) / 2)
    assert math.isclose(found.faulted_faults, 8314)
    assert found.cost > 1.5


def test_processes_that_fault_but_run_faster_are_no_heap_finding() -> None:
    """2026-11-30: dynoNet under a foreign load: the process that reused its buffers
    ran 117 ms a call, those that faulted 3.97 ms; faults cost time, so the load, not
    the heap, set those times."""
    runs = {"conv2d/torch/step": [(0, 0.117), (512, 0.00397), (520, 0.0041)]}
    assert heap_regimes(runs, LABELS) == []


def test_a_process_between_the_regimes_counts_for_neither_and_unlabelled_cases_are_skipped() -> (
    None
):
    runs = {
        # 3000 is neither at most a quarter of 8000 nor at least half of it
        "conv2d/torch/step": [(8000, 0.05), (3000, 0.045), (100, 0.036)],
        "not/in/the/report": [(8000, 0.05), (0, 0.03)],
    }
    (found,) = heap_regimes(runs, LABELS)
    assert (found.reused_runs, found.faulted_runs) == (1, 1)
    assert found.reused_faults == 100 and found.faulted_faults == 8000
    # a quarter of the most faulting process, exactly at the threshold, is still reuse
    (edge,) = heap_regimes({"fft/numpy/forward": [(FAULTING, 0.02), (FAULTING / 4, 0.01)]}, LABELS)
    assert edge.reused_faults == FAULTING / 4
    assert heap_regimes({"fft/numpy/forward": [(FAULTING, 0.02)]}, LABELS) == []


def test_the_paragraph_names_the_costliest_cases_first_and_counts_the_rest() -> None:
    runs = {
        "conv2d/torch/step": [(8314, 0.0576), (0, 0.0358)],
        "fft/numpy/forward": [(2431, 0.0053), (64, 0.0022), (17, 0.0032)],
        "conv2d/scipy/step": [(2000, 0.031), (0, 0.030)],
    }
    found = heap_regimes(runs, LABELS)
    assert [r.case for r in found] == [
        "fft/numpy/forward",
        "conv2d/torch/step",
        "conv2d/scipy/step",
    ]
    (text, blank) = heap_lines(found, shown=2)
    assert blank == ""
    assert text.startswith("**Times that depend on the heap, not on the code.**")
    assert (
        "numpy's forward at n=1024: 2.7 ms where it reused its buffers (40 faults per call, "
        "2 processes), 5.3 ms where it faulted them afresh (2,431, 1 process)"
    ) in text
    assert "torch's training step at n=512,k=7: 35.8 ms" in text
    assert "scipy's" not in text and "1 more case." in text
    assert "`--allocator glibc-fixed`" in text
    assert heap_lines([]) == []


def test_the_report_names_a_case_whose_processes_disagree_on_page_faults(
    rf: Any, tmp_path: Path
) -> None:
    import pyperf

    from harness.report import render_report

    medians = {"scipy": lambda n: 1e-7 * n * n, "torch": lambda n: 2e-7 * n * n}
    rows = rf.series("conv2d", medians, [64, 512], phases=("step",), k=7)
    case = next(r["case"] for r in rows if r["impl"] == "torch" and r["n"] == 512)
    plain = next(r["case"] for r in rows if r["impl"] == "torch" and r["n"] == 64)

    def run(name: str, seconds: float, faults: float) -> Any:
        meta = {"name": name, "unit": "second", "loops": 1, "harness_minor_faults": faults}
        return pyperf.Run([seconds] * 3, metadata=meta, collect_metadata=False)

    suite = pyperf.BenchmarkSuite(
        [
            # the default run of 2026-11-30 03:39: torch's step at n=512, k=7
            pyperf.Benchmark(
                [run(case, s, f) for f, s in ((8314, 0.048), (0, 0.036), (8315, 0.057))]
            ),
            pyperf.Benchmark([run(plain, 0.001, 0.0), run(plain, 0.0011, 1.0)]),
        ]
    )
    suite.dump(str(tmp_path / "pyperf.json"))
    text = render_report(rf.results(rows, path=str(tmp_path)), {})
    (line,) = [x for x in text.splitlines() if x.startswith("**Times that depend on the heap")]
    assert "torch's training step at n=512,k=7: 36 ms where it reused its buffers" in line
    assert "48 ms where it faulted them afresh" not in line  # the median of 48 and 57
    assert "52.5 ms where it faulted them afresh (8,314, 2 processes)" in line
    assert "n=64" not in line
    # a folder without pyperf.json, or whose processes agree, says nothing of it
    quiet = render_report(rf.results(rows, path=str(tmp_path / "none")), {})
    assert "Times that depend on the heap" not in quiet
