"""The worker protocol: typed tasks and events round-trip through JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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

GROUP = "fft/n=8/float32/t1/cpu/glibc"
CASE = "fft/numpy/n=8/float32/t1/cpu/glibc/forward"

EVENTS = [
    Started(RoundsTask(GROUP, ((CASE, 4),), rounds=3, batch=1), t=1.5),
    Started(ValidateTask("fft", ("numpy", "torch"))),
    Validated("fft", ("a note",)),
    Invalid("fft", "declares no baseline"),
    CapabilitiesDone("fft", ({"layer": "fft", "impl": "numpy", "check": "trace"},)),
    GradcheckDone("fft", "numpy", False, "Jacobian mismatch", "n=8"),
    SetupDone(
        "fft/numpy/n=8/float32/t1/cpu/glibc",
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
    RoundsDone(GROUP, 3, 1, {CASE: (1e-5, 2e-5)}, {CASE: 4}, {CASE: 3e-5}, {}, {"threads": 1}),
    Crash(SetupTask("fft/numpy/n=8/float32/t1/cpu/glibc"), "worker crashed (exit code 7)"),
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
