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
compile_fullgraph  ``torch.compile(fullgraph=True, dynamic=False)``, and its backward on A
                   (gradients compared with eager's) where the implementation has one
compile            ``torch.compile(dynamic=False)``; graph breaks from ``torch._dynamo.explain``
onnx_dynamo        ``torch.onnx.export(dynamo=True)`` on A, run by ONNX Runtime (CPU)
onnx_legacy        ``torch.onnx.export(dynamo=False)`` on A, run by ONNX Runtime (CPU)
================== =====================================================================

Each cell is ``'ok'`` (it ran and matched eager on A and B within the tolerance of the
output's dtype, ``harness.deviation.within_tolerance``), ``'unsupported'`` (it raised;
``reason`` has ``harness.errors.describe`` of the root cause) or ``'wrong'`` (it ran but
gave a different output, typically on B: a trace or export that baked the trace-time
output in as a constant). A layer's failures are recorded, never raised. Rows follow
``harness.frame.CAPABILITY_COLUMNS``; ``format_capabilities`` renders them as Markdown,
for the CLI and for the report alike.

Two checks can disagree: ``compile`` may run an implementation and count 0 graph
breaks (``torch._dynamo.explain`` misses what Dynamo hands back to Python whole, such
as an ``autograd.Function`` it cannot trace) where ``compile_fullgraph`` fails.
**fullgraph rules** on whether compile takes the code whole: the ``compile`` row's
reason says so (``_reconcile``), its cell reads ``✓ ran, not whole`` (where no break
was counted), and
``compile_not_timed`` times ``<baseline>-compile`` only where ``compile_fullgraph``
is ``ok``. Where ``compile_fullgraph`` passes, breaks that ``explain`` counts are
likewise overruled in the ``compile`` row's reason.

Reasons are one complete line (``harness.errors.one_line``); an op the ONNX exporter
has no function for is named (``no ONNX function for prims.bessel_i1e``), and so is the
Python function a scripted callable calls back into.

An ``ok`` cell may still carry a reason: ``torch.jit.trace`` records an
``autograd.Function`` as a ``prim::PythonOp`` that calls the NumPy code again on every
input, so such a trace gives right answers in this process but cannot be saved or
exported. An implementation declared with ``module=`` is scripted as the module itself
(its parameters then set from the layer's inputs); every other check goes through
``callable_for``, whose parameter binding (``harness.layer.bind_module``) also works
under the tracer. ONNX models run in ``harness.forms.ort_session``.

Importing this module does not import torch (the report renders capability tables
without it); the checks import it when they run.
"""

from __future__ import annotations

import io
import os
import re
import types
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from harness.errors import ConfigError, describe, first_line, one_line, root_cause
from harness.frame import CAPABILITY_COLUMNS, build_table
from harness.text import Footnotes, cell, md_table

if TYPE_CHECKING:
    import torch

    from harness.layer import Implementation, Layer
    from harness.outputs import Outputs

    Inputs = tuple[torch.Tensor, ...]
    Runner = Callable[[Inputs], Any]

__all__ = [
    "CHECKS",
    "CHECK_LABELS",
    "capability_frame",
    "capability_matrix",
    "compile_not_timed",
    "format_capabilities",
    "native_compile_not_timed",
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
#: Each check in words, as tables head their columns.
CHECK_LABELS: dict[str, str] = {
    "script_save": "TorchScript (script and save)",
    "trace": "torch.jit.trace",
    "compile_fullgraph": "torch.compile with fullgraph=True",
    "compile": "torch.compile",
    "onnx_dynamo": "ONNX export (dynamo)",
    "onnx_legacy": "ONNX export (TorchScript-based)",
}

#: A reason's length as stored: a Dynamo or TorchScript cause runs to a few hundred
#: characters, and at 200 its footnote ended in "... in file…" (2026-12-03), cut.
_REASON_CHARS = 400


@dataclass(frozen=True)
class _Outcome:
    status: str
    reason: str | None = None
    graph_breaks: int | None = None


@dataclass(frozen=True)
class _Subject:
    """One declared implementation at one point, with its inputs and eager outputs.

    ``fn`` is ``Implementation.callable_for(point)``: for a module-declared
    implementation it binds the module's parameters to the layer's inputs
    (``harness.layer.bind_module``), under the tracer too. ``module`` builds a fresh
    instance of such a module (``None`` for a plain callable), for TorchScript, which
    scripts the module itself.
    """

    fn: Callable[..., torch.Tensor]
    module: Callable[[], torch.nn.Module] | None
    names: tuple[str, ...]
    a: Inputs
    b: Inputs
    ref_a: Outputs
    ref_b: Outputs
    compilable: Callable[..., torch.Tensor] | None = None
    """What torch.compile is given (``Implementation.compilable``: ``wrap_numpy`` of a
    NumPy function of arrays); ``fn`` when None."""
    grad_mask: tuple[bool, ...] = ()
    """Per input, whether the backward that ``compile_fullgraph`` compiles too takes its
    gradient (``Layer.grad_mask``); none: the implementation has no backward."""
    arrays: bool = False
    """A NumPy function of arrays (``arrays=True``): ``fn`` is the harness's wrapper."""
    random: bool = False
    """Two eager calls on the same input differ even with the global generators seeded
    (a generator of its own): a converted form's output cannot be held against eager."""
    declared: Callable[..., Any] | None = None
    """The declared ``fn`` where the layer has ``arguments`` (``fn`` then appends
    them): what TorchScript scripts, called with ``arguments`` after the tensors."""
    arguments: tuple[Any, ...] = ()

    def traceable(self) -> torch.nn.Module:
        """A module taking all the layer's inputs, for ``torch.jit.trace`` and the
        exporters."""
        from harness.forms import CallableModule

        return CallableModule(self.fn)


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
        outcomes = _reconcile(dict(_check_implementation(layer, impl, where, chosen_checks)))
        for check, outcome in outcomes.items():
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


def compile_not_timed(rows: Iterable[Mapping[str, Any]], source: str) -> str | None:
    """Why ``<baseline>-compile`` of ``source`` is not timed, from the capability rows of
    its layer (``None``: time it). **fullgraph rules**: compiling the baseline as declared
    is a port only where ``torch.compile(fullgraph=True)`` takes it whole and matches
    eager; a ``compile`` row of 0 graph breaks does not overrule a failed
    ``compile_fullgraph`` row. Rows without a ``compile_fullgraph`` check fall back to
    the ``compile`` row: not timed where it failed or broke the graph."""
    mine = {str(r.get("check")): r for r in rows if r.get("impl") == source}
    whole = mine.get("compile_fullgraph")
    if whole is not None:
        status, reason = whole.get("status"), whole.get("reason")
        if status == "ok":
            return None
        if str(reason or "").startswith(_EAGER_FAILED):
            # nothing was compiled: the code fails as declared (2026-12-02: np.int in a
            # public soft-rank layer read as a fullgraph failure)
            return one_line(f"not timed: {source} itself fails ({reason})", 2 * _REASON_CHARS)
        why = (
            f"torch.compile(fullgraph=True) cannot take {source} whole"
            if status != "wrong"
            else f"compiled whole with fullgraph=True, {source} disagrees with eager"
        )
        if reason:
            why += f" ({reason})"
        return one_line(f"not timed: {why}; fullgraph rules (capability matrix)", 2 * _REASON_CHARS)
    row = mine.get("compile")
    if row is None:
        return None
    if row.get("status") != "ok":
        return f"not timed: torch.compile cannot run {source} as declared (capability matrix)"
    if row.get("graph_breaks"):
        return (
            f"not timed: torch.compile breaks the graph of {source} "
            f"{int(row['graph_breaks'])} time(s) (capability matrix)"
        )
    return None


#: The compile check's reason where ``torch._dynamo.explain`` counted no graph.
NO_GRAPH = "Dynamo captured no graph"


def native_compile_not_timed(rows: Iterable[Mapping[str, Any]], source: str) -> str | None:
    """Why a native's ``compile`` form is not timed (``None``: time it): Dynamo captured
    no graph of ``source``, so torch.compile runs it eagerly and its time would be the
    eager native's under another name (2026-12-03: torch-fem's sparse solve, dense
    ``torch.linalg.solve`` after ``to_dense``, read "compile ×2.84" beside a matrix that
    said no graph was captured). A native compiled in pieces is still what
    ``torch.compile`` gives its user, and is timed."""
    row = next((r for r in rows if r.get("impl") == source and r.get("check") == "compile"), None)
    if row is None or NO_GRAPH not in str(row.get("reason") or ""):
        return None
    return (
        f"not timed: {NO_GRAPH} of {source}, so torch.compile runs it eagerly: its time "
        f"would be eager {source}'s under another name (capability matrix)"
    )


class Notes(Protocol):
    """Where cell footnotes go: ``ref(text)`` returns the marker to put in the cell
    (``harness.report._format.Footnotes`` is one)."""

    def ref(self, text: str) -> str: ...


def format_capabilities(
    rows: pd.DataFrame | Iterable[Mapping[str, Any]],
    notes: Notes | None = None,
    *,
    headings: bool = True,
) -> str:
    """The capability matrix as Markdown: one table per layer, implementations as rows
    (baselines first, marked ``(baseline)``), checks as columns (in ``CHECKS`` order,
    headed by ``CHECK_LABELS``). Pure: it writes nothing.

    A cell reads ``✓``, ``✓ (2 graph breaks)``, ``✗ unsupported`` or ``✗ wrong``, ``—``
    where a check has no row; a cell with a reason gets a footnote marker. Given
    ``notes`` (the report's running footnotes), markers come from ``notes.ref`` and
    the footnotes are left to its owner; without, they are numbered here and listed
    at the end. ``headings`` puts ``### <layer>`` above each table. No rows:
    ``"No capability checks.\n"``.
    """
    table_rows = _records(rows)
    if not table_rows:
        return "No capability checks.\n"
    own = Footnotes() if notes is None else None
    refs: Notes = own if own is not None else notes  # type: ignore[assignment]
    out: list[str] = []
    for layer in dict.fromkeys(str(r["layer"]) for r in table_rows):
        caps = [r for r in table_rows if str(r["layer"]) == layer]
        present = list(dict.fromkeys(str(r["check"]) for r in caps))
        checks = [c for c in CHECKS if c in present] + [c for c in present if c not in CHECKS]
        seen = list(dict.fromkeys(str(r["impl"]) for r in caps))
        base = {str(r["impl"]) for r in caps if r.get("role") == "baseline"}
        body = []
        for impl in [i for i in seen if i in base] + [i for i in seen if i not in base]:
            cells = [cell(f"{impl} (baseline)" if impl in base else impl)]
            whole = next(
                (r for r in caps if r["impl"] == impl and r["check"] == "compile_fullgraph"), None
            )
            for check in checks:
                hit = next((r for r in caps if r["impl"] == impl and r["check"] == check), None)
                cells.append("—" if hit is None else _cell(hit, refs, whole))
            body.append(cells)
        header = ["implementation"] + [CHECK_LABELS.get(c, c) for c in checks]
        if headings:
            out += [f"### {layer}", ""]
        out += [md_table(header, body, ["l"] * len(header)), ""]
    if own:
        out += [own.render(), ""]
    return "\n".join(out)


def _records(rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows as dicts, with every missing value (NA, NaN) as ``None``."""
    if isinstance(rows, pd.DataFrame):
        clean = rows.astype(object).where(rows.notna(), None)
        return [{str(k): v for k, v in row.items()} for row in clean.to_dict("records")]
    return [{str(k): v for k, v in row.items()} for row in rows]


def _cell(row: Mapping[str, Any], notes: Notes, whole: Mapping[str, Any] | None = None) -> str:
    """One cell; ``whole`` is the implementation's ``compile_fullgraph`` row, which rules
    a ``compile`` cell that ran: ``✓ ran, not whole`` where fullgraph failed."""
    status = str(row.get("status"))
    reason = row.get("reason")
    if status == "ok":
        text = "✓"
        breaks = row.get("graph_breaks")
        if breaks:
            n = int(breaks)
            text += f" ({n} graph break{'s' if n != 1 else ''})"
        fails = whole is not None and whole.get("status") != "ok"
        if row.get("check") == "compile" and whole is not None and fails and not breaks:
            text = "✓ ran, not whole"
            if _FULLGRAPH_RULES not in str(reason or ""):
                # rows from before the checks were reconciled: say which one rules here
                reason = _overruled(row, str(whole.get("status")), reason)
        if row.get("check") == "trace" and "cannot be saved" in str(reason or ""):
            # a trace that calls back into Python: it runs, and deploys nowhere
            text = "✓ runs, not saved"
    else:
        text = f"✗ {status}"
    if reason:
        text += notes.ref(str(reason))
    return text


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
    import torch

    from harness.deviation import eager_mismatch, seeded
    from harness.outputs import as_tuple

    try:
        fn = impl.callable_for(point)
        a = layer.make(point, torch.float32, "cpu", seed=0)
        b = layer.make(point, torch.float32, "cpu", seed=1)
        # every call with the global generators seeded (here and in _verdict): a random
        # layer (a NumPy dropout) is then one function, judged and not its randomness
        with torch.no_grad():
            ref_a, ref_b, again = seeded(fn)(*a), seeded(fn)(*b), seeded(fn)(*a)
        for ref in (ref_a, ref_b):
            as_tuple(ref)  # TypeError: neither a tensor nor a tuple of tensors
        random = eager_mismatch(again, ref_a) is not None
    except Exception as exc:  # the layer's own failure: record it for every check
        reason = _reason(f"{_EAGER_FAILED}: {_describe(exc)}")
        for check in checks:
            yield check, _Outcome("unsupported", reason)
        return
    module = None
    if impl.module is not None:
        factory = impl.module
        module = lambda: factory(point)  # noqa: E731
    mask = layer.grad_mask(a) if impl.backward and layer.trains else ()
    subject = _Subject(
        fn, module, tuple(layer.inputs), a, b, ref_a, ref_b, impl.compilable(point), mask,
        arrays=impl.arrays, random=random,
        declared=impl.fn if impl.arguments is not None else None,
        arguments=tuple(impl.arguments(point)) if impl.arguments is not None else (),
    )  # fmt: skip
    for check in checks:
        yield check, _run_check(check, subject)


def _run_check(check: str, subject: _Subject) -> _Outcome:
    import torch

    from harness.forms import missing_onnx_function, quiet, script_cause

    torch._dynamo.reset()
    try:
        with quiet(), torch.no_grad():
            return _CHECK_FUNCTIONS[check](subject)
    except Exception as exc:
        # name the op the exporter lacks, or the Python function a script calls back
        # into; other causes as "Type: first line" of the root cause
        named = missing_onnx_function(exc) if check.startswith("onnx") else None
        if check == "script_save" and "Could not export Python function call" in str(exc):
            named = script_cause(exc, "save")
        elif check == "script_save" and isinstance(root_cause(exc), SyntaxError):
            named = script_cause(exc, "script")
        elif check == "script_save" and isinstance(subject.fn, types.BuiltinFunctionType):
            named = script_cause(exc, "script", subject.fn)
        elif check == "script_save" and subject.arrays:
            # what failed is the harness's wrapper around it (2026-11-30: the footnote
            # named "layer.py:180: def call(*tensors)"), not the user's code
            named = (
                "TorchScript cannot script it: a function of NumPy arrays (arrays=True) "
                "runs NumPy, and TorchScript compiles torch code only"
            )
        return _Outcome("unsupported", _reason(named or _describe(exc)))
    finally:
        torch._dynamo.reset()


#: The words that mark a reason saying which of two disagreeing checks rules.
_FULLGRAPH_RULES = "fullgraph rules"
#: How a capability row says the implementation failed before any check ran.
_EAGER_FAILED = "eager call failed"


def _overruled(row: Mapping[str, Any], whole: str, reason: Any) -> str:
    """The reason of a ``compile`` row that ``compile_fullgraph`` (status ``whole``)
    contradicts, saying that fullgraph rules; ``reason`` is the row's own, kept after."""
    breaks = row.get("graph_breaks")
    counted = (
        f"torch._dynamo.explain counted {int(breaks)} graph break(s)"
        if breaks is not None
        else "it ran"
    )
    if whole == "ok":
        text = (
            f"{_FULLGRAPH_RULES}: torch.compile with fullgraph=True takes it whole, "
            f"so the breaks {counted.removeprefix('torch._dynamo.explain counted ')} "
            "do not stop compile"
        )
    else:
        text = (
            f"{_FULLGRAPH_RULES}: {counted}, but torch.compile with fullgraph=True "
            f"{'fails' if whole == 'unsupported' else 'gives another output'}, so compile "
            "does not take it whole (Dynamo leaves what it cannot trace to Python)"
        )
    return _reason(f"{text}; {reason}" if reason else text)


def _reconcile(outcomes: dict[str, _Outcome]) -> dict[str, _Outcome]:
    """``outcomes`` of one implementation with contradictions between checks resolved:
    ``compile`` ran (0 graph breaks, or breaks) while ``compile_fullgraph`` says the
    opposite about taking the code whole. fullgraph rules; the ``compile`` row's reason
    says so (its status, whether it ran and matched, stands)."""
    compiled, whole = outcomes.get("compile"), outcomes.get("compile_fullgraph")
    if compiled is None or whole is None or compiled.status != "ok":
        return outcomes
    fails = whole.status != "ok"
    broke = bool(compiled.graph_breaks)
    if fails == broke:  # they agree: breaks and no whole graph, or neither
        return outcomes
    row = {"graph_breaks": compiled.graph_breaks}
    reason = _overruled(row, whole.status, compiled.reason)
    return {**outcomes, "compile": _Outcome(compiled.status, reason, compiled.graph_breaks)}


def _differs_from_itself(subject: _Subject, inputs: Inputs, ref: Outputs) -> bool:
    """Whether eager, seeded, differs from ``ref`` on the same ``inputs`` in one of a
    few more calls: one repeat can agree by chance (2026-12-02: ARPACK's eigenvector
    sign, drawn by its own generator, agreed in 5 calls of 6, and compile and trace
    read "wrong" for the baseline's randomness)."""
    from harness.deviation import RANDOM_LOOKS, eager_mismatch, seeded

    again = (seeded(subject.fn)(*inputs) for _ in range(RANDOM_LOOKS))
    return any(eager_mismatch(out, ref) is not None for out in again)


def _verdict(
    subject: _Subject, run: Runner, note: str | None = None, graph_breaks: int | None = None
) -> _Outcome:
    """Run a converted callable on A then B; ``wrong`` if either differs from eager.

    Raising here (while running) propagates: the check is ``unsupported``.
    """
    from harness.deviation import eager_mismatch, seed_globals

    for inputs, ref, which in (
        (subject.a, subject.ref_a, "output"),
        (subject.b, subject.ref_b, "output on a second input"),
    ):
        seed_globals()  # as for the eager reference (_check_implementation)
        problem = eager_mismatch(run(inputs), ref)
        if problem is not None and (subject.random or _differs_from_itself(subject, inputs, ref)):
            # 2026-11-30: propack's SVD (its own generator) read "torch.compile ...
            # output differs from eager (max rel err 2)"; eager differs from itself
            random = (
                "it runs; its output is not held against eager, which differs from itself "
                "between two calls on the same input even with the global generators seeded"
            )
            return _Outcome("ok", _reason(f"{random}; {note}" if note else random), graph_breaks)
        if problem is not None:
            reason = f"{which} {problem}"
            if note:
                reason += f"; {note}"
            return _Outcome("wrong", _reason(reason), graph_breaks)
    return _Outcome("ok", _reason(note) if note else None, graph_breaks)


def _script_save(subject: _Subject) -> _Outcome:
    import torch

    with warnings.catch_warnings():
        # torch.jit.script/save/load are deprecated in torch >= 2.10; this check exists
        # to ask whether TorchScript still works, so we call them on purpose.
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit\..* is deprecated", category=DeprecationWarning
        )
        # A module is scripted as itself, its parameters set from the inputs below.
        eager = None if subject.module is None else subject.module()
        target = subject.fn if eager is None else eager
        if subject.declared is not None:
            target = subject.declared  # scripted as declared; the arguments follow
        scripted = torch.jit.script(target)
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        buffer.seek(0)
        loaded = torch.jit.load(buffer)
    if subject.module is None:
        return _verdict(subject, lambda inputs: loaded(*inputs, *subject.arguments))
    from harness.layer import forward_inputs, parameter_order

    # The eager call (bind_module) has checked that the inputs match the parameters
    # and the forward's arguments, as here: the arguments by name, the rest bound.
    assert eager is not None
    passed = forward_inputs(eager, subject.names[1:])
    bound = [n for n in subject.names[1:] if n not in passed]
    named = list(loaded.named_parameters())
    order = parameter_order([n for n, _ in named], bound)
    params = [named[i][1] for i in sorted(range(len(order)), key=order.__getitem__)]

    def run(inputs: Inputs) -> torch.Tensor:
        x, *rest = inputs
        given = dict(zip(subject.names[1:], rest, strict=True))
        for param, name in zip(params, bound, strict=True):
            param.copy_(given[name])
        return loaded(x, **{n: given[n] for n in passed})  # type: ignore[no-any-return]

    return _verdict(subject, run)


def _trace(subject: _Subject) -> _Outcome:
    import torch

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
    import torch

    from harness.toolchain import remember_isa_probes

    remember_isa_probes()  # inductor's ISA probes: once per machine, not per process
    compiled = torch.compile(subject.compilable or subject.fn, fullgraph=True, dynamic=False)
    outcome = _verdict(subject, lambda inputs: compiled(*inputs))
    if outcome.status != "ok" or not any(subject.grad_mask):
        return outcome
    # Taken whole means the backward too: the compile form of a training step compiles
    # it (harness.forms._first_calls). A forward-only check passed a NumPy Function
    # whose backward compile cannot take (2026-11-30: ``grad.numpy().dtype``), and
    # the matrix said "✓" beside a form that could not be built.
    try:
        problem = _backward_mismatch(subject, compiled)
    except Exception as exc:
        return _Outcome("unsupported", _reason(f"in the backward: {_describe(exc)}"))
    if problem is not None:
        return _Outcome("wrong", _reason(problem))
    return outcome


def _backward_mismatch(subject: _Subject, compiled: Callable[..., Any]) -> str | None:
    """How ``compiled``'s gradients on input A differ from eager's (None: they agree)."""
    import torch

    from harness.deviation import eager_mismatch, seed_globals, upstream_gradient
    from harness.outputs import differentiable

    def grads_of(fn: Callable[..., Any]) -> tuple[torch.Tensor | None, ...]:
        leaves = [
            t.detach().clone().requires_grad_(m)
            for t, m in zip(subject.a, subject.grad_mask, strict=True)
        ]
        with torch.enable_grad():
            seed_globals()
            out = fn(*leaves)
            wrt = [t for t in leaves if t.requires_grad]
            # the graph is freed, as a training step frees it. deviation.gradients keeps
            # it, and with it fft's torch compile_fullgraph row turned unsupported in a
            # CI run (retained graphs and compiled backwards with donated buffers do not
            # mix: forms._compile_every_shape)
            outs, upstream = differentiable(out, upstream_gradient(out, 1))
            grads = torch.autograd.grad(outs, wrt, upstream, allow_unused=True)
            return tuple(grads)

    eager = grads_of(subject.fn)
    names = [n for n, m in zip(subject.names, subject.grad_mask, strict=True) if m]
    for name, mine, ref in zip(names, grads_of(compiled), eager, strict=True):
        if mine is None or ref is None:
            if mine is not ref:  # one side has a gradient, the other none
                given, eager_gives = ("none", "one") if mine is None else ("one", "none")
                return f"gradient for {name!r}: {given} where eager gives {eager_gives}"
            continue
        problem = eager_mismatch(mine, ref)
        if problem is not None:
            return f"gradient for {name!r} {problem}"
    return None


def _compile(subject: _Subject) -> _Outcome:
    import torch

    from harness.toolchain import remember_isa_probes

    remember_isa_probes()
    note = None
    breaks: int | None = None
    try:
        target = subject.compilable or subject.fn
        explained = torch._dynamo.explain(target)(*subject.a)
        if explained.graph_count == 0:
            # explain counts graphs - 1 breaks: -1 where Dynamo captured nothing
            note = f"{NO_GRAPH}: all of it runs as Python"
        else:
            breaks = int(explained.graph_break_count)
    except Exception as exc:
        note = _reason(f"graph breaks unknown: torch._dynamo.explain raised {_describe(exc)}")
    torch._dynamo.reset()
    compiled = torch.compile(subject.compilable or subject.fn, dynamic=False)
    return _verdict(subject, lambda inputs: compiled(*inputs), note, breaks)


def _onnx_dynamo(subject: _Subject) -> _Outcome:
    import torch

    program = torch.onnx.export(
        subject.traceable(),
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
    import torch

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
    from harness.forms import ort_callable, ort_session

    session = ort_session(model)
    note = None
    if not session.get_inputs():
        note = "the exported graph has no inputs: its output is a constant"
    run = ort_callable(session, subject.names)
    return _verdict(subject, lambda inputs: run(*inputs), note)


_CHECK_FUNCTIONS: dict[str, Callable[[_Subject], _Outcome]] = {
    "script_save": _script_save,
    "trace": _trace,
    "compile_fullgraph": _compile_fullgraph,
    "compile": _compile,
    "onnx_dynamo": _onnx_dynamo,
    "onnx_legacy": _onnx_legacy,
}


# -- helpers ----------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    """``harness.errors.describe`` of the root cause: wrappers (``TorchExportError``,
    dynamo's ``TorchRuntimeError``) are described by their root ``__cause__``, named
    after them, and dynamo's ``Explanation:`` line is kept: their first lines say little."""
    root = root_cause(exc)
    text = describe(root, limit=None)
    first = first_line(root)
    explanation = next(
        (
            line.strip()
            for line in str(root).splitlines()
            if line.strip().startswith("Explanation:") and line.strip() != first
        ),
        None,
    )
    if explanation:
        text += f" ({_fake_call(explanation.removeprefix('Explanation:').strip())})"
    text += _where(root) or _where(exc)
    return f"{type(exc).__name__} from {text}" if root is not exc else text


_FAKE_CALL = re.compile(
    r"Dynamo failed to run FX node with fake tensors: call_\w+ (?P<fn>.+?)\(\*.*\): "
    r"got (?P<got>.+)$",
    re.S,
)


def _fake_call(explanation: str) -> str:
    """Dynamo's "failed to run FX node with fake tensors: call_function <fn>(*(args),
    **{...}): got Error(...)" without its arguments: the function and what it raised,
    the line that says what is wrong, were cut off behind a list of fake tensors
    (2026-12-02, dynoNet's ``np.empty_like(a, shape=...)``)."""
    m = _FAKE_CALL.match(explanation)
    if m is None:
        return explanation
    fn = m.group("fn")
    original = re.search(r"<original (\w+)>", fn)
    name = original.group(1) if original else fn.strip("<>")
    return f"{name} failed on fake tensors: {m.group('got').strip()}"


def _where(exc: BaseException) -> str:
    """Where in the traced code Dynamo stopped (its ``real_stack``): the innermost frame
    outside torch, and the outermost, the layer's own line that led there; "" when the
    exception has no such stack. A break inside SciPy read "ndarray.dtype" alone, and
    the user found no ``.dtype`` in their code (2026-12-01, NOTEARS' trace(expm):
    ``scipy/linalg/_matfuncs.py:323`` in ``expm``, from the layer's line 19)."""
    stack = getattr(exc, "real_stack", None) or ()
    # nor the harness's own frames (a module's binding, harness/layer.py): the user's
    # line is the outermost of theirs (2026-12-02: "from layer.py:339" named ours)
    ours = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frames = [
        f
        for f in stack
        if f"{os.sep}torch{os.sep}" not in f.filename
        and not os.path.abspath(f.filename).startswith(ours)
    ]
    if not frames:
        return ""
    inner, outer = frames[-1], frames[0]
    text = f" at {_short_path(inner.filename)}:{inner.lineno} ({inner.name})"
    if outer is not inner:
        text += f", from {_short_path(outer.filename)}:{outer.lineno}"
    return text


def _short_path(path: str) -> str:
    """A package's file from its package folder (``scipy/linalg/_matfuncs.py``), any
    other file by its name."""
    marker = f"site-packages{os.sep}"
    return path.split(marker, 1)[1] if marker in path else os.path.basename(path)


def _reason(text: str) -> str:
    """A reason as stored: one complete line of at most ``_REASON_CHARS`` characters."""
    return one_line(text, _REASON_CHARS)
