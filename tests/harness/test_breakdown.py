"""The pure aggregation of profiler events into parts (harness.breakdown): no torch,
no worker; crafted event trees."""

from __future__ import annotations

import math

import pytest

from harness.breakdown import (
    KINDS,
    ROOT,
    Costs,
    ProfEvent,
    aggregate,
    bridge_name,
    code_name,
    kernel_name,
    kind_shares,
    numpy_name,
    reconcile,
)


def _tree() -> list[ProfEvent]:
    """A NumPy layer's step: root 100 µs; a bridge call with an aten copy inside it;
    a SciPy call; the custom Function's apply; a native aten op with a child."""
    return [
        ProfEvent(1, ROOT, 0, 100),
        ProfEvent(2, "NumpyFunction", 2, 60, parent=1),
        ProfEvent(3, bridge_name("torch.Tensor.new"), 5, 20, parent=2, traced=4),
        ProfEvent(4, "aten::copy_", 8, 18, parent=3),
        ProfEvent(5, numpy_name("scipy.signal.correlate2d"), 22, 55, parent=2, traced=10),
        ProfEvent(6, "aten::convolution_backward", 62, 92, parent=1),
        ProfEvent(7, "aten::empty", 63, 65, parent=6),
    ]


def test_parts_take_self_times_and_annotations_own_what_runs_inside() -> None:
    b = aggregate(_tree())
    parts = {(p.kind, p.part): p for p in b.parts}
    # the aten copy inside Tensor.new is bridge time, not a kernel of its own
    assert parts["bridge", "torch.Tensor.new"].seconds == pytest.approx(15e-6)
    assert ("kernel", "aten::copy_") not in parts
    assert parts["numpy", "scipy.signal.correlate2d"].seconds == pytest.approx(33e-6)
    assert parts["kernel", "aten::convolution_backward"].seconds == pytest.approx(28e-6)
    assert parts["kernel", "aten::empty"].seconds == pytest.approx(2e-6)
    # the Function's own time (58 - 15 - 33) and the root's (100 - 58 - 30)
    assert parts["python", "autograd Function dispatch"].seconds == pytest.approx(10e-6)
    assert parts["python", "Python between calls"].seconds == pytest.approx(12e-6)
    assert b.profiled_s == pytest.approx(100e-6)
    assert [p.seconds for p in b.parts] == sorted((p.seconds for p in b.parts), reverse=True)


@pytest.mark.parametrize(
    "costs", [None, Costs(), Costs(event_s=1e-7, inside_s=5e-8, op_s=2e-7, span_s=3e-7)]
)
def test_shares_of_one_case_sum_to_one(costs: Costs | None) -> None:
    b = aggregate(_tree(), raw_s=120e-6, plain_s=80e-6, costs=costs, outside_traced=20)
    assert math.fsum(p.share for p in b.parts) == pytest.approx(1.0)
    assert math.fsum(b.by_kind().values()) == pytest.approx(1.0)
    assert set(b.by_kind()) == set(KINDS)
    assert b.profiled_s == pytest.approx(math.fsum(p.seconds for p in b.parts))
    if costs is not None and costs.event_s:
        assert b.overhead_s > 0  # the tools' estimated cost, removed
    assert b.plain_s == 80e-6


def test_the_tools_cost_is_removed_where_it_was_spent_and_never_below_zero() -> None:
    costs = Costs(event_s=0.0, inside_s=1e-6, op_s=0.0, span_s=0.0)
    b = aggregate(_tree(), costs=costs)
    parts = {(p.kind, p.part): p for p in b.parts}
    assert parts["numpy", "scipy.signal.correlate2d"].seconds == pytest.approx(23e-6)
    assert parts["bridge", "torch.Tensor.new"].seconds == pytest.approx(11e-6)
    # a cost larger than the part: clipped to 0 with its calls kept (the report reads
    # them as calls too short to time), shares still sum to 1
    big = aggregate(_tree(), costs=Costs(span_s=1.0))
    clipped = {(p.kind, p.part): p for p in big.parts}["numpy", "scipy.signal.correlate2d"]
    assert clipped.seconds == 0.0 and clipped.calls >= 1
    assert math.fsum(p.share for p in big.parts) == pytest.approx(1.0)


def test_device_kernels_get_the_synchronisation_wait_by_their_device_time() -> None:
    events = [
        ProfEvent(1, ROOT, 0, 100),
        ProfEvent(2, "aten::mm", 1, 11, parent=1),
        ProfEvent(3, "cudaDeviceSynchronize", 12, 92, parent=1),
        ProfEvent(4, "ampere_sgemm", 13, 73, device=True),
        ProfEvent(5, "elementwise_kernel", 73, 93, device=True),
    ]
    b = aggregate(events)
    parts = {(p.kind, p.part): p.seconds for p in b.parts}
    assert parts["kernel", "ampere_sgemm"] == pytest.approx(60e-6)
    assert parts["kernel", "elementwise_kernel"] == pytest.approx(20e-6)
    assert math.fsum(p.share for p in b.parts) == pytest.approx(1.0)


def test_an_empty_call_still_has_shares_summing_to_one() -> None:
    b = aggregate([ProfEvent(1, ROOT, 0, 0), ProfEvent(2, "aten::view", 0, 0, parent=1)])
    assert math.fsum(p.share for p in b.parts) == pytest.approx(1.0)


def test_reconcile_and_kind_shares() -> None:
    assert reconcile(1.2, 1.0) == pytest.approx(0.2)
    assert reconcile(None, 1.0) is None and reconcile(1.0, 0.0) is None
    rows = [
        {"kind": "numpy", "share": 0.5},
        {"kind": "bridge", "share": 0.25},
        {"kind": "numpy", "share": 0.25},
        {"kind": "bogus", "share": 1.0},
    ]
    assert kind_shares(rows) == {
        "numpy": 0.75,
        "bridge": 0.25,
        "python": 0.0,
        "code": 0.0,
        "kernel": 0.0,
        "other": 0.0,
    }


def test_a_runtime_call_is_a_kernel_part_owning_what_runs_inside_it() -> None:
    events = [
        ProfEvent(1, ROOT, 0, 50),
        ProfEvent(2, kernel_name("onnxruntime.Session.run"), 5, 45, parent=1, traced=2),
        ProfEvent(3, "aten::empty", 10, 12, parent=2),
    ]
    b = aggregate(events)
    parts = {(p.kind, p.part): p for p in b.parts}
    assert parts["kernel", "onnxruntime.Session.run"].seconds == pytest.approx(40e-6)
    assert parts["kernel", "onnxruntime.Session.run"].tool == "sys.setprofile"
    assert ("kernel", "aten::empty") not in parts


def test_a_function_body_owns_only_its_self_time_and_its_calls_keep_their_parts() -> None:
    """A numba layer: the Function's forward body (``code::``) runs a jitted function no
    tool sees (its self time), one bridge call and one aten op, which keep their parts;
    the Function's record function keeps only what is outside the body (dispatch)."""
    events = [
        ProfEvent(1, ROOT, 0, 100),
        ProfEvent(2, "SoftDTW", 1, 96, parent=1),
        ProfEvent(3, code_name("SoftDTW.forward"), 3, 95, parent=2, traced=6),
        ProfEvent(4, bridge_name("torch.Tensor.numpy"), 4, 6, parent=3, traced=0),
        ProfEvent(5, "aten::select", 90, 92, parent=3),
    ]
    costs = Costs(event_s=1e-7, span_s=3e-7)
    b = aggregate(events, costs=costs)
    parts = {(p.kind, p.part): p for p in b.parts}
    # 92 µs of body less the bridge call's 2 and the op's 2; less the tools' cost in it:
    # one annotation and the 6 Python events the hook looked at inside the body
    assert parts["code", "SoftDTW.forward"].seconds == pytest.approx(88e-6 - 3e-7 - 6e-7)
    assert parts["code", "SoftDTW.forward"].tool == "sys.setprofile"
    assert parts["bridge", "torch.Tensor.numpy"].seconds == pytest.approx(2e-6 - 3e-7)
    assert parts["kernel", "aten::select"].seconds == pytest.approx(2e-6)
    assert parts["python", "autograd Function dispatch"].seconds == pytest.approx(3e-6)
    assert b.by_kind()["code"] > 0.85
    assert "code" in KINDS
