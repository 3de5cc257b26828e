"""The probe of a call alternating with torch's ops (harness.contention): its arithmetic
on a fake clock, its bounds, and what the setup pass records of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.contention import (
    MAX_CALL_S,
    MAX_WAIT_S,
    POLL_S,
    Alternation,
    PoolWatch,
    alternation,
    own_threads,
    probe,
    running_threads,
    thread_runtimes,
)


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
    found = probe(
        lambda: calls.append(1), 1e-3, cycles=cycles, clock=_scripted_clock(plan), cpu=lambda c: 2.0
    )
    assert found == Alternation(pytest.approx(4e-3), pytest.approx(1.5e-3))
    assert len(calls) == 2 + 2 * cycles  # the call runs in every cycle, never alone
    assert plan == []


def test_a_call_slower_than_the_spin_wait_matters_or_on_one_thread_is_not_probed() -> None:
    calls = []
    assert probe(lambda: calls.append(1), MAX_CALL_S * 2) is None
    assert calls == []
    # one thread: it holds no core torch's threads need (lfilter under load read ×1.41)
    assert probe(lambda: calls.append(1), 1e-3, cpu=lambda c: 1.0) is None
    assert calls == []


def test_cpu_share_is_process_cpu_over_wall_time() -> None:
    from harness.contention import cpu_share

    ticks = iter([0.0, 10.0, 0.5, 11.0])  # read wall, cpu, then wall, cpu: 0.5 s, 1 s
    share = cpu_share(lambda: None, wall=lambda: next(ticks), cpu=lambda: next(ticks))
    assert share == pytest.approx(2.0)


def _forward_setups(tmp_path: Path, fixture: str, variants: list[Any], cache: Path | None) -> dict:
    from harness.protocol import EventLog, Job, SetupDone
    from harness.worker import Worker

    raw = tmp_path / f"setup-{len(list(tmp_path.iterdir()))}.jsonl"
    layers = str(Path(__file__).resolve().parents[1] / "fixtures" / fixture)
    job = Job("setup", (), str(raw), layers_from=(layers,), memory=False)
    if cache is not None:
        job = replace(job, cache_dir=str(cache))
    worker = Worker(job)
    for variant in variants:
        worker.setup(variant)
    worker.log.close()
    return {
        (e.variant.impl, e.variant.threads): (e.phases["forward"], e.cache)
        for e in EventLog.read(raw)
        if isinstance(e, SetupDone)
    }


def test_the_setup_probes_a_baseline_of_its_own_threads_at_two_threads_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether a call runs threads of its own is ``cpu_share``'s (tested above on a fake
    clock): faked here, since a busy machine (tests in parallel) runs a BLAS product's
    threads one at a time."""
    import harness.contention
    from harness.case import Variant

    monkeypatch.setattr(harness.contention, "cpu_share", lambda call: 2.0)
    variants = [
        Variant.make("gram", "numpy", {"n": 512}, threads=2),
        Variant.make("gram", "numpy", {"n": 512}, threads=1),
        Variant.make("gram", "torch", {"n": 512}, threads=2),
    ]
    cache = tmp_path / "cache"
    for round_ in ("cold", "from the cache"):
        forward = _forward_setups(tmp_path, "pool_layers.py", variants, cache)
        probed, how = forward[("numpy", 2)]
        assert how == ("hit" if round_ == "from the cache" else "miss"), round_
        # measured afresh on a cache hit: a timing never comes from the cache
        assert probed.alternating_torch_s is not None, round_
        assert probed.alternating_numpy_s is not None, round_
        for key in (("numpy", 1), ("torch", 2)):  # one thread, or torch beside torch
            assert forward[key][0].alternating_torch_s is None, (round_, key)
    # a call on one thread is not probed
    monkeypatch.setattr(harness.contention, "cpu_share", lambda call: 1.0)
    forward = _forward_setups(tmp_path, "pool_layers.py", variants[:1], None)
    assert forward[("numpy", 2)][0].alternating_torch_s is None


def test_a_call_found_on_one_thread_is_not_checked_again_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # whether a call runs threads of its own is its code's, which keys the entry; the
    # check's pause cost every baseline variant of a warm run 0.25 s and more
    import harness.contention
    from harness.case import Variant

    shares: list[int] = []

    def one_thread(call: Any) -> float:
        shares.append(1)
        return 1.0

    monkeypatch.setattr(harness.contention, "cpu_share", one_thread)
    variants = [Variant.make("gram", "numpy", {"n": 512}, threads=2)]
    cache = tmp_path / "cache"
    cold = _forward_setups(tmp_path, "pool_layers.py", variants, cache)
    assert cold[("numpy", 2)][1] == "miss" and shares == [1]
    warm = _forward_setups(tmp_path, "pool_layers.py", variants, cache)
    assert warm[("numpy", 2)][1] == "hit"
    assert warm[("numpy", 2)][0].alternating_torch_s is None
    assert shares == [1]  # not checked again


# -- PoolWatch: each value starts once the other cases' threads give the cores back ----


class _Threads:
    """Fake readers: ``running`` answers from a script of sets, then the last one."""

    def __init__(self, running: list[set[int]], runtimes: list[dict[int, int]] | None = None):
        self.script = list(running)
        self.times = list(runtimes or [])
        self.now = 0.0
        self.polls = 0

    def running(self) -> set[int]:
        self.polls += 1
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def runtimes(self) -> dict[int, int]:
        return self.times.pop(0)

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def _watch(fake: _Threads, cpus: int = 2) -> PoolWatch:
    return PoolWatch(
        cpus=cpus, runtimes=fake.runtimes, running=fake.running, clock=fake.clock,
        sleep=fake.sleep,
    )  # fmt: skip


def test_a_thread_is_a_cases_own_when_it_ran_a_fifth_of_its_value() -> None:
    before = {1: 0, 2: 0, 3: 0}
    after = {1: 10_000_000, 2: 1_000_000, 3: 0, 4: 5_000_000}  # 4 started during it
    assert own_threads(before, after, elapsed_s=0.01) == {1, 4}


def test_learning_waits_for_every_other_thread_to_rest_then_keeps_those_the_value_ran() -> None:
    fake = _Threads([{7}, {7}, set()], runtimes=[{5: 0, 7: 0}, {5: 9_000_000, 7: 0}])

    def value() -> float:
        fake.now += 0.01
        return 0.01

    watch = _watch(fake)
    assert watch.learn("scipy", value) == 0.01
    assert watch.own == {"scipy": frozenset({5})}
    assert watch.waited_s == pytest.approx(2 * POLL_S)  # 7 ran for two looks


def test_a_value_waits_while_others_hold_the_cores_its_own_threads_need() -> None:
    # after SciPy's value its BLAS thread 9 spins; torch's value needs its thread 5
    fake = _Threads([{9}, {9}, {9}, {5}])
    watch = _watch(fake)
    watch.own = {"torch": frozenset({5}), "scipy": frozenset({9})}
    watch.settle("torch")
    assert watch.waited_s == pytest.approx(3 * POLL_S)
    # its own threads spinning (its previous value's) are no reason to wait
    fake.script, fake.now, watch.waited_s = [{5}], 0.0, 0.0
    watch.settle("torch")
    assert watch.waited_s == 0.0


def test_a_value_on_one_thread_waits_only_when_others_fill_every_core() -> None:
    fake = _Threads([{5}])
    watch = _watch(fake)
    watch.own = {"scipy": frozenset()}
    watch.settle("scipy")  # one spinning thread leaves the second core to it
    assert watch.waited_s == 0.0
    fake.script = [{5, 9}, {5, 9}, set()]
    watch.settle("scipy")
    assert watch.waited_s == pytest.approx(2 * POLL_S)


def test_a_thread_busy_past_the_longest_wait_is_not_waited_for_again() -> None:
    fake = _Threads([{3}])  # a user's thread that never rests
    watch = _watch(fake)
    watch.own = {"torch": frozenset({5})}
    watch.settle("torch")
    assert MAX_WAIT_S <= watch.waited_s < MAX_WAIT_S + 2 * POLL_S
    assert watch.ignored == {3}
    polls = fake.polls
    watch.settle("torch")
    assert fake.polls == polls + 1  # one look, no wait


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux /proc only")
def test_the_readers_see_a_real_thread_run_and_rest() -> None:
    import threading
    import time

    stop = threading.Event()
    started = threading.Event()

    def spin() -> None:  # native work with the GIL released, as a pool's thread runs
        import hashlib

        data = b"x" * 1_000_000
        started.set()
        while not stop.is_set():
            hashlib.sha256(data)

    PoolWatch().rest()  # pools an earlier test left spinning rest first
    thread = threading.Thread(target=spin)
    before = thread_runtimes()
    thread.start()
    started.wait()
    try:
        time.sleep(0.02)  # the spinner has the GIL and a CPU
        # seen running at some look: at any one look it may be waiting for the GIL
        # that the look itself holds (state S), the more so on a loaded machine
        seen = False
        for _ in range(100):
            if thread.native_id in running_threads():
                seen = True
                break
            time.sleep(0.002)
        assert seen
        assert thread.native_id in own_threads(before, thread_runtimes(), 0.02)
    finally:
        stop.set()
        thread.join()
    watch = PoolWatch()
    watch.rest()
    assert thread.native_id not in running_threads()


@pytest.mark.parametrize(("call_s", "woken"), [(0.005, True), (0.05, False)])
def test_timed_rounds_settle_before_each_value_and_wake_a_short_single_call_after_a_wait(
    call_s: float, woken: bool
) -> None:
    import random

    from harness.worker import WAKE_CALL_UNDER_S, _time_rounds, _Timed

    assert call_s < WAKE_CALL_UNDER_S if woken else call_s >= WAKE_CALL_UNDER_S
    calls: list[tuple[str, int]] = []

    def func(name: str) -> Callable[[int], float]:
        def time_func(loops: int) -> float:
            calls.append((name, loops))
            return call_s * loops  # one call lasts min_time or more: a value of one call

        return time_func

    class Watch(PoolWatch):
        def __init__(self) -> None:
            super().__init__(cpus=2)
            self.settled: list[str] = []

        def learn(self, name: str, value: Callable[[], float]) -> float:
            return value()

        def settle(self, name: str) -> float:
            self.settled.append(name)
            return 0.05 if name == "torch" else 0.0  # torch waits for SciPy's pool

    watch, timed = Watch(), _Timed()
    funcs = {"scipy": func("scipy"), "torch": func("torch")}
    _time_rounds(funcs, {"scipy": 1, "torch": 1}, 3, random.Random(0), timed, 0.005, watch)
    assert sorted(watch.settled) == ["scipy"] * 3 + ["torch"] * 3  # every timed value
    # warm-up round, then per round: scipy's value, and torch's value, after an untimed
    # call where the call is short (a sleeping pool's waking is then worth its cost)
    assert calls.count(("scipy", 1)) == 1 + 3
    assert calls.count(("torch", 1)) == 1 + (2 if woken else 1) * 3
    assert timed.values == {"scipy": [call_s] * 3, "torch": [call_s] * 3}


def test_a_look_that_finds_the_cores_free_is_no_wait() -> None:
    fake = _Threads([{9}])

    def look() -> set[int]:
        fake.now += 0.0001  # reading /proc takes time, and is no wait
        return fake.running()

    watch = PoolWatch(cpus=2, running=look, clock=fake.clock, sleep=fake.sleep)
    watch.own = {"torch": frozenset({5})}
    fake.script = [set()]
    assert watch.settle("torch") == 0.0 and watch.waited_s == 0.0
