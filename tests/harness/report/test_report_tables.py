"""Markdown tables: cell format (paired speedups with their intervals, bold when
decided), failed and unsupported points, the summary, noise warnings."""

from __future__ import annotations

from types import ModuleType

from harness.report.decide import decide_layers
from harness.report.tables import (
    capability_table,
    deviation_table,
    noise_warnings,
    oneoff_table,
    summary_table,
    time_tables,
    untimed_phase,
)
from harness.text import Footnotes, fmt_seconds, fmt_speedup


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
    ((label, table),) = time_tables(rf.frame(rows), "forward", notes)
    assert label == ""
    lines = table.splitlines()
    assert lines[0] == "| implementation | n=8 | n=64 |"
    assert lines[2] == "| numpy (baseline) | 1 ms ±1% | 1 ms ±1% |"
    # the paired speedup with its 95% interval, bold: decided faster
    assert (
        lines[3]
        == "| torch | 250 µs ±1% **×4.00 (3.92–4.08)** | 250 µs ±1% **×4.00 (3.92–4.08)** |"
    )
    assert not notes


def test_the_baseline_marked_is_the_one_speedups_are_against(rf: ModuleType) -> None:
    # two baselines, the first declared failing everywhere: speedups are against scipy,
    # and the table marks scipy, not a row of errors (2026-12-03, a public ive layer)
    rows = rf.series(
        "lay",
        {"numpy": lambda n: 1e-3, "scipy": lambda n: 1e-3, "torch": lambda n: 0.25e-3},
        (8, 64),
    )
    for r in rows:
        if r["impl"] == "numpy":
            r.update(status="error", error="TypeError: bad call", median_s=None)
        if r["impl"] == "torch":
            r["versus"] = "scipy"
    ((_, table),) = time_tables(rf.frame(rows), "forward", Footnotes())
    assert "| scipy (baseline) | 1 ms ±1% |" in table, table
    assert "| numpy | error" in table, table


def test_only_decided_speedups_are_bold(rf: ModuleType) -> None:
    rows = [
        rf.row("lay", "numpy", n, "forward", 1e-3) for n in (8, 16, 32)
    ] + [
        rf.row("lay", "torch", 8, "forward", 2e-3, speedup=(0.5, 0.45, 0.55)),  # slower
        rf.row("lay", "torch", 16, "forward", 1e-3, speedup=(1.0, 0.97, 1.03)),  # a tie
        rf.row("lay", "torch", 32, "forward", 0.9e-3, speedup=(1.1, 0.9, 1.3)),  # noisy
    ]  # fmt: skip
    ((_, table),) = time_tables(rf.frame(rows), "forward", Footnotes(), "n")
    assert table.splitlines()[3] == (
        "| torch | 2 ms ±1% **×0.50 (0.45–0.55)** | 1 ms ±1% ×1.00 (0.97–1.03) "
        "| 900 µs ±1% ×1.10 (0.90–1.30) |"
    )


def test_failed_and_unsupported_points_show_as_such(rf: ModuleType) -> None:
    rows = rf.paired(
        [
            rf.row("lay", "numpy", 8, "backward", 1e-3),
            rf.row("lay", "numpy", 9, "backward", status="error", error="ValueError: bad shape"),
            rf.row("lay", "torch", 8, "backward", 1e-3),
            rf.row("lay", "torch", 9, "backward", 1e-3),
            rf.row("lay", "onnxruntime", 8, "backward", status="unsupported", error="forward only"),
            rf.row("lay", "onnxruntime", 9, "backward", status="unsupported", error="forward only"),
        ]
    )
    notes = Footnotes()
    ((_, table),) = time_tables(rf.frame(rows), "backward", notes)
    assert "| numpy (baseline) | 1 ms ±1% | error[^1] |" in table
    assert "| onnxruntime | n/a (unsupported)[^2] | n/a (unsupported)[^2] |" in table
    assert notes.render() == "[^1]: ValueError: bad shape\n[^2]: forward only"
    # the same speed is not called a win: plain text; no speedup where numpy failed
    assert "| torch | 1 ms ±1% ×1.00 (0.98–1.02) | 1 ms ±1% |" in table
    # a form skipped is no form the code cannot have: the cell says which
    slow = "not built: building its compile form at n=8 ran past the setup limit (60s)"
    rows = rf.paired(
        [
            rf.row("lay", "numpy", 9, "backward", 1e-3),
            rf.row("lay", "compile", 9, "backward", status="unsupported", error=slow),
            rf.row("lay", "numpy-compile", 9, "backward", status="unsupported",
                   error="not timed: torch.compile(fullgraph=True) cannot take numpy whole"),
        ]
    )  # fmt: skip
    ((_, table),) = time_tables(rf.frame(rows), "backward", Footnotes())
    assert "| compile | n/a (not built)[^1] |" in table, table
    assert "| numpy-compile | n/a (not timed)[^2] |" in table


def test_a_phase_no_implementation_ran_is_one_line_not_a_table_of_na(rf: ModuleType) -> None:
    """2026-11-30: POT's forward-only sinkhorn got two tables of "n/a (unsupported)"
    in every cell, training step and backward, the same footnote in each."""
    rows = []
    for n in (8, 9):
        rows += [
            rf.row("lay", "numpy", n, "forward", 1e-3),
            rf.row("lay", "torch", n, "forward", 1e-3),
            rf.row("lay", "numpy", n, "step", status="unsupported", error="declared without backward"),
            rf.row("lay", "torch", n, "step", status="unsupported", error="declared without backward"),
            rf.row("lay", "onnxruntime", n, "step", status="unsupported", error="forward only"),
        ]  # fmt: skip
    frame = rf.frame(rf.paired(rows))
    assert time_tables(frame, "step", Footnotes()) == []
    # the baseline has no backward: the forms' own reasons are none here (2026-12-02:
    # boundary-loss's distance map listed a compile and an export failure there)
    assert untimed_phase(frame, "step") == (
        "the layer is forward only (its baseline is declared without backward)"
    )
    for r in rows:
        if r["impl"] == "numpy" and r["phase"] == "step":
            r["error"] = "RuntimeError: no graph"
    frame = rf.frame(rf.paired(rows))
    assert untimed_phase(frame, "step") == (
        "RuntimeError: no graph; declared without backward; forward only"
    )
    assert untimed_phase(frame, "forward") is None
    assert untimed_phase(frame, "backward") is None  # no rows of it at all


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
    # each implementation's own tolerance: one that narrows the dtype is held to its own
    # (2026-12-03: "3.1e-05 | 1e-09" unmarked beside a verdict held to float32's 1e-04)
    narrowed = [{**r, "rtol": 1e-4} if r["impl"] == "numpy" else r for r in rows]
    wide = deviation_table(rf.frame(narrowed), None, Footnotes())
    assert wide is not None and "| numpy (baseline) | 2.0e-07 | 0.5 ✗ | 0.0001 |" in wide, wide
    assert "| compile | 1.0e-07 | 1.0e-07 | 1e-05 | — |" in wide, wide
    one = oneoff_table(rf.frame(rows), notes)
    assert one is not None and "| compile | first call | 2 s |" in one
    caps = rf.capabilities(
        [{"layer": "lay", "impl": "numpy", "role": "baseline", "check": "compile_fullgraph", "status": "unsupported", "reason": "graph break"}]
    )  # fmt: skip
    cap = capability_table(caps, notes)
    assert cap is not None and "| numpy (baseline) | ✗ unsupported[^2] |" in cap


def test_gradients_off_from_a_reference_that_fails_gradcheck_are_not_marked(
    rf: ModuleType,
) -> None:
    rows = [
        rf.row("lay", "scipy", 8, "forward", 1e-3, max_rel_err=2e-7),
        rf.row("lay", "scipy", 8, "backward", 1e-3, max_rel_err=600.0, within_tol=False, gradcheck=True),
        rf.row("lay", "torch", 8, "forward", 1e-3),
        rf.row("lay", "torch", 8, "backward", 1e-3, max_rel_err=0.021, within_tol=False),
    ]  # fmt: skip
    rows[1]["reference_gradcheck"] = False  # an eigh reference beside SciPy's sqrtm
    notes = Footnotes()
    dev = deviation_table(rf.frame(rows), None, notes)
    assert dev is not None and "✗" not in dev
    assert "| torch | 1.0e-07 | 0.021[^1] | 1e-05 | — |" in dev, dev
    assert "not judged: the reference itself fails gradcheck" in notes.render()


def test_a_random_implementations_deviations_are_not_marked_wrong(rf: ModuleType) -> None:
    """2026-12-02: ARPACK's eigenvectors (a sign drawn afresh each call) read "2 ✗" in the
    table beside "not held against the float64 reference" in the verdict."""
    rows = [
        rf.row("lay", "scipy", 8, "forward", 1e-3, max_rel_err=2.0, within_tol=False),
        rf.row("lay", "torch", 8, "forward", 1e-3),
    ]
    rows[0]["random_output"] = 2.0
    notes = Footnotes()
    dev = deviation_table(rf.frame(rows), None, notes)
    assert dev is not None and "✗" not in dev
    assert "| scipy (baseline) | 2[^1] |" in dev, dev
    assert "not held against the reference: two calls on the same input differ" in notes.render()


def test_noise_warnings_follow_pyperf_check(rf: ModuleType) -> None:
    rows = [
        rf.row("lay", "numpy", 8, "forward", 1e-3, spread=0.02),
        rf.row("lay", "numpy", 16, "forward", 1e-3, spread=0.6),
    ]
    (warning,) = noise_warnings(rf.frame(rows))
    assert warning.startswith(
        "`lay/numpy/n=16/float32/t1/cpu/glibc/forward`: the standard deviation is"
    )
    assert "60% smaller than the mean" in warning


def test_settings_label_what_varies(rf: ModuleType) -> None:
    rows = rf.series("lay", {"numpy": lambda n: 1e-3}, (8,), dtype="float32") + rf.series(
        "lay", {"numpy": lambda n: 1e-3}, (8,), dtype="float64", threads=4
    )
    tables = time_tables(rf.frame(rows), "forward", Footnotes())
    assert [label for label, _ in tables] == ["float32, 1 thread", "float64, 4 threads"]


def test_settings_label_the_allocator_when_it_varies(rf: ModuleType) -> None:
    rows = rf.series("lay", {"numpy": lambda n: 1e-3}, (8,)) + rf.series(
        "lay", {"numpy": lambda n: 1e-3}, (8,), allocator="jemalloc"
    )
    tables = time_tables(rf.frame(rows), "forward", Footnotes())
    assert [label for label, _ in tables] == ["glibc", "jemalloc"]


def test_summary_table_one_row_per_setting(rf: ModuleType) -> None:
    rows = rf.series("c", {"scipy": lambda n: 1e-3, "torch": lambda n: 0.5e-3}, (8, 64), k=3)
    rows += rf.series("c", {"scipy": lambda n: 1e-3, "torch": lambda n: 2e-3}, (8, 64), k=15)
    rows += [rf.row("c", "scipy", 128, "forward", 1e-3, k=15)] + [
        rf.row("c", "torch", 128, ph, 1e-3, k=15, speedup=(1.0, 0.8, 1.3), step=(1.0, 0.8, 1.3))
        for ph in ("forward", "backward")
    ]
    rows.append(rf.row("c", "scipy", 128, "backward", 1e-3, k=15))
    table = summary_table(decide_layers(rf.frame(rows)))
    lines = table.splitlines()
    # rows without a step (a folder from before the step was timed whole): the
    # training column says its verdict stands on the forward + backward estimate
    assert lines[0] == (
        "| layer | setting | training (estimated: forward + backward) "
        "| best for training: speedup, 95% interval (smallest, largest size) "
        "| inference (forward) "
        "| best for inference: speedup, 95% interval (smallest, largest size) "
        "| break-even calls (training, at the largest size that pays off) |"
    )
    assert lines[2] == (
        "| c | k=3 | **port** | torch ×2.00 (1.96–2.04) at n=8, ×2.00 (1.96–2.04) at n=64 "
        "| **port** | torch ×2.00 (1.96–2.04) at n=8, ×2.00 (1.96–2.04) at n=64 | — |"
    )
    assert lines[3] == (
        "| c | k=15 | **undecided at n=128** "
        "| torch ×0.50 (0.49–0.51) at n=8, ×1.00 (0.80–1.30) at n=128 "
        "| **undecided at n=128** "
        "| torch ×0.50 (0.49–0.51) at n=8, ×1.00 (0.80–1.30) at n=128 | — |"
    )
