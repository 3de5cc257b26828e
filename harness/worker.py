"""A worker process: ``python -m harness.worker JOB.json``.

The runner starts workers one at a time and never times anything itself. A worker
imports torch once and then runs many cases, appending one JSON line per event to its
``raw/*.jsonl`` file (flushed and fsynced), so what it measured survives a crash of
the worker or of the runner. Before each case it writes a ``start`` line: if the
worker dies or hangs, the runner knows which case did it.

Three modes:

- ``validate``: run each layer's declaration checks (``registry.validate_layer``),
  which call the user's code, before anything is measured.
- ``setup``: for each variant, build the form (its one-off cost), check outputs and
  gradients against the float64 reference, run gradcheck for baselines, calibrate the
  loop count of each phase, and compute each layer's capability matrix.
- ``timing``: pyperf's worker mode (``--worker``, no ``--worker-task``): every case of
  the job in one process, each ``bench_time_func`` call giving one pyperf run of
  ``values`` values after ``warmups`` warm-ups, with the calibrated loop count as
  ``inner_loops``.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness.case import Case, Variant
from harness.deviation import compare_tensors, gradients, run_gradcheck
from harness.errors import LayerDefinitionError
from harness.forms import Built, build, quiet
from harness.layer import Implementation, Layer
from harness.measure import backward_time_func, calibrate_loops, forward_time_func, set_threads
from harness.registry import Registry, validate_layer

__all__ = ["EventLog", "main"]

_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}


def describe(exc: BaseException) -> str:
    """``Type: first line`` of an exception, for the frame's ``error`` column."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:500]


class EventLog:
    """Append-only JSON lines, each flushed and fsynced as written."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the process

    def write(self, event: dict[str, Any]) -> None:
        self._fh.write(json.dumps(event, default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    @staticmethod
    def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """Events in a file; a torn last line (a kill mid-write) is ignored."""
        out = []
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        for line in text.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                out.append(event)
        return out


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

    def forward_time_func(self) -> Callable[[int], float]:
        return forward_time_func(self.built.fn, self.inputs, self.variant.device)

    def graph(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Output with its autograd graph, and the leaves to differentiate (built once)."""
        if self._graph is None:
            leaves = [
                t.detach().clone().requires_grad_(m)
                for t, m in zip(self.inputs, self.grad_mask, strict=True)
            ]
            out = self.built.fn(*leaves)
            self._graph = (out, [t for t, m in zip(leaves, self.grad_mask, strict=True) if m])
        return self._graph

    def grad_output(self) -> torch.Tensor:
        """The seeded upstream gradient: the same values as the reference's, in every process."""
        if self._grad_output is None:
            out, _ = self.graph()
            gen = torch.Generator().manual_seed(self.seed + 1)
            grad = torch.randn(out.shape, generator=gen, dtype=torch.float64)
            self._grad_output = grad.to(device=out.device, dtype=out.dtype)
        return self._grad_output

    def backward_time_func(self) -> Callable[[int], float]:
        out, wrt = self.graph()
        return backward_time_func(out, wrt, self.grad_output(), self.variant.device)


class Worker:
    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.log = EventLog(job["raw"])
        with quiet():
            self.registry = Registry.default(job.get("layers_from", ()))
        self.seed = int(job.get("seed", 0))
        self.min_time = float(job["profile"]["min_time"])
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
        dtype = _DTYPES[variant.dtype]
        inputs = layer.make(variant.point_dict, dtype, variant.device, self.seed)
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

    def _setup_forward(self, p: _Prepared) -> dict[str, Any]:
        with torch.no_grad():
            out = p.built.fn(*p.inputs)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"returned {type(out).__name__}, not a tensor")
        ref_out, _ = self._reference(p.layer, p.variant)
        dev = compare_tensors("output", out, ref_out, p.variant.dtype)
        loops, per_call = calibrate_loops(p.forward_time_func(), self.min_time)
        return {"status": "ok", "loops": loops, "estimate_s": per_call, "deviations": [asdict(dev)]}

    def _setup_backward(self, p: _Prepared) -> dict[str, Any]:
        if not p.impl.backward:
            why = (
                "ONNX Runtime sessions run forward only"
                if p.impl.form == "onnxruntime"
                else "declared without backward"
            )
            return {"status": "unsupported", "error": why}
        _, ref_grads = self._reference(p.layer, p.variant)
        out, wrt = p.graph()
        grads = gradients(out, wrt, p.grad_output())
        names = [f"grad_{n}" for n, m in zip(p.layer.inputs, p.grad_mask, strict=True) if m]
        devs = [
            asdict(compare_tensors(name, g, r, p.variant.dtype))
            for name, g, r in zip(names, grads, ref_grads, strict=True)
        ]
        loops, per_call = calibrate_loops(p.backward_time_func(), self.min_time)
        return {"status": "ok", "loops": loops, "estimate_s": per_call, "deviations": devs}

    def setup(self, variant: Variant, phases: list[str]) -> None:
        event: dict[str, Any] = {"event": "setup", "variant": variant.name, "phases": {}}
        try:
            with quiet():
                p = self.prepare(variant)
        except Exception as exc:
            err = {"status": "error", "error": describe(exc)}
            event["phases"] = {ph: err for ph in phases}
            self.log.write(event)
            return
        event["oneoff_s"] = p.built.oneoff_s
        event["oneoff_what"] = p.built.oneoff_what
        for phase in phases:
            step = self._setup_forward if phase == "forward" else self._setup_backward
            try:
                set_threads(variant.threads)
                event["phases"][phase] = step(p)
            except Exception as exc:
                event["phases"][phase] = {"status": "error", "error": describe(exc)}
        self.log.write(event)

    def gradcheck(self, layer_name: str, impl_name: str) -> None:
        layer = self.registry.get(layer_name)
        impl = layer.implementation(impl_name)
        point = layer.smallest_point()
        inputs = layer.make(point, torch.float64, "cpu", self.seed)
        mask = [name in layer.differentiable for name in layer.inputs]
        try:
            with quiet():
                ok, why = run_gradcheck(impl.callable_for(point), inputs, mask)
        except Exception as exc:
            ok, why = False, describe(exc)
        where = ",".join(f"{k}={v}" for k, v in point.items())
        self.log.write(
            {
                "event": "gradcheck",
                "layer": layer_name,
                "impl": impl_name,
                "ok": ok,
                "error": why,
                "point": where,
            }
        )

    def capabilities(self, layer_name: str, impls: list[str]) -> None:
        try:
            from harness.capabilities import capability_matrix
        except ImportError:  # pragma: no cover - the module ships with the harness
            return
        layer = self.registry.get(layer_name)
        with quiet():
            rows = capability_matrix(layer, impls)
        self.log.write({"event": "capabilities", "layer": layer_name, "rows": rows})

    # -- timing mode ----------------------------------------------------------------

    def timing(self, tasks: list[dict[str, Any]]) -> None:
        import pyperf

        prof = self.job["profile"]
        runner = pyperf.Runner(values=prof["values"], warmups=prof["warmups"], processes=1, loops=1)
        runner.parse_args(
            [
                "--worker",
                "--quiet",
                "--loops",
                "1",
                "--values",
                str(prof["values"]),
                "--warmups",
                str(prof["warmups"]),
            ]
        )
        left = Counter(Case.from_name(t["case"]).variant for t in tasks)
        for task in tasks:
            case = Case.from_name(task["case"])
            inner = int(task["loops"])
            left[case.variant] -= 1
            self.log.write({"event": "start", "key": case.name, "t": time.time()})
            try:
                with quiet():
                    p = self.prepare(case.variant)
                set_threads(case.variant.threads)
                time_func = (
                    p.forward_time_func() if case.phase == "forward" else p.backward_time_func()
                )

                def run_loops(
                    loops: int, tf: Callable[[int], float] = time_func, inner: int = inner
                ) -> float:
                    return tf(loops * inner)

                metadata = {
                    "harness_threads": case.variant.threads,
                    "harness_process": int(self.job["process"]),
                    "harness_device": case.variant.device,
                    "MALLOC_MMAP_THRESHOLD_": os.environ.get("MALLOC_MMAP_THRESHOLD_", "adaptive"),
                }
                bench = runner.bench_time_func(
                    case.name, run_loops, inner_loops=inner, metadata=metadata
                )
                buf = io.StringIO()
                bench.dump(buf)
                self.log.write({"event": "bench", "case": case.name, "bench": buf.getvalue()})
            except Exception as exc:
                self.log.write({"event": "error", "key": case.name, "error": describe(exc)})
            if left[case.variant] == 0:  # both phases done here: free its inputs, graph, form
                self._prepared.pop(case.variant, None)

    # -- entry ----------------------------------------------------------------------

    def validate(self, layer_name: str, impls: list[str]) -> None:
        layer = self.registry.get(layer_name)
        try:
            with quiet():
                notes = validate_layer(layer, impls)
        except LayerDefinitionError as exc:
            self.log.write({"event": "invalid", "layer": layer_name, "error": str(exc)})
            return
        self.log.write({"event": "validated", "layer": layer_name, "notes": notes})

    def run(self) -> None:
        mode = self.job["mode"]
        if mode == "validate":
            for task in self.job["tasks"]:
                self.log.write({"event": "start", "key": task["key"], "t": time.time()})
                self.validate(task["layer"], task["impls"])
        elif mode == "setup":
            for task in self.job["tasks"]:
                kind = task["kind"]
                self.log.write({"event": "start", "key": task["key"], "t": time.time()})
                if kind == "variant":
                    variant = Variant.from_name(task["key"])
                    self.setup(variant, task["phases"])
                    self._prepared.pop(variant, None)  # set up once per process
                elif kind == "gradcheck":
                    self.gradcheck(task["layer"], task["impl"])
                elif kind == "capabilities":
                    self.capabilities(task["layer"], task["impls"])
        elif mode == "timing":
            self.timing(self.job["tasks"])
        else:
            raise ValueError(f"unknown worker mode {mode!r}")
        self.log.write({"event": "done"})


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m harness.worker JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    try:
        Worker(job).run()
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
