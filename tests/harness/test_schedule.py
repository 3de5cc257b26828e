"""The scheduler's budget and adaptive passes, in milliseconds: a fake clock, a crafted
state, no worker process."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest

from harness import schedule
from harness.case import PHASES, Group
from harness.collect import Comparison, State, build_outputs
from harness.config import Profile, RunConfig
from harness.errors import ResultsError
from harness.plan import LayerInfo, Plan
from harness.protocol import (
    Crash,
    GradcheckDone,
    PhaseSetup,
    RoundsDone,
    RoundsTask,
    SetupDone,
)
from harness.schedule import Record, Scheduler, Stop, TimingLog, WorkerJob
from harness.stats import Interval, Pending

INFO = LayerInfo(
    name="toy",
    axes=("n",),
    size_axis="n",
    baselines=("numpy",),
    backward=("numpy", "torch"),
    sources={"numpy": "numpy", "torch": "torch"},
    roles={"numpy": "baseline", "torch": "native"},
    forms={"numpy": "eager", "torch": "eager"},
)
PROFILE = Profile(
    "test", budget_s=20, processes=2, min_rounds=3, max_rounds=50, extra_rounds=4, min_time=0.01
)
SIZES = (8, 16, 32)


def plan() -> Plan:
    groups = tuple(Group("toy", (("n", n),)) for n in SIZES)
    config = RunConfig(capabilities=False)
    return Plan(config, ("toy",), groups, {"toy": ("numpy", "torch")}, (), {"toy": INFO})


def set_up(p: Plan) -> State:
    """Every variant set up: each phase 10 calls of 1 ms, so a round costs 60 ms."""
    state = State()
    ok = PhaseSetup("ok", loops=10, estimate_s=1e-3)
    for variant in p.variants:
        state.add(SetupDone(variant, {"forward": ok, "backward": ok, "step": ok}))
    state.add(GradcheckDone("toy", "numpy", True))
    return state


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def timed(state: State, group: Group, process: int, batch: int = 0) -> None:
    values = {
        group.variant(i).case(ph).name: (1e-3, 1e-3, 1e-3)
        for i in ("numpy", "torch")
        for ph in ("forward", "backward", "step")
    }
    state.add(RoundsDone(group, process, batch, values, dict.fromkeys(values, 10)), process)


def interval(estimate: float, low: float, high: float) -> Interval:
    return Interval(estimate, low, high, processes=2, rounds=10)


def fixed(by_size: Mapping[int, Interval]):  # type: ignore[no-untyped-def]
    """Comparisons that say what ``by_size`` says, whatever the rounds."""

    def comparisons(state: State, groups: Sequence[Group]) -> dict[str, dict[str, Comparison]]:
        return {g.name: {"torch": Comparison({}, by_size[int(g.point_dict["n"])])} for g in groups}

    return comparisons


def first_pass(sched: Scheduler, state: State, clock: Clock, seconds: float) -> None:
    """Run the first pass as workers would: each job times its groups."""
    for _ in range(2):
        job = sched.next(state)
        assert isinstance(job, WorkerJob) and job.mode == "timing" and job.attempt == 1
        for task in job.tasks:
            assert isinstance(task, RoundsTask)
            timed(state, task.group, job.process)
        clock.now += seconds / 2


@pytest.fixture(autouse=True)
def _no_own_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The toy's sums leave out what each implementation's process of a visit costs
    (``VISIT_PROCESS_S``); ``test_the_first_pass_budgets_each_visits_processes`` has it."""
    monkeypatch.setattr(schedule, "VISIT_PROCESS_S", 0.0)


def test_the_first_pass_budgets_each_visits_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    # 3 groups x 2 implementations x 2 processes (inference, training) x 0.25 s = 3 s a
    # process; a case's value is 10 calls of 1 ms and an untimed one, 6 cases a group:
    # (half of 40 s - 2 x (4 s start + 3 s)) / (2 x 3 groups x 66 ms) = 15 rounds
    monkeypatch.setattr(schedule, "VISIT_PROCESS_S", 0.25)
    p, clock = plan(), Clock()
    state = set_up(p)
    sched = Scheduler(p, replace(PROFILE, budget_s=40), clock)
    assert sched.first_pass_rounds(state, p.groups) == 15
    # a variant whose training phases failed to set up gets one process a visit
    only_forward = PhaseSetup("ok", loops=10, estimate_s=1e-3)
    failed = PhaseSetup("error", error="boom")
    for variant in p.variants:
        if variant.impl == "torch":
            state.add(
                SetupDone(variant, {"forward": only_forward, "backward": failed, "step": failed})
            )
    # 3 x 3 processes x 0.25 s a process; a group's round: numpy's 3 cases, torch's 1
    assert sched.first_pass_rounds(state, p.groups) == int((20 - 2 * 6.25) / (2 * 3 * 0.044))


def test_first_pass_sizing_fits_half_the_budget() -> None:
    p, clock = plan(), Clock()
    state = set_up(p)
    sched = Scheduler(p, PROFILE, clock)
    job = sched.next(state)
    # half of 20 s, less 2 processes x 4 s to start, over 2 processes x 3 groups x 60 ms
    assert isinstance(job, WorkerJob) and job.process == 0 and job.begin == ("timing", 6)
    assert {t.rounds for t in job.tasks} == {5}  # type: ignore[union-attr]
    assert sched.first_pass_rounds(state, p.groups) == 5
    small = Profile("small", 2, 2, 3, 50, 4, 0.01)  # nothing fits: the profile's minimum
    assert Scheduler(p, small, clock).first_pass_rounds(state, p.groups) == 3
    timed(state, p.groups[0], 0)  # a resumed run keeps the rounds it was timed with
    assert sched.first_pass_rounds(state, p.groups) == 3


def test_setup_comes_first_with_what_is_missing() -> None:
    p = plan()
    state = set_up(p)
    del state.setup[p.variants[1].name]
    job = Scheduler(p, PROFILE, Clock()).next(state)
    assert isinstance(job, WorkerJob) and job.mode == "setup" and job.begin == ("checking", 1)
    assert [t.variant for t in job.tasks] == [p.variants[1]]  # type: ignore[union-attr]


def test_stop_when_decided() -> None:
    p, clock = plan(), Clock()
    state = set_up(p)
    sched = Scheduler(p, PROFILE, clock, fixed(dict.fromkeys(SIZES, interval(2.0, 1.8, 2.2))))
    first_pass(sched, state, clock, 6.0)
    stop = sched.next(state)
    assert isinstance(stop, Stop)
    assert stop.timing.stopped == "every point decided (or equal within the band)"
    assert stop.timing.first_pass == {"processes": 2, "rounds": 5, "groups": 3, "seconds": 6.0}
    assert stop.timing.adaptive == [] and stop.timing.spent_s == 6.0


def test_stop_with_nothing_compared_says_so() -> None:
    """2026-12-01: a layer with no native candidate read "every point decided"."""
    p, clock = plan(), Clock()
    state = set_up(p)
    sched = Scheduler(p, PROFILE, clock, lambda state, groups: {g.name: {} for g in groups})
    first_pass(sched, state, clock, 6.0)
    stop = sched.next(state)
    assert isinstance(stop, Stop)
    assert stop.timing.stopped == "nothing to compare: no candidate ran beside a baseline"


def test_near_crossover_first_then_stop_when_spent() -> None:
    p, clock = plan(), Clock()
    state = set_up(p)
    # n=8 above 1, n=16 below: both next to the crossover; n=32 is closer to deciding
    undecided = {
        8: interval(1.3, 0.9, 1.9),
        16: interval(0.8, 0.5, 1.3),
        32: interval(0.8, 0.7, 1.06),
    }
    sched = Scheduler(p, PROFILE, clock, fixed(undecided))
    first_pass(sched, state, clock, 6.0)
    job = sched.next(state)
    assert isinstance(job, WorkerJob) and job.process == 2 and job.begin is not None
    assert job.begin == ("extra rounds (3 undecided)", 3)
    groups = [t.group.point_dict["n"] for t in job.tasks]  # type: ignore[union-attr]
    assert sorted(groups[:2]) == [8, 16] and groups[2] == 32
    assert {(t.rounds, t.batch) for t in job.tasks} == {(4, 1)}  # type: ignore[union-attr]
    # only what is undecided is timed again, beside the baseline: the training step
    # here (the backward explains and decides nothing; forward is decided)
    timed_again = {(c.variant.impl, c.phase) for t in job.tasks for c, _ in t.cases}  # type: ignore[union-attr]
    assert timed_again == {("numpy", "step"), ("torch", "step")}
    for task in job.tasks:
        timed(state, task.group, 2, batch=1)  # type: ignore[union-attr]
    clock.now += 20.0  # the budget is spent
    stop = sched.next(state)
    assert isinstance(stop, Stop)
    assert stop.timing.stopped == "budget spent with 3 points still undecided"
    [extra] = stop.timing.adaptive
    assert extra == {
        "process": 2,
        "groups": 3,
        "undecided_before": 3,
        "rounds": 4,
        "seconds": 20.0,
    }
    assert stop.timing.spent_s == 26.0


def test_an_adaptive_pass_times_an_undecided_inference_forward_alone() -> None:
    """Training decided, inference (the served forward) not: the extra rounds time the
    forward of the candidate and the baseline, and cost what those cases cost."""
    p, clock = plan(), Clock()
    state = set_up(p)
    decided, open_ = interval(2.0, 1.8, 2.2), interval(1.3, 0.9, 1.9)

    def comparisons(state: State, groups: Sequence[Group]) -> dict[str, dict[str, Comparison]]:
        both = {"forward": open_, "step": decided}
        return {g.name: {"torch": Comparison(both, decided)} for g in groups}

    sched = Scheduler(p, PROFILE, clock, comparisons)
    first_pass(sched, state, clock, 6.0)
    (pending, *_) = sched.pending(state, p.groups)
    assert pending.cost_s == pytest.approx(2 * (10 + 1) * 1e-3)  # 2 cases, not 6
    job = sched.next(state)
    assert isinstance(job, WorkerJob)
    timed_again = {(c.variant.impl, c.phase) for t in job.tasks for c, _ in t.cases}  # type: ignore[union-attr]
    assert timed_again == {("numpy", "forward"), ("torch", "forward")}


def test_a_pass_of_few_cheap_groups_times_more_rounds_per_process() -> None:
    """A round of one group costs 60 ms against 4 s to start its process: with round
    noise and no process level measured, the pass times as many rounds as cost what
    its start does (about 4 s, past ``max_rounds`` here), as far as the budget left
    holds; with a strong process level, the profile's ``extra_rounds``."""

    def noisy(between: float):  # type: ignore[no-untyped-def]
        iv = Interval(1.3, 0.9, 1.9, 2, 10, within_var=0.01, between_var=between)
        return fixed({8: iv, 16: interval(2.0, 1.8, 2.2), 32: interval(2.0, 1.8, 2.2)})

    rounds = {}
    for between, budget in ((0.0, 20), (0.0, 11), (1.0, 20)):
        p, clock = plan(), Clock()
        state = set_up(p)
        profile = replace(PROFILE, budget_s=budget)
        sched = Scheduler(p, profile, clock, noisy(between))
        first_pass(sched, state, clock, 6.0)
        job = sched.next(state)
        assert isinstance(job, WorkerJob)
        [task] = job.tasks
        assert isinstance(task, RoundsTask)
        rounds[between, budget] = task.rounds
    # a round times the undecided step beside the baseline's, 2 x 11 ms; the start is
    # 4 s and the first pass's preparation per group, 0.7 s: 213 rounds, 4.7 s
    assert rounds[0.0, 20] == 213 > PROFILE.max_rounds
    # 11 s budget: 1 s left after the start; the first pass's prep is charged too
    assert PROFILE.extra_rounds < rounds[0.0, 11] < PROFILE.max_rounds
    assert rounds[1.0, 20] == PROFILE.extra_rounds


def test_budget_too_small_for_another_round() -> None:
    p, clock = plan(), Clock()
    state = set_up(p)
    sched = Scheduler(p, PROFILE, clock, fixed(dict.fromkeys(SIZES, interval(1.0, 0.8, 1.3))))
    first_pass(sched, state, clock, 15.9)  # 0.1 s left after a worker's start
    stop = sched.next(state)
    assert isinstance(stop, Stop) and stop.timing.stopped.startswith("budget left (0s) too small")


def test_ties_on_the_band_edge_get_no_more_processes() -> None:
    """×1.04 (1.00–1.09) over 8 processes: what is left of the budget (a few more
    processes) cannot bring its half-width under its 1% distance to the edge; on
    2026-11-30 ten such passes (105 s) decided nothing. A point that can still be
    decided is timed; once only ties are left, timing stops and says why."""
    p, clock = plan(), Clock()
    state = set_up(p)
    tie = Interval(1.04, 1.0, 1.09, processes=8, rounds=40)
    hopeful = interval(1.3, 0.9, 1.9)
    sched = Scheduler(p, PROFILE, clock, fixed({8: tie, 16: tie, 32: hopeful}))
    first_pass(sched, state, clock, 6.0)
    job = sched.next(state)
    assert isinstance(job, WorkerJob)
    assert [t.group.point_dict["n"] for t in job.tasks] == [32]  # type: ignore[union-attr]
    state = set_up(p)
    sched = Scheduler(p, PROFILE, clock, fixed(dict.fromkeys(SIZES, tie)))
    first_pass(sched, state, clock, 6.0)
    stop = sched.next(state)
    assert isinstance(stop, Stop)
    assert stop.timing.stopped.startswith(
        "the 3 undecided points lie too close to the band's edge for what is left"
    )


def test_ties_do_not_shorten_the_projection_of_a_group_that_can_still_decide() -> None:
    """Ten costly ties and one cheap point two more processes decide: counted on passes
    over all eleven, 20 s hold one process and nothing is chosen; the cheap point's
    own passes (4 s to start, 0.4 s of rounds) hold four, so it gets them."""
    from harness.schedule import choose_groups

    tie = Interval(1.04, 1.0, 1.09, processes=8, rounds=40)
    wide = Interval(1.2, 0.95, 1.5, processes=3, rounds=30)
    ties = [Pending(f"tie{i}", (tie,), 1.0, False) for i in range(10)]
    cheap = Pending("cheap", (None, wide), 0.1, False)
    assert choose_groups(PROFILE, [*ties, cheap], 20.0, 0.0, 4.0) == (["cheap"], "")
    # a point that needs more processes than its own passes hold is still left out
    chosen, why = choose_groups(PROFILE, [*ties, cheap], 6.0, 0.0, 4.0)
    assert chosen == [] and why.startswith("the 11 undecided points lie too close")
    # among the hopeful, a costlier one joins while the passes over the set still
    # hold what each needs
    near = Pending("near", (Interval(1.3, 0.9, 1.9, processes=2, rounds=10),), 0.5, False)
    chosen, _ = choose_groups(PROFILE, [*ties, cheap, near], 40.0, 0.0, 4.0)
    assert sorted(chosen) == ["cheap", "near"]


def test_a_dying_worker_leaves_the_rest_to_the_next_and_four_stalls_stop() -> None:
    p, clock = plan(), Clock()
    state = set_up(p)
    sched = Scheduler(p, PROFILE, clock, logs="OUT/logs")
    job = sched.next(state)
    assert isinstance(job, WorkerJob) and len(job.tasks) == 3
    # the worker timed one group, then died on the next: the supervisor wrote a Crash
    first, second, third = job.tasks
    timed(state, first.group, 0)  # type: ignore[union-attr]
    state.add(Crash(second, "worker killed by signal 9 while running it"), 0)
    retry = sched.next(state)
    assert isinstance(retry, WorkerJob) and (retry.process, retry.attempt) == (0, 2)
    assert retry.tasks == (third,) and retry.begin is None
    # workers that finish nothing: retried, then refused after four in a row
    for attempt in (3, 4, 5):
        again = sched.next(state)
        assert isinstance(again, WorkerJob) and again.attempt == attempt
    with pytest.raises(ResultsError, match="workers keep failing; see OUT/logs"):
        sched.next(state)


def _compile_form_at_one_point(
    impls: Mapping[str, tuple[str, str, str]], caps: tuple[Mapping[str, Any], ...]
) -> tuple[State, Scheduler]:
    """A toy layer at n=8 whose implementations are ``name -> (source, role, form)``,
    numpy gradchecked and the capability matrix ``caps`` known."""
    info = LayerInfo(
        name="toy",
        axes=("n",),
        size_axis="n",
        baselines=("numpy",),
        backward=("numpy",),
        sources={k: v[0] for k, v in impls.items()},
        roles={k: v[1] for k, v in impls.items()},
        forms={k: v[2] for k, v in impls.items()},
    )
    groups = (Group("toy", (("n", 8),)),)
    p = Plan(RunConfig(), ("toy",), groups, {"toy": tuple(impls)}, (), {"toy": info})
    state = State()
    state.add(GradcheckDone("toy", "numpy", True))
    state.capabilities["toy"] = caps
    return state, Scheduler(p, PROFILE, Clock())


def _recorded_not_run(state: State, sched: Scheduler, impl: str) -> set[str | None]:
    """The one variant ``sched`` records without running (``impl``): its phases'
    errors; then the job that follows sets up the others."""
    record = sched.next(state)
    assert isinstance(record, Record) and record.raw == "setup.jsonl"
    [done] = record.events
    assert isinstance(done, SetupDone) and done.variant.impl == impl
    assert {ps.status for ps in done.phases.values()} == {"unsupported"}
    state.add(done)
    job = sched.next(state)
    assert isinstance(job, WorkerJob)
    assert impl not in [t.variant.impl for t in job.tasks]  # type: ignore[union-attr]
    return {ps.error for ps in done.phases.values()}


def test_a_natives_compile_form_that_dynamo_captures_nothing_of_is_recorded_not_run() -> None:
    from harness.capabilities import NO_GRAPH

    row = {"impl": "torch", "check": "compile", "status": "ok", "reason": f"{NO_GRAPH}: x"}
    state, sched = _compile_form_at_one_point(
        {
            "numpy": ("numpy", "baseline", "eager"),
            "torch": ("torch", "native", "eager"),
            "compile": ("torch", "native", "compile"),
        },
        (row,),
    )
    (why,) = _recorded_not_run(state, sched, "compile")
    assert why is not None and why.startswith(f"not timed: {NO_GRAPH} of torch"), why


def test_a_compiled_form_not_worth_timing_is_recorded_not_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import harness.capabilities

    monkeypatch.setattr(harness.capabilities, "compile_not_timed", lambda rows, source: "breaks")
    state, sched = _compile_form_at_one_point(
        {
            "numpy": ("numpy", "baseline", "eager"),
            "numpy-compile": ("numpy", "compiled", "compile"),
        },
        (),
    )
    assert _recorded_not_run(state, sched, "numpy-compile") == {"breaks"}


def _with_compile_form() -> tuple[State, Scheduler, object]:
    """The toy layer with torch's compile form: the state (numpy gradchecked), the
    scheduler and its first job (the setup of every variant)."""
    info = replace(
        INFO,
        sources={**INFO.sources, "compile": "torch"},
        roles={**INFO.roles, "compile": "native"},
        forms={**INFO.forms, "compile": "compile"},
    )
    groups = tuple(Group("toy", (("n", n),)) for n in SIZES)
    impls = {"toy": ("numpy", "torch", "compile")}
    p = Plan(RunConfig(capabilities=False), ("toy",), groups, impls, (), {"toy": info})
    state = State()
    state.add(GradcheckDone("toy", "numpy", True))
    sched = Scheduler(p, PROFILE, Clock())
    job = sched.next(state)
    return state, sched, job


def test_a_form_whose_build_timed_out_at_one_size_is_not_built_at_the_others() -> None:
    """A public soft-DTW layer's compile form took the whole 60 s limit at each of three
    sizes (2026-11-30): after the first, the others are recorded, not run."""
    state, sched, job = _with_compile_form()
    assert isinstance(job, WorkerJob) and job.mode == "setup" and len(job.tasks) == 9
    ok = PhaseSetup("ok", loops=10, estimate_s=1e-3)
    # the worker set up n=8's numpy and torch, then was killed building compile at n=8;
    # an eager implementation that timed out would be tried at its other sizes
    for task in job.tasks[:2]:
        state.add(SetupDone(task.variant, dict.fromkeys(PHASES, ok)))  # type: ignore[union-attr]
    assert job.tasks[2].variant.impl == "compile"  # type: ignore[union-attr]
    state.add(Crash.timeout(job.tasks[2], 60, "toy/compile/n=8/..."), -1)
    record = sched.next(state)
    assert isinstance(record, Record) and record.raw == "setup.jsonl"
    assert sorted(d.variant.point_str for d in record.events) == ["n=16", "n=32"]  # type: ignore[union-attr]
    for done in record.events:
        assert isinstance(done, SetupDone) and done.variant.impl == "compile"
        [why] = {ps.error for ps in done.phases.values()}
        assert {ps.status for ps in done.phases.values()} == {"unsupported"}
        assert why == (
            "not built: building its compile form at n=8 ran past the setup limit (60s), "
            "so no other size is tried (`--timeout SECONDS` raises the limit)"
        )
        state.add(done)
    retry = sched.next(state)
    assert isinstance(retry, WorkerJob) and retry.mode == "setup"
    assert {t.variant.impl for t in retry.tasks} == {"numpy", "torch"} and len(retry.tasks) == 4  # type: ignore[union-attr]
    # the timed-out size itself stays an error: it is what failed
    failed = state.setup["toy/compile/n=8/float32/t1/cpu/glibc"].phases["step"]
    assert failed.status == "error" and failed.limit_s == 60


UNDECIDED = {
    8: interval(1.3, 0.9, 1.9),
    16: interval(0.8, 0.5, 1.3),
    32: interval(0.8, 0.7, 1.06),
}


def test_a_resumed_complete_run_is_not_timed_again() -> None:
    """Its earlier session spent the budget (first pass, one adaptive pass): resuming
    its folder (a new scheduler, a new clock, run.json's timing) starts no worker, and
    keeps the record of how the budget was spent."""
    p, clock = plan(), Clock()
    state = set_up(p)
    sched = Scheduler(p, PROFILE, clock, fixed(UNDECIDED))
    first_pass(sched, state, clock, 6.0)
    job = sched.next(state)
    assert isinstance(job, WorkerJob)
    for task in job.tasks:
        timed(state, task.group, job.process, batch=1)  # type: ignore[union-attr]
    clock.now += 20.0
    stop = sched.next(state)
    assert isinstance(stop, Stop) and stop.timing.spent_s == 26.0
    stored = stop.timing.to_json()

    later = Clock()
    later.now = 5000.0
    earlier = TimingLog.from_json(stored, PROFILE.budget_s)
    again = Scheduler(p, PROFILE, later, fixed(UNDECIDED), earlier=earlier)
    step = again.next(state)
    assert isinstance(step, Stop), step
    assert step.timing.stopped == "budget spent with 3 points still undecided"
    kept = step.timing.to_json()
    assert kept["spent_s"] == 26.0 and kept["adaptive"] == stored["adaptive"]
    assert kept["first_pass"]["seconds"] == 6.0


def test_a_resumed_interrupted_run_finishes_its_first_pass_within_what_is_left() -> None:
    """Interrupted during the first pass after 3 s (process 0 timed every group, process
    1 none): the resume times what process 1 lacks, and the adaptive passes get what is
    left of the budget after both sessions."""
    p, clock = plan(), Clock()
    state = set_up(p)
    sched = Scheduler(p, PROFILE, clock, fixed(UNDECIDED))
    job = sched.next(state)
    assert isinstance(job, WorkerJob) and job.process == 0
    for task in job.tasks:
        timed(state, task.group, 0)  # type: ignore[union-attr]
    clock.now += 3.0
    # Ctrl-C: run.json records what the timing spent so far
    stored = sched.record().to_json()
    assert stored["spent_s"] == 3.0 and stored["first_pass"] == {}

    later = Clock()
    later.now = 5000.0
    again = Scheduler(p, PROFILE, later, fixed(UNDECIDED), earlier=TimingLog.from_json(stored, 20))
    job = again.next(state)
    assert isinstance(job, WorkerJob) and job.process == 1 and len(job.tasks) == 3
    assert {t.rounds for t in job.tasks} == {3}  # type: ignore[union-attr]
    for task in job.tasks:
        timed(state, task.group, 1)  # type: ignore[union-attr]
    later.now += 3.0
    assert again.record().spent_s == 6.0
    # 20 s less 6 s spent less a worker's start: 10 s, room for one adaptive pass
    extra = again.next(state)
    assert isinstance(extra, WorkerJob) and extra.process == 2
    assert {(t.rounds, t.batch) for t in extra.tasks} == {(4, 1)}  # type: ignore[union-attr]
    for task in extra.tasks:
        timed(state, task.group, 2, batch=1)  # type: ignore[union-attr]
    later.now += 11.0
    stop = again.next(state)
    assert isinstance(stop, Stop)
    assert stop.timing.stopped == "budget spent with 3 points still undecided"
    assert stop.timing.first_pass["seconds"] == 6.0 and stop.timing.spent_s == 17.0
    assert [a["process"] for a in stop.timing.adaptive] == [2]


def test_the_plan_counts_each_worker_start_as_measured() -> None:
    """A worker's start was budgeted at 4 s, measured on a fast day; on 2026-12-01 (Intel,
    AVX512) a timing worker took 6-8 s to start, and passes were planned too cheap."""
    p, clock = plan(), Clock()
    state = set_up(p)
    assert Scheduler(p, PROFILE, clock).start_s() == 4.0  # nothing measured yet
    measured: list[float] = [6.0, 8.0]
    sched = Scheduler(p, PROFILE, clock, startups=lambda: measured)
    measured.append(7.0)
    assert sched.start_s() == 7.0  # the median, as the workers start
    # half of 20 s less 2 starts of 7 s leaves nothing: the profile's fewest rounds
    assert sched.first_pass_rounds(state, p.groups) == PROFILE.min_rounds
    log = sched.record()
    assert log.worker_starts_s == [6.0, 8.0, 7.0]
    assert log.to_json()["worker_starts_s"] == [6.0, 8.0, 7.0]
    # a resumed run plans on what its earlier sessions measured
    earlier = TimingLog.from_json(log.to_json(), PROFILE.budget_s)
    resumed = Scheduler(p, PROFILE, clock, earlier=earlier, startups=lambda: [9.0])
    assert resumed.start_s() == 7.5 and resumed.worker_starts() == [6.0, 8.0, 7.0, 9.0]
    # what does not read back is dropped, not trusted
    bad = TimingLog.from_json({"worker_starts_s": [5.0, "x", float("nan")]}, 20)
    assert bad.worker_starts_s == [5.0]
    assert "worker_starts_s" not in TimingLog(20).to_json()


def test_a_build_that_timed_out_after_building_at_a_smaller_size_says_it_grows() -> None:
    """2026-12-02: a NumPy loop's compile built in 8.9 s at n=64 and ran past 60 s at
    n=512 (Dynamo unrolls the loop); the note said only that a longer limit helps."""
    state, sched, job = _with_compile_form()
    assert isinstance(job, WorkerJob)
    ok = PhaseSetup("ok", loops=10, estimate_s=1e-3)
    by_name = {t.variant.name: t for t in job.tasks}  # type: ignore[union-attr]
    for name, task in by_name.items():
        if "/compile/" not in name:
            state.add(SetupDone(task.variant, dict.fromkeys(PHASES, ok)))  # type: ignore[union-attr]
    small = by_name["toy/compile/n=8/float32/t1/cpu/glibc"]
    state.add(SetupDone(small.variant, dict.fromkeys(PHASES, ok), 8.94, "torch.compile"))  # type: ignore[union-attr]
    state.add(Crash.timeout(by_name["toy/compile/n=16/float32/t1/cpu/glibc"], 60, "x"), -1)
    record = sched.next(state)
    assert isinstance(record, Record)
    (done,) = record.events
    assert isinstance(done, SetupDone) and done.variant.point_str == "n=32"
    (why,) = {ps.error for ps in done.phases.values()}
    assert why is not None and why.endswith(
        "raises the limit; it built in 8.9s at n=8: a build time that grows with the size, "
        "as where Dynamo unrolls a Python loop over the data, makes a longer limit move only "
        "the size it stops at)"
    ), why
    # the size that ran past the limit says so in its own rows, not only the sizes after it
    state.add(record.events[0])
    frame = build_outputs(state, sched.plan).frame
    rows = frame[(frame["impl"] == "compile") & (frame["point"] == "n=16")]
    [error] = set(rows[rows["status"] == "error"]["error"])
    assert error == (
        "timed out after 60s (x; it built in 8.9s at n=8: a build time that grows with the "
        "size, as where Dynamo unrolls a Python loop over the data, makes a longer limit move "
        "only the size it stops at)"
    ), error


def test_an_adaptive_pass_times_more_rounds_where_workers_start_slowly() -> None:
    iv = Interval(1.3, 0.9, 1.9, 2, 10, within_var=0.01, between_var=0.0)
    by_size = {8: iv, 16: interval(2.0, 1.8, 2.2), 32: interval(2.0, 1.8, 2.2)}
    rounds = {}
    for start in (4.0, 6.0):
        p, clock = plan(), Clock()
        state = set_up(p)
        profile = replace(PROFILE, budget_s=40)
        sched = Scheduler(p, profile, clock, fixed(by_size), startups=lambda s=start: [s])  # type: ignore[misc]
        first_pass(sched, state, clock, 6.0)
        job = sched.next(state)
        assert isinstance(job, WorkerJob)
        [task] = job.tasks
        assert isinstance(task, RoundsTask)
        rounds[start] = task.rounds
    # the optimum grows with what a process costs to start
    assert rounds[6.0] > rounds[4.0]


def test_the_checks_are_told_the_runs_values_of_axes_other_than_the_size() -> None:
    """2026-12-03: a Bessel layer run at ``--grid v=1`` had its gradient checked at v=0,
    a code path the run never measured."""
    from harness.protocol import CapabilitiesTask, GradcheckTask
    from harness.schedule import run_fixed, setup_tasks

    info = replace(INFO, axes=("n", "v"))
    groups = tuple(Group("toy", (("n", n), ("v", 1))) for n in (8, 16))
    p = Plan(RunConfig(), ("toy",), groups, {"toy": ("numpy", "torch")}, (), {"toy": info})
    assert run_fixed(p, "toy") == (("v", 1),)
    tasks, _ = setup_tasks(p, State(), p.config.allocators[0])
    checks = [t for t in tasks if isinstance(t, GradcheckTask | CapabilitiesTask)]
    assert checks and all(t.fixed == (("v", 1),) for t in checks), checks
