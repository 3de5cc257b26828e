"""The report on crafted folders (issue 18): names from files never become paths
outside the folder, NaN/inf values are called out and the report is still written, and
a run cut short says so. No worker process."""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType

import pytest

from harness.names import child, safe_name
from harness.report import write_report


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def test_a_layer_name_from_a_file_never_becomes_a_path_outside_the_folder(
    tmp_path: Path, rf: ModuleType
) -> None:
    folder = tmp_path / "a" / "b" / "run"
    rows = rf.series(
        "../../evil", {"numpy": lambda n: 1e-5 * n, "torch": lambda n: 5e-6 * n}, [8, 16]
    )
    rf.write_folder(folder, rows)
    (folder / "manifest.json").unlink()  # as the crafted folder of the issue
    outside_before = _files(tmp_path) - _files(folder)
    report = write_report(folder)
    assert report == folder / "report.md"
    assert _files(tmp_path) - _files(folder) == outside_before  # nothing written outside
    plots = sorted(p.name for p in (folder / "plots").iterdir())
    assert plots and all("/" not in p and not p.startswith(".") for p in plots)
    assert all(
        (folder / "plots" / p).resolve().parent == (folder / "plots").resolve() for p in plots
    )


@pytest.mark.parametrize("name", ["../../evil", "/etc/passwd", "..", ".", "", "a\x00b", "x" * 300])
def test_safe_name_is_one_component_that_stays_in_its_folder(tmp_path: Path, name: str) -> None:
    path = child(tmp_path, name, "-time.png")
    assert path.parent == tmp_path and not path.name.startswith(".")
    assert "/" not in safe_name(name) and "\x00" not in safe_name(name)
    assert len(safe_name(name)) < 100


def test_safe_name_keeps_declared_names_and_keeps_different_names_apart() -> None:
    assert safe_name("conv2d") == "conv2d" and safe_name("my_layer-2") == "my_layer-2"
    assert safe_name("a/b") != safe_name("a_b")


def test_nan_in_inputs_and_outputs_is_called_out_and_the_report_is_written(
    tmp_path: Path, rf: ModuleType
) -> None:
    rows = rf.series("fft", {"numpy": lambda n: 1e-5 * n, "torch": lambda n: 5e-6 * n}, [8, 16])
    for r in rows:
        if r["impl"] == "torch":
            # the output has NaN where the float64 reference has none (every point)
            r.update(max_abs_err=math.inf, max_rel_err=math.inf, within_tol=False)
        elif r["size"] == 16:
            # inputs hold NaN: the reference has them too, no relative error
            r.update(max_abs_err=math.inf, max_rel_err=math.nan)
    folder = rf.write_folder(tmp_path / "run", rows)
    report = write_report(folder)  # used to raise: "Data cannot be log-scaled"
    text = report.read_text()
    assert "inputs contain NaN/inf" in text
    assert "torch: output has NaN/inf where the reference has none" in text
    assert (folder / "plots" / "fft-deviation.png").is_file()


def test_an_incomplete_run_says_so(tmp_path: Path, rf: ModuleType) -> None:
    rows = rf.series("fft", {"numpy": lambda n: 1e-5 * n, "torch": lambda n: 5e-6 * n}, [8])
    cut = rf.write_folder(
        tmp_path / "cut", rows, run={"complete": False, "stopped": "no space left on device"}
    )
    whole = rf.write_folder(tmp_path / "whole", rows, run={"complete": True})
    assert "**Incomplete run**: no space left on device" in write_report(cut).read_text()
    assert "Incomplete run" not in write_report(whole).read_text()
