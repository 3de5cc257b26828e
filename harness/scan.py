"""``python -m harness scan``: which custom autograd Functions does a training script
run, at which shapes, and how much of its time do they take?

The user's script runs as ``__main__`` (like ``python -m cProfile script.py``) under
``torch.profiler`` with ``record_shapes=True``, while a call tracer (``sys.setprofile``)
notes which NumPy/SciPy functions each Function's ``forward`` and ``backward`` call.
The profiler's events carry each Function's class name: ``Function.apply`` records
its forward under the class name (``ScipyConv2dFunction``) with the input shapes and
dtypes, and the autograd engine its backward node (``ScipyConv2dFunctionBackward``).

Layout: ``RawEvent`` and ``FunctionSource`` are the inputs of the pure ``aggregate``
(which a test feeds a recorded profile); ``scan_to_json``/``scan_markdown`` format a
``Scan``; ``run_scan`` is the I/O edge that runs the script. Nothing here imports torch
at module level (``harness.cli`` imports this module lazily anyway).

``scan.json`` (schema ``SCAN_SCHEMA``) is documented field by field in
``SCAN_FIELDS`` and ``FUNCTION_FIELDS`` below.
"""

from __future__ import annotations

import ast
import json
import os
import runpy
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from harness.errors import ConfigError

__all__ = [
    "FUNCTION_FIELDS",
    "SCAN_FIELDS",
    "SCAN_SCHEMA",
    "FunctionScan",
    "FunctionSource",
    "RawEvent",
    "Scan",
    "ScriptFailed",
    "aggregate",
    "public_name",
    "run_scan",
    "scan_markdown",
    "scan_to_json",
]

SCAN_SCHEMA = 1

#: scan.json, top level: field -> meaning.
SCAN_FIELDS: dict[str, str] = {
    "schema": "format version of this file (SCAN_SCHEMA)",
    "script": "the script that was scanned (absolute path)",
    "argv": "its arguments",
    "status": "'ok' (ran to its end), 'stopped' (cut after --steps iterations) or 'failed'",
    "error": "the script's exception (type: message) when it failed, else null",
    "steps": "--steps N as given, else null",
    "steps_counted": "iterations counted while profiling (optimizer steps, or backward "
    "calls where the script creates no optimizer)",
    "step_signal": "what was counted: 'optimizer.step', 'backward' or null",
    "date": "when the scan ran (local time, ISO 8601)",
    "torch": "torch version",
    "cpu_capability": "torch.backends.cpu.get_cpu_capability()",
    "script_s": "wall-clock seconds of the whole script under the scan, imports included",
    "guarded": "whether the script guards its work with if __name__ == '__main__': "
    "(layers.py imports a script that defines Functions)",
    "wall_s": "wall-clock seconds from the script's first torch op to its end (imports "
    "before the first op hold nothing to port and are left out of the shares)",
    "profiled_s": "the denominator of every share: wall_s, or the busy time summed over "
    "threads when threads overlapped more than that",
    "functions_s": "seconds inside custom Functions (forward + backward, outermost only)",
    "native_s": "seconds in torch ops outside custom Functions (profiler events "
    "with no parent, minus the Functions nested in them)",
    "other_s": "the rest: Python between ops, data loading, anything without a profiler event",
    "functions": "one object per custom Function that ran, largest share first (FUNCTION_FIELDS)",
}

#: scan.json, each entry of ``functions``: field -> meaning.
FUNCTION_FIELDS: dict[str, str] = {
    "name": "class name of the torch.autograd.Function",
    "module": "module that defines it ('__main__' when the script itself does)",
    "file": "file that defines it",
    "line": "line of its class statement (null when the source cannot be read)",
    "args": "names of forward's arguments after ctx",
    "calls": "forward calls profiled",
    "backward_calls": "backward calls profiled",
    "forward_total_s": "seconds in forward, torch ops inside it included",
    "forward_self_s": "seconds in forward outside any torch op (NumPy/SciPy time lands here)",
    "backward_total_s": "seconds in backward (the autograd node), torch ops included",
    "backward_self_s": "seconds in backward outside any torch op",
    "seconds": "forward_total_s + backward_total_s (calls nested in another Function excluded)",
    "share": "seconds / profiled_s; the shares of all Functions, native_s and other_s add up to 1",
    "shapes": "[[input shapes...], count] per distinct call signature, most frequent first "
    "([] for a scalar or a non-tensor argument)",
    "dtypes": "[[input dtypes...], count], most frequent first (null for a non-tensor argument)",
    "numpy_forward": "NumPy/SciPy functions forward called (seen by tracing calls)",
    "numpy_backward": "NumPy/SciPy functions backward called (seen by tracing calls)",
    "nested": "true when some of its calls ran inside another custom Function",
}

#: The profiler's dtype names (c10 TypeMeta) -> torch's.
_DTYPES = {
    "float": "float32",
    "double": "float64",
    "c10::Half": "float16",
    "c10::BFloat16": "bfloat16",
    "long int": "int64",
    "int": "int32",
    "short int": "int16",
    "signed char": "int8",
    "unsigned char": "uint8",
    "bool": "bool",
    "c10::complex<float>": "complex64",
    "c10::complex<double>": "complex128",
}

_BACKWARD = "Backward"
_ACC_KEYS = (
    "forward_calls",
    "forward_total_s",
    "forward_self_s",
    "backward_calls",
    "backward_total_s",
    "backward_self_s",
    "seconds",
)


# -- records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RawEvent:
    """One CPU event of the profile: a torch op, a Function's forward, a backward node."""

    name: str
    thread: int
    start_ns: int
    end_ns: int
    shapes: tuple[tuple[int, ...], ...] = ()
    dtypes: tuple[str | None, ...] = ()

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


@dataclass(frozen=True)
class FunctionSource:
    """Where a custom Function is defined, and what the tracer saw its code call."""

    name: str
    module: str
    file: str
    line: int | None = None
    args: tuple[str, ...] = ()
    numpy_forward: tuple[str, ...] = ()
    numpy_backward: tuple[str, ...] = ()


@dataclass(frozen=True)
class FunctionScan:
    """What the scan found for one custom Function (``FUNCTION_FIELDS``)."""

    name: str
    module: str
    file: str
    line: int | None
    args: tuple[str, ...]
    calls: int
    backward_calls: int
    forward_total_s: float
    forward_self_s: float
    backward_total_s: float
    backward_self_s: float
    seconds: float
    share: float
    shapes: tuple[tuple[tuple[tuple[int, ...], ...], int], ...]
    dtypes: tuple[tuple[tuple[str | None, ...], int], ...]
    numpy_forward: tuple[str, ...] = ()
    numpy_backward: tuple[str, ...] = ()
    nested: bool = False

    @property
    def numpy_calls(self) -> tuple[str, ...]:
        """Forward's and backward's NumPy/SciPy calls, each once, in order seen (the
        tensor/array conversions ``torch.Tensor.numpy``/``torch.from_numpy`` left out)."""
        seen = dict.fromkeys((*self.numpy_forward, *self.numpy_backward))
        return tuple(c for c in seen if not c.startswith("torch."))

    @property
    def converts(self) -> bool:
        """Forward or backward turns tensors into NumPy arrays or back."""
        return any(c.startswith("torch.") for c in (*self.numpy_forward, *self.numpy_backward))


@dataclass(frozen=True)
class Totals:
    """The profile's time, split so that it adds up."""

    wall_s: float
    profiled_s: float
    functions_s: float
    native_s: float
    other_s: float


@dataclass(frozen=True)
class Scan:
    """A whole scan: the script, how it ended, the totals and the Functions found."""

    script: str
    argv: tuple[str, ...]
    status: str
    totals: Totals
    functions: tuple[FunctionScan, ...]
    error: str | None = None
    steps: int | None = None
    steps_counted: int = 0
    step_signal: str | None = None
    date: str = ""
    torch: str = ""
    cpu_capability: str = ""
    guarded: bool = True
    """The script guards its top-level work with ``if __name__ == "__main__":``."""
    script_s: float = 0.0
    """Wall seconds of the whole script under the scan, imports included."""


# -- pure aggregation ------------------------------------------------------------------


def _nesting(events: Sequence[RawEvent]) -> list[int | None]:
    """Index of each event's parent (the innermost event enclosing it on its thread)."""
    parent: list[int | None] = [None] * len(events)
    by_thread: dict[int, list[int]] = {}
    for i, e in enumerate(events):
        by_thread.setdefault(e.thread, []).append(i)
    for indices in by_thread.values():
        indices.sort(key=lambda i: (events[i].start_ns, -events[i].end_ns))
        stack: list[int] = []
        for i in indices:
            while stack and events[stack[-1]].end_ns <= events[i].start_ns:
                stack.pop()
            # an event that starts inside another but outlives it is not nested in it
            while stack and events[stack[-1]].end_ns < events[i].end_ns:
                stack.pop()
            parent[i] = stack[-1] if stack else None
            stack.append(i)
    return parent


def _ranked(counter: Counter[Any]) -> tuple[tuple[Any, int], ...]:
    """Most frequent first; ties in first-seen order (Counter keeps insertion order)."""
    return tuple(sorted(counter.items(), key=lambda kv: -kv[1]))


def aggregate(
    events: Sequence[RawEvent], sources: Mapping[str, FunctionSource], wall_s: float
) -> tuple[tuple[FunctionScan, ...], Totals]:
    """Per custom Function (named in ``sources``): calls, forward/backward time (self
    and total), share of the profiled time, shapes and dtypes with counts; and the
    totals, split into Functions, native ops and the rest so that they add up.

    A Function's forward event bears its class name, its backward node the class name
    plus ``Backward``. Time of a Function called inside another one counts in the
    outer one only, so that no second is counted twice and the shares add up to at
    most 1."""
    parent = _nesting(events)
    seen = _tally_functions(events, parent, _function_events(events, sources))
    busy = sum(e.seconds for i, e in enumerate(events) if parent[i] is None)
    functions_s = sum(a["seconds"] for a in seen.acc.values())
    profiled = max(wall_s, busy, functions_s, 1e-12)
    out = [_function_scan(name, sources[name], seen, profiled) for name in seen.acc]
    out.sort(key=lambda f: (-f.share, f.name))
    native = max(busy - functions_s, 0.0)
    totals = Totals(
        wall_s=wall_s,
        profiled_s=profiled,
        functions_s=functions_s,
        native_s=native,
        other_s=max(profiled - functions_s - native, 0.0),
    )
    return tuple(out), totals


def _function_events(
    events: Sequence[RawEvent], sources: Mapping[str, FunctionSource]
) -> dict[int, tuple[str, str]]:
    """Event index -> (Function, ``forward`` or ``backward``) for the events of the
    Functions in ``sources``: the forward bears the class name, the backward node the
    class name plus ``Backward``."""
    kind: dict[int, tuple[str, str]] = {}
    for i, e in enumerate(events):
        if e.name in sources:
            kind[i] = (e.name, "forward")
        elif e.name.endswith(_BACKWARD) and e.name[: -len(_BACKWARD)] in sources:
            kind[i] = (e.name[: -len(_BACKWARD)], "backward")
    return kind


@dataclass
class _FunctionTally:
    """What ``aggregate`` counts per Function before it makes its ``FunctionScan``."""

    acc: dict[str, dict[str, float]] = field(default_factory=dict)
    """Function -> ``_ACC_KEYS`` (calls, total and self seconds per phase; ``seconds``:
    the time not inside another Function)."""
    shapes: dict[str, Counter[tuple[tuple[int, ...], ...]]] = field(default_factory=dict)
    dtypes: dict[str, Counter[tuple[str | None, ...]]] = field(default_factory=dict)
    nested: set[str] = field(default_factory=set)
    """Functions called (at least once) inside another one."""


def _tally_functions(
    events: Sequence[RawEvent],
    parent: Sequence[int | None],
    kind: Mapping[int, tuple[str, str]],
) -> _FunctionTally:
    """Count each Function event (``kind``) in its Function's tally: its call, its
    total and self time (less its children's), its time in ``seconds`` unless it ran
    inside another Function (counted there already), and its forward's input shapes
    and dtypes."""
    child_s = [0.0] * len(events)
    for i, p in enumerate(parent):
        if p is not None:
            child_s[p] += events[i].seconds
    seen = _FunctionTally()
    for i, (name, phase) in kind.items():
        e = events[i]
        a = seen.acc.setdefault(name, dict.fromkeys(_ACC_KEYS, 0.0))
        a[f"{phase}_calls"] += 1
        a[f"{phase}_total_s"] += e.seconds
        a[f"{phase}_self_s"] += max(e.seconds - child_s[i], 0.0)
        if _inside_function(i, parent, kind):
            seen.nested.add(name)
        else:
            a["seconds"] += e.seconds
        if phase == "forward":
            seen.shapes.setdefault(name, Counter())[e.shapes] += 1
            dtype_names = tuple(_dtype_name(d) for d in e.dtypes)
            seen.dtypes.setdefault(name, Counter())[dtype_names] += 1
    return seen


def _inside_function(i: int, parent: Sequence[int | None], kind: Mapping[int, object]) -> bool:
    """Whether event ``i`` has a Function event (``kind``) among its ancestors."""
    p = parent[i]
    while p is not None:
        if p in kind:
            return True
        p = parent[p]
    return False


def _function_scan(
    name: str, src: FunctionSource, seen: _FunctionTally, profiled: float
) -> FunctionScan:
    """The ``FunctionScan`` of one Function: where it is defined (``src``), what was
    counted of it, and its share of the ``profiled`` seconds."""
    a = seen.acc[name]
    return FunctionScan(
        name=name,
        module=src.module,
        file=src.file,
        line=src.line,
        args=src.args,
        calls=int(a["forward_calls"]),
        backward_calls=int(a["backward_calls"]),
        forward_total_s=a["forward_total_s"],
        forward_self_s=a["forward_self_s"],
        backward_total_s=a["backward_total_s"],
        backward_self_s=a["backward_self_s"],
        seconds=a["seconds"],
        share=a["seconds"] / profiled,
        shapes=_ranked(seen.shapes.get(name, Counter())),
        dtypes=_ranked(seen.dtypes.get(name, Counter())),
        numpy_forward=src.numpy_forward,
        numpy_backward=src.numpy_backward,
        nested=name in seen.nested,
    )


def _dtype_name(name: str | None) -> str | None:
    """torch's name for a profiler dtype (``float`` -> ``float32``); None for no tensor."""
    if not name:
        return None
    return _DTYPES.get(name, name)


def public_name(module: str, qualname: str, code: Any = None) -> str:
    """``scipy.signal.correlate2d`` for ``scipy.signal._signaltools.correlate2d``:
    private submodules dropped, as users import the name. With ``code`` (the running
    function's code object), the shortest public package that exports the function
    names it (``numpy.sum``, not ``numpy.fromnumeric.sum``)."""
    parts = [p for p in module.split(".") if p and not p.startswith("_")]
    if code is not None and "." not in qualname:
        exported = []
        for k in range(1, len(parts) + 1):
            obj = getattr(sys.modules.get(".".join(parts[:k])), qualname, None)
            if callable(obj) and not isinstance(obj, type(sys)):
                exported.append(k)
                if getattr(getattr(obj, "__wrapped__", obj), "__code__", None) is code:
                    return ".".join([*parts[:k], qualname])
        if exported:  # a dispatcher of a C function (numpy.dot) or a wrapped one
            return ".".join([*parts[: exported[0]], qualname])
    return ".".join([*parts, qualname])


# -- formatting ------------------------------------------------------------------------


def _shape_text(shapes: Sequence[Sequence[int]]) -> str:
    return ", ".join(str(list(s)) for s in shapes)


def scan_to_json(scan: Scan) -> dict[str, Any]:
    """The content of ``scan.json`` (``SCAN_FIELDS``)."""
    t = scan.totals
    return {
        "schema": SCAN_SCHEMA,
        "script": scan.script,
        "argv": list(scan.argv),
        "status": scan.status,
        "error": scan.error,
        "steps": scan.steps,
        "steps_counted": scan.steps_counted,
        "step_signal": scan.step_signal,
        "date": scan.date,
        "torch": scan.torch,
        "cpu_capability": scan.cpu_capability,
        "script_s": scan.script_s,
        "guarded": scan.guarded,
        "wall_s": t.wall_s,
        "profiled_s": t.profiled_s,
        "functions_s": t.functions_s,
        "native_s": t.native_s,
        "other_s": t.other_s,
        "functions": [_function_json(f) for f in scan.functions],
    }


def _function_json(f: FunctionScan) -> dict[str, Any]:
    """One entry of ``functions``, its keys in ``FUNCTION_FIELDS`` order."""
    values = {
        **asdict(f),
        "args": list(f.args),
        "shapes": [[[list(s) for s in sig], n] for sig, n in f.shapes],
        "dtypes": [[list(sig), n] for sig, n in f.dtypes],
        "numpy_forward": list(f.numpy_forward),
        "numpy_backward": list(f.numpy_backward),
    }
    return {key: values[key] for key in FUNCTION_FIELDS}


def scan_from_json(data: Mapping[str, Any]) -> Scan:
    """A ``Scan`` back from ``scan.json``'s content."""
    if data.get("schema") != SCAN_SCHEMA or not isinstance(data.get("functions"), list):
        raise ConfigError("not a scan.json written by this harness (schema or functions missing)")
    functions = tuple(
        FunctionScan(
            name=f["name"],
            module=f["module"],
            file=f["file"],
            line=f.get("line"),
            args=tuple(f.get("args") or ()),
            calls=int(f["calls"]),
            backward_calls=int(f.get("backward_calls") or 0),
            forward_total_s=float(f.get("forward_total_s") or 0.0),
            forward_self_s=float(f.get("forward_self_s") or 0.0),
            backward_total_s=float(f.get("backward_total_s") or 0.0),
            backward_self_s=float(f.get("backward_self_s") or 0.0),
            seconds=float(f["seconds"]),
            share=float(f["share"]),
            shapes=tuple(
                (tuple(tuple(int(d) for d in s) for s in sig), int(n)) for sig, n in f["shapes"]
            ),
            dtypes=tuple((tuple(sig), int(n)) for sig, n in f["dtypes"]),
            numpy_forward=tuple(f.get("numpy_forward") or ()),
            numpy_backward=tuple(f.get("numpy_backward") or ()),
            nested=bool(f.get("nested")),
        )
        for f in data["functions"]
    )
    totals = Totals(
        *(
            float(data.get(k) or 0.0)
            for k in ("wall_s", "profiled_s", "functions_s", "native_s", "other_s")
        )
    )
    return Scan(
        script=str(data.get("script", "")),
        argv=tuple(data.get("argv") or ()),
        status=str(data.get("status", "ok")),
        totals=totals,
        functions=functions,
        error=data.get("error"),
        steps=data.get("steps"),
        steps_counted=int(data.get("steps_counted") or 0),
        step_signal=data.get("step_signal"),
        date=str(data.get("date", "")),
        torch=str(data.get("torch", "")),
        cpu_capability=str(data.get("cpu_capability", "")),
        guarded=bool(data.get("guarded", True)),
        script_s=float(data.get("script_s") or 0.0),
    )


def function_sentence(f: FunctionScan) -> str:
    """``ScipyConv2dFunction: 41% of the profiled time, 30 calls, input [64, 64]
    float32, calls scipy.signal.correlate2d``."""
    text = f"{f.name}: {_pct(f.share)} of the profiled time, {f.calls} call{'s' * (f.calls != 1)}"
    if f.shapes:
        sig, _ = f.shapes[0]
        dts = [d for d in (f.dtypes[0][0] if f.dtypes else ()) if d]
        dt = f" {'/'.join(dict.fromkeys(dts))}" if dts else ""
        more = (
            f" (and {len(f.shapes) - 1} other shape{'s' * (len(f.shapes) > 2)})"
            if len(f.shapes) > 1
            else ""
        )
        text += f", input {_shape_text(sig)}{dt}{more}"
    calls = f.numpy_calls
    if calls:
        text += ", calls " + ", ".join(calls)
    elif f.converts:
        text += ", converts tensors to NumPy arrays (no NumPy/SciPy function call seen: ufuncs are not traced)"
    else:
        text += ", no NumPy/SciPy call seen"
    return text


def _pct(share: float) -> str:
    pct = 100 * share
    return f"{pct:.0f}%" if pct >= 10 or pct == 0 else f"{pct:.1f}%"


#: The share of a step outside every torch op from which a scan that found no Function
#: says where such time may hide.
_UNSEEN_SHARE = 0.3


def scan_markdown(scan: Scan, folder: str = "DIR") -> str:
    """The text of ``scan.md``: the Functions ranked by share, then what to do next
    (``folder``: where it is written, for the commands it suggests)."""
    lines = [f"# Scan of `{Path(scan.script).name}`", ""]
    lines += _run_paragraphs(scan)
    if not scan.functions:
        lines += ["No custom `torch.autograd.Function` ran: nothing to port.", ""]
        other = scan.totals.other_s / scan.totals.profiled_s if scan.totals.profiled_s else 0.0
        if other >= _UNSEEN_SHARE:
            # 2026-12-03: a SciPy KD-tree inside a plain loss function was 37% of a step
            # (measured apart), under "other" here, and "nothing to port" was all it said
            lines += [
                f"{_pct(other)} of the profiled time is outside every torch op (the table "
                "below): NumPy/SciPy called from plain functions (a loss or a metric that "
                "calls `.numpy()` and wraps the result back), which the scan cannot see. "
                "Declare such a function as a layer of its own (README, 'Benchmark your "
                "own layer': a function of tensors, or `arrays=True` for one of arrays) and "
                "`python -m harness run` weighs it.",
                "",
            ]
    else:
        lines += ["## Custom Functions, largest share first", ""]
        for f in scan.functions:
            lines += _function_item(f)
        lines += [""]
    lines += _time_table(scan)
    if scan.functions:
        lines += [
            "## Next",
            "",
            "1. Open `layers.py` beside this file and fill in each `FILL IN` (the native "
            "candidate; the reference if the baseline's own float64 run is not trusted). "
            "Check each `make_inputs` too: the scan saw shapes and dtypes only, so it draws "
            "values at random (`torch.randn`); a layer that needs inputs with structure "
            "(symmetric, positive definite, non-negative, indices in a range) must get them "
            "there, or its correctness checks judge it on inputs your script never passes.",
            f"2. `python -m harness run --layers-from {folder}/layers.py --scan {folder}` "
            "measures them and weighs each verdict by its share of the step.",
            "",
        ]
    return "\n".join(lines).rstrip("\n") + "\n"


def _run_paragraphs(scan: Scan) -> list[str]:
    """What was run and profiled, where and when; then how it ended when it did not
    end by itself (failed, stopped after ``--steps``) and a warning when importing
    the script would run it (no ``__main__`` guard)."""
    t = scan.totals
    args = " ".join(scan.argv)
    lines = [
        f"`{scan.script}{' ' + args if args else ''}`: ran {scan.script_s:.2f} s, of which "
        f"{t.wall_s:.2f} s from its first torch op on are profiled"
        + (f" on {scan.date}" if scan.date else "")
        + (f", CPU capability {scan.cpu_capability}" if scan.cpu_capability else "")
        + (f", torch {scan.torch}" if scan.torch else "")
        + ".",
        "",
    ]
    if scan.status == "failed":
        lines += [f"**The script failed**: {scan.error}. What ran before the failure is below.", ""]
    elif scan.status == "stopped":
        lines += [
            f"Stopped after {scan.steps_counted} iteration(s) (`--steps {scan.steps}`, "
            f"counting {scan.step_signal} calls).",
            "",
        ]
    if not scan.guarded:
        lines += [
            '*The script has no `if __name__ == "__main__":` guard: importing it from '
            "`layers.py` runs it. Guard its training before running the layer file.*",
            "",
        ]
    return lines


def _function_item(f: FunctionScan) -> list[str]:
    """One Function's bullet: its sentence, where it is defined, its forward and
    backward times, and (where there is something to say) its NumPy/SciPy calls, the
    shapes seen and whether it also ran nested."""
    where = f"{f.module} ({f.file}" + (f":{f.line}" if f.line else "") + ")"
    lines = [
        f"- **{function_sentence(f)}**.",
        f"  Defined in {where}. Forward {f.forward_total_s * 1e3:.1f} ms "
        f"({f.forward_self_s * 1e3:.1f} ms outside torch ops), backward "
        f"{f.backward_total_s * 1e3:.1f} ms ({f.backward_self_s * 1e3:.1f} ms outside "
        f"torch ops) over {f.calls} forward and {f.backward_calls} backward calls.",
    ]
    if f.numpy_forward or f.numpy_backward:
        lines.append(
            "  Forward calls "
            + (", ".join(f.numpy_forward) or "no NumPy/SciPy")
            + "; backward calls "
            + (", ".join(f.numpy_backward) or "no NumPy/SciPy")
            + "."
        )
    if len(f.shapes) > 1:
        seen = "; ".join(f"{_shape_text(sig)} ×{n}" for sig, n in f.shapes[:6])
        lines.append(f"  Input shapes seen: {seen}.")
    if f.nested:
        lines.append("  Some calls ran inside another custom Function (counted there).")
    return lines


def _time_table(scan: Scan) -> list[str]:
    """The profiled time split into the Functions, native torch ops and the rest
    (``Totals``: the rows add up to the profiled time)."""
    t = scan.totals
    lines = [
        "## Where the time went",
        "",
        "| part | seconds | share |",
        "| --- | --- | --- |",
    ]
    for f in scan.functions:
        lines.append(f"| {f.name} | {f.seconds:.3f} | {_pct(f.share)} |")
    lines.append(f"| native torch ops | {t.native_s:.3f} | {_pct(t.native_s / t.profiled_s)} |")
    lines.append(
        f"| other (Python, data, no profiler event) | {t.other_s:.3f} | "
        f"{_pct(t.other_s / t.profiled_s)} |"
    )
    lines.append(f"| **profiled** | {t.profiled_s:.3f} | 100% |")
    lines.append("")
    return lines


# -- running the script (I/O) ----------------------------------------------------------


class ScriptFailed(Exception):
    """The user's script raised; ``scan`` holds what was profiled before it did."""

    def __init__(self, scan: Scan, exc: BaseException) -> None:
        super().__init__(scan.error or type(exc).__name__)
        self.scan = scan
        self.exc = exc


class _StopScan(BaseException):
    """Raised inside the script once ``--steps`` iterations ran (BaseException, so that
    the script's own ``except Exception`` does not swallow it)."""


@dataclass
class _Tracer:
    """``sys.setprofile`` hook: inside a custom Function's forward or backward, notes
    the NumPy/SciPy functions called (the outermost one of each nest), by class."""

    apply_codes: frozenset[Any]
    classes: dict[str, Any] = field(default_factory=dict)
    calls: dict[tuple[str, str], dict[str, None]] = field(default_factory=dict)
    local: threading.local = field(default_factory=threading.local)

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        local = self.local
        stack: list[tuple[FrameType, str, str]] | None = getattr(local, "stack", None)
        if stack is None:
            stack = local.stack = []
            local.quiet = None
        if event == "call":
            code = frame.f_code
            if code.co_name in ("forward", "backward"):
                back = frame.f_back
                if back is not None and back.f_code in self.apply_codes:
                    cls = self._class_of(back)
                    if cls is not None:
                        stack.append((frame, cls.__name__, code.co_name))
                        return
            if stack and local.quiet is None:
                module = frame.f_globals.get("__name__", "") or ""
                if module.split(".", 1)[0] in ("numpy", "scipy"):
                    if not code.co_name.startswith("_"):  # not a dispatcher or helper
                        self._note(stack, public_name(module, code.co_qualname, code))
                    local.quiet = frame
        elif event == "return":
            if local.quiet is frame:
                local.quiet = None
            elif stack and stack[-1][0] is frame:
                stack.pop()
        elif event == "c_call" and stack and local.quiet is None:
            name = _c_name(arg)
            if name:
                self._note(stack, name)

    def _class_of(self, apply_frame: FrameType) -> Any:
        loc = apply_frame.f_locals
        cls = loc.get("cls")
        if cls is None and "self" in loc:
            cls = getattr(loc["self"], "_forward_cls", None)
        if not isinstance(cls, type) or (cls.__module__ or "").startswith("torch."):
            return None
        self.classes.setdefault(cls.__name__, cls)
        return cls

    def _note(self, stack: list[tuple[FrameType, str, str]], name: str) -> None:
        _, cls, phase = stack[-1]
        self.calls.setdefault((cls, phase), {})[name] = None


@contextmanager
def _tracing_functions(tracer: _Tracer) -> Iterator[None]:
    """Install ``tracer`` as the profile hook for the length of each custom Function's
    forward (``Function.apply``) and backward (``BackwardCFunction.apply``) only: the
    rest of the script runs untraced, at full speed."""
    from torch.autograd.function import BackwardCFunction, Function

    forward_apply = Function.__dict__["apply"]
    backward_apply = BackwardCFunction.__dict__["apply"]
    original_forward = forward_apply.__func__

    def traced(call: Any, *args: Any, **kwargs: Any) -> Any:
        previous = sys.getprofile()
        if previous is tracer:
            return call(*args, **kwargs)
        sys.setprofile(tracer)
        try:
            return call(*args, **kwargs)
        finally:
            sys.setprofile(previous)

    def apply(cls: Any, *args: Any, **kwargs: Any) -> Any:
        return traced(original_forward, cls, *args, **kwargs)

    def apply_backward(self: Any, *args: Any) -> Any:
        return traced(backward_apply, self, *args)

    Function.apply = classmethod(apply)  # type: ignore[method-assign,assignment]
    BackwardCFunction.apply = apply_backward  # type: ignore[method-assign]
    try:
        yield
    finally:
        Function.apply = forward_apply  # type: ignore[method-assign]
        BackwardCFunction.apply = backward_apply  # type: ignore[method-assign]


def _c_name(fn: Any) -> str | None:
    """Public name of a builtin called from a Function, when it is NumPy's or SciPy's
    (or a tensor/array conversion: ``Tensor.numpy``, ``torch.from_numpy``)."""
    name = getattr(fn, "__name__", "")
    module = getattr(fn, "__module__", None) or ""
    if module.split(".", 1)[0] in ("numpy", "scipy"):
        return public_name(module, name)
    owner = getattr(fn, "__self__", None)
    tmod = type(owner).__module__ if owner is not None else ""
    if tmod.split(".", 1)[0] == "numpy":
        return f"numpy.{type(owner).__name__}.{name}"
    if name == "from_numpy" and module == "torch":
        return "torch.from_numpy"
    if name == "numpy" and tmod.split(".", 1)[0] == "torch":
        return "torch.Tensor.numpy"
    return None


def _source_of(
    cls: Any, numpy_calls: Mapping[tuple[str, str], Mapping[str, None]]
) -> FunctionSource:
    forward = getattr(cls, "forward", None)
    code = getattr(forward, "__code__", None)
    file = code.co_filename if code is not None else ""
    args = tuple(code.co_varnames[1 : code.co_argcount]) if code is not None else ()
    setup = getattr(cls, "setup_context", None)
    if code is not None and setup is not None and getattr(setup, "__code__", None) is not None:
        # forward(*args) without ctx when setup_context is overridden
        from torch.autograd.function import _SingleLevelFunction

        if setup is not _SingleLevelFunction.setup_context:
            args = tuple(code.co_varnames[: code.co_argcount])
    return FunctionSource(
        name=cls.__name__,
        module=cls.__module__,
        file=os.path.abspath(file) if file else "",
        line=_class_line(file, cls.__name__, code.co_firstlineno if code else None),
        args=args,
        numpy_forward=tuple(numpy_calls.get((cls.__name__, "forward"), {})),
        numpy_backward=tuple(numpy_calls.get((cls.__name__, "backward"), {})),
    )


def _class_line(file: str, name: str, near: int | None) -> int | None:
    """Line of ``class name`` in ``file`` (the last one before ``near``)."""
    try:
        tree = ast.parse(Path(file).read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    lines = [
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, ast.ClassDef) and n.name == name and (near is None or n.lineno <= near)
    ]
    return max(lines) if lines else None


def script_is_guarded(source: str) -> bool:
    """Whether a script puts work under ``if __name__ == "__main__":`` (so that
    importing it only defines things)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            names = [node.test.left, *node.test.comparators]
            if any(isinstance(n, ast.Name) and n.id == "__name__" for n in names) and any(
                isinstance(n, ast.Constant) and n.value == "__main__" for n in names
            ):
                return True
    return False


@dataclass
class _StepCounter:
    """Counts iterations: optimizer steps, or backward calls when the script creates no
    optimizer; raises ``_StopScan`` once ``limit`` of them finished."""

    limit: int | None
    optimizers: int = 0
    steps: int = 0
    backwards: int = 0

    @property
    def signal(self) -> str | None:
        if self.optimizers:
            return "optimizer.step"
        return "backward" if self.backwards else None

    @property
    def counted(self) -> int:
        return self.steps if self.optimizers else self.backwards

    def on_step(self) -> None:
        self.steps += 1
        if self.limit is not None and self.steps >= self.limit:
            raise _StopScan

    def on_backward(self) -> None:
        self.backwards += 1
        if self.limit is not None and not self.optimizers and self.backwards >= self.limit:
            raise _StopScan


@contextmanager
def _counting(counter: _StepCounter) -> Iterator[None]:
    """Hook optimizer construction and steps and ``torch.autograd.backward`` for the
    length of the script."""
    import torch
    from torch.optim.optimizer import Optimizer, register_optimizer_step_post_hook

    original_init = Optimizer.__init__
    original_backward = torch.autograd.backward

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        counter.optimizers += 1
        original_init(self, *args, **kwargs)

    def backward(*args: Any, **kwargs: Any) -> Any:
        out = original_backward(*args, **kwargs)
        counter.on_backward()
        return out

    handle = register_optimizer_step_post_hook(lambda opt, a, k: counter.on_step())
    Optimizer.__init__ = init  # type: ignore[method-assign]
    torch.autograd.backward = backward
    try:
        yield
    finally:
        handle.remove()
        Optimizer.__init__ = original_init  # type: ignore[method-assign]
        torch.autograd.backward = original_backward


def _script_traceback(exc: BaseException, script: str) -> str:
    """The traceback from the script's first frame on (the harness's frames cut)."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != script:
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb if tb is not None else exc.__traceback__)
    return "".join(lines)


def _raw_events(prof: Any) -> list[RawEvent]:
    """The profile's CPU events as ``RawEvent`` (kineto events carry dtypes)."""
    import torch

    out = []
    for e in prof.profiler.kineto_results.events():
        if e.device_type() != torch.autograd.DeviceType.CPU:
            continue
        start = int(e.start_ns())
        out.append(
            RawEvent(
                name=e.name(),
                thread=int(e.start_thread_id()),
                start_ns=start,
                end_ns=start + int(e.duration_ns()),
                shapes=tuple(tuple(int(d) for d in s) for s in e.shapes()),
                dtypes=tuple(str(d) for d in e.dtypes()),
            )
        )
    return out


def _custom_functions(tracer: _Tracer) -> dict[str, Any]:
    """Every subclass of ``torch.autograd.Function`` outside torch, by class name (the
    tracer's, plus any defined that it did not see enter)."""
    import torch

    found: dict[str, Any] = {}
    todo = list(torch.autograd.Function.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        module = cls.__module__ or ""
        if module == "torch" or module.startswith("torch."):
            continue
        found.setdefault(cls.__name__, cls)
    found.update(tracer.classes)
    return found


def run_scan(script: str, argv: Sequence[str] = (), steps: int | None = None) -> Scan:
    """Run ``script`` as ``__main__`` with ``argv`` under the profiler and the call
    tracer; return the scan. ``ConfigError`` for a script that cannot be read;
    ``ScriptFailed`` when it raises (its traceback printed to stderr as the script's)."""
    source = _read_script(script, steps)
    script = os.path.abspath(script)

    import torch
    from torch.autograd.function import BackwardCFunction, Function
    from torch.profiler import ProfilerActivity, profile

    apply_codes = frozenset(
        {Function.apply.__func__.__code__, BackwardCFunction.apply.__code__}  # type: ignore[attr-defined]
    )
    tracer = _Tracer(apply_codes)
    counter = _StepCounter(steps)
    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    prof = profile(activities=activities, record_shapes=True)
    with _as_main(script, argv):
        ran = _run_profiled(script, prof, counter, tracer)
    classes = _custom_functions(tracer)
    sources = {name: _source_of(cls, tracer.calls) for name, cls in classes.items()}
    events = _raw_events(prof)
    # the window starts at the script's first torch op: imports before it hold nothing
    # to port, and would dilute every share
    first = min((e.start_ns for e in events), default=ran.stop_ns)
    wall = max(ran.stop_ns - first, 0) / 1e9 if events else ran.script_s
    functions, totals = aggregate(events, sources, min(wall, ran.script_s))
    scan = Scan(
        script=script,
        argv=tuple(argv),
        status=ran.status,
        totals=totals,
        functions=functions,
        error=ran.error.splitlines()[0] if ran.error else None,
        steps=steps,
        steps_counted=counter.counted,
        step_signal=counter.signal,
        date=time.strftime("%Y-%m-%dT%H:%M:%S"),
        torch=torch.__version__,
        cpu_capability=str(torch.backends.cpu.get_cpu_capability()),
        guarded=script_is_guarded(source),
        script_s=ran.script_s,
    )
    if ran.failure is not None:
        if not isinstance(ran.failure, SystemExit):
            sys.stderr.write(_script_traceback(ran.failure, script))
        raise ScriptFailed(scan, ran.failure)
    return scan


def _read_script(script: str, steps: int | None) -> str:
    """The script's source; ``ConfigError`` before anything runs when it cannot be
    read or ``steps`` is not a count of iterations."""
    path = Path(script)
    if not path.is_file():
        raise ConfigError(f"{script}: no such script")
    try:
        source = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{script}: cannot read: {exc}".splitlines()[0]) from None
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps must be >= 1, not {steps}")
    return source


@contextmanager
def _as_main(script: str, argv: Sequence[str]) -> Iterator[None]:
    """``sys.argv`` and ``sys.path[0]`` as running ``python script argv...`` sets them
    (so that the script parses its arguments and imports its neighbours), restored
    afterwards."""
    saved_argv, saved_path0 = sys.argv[:], sys.path[0] if sys.path else None
    sys.argv = [script, *argv]
    if sys.path:
        sys.path[0] = os.path.dirname(script)
    else:
        sys.path.insert(0, os.path.dirname(script))
    try:
        yield
    finally:
        sys.argv = saved_argv
        if saved_path0 is not None and sys.path:
            sys.path[0] = saved_path0


@dataclass(frozen=True)
class _Ran:
    """How the script's run ended: ``status`` ok, stopped (``--steps`` reached) or
    failed (``error``, and the exception to re-raise as ``ScriptFailed``)."""

    status: str
    error: str | None
    failure: BaseException | None
    script_s: float
    """Wall seconds of the script, from the profiler's start."""
    stop_ns: int
    """``time.time_ns()`` when it ended: the end of the profiled window."""


def _run_profiled(script: str, prof: Any, counter: _StepCounter, tracer: _Tracer) -> _Ran:
    """Run the script as ``__main__`` under ``prof``, the step counter and the call
    tracer. Its failure (an exception, a non-zero ``SystemExit``) is caught and
    returned as the user's, not the harness's; ``_StopScan`` ends it at ``--steps``."""
    status, error = "ok", None
    failure: BaseException | None = None
    with _counting(counter), _tracing_functions(tracer):
        prof.start()
        t0 = time.perf_counter()
        try:
            runpy.run_path(script, run_name="__main__")
        except _StopScan:
            status = "stopped"
        except SystemExit as exc:
            if exc.code not in (None, 0):
                status, error, failure = "failed", f"SystemExit: {exc.code}", exc
        except Exception as exc:  # the user's script failed: report it as theirs
            status, error, failure = "failed", f"{type(exc).__name__}: {exc}", exc
        finally:
            script_s = time.perf_counter() - t0
            stop_ns = time.time_ns()
            prof.stop()
    return _Ran(status, error, failure, script_s, stop_ns)


def write_scan(scan: Scan, out: str | os.PathLike[str]) -> list[Path]:
    """Write ``scan.json``, ``scan.md`` and, when Functions were found and the script
    did not fail, ``layers.py`` into ``out``; return the paths written."""
    from harness.results import atomic_write_text
    from harness.scan_layers import layer_file

    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = [folder / "scan.json", folder / "scan.md"]
        atomic_write_text(written[0], json.dumps(scan_to_json(scan), indent=1) + "\n")
        atomic_write_text(written[1], scan_markdown(scan, str(folder)))
        if scan.functions and scan.status != "failed":
            written.append(folder / "layers.py")
            atomic_write_text(written[2], layer_file(scan, str(folder)))
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot write the scan: {exc}".splitlines()[0]) from None
    return written


def default_out(now: float | None = None) -> Path:
    """``reports/scan-<date>-<time>``."""
    return Path("reports") / time.strftime("scan-%Y%m%d-%H%M%S", time.localtime(now))


def check_out(out: str | os.PathLike[str]) -> None:
    """``ConfigError`` when ``out`` exists and is not an empty folder."""
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ConfigError(f"{out}: exists and is not empty (choose another --out)")


def load_scan(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """``scan.json``'s content from a scan folder (or the file itself)."""
    path = Path(folder)
    if path.is_dir():
        path = path / "scan.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the scan: {exc}".splitlines()[0]) from None
    scan_from_json(data)  # validates
    return dict(data)


def cmd_scan(
    script: str, argv: Sequence[str], out: str | None = None, steps: int | None = None
) -> int:
    """``python -m harness scan``: scan, write the folder, print where it is. Exit 0
    (also when no custom Function ran: it says so), 2 when the script fails (its
    traceback is printed as the script's, and the folder says it failed)."""
    if not Path(script).is_file():
        raise ConfigError(f"{script}: no such script")
    folder = Path(out) if out else default_out()
    check_out(folder)
    try:
        scan = run_scan(script, argv, steps=steps)
    except ScriptFailed as failed:
        write_scan(failed.scan, folder)
        raise ConfigError(
            f"{script} failed ({failed.scan.error}); the scan of what ran before is in "
            f"{folder}/scan.md"
        ) from None
    write_scan(scan, folder)
    if not scan.functions:
        print(
            f"no custom torch.autograd.Function ran in {script}: nothing to port ({folder}/scan.md)"
        )
        return 0
    for f in scan.functions:
        print(function_sentence(f))
    total = sum(f.share for f in scan.functions)
    print(
        f"custom Functions: {_pct(total)} of {scan.totals.profiled_s:.2f} s profiled; "
        f"wrote {folder}/scan.json, scan.md, layers.py"
    )
    return 0
