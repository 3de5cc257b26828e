"""Timing logic with a fake clock: what is timed, and how loops are calibrated."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch

from harness.measure import (
    backward_time_func,
    calibrate_loops,
    forward_time_func,
    set_threads,
    step_time_func,
)
from harness.progress import Progress, format_duration


class FakeClock:
    """Each call to the timed function advances the clock by ``per_call`` seconds."""

    def __init__(self, per_call: float) -> None:
        self.now = 0.0
        self.per_call = per_call
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def fn(self, *args: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.now += self.per_call
        return args[0]


def test_forward_time_func_times_exactly_the_loops() -> None:
    clock = FakeClock(per_call=0.002)
    tf = forward_time_func(clock.fn, [torch.ones(2)], clock=clock)
    assert tf(5) == pytest.approx(0.010)
    assert clock.calls == 6  # and one untimed call before the clock starts


class _Timeline:
    """A clock and a function that log, in order, when each is called."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def clock(self) -> float:
        self.log.append("clock")
        return float(len(self.log))

    def fn(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append("call")
        return x * 2


@pytest.mark.parametrize("phase", ["forward", "step", "backward"])
def test_each_value_starts_with_one_untimed_call(phase: str) -> None:
    # a loop of steps keeps the thread pools awake between calls; a value interleaved
    # with other implementations' must not time their waking up (harness.measure)
    t = _Timeline()
    x = torch.ones(3, requires_grad=True)
    if phase == "forward":
        tf = forward_time_func(t.fn, (x,), clock=t.clock)
    elif phase == "step":
        tf = step_time_func(t.fn, (x,), (True,), torch.ones(3), clock=t.clock)
    else:
        out = t.fn(x)
        t.log.clear()
        backward = torch.autograd.grad

        def grad(*args: object, **kwargs: object) -> object:
            t.log.append("call")
            return backward(*args, **kwargs)  # type: ignore[arg-type]

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(torch.autograd, "grad", grad)
            tf = backward_time_func(out, (x,), torch.ones(3), clock=t.clock)
            tf(3)
            assert t.log == ["call", "clock", "call", "call", "call", "clock"]
            t.log.clear()
            tf(1)
            assert t.log == ["clock", "call", "clock"]
        return
    tf(3)
    assert t.log == ["call", "clock", "call", "call", "call", "clock"]
    t.log.clear()
    tf(1)  # a value of one call: none (a long call re-forms its thread team anyway)
    assert t.log == ["clock", "call", "clock"]


def test_forward_runs_without_building_a_graph() -> None:
    seen = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        seen.append(y.requires_grad)
        return y

    forward_time_func(fn, [torch.ones(2, requires_grad=True)])(2)
    assert seen == [False, False, False]  # the untimed call, then the 2 timed


def test_backward_time_func_returns_fresh_gradients_each_call() -> None:
    x = torch.ones(3, requires_grad=True)
    y = (x * 3).sum()
    elapsed = backward_time_func(y, [x], torch.tensor(1.0))(4)
    assert elapsed > 0
    assert x.grad is None  # autograd.grad: nothing accumulates between runs


@pytest.mark.parametrize(
    ("per_call", "min_time", "expected"), [(0.5, 0.1, 1), (0.001, 0.1, 120), (1e-6, 0.01, 12000)]
)
def test_calibration_reaches_min_time(per_call: float, min_time: float, expected: int) -> None:
    clock = FakeClock(per_call)
    tf = forward_time_func(clock.fn, [torch.ones(1)], clock=clock)
    loops, per = calibrate_loops(tf, min_time)
    assert loops * per_call >= min_time or loops == 1
    assert loops == pytest.approx(expected, rel=0.25)
    assert per == pytest.approx(per_call)


def test_calibration_does_not_take_a_stalled_first_call_for_a_long_one() -> None:
    # the first call of a value waits for sleeping thread pools (15 ms beside a busy
    # core) unless an untimed call woke them: calibrated on a stall, a 0.1 ms call
    # would be timed one call a value, every value a stall
    clock = FakeClock(per_call=1e-4)
    cold = [False]

    def fn(*args: torch.Tensor) -> torch.Tensor:
        if cold[0]:
            clock.now += 0.015
            cold[0] = False
        return clock.fn(*args)

    tf = forward_time_func(fn, [torch.ones(1)], clock=clock)

    def value(loops: int) -> float:
        cold[0] = True  # other implementations' values ran since the last one
        return tf(loops)

    loops, per = calibrate_loops(value, 0.005)
    assert loops >= 50 and per == pytest.approx(1e-4)
    # a call that is long warm is still one call a value
    long = FakeClock(per_call=0.02)
    assert calibrate_loops(forward_time_func(long.fn, [torch.ones(1)], clock=long), 0.005)[0] == 1


def test_calibration_is_capped() -> None:
    clock = FakeClock(1e-9)
    tf = forward_time_func(clock.fn, [torch.ones(1)], clock=clock)
    loops, _ = calibrate_loops(tf, 10.0, max_loops=1024)
    assert loops == 1024


def test_progress_eta_with_a_fake_clock(capsys: pytest.CaptureFixture[str]) -> None:
    now = [0.0]
    progress = Progress(enabled=True, clock=lambda: now[0])
    progress.begin("timing", 11)
    for i in range(11):
        now[0] = float(i)
        progress.step(f"case-{i}")
    assert progress.eta() == pytest.approx(1.0)
    err = capsys.readouterr().err
    assert "timing: 11 tasks" in err and "ETA" in err
    assert format_duration(75) == "1m15s" and format_duration(7300) == "2h01m"


class _Recorded(torch.autograd.Function):
    """x * w, saving both for backward, and recording the modes it ran under."""

    seen: ClassVar[list[tuple[str, bool, bool]]] = []

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, w)
        return x * w

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        x, w = ctx.saved_tensors
        _Recorded.seen.append(("backward", True, False))
        return grad * w, grad * x


def _recorded(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    # (inside Function.forward grad mode is always off: the caller's mode is what counts)
    _Recorded.seen.append(("forward", torch.is_grad_enabled(), torch.is_inference_mode_enabled()))
    out = _Recorded.apply(x, w)
    _outputs.append(out)
    return out


_outputs: list[torch.Tensor] = []


def test_the_step_records_the_graph_and_frees_it() -> None:
    _Recorded.seen.clear()
    _outputs.clear()
    x, w = torch.randn(4), torch.randn(4)
    leaves = (x.requires_grad_(), w.requires_grad_())
    time_func = step_time_func(_recorded, leaves, (True, True), torch.ones(4))
    with torch.no_grad():  # whatever the caller's mode, the step records its graph
        time_func(3)
    # every call: a forward that recorded a graph (grad mode on, not inference), then
    # the backward through it
    # (the first: the untimed step before the clock starts)
    assert _Recorded.seen == [("forward", True, False), ("backward", True, False)] * 4
    assert all(out.grad_fn is not None for out in _outputs)
    # and no graph survives the call: each backward freed its own
    for out in _outputs:
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            torch.autograd.grad(out, leaves, torch.ones(4))
    # gradients are returned, never accumulated
    assert x.grad is None and w.grad is None


def test_the_inference_forward_runs_in_inference_mode() -> None:
    seen: list[tuple[bool, bool]] = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        seen.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
        return x

    x = torch.randn(3, requires_grad=True)
    forward_time_func(fn, (x,), inference=True)(2)
    forward_time_func(fn, (x,))(1)  # a baseline: no_grad, not inference mode
    # the first value: the untimed call, then the 2 timed; the second, 1 call alone
    assert seen == [(True, False)] * 3 + [(False, False)]


def test_each_served_call_enters_its_own_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    # a request handler enters inference_mode per request: 2.5 us of a 15 us call
    entered: list[str] = []

    class Counting:
        def __init__(self, name: str) -> None:
            self.name = name

        def __enter__(self) -> None:
            entered.append(self.name)

        def __exit__(self, *exc: object) -> None:
            entered.append("exit")

    monkeypatch.setattr(torch, "inference_mode", lambda: Counting("inference"))
    monkeypatch.setattr(torch, "no_grad", lambda: Counting("no_grad"))
    clock = FakeClock(per_call=0.001)
    forward_time_func(clock.fn, [torch.ones(1)], clock=clock, inference=True)(3)
    assert entered == ["inference", "exit"] * 4  # the untimed call, then each of 3
    entered.clear()
    forward_time_func(clock.fn, [torch.ones(1)], clock=clock)(1)
    assert entered == ["no_grad", "exit"]


def test_an_onnx_runtime_call_is_bare() -> None:
    seen: list[tuple[bool, bool]] = []

    def session(x: torch.Tensor) -> torch.Tensor:
        seen.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
        return x

    forward_time_func(session, (torch.ones(1),), inference=True, grad_mode=False)(2)
    assert seen == [(False, True)] * 3


def test_one_served_call_is_in_the_mode_the_timed_calls_are() -> None:
    from harness.measure import served_call

    seen: list[tuple[bool, bool]] = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        seen.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
        return x

    x = torch.ones(1)
    for inference, grad_mode in ((True, True), (False, True), (True, False)):
        forward_time_func(fn, (x,), inference=inference, grad_mode=grad_mode)(1)
        served_call(fn, (x,), inference, grad_mode)
        assert seen[-1] == seen[-2]
    assert seen[::2] == [(True, False), (False, False), (False, True)]


def test_a_loop_count_is_kept_unless_the_warm_up_says_it_is_far_off() -> None:
    from harness.measure import recalibrated_loops

    min_time = 0.01
    # 100 calls of 0.1 ms: a value of 10 ms, as planned
    assert recalibrated_loops(100, 1e-4, min_time) == 100
    # at least min_time/2: kept (no churn from a noisy warm-up)
    assert recalibrated_loops(100, 0.6e-4, min_time) == 100
    assert recalibrated_loops(100, 3.9e-4, min_time) == 100
    # values that would last 1 ms: calibrated again, with pyperf's 20% margin
    assert recalibrated_loops(100, 1e-5, min_time) == 1200
    # never down: a slow warm-up call (a first backward) says nothing sure
    assert recalibrated_loops(100, 1e-3, min_time) == 100
    assert recalibrated_loops(8, 0.5, min_time) == 8


def test_set_threads_sets_torch_and_the_native_pools() -> None:
    import numpy  # noqa: F401  (its BLAS loaded, for threadpoolctl to find)
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    try:
        for n in (1, 2):
            set_threads(n)
            assert torch.get_num_threads() == n
            assert {p["num_threads"] for p in threadpool_info()} == {n}
    finally:
        set_threads(before)


def test_native_pools_are_found_again_only_after_an_import(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    import threadpoolctl

    import harness.measure as measure

    made: list[object] = []

    class Controller:
        def __init__(self) -> None:
            made.append(self)

        def limit(self, limits: int) -> None:
            pass

    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", Controller)
    monkeypatch.setattr(measure, "_POOLS", None)
    set_threads(torch.get_num_threads())
    set_threads(torch.get_num_threads())
    assert len(made) == 1  # no scan of the libraries per call
    # a module imported since may have loaded a library with a pool of its own
    monkeypatch.setitem(sys.modules, "harness_test_fresh_extension", types.ModuleType("x"))
    set_threads(torch.get_num_threads())
    assert len(made) == 2
