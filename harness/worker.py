"""A worker process: ``python -m harness.worker JOB.json``.

The runner starts workers one at a time and never times anything itself. A worker
imports torch once and then runs the tasks of its ``Job`` (``harness.protocol``),
appending one event per line to its raw file (flushed and fsynced), so what it
measured survives a crash of the worker or of the runner. Before each task it writes
``Started(task)``: if the worker dies or hangs, the runner knows which task did it.

Three modes:

- ``validate``: run each layer's declaration checks (``registry.validate_layer``),
  which call the user's code, before anything is measured.
- ``setup``: for each variant, build the form (its one-off cost), check outputs and
  gradients against the float64 reference, measure peak memory, calibrate the loop
  count of each phase; gradcheck for baselines with a backward; each layer's
  capability matrix.
- ``timing``: paired rounds. For each group (every implementation of one grid point),
  one discarded warm-up round, then ``rounds`` rounds, each timing every case of the
  group once, in a fresh random order: drift and bursts of noise then hit every
  implementation of a point alike, and the per-round ratios cancel them.
"""

from __future__ import annotations

import os
import random
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from harness.cache import Checks, Lookup
from harness.case import PHASES, Variant
from harness.deviation import compare_tensors, gradients, output_mismatch, run_gradcheck
from harness.dtypes import torch_dtype
from harness.errors import FormUnsupported, LayerDefinitionError, describe
from harness.forms import Built, build, quiet
from harness.layer import Implementation, Layer
from harness.measure import (
    backward_time_func,
    calibrate_loops,
    forward_time_func,
    set_threads,
    step_time_func,
)
from harness.points import format_point
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
    RoundsDone,
    RoundsTask,
    SetupDone,
    SetupTask,
    Started,
    Task,
    Validated,
    ValidateTask,
)
from harness.registry import Registry, validate_layer

__all__ = ["Worker", "main"]

#: What the cache keeps of a checked phase: what depends only on code, versions and the
#: point. Calibration and anything else measured at run time are measured afresh.
_CACHED_FIELDS = ("status", "error", "deviations", "peak_bytes", "peak_sources", "returns")


@dataclass
class _Prepared:
    """One variant made ready in this process: its inputs and its built form."""

    variant: Variant
    layer: Layer
    impl: Implementation
    built: Built
    inputs: tuple[torch.Tensor, ...]
    grad_mask: tuple[bool, ...]
    seed: int
    _graph: tuple[torch.Tensor, list[torch.Tensor]] | None = field(default=None, repr=False)
    _grad_output: torch.Tensor | None = field(default=None, repr=False)

    _leaves: tuple[torch.Tensor, ...] | None = field(default=None, repr=False)

    @property
    def inference(self) -> bool:
        """Native candidates and their forms are served under ``inference_mode``; the
        NumPy/SciPy code (and its compiled form) runs as it is, under ``no_grad``."""
        return self.impl.role == "native"

    def forward_time_func(self) -> Callable[[int], float]:
        return forward_time_func(
            self.built.fn, self.inputs, self.variant.device, inference=self.inference
        )

    def forward(self) -> torch.Tensor:
        """One inference call, as ``forward`` times it."""
        mode = torch.inference_mode if self.inference else torch.no_grad
        with mode():
            return self.built.fn(*self.inputs)

    def graph(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Output with its autograd graph, and the leaves to differentiate (built once)."""
        if self._graph is None:
            leaves = [
                t.detach().clone().requires_grad_(m)
                for t, m in zip(self.inputs, self.grad_mask, strict=True)
            ]
            with torch.enable_grad():
                out = self.built.fn(*leaves)
            self._graph = (out, [t for t, m in zip(leaves, self.grad_mask, strict=True) if m])
        return self._graph

    def leaves(self) -> tuple[torch.Tensor, ...]:
        """The step's inputs: copies of the inputs, differentiable ones requiring grad."""
        if self._leaves is None:
            self._leaves = tuple(
                t.detach().clone().requires_grad_(m)
                for t, m in zip(self.inputs, self.grad_mask, strict=True)
            )
        return self._leaves

    def grad_output(self) -> torch.Tensor:
        """The seeded upstream gradient: the same values as the reference's, in every process."""
        if self._grad_output is None:
            out, _ = self.graph()
            gen = torch.Generator().manual_seed(self.seed + 1)
            grad = torch.randn(out.shape, generator=gen, dtype=torch.float64)
            self._grad_output = grad.to(device=out.device, dtype=out.dtype)
        return self._grad_output

    def step_call(self) -> Any:
        """One training step, as ``step`` times it: a forward recording the graph,
        then every gradient without retain_graph (the graph is freed)."""
        with torch.enable_grad():
            out = self.built.fn(*self.leaves())
            wrt = [t for t, m in zip(self.leaves(), self.grad_mask, strict=True) if m]
            return torch.autograd.grad(out, wrt, self.grad_output(), allow_unused=True)

    def backward_time_func(self) -> Callable[[int], float]:
        out, wrt = self.graph()
        return backward_time_func(out, wrt, self.grad_output(), self.variant.device)

    def step_time_func(self) -> Callable[[int], float]:
        grad = self.grad_output()
        self._graph = None  # the step builds its own graphs: no retained one beside them
        return step_time_func(
            self.built.fn, self.leaves(), self.grad_mask, grad, self.variant.device
        )

    def time_func(self, phase: str) -> Callable[[int], float]:
        if phase == "forward":
            return self.forward_time_func()
        if phase == "step":
            return self.step_time_func()
        return self.backward_time_func()


class Worker:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.log = EventLog(job.raw)
        with quiet():
            self.registry = Registry.default(job.layers_from)
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
        self._prepared: dict[Variant, _Prepared] = {}
        self._refs: dict[
            tuple[str, tuple[Any, ...]], tuple[torch.Tensor, tuple[torch.Tensor, ...]]
        ] = {}

    # -- preparation ----------------------------------------------------------------

    def _reference(
        self, layer: Layer, variant: Variant
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """float64 reference output and gradients (setup only; cached per point)."""
        key = (layer.name, variant.point)
        if key not in self._refs:
            # Variants of one point come one after another in the plan: keeping the
            # last point's reference only bounds memory on large grids.
            self._refs.clear()
            inputs = layer.make(variant.point_dict, torch.float64, "cpu", self.seed)
            mask = [name in layer.differentiable for name in layer.inputs]
            leaves = [t.clone().requires_grad_(m) for t, m in zip(inputs, mask, strict=True)]
            out = layer.reference(*leaves)
            gen = torch.Generator().manual_seed(self.seed + 1)
            grad_out = torch.randn(out.shape, generator=gen, dtype=torch.float64)
            grads = gradients(out, [t for t in leaves if t.requires_grad], grad_out)
            self._refs[key] = (out.detach(), tuple(g.detach() for g in grads))
        return self._refs[key]

    def prepare(self, variant: Variant) -> _Prepared:
        if variant in self._prepared:
            return self._prepared[variant]
        layer = self.registry.get(variant.layer)
        impl = layer.implementation(variant.impl)
        set_threads(variant.threads)
        inputs = layer.make(
            variant.point_dict, torch_dtype(variant.dtype), variant.device, self.seed
        )
        mask = tuple(name in layer.differentiable for name in layer.inputs)
        built = build(
            layer,
            impl,
            variant.point_dict,
            inputs,
            variant.dtype,
            variant.threads,
            variant.device,
            mask,
        )
        prepared = _Prepared(variant, layer, impl, built, inputs, mask, self.seed)
        self._prepared[variant] = prepared
        return prepared

    # -- setup mode -----------------------------------------------------------------

    def _peak(self, p: _Prepared, call: Callable[[], Any]) -> dict[str, Any]:
        if not self.job.memory:
            return {}
        try:
            from harness.memory import measure_peak

            peak = measure_peak(
                call, device=p.variant.device, onnxruntime=p.impl.form == "onnxruntime"
            )
        except Exception as exc:  # memory is a diagnostic: never fail the phase for it
            return {"peak_sources": f"not measured: {describe(exc, 200)}"}
        return {"peak_bytes": peak.peak_bytes, "peak_sources": peak.describe_sources()}

    def _setup_forward(self, p: _Prepared) -> PhaseSetup:
        out = p.forward()
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"returned {type(out).__name__}, not a tensor")
        ref_out, _ = self._reference(p.layer, p.variant)
        returns = output_mismatch(out, p.inputs, ref_out.shape)
        dev = compare_tensors("output", out, ref_out, p.variant.dtype)
        del out

        peak = self._peak(p, p.forward)
        time_func = p.forward_time_func()
        loops, per_call = calibrate_loops(time_func, self.job.min_time)
        return PhaseSetup(
            "ok",
            loops=loops,
            estimate_s=per_call,
            deviations=(asdict(dev),),
            returns=returns,
            minor_faults=_faults_per_call(time_func, loops),
            **peak,
        )

    @staticmethod
    def _no_backward(p: _Prepared) -> PhaseSetup | None:
        """Why ``p`` has no backward (an ``unsupported`` phase), or None."""
        if not p.impl.backward:
            why = (
                "ONNX Runtime sessions run forward only"
                if p.impl.form == "onnxruntime"
                else "declared without backward"
            )
            return PhaseSetup("unsupported", error=why)
        if not any(p.grad_mask):
            return PhaseSetup("unsupported", error="the layer declares no differentiable input")
        return None

    def _setup_step(self, p: _Prepared) -> PhaseSetup:
        missing = self._no_backward(p)
        if missing is not None:
            return missing
        time_func = p.step_time_func()

        def call() -> Any:
            with torch.enable_grad():
                out = p.built.fn(*p.leaves())
                wrt = [t for t, m in zip(p.leaves(), p.grad_mask, strict=True) if m]
                return torch.autograd.grad(out, wrt, p.grad_output(), allow_unused=True)

        peak = self._peak(p, call)
        loops, per_call = calibrate_loops(time_func, self.job.min_time)
        faults = _faults_per_call(time_func, loops)
        return PhaseSetup("ok", loops=loops, estimate_s=per_call, minor_faults=faults, **peak)

    def _setup_backward(self, p: _Prepared) -> PhaseSetup:
        missing = self._no_backward(p)
        if missing is not None:
            return missing
        _, ref_grads = self._reference(p.layer, p.variant)
        out, wrt = p.graph()
        grads = gradients(out, wrt, p.grad_output())
        names = [f"grad_{n}" for n, m in zip(p.layer.inputs, p.grad_mask, strict=True) if m]
        devs = tuple(
            asdict(compare_tensors(name, g, r, p.variant.dtype))
            for name, g, r in zip(names, grads, ref_grads, strict=True)
        )
        del grads
        grad_out = p.grad_output()

        def call() -> Any:
            return torch.autograd.grad(out, wrt, grad_out, retain_graph=True, allow_unused=True)

        peak = self._peak(p, call)
        time_func = p.backward_time_func()
        loops, per_call = calibrate_loops(time_func, self.job.min_time)
        return PhaseSetup(
            "ok",
            loops=loops,
            estimate_s=per_call,
            deviations=devs,
            minor_faults=_faults_per_call(time_func, loops),
            **peak,
        )

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
        if self.checks is not None and key is not None:
            self.checks.put(check, key, value)

    def _setup_from_cache(self, variant: Variant, value: Any) -> bool:
        """Set ``variant`` up from its cached checks: build the form and calibrate each
        phase's loops afresh (nothing timed comes from the cache); False if the entry
        cannot be used (the variant is then checked in full)."""
        try:
            cached = {
                ph: PhaseSetup(**{**v, "deviations": tuple(v.get("deviations") or ())})
                for ph, v in value["phases"].items()
            }
            if not value["built"]:
                self.log.write(SetupDone(variant, cached, cache="hit"))
                return True
            with quiet():
                p = self.prepare(variant)
        except Exception:
            return False
        phases: dict[str, PhaseSetup] = {}
        for phase, info in cached.items():
            if info.status != "ok":
                phases[phase] = info
                continue
            try:
                set_threads(variant.threads)
                loops, per_call = calibrate_loops(p.time_func(phase), self.job.min_time)
                phases[phase] = replace(info, loops=loops, estimate_s=per_call)
            except Exception as exc:
                phases[phase] = PhaseSetup("error", error=describe(exc))
        oneoff_s, oneoff_what = value["oneoff_s"], value["oneoff_what"]
        self.log.write(SetupDone(variant, phases, oneoff_s, oneoff_what, cache="hit"))
        return True

    def _store_setup(
        self,
        key: dict[str, Any] | None,
        phases: dict[str, PhaseSetup],
        built: bool,
        oneoff_s: float | None = None,
        oneoff_what: str | None = None,
    ) -> None:
        """Cache a variant's checks, not its calibration; not when a phase failed (an
        error may not recur: it is retried next run)."""
        if any(info.status == "error" for info in phases.values()):
            return
        checked = {
            ph: {k: v for k, v in asdict(info).items() if k in _CACHED_FIELDS}
            for ph, info in phases.items()
        }
        value = {
            "built": built,
            "phases": checked,
            "oneoff_s": oneoff_s,
            "oneoff_what": oneoff_what,
        }
        self._store("setup", key, value)

    def setup(self, variant: Variant) -> None:
        key, found = self._cached(
            "setup",
            self.registry.get(variant.layer),
            variant=variant.to_json(),
            phases=[ph for ph in PHASES if ph in self.job.phases],
            memory=self.job.memory,
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
            self._store_setup(key, failed, built=False)
            return
        phases: dict[str, PhaseSetup] = {}
        steps = {
            "forward": self._setup_forward,
            "backward": self._setup_backward,
            "step": self._setup_step,
        }
        for phase in PHASES:
            if phase not in self.job.phases:
                continue
            try:
                set_threads(variant.threads)
                phases[phase] = steps[phase](p)
            except Exception as exc:
                phases[phase] = PhaseSetup("error", error=describe(exc))
        built = p.built
        self.log.write(SetupDone(variant, phases, built.oneoff_s, built.oneoff_what, cache=status))
        self._store_setup(key, phases, True, built.oneoff_s, built.oneoff_what)

    def gradcheck(self, layer_name: str, impl_name: str) -> None:
        layer = self.registry.get(layer_name)
        impl = layer.implementation(impl_name)
        point = layer.smallest_point()
        key, found = self._cached("gradcheck", layer, impl=impl_name, point=format_point(point))
        if found.hit:
            ok_, why_, at, returns_ = found.value
            self.log.write(GradcheckDone(layer_name, impl_name, ok_, why_, at, returns_, "hit"))
            return
        inputs = layer.make(point, torch.float64, "cpu", self.seed)
        mask = [name in layer.differentiable for name in layer.inputs]
        fn = impl.callable_for(point)
        returns = ""
        ok: bool | None
        try:
            with quiet():
                with torch.no_grad():
                    out = fn(*inputs)
                returns = output_mismatch(out, inputs) or ""
                if returns:
                    # gradcheck's finite differences need float64 end to end: on a layer
                    # that rounds to float32 they would fail whatever its formula.
                    ok, why = (
                        None,
                        (
                            f"not run: it returns {returns}, and gradcheck needs float64 "
                            "outputs; its gradients are judged against the float64 reference "
                            "in the dtype measured instead"
                        ),
                    )
                else:
                    ok, why = run_gradcheck(fn, inputs, mask)
        except Exception as exc:
            ok, why = False, describe(exc)
        self._store("gradcheck", key, [ok, why, format_point(point), returns])
        status = found.status if key is not None else ""
        self.log.write(
            GradcheckDone(layer_name, impl_name, ok, why, format_point(point), returns, status)
        )

    def capabilities(self, layer_name: str, impls: tuple[str, ...]) -> None:
        from harness.capabilities import capability_matrix

        layer = self.registry.get(layer_name)
        point = format_point(layer.smallest_point())
        key, found = self._cached("capabilities", layer, impls=list(impls), point=point)
        if found.hit:
            self.log.write(CapabilitiesDone(layer_name, tuple(found.value), cache="hit"))
            return
        with quiet():
            rows = capability_matrix(layer, list(impls))
        self._store("capabilities", key, rows)
        status = found.status if key is not None else ""
        self.log.write(CapabilitiesDone(layer_name, tuple(rows), cache=status))

    # -- timing mode ----------------------------------------------------------------

    def rounds(self, task: RoundsTask) -> None:
        """Time every case of a group in alternation, ``task.rounds`` rounds."""
        from harness.environment import allocator_in_use

        group = task.group
        rng = random.Random(f"{self.seed}/{self.job.process}/{task.batch}/{group.name}")
        funcs: dict[str, Callable[[int], float]] = {}
        # keyed by case name, the pyperf benchmark name (RoundsDone's keys)
        loops = {case.name: n for case, n in task.cases}
        errors: dict[str, str] = {}
        for case, _ in task.cases:
            name = case.name
            try:
                with quiet():
                    p = self.prepare(case.variant)
                set_threads(case.variant.threads)
                funcs[name] = p.time_func(case.phase)
            except Exception as exc:
                errors[name] = describe(exc)
        values: dict[str, list[float]] = {name: [] for name in funcs}
        warmups: dict[str, float] = {}
        set_threads(group.threads)
        for r in range(-1, task.rounds):  # round -1 is the discarded warm-up
            order = list(funcs)
            rng.shuffle(order)
            for name in order:
                try:
                    per_call = funcs[name](loops[name]) / loops[name]
                except Exception as exc:
                    errors[name] = describe(exc)
                    del funcs[name]
                    values.pop(name, None)
                    continue
                if r < 0:
                    warmups[name] = per_call
                else:
                    values[name].append(per_call)
        for variant in {case.variant for case, _ in task.cases}:
            self._prepared.pop(variant, None)  # free inputs, graph and form
        self.log.write(
            RoundsDone(
                group=task.group,
                process=self.job.process,
                batch=task.batch,
                values={k: tuple(v) for k, v in values.items()},
                loops={k: loops[k] for k in values},
                warmups=warmups,
                errors=errors,
                metadata={
                    "threads": group.threads,
                    "device": group.device,
                    "allocator": allocator_in_use(),
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "pid": os.getpid(),
                },
            )
        )

    # -- profile mode ---------------------------------------------------------------

    def profile(self, task: ProfileTask) -> None:
        """One profiled call per phase of a variant (harness.profile_call), after
        timing: where its time goes."""
        from harness.profile_call import calibrate, profile_call

        t0 = time.perf_counter()
        variant = task.variant
        phases: dict[str, PhaseBreakdown] = {}
        try:
            with quiet():
                p = self.prepare(variant)
            costs = calibrate()
        except Exception as exc:
            err = (
                PhaseBreakdown("unsupported", error=exc.cause)
                if isinstance(exc, FormUnsupported)
                else PhaseBreakdown("error", error=describe(exc))
            )
            self.log.write(BreakdownDone(variant, dict.fromkeys(task.phases, err)))
            return
        for phase in task.phases:
            missing = self._no_backward(p) if phase == "step" else None
            if missing is not None:
                phases[phase] = PhaseBreakdown("unsupported", error=missing.error)
                continue
            try:
                set_threads(variant.threads)
                if phase == "step":
                    p.grad_output()
                    p._graph = None  # the step builds its own graphs, as timed
                call = p.step_call if phase == "step" else p.forward
                with quiet():
                    found = profile_call(call, variant.device, costs)
            except Exception as exc:
                phases[phase] = PhaseBreakdown("error", error=describe(exc))
                continue
            b = found.breakdown
            phases[phase] = PhaseBreakdown(
                "ok",
                parts=tuple(asdict(part) for part in b.parts),
                profiled_s=b.profiled_s,
                raw_s=b.raw_s,
                plain_s=b.plain_s,
                minor_faults=found.minor_faults,
            )
        self.log.write(BreakdownDone(variant, phases, time.perf_counter() - t0))

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
            self.gradcheck(task.layer, task.impl)
        elif isinstance(task, CapabilitiesTask):
            self.capabilities(task.layer, task.impls)
        elif isinstance(task, RoundsTask):
            self.rounds(task)
        elif isinstance(task, ProfileTask):
            self.profile(task)
            self._prepared.pop(task.variant, None)

    def run(self) -> None:
        for task in self.job.tasks:
            self.run_task(task)
        self.log.write(Finished())


def _faults_per_call(time_func: Callable[[int], float], loops: int) -> float:
    """Minor page faults per call over one timed value's calls (resource.getrusage):
    the allocator's work made visible (results.csv ``minor_faults``)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    time_func(loops)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / max(1, loops)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m harness.worker JOB.json", file=sys.stderr)
        return 2
    job = Job.read(argv[0])
    try:
        Worker(job).run()
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
