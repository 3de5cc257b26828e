"""From the workers' raw events to the results frame, the deviation and capability
tables and one pyperf suite.

``State`` folds events (``harness.protocol``) into what has been done; it is pure and
incremental: ``add`` one event at a time. ``Collector`` follows a results folder's raw
files with ``EventReader``s, so the runner reads only what is new; its state keeps
where each heavy event lies in the raw files (rounds, per-tensor deviations) rather
than the event, and reads it back when a group's tables are rebuilt.

``Builder`` turns a state into the tables group by group: each group's analysis
(pyperf benchmarks, paired speedup intervals) and its encoded table pieces are rebuilt
only when an event changed the group, the pieces are kept in a scratch file, and
``Builder.write`` streams them into the results folder (``results.ResultsWriter``).
So the runner's own time per write and its memory do not grow with the grid beyond a
small record per group. ``build_outputs`` builds the same tables in memory (tests,
small grids).
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.case import PHASES, Case, Group, Variant
from harness.dtypes import RTOL, narrowed_to
from harness.frame import (
    BREAKDOWN_COLUMNS,
    CAPABILITY_COLUMNS,
    DEVIATION_COLUMNS,
    build_frame,
    build_table,
)
from harness.protocol import (
    BreakdownDone,
    CapabilitiesDone,
    CapabilitiesTask,
    Crash,
    Event,
    EventReader,
    GradcheckDone,
    GradcheckTask,
    PhaseBreakdown,
    PhaseSetup,
    ProfileTask,
    RoundsDone,
    RoundsTask,
    SetupDone,
    SetupTask,
    no_backward_reason,
    read_event_at,
)
from harness.results import RAW_DIR, ResultsWriter, benchmark_json, pyperf_suite
from harness.stats import Interval, decide, round_ratios, speedup_interval

if TYPE_CHECKING:
    from harness.plan import LayerInfo, Plan

__all__ = [
    "Builder",
    "Collector",
    "GroupAnalysis",
    "GroupOutput",
    "State",
    "Stored",
    "Timed",
    "Written",
    "analyse_group",
    "build_outputs",
    "built_smaller",
    "form_key",
    "timing_file",
]

SETUP_FILE = "setup.jsonl"
VALIDATE_FILE = "validate.jsonl"


def timing_file(process: int) -> str:
    return f"timing-{process:03d}.jsonl"


def _process_of(path: Path) -> int | None:
    if path.name.startswith("timing-"):
        return int(path.stem.split("-")[1])
    return None


@dataclass(frozen=True, slots=True)
class Stored:
    """Where an event lies: the raw file and the byte offset of its line."""

    path: Path
    offset: int

    def load(self) -> Event:
        return read_event_at(self.path, self.offset)


@dataclass(frozen=True, slots=True)
class Timed:
    """One process's rounds of one group as a ``State`` keeps them: the event itself,
    or (read from a raw file) only where it lies."""

    batch: int
    rounds: int
    """Values per case (rounds timed, the warm-up round not counted)."""
    event: RoundsDone | None = None
    stored: Stored | None = None

    def load(self) -> RoundsDone:
        if self.event is not None:
            return self.event
        assert self.stored is not None
        event = self.stored.load()
        if not isinstance(event, RoundsDone):
            raise ValueError(f"{self.stored.path}: expected rounds at byte {self.stored.offset}")
        return event


def timed_seconds(done: RoundsDone) -> float:
    """Seconds one rounds event spent inside timed regions: each value and warm-up
    value (seconds per call) times its case's loop count, as pyperf.json records them
    (the warm-up at the values' count, which the warm-up round may have raised)."""
    total = 0.0
    for case, values in done.values.items():
        loops = done.loops.get(case, 1)
        total += sum(values) * loops
        warm = done.warmups.get(case)
        total += (warm or 0.0) * loops
    return total


def compared_baseline(baselines: Sequence[str], state: State, layer: str) -> str | None:
    """The baseline every speedup of ``layer`` is taken against: the first declared
    whose setup ran (a phase ``ok``) at some point, else the first declared. Why: a
    layer may declare its code as published beside a mended copy, and the first
    failing everywhere left every speedup unmeasured beside a second that runs
    (2026-12-01: a public sqrtm written for NumPy 1, ``np.float_``, before its copy
    with ``np.float64``)."""
    ran = state.ran.get(layer, {})
    return next((b for b in baselines if ran.get(b)), baselines[0] if baselines else None)


def _summary(setup: SetupDone) -> SetupDone:
    """What planning needs of a setup: status, loops, estimate per phase, one-off, and
    a failed phase's error."""
    return SetupDone(
        setup.variant,
        {
            # an error is kept (short, and only where a phase failed): the scheduler
            # reads a timed-out build (schedule.setup_tasks)
            ph: PhaseSetup(
                ps.status,
                error=ps.error if ps.status == "error" else None,
                loops=ps.loops,
                estimate_s=ps.estimate_s,
            )
            for ph, ps in setup.phases.items()
        },
        setup.oneoff_s,
    )


@dataclass
class State:
    """What the raw files of a results folder say has been done.

    Events added with where they lie (``Collector``) are kept lean: ``rounds`` holds
    their location, ``setup`` a planning summary, and ``runs``/``full_setup`` read the
    whole events back. Events added without (tests, events the runner makes itself)
    are kept whole.
    """

    setup: dict[str, SetupDone] = field(default_factory=dict)
    """Variant name -> its setup: whole, or a summary for planning (``_summary``)."""
    ran: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    """Layer -> implementation -> the variants whose setup ran (a phase ``ok``), kept
    as ``setup`` changes: ``compared_baseline`` asks per group, and a scan of every
    setup per group made that quadratic in the grid."""
    setup_stored: dict[str, Stored] = field(default_factory=dict)
    """Variant name -> where its whole setup event lies, when ``setup`` is a summary."""
    gradchecks: dict[tuple[str, str], GradcheckDone] = field(default_factory=dict)
    capabilities: dict[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    rounds: dict[str, dict[int, Timed]] = field(default_factory=dict)
    """Group name -> process -> its rounds (a process times a group once)."""
    crashed: dict[str, dict[int, str]] = field(default_factory=dict)
    """Group name -> process -> why its worker died on it."""
    versions: dict[str, int] = field(default_factory=dict)
    """Group name -> how many events changed its rows (setups, rounds, crashes)."""
    layer_versions: dict[str, int] = field(default_factory=dict)
    """Layer -> how many gradcheck results changed its rows."""
    breakdowns: dict[str, BreakdownDone] = field(default_factory=dict)
    """Variant name -> its profiled calls (breakdown.csv; small: a few parts a phase)."""
    timed_s: float = 0.0
    """Seconds inside timed regions: every rounds event's values and warm-up values,
    each times its loop count (``timed_seconds``)."""
    pool_wait_s: float = 0.0
    """Seconds timing workers waited before values for other implementations' thread
    pools to go quiet (``harness.contention.PoolWatch``; rounds events' metadata)."""
    prepare_s: float = 0.0
    """Seconds timing workers spent on groups outside their rounds: forking each
    implementation's processes, building their forms, warming them up, ending them
    (rounds events' metadata ``prepare_s``)."""

    def add(self, event: Event, process: int | None = None, stored: Stored | None = None) -> None:
        """Fold one event in; ``process`` is the timing process whose file it came from,
        ``stored`` where the event lies (then only a summary is kept in memory)."""
        if isinstance(event, SetupDone):
            name = event.variant.name
            ok = any(p.status == "ok" for p in event.phases.values())
            ran = self.ran.setdefault(event.variant.layer, {}).setdefault(event.variant.impl, set())
            (ran.add if ok else ran.discard)(name)
            if stored is None:
                self.setup[name] = event
                self.setup_stored.pop(name, None)
            else:
                self.setup[name] = _summary(event)
                self.setup_stored[name] = stored
            self._changed(event.variant.group.name)
        elif isinstance(event, GradcheckDone):
            self.gradchecks[(event.layer, event.impl)] = event
            self.layer_versions[event.layer] = self.layer_versions.get(event.layer, 0) + 1
        elif isinstance(event, CapabilitiesDone):
            self.capabilities[event.layer] = event.rows
        elif isinstance(event, RoundsDone):
            n = len(next(iter(event.values.values()), ()))
            timed = (
                Timed(event.batch, n, event=event)
                if stored is None
                else Timed(event.batch, n, stored=stored)
            )
            self.rounds.setdefault(event.group.name, {})[event.process] = timed
            self.timed_s += timed_seconds(event)
            for name in ("pool_wait_s", "prepare_s"):
                seconds = event.metadata.get(name)
                if isinstance(seconds, int | float):
                    setattr(self, name, getattr(self, name) + float(seconds))
            self._changed(event.group.name)
        elif isinstance(event, BreakdownDone):
            self.breakdowns[event.variant.name] = event
        elif isinstance(event, Crash):
            self._crash(event, -1 if process is None else process)

    def _changed(self, group: str) -> None:
        self.versions[group] = self.versions.get(group, 0) + 1

    def _crash(self, event: Crash, process: int) -> None:
        task = event.task
        if isinstance(task, SetupTask):
            err = PhaseSetup("error", error=event.error, limit_s=event.limit_s)
            self.add(SetupDone(task.variant, {ph: err for ph in PHASES}))
        elif isinstance(task, GradcheckTask):
            if event.limit_s is not None:
                # too slow to finish is no wrong gradient: not run, judged on the reference
                # (2026-11-30: NAFNet's LayerNorm2d read as "fix the gradient first")
                why = (
                    f"not run: gradcheck did not finish ({event.error}); its gradients are "
                    "judged against the float64 reference instead"
                )
                self.add(GradcheckDone(task.layer, task.impl, None, why))
            else:
                self.add(GradcheckDone(task.layer, task.impl, False, event.error))
        elif isinstance(task, CapabilitiesTask):
            self.capabilities[task.layer] = ()
        elif isinstance(task, RoundsTask):
            self.crashed.setdefault(task.group.name, {})[process] = event.error
            self._changed(task.group.name)
        elif isinstance(task, ProfileTask):
            failed = PhaseBreakdown("error", error=event.error)
            self.add(BreakdownDone(task.variant, dict.fromkeys(task.phases, failed)))

    def full_setup(self, variant: str) -> SetupDone | None:
        """A variant's whole setup event (deviations, peak memory, errors)."""
        stored = self.setup_stored.get(variant)
        if stored is None:
            return self.setup.get(variant)
        event = stored.load()
        if not isinstance(event, SetupDone):
            raise ValueError(f"{stored.path}: expected a setup at byte {stored.offset}")
        return event

    def runs(self, group: str) -> dict[int, RoundsDone]:
        """Process -> its whole rounds of ``group``."""
        return {p: t.load() for p, t in self.rounds.get(group, {}).items()}

    def version(self, group: Group) -> tuple[int, int]:
        """Changes whenever an event changes what ``group``'s rows say."""
        return self.versions.get(group.name, 0), self.layer_versions.get(group.layer, 0)

    def timed(self, group: str, process: int) -> bool:
        """Whether ``process`` has timed ``group`` (or died trying)."""
        return process in self.rounds.get(group, {}) or process in self.crashed.get(group, {})

    def processes(self) -> set[int]:
        done = {p for by in self.rounds.values() for p in by}
        return done | {p for by in self.crashed.values() for p in by}


class Collector:
    """A ``State`` that follows a results folder's raw files incrementally."""

    def __init__(self, folder: Path) -> None:
        self.raw = Path(folder) / RAW_DIR
        self.state = State()
        self._readers: dict[Path, EventReader] = {}

    def poll(self) -> State:
        if self.raw.is_dir():
            for path in sorted(self.raw.glob("*.jsonl")):
                reader = self._readers.get(path)
                if reader is None:
                    reader = self._readers[path] = EventReader(path)
                process = _process_of(path)
                for offset, event in reader.poll_located():
                    # the runner writes a worker's crash into that worker's own file
                    self.state.add(event, process, Stored(path, offset))
        return self.state


# -------------------------------------------------------------------------- analysis


@dataclass(frozen=True, slots=True)
class Comparison:
    """One candidate against the baseline in one group: per phase and per step."""

    phase: dict[str, Interval | None]
    step: Interval | None
    """The training step's: ``phase["step"]``, None where either side has no step rounds."""


@dataclass(frozen=True)
class GroupAnalysis:
    """A group's timings as pyperf benchmarks, and each candidate's paired speedups."""

    benches: dict[str, Any]
    """Case name -> pyperf.Benchmark (every process's rounds)."""
    errors: dict[str, str]
    """Case name -> why a process could not time it."""
    comparisons: dict[str, Comparison]
    """Candidate implementation -> its speedups over ``baseline``."""
    baseline: str | None


def _values_by_process(runs: Mapping[int, RoundsDone], case: str) -> dict[int, tuple[float, ...]]:
    return {p: r.values[case] for p, r in runs.items() if r.values.get(case)}


def analyse_group(
    group: Group,
    impls: Iterable[str],
    baseline: str | None,
    runs: Mapping[int, RoundsDone],
    crashed: Mapping[int, str],
    seed: int = 0,
) -> GroupAnalysis:
    """Pyperf benchmarks and paired speedup intervals of one group."""
    import pyperf

    impls = list(impls)
    benches: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for impl in impls:
        for phase in PHASES:
            case = group.variant(impl).case(phase).name
            pruns = []
            for process in sorted(runs):
                done = runs[process]
                if case in done.errors:
                    errors[case] = done.errors[case]
                values = done.values.get(case)
                if not values:
                    continue
                loops = int(done.loops[case])
                warm = done.warmups.get(case)
                pruns.append(
                    pyperf.Run(
                        list(values),
                        warmups=[(loops, warm)] if warm is not None else None,
                        metadata={
                            "name": case,
                            "loops": loops,
                            "harness_process": process,
                            "harness_batch": done.batch,
                            **(
                                {"harness_minor_faults": done.faults[case]}
                                if case in done.faults
                                else {}
                            ),
                            **{f"harness_{k}": v for k, v in done.metadata.items()},
                        },
                        collect_metadata=False,
                    )
                )
            if pruns:
                benches[case] = pyperf.Benchmark(pruns)
            elif crashed and case not in errors:
                errors[case] = next(iter(crashed.values()))
    comparisons: dict[str, Comparison] = {}
    if baseline is not None:
        base = {
            ph: _values_by_process(runs, group.variant(baseline).case(ph).name) for ph in PHASES
        }
        for n, impl in enumerate(impls):
            if impl == baseline:
                continue
            cand = {
                ph: _values_by_process(runs, group.variant(impl).case(ph).name) for ph in PHASES
            }
            per_phase: dict[str, Interval | None] = {
                ph: speedup_interval(round_ratios(base[ph], cand[ph]), seed=seed + n)
                for ph in PHASES
            }
            # A training step is compared on the step rounds alone: where either side
            # has none (its step failed, or was not timed) there is no step speedup,
            # never forward + backward summed (a no-grad forward and a backward on a
            # retained graph are not what a training loop runs; issue 16).
            comparisons[impl] = Comparison(per_phase, per_phase["step"])
    return GroupAnalysis(benches, errors, comparisons, baseline)


def _interval_columns(prefix: str, interval: Interval | None) -> dict[str, Any]:
    if interval is None:
        return {}
    return {
        f"{prefix}speedup": interval.estimate,
        f"{prefix}speedup_low": interval.low,
        f"{prefix}speedup_high": interval.high,
        f"{prefix}decision": decide(interval),
    }


# ---------------------------------------------------------------------------- outputs


@dataclass
class Outputs:
    """The tables of a state, in memory (``build_outputs``)."""

    frame: pd.DataFrame
    deviations: pd.DataFrame
    capabilities: pd.DataFrame
    suite: Any
    """One pyperf suite of every timed case, or None before any was timed."""


def plan_axes(plan: Plan) -> list[str]:
    """The grid-axis columns of a plan's results frame, in order of first appearance."""
    axes: list[str] = []
    for layer in dict.fromkeys(g.layer for g in plan.groups):
        for axis in plan.info[layer].axes:
            if axis not in axes:
                axes.append(axis)
    return axes


def group_tables(
    state: State, plan: Plan, group: Group, seed: int = 0
) -> tuple[GroupAnalysis, list[dict[str, Any]], list[dict[str, Any]]] | None:
    """One group's analysis, result rows and deviation rows; None before any of its
    variants was set up."""
    variants = plan.variants_of(group)
    setups = {v.name: state.full_setup(v.name) for v in variants if v.name in state.setup}
    if not setups:
        return None
    info = plan.info[group.layer]
    analysis = analyse_group(
        group,
        plan.impls[group.layer],
        compared_baseline(info.baselines, state, group.layer),
        state.runs(group.name),
        state.crashed.get(group.name, {}),
        seed,
    )
    baseline_times: dict[str, float | None] = {}
    baseline_setup: SetupDone | None = None
    if analysis.baseline is not None:
        baseline_times = _medians(analysis, group.variant(analysis.baseline))
        baseline_setup = setups.get(group.variant(analysis.baseline).name)
    size_value = group.point_dict[info.size_axis]
    rows: list[dict[str, Any]] = []
    dev_rows: list[dict[str, Any]] = []
    for variant in variants:
        setup = setups.get(variant.name)
        if setup is None:
            continue
        comparison = analysis.comparisons.get(variant.impl)
        for phase in PHASES:
            if phase not in setup.phases or phase not in plan.config.phases:
                continue  # not asked for (--use inference), or folders from before `step`
            rows.append(
                _row(
                    state,
                    variant,
                    phase,
                    setup,
                    info,
                    analysis,
                    comparison,
                    baseline_setup,
                    baseline_times,
                    size_value,
                    dev_rows,
                )
            )
    return analysis, rows, dev_rows


def _capabilities_table(state: State) -> pd.DataFrame:
    """The capability matrix rows of every layer checked so far."""
    rows = [r for layer in sorted(state.capabilities) for r in state.capabilities[layer]]
    return build_table(rows, CAPABILITY_COLUMNS)


def breakdown_table(state: State, plan: Plan) -> pd.DataFrame | None:
    """breakdown.csv's rows (``harness.frame.BREAKDOWN_COLUMNS``): one per (case, part)
    of every variant profiled so far; None when nothing was profiled."""
    if not state.breakdowns:
        return None
    rows: list[dict[str, Any]] = []
    for name in sorted(state.breakdowns):
        event = state.breakdowns[name]
        variant = event.variant
        info = plan.info.get(variant.layer)
        size = variant.point_dict.get(info.size_axis) if info is not None else None
        for phase, found in event.phases.items():
            if found.status != "ok":
                continue
            for part in found.parts:
                rows.append(
                    {
                        "case": Case(variant, phase).name,  # type: ignore[arg-type]
                        "layer": variant.layer,
                        "impl": variant.impl,
                        "role": info.roles.get(variant.impl) if info is not None else None,
                        "point": variant.point_str,
                        "size": float(size) if isinstance(size, int | float) else None,
                        "dtype": variant.dtype,
                        "threads": variant.threads,
                        "device": variant.device,
                        "allocator": variant.allocator,
                        "phase": phase,
                        **{k: part.get(k) for k in ("part", "kind", "seconds", "share")},
                        "calls": part.get("calls"),
                        "tool": part.get("tool"),
                        "profiled_s": found.profiled_s,
                        "raw_s": found.raw_s,
                        "plain_s": found.plain_s,
                        "minor_faults": found.minor_faults,
                        **variant.point_dict,
                    }
                )
    return build_table(rows, BREAKDOWN_COLUMNS, extra=plan_axes(plan))


def build_outputs(state: State, plan: Plan, seed: int = 0) -> Outputs:
    """Every table of a state, in memory."""
    rows: list[dict[str, Any]] = []
    dev_rows: list[dict[str, Any]] = []
    benches: list[Any] = []
    for group in plan.groups:
        built = group_tables(state, plan, group, seed)
        if built is None:
            continue
        analysis, group_rows, group_devs = built
        rows.extend(group_rows)
        dev_rows.extend(group_devs)
        benches.extend(analysis.benches[c] for c in sorted(analysis.benches))
    frame = build_frame(rows, plan_axes(plan))
    deviations = build_table(dev_rows, DEVIATION_COLUMNS)
    suite = pyperf_suite(benches) if benches else None
    return Outputs(frame, deviations, _capabilities_table(state), suite)


@dataclass(frozen=True, slots=True)
class GroupOutput:
    """What a ``Builder`` keeps of one group between writes: small, whatever the size
    of the group's tables (those are in the builder's ``Pieces``)."""

    version: tuple[int, int]
    """``State.version`` of the group when this was built."""
    comparisons: Mapping[str, Comparison]
    """Candidate implementation -> its speedups (what planning more rounds reads)."""
    rows: int
    ok: int
    """Rows with status ok."""
    failed: tuple[str, ...]
    """``case: status: error`` of each row that failed or was not timed."""


@dataclass(frozen=True)
class Written:
    """What ``Builder.write`` wrote: rows, rows measured, and the failed ones."""

    rows: int
    ok: int
    failed: list[str]


class Pieces:
    """Each group's encoded table pieces (results rows, deviation rows, pyperf
    benchmarks): in memory, or appended to a scratch file with only their place kept
    in memory, so that holding them costs the runner nothing per group but an index."""

    def __init__(self, scratch: Path | None = None) -> None:
        self._memory: dict[str, tuple[tuple[bytes, int], ...]] = {}
        self._index: dict[str, tuple[int, tuple[tuple[int, int], ...]]] = {}
        self._fh = None
        self._scratch = scratch
        if scratch is not None:
            scratch.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(scratch, "w+b")  # noqa: SIM115 - closed by close()

    def put(self, key: str, pieces: tuple[tuple[bytes, int], ...]) -> None:
        if self._fh is None:
            self._memory[key] = pieces
            return
        # appended, never overwritten: a rebuilt group's old pieces stay as dead bytes
        self._fh.seek(0, io.SEEK_END)
        offset = self._fh.tell()
        for data, _ in pieces:
            self._fh.write(data)
        self._index[key] = (offset, tuple((len(d), n) for d, n in pieces))

    def get(self, key: str) -> tuple[tuple[bytes, int], ...]:
        if self._fh is None:
            return self._memory[key]
        offset, sizes = self._index[key]
        self._fh.seek(offset)
        return tuple((self._fh.read(size), n) for size, n in sizes)

    def close(self) -> None:
        """Close and remove the scratch file."""
        if self._fh is not None:
            self._fh.close()
            assert self._scratch is not None
            self._scratch.unlink(missing_ok=True)


class Builder:
    """Builds and writes the tables of a plan from a state, rebuilding a group only
    when an event changed it (``State.version``).

    ``scratch`` is the file that holds the groups' encoded pieces between writes
    (None: in memory); opening truncates it, ``close`` removes it.
    """

    def __init__(self, plan: Plan, seed: int = 0, scratch: Path | None = None) -> None:
        self.plan = plan
        self.seed = seed
        self.axes = plan_axes(plan)
        self._cache: dict[str, GroupOutput] = {}
        self._pieces = Pieces(scratch)

    #: Groups rebuilt together: their rows are typed and encoded in one frame (a frame
    #: per group would cost more than the analysis), and no more are held at once.
    BATCH = 256

    def stale(self, state: State, groups: Iterable[Group] | None = None) -> list[Group]:
        """The groups (of ``groups``, default all) that an event changed since built."""
        out = []
        for group in self.plan.groups if groups is None else groups:
            cached = self._cache.get(group.name)
            if cached is None or cached.version != state.version(group):
                out.append(group)
        return out

    def refresh(self, state: State, groups: Iterable[Group] | None = None) -> None:
        """Rebuild the stale groups (of ``groups``, default all)."""
        stale = self.stale(state, groups)
        for i in range(0, len(stale), self.BATCH):
            self._rebuild(state, stale[i : i + self.BATCH])

    def group(self, state: State, group: Group) -> GroupOutput:
        """The group's output, rebuilt if an event changed the group since."""
        self.refresh(state, (group,))
        return self._cache[group.name]

    def _rebuild(self, state: State, groups: list[Group]) -> None:
        built = [
            (g, state.version(g), group_tables(state, self.plan, g, self.seed)) for g in groups
        ]
        rows = [r for _, _, b in built if b is not None for r in b[1]]
        dev_rows = [r for _, _, b in built if b is not None for r in b[2]]
        records = _records(build_frame(rows, self.axes).to_csv(index=False, header=False))
        dev_records = _records(
            build_table(dev_rows, DEVIATION_COLUMNS).to_csv(index=False, header=False)
        )
        at = dev_at = 0
        for group, version, tables in built:
            if tables is None:
                self._pieces.put(group.name, ())
                self._cache[group.name] = GroupOutput(version, {}, 0, 0, ())
                continue
            analysis, group_rows, group_devs = tables
            benches = [benchmark_json(analysis.benches[c]) for c in sorted(analysis.benches)]
            n, n_dev = len(group_rows), len(group_devs)
            self._pieces.put(
                group.name,
                (
                    ("".join(records[at : at + n]).encode("utf-8"), n),
                    ("".join(dev_records[dev_at : dev_at + n_dev]).encode("utf-8"), n_dev),
                    (",".join(benches).encode("utf-8"), len(benches)),
                ),
            )
            at, dev_at = at + n, dev_at + n_dev
            failed = tuple(
                f"{r['case']}: {r['status']}: {r['error']}"
                for r in group_rows
                if r["status"] in ("error", "incomplete")
            )
            ok = sum(r["status"] == "ok" for r in group_rows)
            self._cache[group.name] = GroupOutput(version, analysis.comparisons, n, ok, failed)

    def write(self, state: State, folder: Path) -> Written:
        """Write the results folder's tables and pyperf.json (then its manifest),
        streaming each group's pieces: memory does not grow with the grid."""
        writer = ResultsWriter(folder, self.axes)
        rows = ok = 0
        failed: list[str] = []
        try:
            self.refresh(state)
            for group in self.plan.groups:
                out = self._cache[group.name]
                pieces = self._pieces.get(group.name)
                if pieces:
                    writer.add(*pieces)
                rows += out.rows
                ok += out.ok
                failed.extend(out.failed)
        except BaseException:
            writer.discard()
            raise
        writer.finish(_capabilities_table(state), breakdown=breakdown_table(state, self.plan))
        return Written(rows, ok, failed)

    def close(self) -> None:
        """Release the pieces (and remove the scratch file)."""
        self._pieces.close()


def _records(text: str) -> list[str]:
    """The records of CSV text as pandas writes it (minimal quoting, quotes doubled,
    ``\\n`` line ends), each with its line end: a line end inside a quoted field (an
    error message of several lines) does not end a record."""
    out: list[str] = []
    pending: list[str] = []
    quotes = 0
    for line in text.split("\n")[:-1]:
        pending.append(line)
        quotes += line.count('"')
        if quotes % 2 == 0:
            out.append("\n".join(pending) + "\n")
            pending, quotes = [], 0
    if pending:
        raise ValueError("CSV text ends inside a quoted field")
    return out


def _medians(analysis: GroupAnalysis, variant: Variant) -> dict[str, float | None]:
    """Median seconds per call of a variant per phase, None where not timed."""
    out: dict[str, float | None] = {}
    for phase in PHASES:
        bench = analysis.benches.get(variant.case(phase).name)
        out[phase] = None if bench is None else float(bench.median())
    return out


def _row(
    state: State,
    variant: Variant,
    phase: str,
    setup: SetupDone,
    info: LayerInfo,
    analysis: GroupAnalysis,
    comparison: Comparison | None,
    baseline_setup: SetupDone | None,
    baseline_times: Mapping[str, float | None],
    size_value: Any,
    dev_rows: list[dict[str, Any]],
) -> dict[str, Any]:
    """One results.csv row: a case's identity and setup, then its checks, timing and
    speedup columns (each step below adds its own); ``dev_rows`` gets the case's
    per-tensor deviations. Keep the order: it is the order of a row's keys."""
    case = Case(variant, phase)  # type: ignore[arg-type]
    ps = setup.phases.get(phase) or PhaseSetup("error", error="not set up")
    if phase != "forward" and ps.status == "error" and variant.impl not in info.backward:
        # a setup that crashed or timed out failed every phase: those this implementation
        # never runs are no failed points (2026-12-02: an ONNX Runtime form's backward
        # and step listed as failed after its export timed out)
        # a baseline out of it was declared so; a native, too, where a baseline trains
        trains = any(b in info.backward for b in info.baselines)
        declared = info.roles[variant.impl] != "baseline" and not trains
        reason = no_backward_reason(info.forms[variant.impl], declared)
        ps = PhaseSetup("unsupported", error=reason)
    if ps.status == "error" and ps.limit_s is not None and info.forms[variant.impl] != "eager":
        # the size whose build ran past the limit says so too, not only those after it
        grows = built_smaller(state, variant, info.size_axis)
        if grows and ps.error and ps.error.endswith(")"):
            ps = replace(ps, error=f"{ps.error[:-1]}{grows})")
    row = _setup_columns(case, setup, ps, info, size_value)
    forward = setup.phases.get("forward")
    narrow = narrowed_to(forward.returns if forward else None, variant.dtype)
    _add_deviations(row, case, ps, dev_rows, narrow)
    if phase == "backward" and info.roles[variant.impl] == "baseline":
        _add_gradcheck(row, state, variant)
    if row["status"] == "ok":
        _add_timing(row, analysis, case.name)
    if comparison is not None and analysis.baseline is not None:
        row["versus"] = analysis.baseline
        row.update(_interval_columns("", comparison.phase.get(phase)))
        row.update(_interval_columns("step_", comparison.step))
        trains = _trains(setup) and _trains(baseline_setup)
        # a forward row's calls are forwards, as the inference verdict serves them
        # (2026-12-02: compile's forward row carried the training step's 2.7 calls
        # where its forwards need 8)
        row["break_even_calls"] = _break_even(
            setup.oneoff_s,
            baseline_times,
            _medians(analysis, variant),
            "step" if trains and phase != "forward" else "forward",
        )
        if phase == "step" and row["status"] == "ok" and comparison.step is None and trains:
            # this side timed its step, the baseline did not: say why there is no
            # training speedup (nor a break-even), as error says why a row has no time
            why = _no_step(analysis, variant.group.variant(analysis.baseline), baseline_setup)
            if why is not None:
                row["error"] = "; ".join(e for e in (row["error"], why) if e)
    return row


def built_smaller(state: State, slow: Variant, axis: str) -> str:
    """``; it built in 8.9s at n=64 ...``: the form of ``slow``, whose build ran past
    the setup limit, built at a smaller size (on the size ``axis``), so its build time
    grows with the size (2026-12-02: a NumPy loop's
    compile took 8.9 s at n=64 and over 60 s at n=512, Dynamo unrolling the loop; the
    report said only that a longer limit would help)."""

    def size(v: Variant) -> float:
        value = v.point_dict.get(axis)
        return float(value) if isinstance(value, int | float) else math.nan

    built = [
        (done.oneoff_s, done.variant)
        for done in state.setup.values()
        if form_key(done.variant) == form_key(slow)
        and done.oneoff_s
        and size(done.variant) < size(slow)
    ]
    if not built:
        return ""
    seconds, variant = max(built, key=lambda b: b[0] or 0.0)
    return (
        f"; it built in {seconds:.1f}s at {variant.point_str}: a build time that grows "
        "with the size, as where Dynamo unrolls a Python loop over the data, makes a "
        "longer limit move only the size it stops at"
    )


def form_key(variant: Variant) -> Variant:
    """A variant without its point: the sizes of one form in one setting."""
    return replace(variant, point=())


def _trains(setup: SetupDone | None) -> bool:
    """Whether a variant has a training step to time: a ``step`` phase set up, and not
    ``unsupported`` (forward-only forms, baselines declared without a backward, runs
    with ``--use inference``); a step that failed still counts (it should have run)."""
    ps = None if setup is None else setup.phases.get("step")
    return ps is not None and ps.status != "unsupported"


def _no_step(analysis: GroupAnalysis, variant: Variant, setup: SetupDone | None) -> str | None:
    """Why ``variant`` has no step rounds (``no step timed for <impl>: <why>``), or None
    when it has some."""
    case = variant.case("step").name
    if case in analysis.benches:
        return None
    ps = None if setup is None else setup.phases.get("step")
    if ps is None:
        why = "not set up"
    elif ps.status != "ok":
        why = ps.error or ps.status
    else:
        why = analysis.errors.get(case) or "not timed yet"
    return f"no step timed for {variant.impl}: {why}"


def _setup_columns(
    case: Case, setup: SetupDone, ps: PhaseSetup, info: LayerInfo, size_value: Any
) -> dict[str, Any]:
    """The columns every row has: who was timed (identity, declared role, form and
    source) and what the setup pass found for this phase (status, one-off cost,
    memory)."""
    variant = case.variant
    return {
        "case": case.name,
        "group": variant.group.name,
        "layer": variant.layer,
        "impl": variant.impl,
        "role": info.roles[variant.impl],
        "form": info.forms[variant.impl],
        "source": info.sources[variant.impl],
        "point": variant.point_str,
        "size": float(size_value) if isinstance(size_value, int | float) else None,
        "dtype": variant.dtype,
        "threads": variant.threads,
        "device": variant.device,
        "allocator": variant.allocator,
        "phase": case.phase,
        "status": ps.status,
        "error": ps.error,
        "oneoff_s": setup.oneoff_s,
        "oneoff_what": setup.oneoff_what,
        "peak_bytes": ps.peak_bytes,
        "peak_sources": ps.peak_sources,
        "minor_faults": ps.minor_faults,
        "returns": ps.returns,
        "writes_inputs": ", ".join(ps.writes) or None,
        "random_output": ps.random,
        "alternating_torch_s": ps.alternating_torch_s,
        "alternating_numpy_s": ps.alternating_numpy_s,
        **variant.point_dict,
    }


def _add_deviations(
    row: dict[str, Any],
    case: Case,
    ps: PhaseSetup,
    dev_rows: list[dict[str, Any]],
    judged: str | None = None,
) -> None:
    """The phase's deviations from the float64 reference summed up on ``row`` (the
    worst tensor: out of tolerance before within it, then the largest relative
    error), and each tensor's deviation as its own row of deviations.csv."""
    devs = list(ps.deviations)
    if not devs:
        return
    variant = case.variant
    worst = max(devs, key=lambda d: (not d["within_tol"], d["max_rel_err"]))
    row.update(
        max_abs_err=max(d["max_abs_err"] for d in devs),
        max_rel_err=max(d["max_rel_err"] for d in devs),
        worst_tensor=worst["tensor"],
        tensors_out_of_tol=", ".join(d["tensor"] for d in devs if not d["within_tol"]) or None,
        within_tol=all(d["within_tol"] for d in devs),
        # the tolerance it was held to: its own dtype's where it narrows the run's
        rtol=RTOL[judged or variant.dtype],
    )
    for d in devs:
        dev_rows.append(
            {
                "case": case.name,
                "layer": variant.layer,
                "impl": variant.impl,
                "point": variant.point_str,
                "size": row["size"],
                "dtype": variant.dtype,
                "phase": case.phase,
                **d,
            }
        )


def _add_gradcheck(row: dict[str, Any], state: State, variant: Variant) -> None:
    """The layer's gradcheck, on the baseline's backward rows: it checks the
    baseline's gradients once per layer, not per case."""
    gc = state.gradchecks.get((variant.layer, variant.impl))
    if gc is None:
        return
    row["gradcheck"] = None if gc.ok is None else bool(gc.ok)
    at = f" (at {gc.point})" if gc.point else ""
    row["gradcheck_error"] = f"{gc.error}{at}" if gc.error else None
    row["returns"] = gc.returns or None
    row["reference_gradcheck"] = gc.reference_ok
    row["reference_gradcheck_error"] = gc.reference_error or None


def _add_timing(row: dict[str, Any], analysis: GroupAnalysis, case: str) -> None:
    """The timing columns of a case that set up fine: its pyperf benchmark's
    statistics, or why there are none (a worker failed timing it: ``error``; it was
    never timed: ``incomplete``)."""
    bench = analysis.benches.get(case)
    error = analysis.errors.get(case)
    if bench is not None:
        values = bench.get_values()
        measured = {r.get_metadata().get("harness_allocator") for r in bench.get_runs()}
        faults = [
            r.get_metadata()["harness_minor_faults"]
            for r in bench.get_runs()
            if "harness_minor_faults" in r.get_metadata()
        ]
        if faults:  # as timed, in each group's own process; else the setup pass's
            row["minor_faults"] = float(statistics.median(faults))
        row.update(
            allocator_measured="; ".join(sorted(str(a) for a in measured if a)) or None,
            median_s=bench.median(),
            mean_s=bench.mean(),
            stdev_s=bench.stdev() if len(values) > 1 else 0.0,
            min_s=min(values),
            max_s=max(values),
            n_values=len(values),
            n_processes=bench.get_nrun(),
            # pyperf gives the mean where processes recalibrated differently
            loops=round(bench.get_loops()),
        )
        if error:  # some processes timed it, another failed: keep the values, say so
            row["error"] = f"a worker process failed: {error}"
    elif error:
        row["status"] = "error"
        row["error"] = error
    else:
        row["status"] = "incomplete"
        row["error"] = (
            "checked but not timed yet: the run was interrupted (resume it with --resume)"
        )


def _break_even(
    oneoff: float | None,
    baseline: Mapping[str, float | None],
    candidate: Mapping[str, float | None],
    phase: str = "step",
) -> float | None:
    """Calls of ``phase`` after which ``oneoff`` seconds have paid off; None when they
    never do, or when either side has no time for that phase. The caller passes
    ``step`` where both sides train, ``forward`` where either has no step by design
    (a forward-only form); a step that failed or was not timed gives None, never an
    estimate from forward + backward (issue 16)."""
    if not oneoff:
        return None
    base, cand = baseline.get(phase), candidate.get(phase)
    if base is None or cand is None or cand >= base:
        return None
    return oneoff / (base - cand)
