"""Profiling one call, apart from timing: which tool sees what.

``profile_call(call, device)`` runs ``call`` (one ``step`` or one ``forward``, as
``harness.measure`` defines them) a few times plain (at least 3 calls and 20 ms), then
once under the tools (again, up to 3 times, while the profiled call took over 3× the
plain median and 1 ms more: a call preempted on a shared machine is no profile of it;
the fastest is kept):

- **torch.profiler** (CPU activity; CUDA too on a CUDA device): aten ops, autograd's
  record functions, device kernels, each with its start and end;
- **sys.setprofile**, a Python profile hook: each outermost call of a NumPy or SciPy
  function, and each bridge call (``Tensor.numpy``, ``torch.from_numpy``,
  ``Tensor.new``, ``ndarray.astype``, ``np.ascontiguousarray``, ...), is wrapped in a
  record function (``numpy::NAME``, ``bridge::NAME``), so that torch.profiler's tree
  nests the aten ops a bridge call runs inside it; each outermost call into ONNX
  Runtime (``onnxruntime.InferenceSession.run``) likewise, as a ``kernel`` part
  (torch.profiler sees nothing inside it). Calls nested inside one of those are only
  counted (the hook's cost is removed from the part they belong to). The body of each
  of the layer's autograd Functions' ``forward`` and ``backward`` is annotated too
  (``code::SoftDTW.forward``), around the calls above: its self time is the layer's
  own code, Python or compiled code no tool here sees into (a numba function is
  neither a Python frame nor a builtin, so the hook never hears of its call);
- **resource.getrusage**: minor page faults over the plain calls, per call.

The hook sees the calls the current thread makes (on CUDA the autograd engine runs a
custom Function's backward on a device thread: those calls count as Python). The
events go to the pure ``harness.breakdown.aggregate``. Nothing here is timed for the
results: profiling runs after timing, in its own pass.
"""

from __future__ import annotations

import functools
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType, ModuleType
from typing import Any

import numpy as np
import torch

from harness.breakdown import (
    ROOT,
    Breakdown,
    Costs,
    ProfEvent,
    aggregate,
    bridge_name,
    code_name,
    kernel_name,
    numpy_name,
    runtime_name,
)
from harness.ufuncs import VISIBLE_CALL, ufunc_label, ufunc_modules, visible_ufuncs

__all__ = ["CallProfile", "calibrate", "function_bodies", "minor_faults", "profile_call"]

#: Tensor methods that move data between torch and NumPy, copy or cast.
TENSOR_BRIDGE = frozenset(
    {
        "numpy",
        "detach",
        "detach_",
        "new",
        "new_tensor",
        "contiguous",
        "to",
        "cpu",
        "cuda",
        "clone",
        "copy_",
        "type",
        "float",
        "double",
        "half",
        "tolist",
        "item",
        "__array__",
    }
)
#: torch functions that make a tensor from an array.
TORCH_BRIDGE = frozenset(
    {"from_numpy", "as_tensor", "tensor", "asarray", "from_dlpack", "frombuffer"}
)
#: NumPy functions and ndarray methods that only convert, copy or cast.
NUMPY_BRIDGE = frozenset(
    {
        "ascontiguousarray",
        "asfortranarray",
        "asarray",
        "asanyarray",
        "array",
        "copy",
        "require",
        "astype",
        "tolist",
        "tobytes",
        "__array__",
    }
)
_NUMERIC = ("numpy", "scipy")
#: Native runtimes torch.profiler does not see into: their calls are kernels.
_RUNTIMES = ("onnxruntime",)
_RecordFunction = torch._C._profiler._RecordFunctionFast


def _public(module: str) -> str:
    """``numpy.fft._pocketfft`` -> ``numpy.fft``: the name users import it by."""
    return ".".join(p for p in module.split(".") if not p.startswith("_")) or module


#: Calls into the Python runtime (and torch's Python) that cost in their own right in
#: a layer's hot path, named apart as kind ``python`` (2026-12-01: a public sparse
#: solver's forward and backward each ran ``gc.collect()``, 100 ms a call in a plain
#: process and 250 ms in the harness's, read as "the layer's own code ... the baseline's
#: work, not overhead").
RUNTIME_CALLS = frozenset(
    {
        "gc.collect",
        "time.sleep",
        "builtins.print",
        "builtins.input",
        "torch.cuda.memory.empty_cache",
        "torch.cuda.synchronize",
    }
)


_RUNTIME_NAMES = frozenset(name.rsplit(".", 1)[1] for name in RUNTIME_CALLS)


def _runtime_call(module: str, name: str) -> tuple[str, str] | None:
    """(``python``, the name users call it by) for one of ``RUNTIME_CALLS``."""
    if name not in _RUNTIME_NAMES or f"{module}.{name}" not in RUNTIME_CALLS:
        return None  # the bare name first: the hook asks at every call
    return "python", f"{module}.{name}".replace("builtins.", "").replace(".memory.", ".")


def classify_call(frame: FrameType, event: str, arg: Any) -> tuple[str, str] | None:
    """(kind, name) of a call the hook sees, when it is a NumPy/SciPy or bridge call,
    or one of ``RUNTIME_CALLS``."""
    if event == "call":
        if frame.f_code is VISIBLE_CALL:  # a ufunc, visible while profiled
            return "numpy", frame.f_locals["self"].label
        module = str(frame.f_globals.get("__name__", ""))
        runtime = _runtime_call(module, frame.f_code.co_name)
        if runtime is not None:
            return runtime
        if module.split(".")[0] in _RUNTIMES:
            code = frame.f_code
            qualname = getattr(code, "co_qualname", code.co_name)
            return "kernel", f"{module.split('.')[0]}.{qualname}"
        if module.split(".")[0] not in _NUMERIC:
            return None
        code = frame.f_code
        if code.co_name.endswith("_dispatcher"):
            return None  # __array_function__ dispatch: part of the call that follows
        qualname = getattr(code, "co_qualname", code.co_name)
        name = _wrapped(frame) if "<locals>" in qualname else None
        name = name or f"{_public(module)}.{qualname}"
        return ("bridge" if code.co_name in NUMPY_BRIDGE else "numpy"), name
    name = getattr(arg, "__name__", "")
    owner = getattr(arg, "__self__", None)
    if name in _RUNTIME_NAMES:  # the module only then: the hook asks at every C call
        runtime = _runtime_call(str(getattr(arg, "__module__", None) or ""), name)
        if runtime is not None:
            return runtime
    if isinstance(owner, torch.Tensor):
        return ("bridge", f"torch.Tensor.{name}") if name in TENSOR_BRIDGE else None
    if isinstance(owner, np.ufunc):  # np.add.reduce, np.maximum.at
        return "numpy", f"{ufunc_label(owner)}.{name}"
    if isinstance(owner, np.ndarray | np.generic):
        kind = "bridge" if name in NUMPY_BRIDGE else "numpy"
        return kind, f"numpy.ndarray.{name}"
    module = str(getattr(arg, "__module__", None) or getattr(type(owner), "__module__", ""))
    top = module.split(".")[0]
    if top in _RUNTIMES:
        return "kernel", f"{top}.{getattr(arg, '__qualname__', name)}"
    if top in _NUMERIC:
        kind = "bridge" if name in NUMPY_BRIDGE else "numpy"
        return kind, f"{_public(module)}.{name}"
    if top == "torch" and name in TORCH_BRIDGE:
        return "bridge", f"torch.{name}"
    return None


def _wrapped(frame: FrameType) -> str | None:
    """The NumPy/SciPy function a decorator's wrapper calls, named as users import it
    (``scipy.linalg.logm``), or None. SciPy wraps many of its functions in closures
    (``_apply_over_batch``'s ``wrapper`` round ``logm``, ``eigh``, ``expm``): named by
    its code, every one read ``scipy._apply_over_batch.<locals>.decorator.<locals>.
    wrapper``. The wrapped function is the closure's free variable that is a public
    NumPy/SciPy function (one defined at module level)."""
    code = frame.f_code
    if not code.co_freevars:
        return None
    scope = frame.f_locals  # a wrapper's free variables are among its locals
    for var in code.co_freevars:
        fn = scope.get(var)
        module = str(getattr(fn, "__module__", None) or "")
        qualname = str(getattr(fn, "__qualname__", "") or "")
        if (
            callable(fn)
            and module.split(".")[0] in _NUMERIC
            and qualname
            and "<locals>" not in qualname
        ):
            return f"{_public(module)}.{qualname}"
    return None


def function_bodies() -> dict[CodeType, str]:
    """The code of every user-defined autograd Function's ``forward`` and ``backward``
    (torch's own left out), with its qualified name: the bodies the hook annotates as
    the layer's own code. Read when a call is profiled, so that the layer's Functions
    are defined by then."""
    found: dict[CodeType, str] = {}
    todo = list(torch.autograd.Function.__subclasses__())
    seen: set[type] = set()
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        todo.extend(cls.__subclasses__())
        if str(cls.__module__).split(".")[0] == "torch":
            continue
        for name in ("forward", "backward"):
            fn = cls.__dict__.get(name)
            code = getattr(getattr(fn, "__func__", fn), "__code__", None)
            if isinstance(code, CodeType):
                found[code] = f"{cls.__qualname__}.{name}"
    return found


def _library_roots() -> tuple[str, ...]:
    """Folders of installed code: the standard library, site-packages, this harness."""
    import sysconfig

    paths = sysconfig.get_paths()
    roots = {paths.get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.add(str(Path(__file__).resolve().parent))
    return tuple(sorted(str(Path(r).resolve()) + os.sep for r in roots if r))


_LIBRARIES = _library_roots()


def user_file(filename: str) -> Path | None:
    """``filename`` resolved, when it is the user's own code: a real file outside the
    standard library, site-packages and this harness; else None."""
    if not filename or filename.startswith("<"):
        return None
    try:
        path = Path(filename).resolve()
    except OSError:
        return None
    return None if str(path).startswith(_LIBRARIES) else path


def user_modules() -> list[ModuleType]:
    """The modules of the user's own code that are loaded (``user_file``): where a
    layer may hold a ufunc imported by name (``from scipy.special import ive``)."""
    out = []
    for module in list(sys.modules.values()):
        filename = getattr(module, "__file__", None)
        if isinstance(filename, str) and _is_user_file(filename):
            out.append(module)
    return out


@functools.cache
def _is_user_file(filename: str) -> bool:
    # resolving every loaded module's path took 0.1 s for 1,700 modules
    return user_file(filename) is not None


@functools.lru_cache(maxsize=4096)
def user_helper(code: CodeType) -> str | None:
    """The name of a function of the user's own code (``numpy_ops.Isotonic.vjp``):
    defined in a file outside the standard library, site-packages and this harness;
    None for any other code (a comprehension, or a library's). Inside an autograd
    Function's body such a call is a part of its own (kind ``code``), named, where its
    time used to be the body's (2026-12-01: fast-soft-sort's ``Isotonic.vjp``, a
    Python loop, read as "NumpyOpWrapper.backward 52%")."""
    name = code.co_name
    path = None if name.startswith("<") else user_file(code.co_filename)
    if path is None:
        return None
    return f"{path.stem}.{getattr(code, 'co_qualname', name)}"


class _Hook:
    """The profile hook: annotates outermost NumPy/bridge calls and the bodies of the
    layer's autograd Functions (``bodies``, from ``function_bodies``), counts the rest.

    ``spans`` holds, per annotation in the order they start, the Python events counted
    inside it; a Function body's count excludes its NumPy/bridge calls' events (those
    are their own annotations')."""

    def __init__(self, bodies: Mapping[CodeType, str] | None = None) -> None:
        self.bodies = bodies or {}
        self.depth = 0
        self.span_depth: int | None = None
        self.span_events = 0
        self.span_index = 0
        self.spans: list[int] = []
        self.outside = 0
        self._record: Any = None
        #: open Function bodies: (depth, index in spans, record function)
        self._bodies: list[tuple[int, int, Any]] = []

    def _count(self) -> None:
        """One Python event outside NumPy/bridge calls: the innermost open Function
        body's, else outside every annotation."""
        if self._bodies:
            self.spans[self._bodies[-1][1]] += 1
        else:
            self.outside += 1

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" or event == "c_call":
            self.depth += 1
            if self.span_depth is not None:
                self.span_events += 1
                return
            if event == "call":
                body = self.bodies.get(frame.f_code)
                if body is None and len(self._bodies) == 1:
                    # a helper of the user's called from a Function body (one level:
                    # what a helper calls is the helper's)
                    body = user_helper(frame.f_code)
                if body is not None:
                    record = _RecordFunction(code_name(body))
                    record.__enter__()
                    self._bodies.append((self.depth, len(self.spans), record))
                    self.spans.append(0)
                    return
            found = classify_call(frame, event, arg)
            if found is None:
                self._count()
                return
            kind, name = found
            self.span_depth = self.depth
            self.span_events = 0
            self.span_index = len(self.spans)
            self.spans.append(0)
            self._record = _RecordFunction(
                {
                    "numpy": numpy_name,
                    "bridge": bridge_name,
                    "kernel": kernel_name,
                    "python": runtime_name,
                }[kind](name)
            )
            self._record.__enter__()
            return
        # return, c_return, c_exception
        if self.span_depth is not None:
            if self.depth == self.span_depth:
                self._record.__exit__(None, None, None)
                self._record = None
                self.spans[self.span_index] = self.span_events
                self.span_depth = None
            else:
                self.span_events += 1
        elif event == "return" and self._bodies and self.depth == self._bodies[-1][0]:
            self._bodies.pop()[2].__exit__(None, None, None)
        else:
            self._count()
        self.depth = max(0, self.depth - 1)

    def close(self) -> None:
        if self._record is not None:  # a call that raised out of the hook's sight
            self._record.__exit__(None, None, None)
            self.spans[self.span_index] = self.span_events
            self._record = None
        while self._bodies:
            self._bodies.pop()[2].__exit__(None, None, None)


@dataclass(frozen=True)
class CallProfile:
    breakdown: Breakdown
    minor_faults: float
    """Minor page faults per plain call (resource.getrusage)."""


def minor_faults() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


def _sync(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


def _activities(device: str) -> list[Any]:
    from torch.profiler import ProfilerActivity

    acts = [ProfilerActivity.CPU]
    if device.startswith("cuda"):
        acts.append(ProfilerActivity.CUDA)
    return acts


def _events(prof: Any, spans: list[int]) -> list[ProfEvent]:
    from torch.autograd import DeviceType

    out: list[ProfEvent] = []
    annotations = 0
    raw = sorted(prof.events(), key=lambda e: (e.time_range.start, -e.time_range.end))
    roots = [e for e in raw if e.name == ROOT]
    if not roots:
        return out
    start = roots[-1].time_range.start
    kept: set[int] = set()
    for e in raw:
        device = e.device_type != DeviceType.CPU
        parent_event = getattr(e, "cpu_parent", None)
        if device:
            if e.time_range.start < start:
                continue
        elif e.name != ROOT and (parent_event is None or parent_event.id not in kept):
            continue  # the warm-up call's events
        kept.add(e.id)
        traced = 0
        if not device and e.name.startswith(("numpy::", "bridge::", "kernel::", "code::")):
            traced = spans[annotations] if annotations < len(spans) else 0
            annotations += 1
        parent = e.cpu_parent.id if getattr(e, "cpu_parent", None) is not None else None
        out.append(
            ProfEvent(
                id=int(e.id),
                name=str(e.name),
                start_us=float(e.time_range.start),
                end_us=float(e.time_range.end),
                parent=parent,
                device=device,
                traced=traced,
            )
        )
    return out


def profile_call(
    call: Callable[[], Any],
    device: str = "cpu",
    costs: Costs | None = None,
    min_plain_s: float = 0.02,
    attempts: int = 3,
    ufuncs: bool = True,
) -> CallProfile:
    """One call of ``call`` under torch.profiler and the profile hook, split into parts.

    ``ufuncs``: NumPy/SciPy ufuncs are made visible to the hook while it profiles
    (``harness.ufuncs``); off for a ``torch.compile`` form, whose guards on the globals
    it traced would see them replaced and compile again inside the profiled call."""
    from torch.profiler import profile

    sync = _sync(device)
    call()  # warm-up: lazy initialisation is no part of a call
    bodies = function_bodies()
    sync()
    times: list[float] = []
    faults0 = minor_faults()
    spent = 0.0
    while len(times) < 3 or (spent < min_plain_s and len(times) < 50):
        t0 = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - t0)
        spent += times[-1]
    faults = (minor_faults() - faults0) / len(times)
    plain = statistics.median(times)

    best: Breakdown | None = None
    modules = ufunc_modules(user_modules()) if ufuncs else []
    for _ in range(max(1, attempts)):
        # a call preempted on a shared machine (or an OpenMP barrier waiting on a
        # descheduled thread) is profiled again: the call nearest its plain time is kept
        hook = _Hook(bodies)
        visible = visible_ufuncs(modules) if ufuncs else nullcontext()
        with visible, profile(activities=_activities(device)) as prof:
            # the tools' first-call costs fall outside the root: a warm-up call under both
            sys.setprofile(_Hook(bodies))
            try:
                call()
                sync()
            finally:
                sys.setprofile(None)
            root = _RecordFunction(ROOT)
            t0 = time.perf_counter()
            root.__enter__()
            sys.setprofile(hook)
            try:
                call()
                sync()
            finally:
                sys.setprofile(None)
                hook.close()
                root.__exit__(None, None, None)
                raw = time.perf_counter() - t0
        events = _events(prof, hook.spans)
        breakdown = aggregate(events, raw, plain, costs, hook.outside)
        if best is None or breakdown.raw_s < best.raw_s:
            best = breakdown
        if breakdown.raw_s <= 3 * plain + 1e-3:
            break
    assert best is not None
    return CallProfile(best, faults)


_COSTS: Costs | None = None


def calibrate() -> Costs:
    """What the hook, an aten op and an annotation cost under the tools (once per
    process): the overhead ``aggregate`` removes is weighed with these."""
    global _COSTS
    if _COSTS is not None:
        return _COSTS
    from torch.profiler import profile

    n = 2000
    empty: tuple[()] = ()

    def loop() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            len(empty)
        return time.perf_counter() - t0

    plain = min(loop() for _ in range(3))
    hook = _Hook()
    sys.setprofile(hook)
    try:
        traced = min(loop() for _ in range(3))
    finally:
        sys.setprofile(None)
    event_s = max(0.0, (traced - plain) / (2 * n))
    inside = _Hook()
    inside.span_depth = -1  # every event takes the path of one inside an annotation
    sys.setprofile(inside)
    try:
        traced = min(loop() for _ in range(3))
    finally:
        sys.setprofile(None)
    inside_s = max(0.0, (traced - plain) / (2 * n))

    x = torch.zeros(4)
    m = 300

    def ops() -> float:
        t0 = time.perf_counter()
        for _ in range(m):
            x.view(-1)
        return time.perf_counter() - t0

    def spans() -> float:
        t0 = time.perf_counter()
        for _ in range(m):
            r = _RecordFunction("numpy::calibration")
            r.__enter__()
            r.__exit__(None, None, None)
        return time.perf_counter() - t0

    ops_plain = min(ops() for _ in range(3))
    spans_plain = min(spans() for _ in range(3))
    with profile(activities=_activities("cpu")):
        ops_prof = min(ops() for _ in range(2))
        spans_prof = min(spans() for _ in range(2))
    # x.view is two profiled events (aten::view and autograd's record)
    op_s = max(0.0, (ops_prof - ops_plain) / (2 * m))
    span_s = max(0.0, (spans_prof - spans_plain) / m)
    _COSTS = Costs(event_s=event_s, op_s=op_s, span_s=span_s, inside_s=inside_s)
    return _COSTS
