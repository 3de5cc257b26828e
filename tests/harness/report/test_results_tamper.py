"""A results folder's run.json and environment.json are what its run wrote: an edited
grid or machine is caught by report (load_results), --resume (stored_run) and merge,
through the plan id and fingerprint run.json carries (issue 18, defect 2)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from harness.config import PLAN_KEYS, RunConfig
from harness.errors import ResultsError
from harness.rebuild import stored_run
from harness.results import load_results
from harness.shard import identity_mismatch, plan_id

ENV = {"cpu": "Test CPU", "cpu_capability": "AVX512", "cores": 2, "versions": {"torch": "2.13"}}


def _run_json(grid: dict[str, list[str]]) -> dict[str, object]:
    config = RunConfig(layers=("fft",), grid=grid, threads=(1,))
    return {
        "schema": 3,
        "config": config.to_json(),
        "plan": plan_id(config.plan_json()),
        "fingerprint": dict(ENV),
    }


def _folder(rf: ModuleType, tmp_path: Path) -> Path:
    rows = rf.series("fft", {"numpy": lambda n: 1e-3, "torch": lambda n: 5e-4}, (8,))
    return rf.write_folder(tmp_path / "run", rows, run=_run_json({"n": ["8"]}), environment=ENV)


def _edit(path: Path, change: dict[str, object]) -> None:
    obj = json.loads(path.read_text())
    for key, value in change.items():
        target = obj
        *parents, last = key.split(".")
        for p in parents:
            target = target[p]
        target[last] = value
    path.write_text(json.dumps(obj))


def test_an_untouched_folder_loads(rf: ModuleType, tmp_path: Path) -> None:
    folder = _folder(rf, tmp_path)
    assert identity_mismatch(_run_json({"n": ["8"]}), ENV, PLAN_KEYS) is None
    assert len(load_results(folder).frame) == 4


def test_an_edited_grid_is_refused_by_report_and_resume(rf: ModuleType, tmp_path: Path) -> None:
    folder = _folder(rf, tmp_path)
    _edit(folder / "run.json", {"config.grid": {"n": ["9"]}})
    with pytest.raises(ResultsError, match=r"run.json: damaged: edited since it was written"):
        load_results(folder)
    with pytest.raises(ResultsError, match=r"run.json: edited since .* cannot be resumed"):
        stored_run(folder)


def test_an_edited_machine_is_refused(rf: ModuleType, tmp_path: Path) -> None:
    folder = _folder(rf, tmp_path)
    _edit(folder / "environment.json", {"cpu_capability": "AVX2"})
    with pytest.raises(ResultsError, match=r"environment.json: damaged: edited since"):
        load_results(folder)


def test_folders_before_schema_3_are_not_checked() -> None:
    old = {**_run_json({"n": ["8"]}), "schema": 2, "plan": "0" * 16}
    assert identity_mismatch(old, ENV, PLAN_KEYS) is None
