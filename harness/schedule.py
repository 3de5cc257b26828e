"""The scheduler: which worker job runs next, and when timing stops.

Pure: it reads a ``harness.collect.State`` (what the raw files say has been done), the
plan, the profile's budget and an injected clock, and answers with the next step. It
starts no process, reads no file and never calls ``time.monotonic`` itself, so the
budget arithmetic and the adaptive passes are tested in milliseconds with a fake clock
and a crafted state (``tests/harness/test_schedule.py``). The runner asks, runs what it
is told (a worker, through ``harness.runner``'s supervision), polls the raw files, and
asks again::

    scheduler = Scheduler(plan, profile, clock=time.monotonic)
    while not isinstance(step := scheduler.next(collector.poll()), Stop):
        ...  # WorkerJob: run one worker; Record: append the events to raw/
    run_json["timing"] = step.timing.to_json()

The steps, in order:

1. *setup*, per allocator: the capability matrix, gradcheck of each baseline, and a
   ``SetupTask`` per variant not set up yet. A compiled form that the capability matrix
   says is not worth timing is no task but a ``Record`` of its "unsupported" setup.
2. the *first timing pass*: ``profile.processes`` jobs per allocator, each timing every
   group in its own seeded order, with as many rounds as fit in half of the budget
   (``first_pass_rounds``).
3. *adaptive passes*: while the budget lasts, one job per allocator gives more rounds
   to the groups whose decisive interval still straddles the band, near a crossover
   first (``harness.stats.plan_extra_rounds``): ``profile.extra_rounds`` or more, as
   the optimum of two-stage sampling asks for the new process's start-up cost, its
   round cost and the variances measured so far (``adaptive_rounds``: a pass of a
   few cheap groups gets more rounds than a pass of many); it stops when every point
   is decided, or when the budget is spent. Such a pass
   times only the undecided cases (a candidate's training step, or its served
   forward) and the baseline's of the same phases: the backward explains and decides
   nothing, decided comparisons keep their rounds, and a cheaper visit leaves budget
   for more processes, which narrow the process-level interval where rounds cannot. A
   group that the processes the rest of the budget could add would not decide
   (``harness.stats.decidable``: a tie on the band's edge) gets none; once only such
   groups are left, timing stops before the budget is spent. The processes a group
   could get are counted on the passes of the groups that need fewer than it, not of
   every pending one (``choose_groups``).

A resumed run (``--resume``) hands the scheduler its earlier ``TimingLog``
(``earlier``, from run.json): what the earlier sessions spent counts against the budget,
the first pass goes on with the rounds it was timed with, and the adaptive passes get
only what is left. ``record()`` brings ``spent_s`` up to the clock while timing goes, so
the run.json of a run interrupted mid-pass says what it spent.

A job whose worker died is asked for again with what it left (a crashed task is in the
state as done, so the list shrinks); four attempts in a row that finish nothing raise
``ResultsError``.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from harness.case import PHASES, PROCESS_PHASES, Case, Group, Variant
from harness.collect import (
    SETUP_FILE,
    Comparison,
    State,
    analyse_group,
    built_smaller,
    compared_baseline,
    form_key,
    timing_file,
)
from harness.config import Profile
from harness.errors import ResultsError
from harness.points import format_point
from harness.protocol import (
    CapabilitiesTask,
    Event,
    GradcheckTask,
    PhaseSetup,
    RoundsTask,
    SetupDone,
    SetupTask,
    Task,
)
from harness.stats import (
    Pending,
    plan_extra_rounds,
    processes_needed,
    rounds_per_process,
    straddles,
)

if TYPE_CHECKING:
    from harness.plan import Plan

__all__ = [
    "VISIT_PROCESS_S",
    "WORKER_START_S",
    "Record",
    "Scheduler",
    "Stop",
    "TimingLog",
    "WorkerJob",
    "adaptive_rounds",
    "choose_groups",
    "declared_impls",
    "setup_tasks",
]

#: Seconds a timing worker takes to start (import torch, build the registry, warm the
#: toolchains), budgeted for until this run has measured its own (``Scheduler.start_s``:
#: 6-8 s on 2026-12-01, Intel AVX512, against 4.5 s the day before on AMD).
WORKER_START_S = 4.0
#: Seconds each implementation's process of a group's visit costs beyond its values
#: (``harness.worker.time_apart``: forking it, its warm-up calls, its share of the
#: waits for other pools to rest, reaping it), besides building its form: a default
#: run's first pass on 2026-12-03 (AVX512) spent 149 s outside values and warm-ups in
#: 72 visits of 9 processes; building forms at 0.5 x their one-off accounts for 75 s,
#: the other 74 s are 0.11 s a process.
VISIT_PROCESS_S = 0.12
_PENDING = "pending"

#: Group name -> candidate -> its speedups: what deciding on more rounds reads.
Comparisons = Callable[[State, Sequence[Group]], Mapping[str, Mapping[str, Comparison]]]


@dataclass
class TimingLog:
    """How the timing budget was spent (recorded in run.json, told by the report)."""

    budget_s: float
    first_pass: dict[str, Any] = field(default_factory=dict)
    adaptive: list[dict[str, Any]] = field(default_factory=list)
    spent_s: float = 0.0
    stopped: str = ""
    profiling: dict[str, Any] = field(default_factory=dict)
    """The profiling pass after timing (``harness.breakdown_pass``): mode, variants,
    seconds; empty when it did not run."""
    worker_starts_s: list[float] = field(default_factory=list)
    """Each timing worker's start-up (spawned to its first task), earlier sessions'
    first: what the scheduler plans a process's start on (``Scheduler.start_s``)."""

    @classmethod
    def from_json(cls, data: Any, budget_s: float) -> TimingLog:
        """The log run.json recorded (``to_json``); a fresh one where it has none, or
        none that reads back."""
        if not isinstance(data, Mapping):
            return cls(budget_s)
        first_pass = data.get("first_pass")
        adaptive = data.get("adaptive")
        profiling = data.get("profiling")
        spent = data.get("spent_s")
        stopped = data.get("stopped")
        starts = data.get("worker_starts_s")
        return cls(
            budget_s,
            first_pass=dict(first_pass) if isinstance(first_pass, Mapping) else {},
            adaptive=[dict(a) for a in adaptive if isinstance(a, Mapping)]
            if isinstance(adaptive, list)
            else [],
            spent_s=max(0.0, float(spent)) if isinstance(spent, int | float) else 0.0,
            stopped=stopped if isinstance(stopped, str) else "",
            profiling=dict(profiling) if isinstance(profiling, Mapping) else {},
            worker_starts_s=[
                float(t)
                for t in (starts if isinstance(starts, list) else [])
                if isinstance(t, int | float) and math.isfinite(t)
            ],
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "budget_s": self.budget_s,
            "first_pass": self.first_pass,
            "adaptive": self.adaptive,
            "spent_s": round(self.spent_s, 2),
            "stopped": self.stopped,
        }
        if self.profiling:
            out["profiling"] = self.profiling
        if self.worker_starts_s:
            out["worker_starts_s"] = [round(t, 2) for t in self.worker_starts_s]
        return out


@dataclass(frozen=True)
class WorkerJob:
    """Run one worker process on ``tasks``, appending its events to ``raw/<raw>``."""

    mode: Literal["setup", "timing"]
    tasks: tuple[Task, ...]
    allocator: str
    raw: str
    process: int = -1
    """The timing process (its pyperf run); -1 for setup."""
    attempt: int = 1
    """1, then 2, 3, ... when a worker died and this job is what it left."""
    begin: tuple[str, int] | None = None
    """A new stage for the progress line: its label and how many tasks it has."""


@dataclass(frozen=True)
class Record:
    """Events the scheduler decided on itself: append them to ``raw/<raw>``."""

    raw: str
    events: tuple[Event, ...]


@dataclass(frozen=True)
class Stop:
    """Nothing left to run: every pass ended (``timing`` says why timing stopped)."""

    timing: TimingLog


Step = WorkerJob | Record | Stop


def declared_impls(plan: Plan, layer: str) -> tuple[str, ...]:
    """The declared implementations behind the plan's implementations of ``layer``."""
    info = plan.info[layer]
    return tuple(dict.fromkeys(info.sources[i] for i in plan.impls_of(layer)))


#: (implementation, phase) pairs of a group: the cases an adaptive pass times.
Needed = frozenset[tuple[str, str]]


def _own_processes(phases: Mapping[str, Any]) -> int:
    """The processes a variant with these set-up ``phases`` gets in a group's visit:
    one per phase set (``PROCESS_PHASES``) with a phase that is timed."""
    ok = {ph for ph, info in phases.items() if info.status == "ok" and info.loops}
    return sum(1 for phase_set in PROCESS_PHASES if ok.intersection(phase_set))


def round_cost(plan: Plan, state: State, group: Group, only: Needed | None = None) -> float:
    """Expected seconds of one round of ``group`` (from the setup's calibration): each
    value's loops and the untimed call before them (``harness.measure``); of the cases
    ``only`` names when given (``_with_baseline``)."""
    total = 0.0
    for variant in plan.variants_of(group):
        setup = state.setup.get(variant.name)
        if setup is None:
            continue
        for phase, info in setup.phases.items():
            if only is not None and (variant.impl, phase) not in only:
                continue
            if info.status == "ok" and info.loops and info.estimate_s:
                # and the untimed call a value of more than one call starts with
                # (harness.measure.warm_first; not imported: it would load torch)
                total += (info.loops + (info.loops > 1)) * info.estimate_s
    return total


def group_cases(
    plan: Plan, state: State, group: Group, only: Needed | None = None
) -> tuple[tuple[Case, int], ...]:
    """(case, calls per value) of every case of ``group`` that set up fine (of those
    ``only`` names, when given)."""
    cases = []
    for variant in plan.variants_of(group):
        setup = state.setup.get(variant.name)
        if setup is None:
            continue
        for phase in PHASES:
            if only is not None and (variant.impl, phase) not in only:
                continue
            info = setup.phases.get(phase)
            if info is not None and info.status == "ok" and info.loops:
                cases.append((variant.case(phase), int(info.loops)))
    return tuple(cases)


def _with_baseline(baseline: str | None, needed: set[tuple[str, str]]) -> Needed:
    """``needed`` and the baseline's case of each phase in it: a round pairs them."""
    paired = {(baseline, phase) for _, phase in needed} if baseline else set()
    return frozenset(needed | paired)


def run_fixed(plan: Plan, layer: str) -> tuple[tuple[str, Any], ...]:
    """The smallest value the run measures of each of ``layer``'s axes but its size:
    where the checks run (``Layer.smallest_point``), so that gradcheck and the
    capability matrix take the code path the run times."""
    size_axis = plan.info[layer].size_axis
    seen: dict[str, list[Any]] = {}
    for group in plan.groups:
        if group.layer == layer:
            for axis, value in group.point:
                if axis != size_axis:
                    seen.setdefault(axis, []).append(value)
    out = []
    for axis, values in seen.items():
        try:
            out.append((axis, min(values)))
        except TypeError:  # values of mixed types: the first the plan lists
            out.append((axis, values[0]))
    return tuple(out)


def setup_tasks(plan: Plan, state: State, allocator: str) -> tuple[list[Task], tuple[Event, ...]]:
    """The setup tasks left for ``allocator`` given what ``state`` holds, and the setups
    of compiled forms not worth timing (to record, not to run). Pure."""
    config = plan.config
    tasks: list[Task] = []
    skipped: list[Event] = []
    first = allocator == config.allocators[0]
    # the checks' values of the axes but the size, once per layer (not per variant)
    fixed = {name: run_fixed(plan, name) for name in plan.layers} if first else {}
    for name in plan.layers if (config.capabilities and first) else ():
        if name not in state.capabilities:
            tasks.append(CapabilitiesTask(name, declared_impls(plan, name), fixed[name]))
    planned: set[GradcheckTask] = set()
    # a derived form (compile, TorchScript, ONNX) whose setup timed out at one size is
    # not built at the others: its build (compiling or exporting unrolled Python loops)
    # rarely gets cheaper with size, and each try costs the whole limit (2026-11-30: a
    # public soft-DTW layer's compile form took 3 x 60 s to fail at 3 sizes)
    slow_builds: dict[Variant, tuple[Variant, float]] = {}
    for done in state.setup.values():
        limit = next((ps.limit_s for ps in done.phases.values() if ps.limit_s is not None), None)
        if limit is not None:
            slow_builds.setdefault(form_key(done.variant), (done.variant, limit))
    for group in plan.groups:
        if group.allocator != allocator:
            continue
        info = plan.info[group.layer]
        for variant in plan.variants_of(group):
            impl = variant.impl
            # A baseline declared without a backward has no gradient to check.
            if (
                first
                and info.roles[impl] == "baseline"
                and info.forms[impl] == "eager"
                and impl in info.backward
            ):
                task = GradcheckTask(variant.layer, impl, fixed[variant.layer])
                if (task.layer, task.impl) not in state.gradchecks and task not in planned:
                    planned.add(task)
                    tasks.append(task)
            if variant.name in state.setup:
                continue
            slow = slow_builds.get(form_key(variant)) if info.forms[impl] != "eager" else None
            if slow is not None:
                not_built = (
                    f"not built: building its {info.forms[impl]} form at "
                    f"{slow[0].point_str} ran past the setup limit ({slow[1]:.0f}s), "
                    "so no other size is tried (`--timeout SECONDS` raises the limit"
                    f"{built_smaller(state, slow[0], info.size_axis)})"
                )
                skipped_phase = PhaseSetup("unsupported", error=not_built)
                skipped.append(SetupDone(variant, {ph: skipped_phase for ph in config.phases}))
                continue
            if info.forms[impl] == "compile":
                why = _compiled_not_timed(
                    plan, state, variant.layer, info.sources[impl], info.roles[impl] == "compiled"
                )
                if why == _PENDING:
                    continue  # decided once the layer's capability matrix is known
                if why:
                    skipped_phase = PhaseSetup("unsupported", error=why)
                    phases = {ph: skipped_phase for ph in config.phases}
                    skipped.append(SetupDone(variant, phases))
                    continue
            tasks.append(SetupTask(variant))
    return tasks, tuple(skipped)


def _compiled_not_timed(
    plan: Plan, state: State, layer: str, source: str, baseline: bool
) -> str | None:
    """Why a ``compile`` form of ``source`` is not worth timing, from the capability
    matrix: for ``<baseline>-compile`` (``baseline``), ``torch.compile(fullgraph=True)``
    cannot take the baseline whole, so compiling it as declared is no port
    (``capabilities.compile_not_timed``); for a native's, Dynamo captured no graph of it
    (``capabilities.native_compile_not_timed``). ``_PENDING`` while the matrix is still
    to be computed; ``None``: time it."""
    rows = state.capabilities.get(layer)
    if rows is None:
        return _PENDING if plan.config.capabilities else None
    from harness.capabilities import compile_not_timed, native_compile_not_timed

    rule = compile_not_timed if baseline else native_compile_not_timed
    return rule(rows, source)


class Scheduler:
    """Answers ``next(state)`` with the next ``WorkerJob``, a ``Record``, or ``Stop``.

    ``clock`` gives seconds (``time.monotonic`` in a run); ``comparisons`` gives each
    group's speedup intervals (default: analysed from the state's rounds; the runner
    passes its ``Builder``'s, which caches them); ``earlier`` is a resumed run's timing
    log (run.json's ``timing``): its ``spent_s`` counts against the budget, and this
    session's passes are added to its record.
    """

    def __init__(
        self,
        plan: Plan,
        profile: Profile,
        clock: Callable[[], float],
        comparisons: Comparisons | None = None,
        logs: str = "logs",
        earlier: TimingLog | None = None,
        startups: Callable[[], Sequence[float]] | None = None,
    ) -> None:
        self.plan = plan
        #: this session's timing workers' start-ups so far (``Supervisor.startups``)
        self.startups = startups or (lambda: ())
        self.config = plan.config
        self.profile = profile
        self.clock = clock
        self.comparisons = comparisons or self._analysed
        self.logs = logs
        self.timing = TimingLog(profile.budget_s)
        if earlier is not None:
            self.timing = TimingLog.from_json(earlier.to_json(), profile.budget_s)
            self.timing.spent_s = earlier.spent_s  # unrounded
        # timing seconds spent before this session's timing began (earlier sessions')
        self._spent_before = self.timing.spent_s
        self._starts_before = list(self.timing.worker_starts_s)
        # the clock when this session's timing began; None before it and once it ended
        self._since: float | None = None
        self._state = State()
        # per group, the cases whose comparison is undecided, with the baseline's
        # (``pending``): what an adaptive pass times
        self._open: dict[str, Needed] = {}
        # whether any comparison had an interval yet (``pending``)
        self._compared = False
        self._steps = self._run()

    def next(self, state: State) -> Step:
        self._state = state
        try:
            return next(self._steps)
        except StopIteration:
            return Stop(self.timing)

    def worker_starts(self) -> list[float]:
        """Each timing worker's start-up measured, earlier sessions' first."""
        return [*self._starts_before, *self.startups()]

    def start_s(self) -> float:
        """What starting a timing worker costs: the median of this run's measured
        start-ups, ``WORKER_START_S`` before any."""
        measured = [t for t in self.worker_starts() if math.isfinite(t) and t > 0]
        return statistics.median(measured) if measured else WORKER_START_S

    def spent(self) -> float:
        """Seconds of the timing budget spent, by earlier sessions of a resumed run and
        this one's timing passes so far."""
        now = 0.0 if self._since is None else self.clock() - self._since
        return self._spent_before + now

    def record(self) -> TimingLog:
        """The timing log, with ``spent_s`` brought up to the clock while timing goes
        (what run.json says of a run interrupted mid-pass, for its resume to count)."""
        self.timing.worker_starts_s = self.worker_starts()
        if self._since is not None:
            self.timing.spent_s = self.spent()
        return self.timing

    def _run(self) -> Generator[Step, None, None]:
        for allocator in self.config.allocators:
            yield from self._until_done(
                "setup",
                allocator,
                -1,
                SETUP_FILE,
                lambda a=allocator: setup_tasks(self.plan, self._state, a),  # type: ignore[misc]
                "checking",
            )
        yield from self._timing_passes()

    def _until_done(
        self,
        mode: Literal["setup", "timing"],
        allocator: str,
        process: int,
        raw: str,
        left: Callable[[], tuple[list[Task], tuple[Event, ...]]],
        label: str | None = None,
        count: int | None = None,
    ) -> Generator[Step, None, bool]:
        """Jobs until ``left()`` has no task; True if there was any. The first begins
        a progress stage ``label`` of ``count`` tasks (default: its own). Each worker
        that dies takes one task down with it, so only workers that finish nothing
        stall."""
        attempts = stalls = 0
        before: set[Task] | None = None
        while True:
            tasks, records = left()
            if records:
                yield Record(raw, records)  # in the state by the next call
                continue
            if not tasks:
                return attempts > 0
            if before is not None:
                stalls = stalls + 1 if set(tasks) >= before else 0
                if stalls > 3:
                    raise ResultsError(f"workers keep failing; see {self.logs}")
            attempts += 1
            before = set(tasks)
            first = None
            if attempts == 1 and label is not None:
                first = (label, len(tasks) if count is None else count)
            yield WorkerJob(mode, tuple(tasks), allocator, raw, process, attempts, first)

    # -- timing ---------------------------------------------------------------------

    def task_limit(self, task: Task) -> float:
        """Seconds a worker may spend on ``task`` before it counts as hung."""
        if not isinstance(task, RoundsTask):
            return self.profile.case_timeout_s
        cost = round_cost(self.plan, self._state, task.group) * (task.rounds + 1)
        return max(self.profile.case_timeout_s, 10 * cost + 60)

    def first_pass_rounds(self, state: State, groups: Sequence[Group]) -> int:
        """Rounds per process of the first pass: what a resumed run used, else as many
        as fit in half of the budget (between the profile's min and max)."""
        for by_process in state.rounds.values():
            for done in by_process.values():
                if done.batch == 0 and done.rounds:
                    return done.rounds
        prof = self.profile
        per_round = sum(round_cost(self.plan, state, g) for g in groups) or 1e-3
        processes = prof.processes * len(self.config.allocators)
        # What a process spends beside its rounds: starting, building every form again
        # (compiling from a warm cache costs a fraction of the cold one-off), and on a
        # CPU each implementation's processes of each group (VISIT_PROCESS_S)
        prep = self.start_s()
        for group in groups:
            for variant in self.plan.variants_of(group):
                setup = state.setup.get(variant.name)
                if setup is None:
                    continue
                if setup.oneoff_s:
                    prep += 0.5 * min(setup.oneoff_s, 10.0)
                if group.device == "cpu":
                    prep += VISIT_PROCESS_S * _own_processes(setup.phases)
        fit = int((0.5 * prof.budget_s - processes * prep) / (processes * per_round))
        return max(prof.min_rounds, min(prof.max_rounds, fit))

    def _rounds_left(
        self,
        groups: Sequence[Group],
        process: int,
        rounds: int,
        batch: int,
        open_only: bool = False,
    ) -> tuple[list[Task], tuple[Event, ...]]:
        """Rounds tasks of the groups ``process`` has not timed (nor died on) yet: of
        every case, or (``open_only``, an adaptive pass) of the undecided ones."""
        state = self._state
        tasks: list[Task] = [
            RoundsTask(
                g,
                group_cases(self.plan, state, g, self._open.get(g.name) if open_only else None),
                rounds,
                batch,
            )
            for g in groups
            if not state.timed(g.name, process)
        ]
        return tasks, ()

    def _timing_passes(self) -> Generator[Step, None, None]:
        state, prof, allocators = self._state, self.profile, self.config.allocators
        timed = [g for g in self.plan.groups if group_cases(self.plan, state, g)]
        if not timed:
            return
        rounds = self.first_pass_rounds(state, timed)
        t0 = self._since = self.clock()
        todo = sum(
            1
            for a, allocator in enumerate(allocators)
            for p in range(prof.processes)
            for g in timed
            if g.allocator == allocator and not state.timed(g.name, a * prof.processes + p)
        )
        label: str | None = "timing"
        for a, allocator in enumerate(allocators):
            for p in range(prof.processes):
                process = a * prof.processes + p
                order = [g for g in timed if g.allocator == allocator]
                random.Random(self.config.seed * 1000 + process).shuffle(order)
                ran = yield from self._until_done(
                    "timing",
                    allocator,
                    process,
                    timing_file(process),
                    lambda o=order, pr=process: self._rounds_left(o, pr, rounds, 0),  # type: ignore[misc]
                    label,
                    todo,
                )
                label = None if ran else label
        # the whole first pass: a resumed run's earlier sessions ran (part of) it too;
        # one that stopped before it ended spent all its timing on it
        earlier = self.timing.first_pass.get("seconds")
        first_s = self.clock() - t0
        first_s += earlier if isinstance(earlier, int | float) else self._spent_before
        state = self._state
        timed_s = rounds * prof.processes * sum(round_cost(self.plan, state, g) for g in timed)
        self.timing.first_pass = {
            "processes": prof.processes * len(allocators),
            "rounds": rounds,
            "groups": len(timed),
            "seconds": round(first_s, 2),
        }
        yield from self._adaptive_passes(timed, max(0.0, first_s - timed_s))
        self.timing.spent_s = self.spent()
        self._spent_before, self._since = self.timing.spent_s, None

    def pending(self, state: State, groups: Sequence[Group]) -> list[Pending]:
        """Groups whose decisive intervals (training step, or forward where a side has
        no backward) do not decide yet, with what one more round costs."""
        decisive: dict[str, list[Any]] = {}
        estimates: dict[tuple[str, str, str], list[tuple[float, str, float]]] = {}
        comparisons = self.comparisons(state, groups)  # every changed group in one go
        for group in groups:
            intervals = []
            open_cases: set[tuple[str, str]] = set()
            info = self.plan.info[group.layer]
            for impl, comparison in comparisons.get(group.name, {}).items():
                # the training verdict's interval, and the inference verdict's
                interval = comparison.step or comparison.phase.get("forward")
                intervals.append(interval)
                if interval is not None and straddles(interval):
                    open_cases.add((impl, "step" if comparison.step else "forward"))
                if comparison.step is not None and "inference" in self.config.use:
                    served = comparison.phase.get("forward")
                    intervals.append(served)
                    if served is not None and straddles(served):
                        open_cases.add((impl, "forward"))
                if interval is not None:
                    others = format_point({k: v for k, v in group.point if k != info.size_axis})
                    setting = (group.layer, impl, f"{group.setting}/{others}")
                    size = group.point_dict[info.size_axis]
                    if isinstance(size, int | float):
                        estimates.setdefault(setting, []).append(
                            (float(size), group.name, interval.estimate)
                        )
            decisive[group.name] = intervals
            self._compared = self._compared or any(i is not None for i in intervals)
            # an adaptive pass times only what is undecided, beside the baseline: the
            # backward (an explanation, never a verdict) and decided comparisons have
            # their first-pass rounds, and a cheaper visit leaves budget for processes
            baseline = compared_baseline(self.plan.info[group.layer].baselines, state, group.layer)
            self._open[group.name] = _with_baseline(baseline, open_cases)
        near = _near_crossover(estimates.values())
        return [
            Pending(
                g.name,
                tuple(decisive[g.name]),
                round_cost(self.plan, state, g, self._open[g.name]),
                g.name in near,
            )
            for g in groups
            if any(straddles(i) for i in decisive[g.name])
        ]

    def _adaptive_passes(
        self, groups: Sequence[Group], overhead: float
    ) -> Generator[Step, None, None]:
        prof, allocators = self.profile, self.config.allocators
        by_name = {g.name: g for g in groups}
        # what preparing one group costs a new process (building forms, compiling)
        prep = overhead / max(1, len(groups) * prof.processes)
        first = prof.processes * len(allocators)
        seen = self._state.processes()
        next_process = max([first - 1, *seen]) + 1
        batch = 1 + len([p for p in seen if p >= first])
        while True:
            # what earlier sessions of a resumed run spent counts: a complete run's
            # folder resumed has nothing left to spend
            start = self.start_s()
            left = prof.budget_s - self.spent() - start
            state = self._state
            pending = self.pending(state, groups)
            chosen, why = choose_groups(prof, pending, left, prep, start)
            if not chosen:
                if not pending and not self._compared:  # "every point decided" misleads
                    why = "nothing to compare: no candidate ran beside a baseline"
                self.timing.stopped = why
                break
            rounds = adaptive_rounds(
                prof, [p for p in pending if p.key in chosen], left, prep, start
            )
            started = self.clock()
            for allocator in allocators:
                mine = [by_name[k] for k in chosen if by_name[k].allocator == allocator]
                if not mine:
                    continue
                process = next_process
                next_process += 1
                label = f"extra rounds ({len(pending)} undecided)"
                yield from self._until_done(
                    "timing",
                    allocator,
                    process,
                    timing_file(process),
                    lambda gs=mine, pr=process, b=batch, r=rounds: self._rounds_left(  # type: ignore[misc]
                        gs, pr, r, b, open_only=True
                    ),
                    label,
                )
                self.timing.adaptive.append(
                    {
                        "process": process,
                        "groups": len(mine),
                        "undecided_before": len(pending),
                        "rounds": rounds,
                        "seconds": round(self.clock() - started, 2),
                    }
                )
            batch += 1

    def _analysed(
        self, state: State, groups: Sequence[Group]
    ) -> dict[str, Mapping[str, Comparison]]:
        out: dict[str, Mapping[str, Comparison]] = {}
        for group in groups:
            info = self.plan.info[group.layer]
            analysis = analyse_group(
                group,
                self.plan.impls[group.layer],
                compared_baseline(info.baselines, state, group.layer),
                state.runs(group.name),
                state.crashed.get(group.name, {}),
                self.config.seed,
            )
            out[group.name] = analysis.comparisons
        return out


def choose_groups(
    profile: Profile,
    pending: list[Pending],
    left: float,
    prep: float,
    start: float = WORKER_START_S,
) -> tuple[list[str], str]:
    """The groups of the next adaptive pass (``left`` seconds of budget after the
    worker's start, ``prep`` seconds to prepare a group in it, ``start`` to start a
    worker), or none and why timing stops."""
    if not pending:
        return [], "every point decided (or equal within the band)"
    if left <= 0:
        return [], f"budget spent with {len(pending)} points still undecided"
    extra = profile.extra_rounds
    costed = [
        Pending(p.key, p.intervals, p.cost_s + prep / extra, p.near_crossover) for p in pending
    ]
    if not plan_extra_rounds(costed, left, extra):
        return [], (
            f"budget left ({left:.0f}s) too small for another round of the "
            f"{len(pending)} undecided points"
        )
    hopeful, passes = _hopeful(costed, left, extra, start)
    chosen = plan_extra_rounds(hopeful, left, extra)
    if not chosen:
        return [], (
            f"the {len(pending)} undecided points lie too close to the band's edge for "
            f"what is left of the budget ({left:.0f}s, about {passes} more processes) "
            "to decide them"
        )
    return chosen, ""


def _hopeful(
    costed: Sequence[Pending], left: float, extra: int, start: float
) -> tuple[list[Pending], int]:
    """The pending groups that more processes could decide, and how many processes
    the budget ``left`` holds for the costliest set of them.

    A group that the processes left could not decide gets none (a tie on the band's
    edge). The processes a group could get are counted on passes over it and the
    groups that need fewer processes than it, not over every pending group, whose
    ties would otherwise shorten every other group's projection: counted on all of
    them, two default runs on 2026-12-01 (AVX512) stopped with 128 s and 138 s of a
    420 s budget unspent and 11 and 12 points undecided."""
    # the most processes any group could get: passes of the cheapest group alone
    cheapest = start + min((p.cost_s * extra for p in costed), default=0.0)
    most = max(1, int(left // cheapest)) if cheapest > 0 else 1
    need: list[tuple[int, str, Pending]] = []
    for p in costed:
        needs = [n for i in p.intervals if (n := processes_needed(i, most)) is not None]
        if needs:
            need.append((min(needs), p.key, p))
    need.sort(key=lambda t: (t[0], t[1]))
    hopeful: list[Pending] = []
    passes = max(1, int(left // (start + sum(p.cost_s * extra for p in costed))))
    for fewest, _, p in need:
        # every group chosen so far, and this one, each get a process per pass
        per_pass = start + sum(q.cost_s * extra for q in (*hopeful, p))
        fit = max(1, int(left // per_pass))
        if fewest > fit:
            continue  # a cheaper group that needs as many may still fit
        hopeful.append(p)
        passes = fit
    return hopeful, passes


def adaptive_rounds(
    profile: Profile,
    chosen: Sequence[Pending],
    left: float,
    prep: float,
    start_s: float = WORKER_START_S,
) -> int:
    """Rounds per process of an adaptive pass over ``chosen`` (``left`` seconds of
    budget after the worker's start, ``prep`` seconds to prepare a group, ``start_s``
    to start a worker): the optimum of
    ``harness.stats.rounds_per_process`` for what the process costs to start (a
    worker, and preparing each group's forms) against what a round of its groups
    costs, with the variance components pooled over their undecided intervals;
    at least the profile's ``extra_rounds``; at most what the budget left holds,
    and the profile's ``max_rounds`` or as many rounds as cost what the start
    does, whichever is more (no process level measured yet calls for endless
    rounds, and a few processes measure it poorly). A late pass of one cheap group
    (10 ms a round against 4 s to start, 2026-11-30, AVX512) then times its
    rounds for about as long as it took to start, not 0.2 s of 6 rounds."""
    open_ = [i for p in chosen for i in p.intervals if i is not None and straddles(i)]
    start = start_s + prep * len(chosen)
    per_round = sum(p.cost_s for p in chosen)
    worth = math.ceil(start / per_round) if per_round > 0 else profile.max_rounds
    best = rounds_per_process(
        start,
        per_round,
        _mean_finite(i.within_var for i in open_),
        _mean_finite(i.between_var for i in open_),
        profile.extra_rounds,
        max(profile.max_rounds, worth),
    )
    fit = int((left - prep * len(chosen)) / per_round) if per_round > 0 else best
    return max(profile.extra_rounds, min(best, fit))


def _mean_finite(values: Iterable[float]) -> float:
    """The mean of the finite values (NaN: none)."""
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _near_crossover(series_of: Any) -> set[str]:
    """Groups whose estimate is on the other side of 1 from a neighbouring size's."""
    near: set[str] = set()
    for series in series_of:
        series.sort()
        sides = [e > 1 for _, _, e in series]
        for i, (_, name, _) in enumerate(series):
            if (i > 0 and sides[i - 1] != sides[i]) or (
                i + 1 < len(series) and sides[i + 1] != sides[i]
            ):
                near.add(name)
    return near
