"""The protocol between the runner and its worker processes, typed in one place.

The runner writes a ``Job`` (JSON) and starts ``python -m harness.worker JOB.json``.
The worker appends one JSON line per ``Event`` to its raw file (``raw/*.jsonl``,
flushed and fsynced), and the runner, ``collect`` and ``--resume`` read them back with
``EventLog.read`` or, incrementally, ``EventReader``. Both sides import this module
and nothing else defines an event or a task: no string keys are split apart. Groups,
variants and cases travel as JSON objects (``harness.case``'s ``to_json``: layer,
impl, point as ``[axis, value]`` pairs with each value's type kept, dtype, threads,
device, allocator, phase); their names are for display and pyperf only. The values of
a ``RoundsDone`` are keyed by case name, the pyperf benchmark name, looked up and
never parsed.

Tasks, the units of work a job lists::

    ValidateTask      check one layer's declaration by running it once
    CapabilitiesTask  the capability matrix of one layer's declared implementations
    GradcheckTask     torch.autograd.gradcheck of one baseline
    SetupTask         one variant: build its form (one-off cost), deviation against the
                      float64 reference, peak memory, loop calibration of each phase
    RoundsTask        paired timing of one *group* (every implementation of one grid
                      point, dtype, threads, device and allocator): ``rounds`` rounds,
                      each timing every case of the group once, in a fresh random order
    ProfileTask       after timing: one profiled call per phase of one variant, split
                      into parts (``harness.profile_call``, ``harness.breakdown``)

Events, what a worker reports::

    Started(task)           before a task: if the worker dies or hangs, the runner
                            knows which task did it and writes Crash(task, why)
    Validated / Invalid     a ValidateTask's outcome
    CapabilitiesDone        a CapabilitiesTask's rows
    GradcheckDone           a GradcheckTask's outcome
    SetupDone               a SetupTask's outcome, per phase
    RoundsDone              a RoundsTask's values: seconds per call, per case, one
                            value per round, in round order (paired across cases)
    BreakdownDone           a ProfileTask's parts, per phase
    Crash                   written by the runner: the task a dead or hung worker was on
    Finished                the worker's job is done

Every line carries ``"event": <kind>``; every task carries ``"kind": <kind>``.
``SCHEMA`` is the version of this protocol, written in every ``Job`` and in every
``Finished`` line; a reader refuses events of a kind it does not know. Schema 3 made
identity structured; the raw files of schema 2 (groups, variants and cases as names)
are still read, their names parsed here and nowhere else (``_schema2_*``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias

from harness.case import PHASES, Case, Group, Variant
from harness.points import parse_point

__all__ = [
    "SCHEMA",
    "TIMED_OUT",
    "UPSTREAM_GRADIENT",
    "BreakdownDone",
    "CapabilitiesDone",
    "CapabilitiesTask",
    "Crash",
    "Event",
    "EventLog",
    "EventReader",
    "Finished",
    "GradcheckDone",
    "GradcheckTask",
    "Invalid",
    "Job",
    "PhaseBreakdown",
    "PhaseSetup",
    "ProfileTask",
    "ProtocolError",
    "RoundsDone",
    "RoundsTask",
    "SetupDone",
    "SetupTask",
    "Started",
    "Task",
    "ValidateTask",
    "Validated",
    "event_from_json",
    "event_to_json",
    "read_event_at",
    "task_from_json",
    "task_to_json",
    "written_what",
]

SCHEMA = 3

#: The name a backward row's ``writes`` gives the upstream gradient it was handed
#: (``PhaseSetup.writes``), beside the layer's input names.
UPSTREAM_GRADIENT = "grad_output"
#: How a ``returns`` text (``PhaseSetup.returns``) of a float64 output short of float64's
#: accuracy begins, by cause (``harness.deviation.precision_mismatch`` writes them, the
#: report reads them): cast back from float32, or short of it otherwise (a solver's
#: tolerance).
FLOAT32_ROUNDING = "float64 with float32's rounding"
SHORT_OF_FLOAT64 = "float64 short of float64's accuracy"
#: Why a baseline's backward and step are not set up (``harness.checks.no_backward``
#: writes it, the report reads it): ``backward=False``, or a function of arrays.
NO_BACKWARD = "declared without backward"
FORWARD_ONLY_FORM = "ONNX Runtime sessions run forward only"
FORWARD_ONLY_LAYER = "forward-only layer: no baseline has a backward to compare with"


def no_backward_reason(form: str, declared: bool) -> str:
    """Why an implementation of ``form`` runs no backward (it is not in its layer's
    ``backward``): an ONNX Runtime session; one declared without (``declared``
    false); else its layer's, no baseline of which has a backward."""
    if form == "onnxruntime":
        return FORWARD_ONLY_FORM
    return FORWARD_ONLY_LAYER if declared else NO_BACKWARD


#: How ``returns`` says an output is integer where the reference's is floating
#: (``harness.deviation.integer_output``): wrong, not imprecise.
INTEGER_TRUNCATION = "its values are truncated to integers"


def written_what(names: Sequence[str]) -> str:
    """What a call wrote into, in words (``PhaseSetup.writes``): ``its input 'x'``,
    ``its inputs 'x', 'w'``, ``the upstream gradient it is handed``, joined by "and"."""
    inputs = [n for n in names if n != UPSTREAM_GRADIENT]
    parts = []
    if inputs:
        parts.append(f"its input{'s' if len(inputs) > 1 else ''} {', '.join(map(repr, inputs))}")
    if UPSTREAM_GRADIENT in names:
        parts.append("the upstream gradient it is handed")
    return " and ".join(parts)


Mode = Literal["validate", "setup", "timing", "profile"]


class ProtocolError(ValueError):
    """A line or job that does not follow this protocol."""


# ------------------------------------------------------------------------------ tasks


@dataclass(frozen=True)
class ValidateTask:
    kind: ClassVar[str] = "validate"
    layer: str
    impls: tuple[str, ...]


@dataclass(frozen=True)
class CapabilitiesTask:
    kind: ClassVar[str] = "capabilities"
    layer: str
    impls: tuple[str, ...]
    fixed: tuple[tuple[str, Any], ...] = ()
    """The run's values of the layer's axes other than its size (``Layer.smallest_point``)."""


@dataclass(frozen=True)
class GradcheckTask:
    kind: ClassVar[str] = "gradcheck"
    layer: str
    impl: str
    fixed: tuple[tuple[str, Any], ...] = ()
    """As ``CapabilitiesTask.fixed``."""


@dataclass(frozen=True)
class SetupTask:
    kind: ClassVar[str] = "setup"
    variant: Variant


@dataclass(frozen=True)
class RoundsTask:
    kind: ClassVar[str] = "rounds"
    group: Group
    cases: tuple[tuple[Case, int], ...]
    """(case, calls per value) of every case of the group to time."""
    rounds: int
    batch: int = 0
    """0 for the first pass; adaptive passes count up."""


@dataclass(frozen=True)
class ProfileTask:
    kind: ClassVar[str] = "profile"
    variant: Variant
    phases: tuple[str, ...] = ("step", "forward")
    """The phases to profile, one call each."""


Task: TypeAlias = (
    ValidateTask | CapabilitiesTask | GradcheckTask | SetupTask | RoundsTask | ProfileTask
)
_TASKS: dict[str, type[Any]] = {
    t.kind: t
    for t in (ValidateTask, CapabilitiesTask, GradcheckTask, SetupTask, RoundsTask, ProfileTask)
}


def task_to_json(task: Task) -> dict[str, Any]:
    data: dict[str, Any]
    if isinstance(task, SetupTask):
        data = {"variant": task.variant.to_json()}
    elif isinstance(task, ProfileTask):
        data = {"variant": task.variant.to_json(), "phases": list(task.phases)}
    elif isinstance(task, RoundsTask):
        data = {
            "group": task.group.to_json(),
            "cases": [[case.to_json(), loops] for case, loops in task.cases],
            "rounds": task.rounds,
            "batch": task.batch,
        }
    else:
        data = asdict(task)
    data["kind"] = task.kind
    return data


def task_from_json(data: Mapping[str, Any]) -> Task:
    try:
        cls = _TASKS[data["kind"]]
    except (KeyError, TypeError):
        raise ProtocolError(f"not a task: {data!r}") from None
    kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data}
    if cls in (ValidateTask, CapabilitiesTask):
        kwargs["impls"] = tuple(kwargs.get("impls", ()))
    if cls in (CapabilitiesTask, GradcheckTask):
        kwargs["fixed"] = tuple((str(k), v) for k, v in kwargs.get("fixed", ()))
    if cls is ProfileTask and "phases" in kwargs:
        kwargs["phases"] = tuple(kwargs["phases"])
    try:
        if cls is SetupTask or cls is ProfileTask:
            kwargs["variant"] = _variant(kwargs["variant"])
        if cls is RoundsTask:
            kwargs["group"] = _group(kwargs["group"])
            kwargs["cases"] = tuple((_case(c), int(n)) for c, n in kwargs["cases"])
        return cls(**kwargs)  # type: ignore[no-any-return]
    except (TypeError, ValueError, KeyError) as exc:
        raise ProtocolError(f"bad {data['kind']} task: {exc}") from None


def _group(data: object) -> Group:
    if isinstance(data, str):
        return _schema2_group(data)
    if not isinstance(data, Mapping):
        raise ValueError(f"not a group: {data!r}")
    return Group.from_json(data)


def _variant(data: object) -> Variant:
    if isinstance(data, str):
        return _schema2_case(f"{data}/forward").variant
    if not isinstance(data, Mapping):
        raise ValueError(f"not a variant: {data!r}")
    return Variant.from_json(data)


def _case(data: object) -> Case:
    if isinstance(data, str):
        return _schema2_case(data)
    if not isinstance(data, Mapping):
        raise ValueError(f"not a case: {data!r}")
    return Case.from_json(data)


# Schema 2 wrote names (``layer/point/dtype/tTHREADS/device/allocator`` and the like):
# raw files of older folders are read through these two, and nothing else parses a name.
# A value read back this way is an int if it reads as one, else a float, else text.


def _schema2_group(name: str) -> Group:
    parts = name.split("/")
    if len(parts) != 6:
        raise ValueError(f"not a group name: {name!r}")
    layer, point, dtype, threads, device, allocator = parts
    return Group(
        layer, tuple(parse_point(point).items()), dtype, int(threads[1:]), device, allocator
    )


def _schema2_case(name: str) -> Case:
    parts = name.split("/")
    if len(parts) != 8 or parts[7] not in PHASES:
        raise ValueError(f"not a case name: {name!r}")
    layer, impl, point, dtype, threads, device, allocator, phase = parts
    group = _schema2_group("/".join([layer, point, dtype, threads, device, allocator]))
    return Case(group.variant(impl), phase)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Started:
    kind: ClassVar[str] = "start"
    task: Task
    t: float = 0.0


@dataclass(frozen=True)
class Validated:
    kind: ClassVar[str] = "validated"
    layer: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Invalid:
    kind: ClassVar[str] = "invalid"
    layer: str
    error: str


@dataclass(frozen=True)
class CapabilitiesDone:
    kind: ClassVar[str] = "capabilities"
    layer: str
    rows: tuple[Mapping[str, Any], ...]
    cache: str = ""
    """``hit`` (served from ``harness.cache``), ``miss``, ``damaged`` (an entry that
    failed its checksum, recomputed), or empty when the run does not cache."""


@dataclass(frozen=True)
class GradcheckDone:
    kind: ClassVar[str] = "gradcheck"
    layer: str
    impl: str
    ok: bool | None
    """None: gradcheck could not run as such (``error`` says why, e.g. a dtype change)."""
    error: str = ""
    point: str = ""
    returns: str = ""
    """What the implementation returned for float64 inputs when it was not float64 on
    the inputs' device with the reference's shape (``float32 for float64 input``)."""
    cache: str = ""
    """As ``CapabilitiesDone.cache``."""
    reference_ok: bool | None = None
    """gradcheck of the layer's reference at the same point: a reference that fails it
    (one whose backward assumes a structure of its input, as ``torch.linalg.eigh``'s
    assumes a symmetric matrix)
    cannot judge gradients. None: not run (``reference_error`` says why)."""
    reference_error: str = ""


@dataclass(frozen=True)
class PhaseSetup:
    """One phase of a variant, checked: ``status`` ok / error / unsupported."""

    status: str
    error: str | None = None
    loops: int | None = None
    estimate_s: float | None = None
    deviations: tuple[Mapping[str, Any], ...] = ()
    peak_bytes: int | None = None
    peak_sources: str | None = None
    returns: str | None = None
    """Forward only: how the output differs from what the inputs ask for (dtype,
    device, shape), e.g. ``float32 for float64 input``; None when it does not."""
    minor_faults: float | None = None
    """Minor page faults per call (resource.getrusage around one timed value's calls)."""
    limit_s: float | None = None
    """The setup limit the phase's task ran past (``Crash.limit_s``); None otherwise."""
    writes: tuple[str, ...] = ()
    """Forward: the inputs the call wrote into (through ``tensor.numpy()``, say): the
    caller's tensors change behind autograd's back. Backward: the inputs the graph was
    recorded on, and ``UPSTREAM_GRADIENT``, that the backward wrote into."""
    random: float | None = None
    """Forward only: the largest relative difference between two calls on the same
    inputs, where they differ past the dtype's tolerance (a random layer); else None."""
    alternating_torch_s: float | None = None
    """A baseline's forward at more than one thread: what a call adds to a loop that
    alternates it with a small torch parallel op (``harness.contention``); else None."""
    alternating_numpy_s: float | None = None
    """The same, alternating with that op's work done by NumPy."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhaseSetup:
        """A phase as ``asdict`` wrote it to JSON (lists back to tuples)."""
        return cls(
            **{
                **data,
                "deviations": tuple(data.get("deviations") or ()),
                "writes": tuple(data.get("writes") or ()),
            }
        )


@dataclass(frozen=True)
class SetupDone:
    kind: ClassVar[str] = "setup"
    variant: Variant
    phases: Mapping[str, PhaseSetup]
    oneoff_s: float | None = None
    oneoff_what: str | None = None
    cache: str = ""
    """As ``CapabilitiesDone.cache``: on a hit, the deviations, peak memory, ``returns``,
    one-off cost and loop calibration come from the cache (the form was not built); the
    timing worker checks the calibration in its warm-up round."""


@dataclass(frozen=True)
class RoundsDone:
    kind: ClassVar[str] = "rounds"
    group: Group
    process: int
    batch: int
    values: Mapping[str, tuple[float, ...]]
    """Case name -> seconds per call, one value per round, in round order."""
    loops: Mapping[str, int]
    """Case name -> calls per value."""
    warmups: Mapping[str, float] = field(default_factory=dict)
    """Case name -> seconds per call of the discarded warm-up round."""
    errors: Mapping[str, str] = field(default_factory=dict)
    """Case name -> why it could not be timed in this process."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """What this process ran with (threads, allocator, process index, ...)."""
    faults: Mapping[str, float] = field(default_factory=dict)
    """Case name -> minor page faults per call, the median over this process's rounds
    (resource.getrusage around each value, outside the timed region)."""


@dataclass(frozen=True)
class PhaseBreakdown:
    """One phase of a variant, profiled: ``status`` ok / error / unsupported."""

    status: str
    error: str | None = None
    parts: tuple[Mapping[str, Any], ...] = ()
    """``harness.breakdown.Part`` fields: part, kind, seconds, share, calls, tool."""
    profiled_s: float | None = None
    raw_s: float | None = None
    plain_s: float | None = None
    minor_faults: float | None = None


@dataclass(frozen=True)
class BreakdownDone:
    kind: ClassVar[str] = "breakdown"
    variant: Variant
    phases: Mapping[str, PhaseBreakdown]
    seconds: float = 0.0
    """Wall seconds this variant's profiling took (preparing it included); 0 when it
    came from the cache."""
    cache: str = ""
    """As ``CapabilitiesDone.cache``: on a hit, the parts were profiled by an earlier
    run of the same code, versions, machine capability and variant (nothing profiled or
    timed now)."""


#: How the error of a task that ran past its limit begins (``Crash.timeout``).
TIMED_OUT = "timed out after"


@dataclass(frozen=True)
class Crash:
    kind: ClassVar[str] = "crash"
    task: Task
    error: str
    limit_s: float | None = None
    """The limit a task ran past (``Crash.timeout``); None for a worker that died."""

    @classmethod
    def timeout(cls, task: Task, limit_s: float, what: str) -> Crash:
        """The crash of a task killed after ``limit_s`` seconds (``what`` names it)."""
        return cls(task, f"{TIMED_OUT} {limit_s:.0f}s ({what})", float(limit_s))


@dataclass(frozen=True)
class Finished:
    kind: ClassVar[str] = "done"
    schema: int = SCHEMA


Event: TypeAlias = (
    Started
    | Validated
    | Invalid
    | CapabilitiesDone
    | GradcheckDone
    | SetupDone
    | RoundsDone
    | BreakdownDone
    | Crash
    | Finished
)
_EVENTS: dict[str, type[Any]] = {
    e.kind: e
    for e in (
        Started,
        Validated,
        Invalid,
        CapabilitiesDone,
        GradcheckDone,
        SetupDone,
        RoundsDone,
        BreakdownDone,
        Crash,
        Finished,
    )
}


def event_to_json(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = {"event": event.kind}
    for f in fields(event):  # type: ignore[arg-type]
        value = getattr(event, f.name)
        if f.name == "task":
            value = task_to_json(value)
        elif isinstance(value, Group | Variant):
            value = value.to_json()
        elif isinstance(value, Mapping) and f.name == "phases":
            value = {k: asdict(v) for k, v in value.items()}
        data[f.name] = value
    return data


def event_from_json(data: Mapping[str, Any]) -> Event:
    """The event a JSON object describes; ``ProtocolError`` if it is not one."""
    try:
        cls = _EVENTS[data["event"]]
    except (KeyError, TypeError):
        raise ProtocolError(f"not an event: {str(data)[:200]}") from None
    kwargs: dict[str, Any] = {f.name: data[f.name] for f in fields(cls) if f.name in data}
    try:
        if "task" in kwargs:
            kwargs["task"] = task_from_json(kwargs["task"])
        if cls is SetupDone:
            kwargs["variant"] = _variant(kwargs["variant"])
            kwargs["phases"] = {k: PhaseSetup.from_json(v) for k, v in kwargs["phases"].items()}
        elif cls is BreakdownDone:
            kwargs["variant"] = _variant(kwargs["variant"])
            kwargs["phases"] = {
                k: PhaseBreakdown(**{**v, "parts": tuple(v.get("parts") or ())})
                for k, v in kwargs["phases"].items()
            }
        elif cls is RoundsDone:
            kwargs["group"] = _group(kwargs["group"])
            kwargs["values"] = {k: tuple(float(x) for x in v) for k, v in kwargs["values"].items()}
            kwargs["loops"] = {k: int(v) for k, v in kwargs["loops"].items()}
            kwargs["faults"] = {k: float(v) for k, v in (kwargs.get("faults") or {}).items()}
        elif cls is CapabilitiesDone:
            kwargs["rows"] = tuple(kwargs["rows"])
        elif cls is Crash and "limit_s" not in kwargs:
            kwargs["limit_s"] = _legacy_limit(str(kwargs.get("error", "")))
        elif cls is Validated:
            kwargs["notes"] = tuple(kwargs.get("notes", ()))
        return cls(**kwargs)  # type: ignore[no-any-return]
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise ProtocolError(f"bad {data.get('event')} event: {exc}") from None


def _legacy_limit(error: str) -> float | None:
    """The limit of a crash written before ``Crash.limit_s`` existed (its message
    ``timed out after 60s (...)`` was all it kept), so that older results folders
    resume as they ran; None when the message says no timeout."""
    if not error.startswith(TIMED_OUT):
        return None
    try:
        return float(error[len(TIMED_OUT) :].split("s", 1)[0])
    except ValueError:
        return None


# -------------------------------------------------------------------------------- job


@dataclass(frozen=True)
class Job:
    """What one worker process is asked to do."""

    mode: Mode
    tasks: tuple[Task, ...]
    raw: str
    """The raw event file the worker appends to."""
    process: int = -1
    """Index of this timing process (its pyperf run); -1 outside timing."""
    min_time: float = 0.01
    """Seconds one timed value lasts at least (loop calibration, setup mode)."""
    layers_from: tuple[str, ...] = ()
    seed: int = 0
    memory: bool = True
    """Measure peak memory in the setup pass."""
    phases: tuple[str, ...] = ("forward", "backward", "step")
    """The phases to set up and time (``--use inference`` needs forward alone)."""
    cache_dir: str | None = None
    """The root of ``harness.cache``'s store of checks; None: compute every check."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tasks"] = [task_to_json(t) for t in self.tasks]
        data["schema"] = SCHEMA
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Job:
        if data.get("schema") != SCHEMA:
            raise ProtocolError(
                f"job written for protocol {data.get('schema')}, this worker speaks {SCHEMA}"
            )
        return cls(
            mode=data["mode"],
            tasks=tuple(task_from_json(t) for t in data["tasks"]),
            raw=str(data["raw"]),
            process=int(data.get("process", -1)),
            min_time=float(data.get("min_time", 0.01)),
            layers_from=tuple(data.get("layers_from", ())),
            seed=int(data.get("seed", 0)),
            memory=bool(data.get("memory", True)),
            phases=tuple(data.get("phases") or ("forward", "backward", "step")),
            cache_dir=data.get("cache_dir"),
        )

    def write(self, path: str | os.PathLike[str]) -> None:
        from harness.atomic import atomic_write_json

        atomic_write_json(path, self.to_json())

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Job:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


# --------------------------------------------------------------------------- raw files


class EventLog:
    """Append-only JSON lines, each flushed and fsynced as written."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the process

    def write(self, event: Event) -> None:
        self._fh.write(json.dumps(event_to_json(event), default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    @staticmethod
    def read(path: str | os.PathLike[str]) -> list[Event]:
        """Every event of a file; a torn last line (a kill mid-write) is ignored."""
        return list(EventReader(path).poll())


class EventReader:
    """Reads a raw file incrementally: each ``poll`` returns only the events appended
    since the last one, so following a run costs time in proportion to what is new."""

    CHUNK = 1 << 20

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.offset = 0
        self._buffer = b""

    def poll(self) -> Iterator[Event]:
        for _, event in self.poll_located():
            yield event

    def poll_located(self) -> Iterator[tuple[int, Event]]:
        """Like ``poll``, with the byte offset at which each event's line starts (to
        read it again later with ``read_event_at``)."""
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below, after the last chunk
        except FileNotFoundError:
            return
        with fh:
            fh.seek(self.offset)
            # a bounded chunk at a time: reading a large file back costs no more memory
            while chunk := fh.read(self.CHUNK):
                start = self.offset - len(self._buffer)
                self.offset += len(chunk)
                self._buffer += chunk
                *lines, self._buffer = self._buffer.split(b"\n")
                for line in lines:
                    at = start
                    start += len(line) + 1
                    if not line.strip():
                        continue
                    try:
                        data = json.loads(line)
                    except ValueError:
                        continue  # a line torn by a kill, followed by a restart's lines
                    yield at, event_from_json(data)


def read_event_at(path: str | os.PathLike[str], offset: int) -> Event:
    """The event whose line starts at ``offset`` of a raw file (from ``poll_located``)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        line = fh.readline()
    try:
        return event_from_json(json.loads(line))
    except ValueError as exc:
        raise ProtocolError(f"{path}: no event at byte {offset}: {exc}") from None


def read_all(paths: Sequence[str | os.PathLike[str]]) -> Iterator[tuple[Path, Event]]:
    for path in paths:
        for event in EventLog.read(path):
            yield Path(path), event
