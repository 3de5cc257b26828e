"""A worker process: ``python -m harness.worker JOB.json``.

The runner starts workers one at a time and never times anything itself. A worker
imports torch once and then runs the tasks of its ``Job`` (``harness.protocol``),
appending one event per line to its raw file (flushed and fsynced), so what it
measured survives a crash of the worker or of the runner. Before each task it writes
``Started(task)``: if the worker dies or hangs, the runner knows which task did it.

The modes:

- ``validate``: run each layer's declaration checks (``registry.validate_layer``),
  which call the user's code, before anything is measured.
- ``setup``: for each variant, build the form (its one-off cost), check outputs and
  gradients against the float64 reference, measure peak memory, calibrate the loop
  count of each phase; gradcheck for baselines with a backward; each layer's
  capability matrix.
- ``timing``: paired rounds. For each group (every implementation of one grid point),
  each implementation in children forked for it (``time_apart``, ``harness.own_process``:
  their allocator state is their own; an eager or TorchScript one's forked from the
  worker's zygote, whose heap is a fresh process's, ``_own_process``), one for its
  inference phase and one for its training phases, each set's forked and prepared at
  once; one discarded warm-up round, then ``rounds`` rounds, each timing every case of
  the group once, in a fresh random order: drift and bursts of noise then hit every
  implementation of a point alike, and the per-round ratios cancel them.
- ``profile``: after timing, one profiled call per phase of a variant (where the
  time goes), each variant in a child of its own, as timing's groups.

``Worker`` dispatches the tasks and prepares each variant once (``harness.prepared``);
the setup checks and the profiled calls live in ``harness.checks``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TextIO

import torch

from harness.cache import Checks, Lookup
from harness.case import PHASES, PROCESS_PHASES, Variant
from harness.checks import (
    SetupChecks,
    cache_entry,
    gradcheck_with_reference,
    pools_meet,
    profile_phase,
)
from harness.contention import PoolWatch, probe, running_threads, thread_runtimes
from harness.dtypes import torch_dtype
from harness.errors import FormUnsupported, LayerDefinitionError, describe
from harness.forms import build, quiet
from harness.layer import Layer
from harness.measure import recalibrated_loops, set_threads
from harness.own_process import (
    OwnProcess,
    RemoteFailure,
    Zygote,
    ask_all,
    close_all,
    exit_like,
    fork_child,
    process_faults,
    redirect_output,
    serve_requests,
    thread_pids,
)
from harness.points import format_point
from harness.prepared import Prepared
from harness.profile_call import minor_faults
from harness.protocol import (
    BreakdownDone,
    CapabilitiesDone,
    CapabilitiesTask,
    EventLog,
    Finished,
    GradcheckDone,
    GradcheckTask,
    Invalid,
    Job,
    PhaseBreakdown,
    PhaseSetup,
    ProfileTask,
    ProtocolError,
    RoundsDone,
    RoundsTask,
    SetupDone,
    SetupTask,
    Started,
    Task,
    Validated,
    ValidateTask,
    event_from_json,
    event_to_json,
)
from harness.registry import Registry, validate_layer
from harness.toolchain import CLEAN_HEAP_FORMS, PROFILER_IMPORTS, prepare_to_fork

__all__ = ["Worker", "leave_now", "main"]

#: The order in which a group's phases are timed (``Worker.rounds``).
TIMED_ORDER = ("forward", "step", "backward")
#: Untimed calls an implementation's process runs before its first value of its first
#: phase (``time_apart``): this many, or fewer where they reach ``OWN_WARM_S`` seconds
#: (one at least). Without them torch's 1-thread fft step at n=1024 faulted 46-2,069
#: pages a call in some processes, where its loop alone faults none (2026-12-03,
#: AVX512). A later phase of the process (``backward``, after ``step``) finds its heap
#: warm, and has the discarded warm-up round of every phase.
OWN_WARM_CALLS = 5
OWN_WARM_S = 0.1
#: A value of one call that had to wait for other pools to rest starts with an untimed
#: call where the call lasts less than this: its own pool has gone to sleep meanwhile,
#: and waking it (about 0.1 ms: torch's conv2d forward at n=128 on 2 threads took 0.06
#: ms in a loop, 0.16 ms as a first call, 2026-11-30) is timed as the call's. In a
#: longer call that is under 1%, and the untimed call cost more than the values: conv2d
#: n=1024 k=7 at 2 threads spent 4.3 s of a 22 s visit on them (2026-12-03, AVX512).
WAKE_CALL_UNDER_S = 0.01


@dataclass
class _Timed:
    """What a group's rounds gave, per case name, in one process (``time_phases``)."""

    values: dict[str, list[float]] = field(default_factory=dict)
    faults: dict[str, list[float]] = field(default_factory=dict)
    warmups: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: the loop count each case was timed with (after ``recalibrated_loops``)
    loops: dict[str, int] = field(default_factory=dict)
    #: the processes that timed them, and how long they waited for other pools to rest
    pids: list[int] = field(default_factory=list)
    pool_wait_s: float = 0.0
    #: seconds outside the rounds: forking the processes, building the forms in them,
    #: their warm-up calls, ending them (``time_apart``; ``time_phases``: preparing)
    prepare_s: float = 0.0


#: Modes whose tasks each run in a child forked for them (``run_in_child``).
_FORKING_MODES = ("timing", "profile")


class Worker:
    def __init__(
        self, job: Job, registry: Registry | None = None, zygote: Zygote | None = None
    ) -> None:
        """``registry``: the layers, where this process loaded them already (a worker
        started ahead of its job, ``spare``), otherwise loaded here; ``zygote``: the
        zygote such a worker forked (``_ready_to_fork``)."""
        self.job = job
        #: whether each group (or profiled variant) runs in a child forked for it
        self.forking = _forks(job)
        if self.forking:  # before the layers' modules run anything
            torch.set_num_threads(1)
        self.log = EventLog(job.raw)
        if registry is None:
            with quiet():
                registry = Registry.default(job.layers_from)
        self.registry = registry
        self.seed = job.seed
        self.checks = (
            Checks(
                job.cache_dir,
                torch.backends.cpu.get_cpu_capability(),
                job.seed,
                job.layers_from,
            )
            if job.cache_dir
            else None
        )
        #: each profiled variant's cache lookup, made before preparing to fork: a
        #: profiling job whose every variant is cached pays no toolchain warm-up
        self._breakdown_lookups = {
            t: self._breakdown_key(t) for t in job.tasks if isinstance(t, ProfileTask)
        }
        self._cached_breakdowns = {
            t: done
            for t, (_, found) in self._breakdown_lookups.items()
            if (done := _breakdown_from_cache(t, found))
        }
        #: where a timing worker forks the processes of implementations whose form
        #: leaves the heap as a fresh process's (``CLEAN_HEAP_FORMS``); None: from here
        self.zygote = zygote
        if self.forking:
            profiling = PROFILER_IMPORTS if job.mode == "profile" else ()
            left = [t for t in job.tasks if t not in self._cached_breakdowns]
            if left:
                with quiet():
                    self.zygote = _ready_to_fork(self.registry, job.mode, left, profiling, zygote)
        self._prepared: dict[Variant, Prepared] = {}
        self.setup_checks = SetupChecks(job.seed)

    # -- preparation ----------------------------------------------------------------

    def prepare(self, variant: Variant) -> Prepared:
        if variant not in self._prepared:
            self._prepared[variant] = prepare_variant(self.registry, variant, self.seed)
        return self._prepared[variant]

    # -- the cache of checks (harness.cache) -----------------------------------------

    def _cached(
        self, check: str, layer: Layer, **what: Any
    ) -> tuple[dict[str, Any] | None, Lookup]:
        """The key of a check and what the cache holds for it (no key: not caching)."""
        if self.checks is None:
            return None, Lookup()
        key = self.checks.key(check, layer, **what)
        found = self.checks.get(check, key)
        if found.note:
            print(f"note: {found.note}", file=sys.stderr)
        return key, found

    def _store(self, check: str, key: dict[str, Any] | None, value: Any) -> None:
        """Cache ``value`` (None: nothing to keep) under ``key`` (None: not caching)."""
        if self.checks is not None and key is not None and value is not None:
            self.checks.put(check, key, value)

    def _setup_from_cache(self, variant: Variant, value: Any) -> bool:
        """Set ``variant`` up from its cached checks, without building its form: the
        deviations, peak memory, one-off cost and the loop calibration are the cold
        run's (the calibration is only a plan: the timing worker checks it in its
        warm-up round, ``measure.recalibrated_loops``; nothing timed comes from the
        cache). False if the entry cannot be used (the variant is then checked in
        full)."""
        try:
            cached = {ph: PhaseSetup.from_json(v) for ph, v in value["phases"].items()}
            oneoff_s, oneoff_what = value["oneoff_s"], value["oneoff_what"]
        except (KeyError, TypeError, AttributeError):
            return False
        if any(info.status == "ok" and not info.loops for info in cached.values()):
            return False
        if not value["built"]:
            oneoff_s = oneoff_what = None
        role = self.registry.get(variant.layer).implementation(variant.impl).role
        if "forward" in cached and pools_meet(role, variant) and value.get("probed", True):
            cached["forward"] = _probed_afresh(self, variant, cached["forward"])
        self.log.write(SetupDone(variant, cached, oneoff_s, oneoff_what, cache="hit"))
        return True

    # -- setup mode -----------------------------------------------------------------

    def setup(self, variant: Variant) -> None:
        key, found = self._cached(
            "setup",
            self.registry.get(variant.layer),
            variant=variant.to_json(),
            phases=[ph for ph in PHASES if ph in self.job.phases],
            memory=self.job.memory,
            min_time=self.job.min_time,  # the calibration is for one value length
        )
        if found.hit and self._setup_from_cache(variant, found.value):
            return
        status = found.status if key is not None else ""
        try:
            with quiet():
                p = self.prepare(variant)
        except Exception as exc:
            # A form that cannot be built (FormUnsupported) is no failure: every phase
            # says why it is not timed.
            err = (
                PhaseSetup("unsupported", error=exc.cause)
                if isinstance(exc, FormUnsupported)
                else PhaseSetup("error", error=describe(exc))
            )
            failed: dict[str, PhaseSetup] = {ph: err for ph in PHASES if ph in self.job.phases}
            self.log.write(SetupDone(variant, failed, cache=status))
            self._store("setup", key, cache_entry(failed, built=False))
            return
        phases: dict[str, PhaseSetup] = {}
        for phase in PHASES:
            if phase not in self.job.phases:
                continue
            try:
                set_threads(variant.threads)
                phases[phase] = self.setup_checks.check(
                    phase, p, self.job.min_time, self.job.memory
                )
            except Exception as exc:
                phases[phase] = PhaseSetup("error", error=describe(exc))
        built = p.built
        self.log.write(SetupDone(variant, phases, built.oneoff_s, built.oneoff_what, cache=status))
        self._store("setup", key, cache_entry(phases, True, built.oneoff_s, built.oneoff_what))

    def gradcheck(
        self, layer_name: str, impl_name: str, fixed: tuple[tuple[str, Any], ...] = ()
    ) -> None:
        layer = self.registry.get(layer_name)
        impl = layer.implementation(impl_name)
        point = layer.smallest_point(dict(fixed))
        key, found = self._cached("gradcheck", layer, impl=impl_name, point=format_point(point))
        if found.hit:
            ok, why, at, returns, ref_ok, ref_why = found.value
            status = "hit"
        else:
            with quiet():
                ok, why, returns, ref_ok, ref_why = gradcheck_with_reference(
                    layer, impl.callable_for(point), point, self.seed
                )
            at = format_point(point)
            self._store("gradcheck", key, [ok, why, at, returns, ref_ok, ref_why])
            status = found.status if key is not None else ""
        self.log.write(
            GradcheckDone(layer_name, impl_name, ok, why, at, returns, status, ref_ok, ref_why)
        )

    def capabilities(
        self, layer_name: str, impls: tuple[str, ...], fixed: tuple[tuple[str, Any], ...] = ()
    ) -> None:
        from harness.capabilities import capability_matrix

        layer = self.registry.get(layer_name)
        where = layer.smallest_point(dict(fixed))
        point = format_point(where)
        key, found = self._cached("capabilities", layer, impls=list(impls), point=point)
        if found.hit:
            self.log.write(CapabilitiesDone(layer_name, tuple(found.value), cache="hit"))
            return
        with quiet():
            rows = capability_matrix(layer, list(impls), where)
        self._store("capabilities", key, rows)
        status = found.status if key is not None else ""
        self.log.write(CapabilitiesDone(layer_name, tuple(rows), cache=status))

    # -- timing mode ----------------------------------------------------------------

    def rounds(self, task: RoundsTask) -> None:
        """Time every case of a group, ``task.rounds`` paired rounds per phase, and
        write what they gave (one ``RoundsDone``).

        A forking worker times each implementation's inference phase and its training
        phases in a child each (``PROCESS_PHASES``, ``time_apart``), as a user's
        inference process runs forwards of one implementation only and a training
        loop steps of one only; otherwise all phases run here, in ``TIMED_ORDER``
        (``time_phases``)."""
        from harness.environment import allocator_in_use

        timed = time_apart(self, task) if self.forking else time_phases(self, task, TIMED_ORDER)
        self.log.write(
            RoundsDone(
                group=task.group,
                process=self.job.process,
                batch=task.batch,
                values={k: tuple(v) for k, v in timed.values.items()},
                loops=timed.loops,
                warmups=timed.warmups,
                errors=timed.errors,
                faults={k: statistics.median(v) for k, v in timed.faults.items() if v},
                metadata={
                    "threads": task.group.threads,
                    "device": task.group.device,
                    "allocator": allocator_in_use(),
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "pid": timed.pids[-1] if timed.pids else os.getpid(),
                    # pyperf metadata holds no lists
                    "pids": ",".join(str(p) for p in timed.pids),
                    "pool_wait_s": round(timed.pool_wait_s, 4),
                    "prepare_s": round(timed.prepare_s, 4),
                },
            )
        )

    # -- profile mode ---------------------------------------------------------------

    def profile(self, task: ProfileTask) -> None:
        """One profiled call per phase of a variant (harness.profile_call), after
        timing: where its time goes."""
        from harness.profile_call import calibrate

        cached = self._cached_breakdowns.get(task)
        if cached is not None:
            self.log.write(cached)
            return
        t0 = time.perf_counter()
        key, found = self._breakdown_lookups.get(task) or self._breakdown_key(task)
        try:
            with quiet():
                p = self.prepare(task.variant)
            costs = calibrate()
        except Exception as exc:
            err = (
                PhaseBreakdown("unsupported", error=exc.cause)
                if isinstance(exc, FormUnsupported)
                else PhaseBreakdown("error", error=describe(exc))
            )
            done = BreakdownDone(task.variant, dict.fromkeys(task.phases, err))
        else:
            phases = {phase: profile_phase(p, phase, costs) for phase in task.phases}
            done = BreakdownDone(task.variant, phases, time.perf_counter() - t0)
        status = found.status if key is not None else ""
        self.log.write(replace(done, cache=status))
        # kept unless a phase failed: an error may not recur, an unsupported form will
        if all(b.status != "error" for b in done.phases.values()):
            self._store("breakdown", key, event_to_json(done)["phases"])

    def _breakdown_key(self, task: ProfileTask) -> tuple[dict[str, Any] | None, Lookup]:
        """The key of ``task``'s breakdown and what the cache holds for it (no key: not
        caching, or a layer the registry does not know, which ``profile`` reports)."""
        try:
            layer = self.registry.get(task.variant.layer)
        except Exception:
            return None, Lookup()
        return self._cached(
            "breakdown", layer, variant=task.variant.to_json(), phases=list(task.phases)
        )

    # -- entry ----------------------------------------------------------------------

    def validate(self, layer_name: str, impls: tuple[str, ...]) -> None:
        layer = self.registry.get(layer_name)
        try:
            with quiet():
                notes = validate_layer(layer, list(impls))
        except LayerDefinitionError as exc:
            self.log.write(Invalid(layer_name, str(exc)))
            return
        self.log.write(Validated(layer_name, tuple(notes)))

    def run_task(self, task: Task) -> None:
        self.log.write(Started(task, time.time()))
        if isinstance(task, ValidateTask):
            self.validate(task.layer, task.impls)
        elif isinstance(task, SetupTask):
            variant = task.variant
            self.setup(variant)
            self._prepared.pop(variant, None)  # set up once per process
        elif isinstance(task, GradcheckTask):
            self.gradcheck(task.layer, task.impl, task.fixed)
        elif isinstance(task, CapabilitiesTask):
            self.capabilities(task.layer, task.impls, task.fixed)
        elif isinstance(task, RoundsTask):
            self.rounds(task)
        elif isinstance(task, ProfileTask):
            self.profile(task)
            self._prepared.pop(task.variant, None)

    def run(self) -> None:
        # what is timed (``rounds`` forks for it), and the profiled calls whose page
        # faults explain it, run in processes of their own (run_in_child)
        for task in self.job.tasks:
            forked = isinstance(task, ProfileTask)
            # a cached profile has nothing to profile: its parts are written here
            if self.forking and forked and task not in self._cached_breakdowns:
                run_in_child(functools.partial(self.run_task, task))
            else:
                self.run_task(task)
        if self.zygote is not None:
            # reaped, so that its processes' CPU time reaches this worker's children's
            # and the runner's (harness.environment.NoiseMonitor): unreaped, every
            # eager implementation's timing counted as another process's load
            self.zygote.close()
            self.zygote = None
        self.log.write(Finished())


def _probed_afresh(worker: Worker, variant: Variant, forward: PhaseSetup) -> PhaseSetup:
    """``forward`` (from the cache) with its probe alternating with torch's ops measured
    afresh (``harness.contention``): it is a timing, and nothing timed comes from the
    cache. Unchanged where it cannot run: it explains, and decides nothing. Called only
    where the cold run probed the call (the entry's ``probed``): whether a call runs
    threads of its own is its code's, which keys the entry, and checking it again cost
    a pause of 0.25 s and more for every baseline variant of a warm run."""
    if forward.status != "ok":
        return forward
    try:
        with quiet():
            p = worker.prepare(variant)
        set_threads(variant.threads)
        found = probe(p.forward, forward.estimate_s or 0.0)
    except Exception:
        return forward
    if found is None:
        return forward
    return replace(forward, alternating_torch_s=found.torch_s, alternating_numpy_s=found.numpy_s)


def _breakdown_from_cache(task: ProfileTask, found: Lookup) -> BreakdownDone | None:
    """``task``'s breakdown from its cache lookup (the phases as ``BreakdownDone``'s
    event holds them), or None (a miss, or an entry that does not decode or lacks a
    phase: ``Worker.profile`` then profiles it in full)."""
    if not found.hit:
        return None
    data = {"event": BreakdownDone.kind, "variant": task.variant.to_json(), "phases": found.value}
    try:
        done = event_from_json(data)
    except ProtocolError:
        return None
    if not isinstance(done, BreakdownDone) or set(done.phases) != set(task.phases):
        return None
    return replace(done, cache="hit")


def prepare_variant(
    registry: Registry, variant: Variant, seed: int, phases: Collection[str] | None = None
) -> Prepared:
    """``variant``'s inputs (from ``seed``) and its form, built at its threads for
    ``phases`` (``harness.forms.build``; None: any)."""
    layer = registry.get(variant.layer)
    impl = layer.implementation(variant.impl)
    set_threads(variant.threads)
    inputs = layer.make(variant.point_dict, torch_dtype(variant.dtype), variant.device, seed)
    mask = layer.grad_mask(inputs)
    built = build(
        layer,
        impl,
        variant.point_dict,
        inputs,
        variant.dtype,
        variant.threads,
        variant.device,
        mask,
        phases,
    )
    return Prepared(variant, layer, impl, built, inputs, mask, seed)


def _forms(registry: Registry, tasks: Iterable[Task]) -> set[str]:
    """The forms of the implementations ``tasks`` time or profile."""
    variants = [c.variant for t in tasks if isinstance(t, RoundsTask) for c, _ in t.cases]
    variants += [t.variant for t in tasks if isinstance(t, ProfileTask)]
    forms = set()
    for variant in {(v.layer, v.impl) for v in variants}:
        with contextlib.suppress(Exception):  # an unknown one fails in its child
            forms.add(registry.get(variant[0]).implementation(variant[1]).form)
    return forms


def time_phases(worker: Worker, task: RoundsTask, phases: Iterable[str]) -> _Timed:
    """Time the cases of ``task`` in ``phases`` (in ``TIMED_ORDER``), in this process.

    Each phase has its own calls alive only while it is timed: ``forward`` (an
    inference process has run forwards only), then ``step`` (a training loop's steps
    free their graphs), then ``backward`` (its retained graph would otherwise sit in
    memory while the others are timed, which no user's loop does). Only the variants
    with a case in ``phases`` are prepared. Within a phase, every round times each
    implementation once in a fresh random order, so drift and bursts hit both sides of
    a ratio alike."""
    wanted = set(phases)
    group = task.group
    rng = random.Random(f"{worker.seed}/{worker.job.process}/{task.batch}/{group.name}/{phases}")
    # keyed by case name, the pyperf benchmark name (RoundsDone's keys)
    loops = {case.name: n for case, n in task.cases if case.phase in wanted}
    timed = _Timed(pids=[os.getpid()])
    pools = PoolWatch()  # one per group and process: its waits are reported with the rounds
    start = time.perf_counter()
    in_rounds = 0.0
    prepared: dict[Variant, Prepared] = {}
    for case, _ in task.cases:
        if case.phase not in wanted or case.variant in prepared:
            continue
        try:
            with quiet():
                prepared[case.variant] = worker.prepare(case.variant)
        except Exception as exc:
            for other, _ in task.cases:
                if other.variant == case.variant and other.phase in wanted:
                    timed.errors[other.name] = describe(exc)
    for phase in (p for p in TIMED_ORDER if p in wanted):
        cases = [c for c, _ in task.cases if c.phase == phase and c.variant in prepared]
        funcs: dict[str, Callable[[int], float]] = {}
        for case in cases:
            try:
                set_threads(case.variant.threads)
                funcs[case.name] = prepared[case.variant].time_func(phase)
            except Exception as exc:
                timed.errors[case.name] = describe(exc)
        set_threads(group.threads)
        began = time.perf_counter()
        _time_rounds(funcs, loops, task.rounds, rng, timed, worker.job.min_time, pools)
        in_rounds += time.perf_counter() - began
        del funcs
        for case in cases:
            prepared[case.variant].drop_graph()  # a retained graph: gone before the next
    for variant in prepared:
        worker._prepared.pop(variant, None)  # free inputs, graph and form
    timed.loops = {k: loops[k] for k in timed.values}
    timed.pool_wait_s = pools.waited_s
    timed.prepare_s = time.perf_counter() - start - in_rounds
    return timed


def time_apart(worker: Worker, task: RoundsTask) -> _Timed:
    """Time the cases of ``task`` as ``time_phases`` does, but each implementation in
    a process of its own (``harness.own_process``) per phase set (``PROCESS_PHASES``),
    forked from this one; the rounds are run from here.

    A phase set's processes are forked and prepare their forms at once, and each
    phase's processes warm it up at once (``ask_all``): on 2 cores that halves what a
    visit of a group spends before its first value, and nothing is timed meanwhile
    (each process's heap is its own, whoever runs beside it). A set's processes are
    ended before the next set's are forked, so that no more of them hold their inputs
    and forms at a time than implementations of the group (the sets' preparing at once
    bought nothing more on 2 cores, where one set's keeps both busy)."""
    sets = [ph for ph in PROCESS_PHASES if any(c.phase in ph for c, _ in task.cases)]
    rng = random.Random(f"{worker.seed}/{worker.job.process}/{task.batch}/{task.group.name}/apart")
    loops = {case.name: n for case, n in task.cases}
    timed = _Timed()
    start, in_rounds = time.perf_counter(), 0.0
    for phases in sets:
        children: dict[Variant, OwnProcess] = {}
        try:
            for variant in dict.fromkeys(c.variant for c, _ in task.cases if c.phase in phases):
                children[variant] = _own_process(worker, variant, phases)
            OwnProcess.group(list(children.values()))
            for variant, answer in ask_all(children, "ready").items():
                if isinstance(answer, RemoteFailure):  # its form could not be prepared
                    for case, _ in task.cases:
                        if case.variant == variant and case.phase in phases:
                            timed.errors[case.name] = str(answer)
                    children.pop(variant).close()
            pids = [c.pid for c in children.values()]
            timed.pids += pids
            lister = thread_pids(pids)
            pools = PoolWatch(
                runtimes=functools.partial(thread_runtimes, lister),
                running=functools.partial(running_threads, lister),
            )
            in_rounds += _time_set(
                task, phases, children, loops, rng, timed, worker.job.min_time, pools
            )
            timed.pool_wait_s += pools.waited_s
            close_all(children.values())
            children = {}
        finally:
            for child in children.values():
                child.close()
    timed.loops = {k: loops[k] for k in timed.values}
    timed.prepare_s = time.perf_counter() - start - in_rounds
    return timed


def _time_set(
    task: RoundsTask,
    phases: tuple[str, ...],
    children: dict[Variant, OwnProcess],
    loops: dict[str, int],
    rng: random.Random,
    timed: _Timed,
    min_time: float,
    pools: PoolWatch,
) -> float:
    """``time_apart``'s rounds of one phase set, over its processes (``children``); the
    seconds its rounds took (the rest: the processes' warm-ups)."""
    in_rounds = 0.0
    for phase in (p for p in TIMED_ORDER if p in phases):
        cases = {c.variant: c for c, _ in task.cases if c.phase == phase and c.variant in children}
        started = ask_all({v: children[v] for v in cases}, "phase", phase)
        funcs: dict[str, Callable[[int], float]] = {}
        for variant, case in cases.items():
            if isinstance(started[variant], RemoteFailure):
                timed.errors[case.name] = str(started[variant])
            else:
                funcs[case.name] = functools.partial(children[variant].ask, "value")
        pid_of = {c.name: children[v].pid for v, c in cases.items()}
        began = time.perf_counter()
        _time_rounds(
            funcs,
            loops,
            task.rounds,
            rng,
            timed,
            min_time,
            pools,
            faults=lambda name: process_faults(pid_of[name]),  # noqa: B023 (used in this pass)
        )
        in_rounds += time.perf_counter() - began
        ask_all({v: children[v] for v in cases}, "drop")
    return in_rounds


def _own_process(worker: Worker, variant: Variant, phases: tuple[str, ...]) -> OwnProcess:
    """``variant``'s process for ``phases`` (``time_apart``): forked from the worker's
    zygote where its form leaves the heap as a fresh process's
    (``harness.own_process.Zygote``), from the worker otherwise."""
    try:
        form = worker.registry.get(variant.layer).implementation(variant.impl).form
    except Exception:
        form = None  # an implementation that cannot be found: its process says so ("ready")
    if worker.zygote is not None and form in CLEAN_HEAP_FORMS:
        return worker.zygote.start((variant, worker.seed, phases))
    prepare = functools.partial(prepare_variant, worker.registry, seed=worker.seed, phases=phases)
    return OwnProcess(functools.partial(_serve_variant, prepare, variant))


def _serve_in_zygote(
    registry: Registry, key: tuple[Variant, int, tuple[str, ...]], conn: Connection
) -> None:
    """A process forked from a worker's zygote (``_own_process``): ``key``'s variant
    served as ``_serve_variant`` does, prepared with ``key``'s seed for its phases."""
    variant, seed, phases = key
    _serve_variant(lambda v: prepare_variant(registry, v, seed, phases), variant, conn)


def _serve_variant(
    prepare: Callable[[Variant], Prepared], variant: Variant, conn: Connection
) -> None:
    """An implementation's process (``time_apart``): prepare ``variant``, then time a
    value of ``loops`` calls of the phase last asked for, on request."""
    state: dict[str, Any] = {}

    def ready() -> None:
        with quiet():
            state["prepared"] = prepare(variant)
        set_threads(variant.threads)

    def phase(name: str) -> None:
        func = state["func"] = state["prepared"].time_func(name)
        set_threads(variant.threads)
        if state.setdefault("phases", 0) == 0:
            # a loop's steady state before its first value: its heap, pools and caches
            # as the calls before left them (a user's loop has run many)
            start = time.perf_counter()
            for _ in range(OWN_WARM_CALLS):
                func(1)
                if time.perf_counter() - start >= OWN_WARM_S:
                    break
        state["phases"] += 1

    def value(loops: int) -> float:
        return float(state["func"](loops))

    def drop() -> None:
        state.pop("func", None)
        state["prepared"].drop_graph()  # a retained graph: gone before the next phase

    serve_requests(conn, {"ready": ready, "phase": phase, "value": value, "drop": drop})


def _time_rounds(
    funcs: dict[str, Callable[[int], float]],
    loops: dict[str, int],
    rounds: int,
    rng: random.Random,
    timed: _Timed,
    min_time: float,
    pools: PoolWatch | None = None,
    faults: Callable[[str], int] | None = None,
) -> None:
    """One discarded warm-up round (which checks each loop count), then ``rounds``
    rounds, each timing every case of ``funcs`` once in a fresh random order; the
    minor page faults around each value are counted outside its timed region;
    ``min_time`` is the least length of one value (``measure.recalibrated_loops``).

    Each value starts once the threads the other cases left running (a pool spinning
    for more work) give back the cores its own need (``harness.contention.PoolWatch``,
    which learns each case's threads in the warm-up round): a case's values are then
    what a loop of it alone measures, not what it gets beside another library's
    spinning pool. A value of one short call (``WAKE_CALL_UNDER_S``) that had to wait
    starts with one untimed call, as values of more calls always do
    (``measure.warm_first``): its own pool may have gone to sleep meanwhile. ``pools``: the watch (a new one by default); ``faults``: a
    case's process's minor page faults so far (by default this process's)."""
    pools = pools if pools is not None else PoolWatch()
    faults_of = faults if faults is not None else (lambda _: minor_faults())
    for name in funcs:
        timed.values[name] = []
        timed.faults[name] = []
    for r in range(-1, rounds):  # round -1 is the discarded warm-up
        order = list(funcs)
        rng.shuffle(order)
        for name in order:
            try:
                # a value of one call has no untimed call first (measure.warm_first);
                # after a wait its own pool may have gone to sleep: one short call wakes
                # it (WAKE_CALL_UNDER_S)
                waited = r >= 0 and pools.settle(name) > 0
                if waited and loops[name] == 1 and timed.warmups[name] < WAKE_CALL_UNDER_S:
                    funcs[name](1)
                faults0 = faults_of(name)
                value = functools.partial(funcs[name], loops[name])
                per_call = (pools.learn(name, value) if r < 0 else value()) / loops[name]
                faulted = (faults_of(name) - faults0) / loops[name]
            except Exception as exc:
                # a process's failure arrives described already
                timed.errors[name] = str(exc) if isinstance(exc, RemoteFailure) else describe(exc)
                del funcs[name]
                timed.values.pop(name, None)
                timed.faults.pop(name, None)
                continue
            if r < 0:
                timed.warmups[name] = per_call
                loops[name] = recalibrated_loops(loops[name], per_call, min_time)
            else:
                timed.values[name].append(per_call)
                timed.faults[name].append(faulted)


def _forks(job: Job) -> bool:
    """Whether ``job``'s groups (or profiled variants) each run in a forked child."""
    return job.mode in _FORKING_MODES and fresh_process_per_group() and _cpu_only(job)


def _cpu_only(job: Job) -> bool:
    """No task of ``job`` runs on a GPU: CUDA cannot be used in a forked child of a
    process that initialised it, and a device's caching allocator has no glibc history
    to escape, so GPU groups are timed in the worker itself."""
    for task in job.tasks:
        if isinstance(task, RoundsTask) and task.group.device != "cpu":
            return False
        if isinstance(task, ProfileTask) and task.variant.device != "cpu":
            return False
    return True


def fresh_process_per_group() -> bool:
    """Whether timing workers time each group in a forked child (Linux, and not turned
    off with ``HARNESS_FORK_GROUPS=0``, which exists for experiments only)."""
    return sys.platform.startswith("linux") and os.environ.get("HARNESS_FORK_GROUPS") != "0"


def run_in_child(work: Callable[[], None]) -> None:
    """Run ``work`` in a forked child of this process and wait for it.

    Why: a training loop runs one layer at one size, and its process's allocator state
    (glibc's adaptive mmap and trim thresholds, the heap's top) is what that loop's own
    buffers made it. A worker that timed other sizes first carries their history:
    conv2d's step at n=512 measured 19-40 ms in one process depending on which sizes
    had run before (2026-11-29, AVX512). So each group is timed in children that have
    run nothing else, forked from a worker that imported torch, the layers and the
    toolchains once (a timing worker's eager implementations from its zygote, forked
    before the imports that raise glibc's mmap threshold: ``harness.own_process.Zygote``).

    The worker must not have entered a parallel region (GNU OpenMP's pool does not
    survive a fork): a timing worker keeps one thread until it forks
    (``harness.toolchain.prepare_to_fork``). A child that dies takes the worker down
    the same way (same exit code or signal), so the supervisor records a crash of the
    task in progress, as it would without the fork."""
    _, status = os.waitpid(fork_child(work), 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        exit_like(code)


def spare(like: Job, ready: Path, orders: TextIO) -> tuple[Job, Registry, Zygote | None] | None:
    """Start up ahead of a job: do what a worker for a job ``like`` this one does
    before its first task (load the layers; a forking worker's zygote, imports and
    toolchain warm-up, ``_ready_to_fork``), say so by creating ``ready``, then wait for
    one line on ``orders``: ``{"job": JOB.json, "log": FILE}``. Returns that job, the
    layers loaded and the zygote (None for a job that does not time), the process's
    output, and its zygote's, now going to ``FILE``; None when ``orders`` closes first
    (the run needed no more workers).

    Why: on 2 cores two workers start in about the time of one (their imports are one
    thread each: 7.7 s for two against 6.7 s for one, 2026-12-02, AVX512), and a run
    starts ten or so timing workers one after the other, none of it timed. The runner
    starts them in pairs (``harness.supervisor``) and lets the first time only once
    both have started, so that no start-up runs beside a timed value. Nothing timed
    changes: each process is still a process of its own (its own heap layout, its own
    children per group); it has only waited, blocked, before its first task."""
    forking = _forks(like)
    if forking:  # before the layers' modules run anything, as Worker does
        torch.set_num_threads(1)
    zygote = None
    with quiet():
        registry = Registry.default(like.layers_from)
        if forking:
            zygote = _ready_to_fork(registry, like.mode, like.tasks)
    ready.touch()
    line = orders.readline()
    if not line.strip():
        if zygote is not None:
            zygote.close()
        return None
    order = json.loads(line)
    redirect_output(order["log"])
    if zygote is not None:
        zygote.redirect_output(order["log"])
    return Job.read(order["job"]), registry, zygote


def _ready_to_fork(
    registry: Registry,
    mode: str,
    tasks: Iterable[Task],
    modules: Iterable[str] = (),
    zygote: Zygote | None = None,
) -> Zygote | None:
    """Make this worker a parent for its tasks' processes (``prepare_to_fork``: the
    forms' imports and warm-ups, and ``modules``). A timing worker first forks its
    zygote (unless it has ``zygote`` already), before any import that would raise its
    malloc thresholds (``harness.own_process.Zygote``); returns it (None otherwise)."""
    forms = _forms(registry, tasks)
    if mode == "timing" and zygote is None:
        prepare_to_fork(forms & set(CLEAN_HEAP_FORMS))
        zygote = Zygote(functools.partial(_serve_in_zygote, registry))
    prepare_to_fork(forms, modules)
    return zygote


def main(argv: list[str] | None = None, *, skip_teardown: bool = False) -> int:
    """Run a job: ``JOB.json``, or ``--spare LIKE.json READY`` (``spare``: the job
    then comes on stdin). ``skip_teardown`` (the process's own entry point): a forking
    worker that has written its last event leaves with ``os._exit`` (``leave_now``)."""
    argv = sys.argv[1:] if argv is None else argv
    registry: Registry | None = None
    zygote: Zygote | None = None
    if len(argv) == 3 and argv[0] == "--spare":
        try:
            ordered = spare(Job.read(argv[1]), Path(argv[2]), sys.stdin)
        except Exception:
            traceback.print_exc()
            return 1
        if ordered is None:
            return 0
        job, registry, zygote = ordered
    elif len(argv) == 1:
        job = Job.read(argv[0])
    else:
        print("usage: python -m harness.worker JOB.json | --spare LIKE.json READY", file=sys.stderr)
        return 2
    try:
        worker = Worker(job, registry, zygote)
        worker.run()
    except Exception:
        traceback.print_exc()
        return 1
    if skip_teardown and worker.forking:
        leave_now(worker)
    return 0


def leave_now(worker: Worker) -> None:
    """End a timing or profiling worker without the interpreter's teardown.

    Why: the runner waits for a worker to exit before it starts the next, and an
    interpreter that has loaded torch's compile toolchain takes 1.1-1.3 s to tear down
    (2026-11-30, AVX512: time from a last print to exit), once per timing process, ten
    or so a run, none of it timed. Nothing is lost: every event was flushed and fsynced
    as written (``EventLog``), and such a worker compiled only the toolchain's tiny
    warm-up, in this process (``compile_threads = 1``: no pool of compile workers to
    stop); its children, which compiled the forms, leave the same way
    (``run_in_child``). A setup worker, which compiles with inductor's pool, exits
    normally."""
    worker.log.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(skip_teardown=True))
