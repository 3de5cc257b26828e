"""Faults a results folder meets (issue 18): a full disk during a run (defect 5), and
repairs from raw/ said, not silent, and blamed on the right file (defect 11).

The full disk is faked without root: ``os.fsync`` fails with ENOSPC, as a full disk
makes it fail, for the files a test picks. Runs drive the command line in-process with
the worker processes left out (``Runner.validate`` and ``Runner._passes`` replaced):
they write a results folder as a run does, with nothing measured. One slow test makes
a real, tiny run to rebuild from its raw events.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.cli import main
from harness.errors import ResultsError
from harness.frame import CAPABILITY_COLUMNS, DEVIATION_COLUMNS, build_frame, build_table
from harness.lifetime import INDUCTOR_CACHE
from harness.results import (
    MANIFEST_JSON,
    ResultsWriter,
    atomic_write_bytes,
    atomic_write_json,
    damaged_file,
    load_results,
    versioned,
    write_results,
)
from harness.runner import Runner

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="the fake full disk names files by /proc/self/fd"
)

#: The tiniest run: one layer, its baseline and torch, one size, the quick profile.
TINY = [
    "--layers", "fft", "--impls", "numpy,torch", "--grid", "n=8", "--profile", "quick",
    "--threads", "1", "--no-capabilities", "--no-memory", "--breakdown", "none",
]  # fmt: skip
NO_SPACE = os.strerror(errno.ENOSPC)


class FullDisk:
    """Once ``fill`` is called, ``os.fsync`` fails with ENOSPC for every file whose name
    ``hit`` picks (a temporary ``.results.csv.x1y2.tmp`` is picked by its name), as a
    full disk fails it; ``free`` ends it."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, hit: Callable[[str], bool] = lambda name: True
    ) -> None:
        self.full = False
        real = os.fsync

        def fsync(fd: int) -> None:
            name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
            if self.full and hit(name):
                raise OSError(errno.ENOSPC, NO_SPACE)
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)

    def fill(self) -> None:
        self.full = True

    def free(self) -> None:
        self.full = False


def no_workers(
    monkeypatch: pytest.MonkeyPatch, passes: Callable[[Runner], None] = lambda runner: None
) -> None:
    """Runs start no worker: declarations are taken as valid, and the passes are
    ``passes`` (by default nothing is measured)."""
    monkeypatch.setattr(Runner, "validate", lambda self: [])
    monkeypatch.setattr(Runner, "_passes", passes)


def _stderr_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


# -- defect 5: a full disk -----------------------------------------------------------


def test_a_full_disk_is_one_line_and_the_folder_is_marked_incomplete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    disk = FullDisk(monkeypatch)

    def passes(runner: Runner) -> None:
        runner._write_outputs()  # the tables are written once, then the disk fills
        disk.fill()

    no_workers(monkeypatch, passes)
    code = main(["run", *TINY, "--out", str(out), "--no-report", "-q"])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err
    assert len(lines) == 1, err
    head, sep, tail = lines[0].partition("; what was measured is in ")
    assert sep and head.startswith(f"error: no space left on device writing {out}/")
    # it names the file it cut (not "DIR/…", nor a temporary)
    cut = Path(head.removeprefix("error: no space left on device writing "))
    assert cut.parent == out and cut.is_file() and not cut.name.startswith(".")
    assert tail == f"{out / 'raw'}; free space and run `python -m harness run --resume {out}`"
    run = json.loads((out / "run.json").read_text())
    assert run["complete"] is False
    assert not list(out.glob(".*.tmp")), "a cut write left its temporary behind"

    # once there is space again, report and compare say the run was cut
    disk.free()
    assert main(["report", str(out)]) == 0
    assert "**Incomplete run**" in (out / "report.md").read_text()
    capsys.readouterr()
    assert main(["compare", str(out), str(out)]) == 0
    captured = capsys.readouterr()
    assert any(
        line.startswith("note: base: the run is incomplete") for line in captured.err.splitlines()
    )
    assert "new: the run is incomplete" in captured.out


def test_a_full_disk_says_why_in_run_json_where_that_still_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the large write fails, the small run.json still fits: its "stopped" says why
    out = tmp_path / "run"
    disk = FullDisk(monkeypatch, hit=lambda name: name.startswith(".results.csv."))

    def passes(runner: Runner) -> None:
        runner._write_outputs()
        disk.fill()

    no_workers(monkeypatch, passes)
    assert main(["run", *TINY, "--out", str(out), "--no-report", "-q"]) == 2
    line = _stderr_lines(capsys)[-1]
    assert line.startswith(f"error: no space left on device writing {out / 'results.csv'};")
    run = json.loads((out / "run.json").read_text())
    assert run["complete"] is False
    assert run["stopped"] == f"no space left on device writing {out / 'results.csv'}"
    assert main(["report", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert f"**Incomplete run**: no space left on device writing {out / 'results.csv'}" in report


def test_a_disk_full_before_anything_is_written_says_nothing_was_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    FullDisk(monkeypatch).fill()
    no_workers(monkeypatch)
    assert main(["run", *TINY, "--out", str(out), "--no-report", "-q"]) == 2
    lines = _stderr_lines(capsys)
    assert lines == [
        f"error: no space left on device writing {out / 'run.json'}; nothing was measured; "
        "free space and run again"
    ]


def test_an_atomic_write_cut_by_a_full_disk_names_the_file_and_leaves_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.json"
    path.write_text("old")
    FullDisk(monkeypatch).fill()
    with pytest.raises(OSError) as err:
        atomic_write_bytes(path, b"new")
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
    # the tables' streamed writer too: named by the table, not by its temporary
    writer = ResultsWriter(tmp_path, axes=("n",))
    with pytest.raises(OSError) as err:
        writer.finish(build_table([], CAPABILITY_COLUMNS))
    assert err.value.filename == str(tmp_path / "results.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_an_interrupted_run_says_why_it_is_incomplete_and_a_whole_one_is_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(runner: Runner) -> None:
        raise KeyboardInterrupt

    no_workers(monkeypatch, interrupted)
    out = tmp_path / "run"
    assert main(["run", *TINY, "--out", str(out), "--no-report", "-q"]) == 130
    run = json.loads((out / "run.json").read_text())
    assert run["complete"] is False
    assert run["stopped"] == "it was interrupted (Ctrl-C or SIGTERM)"
    no_workers(monkeypatch)
    assert main(["run", "--resume", str(out), "--no-report", "-q"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["complete"] is True and "stopped" not in run


def test_a_full_disk_while_the_report_is_written_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = craft(tmp_path / "run")
    FullDisk(monkeypatch).fill()
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"error: {folder}: cannot write the report: ")
    assert NO_SPACE in lines[0] and f"{folder}/" in lines[0].partition("report: ")[2]


# -- defect 4: what a killed run leaves, and where the compile cache lives -------------


def test_resume_removes_what_a_killed_run_left_and_the_compile_cache_stays_in_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    seen: list[dict[str, str]] = []

    def passes(runner: Runner) -> None:  # what a worker would be started with
        seen.append(runner.supervisor.cache_env())

    no_workers(monkeypatch, passes)
    assert main(["run", *TINY, "--no-cache", "--out", str(out), "--no-report", "-q"]) == 0
    # torch's compile cache of a --no-cache run is in its folder (not harness-inductor-*
    # in the system's temporary folder, which a killed run used to leave), gone at exit
    assert seen[0]["TORCHINDUCTOR_CACHE_DIR"] == str(out / INDUCTOR_CACHE)
    assert not (out / INDUCTOR_CACHE).exists()
    # as a kill during a write and during compiling leaves them
    (out / ".results.csv.x1y2.tmp").write_text("half")
    (out / INDUCTOR_CACHE / "kernels").mkdir(parents=True)
    assert main(["run", "--resume", str(out), "--no-report", "-q"]) == 0
    assert not list(out.glob(".*.tmp")) and not (out / INDUCTOR_CACHE).exists()


# -- defect 11: repairs are said, and blamed on the right file -------------------------


def _row(impl: str, n: int, median: float) -> dict[str, Any]:
    return {
        "case": f"fft/{impl}/n={n}/float32/t1/cpu/glibc/forward",
        "layer": "fft",
        "impl": impl,
        "role": "baseline" if impl == "numpy" else "native",
        "form": "eager",
        "source": impl,
        "point": f"n={n}",
        "size": float(n),
        "dtype": "float32",
        "threads": 1,
        "device": "cpu",
        "phase": "forward",
        "status": "ok",
        "median_s": median,
        "min_s": median * 0.99,
        "max_s": median * 1.01,
        "n_values": 3,
        "within_tol": True,
        "n": n,
    }


def craft(folder: Path, scale: float = 1.0) -> Path:
    """A results folder as a run writes one (with a manifest), two points of fft."""
    rows = [_row(impl, n, scale * 1e-6 * n) for impl in ("numpy", "torch") for n in (8, 16)]
    atomic_write_json(folder / "run.json", versioned({"profile": {"name": "quick"}}))
    atomic_write_json(folder / "environment.json", versioned({"cpu": "test cpu"}))
    write_results(
        folder,
        build_frame(rows, axes=("n",)),
        build_table([], DEVIATION_COLUMNS),
        build_table([], CAPABILITY_COLUMNS),
        None,
    )
    return folder


def _cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_compare_prints_a_line_for_each_file_it_rebuilds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.report import compare as compare_module

    base, new = craft(tmp_path / "base"), craft(tmp_path / "new", scale=2.0)
    _cut(new / "results.csv")
    (new / "raw").mkdir()
    (new / "raw" / "timing-000.jsonl").write_text("{}\n")
    rebuilt: list[Path] = []

    def rebuild(folder: Path) -> None:  # what raw/ gives back: the folder as written
        rebuilt.append(folder)
        craft(folder, scale=2.0)

    monkeypatch.setattr(compare_module, "rebuild_from_raw", rebuild)
    assert main(["compare", str(base), str(new)]) == 0
    captured = capsys.readouterr()
    assert rebuilt == [new]
    notes = [line for line in captured.err.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1, captured.err
    assert notes[0].startswith("note: new: results.csv is damaged (")
    assert notes[0].endswith("; rebuilt it from raw/")
    assert "slower" in captured.out  # compared on the rebuilt table
    # a whole folder is compared without a word
    assert main(["compare", str(base), str(new)]) == 0
    assert capsys.readouterr().err == ""


def test_resume_prints_a_line_for_the_damaged_file_it_rebuilds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    no_workers(monkeypatch)
    assert main(["run", *TINY, "--out", str(out), "--no-report", "-q"]) == 0
    capsys.readouterr()
    # a whole folder is resumed without a word of repair
    assert main(["run", "--resume", str(out), "--no-report", "-q"]) == 0
    assert "rebuild" not in capsys.readouterr().err
    _cut(out / "results.csv")
    assert damaged_file(out) is not None
    assert main(["run", "--resume", str(out), "--no-report", "-q"]) == 0
    lines = [line for line in _stderr_lines(capsys) if "rebuild" in line]
    assert len(lines) == 1
    assert lines[0].startswith("note: results.csv is damaged (")
    assert lines[0].endswith("; --resume rebuilds it from raw/")
    assert damaged_file(out) is None
    load_results(out)  # whole again


def test_damaged_file_names_what_a_rebuild_would_repair(tmp_path: Path) -> None:
    folder = craft(tmp_path / "run")
    assert damaged_file(folder) is None
    (folder / "deviations.csv").unlink()
    assert damaged_file(folder) == "deviations.csv is missing (manifest.json lists it)"
    # a folder whose run stopped before its first write: nothing to repair
    empty = tmp_path / "empty"
    empty.mkdir()
    atomic_write_json(empty / "run.json", versioned({"config": {}}))
    assert damaged_file(empty) is None


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_any_flipped_byte_in_the_manifest_is_the_manifests_damage(tmp_path: Path) -> None:
    folder = craft(tmp_path / "run")
    path = folder / MANIFEST_JSON
    good = path.read_bytes()
    caught, elsewhere = 0, []
    # every 3rd byte: keys, digests, sizes, row counts, column names and punctuation
    for at in range(0, len(good), 3):
        path.write_bytes(_flip(good, at))
        try:
            load_results(folder)
        except ResultsError as exc:
            if str(exc).startswith((f"{path}:", f"{path} ")):
                caught += 1
            else:  # such as "capabilities.csv: damaged: sha256 differs from manifest.json"
                elsewhere.append(f"byte {at}: {exc}")
    path.write_bytes(good)
    assert elsewhere == []
    assert caught > len(good) // 6  # most flips are caught


@pytest.mark.slow
def test_a_real_run_damaged_is_rebuilt_by_compare_and_resume_with_a_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["run", *TINY, "--budget", "1", "--out", str(out), "--no-report", "-q"]) == 0
    capsys.readouterr()
    whole = load_results(out).frame
    assert (whole["status"] == "ok").any()
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns(".lock"))

    _cut(copy / "results.csv")
    assert main(["compare", str(out), str(copy)]) == 0
    notes = [line for line in _stderr_lines(capsys) if line.startswith("note: ")]
    assert len(notes) == 1 and notes[0].startswith("note: new: results.csv is damaged (")
    pd.testing.assert_frame_equal(load_results(copy).frame, whole)

    _cut(copy / "pyperf.json")
    assert main(["run", "--resume", str(copy), "--no-report", "-q"]) == 0
    lines = [line for line in _stderr_lines(capsys) if "rebuild" in line]
    assert len(lines) == 1 and lines[0].startswith("note: pyperf.json is damaged (")
    assert damaged_file(copy) is None


# -- resume: a complete run is not measured again; an interrupted one's time counts ----


def test_resuming_a_complete_run_measures_nothing_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    no_workers(monkeypatch)
    assert main(["run", *TINY, "--out", str(out), "--no-report"]) == 0
    run_json = (out / "run.json").read_text()
    assert json.loads(run_json)["complete"] is True
    capsys.readouterr()

    def passes(runner: Runner) -> None:
        raise AssertionError("a complete run was timed again")

    def validate(runner: Runner) -> list[str]:
        raise AssertionError("a complete run's declarations were checked again")

    monkeypatch.setattr(Runner, "_passes", passes)
    monkeypatch.setattr(Runner, "validate", validate)
    assert main(["run", "--resume", str(out), "--no-report"]) == 0
    lines = _stderr_lines(capsys)
    assert lines == [
        f"{out}: its run is already complete; nothing measured again "
        "(tables rewritten from raw/, no report)"
    ]
    # its record (settings, command, how the budget was spent) stays as it was
    assert (out / "run.json").read_text() == run_json
    load_results(out)


def test_run_json_is_kept_up_to_date_while_the_passes_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a runner killed outright (SIGKILL) writes nothing at its end: what run.json says
    # then is what the last periodic write of the outputs left
    out = tmp_path / "run"
    on_disk: list[dict[str, Any]] = []

    def timing(runner: Runner) -> None:
        runner.timing.spent_s = 7.0
        runner._last_write = -1e9  # the write cadence says it is time
        runner._maybe_write()
        on_disk.append(json.loads((out / "run.json").read_text()))

    no_workers(monkeypatch, timing)
    assert main(["run", *TINY, "--out", str(out), "--no-report", "-q"]) == 0
    (during,) = on_disk
    assert during["complete"] is False and during["timing"]["spent_s"] == 7.0


def test_resuming_an_interrupted_run_counts_the_timing_it_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"

    def interrupted(runner: Runner) -> None:  # 7 s into its timing passes
        runner.timing.first_pass = {"processes": 2, "rounds": 3, "groups": 1, "seconds": 5.0}
        runner.timing.spent_s = 7.0
        raise KeyboardInterrupt

    no_workers(monkeypatch, interrupted)
    assert main(["run", *TINY, "--out", str(out), "--no-report", "-q"]) == 130
    assert json.loads((out / "run.json").read_text())["timing"]["spent_s"] == 7.0
    seen: list[Any] = []

    def resumed(runner: Runner) -> None:
        timing = runner.timing
        seen.append((timing.spent_s, timing.first_pass.get("seconds")))
        seen.append(runner.scheduler.spent())

    no_workers(monkeypatch, resumed)
    assert main(["run", "--resume", str(out), "--no-report", "-q"]) == 0
    assert seen == [(7.0, 5.0), 7.0]  # the passes ran, with 7 s of the budget gone
    run = json.loads((out / "run.json").read_text())
    assert run["complete"] is True and run["timing"]["spent_s"] == 7.0
