"""From the workers' raw events to the results frame, the deviation and capability
tables and one pyperf suite.

``State`` folds events (``harness.protocol``) into what has been done; it is pure and
incremental: ``add`` one event at a time. ``Collector`` follows a results folder's raw
files with ``EventReader``s, so the runner reads only what is new. ``build_outputs``
turns a state into the tables; the per-group analysis (pyperf benchmarks, paired
speedup intervals) is cached and recomputed only for groups that received rounds since,
which keeps the runner's own cost linear in the size of the grid.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.case import PHASES, Case, Group, Variant
from harness.dtypes import RTOL
from harness.frame import CAPABILITY_COLUMNS, DEVIATION_COLUMNS, build_frame, build_table
from harness.protocol import (
    CapabilitiesDone,
    CapabilitiesTask,
    Crash,
    Event,
    EventReader,
    GradcheckDone,
    GradcheckTask,
    PhaseSetup,
    RoundsDone,
    RoundsTask,
    SetupDone,
    SetupTask,
)
from harness.stats import Interval, combine_phases, decide, round_ratios, speedup_interval

__all__ = [
    "RAW_DIR",
    "Collector",
    "GroupAnalysis",
    "State",
    "analyse_group",
    "build_outputs",
    "read_state",
    "timing_file",
]

RAW_DIR = "raw"
SETUP_FILE = "setup.jsonl"
VALIDATE_FILE = "validate.jsonl"


def timing_file(process: int) -> str:
    return f"timing-{process:03d}.jsonl"


def _process_of(path: Path) -> int | None:
    if path.name.startswith("timing-"):
        return int(path.stem.split("-")[1])
    return None


@dataclass
class State:
    """What the raw files of a results folder say has been done."""

    setup: dict[str, SetupDone] = field(default_factory=dict)
    gradchecks: dict[tuple[str, str], GradcheckDone] = field(default_factory=dict)
    capabilities: dict[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    rounds: dict[str, dict[int, RoundsDone]] = field(default_factory=dict)
    """Group name -> process -> its rounds (a process times a group once)."""
    crashed: dict[str, dict[int, str]] = field(default_factory=dict)
    """Group name -> process -> why its worker died on it."""
    changed: set[str] = field(default_factory=set)
    """Groups that received rounds since the last ``build_outputs``."""

    def add(self, event: Event, process: int | None = None) -> None:
        """Fold one event in; ``process`` is the timing process whose file it came from."""
        if isinstance(event, SetupDone):
            self.setup[event.variant] = event
        elif isinstance(event, GradcheckDone):
            self.gradchecks[(event.layer, event.impl)] = event
        elif isinstance(event, CapabilitiesDone):
            self.capabilities[event.layer] = event.rows
        elif isinstance(event, RoundsDone):
            self.rounds.setdefault(event.group, {})[event.process] = event
            self.changed.add(event.group)
        elif isinstance(event, Crash):
            self._crash(event, -1 if process is None else process)

    def _crash(self, event: Crash, process: int) -> None:
        task = event.task
        if isinstance(task, SetupTask):
            err = PhaseSetup("error", error=event.error)
            self.setup[task.variant] = SetupDone(task.variant, {ph: err for ph in PHASES})
        elif isinstance(task, GradcheckTask):
            self.gradchecks[(task.layer, task.impl)] = GradcheckDone(
                task.layer, task.impl, False, event.error
            )
        elif isinstance(task, CapabilitiesTask):
            self.capabilities[task.layer] = ()
        elif isinstance(task, RoundsTask):
            self.crashed.setdefault(task.group, {})[process] = event.error
            self.changed.add(task.group)

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
                for event in reader.poll():
                    # the runner writes a worker's crash into that worker's own file
                    self.state.add(event, process)
        return self.state


def read_state(folder: Path) -> State:
    return Collector(folder).poll()


# -------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class Comparison:
    """One candidate against the baseline in one group: per phase and per step."""

    phase: dict[str, Interval | None]
    step: Interval | None


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
        base_f = _values_by_process(runs, group.variant(baseline).case("forward").name)
        base_b = _values_by_process(runs, group.variant(baseline).case("backward").name)
        for n, impl in enumerate(impls):
            if impl == baseline:
                continue
            cand_f = _values_by_process(runs, group.variant(impl).case("forward").name)
            cand_b = _values_by_process(runs, group.variant(impl).case("backward").name)
            per_phase = {
                "forward": speedup_interval(round_ratios(base_f, cand_f), seed=seed + n),
                "backward": speedup_interval(round_ratios(base_b, cand_b), seed=seed + n),
            }
            step = None
            if base_b and cand_b:
                sb, sc = combine_phases([base_f, base_b], [cand_f, cand_b])
                step = speedup_interval(round_ratios(sb, sc), seed=seed + n)
            comparisons[impl] = Comparison(per_phase, step)
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
    frame: pd.DataFrame
    deviations: pd.DataFrame
    capabilities: pd.DataFrame
    suite: Any
    analyses: dict[str, GroupAnalysis]


class Builder:
    """Builds the outputs of a plan from a state, caching each group's analysis until
    the group receives new rounds."""

    def __init__(self, plan: Any, seed: int = 0) -> None:
        self.plan = plan
        self.seed = seed
        self._cache: dict[str, GroupAnalysis] = {}

    def analysis(self, state: State, group: Group) -> GroupAnalysis:
        name = group.name
        if name in state.changed or name not in self._cache:
            info = self.plan.info[group.layer]
            baseline = info.baselines[0] if info.baselines else None
            self._cache[name] = analyse_group(
                group,
                self.plan.impls[group.layer],
                baseline,
                state.rounds.get(name, {}),
                state.crashed.get(name, {}),
                self.seed,
            )
            state.changed.discard(name)
        return self._cache[name]

    def build(self, state: State) -> Outputs:
        return build_outputs(state, self.plan, self)


def build_outputs(state: State, plan: Any, builder: Builder | None = None) -> Outputs:
    """(results frame, deviation table, capability table, pyperf suite or None)."""

    builder = builder or Builder(plan)
    rows: list[dict[str, Any]] = []
    dev_rows: list[dict[str, Any]] = []
    axes: list[str] = []
    benches: list[Any] = []
    analyses: dict[str, GroupAnalysis] = {}
    for group in plan.groups:
        info = plan.info[group.layer]
        for axis in info.axes:
            if axis not in axes:
                axes.append(axis)
        variants = plan.variants_of(group)
        if not any(v.name in state.setup for v in variants):
            continue
        analysis = builder.analysis(state, group)
        analyses[group.name] = analysis
        benches.extend(analysis.benches[c] for c in sorted(analysis.benches))
        baseline_times: tuple[float | None, float | None] = (None, None)
        if analysis.baseline is not None:
            baseline_times = _medians(analysis, group.variant(analysis.baseline))
        size_value = group.point_dict[info.size_axis]
        for variant in variants:
            setup = state.setup.get(variant.name)
            if setup is None:
                continue
            impl = variant.impl
            comparison = analysis.comparisons.get(impl)
            for phase in PHASES:
                rows.append(
                    _row(
                        state,
                        variant,
                        phase,
                        setup,
                        info,
                        analysis,
                        comparison,
                        baseline_times,
                        size_value,
                        dev_rows,
                    )
                )
    frame = build_frame(rows, axes)
    deviations = build_table(dev_rows, DEVIATION_COLUMNS)
    cap_rows = [r for layer in sorted(state.capabilities) for r in state.capabilities[layer]]
    capabilities = build_table(cap_rows, CAPABILITY_COLUMNS)
    suite = _suite(benches) if benches else None
    return Outputs(frame, deviations, capabilities, suite, analyses)


def _suite(benches: list[Any]) -> Any:
    """One pyperf suite of every benchmark. ``BenchmarkSuite(benches)`` checks each name
    against every earlier one, quadratic in the grid (6.5 s for 4,000 cases); case names
    are unique by construction, so the benchmarks are appended without that check."""
    import pyperf

    suite = pyperf.BenchmarkSuite(benches[:1])
    suite._benchmarks.extend(benches[1:])  # pyperf's own list (pinned in constraints.txt)
    return suite


def _medians(analysis: GroupAnalysis, variant: Variant) -> tuple[float | None, float | None]:
    """(forward, backward) median seconds per call of a variant, None where not timed."""
    out = []
    for phase in PHASES:
        bench = analysis.benches.get(variant.case(phase).name)
        out.append(None if bench is None else float(bench.median()))
    return out[0], out[1]


def _row(
    state: State,
    variant: Variant,
    phase: str,
    setup: SetupDone,
    info: Any,
    analysis: GroupAnalysis,
    comparison: Comparison | None,
    baseline_times: tuple[float | None, float | None],
    size_value: Any,
    dev_rows: list[dict[str, Any]],
) -> dict[str, Any]:
    case = Case(variant, phase)  # type: ignore[arg-type]
    ps = setup.phases.get(phase) or PhaseSetup("error", error="not set up")
    row: dict[str, Any] = {
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
        "phase": phase,
        "status": ps.status,
        "error": ps.error,
        "oneoff_s": setup.oneoff_s,
        "oneoff_what": setup.oneoff_what,
        "peak_bytes": ps.peak_bytes,
        "peak_sources": ps.peak_sources,
        **variant.point_dict,
    }
    devs = list(ps.deviations)
    if devs:
        worst = max(devs, key=lambda d: (not d["within_tol"], d["max_rel_err"]))
        row.update(
            max_abs_err=max(d["max_abs_err"] for d in devs),
            max_rel_err=max(d["max_rel_err"] for d in devs),
            worst_tensor=worst["tensor"],
            within_tol=all(d["within_tol"] for d in devs),
            rtol=RTOL[variant.dtype],
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
                    "phase": phase,
                    **d,
                }
            )
    if phase == "backward" and info.roles[variant.impl] == "baseline":
        gc = state.gradchecks.get((variant.layer, variant.impl))
        if gc is not None:
            row["gradcheck"] = bool(gc.ok)
            row["gradcheck_error"] = f"{gc.error} (at {gc.point})" if gc.error else None
    if row["status"] == "ok":
        bench = analysis.benches.get(case.name)
        error = analysis.errors.get(case.name)
        if bench is not None:
            values = bench.get_values()
            row.update(
                median_s=bench.median(),
                mean_s=bench.mean(),
                stdev_s=bench.stdev() if len(values) > 1 else 0.0,
                min_s=min(values),
                max_s=max(values),
                n_values=len(values),
                n_processes=bench.get_nrun(),
                loops=bench.get_loops(),
            )
            if error:
                row["error"] = f"a worker process failed: {error}"
        elif error:
            row["status"] = "error"
            row["error"] = error
        else:
            row["status"] = "incomplete"
            row["error"] = (
                "checked but not timed yet: the run was interrupted (resume it with --resume)"
            )
    if comparison is not None and analysis.baseline is not None:
        row["versus"] = analysis.baseline
        row.update(_interval_columns("", comparison.phase.get(phase)))
        row.update(_interval_columns("step_", comparison.step))
        row["break_even_calls"] = _break_even(
            setup.oneoff_s, baseline_times, _medians(analysis, variant)
        )
    return row


def _break_even(
    oneoff: float | None,
    baseline: tuple[float | None, float | None],
    candidate: tuple[float | None, float | None],
) -> float | None:
    """Calls of a training step (forward alone where either side has no backward)
    after which ``oneoff`` seconds have paid off; None when they never do."""
    if not oneoff or baseline[0] is None or candidate[0] is None:
        return None
    both = baseline[1] is not None and candidate[1] is not None
    base = baseline[0] + ((baseline[1] or 0.0) if both else 0.0)
    cand = candidate[0] + ((candidate[1] or 0.0) if both else 0.0)
    if cand >= base:
        return None
    return oneoff / (base - cand)


def suite_json(suite: Any) -> str:
    buf = io.StringIO()
    suite.dump(buf, compact=True)
    return buf.getvalue()
