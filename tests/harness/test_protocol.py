"""The worker protocol: typed tasks and events round-trip through JSON lines; groups,
variants and cases travel as data, and schema-2 lines (names) are still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.case import Case, Group, Variant
from harness.protocol import (
    CapabilitiesDone,
    CapabilitiesTask,
    Crash,
    EventLog,
    EventReader,
    Finished,
    GradcheckDone,
    GradcheckTask,
    Invalid,
    Job,
    PhaseSetup,
    ProtocolError,
    RoundsDone,
    RoundsTask,
    SetupDone,
    SetupTask,
    Started,
    Validated,
    ValidateTask,
    event_from_json,
    event_to_json,
    read_event_at,
)

GROUP = Group("fft", (("n", 8),))
VARIANT = GROUP.variant("numpy")
CASE = VARIANT.case("forward")
# values a name could not carry: separators, and a digit-only string beside a number
ODD = Group(
    "odd", (("path", "a/b"), ("list", "1,2"), ("eq", "x=y"), ("s", "3"), ("i", 3), ("f", 3.0))
)

EVENTS = [
    Started(RoundsTask(GROUP, ((CASE, 4),), rounds=3, batch=1), t=1.5),
    Started(RoundsTask(ODD, ((ODD.variant("torch").case("step"), 2),), rounds=1)),
    Started(ValidateTask("fft", ("numpy", "torch"))),
    Validated("fft", ("a note",)),
    Invalid("fft", "declares no baseline"),
    CapabilitiesDone("fft", ({"layer": "fft", "impl": "numpy", "check": "trace"},)),
    GradcheckDone("fft", "numpy", False, "Jacobian mismatch", "n=8"),
    SetupDone(
        VARIANT,
        {
            "forward": PhaseSetup(
                "ok",
                loops=10,
                estimate_s=1e-5,
                deviations=(
                    {
                        "tensor": "output",
                        "max_abs_err": 0.0,
                        "max_rel_err": 0.0,
                        "within_tol": True,
                    },
                ),
                peak_bytes=1024,
                peak_sources="numpy",
            ),
            "backward": PhaseSetup("unsupported", error="declared without backward"),
        },
        oneoff_s=0.5,
        oneoff_what="compile",
    ),
    RoundsDone(
        GROUP,
        3,
        1,
        {CASE.name: (1e-5, 2e-5)},
        {CASE.name: 4},
        {CASE.name: 3e-5},
        {},
        {"threads": 1},
    ),
    SetupDone(ODD.variant("scipy"), {"forward": PhaseSetup("ok", loops=1)}),
    Crash(SetupTask(VARIANT), "worker crashed (exit code 7)"),
    Crash(GradcheckTask("fft", "numpy"), "timed out"),
    Started(CapabilitiesTask("fft", ("numpy",))),
    Finished(),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_round_trips_through_json(event: object) -> None:
    data = json.loads(json.dumps(event_to_json(event)))  # type: ignore[arg-type]
    assert event_from_json(data) == event


def test_unknown_events_and_tasks_are_refused() -> None:
    with pytest.raises(ProtocolError, match="not an event"):
        event_from_json({"event": "bench"})
    with pytest.raises(ProtocolError, match="not a task"):
        event_from_json({"event": "start", "task": {"kind": "nope"}})


def test_job_round_trip_and_schema(tmp_path: Path) -> None:
    job = Job("timing", (RoundsTask(GROUP, ((CASE, 4),), 3),), str(tmp_path / "raw.jsonl"), 2)
    job.write(tmp_path / "job.json")
    assert Job.read(tmp_path / "job.json") == job
    # the checks' fixed axis values (tuples of pairs) come back as written
    from harness.protocol import CapabilitiesTask, GradcheckTask

    checks = (GradcheckTask("lay", "numpy", (("v", 1),)), CapabilitiesTask("lay", ("numpy",)))
    setup = Job("setup", checks, str(tmp_path / "raw.jsonl"), 0)
    setup.write(tmp_path / "setup.json")
    assert Job.read(tmp_path / "setup.json") == setup
    data = job.to_json()
    data["schema"] = 99
    with pytest.raises(ProtocolError, match="protocol 99"):
        Job.from_json(data)


def test_event_reader_is_incremental_and_survives_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "raw.jsonl"
    log = EventLog(path)
    reader = EventReader(path)
    assert list(reader.poll()) == []
    log.write(EVENTS[0])
    assert list(reader.poll()) == [EVENTS[0]]
    assert list(reader.poll()) == []  # nothing new
    with open(path, "a") as fh:  # a worker killed mid-write, then a restart appends
        fh.write('{"event": "val')
    assert list(reader.poll()) == []
    with open(path, "a") as fh:
        fh.write("\n")
    log.write(EVENTS[-1])
    assert list(reader.poll()) == [EVENTS[-1]]
    assert EventLog.read(path) == [EVENTS[0], EVENTS[-1]]


def test_event_reader_gives_offsets_to_read_each_event_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "raw.jsonl"
    log = EventLog(path)
    for event in EVENTS:
        log.write(event)
    monkeypatch.setattr(EventReader, "CHUNK", 7)  # lines split across many reads
    located = list(EventReader(path).poll_located())
    assert [e for _, e in located] == list(EVENTS)
    for offset, event in located:
        assert read_event_at(path, offset) == event
    with pytest.raises(ProtocolError):
        read_event_at(path, located[1][0] + 3)  # not the start of a line


def test_identity_travels_as_objects_whose_values_keep_their_type() -> None:
    case = ODD.variant("torch").case("backward")
    task = RoundsTask(ODD, ((case, 2),), 3)
    data = json.loads(json.dumps(event_to_json(Started(task))))["task"]
    assert data["group"] == {
        "layer": "odd",
        "point": [
            ["path", "a/b"],
            ["list", "1,2"],
            ["eq", "x=y"],
            ["s", "3"],
            ["i", 3],
            ["f", 3.0],
        ],
        "dtype": "float32",
        "threads": 1,
        "device": "cpu",
        "allocator": "glibc",
    }
    assert data["cases"][0][0] == {**data["group"], "impl": "torch", "phase": "backward"}
    back = event_from_json({"event": "start", "task": data})
    assert isinstance(back, Started) and isinstance(back.task, RoundsTask)
    point = back.task.group.point
    assert point == ODD.point
    assert [type(v) for _, v in point] == [str, str, str, str, int, float]
    assert back.task.cases[0][0] == case
    assert Case.from_json(case.to_json()) == case
    assert Variant.from_json(case.variant.to_json()) == case.variant


@pytest.mark.parametrize(
    "bad",
    [
        {"point": "n=8"},
        {"point": [["n"]]},
        {"point": [[1, 8]]},
        {"point": [["n", [8]]]},
        {"point": [["n", True]]},
        {"threads": "1"},
        {"layer": None},
        {"phase": "both"},
    ],
)
def test_a_malformed_identity_is_a_protocol_error(bad: dict[str, object]) -> None:
    task = json.loads(json.dumps(event_to_json(EVENTS[0])))["task"]
    task["cases"][0][0].update(bad)
    task["group"] = task["cases"][0][0]
    with pytest.raises(ProtocolError, match="bad rounds task"):
        event_from_json({"event": "start", "task": task})


def test_schema_2_lines_with_names_are_still_read() -> None:
    # what a worker of protocol 2 wrote into raw/*.jsonl
    lines = [
        {
            "event": "start",
            "task": {
                "kind": "rounds",
                "group": "fft/n=8/float32/t1/cpu/glibc",
                "cases": [["fft/numpy/n=8/float32/t1/cpu/glibc/forward", 4]],
                "rounds": 3,
                "batch": 1,
            },
            "t": 1.5,
        },
        {
            "event": "rounds",
            "group": "fft/n=8/float32/t1/cpu/glibc",
            "process": 3,
            "batch": 1,
            "values": {CASE.name: [1e-5, 2e-5]},
            "loops": {CASE.name: 4},
            "warmups": {CASE.name: 3e-5},
            "errors": {},
            "metadata": {"threads": 1},
        },
        {
            "event": "setup",
            "variant": "fft/numpy/n=8/float32/t1/cpu/glibc",
            "phases": {"forward": {"status": "ok", "loops": 10}},
        },
        {"event": "crash", "task": {"kind": "setup", "variant": VARIANT.name}, "error": "x"},
        {"event": "done", "schema": 2},
    ]
    assert [event_from_json(line) for line in lines] == [
        EVENTS[0],
        EVENTS[8],
        SetupDone(VARIANT, {"forward": PhaseSetup("ok", loops=10)}),
        Crash(SetupTask(VARIANT), "x"),
        Finished(schema=2),
    ]
    with pytest.raises(ProtocolError, match="not a group name"):
        event_from_json({**lines[1], "group": "fft/n=8"})


def test_a_crash_carries_the_limit_it_ran_past_and_older_folders_still_say_it() -> None:
    from harness.protocol import Crash, GradcheckTask, event_from_json

    task = GradcheckTask("toy", "numpy")
    crash = Crash.timeout(task, 60, "gradcheck toy/numpy")
    assert crash.limit_s == 60 and crash.error == "timed out after 60s (gradcheck toy/numpy)"
    data = json.loads(json.dumps(event_to_json(crash)))
    assert event_from_json(data) == crash
    # a crash written before limit_s existed (schema 3 without the field)
    del data["limit_s"]
    assert event_from_json(data) == crash
    died = {**data, "error": "worker killed by signal 11"}
    assert event_from_json(died).limit_s is None  # type: ignore[union-attr]
