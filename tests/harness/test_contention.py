"""The probe of a call alternating with torch's ops (harness.contention): its arithmetic
on a fake clock, its bounds, and what the setup pass records of it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.contention import MAX_CALL_S, Alternation, alternation, probe


def _scripted_clock(durations: list[float]) -> Callable[[], float]:
    """A clock whose reads come in (start, end) pairs ``durations`` apart, in order."""
    state = {"now": 0.0, "reads": 0}

    def clock() -> float:
        state["reads"] += 1
        if state["reads"] % 2 == 0:  # an end: the next planned duration has passed
            state["now"] += durations.pop(0)
        return state["now"]

    return clock


def test_alternation_nets_each_cycle_of_its_op_back_to_back() -> None:
    found = alternation([5e-3, 6e-3, 5e-3], [2e-3, 2e-3, 9e-3], [1e-3] * 3, [0.5e-3] * 3)
    assert found == Alternation(pytest.approx(4e-3), pytest.approx(1.5e-3))
    assert found.ratio == pytest.approx(4 / 1.5)
    # an op slower alone than in a cycle (noise) nets to zero, not to a negative cost
    assert alternation([1e-3], [1e-3], [2e-3], [2e-3]) == Alternation(0.0, 0.0)
    assert Alternation(1e-3, 0.0).ratio == float("inf")


def test_the_probe_times_cycles_and_ops_in_the_order_documented() -> None:
    calls = []
    cycles = 3
    # two warm cycles, then per cycle: torch cycle, NumPy cycle, torch op, NumPy op
    plan = [9.0, 9.0] + [5e-3, 2e-3, 1e-3, 0.5e-3] * cycles
    found = probe(lambda: calls.append(1), 1e-3, cycles=cycles, clock=_scripted_clock(plan))
    assert found == Alternation(pytest.approx(4e-3), pytest.approx(1.5e-3))
    assert len(calls) == 2 + 2 * cycles  # the call runs in every cycle, never alone
    assert plan == []


def test_a_call_slower_than_the_spin_wait_matters_is_not_probed() -> None:
    calls = []
    assert probe(lambda: calls.append(1), MAX_CALL_S * 2) is None
    assert calls == []


def test_the_setup_probes_a_baseline_at_two_threads_only(tmp_path: Path) -> None:
    from harness.case import Variant
    from harness.protocol import EventLog, Job, SetupDone
    from harness.worker import Worker

    raw = tmp_path / "setup.jsonl"
    layers = str(Path(__file__).resolve().parents[1] / "fixtures" / "dtype_layers.py")
    worker = Worker(Job("setup", (), str(raw), layers_from=(layers,), memory=False))
    worker.setup(Variant.make("exp32", "numpy", {"n": 64}, threads=2))
    worker.setup(Variant.make("exp32", "numpy", {"n": 1024}, threads=1))
    worker.setup(Variant.make("exp32", "torch", {"n": 64}, threads=2))
    worker.log.close()
    forward = {
        (e.variant.impl, e.variant.threads): e.phases["forward"]
        for e in EventLog.read(raw)
        if isinstance(e, SetupDone)
    }
    probed = forward[("numpy", 2)]
    assert probed.alternating_torch_s is not None and probed.alternating_numpy_s is not None
    assert probed.alternating_torch_s >= 0 and probed.alternating_numpy_s >= 0
    for key in (("numpy", 1), ("torch", 2)):  # one thread, or torch beside torch
        assert forward[key].alternating_torch_s is None, key
        assert forward[key].alternating_numpy_s is None, key
