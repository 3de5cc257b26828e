"""Verdicts on crafted frames: crossovers, significance, gradients, failures."""

from __future__ import annotations

import math
from types import ModuleType

import pytest

from harness.report import layer_verdicts
from harness.report._data import Measure
from harness.report._stats import compare_measures
from harness.report.verdict import (
    FIX_GRADIENT,
    KEEP,
    KEEP_ABOVE,
    PORT,
    PORT_ABOVE,
    Verdict,
    find_crossovers,
)

SIZES = (16, 32, 128, 256)


def verdict_of(rf: ModuleType, rows: list[dict], raw: bool = True, **kw: float) -> Verdict:
    (v,) = layer_verdicts(rf.frame(rows), rf.raw_for(rows) if raw else None, **kw)
    return v


def test_find_crossovers_interpolates_geometrically() -> None:
    (c,) = find_crossovers([(10, 0.5), (100, 2.0)])
    assert c.size == pytest.approx(math.sqrt(10 * 100))
    assert (c.lower, c.upper, c.faster_above) == (10, 100, "native")
    (c,) = find_crossovers([(10, 4.0), (100, 0.5)])
    # log-speedup falls from log 4 to log 0.5: it crosses 0 two thirds of the way
    assert c.size == pytest.approx(10 ** (1 + 2 / 3))
    assert c.faster_above == "baseline"


def test_find_crossovers_on_a_grid_point_and_none() -> None:
    (c,) = find_crossovers([(8, 0.5), (16, 1.0), (32, 2.0)])
    assert c.size == 16
    assert find_crossovers([(8, 2.0), (16, 3.0)]) == []


@pytest.mark.parametrize("raw", [True, False], ids=["mann-whitney", "min-max"])
def test_port_above_an_interpolated_crossover(rf: ModuleType, raw: bool) -> None:
    # speedup n/64 = 0.25, 0.5, 2, 4: crosses 1 at sqrt(32 * 128) = 64, off the grid
    rows = rf.series("lay", {"numpy": lambda n: 1e-3, "torch": lambda n: 1e-3 * 64 / n}, SIZES)
    v = verdict_of(rf, rows, raw=raw)
    assert v.kind == PORT_ABOVE
    assert v.threshold == pytest.approx(64)
    assert v.threshold_interpolated
    assert v.headline == "port above n ≈ 64"
    (s,) = v.settings
    assert s.metric == "forward + backward"
    assert [c.faster_above for c in s.crossovers[s.metric]] == ["native"]
    assert "n ≈ 64 (between 32 and 128; torch faster above)" in " ".join(s.reasons)


def test_keep_above_an_interpolated_crossover(rf: ModuleType) -> None:
    # speedup 64/n: native faster below 64, NumPy above
    rows = rf.series("lay", {"numpy": lambda n: 1e-3, "torch": lambda n: 1e-3 * n / 64}, SIZES)
    v = verdict_of(rf, rows)
    assert v.kind == KEEP_ABOVE
    assert v.threshold == pytest.approx(64)
    (c,) = v.settings[0].crossovers["forward + backward"]
    assert c.faster_above == "baseline"
    assert v.headline == "keep above n ≈ 64"


def test_port_when_always_faster_keep_when_always_slower(rf: ModuleType) -> None:
    fast = rf.series("lay", {"numpy": lambda n: 1e-3, "torch": lambda n: 0.5e-3}, SIZES)
    assert verdict_of(rf, fast).kind == PORT
    slow = rf.series("lay", {"numpy": lambda n: 1e-3, "torch": lambda n: 2e-3}, SIZES)
    assert verdict_of(rf, slow).kind == KEEP


def test_a_small_difference_is_not_a_win(rf: ModuleType) -> None:
    # 3% faster with a tight spread: statistically significant, below the 5% effect
    rows = rf.series(
        "lay", {"numpy": lambda n: 1e-3, "torch": lambda n: 1e-3 / 1.03}, SIZES, spread=0.001
    )
    v = verdict_of(rf, rows)
    assert v.kind == KEEP
    points = v.settings[0].points
    assert all(p.test is not None and p.test.significant for p in points)
    assert all(p.winner == "tie" for p in points)
    assert "no reason to port" in " ".join(v.settings[0].reasons)


@pytest.mark.parametrize("raw", [True, False], ids=["mann-whitney", "min-max"])
def test_a_noisy_difference_is_not_a_win(rf: ModuleType, raw: bool) -> None:
    # 20% faster by the medians, but the values overlap widely
    rows = rf.series(
        "lay", {"numpy": lambda n: 1.2e-3, "torch": lambda n: 1e-3}, SIZES, spread=0.8, count=6
    )
    v = verdict_of(rf, rows, raw=raw)
    assert v.kind == KEEP
    assert all(p.winner == "tie" for p in v.settings[0].points)


def test_the_minimum_effect_is_a_parameter(rf: ModuleType) -> None:
    rows = rf.series("lay", {"numpy": lambda n: 1e-3, "torch": lambda n: 1e-3 / 1.08}, SIZES)
    assert verdict_of(rf, rows).kind == PORT
    assert verdict_of(rf, rows, min_effect=0.10).kind == KEEP


def test_mann_whitney_needs_enough_values_else_ranges() -> None:
    few = compare_measures(
        Measure("ok", 2.0, 1.9, 2.1, values=(1.9, 2.0, 2.1)),
        Measure("ok", 1.0, 0.9, 1.1, values=(0.9, 1.0, 1.1)),
    )
    assert few.method.startswith("min-max") and few.decisive
    many = compare_measures(
        Measure("ok", 2.0, 1.9, 2.1, values=(1.9, 1.95, 2.0, 2.05, 2.1)),
        Measure("ok", 1.0, 0.9, 1.1, values=(0.9, 0.95, 1.0, 1.05, 1.1)),
    )
    assert many.method == "Mann-Whitney U"
    assert many.p_value is not None and many.p_value < 0.05
    assert many.ratio == pytest.approx(2.0)


def _fast_wrong_numpy(rf: ModuleType, **baseline_backward: object) -> list[dict]:
    # NumPy is 5x faster than torch, but see its backward
    rows = []
    for n in SIZES:
        rows.append(rf.row("fft", "numpy", n, "forward", 1e-3))
        rows.append(rf.row("fft", "numpy", n, "backward", 1e-3, **baseline_backward))
        rows.append(rf.row("fft", "torch", n, "forward", 5e-3))
        rows.append(rf.row("fft", "torch", n, "backward", 5e-3))
    return rows


def test_fix_the_gradient_first_when_gradients_disagree(rf: ModuleType) -> None:
    v = verdict_of(rf, _fast_wrong_numpy(rf, within_tol=False, max_rel_err=0.9))
    assert v.kind == FIX_GRADIENT
    assert v.headline == "fix the gradient first"
    text = " ".join(v.reasons)
    assert "numpy's gradients disagree with the float64 reference" in text
    assert "max relative error 0.9" in text
    assert v.settings[0].kind == KEEP  # the speed is still worked out and reported


def test_fix_the_gradient_first_when_gradcheck_fails(rf: ModuleType) -> None:
    v = verdict_of(rf, _fast_wrong_numpy(rf, gradcheck=False, gradcheck_error="Jacobian mismatch"))
    assert v.kind == FIX_GRADIENT
    assert "numpy fails torch.autograd.gradcheck (Jacobian mismatch)" in " ".join(v.reasons)


def test_no_fix_first_when_both_sides_disagree(rf: ModuleType) -> None:
    rows = _fast_wrong_numpy(rf, within_tol=False)
    for r in rows:
        if r["impl"] == "torch" and r["phase"] == "backward":
            r["within_tol"] = False
    v = verdict_of(rf, rows)
    assert v.kind == KEEP
    assert "the reference or the tolerance may be at fault" in " ".join(v.reasons)


def test_baseline_backward_failures_are_reported(rf: ModuleType) -> None:
    rows = []
    for n in (8, 9, 16, 17):
        rows.append(rf.row("fft", "numpy", n, "forward", 1e-3))
        if n % 2:
            rows.append(
                rf.row("fft", "numpy", n, "backward", status="error", error="ValueError: shapes")
            )
        else:
            rows.append(rf.row("fft", "numpy", n, "backward", 1e-3))
        rows.append(rf.row("fft", "torch", n, "forward", 0.5e-3))
        rows.append(rf.row("fft", "torch", n, "backward", 0.5e-3))
    v = verdict_of(rf, rows)
    assert v.kind == PORT
    assert "numpy's backward fails at n=9, 17: ValueError: shapes." in " ".join(v.reasons)
    assert [p.winner for p in v.settings[0].points] == ["native", "baseline failed"] * 2


def test_a_baseline_failing_everywhere_means_port(rf: ModuleType) -> None:
    rows = []
    for n in SIZES:
        rows.append(rf.row("lay", "numpy", n, "forward", status="error", error="MemoryError"))
        rows.append(rf.row("lay", "torch", n, "forward", 1e-3))
    assert verdict_of(rf, rows).kind == PORT


def test_forward_only_natives_are_not_training_candidates(rf: ModuleType) -> None:
    rows = rf.series("lay", {"numpy": lambda n: 1e-3, "torch": lambda n: 0.8e-3}, SIZES)
    for n in SIZES:
        rows.append(
            rf.row("lay", "onnxruntime", n, "forward", 0.1e-3, form="onnxruntime", source="torch")
        )
        rows.append(
            rf.row("lay", "onnxruntime", n, "backward", status="unsupported", error="forward only")
        )
    v = verdict_of(rf, rows)
    assert v.settings[0].native == "torch"
    assert v.settings[0].metric == "forward + backward"


def test_a_forward_only_layer_is_decided_on_forward(rf: ModuleType) -> None:
    rows = rf.series(
        "lay", {"numpy": lambda n: 1e-3, "torch": lambda n: 0.5e-3}, SIZES, phases=("forward",)
    )
    v = verdict_of(rf, rows)
    assert v.kind == PORT
    assert v.settings[0].metric == "forward"


def test_settings_are_decided_separately_then_merged(rf: ModuleType) -> None:
    crossing = {"scipy": lambda n: 1e-3, "torch": lambda n: 1e-3 * 64 / n}
    always = {"scipy": lambda n: 1e-3, "torch": lambda n: 0.1e-3}
    rows = rf.series("conv2d", crossing, SIZES, k=3) + rf.series("conv2d", always, SIZES, k=15)
    v = verdict_of(rf, rows)
    assert [s.label for s in v.settings] == ["k=3", "k=15"]
    assert [s.kind for s in v.settings] == [PORT_ABOVE, PORT]
    assert v.kind == PORT_ABOVE
    assert v.threshold == pytest.approx(64)


def test_port_and_keep_settings_merge_to_keep(rf: ModuleType) -> None:
    slower = {"scipy": lambda n: 1e-3, "torch": lambda n: 2e-3}
    faster = {"scipy": lambda n: 1e-3, "torch": lambda n: 0.1e-3}
    rows = rf.series("c", slower, SIZES, k=3) + rf.series("c", faster, SIZES, k=15)
    v = verdict_of(rf, rows)
    assert v.kind == KEEP
    assert v.mixed


def test_capability_gains_are_named(rf: ModuleType) -> None:
    rows = rf.series("lay", {"numpy": lambda n: 1e-3, "torch": lambda n: 0.5e-3}, SIZES)
    caps = rf.capabilities(
        [
            {"layer": "lay", "impl": "numpy", "role": "baseline", "check": "script_save", "status": "unsupported"},
            {"layer": "lay", "impl": "torch", "role": "native", "check": "script_save", "status": "ok"},
            {"layer": "lay", "impl": "numpy", "role": "baseline", "check": "onnx_dynamo", "status": "ok"},
            {"layer": "lay", "impl": "torch", "role": "native", "check": "onnx_dynamo", "status": "ok"},
        ]
    )  # fmt: skip
    (v,) = layer_verdicts(rf.frame(rows), rf.raw_for(rows), caps)
    assert v.capability_gains == ("TorchScript (script and save)",)
    assert "also makes possible: TorchScript (script and save)." in " ".join(v.reasons)
