"""Markdown tables: cell format, failed and unsupported points, noise warnings."""

from __future__ import annotations

from types import ModuleType

from harness.report._format import Footnotes, fmt_seconds, fmt_speedup
from harness.report.tables import (
    capability_table,
    deviation_table,
    noise_warnings,
    oneoff_table,
    time_tables,
)


def test_formats() -> None:
    assert fmt_seconds(0.00123) == "1.23 ms"
    assert fmt_seconds(4.56e-7) == "456 ns"
    assert fmt_seconds(12.3) == "12.3 s"
    assert fmt_speedup(3.14159) == "×3.14"
    assert fmt_speedup(3.1) == "×3.10"
    assert fmt_speedup(12.34) == "×12.3"
    assert fmt_speedup(0.4123) == "×0.41"
    assert fmt_speedup(123.4) == "×123"


def test_time_table_rows_are_implementations_and_columns_sizes(rf: ModuleType) -> None:
    rows = rf.series("lay", {"numpy": lambda n: 1e-3, "torch": lambda n: 0.25e-3}, (8, 64))
    notes = Footnotes()
    ((label, table),) = time_tables(rf.frame(rows), "forward", notes, rf.raw_for(rows))
    assert label == ""
    lines = table.splitlines()
    assert lines[0] == "| implementation | n=8 | n=64 |"
    assert lines[2] == "| numpy (baseline) | 1 ms ±1% | 1 ms ±1% |"
    assert lines[3] == "| torch | 250 µs ±1% **×4.00** | 250 µs ±1% **×4.00** |"
    assert not notes


def test_failed_and_unsupported_points_show_as_such(rf: ModuleType) -> None:
    rows = [
        rf.row("lay", "numpy", 8, "backward", 1e-3),
        rf.row("lay", "numpy", 9, "backward", status="error", error="ValueError: bad shape"),
        rf.row("lay", "torch", 8, "backward", 1e-3),
        rf.row("lay", "torch", 9, "backward", 1e-3),
        rf.row("lay", "onnxruntime", 8, "backward", status="unsupported", error="forward only"),
        rf.row("lay", "onnxruntime", 9, "backward", status="unsupported", error="forward only"),
    ]
    notes = Footnotes()
    ((_, table),) = time_tables(rf.frame(rows), "backward", notes)
    assert "| numpy (baseline) | 1 ms ±1% | error[^1] |" in table
    assert "| onnxruntime | n/a (unsupported)[^2] | n/a (unsupported)[^2] |" in table
    assert notes.render() == "[^1]: ValueError: bad shape\n[^2]: forward only"
    # the same ratio is not called a win: ×1 in plain text
    assert "| torch | 1 ms ±1% ×1.00 | 1 ms ±1% |" in table


def test_one_table_per_setting(rf: ModuleType) -> None:
    rows = rf.series("c", {"scipy": lambda n: 1e-3}, (8,), k=3) + rf.series(
        "c", {"scipy": lambda n: 1e-3}, (8,), k=15
    )
    tables = time_tables(rf.frame(rows), "forward", Footnotes())
    assert [label for label, _ in tables] == ["k=3", "k=15"]


def test_deviation_oneoff_and_capability_tables(rf: ModuleType) -> None:
    rows = [
        rf.row("lay", "numpy", 8, "forward", 1e-3, max_rel_err=2e-7),
        rf.row("lay", "numpy", 8, "backward", 1e-3, max_rel_err=0.5, within_tol=False, gradcheck=False, gradcheck_error="mismatch"),
        rf.row("lay", "compile", 8, "forward", 1e-3, oneoff_s=2.0, oneoff_what="first call"),
        rf.row("lay", "compile", 8, "backward", 1e-3),
    ]  # fmt: skip
    notes = Footnotes()
    dev = deviation_table(rf.frame(rows), None, notes)
    assert dev is not None
    assert "| numpy (baseline) | 2.0e-07 | 0.5 ✗ | 1e-05 | fail[^1] |" in dev
    assert "| compile | 1.0e-07 | 1.0e-07 | 1e-05 | — |" in dev
    one = oneoff_table(rf.frame(rows), notes)
    assert one is not None and "| compile | first call | 2 s |" in one
    caps = rf.capabilities(
        [{"layer": "lay", "impl": "numpy", "role": "baseline", "check": "compile_fullgraph", "status": "unsupported", "reason": "graph break"}]
    )  # fmt: skip
    cap = capability_table(caps, notes)
    assert cap is not None and "| numpy (baseline) | ✗ unsupported[^2] |" in cap


def test_noise_warnings_follow_pyperf_check(rf: ModuleType) -> None:
    rows = [
        rf.row("lay", "numpy", 8, "forward", 1e-3, spread=0.02),
        rf.row("lay", "numpy", 16, "forward", 1e-3, spread=0.6),
    ]
    (warning,) = noise_warnings(rf.frame(rows))
    assert warning.startswith("`lay/numpy/n=16/float32/t1/cpu/forward`: the standard deviation is")
    assert "60% smaller than the mean" in warning


def test_settings_label_what_varies(rf: ModuleType) -> None:
    rows = rf.series("lay", {"numpy": lambda n: 1e-3}, (8,), dtype="float32") + rf.series(
        "lay", {"numpy": lambda n: 1e-3}, (8,), dtype="float64", threads=4
    )
    tables = time_tables(rf.frame(rows), "forward", Footnotes())
    assert [label for label, _ in tables] == ["float32, 1 thread", "float64, 4 threads"]
