"""Merging the parts of a sharded run: crafted part folders, every refusal, and one
real two-part run end to end."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyperf
import pytest

from harness.config import PLAN_KEYS
from harness.errors import ConfigError
from harness.frame import (
    BREAKDOWN_COLUMNS,
    CAPABILITY_COLUMNS,
    DEVIATION_COLUMNS,
    build_frame,
    build_table,
)
from harness.merge import merge
from harness.results import SCHEMA_VERSION, load_results, versioned, write_results
from harness.shard import plan_id

ROOT = Path(__file__).resolve().parents[2]

CONFIG = {
    "layers": ["fft", "conv2d"],
    "impls": ["numpy", "scipy", "torch"],
    "grid": {"n": ["8", "16"], "k": ["3"]},
    "dtypes": ["float32"],
    "threads": [1],
    "devices": ["cpu"],
    "profile": "quick",
    "layers_from": [],
    "seed": 0,
    "capabilities": True,
    "timeout_s": None,
}
PLAN = plan_id(CONFIG)
ENV = {
    "cpu": "Test CPU @ 3.0GHz",
    "cpu_capability": "AVX2",
    "cores": 8,
    "hostname": "node-0",
    "platform": "Linux",
    "python": "3.11.9",
    "versions": {"torch": "2.13.0", "numpy": "2.1.0"},
    "date": "2026-11-26T10:00:00+00:00",
}

# ------------------------------------------------------------------------ helpers


def _row(layer: str, impl: str, n: int, phase: str, k: int | None = None) -> dict[str, Any]:
    point = f"n={n}" + (f",k={k}" if k is not None else "")
    median = 1e-5 * n
    return {
        "case": f"{layer}/{impl}/{point}/float32/t1/cpu/glibc/{phase}",
        "layer": layer,
        "impl": impl,
        "role": "native" if impl == "torch" else "baseline",
        "form": "eager",
        "source": impl,
        "point": point,
        "size": float(n),
        "dtype": "float32",
        "threads": 1,
        "device": "cpu",
        "phase": phase,
        "status": "ok",
        "median_s": median,
        "mean_s": median,
        "stdev_s": median * 0.01,
        "min_s": median * 0.99,
        "max_s": median * 1.01,
        "n_values": 3,
        "n_processes": 2,
        "loops": 1,
        "max_abs_err": 1e-7,
        "max_rel_err": 1e-6,
        "worst_tensor": "output" if phase == "forward" else "grad_x",
        "rtol": 1e-4,
        "within_tol": True,
        "n": n,
        "k": k,
    }


def _rows_of(points: Sequence[tuple[str, int, int | None]]) -> list[dict[str, Any]]:
    out = []
    for layer, n, k in points:
        base = "numpy" if layer == "fft" else "scipy"
        for impl in (base, "torch"):
            for phase in ("forward", "backward"):
                out.append(_row(layer, impl, n, phase, k))
    return out


def _caps(layer: str, status: str = "ok") -> list[dict[str, Any]]:
    return [
        {"layer": layer, "impl": "torch", "role": "native", "check": "trace", "status": status},
        {
            "layer": layer,
            "impl": "numpy" if layer == "fft" else "scipy",
            "role": "baseline",
            "check": "trace",
            "status": "unsupported",
            "reason": "opaque autograd.Function",
        },
    ]


def _suite_text(rows: Sequence[Mapping[str, Any]]) -> str | None:
    benches = [
        pyperf.Benchmark(
            [
                pyperf.Run(
                    [r["median_s"] * f for f in (0.99, 1.0, 1.01)],
                    metadata={"name": r["case"], "unit": "second", "loops": 1},
                    collect_metadata=False,
                )
            ]
        )
        for r in rows
    ]
    if not benches:
        return None
    buf = io.StringIO()
    pyperf.BenchmarkSuite(benches).dump(buf, compact=True)
    return buf.getvalue()


def make_part(
    path: Path,
    index: int,
    count: int,
    points: Sequence[tuple[str, int, int | None]],
    *,
    plan: str = PLAN,
    env: Mapping[str, Any] | None = None,
    shard: Any = "default",
    caps: Sequence[Mapping[str, Any]] = (),
    extra_rows: Sequence[Mapping[str, Any]] = (),
    breakdown: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """A part folder as ``run --shard index/count`` writes one (with breakdown.csv of
    ``breakdown``'s rows when given: its profiling pass)."""
    rows = [*_rows_of(points), *extra_rows]
    devs = [
        {
            "case": r["case"],
            "layer": r["layer"],
            "impl": r["impl"],
            "point": r["point"],
            "size": r["size"],
            "dtype": r["dtype"],
            "phase": r["phase"],
            "tensor": r["worst_tensor"],
            "max_abs_err": r["max_abs_err"],
            "max_rel_err": r["max_rel_err"],
            "within_tol": True,
        }
        for r in rows
    ]
    run: dict[str, Any] = {
        "config": {**CONFIG, "shard": {"index": index, "count": count}},
        "groups": len(points),
        "layers": {
            layer: {"axes": ["n", "k"] if layer == "conv2d" else ["n"]} for layer, *_ in points
        },
        "profile": {"name": "quick", "processes": 2, "values": 3},
        "variants": sorted({r["case"].rsplit("/", 1)[0] for r in rows}),
        "created": ENV["date"],
    }
    if shard == "default":
        run["shard"] = {"index": index, "count": count, "plan": plan}
    elif shard is not None:
        run["shard"] = shard
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps(versioned(run)))
    environment = dict(env or {**ENV, "hostname": f"node-{index}"})
    (path / "environment.json").write_text(json.dumps(versioned(environment)))
    (path / "raw").mkdir()
    (path / "raw" / "timing-000.jsonl").write_text(
        json.dumps({"event": "done", "part": index}) + "\n"
    )
    write_results(
        path,
        build_frame(rows, axes=("n", "k")),
        build_table(devs, DEVIATION_COLUMNS),
        build_table(caps, CAPABILITY_COLUMNS),
        _suite_text(rows),
        None if breakdown is None else build_table(breakdown, BREAKDOWN_COLUMNS, ("n", "k")),
    )
    return path


FFT = [("fft", 8, None), ("fft", 16, None)]
CONV = [("conv2d", 8, 3), ("conv2d", 16, 3)]


@pytest.fixture
def two_parts(tmp_path: Path) -> tuple[Path, Path]:
    a = make_part(tmp_path / "part-0", 0, 2, [FFT[0], CONV[1]], caps=_caps("fft") + _caps("conv2d"))
    b = make_part(tmp_path / "part-1", 1, 2, [CONV[0], FFT[1]], caps=_caps("fft") + _caps("conv2d"))
    return a, b


def _nothing_written(tmp_path: Path, out: Path) -> None:
    assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]
    assert leftovers == []


# ------------------------------------------------------------------------- merge


def test_merge_two_parts(tmp_path: Path, two_parts: tuple[Path, Path]) -> None:
    a, b = two_parts
    out = merge(tmp_path / "merged", [b, a])  # order given does not matter
    assert out == tmp_path / "merged"
    merged = load_results(out)
    parts = [load_results(a), load_results(b)]
    assert len(merged.frame) == sum(len(p.frame) for p in parts) == 16
    assert list(merged.frame["case"]) == [*parts[0].frame["case"], *parts[1].frame["case"]]
    assert len(merged.deviations) == 16
    # capabilities are per layer: identical rows from both parts kept once
    assert len(merged.capabilities) == 4
    # axis columns are written as a single run writes them ("3", not "3.0")
    # results.csv holds the parts' rows exactly as they wrote them (axis values too)
    header, *lines = (out / "results.csv").read_text().splitlines()
    assert header == (a / "results.csv").read_text().splitlines()[0]
    assert header.endswith(",n,k")
    assert lines == [
        *(a / "results.csv").read_text().splitlines()[1:],
        *(b / "results.csv").read_text().splitlines()[1:],
    ]
    assert set(merged.raw_values()) == set(merged.frame["case"])
    assert (out / "manifest.json").is_file()
    # environment.json: part 0 at top level, every part listed
    env = merged.environment
    assert env["schema"] == SCHEMA_VERSION
    assert env["hostname"] == "node-0"
    assert [p["shard"]["index"] for p in env["parts"]] == [0, 1]
    assert [p["hostname"] for p in env["parts"]] == ["node-0", "node-1"]
    assert env["mixed_machines"] is False
    # run.json: part 0's, marked merged
    run = merged.run
    assert run["schema"] == SCHEMA_VERSION
    assert run["shard"] == {"merged": True, "count": 2, "plan": PLAN, "parts": [str(a), str(b)]}
    assert run["mixed_machines"] is False
    assert run["config"] == {**CONFIG, "shard": None}
    assert run["groups"] == 4
    assert set(run["layers"]) == {"fft", "conv2d"}
    assert len(run["variants"]) == 8
    # raw/ of each part, for provenance
    assert json.loads((out / "raw" / "part-1" / "timing-000.jsonl").read_text())["part"] == 1
    assert (out / "raw" / "part-0" / "timing-000.jsonl").is_file()
    # no temporary folder left beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged", "part-0", "part-1"]


def _profiled(row: Mapping[str, Any], part: str, seconds: float) -> dict[str, Any]:
    """One breakdown.csv row of ``row``'s case (a profiled call's ``part``)."""
    keys = ("case", "layer", "impl", "role", "point", "size", "dtype", "threads", "device")
    return {
        **{k: row[k] for k in keys},
        "allocator": "glibc",
        "phase": row["phase"],
        "part": part,
        "kind": "numpy",
        "seconds": seconds,
        "share": 1.0,
        "calls": 1,
        "n": row["n"],
        "k": row["k"],
    }


def test_merge_keeps_every_parts_breakdown(tmp_path: Path) -> None:
    # each part profiled its own points (the profiling pass of `run --shard`); one
    # part profiled nothing (a run with --breakdown none): the merge keeps both others
    fft8 = next(r for r in _rows_of([FFT[0]]) if r["phase"] == "forward")
    conv16 = next(r for r in _rows_of([CONV[1]]) if r["phase"] == "forward")
    a = make_part(
        tmp_path / "a", 0, 3, [FFT[0]], breakdown=[_profiled(fft8, "numpy.fft.fft", 1e-4)]
    )
    b = make_part(
        tmp_path / "b", 1, 3, [CONV[1]], breakdown=[_profiled(conv16, "correlate2d", 2e-4)]
    )
    c = make_part(tmp_path / "c", 2, 3, [CONV[0]])
    merged = load_results(merge(tmp_path / "m", [a, b, c]))
    assert merged.breakdown is not None
    assert list(merged.breakdown["case"]) == [fft8["case"], conv16["case"]]
    assert list(merged.breakdown["part"]) == ["numpy.fft.fft", "correlate2d"]
    assert list(merged.breakdown["seconds"]) == [1e-4, 2e-4]
    # no part profiled anything: no breakdown.csv, as a run with --breakdown none
    none = merge(tmp_path / "m2", [make_part(tmp_path / "d", 0, 1, FFT)])
    assert load_results(none).breakdown is None and not (none / "breakdown.csv").exists()


def test_merge_into_existing_empty_folder(tmp_path: Path, two_parts: tuple[Path, Path]) -> None:
    (tmp_path / "merged").mkdir()
    merge(tmp_path / "merged", two_parts)
    assert len(load_results(tmp_path / "merged").frame) == 16


def test_merged_folder_reports_and_compares(tmp_path: Path, two_parts: tuple[Path, Path]) -> None:
    from harness.report import compare_runs, write_report

    out = merge(tmp_path / "merged", two_parts)
    report = write_report(out)
    text = Path(report).read_text()
    assert "fft" in text and "conv2d" in text
    cmp = compare_runs(out, out)
    assert cmp is not None


def test_single_part(tmp_path: Path) -> None:
    a = make_part(tmp_path / "only", 0, 1, FFT)
    merged = load_results(merge(tmp_path / "merged", [a]))
    assert len(merged.frame) == 8


def test_part_with_nothing_timed(tmp_path: Path) -> None:
    # more parts than groups: a part may hold no rows
    a = make_part(tmp_path / "p0", 0, 2, FFT)
    b = make_part(tmp_path / "p1", 1, 2, [])
    merged = load_results(merge(tmp_path / "merged", [a, b]))
    assert len(merged.frame) == 8
    assert len(merged.raw_values()) == 8


def test_capability_disagreement_keeps_first_with_note(tmp_path: Path) -> None:
    a = make_part(tmp_path / "p0", 0, 2, FFT[:1], caps=_caps("fft"))
    b = make_part(tmp_path / "p1", 1, 2, FFT[1:], caps=_caps("fft", status="wrong"))
    merged = load_results(merge(tmp_path / "merged", [a, b]))
    torch_trace = merged.capabilities[merged.capabilities["impl"] == "torch"]
    assert list(torch_trace["status"]) == ["ok"]
    assert "fft/torch/trace" in merged.run["shard"]["notes"][0]


# ------------------------------------------------------------------------ refusals


def _refused(out: Path, parts: Sequence[Path], match: str, **kw: Any) -> str:
    with pytest.raises(ConfigError, match=match) as err:
        merge(out, parts, **kw)
    message = str(err.value)
    assert "\n" not in message
    _nothing_written(out.parent, out)
    return message


def test_refuses_different_plans(tmp_path: Path) -> None:
    a = make_part(tmp_path / "p0", 0, 2, FFT[:1])
    b = make_part(tmp_path / "p1", 1, 2, FFT[1:], plan="0123456789abcdef")
    msg = _refused(tmp_path / "merged", [a, b], "belongs to another plan")
    assert str(b) in msg


def test_refuses_different_counts(tmp_path: Path) -> None:
    a = make_part(tmp_path / "p0", 0, 2, FFT[:1])
    b = make_part(tmp_path / "p1", 1, 3, FFT[1:])
    _refused(tmp_path / "merged", [a, b], "one of 3 parts")


def test_refuses_duplicated_part(tmp_path: Path) -> None:
    a = make_part(tmp_path / "p0", 0, 2, FFT[:1])
    a2 = make_part(tmp_path / "p0-again", 0, 2, FFT[:1])
    b = make_part(tmp_path / "p1", 1, 2, FFT[1:])
    msg = _refused(tmp_path / "merged", [a, a2, b], "are both part 0/2")
    assert str(a) in msg and str(a2) in msg
    _refused(tmp_path / "merged", [a, a, b], "are both part 0/2")


def test_refuses_missing_parts(tmp_path: Path) -> None:
    a = make_part(tmp_path / "p0", 0, 4, FFT[:1])
    c = make_part(tmp_path / "p2", 2, 4, FFT[1:])
    msg = _refused(tmp_path / "merged", [a, c], "parts 1, 3 of 4 are missing")
    assert "given: 0, 2" in msg


def test_refuses_overlapping_parts(tmp_path: Path) -> None:
    a = make_part(tmp_path / "p0", 0, 2, FFT)
    b = make_part(tmp_path / "p1", 1, 2, FFT[1:])
    _refused(tmp_path / "merged", [a, b], r"case fft/numpy/n=16/.* is in .*p0 and .*p1")


def test_refuses_other_machine_unless_allowed(tmp_path: Path) -> None:
    a = make_part(tmp_path / "p0", 0, 2, FFT[:1])
    b = make_part(tmp_path / "p1", 1, 2, FFT[1:], env={**ENV, "cpu": "Other CPU", "cores": 4})
    msg = _refused(tmp_path / "merged", [a, b], "measured on another machine")
    assert "--allow-mixed" in msg and "Other CPU" in msg
    out = merge(tmp_path / "merged", [a, b], allow_mixed=True)
    merged = load_results(out)
    assert merged.run["mixed_machines"] is True
    assert merged.environment["mixed_machines"] is True
    assert merged.environment["parts"][1]["cpu"] == "Other CPU"


@pytest.mark.parametrize(
    "change",
    [
        {"versions": {"torch": "2.12.0", "numpy": "2.1.0"}},
        {"cpu_capability": "AVX512"},
    ],
)
def test_refuses_other_versions_or_isa(tmp_path: Path, change: dict[str, Any]) -> None:
    a = make_part(tmp_path / "p0", 0, 2, FFT[:1])
    b = make_part(tmp_path / "p1", 1, 2, FFT[1:], env={**ENV, **change})
    _refused(tmp_path / "merged", [a, b], "measured on another machine")


def test_hostnames_may_differ(tmp_path: Path, two_parts: tuple[Path, Path]) -> None:
    merged = load_results(merge(tmp_path / "merged", two_parts))
    assert merged.run["mixed_machines"] is False


def test_refuses_not_a_results_folder(tmp_path: Path) -> None:
    a = make_part(tmp_path / "p0", 0, 2, FFT[:1])
    empty = tmp_path / "empty"
    empty.mkdir()
    msg = _refused(tmp_path / "merged", [a, empty], "not a results folder")
    assert str(empty) in msg
    _refused(tmp_path / "merged", [a, tmp_path / "nope"], "no such folder")


def test_refuses_damaged_part(tmp_path: Path) -> None:
    a = make_part(tmp_path / "p0", 0, 2, FFT[:1])
    b = make_part(tmp_path / "p1", 1, 2, FFT[1:])
    csv = b / "results.csv"
    csv.write_text(
        csv.read_text().replace("1.6e-04", "1.7e-04", 1).replace("0.00016", "0.00017", 1)
    )
    msg = _refused(tmp_path / "merged", [a, b], "damaged")
    assert str(b) in msg


def test_refuses_part_without_shard(tmp_path: Path) -> None:
    a = make_part(tmp_path / "p0", 0, 2, FFT[:1])
    b = make_part(tmp_path / "p1", 1, 2, FFT[1:], shard=None)
    msg = _refused(tmp_path / "merged", [a, b], "was not made with --shard")
    assert str(b) in msg


def test_refuses_malformed_shard_and_merged_folder(
    tmp_path: Path, two_parts: tuple[Path, Path]
) -> None:
    bad = make_part(tmp_path / "bad", 1, 2, FFT[1:], shard={"index": "x"})
    _refused(tmp_path / "m1", [two_parts[0], bad], "the shard in its run.json is malformed")
    merged = merge(tmp_path / "merged", two_parts)
    _refused(tmp_path / "m2", [merged], "already a merged folder")


def test_refuses_non_empty_out(tmp_path: Path, two_parts: tuple[Path, Path]) -> None:
    out = tmp_path / "merged"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"merged already exists and is not empty"):
        merge(out, two_parts)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged", "part-0", "part-1"]


def test_refuses_no_parts(tmp_path: Path) -> None:
    _refused(tmp_path / "merged", [], "no parts given")


def test_interrupted_merge_leaves_nothing(
    tmp_path: Path, two_parts: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.merge as merge_module

    def boom(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(merge_module.shutil, "copytree", boom)
    with pytest.raises(KeyboardInterrupt):
        merge(tmp_path / "merged", two_parts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-0", "part-1"]


# -------------------------------------------------------------------- end to end


def _harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_two_real_parts_merge_and_report(tmp_path: Path) -> None:
    common = [
        "run",
        "--layers", "fft",
        "--grid", "n=8,16,32",
        "--impls", "numpy,torch",
        "--profile", "quick",
        "--budget", "1",  # the first pass only: what merges is what was measured
        "--threads", "1",
        "--no-capabilities",
        "--no-report",
        "--breakdown", "none",  # merging breakdown.csv: test_merge_keeps_every_parts_breakdown
    ]  # fmt: skip
    for index, name in ((0, "A"), (1, "B")):
        res = _harness(*common, "--shard", f"{index}/2", "--out", name, cwd=tmp_path)
        assert res.returncode == 0, res.stdout + res.stderr
    a, b = load_results(tmp_path / "A"), load_results(tmp_path / "B")
    assert a.run["shard"]["index"] == 0 and b.run["shard"]["index"] == 1
    assert a.run["shard"]["plan"] == b.run["shard"]["plan"]
    assert not set(a.frame["case"]) & set(b.frame["case"])
    res = _harness("merge", "M", "A", "B", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    merged = load_results(tmp_path / "M")
    # 3 sizes x 2 implementations x 3 phases (forward, backward, step)
    assert len(merged.frame) == len(a.frame) + len(b.frame) == 3 * 2 * 3
    assert set(merged.frame["point"]) == {"n=8", "n=16", "n=32"}
    assert set(merged.raw_values()) == set(merged.frame.loc[merged.frame["status"] == "ok", "case"])
    assert merged.run["shard"]["merged"] is True
    res = _harness("report", "M", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "M" / "report.md").is_file()
    # a second merge into the same folder is refused with one error line, exit 2
    res = _harness("merge", "M", "A", "B", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.startswith("error: merge: M already exists")


# ------------------------------------------------- issue 18: merged folders and OUT


def test_refuses_a_part_whose_run_json_was_edited(tmp_path: Path) -> None:
    # defect 2: a part's grid edited after its run (n=8,16 made n=8,16,32) was merged,
    # and the merged run.json claimed a grid its rows do not have
    parts = [make_part(tmp_path / f"p{i}", i, 2, [FFT[i]]) for i in range(2)]
    for part in parts:  # the plan id the runner writes beside the settings
        run = json.loads((part / "run.json").read_text())
        run["plan"] = plan_id({k: v for k, v in run["config"].items() if k in PLAN_KEYS})
        (part / "run.json").write_text(json.dumps(run))
    load_results(merge(tmp_path / "whole", parts))  # untouched, they merge
    run = json.loads((parts[1] / "run.json").read_text())
    run["config"]["grid"]["n"] = ["8", "16", "32"]
    (parts[1] / "run.json").write_text(json.dumps(run))
    message = _refused(tmp_path / "merged", parts, "run.json: damaged: edited since it was written")
    assert f"part {parts[1]}:" in message


def test_resume_of_a_merged_folder_is_refused(tmp_path: Path, two_parts: tuple[Path, Path]) -> None:
    from harness.runner import resume_config

    out = merge(tmp_path / "merged", two_parts)
    with pytest.raises(ConfigError, match="is a merged folder; resume its parts instead") as err:
        resume_config(out, {}, ENV)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("inside", ["merged", "raw/m"])
def test_out_inside_a_part_is_refused_in_one_short_line(
    tmp_path: Path, two_parts: tuple[Path, Path], inside: str
) -> None:
    a, _ = two_parts
    out = a / inside
    before = sorted(p.relative_to(a) for p in a.rglob("*"))
    message = _refused(out, two_parts, "is inside the part")
    assert len(message) < 300
    assert sorted(p.relative_to(a) for p in a.rglob("*")) == before
