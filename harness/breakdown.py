"""Where the time of one call goes: profiler events folded into named parts. Pure.

A profiled call (``harness.profile_call`` records it in a worker, after timing and never
inside a timed region) is a tree of events: torch.profiler's aten ops and record
functions, the device kernels on CUDA, and the annotations the Python tracer put
around each outermost NumPy/SciPy call (``numpy::scipy.signal.correlate2d``) and each
bridge call (``bridge::torch.Tensor.numpy``), all under one root, ``harness::call``.
``aggregate`` splits the call's wall time into *parts*, each of one *kind*:

======== ===================================================== =======================
kind     what                                                  measured by
======== ===================================================== =======================
numpy    a NumPy or SciPy function, inclusive of what it calls  sys.setprofile
bridge   tensor to ndarray and back, copies, dtype casts,       sys.setprofile
         ``.contiguous()``, ``input.new(...)``
python   autograd Function dispatch, ctx, the Python between    torch.profiler (the rest
         calls (the call's time outside every other part)       of the call)
code     the layer's own code: the body of its autograd         sys.setprofile
         Function's forward or backward outside every call the
         tools see (NumPy written as operators, ``a * b`` or
         ``a[idx]``, which makes no call; Python loops; compiled
         code they cannot see into: numba, Cython, a C extension)
kernel   an aten op (its self time) or a device kernel;         torch.profiler;
         an ONNX Runtime session's run, inclusive               sys.setprofile
other    the autograd engine's own work on native nodes, CUDA   torch.profiler
         runtime calls, the rest
======== ===================================================== =======================

Every event's *self* time (its duration less its children's) goes to one part: the
outermost NumPy/bridge annotation above it if there is one (so an aten copy inside
``Tensor.new`` is bridge), else its own. An autograd Function's forward and backward
are annotated too (``code::SoftDTW.forward``), but own only their self time: the NumPy,
bridge and aten calls inside them keep their parts. Without that annotation the body's
time fell to the Function's record function, *autograd Function dispatch*, and a
baseline whose work runs in numba read as 90% Python overhead (2026-11-30, the public
soft-DTW layer). The waiting of ``cudaDeviceSynchronize`` is
given to the device kernels that ran, in proportion to their device time.

**The tools' own cost is removed.** Tracing costs a little per Python event, per aten
op and per annotation (``Costs``, calibrated in the worker): each part loses what the
events counted in it cost. The profiled call took ``raw_s``; the parts sum to
``profiled_s`` (``overhead_s`` is what was removed); the same call without the tools
took ``plain_s``. Nothing is scaled to make them agree: the report states how far
``profiled_s`` lies from ``plain_s`` and from the timed median of results.csv
(``reconcile``). Shares of one case sum to 1.

NumPy work reached through an operator or a ufunc (``a * b``, ``np.negative(a)``)
makes no call the profile hook sees: it counts as the Python of the function that
ran it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "KINDS",
    "ROOT",
    "Breakdown",
    "Costs",
    "Part",
    "ProfEvent",
    "aggregate",
    "bridge_name",
    "code_name",
    "kernel_name",
    "kind_shares",
    "numpy_name",
    "reconcile",
    "runtime_name",
]

KINDS = ("numpy", "bridge", "python", "code", "kernel", "other")

#: The annotation around the whole profiled call.
ROOT = "harness::call"
_NUMPY = "numpy::"
_BRIDGE = "bridge::"
_KERNEL = "kernel::"
_CODE = "code::"
_RUNTIME = "python::"
_ANNOTATED = {_NUMPY: "numpy", _BRIDGE: "bridge", _KERNEL: "kernel", _RUNTIME: "python"}
_PYTHON_REST = "Python between calls"
_DISPATCH = "autograd Function dispatch"
_ENGINE = "autograd engine"
_SYNC = frozenset({"cudaDeviceSynchronize", "cudaStreamSynchronize", "cudaEventSynchronize"})
_NATIVE_NODE = re.compile(r"Backward\d+$")

TOOL_TRACE = "sys.setprofile"
TOOL_PROFILER = "torch.profiler"
TOOL_REST = "torch.profiler (rest of the call)"
TOOL_DEVICE = "torch.profiler (CUDA)"


def numpy_name(name: str) -> str:
    """The annotation of an outermost NumPy/SciPy call."""
    return _NUMPY + name


def bridge_name(name: str) -> str:
    """The annotation of an outermost bridge call (conversion, copy, cast)."""
    return _BRIDGE + name


def code_name(name: str) -> str:
    """The annotation of an autograd Function's forward or backward body (its
    qualified name, ``SoftDTW.forward``)."""
    return _CODE + name


def runtime_name(name: str) -> str:
    """The annotation of an outermost call into the Python runtime that costs in its
    own right (``gc.collect``, ``time.sleep``): kind ``python``, named."""
    return _RUNTIME + name


def kernel_name(name: str) -> str:
    """The annotation of an outermost call into a native runtime torch.profiler does
    not see (an ONNX Runtime session's ``run``)."""
    return _KERNEL + name


@dataclass(frozen=True)
class ProfEvent:
    """One event of a profiled call's tree, as torch.profiler's ``FunctionEvent`` has
    it (tests craft them)."""

    id: int
    name: str
    start_us: float
    end_us: float
    parent: int | None = None
    device: bool = False
    """A kernel timed on the device (CUDA): not part of the CPU tree's times."""
    traced: int = 0
    """Python profile events counted inside this annotation: all of them in a
    NumPy/bridge one (the hook only counts them); in a Function body's (``code::``),
    those outside its NumPy/bridge calls (the hook looks at each)."""

    @property
    def duration_us(self) -> float:
        return max(0.0, self.end_us - self.start_us)


@dataclass(frozen=True)
class Costs:
    """What the tools add, calibrated per worker (seconds)."""

    event_s: float = 0.0
    """One Python profile event (a call or a return) outside any annotation: the hook
    looks at what is called."""
    inside_s: float = 0.0
    """One Python profile event inside an annotation: the hook only counts it."""
    op_s: float = 0.0
    """One aten op or record function under torch.profiler."""
    span_s: float = 0.0
    """One annotation put around a NumPy/bridge call."""


@dataclass(frozen=True)
class Part:
    part: str
    kind: str
    seconds: float
    share: float
    calls: int
    tool: str


@dataclass(frozen=True)
class Breakdown:
    """One profiled call, split into parts (largest first)."""

    parts: tuple[Part, ...]
    profiled_s: float
    """Sum of the parts: the call's time with the tools' overhead removed."""
    raw_s: float
    """The call's wall time under the tools."""
    plain_s: float | None = None
    """The same call's wall time without the tools (median of a few calls); not used to
    scale the parts, only stated beside them."""

    @property
    def overhead_s(self) -> float:
        return self.raw_s - self.profiled_s

    def by_kind(self) -> dict[str, float]:
        out = dict.fromkeys(KINDS, 0.0)
        for p in self.parts:
            out[p.kind] += p.share
        return out


def _classify(name: str) -> tuple[str, str, str]:
    """(kind, part, tool) of an event's self time when no annotation owns it."""
    if name == ROOT:
        return "python", _PYTHON_REST, TOOL_REST
    if name.startswith("autograd::engine::evaluate_function: "):
        node = name.split(": ", 1)[1]
        if node.endswith("Backward") and not _NATIVE_NODE.search(node):
            return "python", _DISPATCH, TOOL_PROFILER  # a custom Function's backward
        return "other", _ENGINE, TOOL_PROFILER
    if _NATIVE_NODE.search(name) or name.startswith("torch::autograd::"):
        return "other", _ENGINE, TOOL_PROFILER
    if "::" in name:
        return "kernel", name, TOOL_PROFILER
    if name.startswith("cuda") or name.startswith("cu"):
        return "other", name, TOOL_PROFILER
    if name[:1].isupper():
        # record functions named after a class: a custom autograd Function's apply
        return "python", _DISPATCH, TOOL_PROFILER
    return "kernel", name, TOOL_PROFILER  # autograd's view kernels ('detach', 'alias')


@dataclass
class _Tally:
    """Per part (``(kind, part)``): seconds of self time, calls, the tool that measured
    it, and the tools' estimated cost inside it (``weight``, removed at the end)."""

    seconds: dict[tuple[str, str], float] = field(default_factory=dict)
    calls: dict[tuple[str, str], int] = field(default_factory=dict)
    tools: dict[tuple[str, str], str] = field(default_factory=dict)
    weight: dict[tuple[str, str], float] = field(default_factory=dict)

    def add(self, key: tuple[str, str], tool: str, s: float, n: int, w: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + s
        self.calls[key] = self.calls.get(key, 0) + n
        self.tools.setdefault(key, tool)
        self.weight[key] = self.weight.get(key, 0.0) + w


def aggregate(
    events: Sequence[ProfEvent],
    raw_s: float | None = None,
    plain_s: float | None = None,
    costs: Costs | None = None,
    outside_traced: int = 0,
) -> Breakdown:
    """Split one profiled call into parts.

    ``events`` is the call's event tree (``parent`` ids); ``raw_s`` the call's wall
    time under the tools (default: the root's duration); ``plain_s`` its time
    without them, to which the tools' overhead is removed (``costs`` weigh where it
    went; ``outside_traced`` counts the Python profile events outside any
    annotation, whose cost falls on the Python parts)."""
    children = _children(events)
    device = [e for e in events if e.device]
    c = costs or Costs()
    tally = _Tally()
    sync_s = _walk(children, bool(device), c, tally)
    _spread_sync(device, sync_s, tally)
    roots = [e for e in children.get(None, []) if not e.device]
    tree_s = sum(e.duration_us for e in roots) / 1e6
    raw = tree_s if raw_s is None else float(raw_s)
    if raw > tree_s:  # the call's time outside every event: Python
        tally.add(("python", _PYTHON_REST), TOOL_REST, raw - tree_s, 0, 0.0)
    _charge_python(tally, outside_traced, c.event_s)
    parts, total = _parts(tally, costs is not None)
    return Breakdown(parts, total, raw, plain_s)


def _children(events: Sequence[ProfEvent]) -> dict[int | None, list[ProfEvent]]:
    """Each event's children by parent id; under None the roots (events whose parent
    is not in the tree) and every device kernel (timed apart from the CPU tree)."""
    by_id = {e.id: e for e in events}
    children: dict[int | None, list[ProfEvent]] = {}
    for e in events:
        parent = e.parent if e.parent in by_id else None
        children.setdefault(None if e.device else parent, []).append(e)
    return children


def _walk(
    children: Mapping[int | None, list[ProfEvent]], has_device: bool, c: Costs, tally: _Tally
) -> float:
    """Give each CPU event's self time to its part (``tally``): the outermost
    NumPy/bridge/kernel annotation above it, else its own (``_classify``); a Function
    body's annotation (``code::``) takes its self time only. Returns the
    time spent waiting for the device (synchronize calls, when device kernels ran),
    which ``_spread_sync`` hands on to the kernels."""
    sync_s = 0.0
    # iterative walk: (event, owner) where owner is the annotation's (kind, part)
    stack: list[tuple[ProfEvent, tuple[str, str] | None]] = [
        (e, None) for e in children.get(None, []) if not e.device
    ]
    while stack:
        event, owner = stack.pop()
        kids = [k for k in children.get(event.id, []) if not k.device]
        self_s = max(0.0, event.duration_us - sum(k.duration_us for k in kids)) / 1e6
        prefix = event.name.split("::", 1)[0] + "::" if "::" in event.name else ""
        if owner is None and prefix == _CODE:
            # the Function body's own time; what it calls keeps its own parts
            body = ("code", event.name.split("::", 1)[1])
            tally.add(body, TOOL_TRACE, self_s, 1, event.traced * c.event_s + c.span_s)
        elif owner is None and prefix in _ANNOTATED:
            kind = _ANNOTATED[prefix]
            owner = (kind, event.name.split("::", 1)[1])
            tally.add(owner, TOOL_TRACE, self_s, 1, event.traced * c.inside_s + c.span_s)
        elif owner is not None:
            tally.add(owner, TOOL_TRACE, self_s, 0, c.op_s)
        elif event.name in _SYNC and has_device:
            sync_s += self_s
            tally.add(("other", event.name), TOOL_PROFILER, 0.0, 1, 0.0)
        else:
            kind, part, tool = _classify(event.name)
            is_op = event.name != ROOT
            tally.add((kind, part), tool, self_s, 1 if is_op else 0, c.op_s if is_op else 0.0)
        stack.extend((k, owner) for k in kids)
    return sync_s


def _spread_sync(device: Sequence[ProfEvent], sync_s: float, tally: _Tally) -> None:
    """Waiting for the device goes to the kernels that ran, by their device time (the
    CPU only waited on them); to ``other`` when none has a measurable time."""
    device_total = sum(e.duration_us for e in device)
    for e in device:
        s = sync_s * e.duration_us / device_total if device_total > 0 else 0.0
        tally.add(("kernel", e.name), TOOL_DEVICE, s, 1, 0.0)
    if device and device_total <= 0 and sync_s:
        tally.add(("other", "cudaDeviceSynchronize"), TOOL_PROFILER, sync_s, 0, 0.0)


def _charge_python(tally: _Tally, events: int, event_s: float) -> None:
    """The tracer's cost of the Python profile events outside any annotation
    (``events`` of ``event_s`` each) falls on the Python parts, by their time (evenly
    when they have none)."""
    python_keys = [k for k in tally.seconds if k[0] == "python"]
    python_s = sum(tally.seconds[k] for k in python_keys)
    for k in python_keys:
        share = tally.seconds[k] / python_s if python_s > 0 else 1 / len(python_keys)
        tally.weight[k] += share * events * event_s


def _parts(tally: _Tally, correct: bool) -> tuple[tuple[Part, ...], float]:
    """(parts largest first, their sum): each part's seconds less the tools' cost in it
    when ``correct``, clipped at 0; shares of the sum, even when nothing was measurable,
    so that they sum to 1. A clipped part keeps its calls: the report reads a part of 0
    seconds and many calls as calls too short to time (``report.breakdown._too_short``)."""
    seconds = tally.seconds
    corrected = {k: v - tally.weight[k] for k, v in seconds.items()} if correct else seconds
    corrected = {k: max(0.0, v) for k, v in corrected.items()}
    total = sum(corrected.values())
    parts = [
        Part(
            part=k[1],
            kind=k[0],
            seconds=v,
            share=v / total if total > 0 else 0.0,
            calls=tally.calls[k],
            tool=tally.tools[k],
        )
        for k, v in corrected.items()
    ]
    if total <= 0 and parts:  # nothing measurable: an even split keeps shares summing to 1
        parts = [Part(p.part, p.kind, 0.0, 1 / len(parts), p.calls, p.tool) for p in parts]
    parts.sort(key=lambda p: (-p.seconds, p.kind, p.part))
    return tuple(parts), total


def reconcile(profiled_s: float | None, timed_s: float | None) -> float | None:
    """How far the profiled call lies from the timed median: profiled / timed - 1
    (None where either is unknown)."""
    if not profiled_s or not timed_s or timed_s <= 0:
        return None
    return float(profiled_s) / float(timed_s) - 1.0


def kind_shares(rows: Iterable[Mapping[str, object]]) -> dict[str, float]:
    """Share per kind of one case's rows (``kind``, ``share``)."""
    out = dict.fromkeys(KINDS, 0.0)
    for row in rows:
        kind = str(row.get("kind"))
        share = row.get("share")
        if kind in out and isinstance(share, int | float):
            out[kind] += float(share)
    return out
