"""Rows timed with another allocator than the one asked for are flagged at the top of
the report (``report.faults.allocator_findings``)."""

from __future__ import annotations

from types import ModuleType

from harness.report.faults import allocator_findings, fault_lines
from harness.report.markdown import render_report


def _rows(rf: ModuleType, measured: dict[tuple[str, str], str | None]) -> list[dict[str, object]]:
    rows = []
    for (layer, allocator), got in measured.items():
        for impl in ("numpy", "torch"):
            r = rf.row(layer, impl, 8, "forward", 1e-4, allocator=allocator)
            r["allocator_measured"] = got
            rows.append(r)
    return rows


def test_rows_timed_with_another_allocator_are_flagged_once_per_pair(rf: ModuleType) -> None:
    rows = _rows(
        rf,
        {
            ("fft", "glibc"): "glibc",  # as asked
            ("fft", "jemalloc"): "glibc",  # the preload did not take
            ("conv2d", "jemalloc"): "glibc",
            ("conv2d", "glibc"): None,  # a folder from before the column: no finding
        },
    )
    results = rf.results(rows)
    assert allocator_findings(results) == [
        "rows asked for `jemalloc` were timed with `glibc` (`fft`, `conv2d`)"
    ]
    lines = fault_lines(results)
    assert lines[0].startswith("**Allocator not as asked**: rows asked for `jemalloc`")
    assert lines[1] == ""
    assert lines[0] in render_report(results, {})


def test_allocators_as_asked_say_nothing(rf: ModuleType) -> None:
    results = rf.results(_rows(rf, {("fft", "glibc-fixed"): "glibc-fixed"}))
    assert allocator_findings(results) == []
    assert not any("Allocator" in line for line in fault_lines(results))
