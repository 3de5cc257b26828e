"""What each declared implementation survives: TorchScript, tracing, ``torch.compile``, ONNX.

For every declared implementation of a layer (derived forms are not checked: they are
what these checks build), ``capability_matrix`` tries six ways of turning the eager
callable into something else, runs the result on two inputs of the same shapes, A
(``seed=0``) and B (``seed=1``), and compares it with the eager callable on each:

================== =====================================================================
check              what is done
================== =====================================================================
script_save        ``torch.jit.script``, ``torch.jit.save`` to memory, ``torch.jit.load``
trace              ``torch.jit.trace`` on A
compile_fullgraph  ``torch.compile(fullgraph=True, dynamic=False)``
compile            ``torch.compile(dynamic=False)``; graph breaks from ``torch._dynamo.explain``
onnx_dynamo        ``torch.onnx.export(dynamo=True)`` on A, run by ONNX Runtime (CPU)
onnx_legacy        ``torch.onnx.export(dynamo=False)`` on A, run by ONNX Runtime (CPU)
================== =====================================================================

Each cell is ``'ok'`` (it ran and matched eager on A and B), ``'unsupported'`` (it
raised; ``reason`` has the exception type and first line) or ``'wrong'`` (it ran but
gave a different output, typically on B: a trace or export that baked the trace-time
output in as a constant). A layer's failures are recorded, never raised. Rows follow
``harness.frame.CAPABILITY_COLUMNS``; ``format_capabilities`` renders them as Markdown.

An ``ok`` cell may still carry a reason: ``torch.jit.trace`` records an
``autograd.Function`` as a ``prim::PythonOp`` that calls the NumPy code again on every
input, so such a trace gives right answers in this process but cannot be saved or
exported. An implementation declared with ``module=`` is scripted as the module itself
and traced with its parameters fed from the layer's inputs, as ``callable_for`` binds
them; the ``torch.compile`` and dynamo ONNX checks use ``callable_for`` directly.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from harness.errors import ConfigError, InputError
from harness.forms import CallableModule, quiet
from harness.frame import CAPABILITY_COLUMNS, build_table
from harness.layer import Implementation, Layer

__all__ = [
    "ATOL_FRACTION",
    "CHECKS",
    "RTOL",
    "capability_frame",
    "capability_matrix",
    "format_capabilities",
]

#: The checks, in the order rows and table columns list them.
CHECKS: tuple[str, ...] = (
    "script_save",
    "trace",
    "compile_fullgraph",
    "compile",
    "onnx_dynamo",
    "onnx_legacy",
)
#: Relative tolerance when comparing a converted callable with eager (float32).
RTOL = 1e-4
#: Absolute tolerance, as a fraction of the largest ``|eager output|``.
ATOL_FRACTION = 1e-5

_REASON_CHARS = 200
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: Loggers that print progress during exports and compiles.

Inputs = tuple[torch.Tensor, ...]
Runner = Callable[[Inputs], Any]


@dataclass(frozen=True)
class _Outcome:
    status: str
    reason: str | None = None
    graph_breaks: int | None = None


@dataclass(frozen=True)
class _Subject:
    """One declared implementation at one point, with its inputs and eager outputs.

    ``module`` builds a fresh instance of a module-declared implementation (``None``
    for a plain callable): TorchScript and the tracer cannot go through the
    ``functional_call`` that ``Implementation.callable_for`` binds parameters with.
    """

    fn: Callable[..., torch.Tensor]
    module: Callable[[], torch.nn.Module] | None
    names: tuple[str, ...]
    a: Inputs
    b: Inputs
    ref_a: torch.Tensor
    ref_b: torch.Tensor

    def traceable(self) -> torch.nn.Module:
        """A module taking all the layer's inputs, for ``torch.jit.trace`` and the
        TorchScript-based ONNX exporter."""
        if self.module is None:
            return CallableModule(self.fn)
        return _ParamsAsInputs(self.module())


class _ParamsAsInputs(torch.nn.Module):
    """``inner(x)`` with its parameters replaced by the remaining inputs, by name.

    The same binding as ``Implementation.callable_for`` (parameters in
    ``named_parameters`` order), done by plain attribute assignment so that the tracer
    records the parameters as graph inputs.
    """

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.names = [name for name, _ in inner.named_parameters()]
        self.slots: list[tuple[torch.nn.Module, str]] = []
        for name in self.names:
            owner_name, _, attr = name.rpartition(".")
            owner = inner.get_submodule(owner_name)
            delattr(owner, attr)  # a plain attribute from now on, set on every call
            self.slots.append((owner, attr))
        self.inner = inner

    def forward(self, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        _check_param_count(self.inner, self.names, params)
        for (owner, attr), value in zip(self.slots, params, strict=True):
            setattr(owner, attr, value)
        return self.inner(x)  # type: ignore[no-any-return]


def _check_param_count(
    module: torch.nn.Module, names: Sequence[str], params: Sequence[torch.Tensor]
) -> None:
    if len(params) != len(names):
        raise InputError(
            f"module {type(module).__name__} has parameters {list(names)} but got "
            f"{len(params)} parameter tensors"
        )


# -- public API ---------------------------------------------------------------------


def capability_matrix(
    layer: Layer,
    impls: Sequence[str] | None = None,
    point: Mapping[str, Any] | None = None,
    *,
    checks: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Rows (``CAPABILITY_COLUMNS``) for every declared implementation and every check.

    ``impls`` restricts the implementations (declared names only; ``ConfigError``
    otherwise); ``point`` defaults to ``layer.smallest_point()``; ``checks`` restricts
    the checks (default: all of ``CHECKS``). Inputs are float32 on the CPU. Rows come
    per implementation, checks in ``CHECKS`` order.
    """
    chosen_checks = _choose_checks(checks)
    declared = {impl.name: impl for impl in layer.implementations}
    if impls is None:
        chosen = list(layer.implementations)
    else:
        unknown = [name for name in impls if name not in declared]
        if unknown:
            raise ConfigError(
                f"layer {layer.name!r}: {unknown} are not declared implementations "
                f"(declared: {', '.join(declared)}; derived forms are not checked)"
            )
        chosen = [declared[name] for name in impls]
    where = layer.smallest_point() if point is None else layer.check_point(point)

    rows: list[dict[str, Any]] = []
    for impl in chosen:
        for check, outcome in _check_implementation(layer, impl, where, chosen_checks):
            rows.append(
                {
                    "layer": layer.name,
                    "impl": impl.name,
                    "role": impl.role,
                    "check": check,
                    "status": outcome.status,
                    "reason": outcome.reason,
                    "graph_breaks": outcome.graph_breaks,
                }
            )
    return rows


def capability_frame(
    layers: Iterable[Layer],
    impls: Sequence[str] | None = None,
    points: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    checks: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The capability matrices of several layers as one frame (``CAPABILITY_COLUMNS``).

    ``impls`` names implementations to keep in whichever layer declares them (a name
    no layer declares is a ``ConfigError``); ``points`` maps a layer's name to the point
    to check it at (default: its smallest point); ``checks`` as in ``capability_matrix``.
    """
    layers = list(layers)
    _choose_checks(checks)
    points = points or {}
    unknown_layers = sorted(set(points) - {layer.name for layer in layers})
    if unknown_layers:
        raise ConfigError(f"points given for layers that are not checked: {unknown_layers}")
    if impls is not None:
        known = {impl.name for layer in layers for impl in layer.implementations}
        missing = [name for name in impls if name not in known]
        if missing:
            raise ConfigError(f"no checked layer declares the implementations {missing}")
    rows: list[dict[str, Any]] = []
    for layer in layers:
        names = None
        if impls is not None:
            names = [i.name for i in layer.implementations if i.name in impls]
            if not names:
                continue
        rows.extend(capability_matrix(layer, names, points.get(layer.name), checks=checks))
    return build_table(rows, CAPABILITY_COLUMNS)


def format_capabilities(frame: pd.DataFrame) -> str:
    """Markdown: one table per layer, implementations as rows, checks as columns.

    A cell is ``ok``, ``ok (2 graph breaks)``, ``unsupported`` or ``wrong``; a cell
    with a reason gets a numbered marker and the reason is listed under its table.
    """
    if frame.empty:
        return "No capability checks.\n"
    out: list[str] = []
    for layer in dict.fromkeys(frame["layer"]):
        sub = frame[frame["layer"] == layer]
        present = set(sub["check"])
        checks = [c for c in CHECKS if c in present] + sorted(present - set(CHECKS))
        out.append(f"### {layer}")
        out.append("")
        out.append("| impl | role | " + " | ".join(checks) + " |")
        out.append("|---|---|" + "---|" * len(checks))
        notes: list[str] = []
        for impl in dict.fromkeys(sub["impl"]):
            rows = sub[sub["impl"] == impl]
            cells = []
            for check in checks:
                hit = rows[rows["check"] == check]
                if hit.empty:
                    cells.append("")
                    continue
                row = hit.iloc[0]
                cell = _cell(str(row["status"]), row["graph_breaks"])
                if not pd.isna(row["reason"]) and str(row["reason"]):
                    notes.append(f"{impl}, {check}: {row['reason']}")
                    cell += f" [{len(notes)}]"
                cells.append(cell)
            role = rows["role"].iloc[0]
            role_text = "" if pd.isna(role) else str(role)
            out.append(f"| {impl} | {role_text} | " + " | ".join(cells) + " |")
        if notes:
            out.append("")
            out.extend(f"[{i}] {_escape(note)}" for i, note in enumerate(notes, 1))
        out.append("")
    return "\n".join(out)


# -- running the checks -----------------------------------------------------------------


def _choose_checks(checks: Sequence[str] | None) -> tuple[str, ...]:
    """``checks`` in ``CHECKS`` order (all of them for ``None``); ``ConfigError`` if unknown."""
    if checks is None:
        return CHECKS
    if isinstance(checks, str):
        checks = [checks]
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise ConfigError(f"unknown capability checks {unknown}; known: {list(CHECKS)}")
    return tuple(c for c in CHECKS if c in checks)


def _check_implementation(
    layer: Layer, impl: Implementation, point: Mapping[str, Any], checks: Sequence[str]
) -> Iterator[tuple[str, _Outcome]]:
    """Yield ``(check, outcome)`` for each check; a failure before any check (inputs,
    the eager call itself) is recorded as ``unsupported`` for all of them."""
    try:
        fn = impl.callable_for(point)
        a = layer.make(point, torch.float32, "cpu", seed=0)
        b = layer.make(point, torch.float32, "cpu", seed=1)
        with torch.no_grad():
            ref_a, ref_b = fn(*a), fn(*b)
        for ref in (ref_a, ref_b):
            if not isinstance(ref, torch.Tensor):
                raise TypeError(f"eager call returned {type(ref).__name__}, not a tensor")
    except Exception as exc:  # the layer's own failure: record it for every check
        reason = _truncate(f"eager call failed: {_describe(exc)}")
        for check in checks:
            yield check, _Outcome("unsupported", reason)
        return
    module = None
    if impl.module is not None:
        factory = impl.module
        module = lambda: factory(point)  # noqa: E731
    subject = _Subject(fn, module, tuple(layer.inputs), a, b, ref_a, ref_b)
    for check in checks:
        yield check, _run_check(check, subject)


def _run_check(check: str, subject: _Subject) -> _Outcome:
    torch._dynamo.reset()
    try:
        with quiet(), torch.no_grad():
            return _CHECK_FUNCTIONS[check](subject)
    except Exception as exc:
        return _Outcome("unsupported", _truncate(_describe(exc)))
    finally:
        torch._dynamo.reset()


def _verdict(
    subject: _Subject, run: Runner, note: str | None = None, graph_breaks: int | None = None
) -> _Outcome:
    """Run a converted callable on A then B; ``wrong`` if either differs from eager.

    Raising here (while running) propagates: the check is ``unsupported``.
    """
    for inputs, ref, which in (
        (subject.a, subject.ref_a, "output"),
        (subject.b, subject.ref_b, "output on a second input"),
    ):
        problem = _mismatch(run(inputs), ref)
        if problem is not None:
            reason = f"{which} {problem}"
            if note:
                reason += f"; {note}"
            return _Outcome("wrong", _truncate(reason), graph_breaks)
    return _Outcome("ok", _truncate(note) if note else None, graph_breaks)


def _script_save(subject: _Subject) -> _Outcome:
    with warnings.catch_warnings():
        # torch.jit.script/save/load are deprecated in torch >= 2.10; this check exists
        # to ask whether TorchScript still works, so we call them on purpose.
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit\..* is deprecated", category=DeprecationWarning
        )
        # A module is scripted as itself, its parameters set from the inputs below.
        target = subject.fn if subject.module is None else subject.module()
        scripted = torch.jit.script(target)
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        buffer.seek(0)
        loaded = torch.jit.load(buffer)
    if subject.module is None:
        return _verdict(subject, lambda inputs: loaded(*inputs))
    params = dict(loaded.named_parameters())

    def run(inputs: Inputs) -> torch.Tensor:
        x, *values = inputs
        _check_param_count(loaded, list(params), values)
        for param, value in zip(params.values(), values, strict=True):
            param.copy_(value)
        return loaded(x)  # type: ignore[no-any-return]

    return _verdict(subject, run)


def _trace(subject: _Subject) -> _Outcome:
    with warnings.catch_warnings():
        # TracerWarnings (a Python value baked into the trace, ...) are exactly what
        # the second input detects, so they are silenced on purpose; so is trace's
        # deprecation warning (torch >= 2.10), since this check calls it deliberately.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit\..* is deprecated", category=DeprecationWarning
        )
        traced = torch.jit.trace(subject.traceable(), subject.a, check_trace=False)
    note = None
    python_ops = sorted(
        {n.pyname() for n in traced.inlined_graph.nodes() if n.kind() == "prim::PythonOp"}
    )
    if python_ops:
        note = (
            f"the trace calls back into Python ({', '.join(python_ops)}): "
            "it runs here but cannot be saved or exported"
        )
    return _verdict(subject, lambda inputs: traced(*inputs), note)


def _compile_fullgraph(subject: _Subject) -> _Outcome:
    compiled = torch.compile(subject.fn, fullgraph=True, dynamic=False)
    return _verdict(subject, lambda inputs: compiled(*inputs))


def _compile(subject: _Subject) -> _Outcome:
    note = None
    breaks: int | None = None
    try:
        breaks = int(torch._dynamo.explain(subject.fn)(*subject.a).graph_break_count)
    except Exception as exc:
        note = _truncate(f"graph breaks unknown: torch._dynamo.explain raised {_describe(exc)}")
    torch._dynamo.reset()
    compiled = torch.compile(subject.fn, dynamic=False)
    return _verdict(subject, lambda inputs: compiled(*inputs), note, breaks)


def _onnx_dynamo(subject: _Subject) -> _Outcome:
    program = torch.onnx.export(
        CallableModule(subject.fn),
        subject.a,
        dynamo=True,
        input_names=list(subject.names),
        verbose=False,
        report=False,
    )
    if program is None:
        raise RuntimeError("torch.onnx.export(dynamo=True) returned no program")
    return _onnx_verdict(subject, program.model_proto.SerializeToString())


def _onnx_legacy(subject: _Subject) -> _Outcome:
    buffer = io.BytesIO()
    torch.onnx.export(
        subject.traceable(),
        subject.a,
        buffer,  # type: ignore[arg-type]  # the legacy exporter writes to file objects
        dynamo=False,
        input_names=list(subject.names),
        verbose=False,
    )
    return _onnx_verdict(subject, buffer.getvalue())


def _onnx_verdict(subject: _Subject, model: bytes) -> _Outcome:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    graph_inputs = [i.name for i in session.get_inputs()]
    note = None
    if not graph_inputs:
        note = "the exported graph has no inputs: its output is a constant"

    def run(inputs: Inputs) -> np.ndarray:
        by_name = dict(zip(subject.names, inputs, strict=True))
        if all(name in by_name for name in graph_inputs):
            chosen = [by_name[name] for name in graph_inputs]
        else:  # renamed by the exporter: feed them in order
            chosen = list(inputs[: len(graph_inputs)])
        feed = {
            name: t.detach().cpu().numpy() for name, t in zip(graph_inputs, chosen, strict=True)
        }
        return np.asarray(session.run(None, feed)[0])

    return _verdict(subject, run, note)


_CHECK_FUNCTIONS: dict[str, Callable[[_Subject], _Outcome]] = {
    "script_save": _script_save,
    "trace": _trace,
    "compile_fullgraph": _compile_fullgraph,
    "compile": _compile,
    "onnx_dynamo": _onnx_dynamo,
    "onnx_legacy": _onnx_legacy,
}


# -- helpers ----------------------------------------------------------------------------


def _mismatch(out: Any, ref: torch.Tensor) -> str | None:
    """``None`` if ``out`` matches the eager ``ref``, else what differs."""
    if isinstance(out, tuple | list) and len(out) == 1:
        out = out[0]
    if not isinstance(out, torch.Tensor):
        try:
            out = torch.as_tensor(np.asarray(out))
        except Exception:
            return f"is a {type(out).__name__}, not a tensor"
    if tuple(out.shape) != tuple(ref.shape):
        return f"has shape {tuple(out.shape)}, eager gives {tuple(ref.shape)}"
    wide = torch.complex128 if ref.is_complex() or out.is_complex() else torch.float64
    got = out.detach().cpu().to(wide)
    want = ref.detach().cpu().to(wide)
    scale = float(want.abs().max()) if want.numel() else 0.0
    if torch.allclose(got, want, rtol=RTOL, atol=ATOL_FRACTION * scale, equal_nan=True):
        return None
    diff = (got - want).abs()
    big = want.abs() > 1e-3 * scale
    if scale > 0 and bool(big.any()):
        rel = float((diff[big] / want.abs()[big]).max())
    else:
        rel = float("inf") if float(diff.max()) > 0 else float("nan")
    return f"differs from eager (max rel err {rel:.2g})"


def _describe(exc: BaseException) -> str:
    """``Type: first line`` of an exception. Wrappers (``TorchExportError``, dynamo's
    ``TorchRuntimeError``) are described by their root ``__cause__``, named after
    them, and dynamo's ``Explanation:`` line is kept: their first lines say little."""
    root = exc
    while root.__cause__ is not None and _lines(root.__cause__):
        root = root.__cause__
    lines = _lines(root)
    text = lines[0] if lines else ""
    explanation = next((ln for ln in lines[1:] if ln.startswith("Explanation:")), None)
    if explanation:
        text += f" ({explanation.removeprefix('Explanation:').strip()})"
    name = type(root).__name__
    if root is not exc:
        name = f"{type(exc).__name__} from {name}"
    return f"{name}: {text}" if text else name


def _lines(exc: BaseException) -> list[str]:
    text = _ANSI.sub("", str(exc))
    return [line.strip() for line in text.splitlines() if line.strip()]


def _truncate(text: str, limit: int = _REASON_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _cell(status: str, graph_breaks: Any) -> str:
    if pd.isna(graph_breaks) or int(graph_breaks) == 0:
        return status
    n = int(graph_breaks)
    return f"{status} ({n} graph break{'s' if n != 1 else ''})"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
