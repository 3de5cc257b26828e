"""End-to-end runs on tiny grids with the quick profile (they spawn worker processes).

Most tests read one shared run (``seed_run``). The command line is called in-process
(``harness.cli.main``) wherever a separate process adds nothing, and through
``python -m harness`` where it does: Ctrl-C in a terminal, and stderr as a user sees
it (an error in one line: in-process, pytest records the warnings Python would print
there)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import harness
from harness.cli import main
from harness.frame import COLUMNS
from harness.results import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
USER_LAYERS = str(FIXTURES / "user_layers.py")
ROUNDS = '"event": "rounds"'  # one line per group a timing worker finished

pytestmark = pytest.mark.slow


def cli_process(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m harness ARGS`` in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m harness ARGS`` in this process (``harness.cli.main``): its exit code,
    stdout and stderr."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["harness", *args], code, out, err)


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Both seed layers, their eager implementations, an even and an odd size, in
    float32 and float64 (4 points, 8 groups)."""
    out = tmp_path_factory.mktemp("runs") / "seed"
    return harness.run(
        layers="fft,conv2d",
        impls="numpy,scipy,torch",
        grid=["n=8,9", "k=3"],
        dtypes="float32,float64",
        profile="quick",
        budget_s=1,  # the first pass only (a resume of this folder measures nothing more)
        threads=1,
        out=out,
        capabilities=False,
        breakdown="none",  # the profiling pass: tests/harness/test_breakdown_pass.py
        report=False,
    )


def _float32(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["dtype"] == "float32"]


def test_frame_has_the_documented_columns_and_types(seed_run: pd.DataFrame) -> None:
    assert list(seed_run.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert {"n", "k"} <= set(seed_run.columns)
    for name, (dtype, _) in COLUMNS.items():
        assert str(seed_run[name].dtype) == str(pd.Series(dtype=dtype).dtype), name
    # 2 fft sizes x 2 impls + 2 conv sizes x 2 impls, 3 phases each (forward, backward, step)
    assert len(_float32(seed_run)) == 24
    assert len(seed_run) == 2 * 24 and set(seed_run["dtype"]) == {"float32", "float64"}
    assert set(seed_run["phase"]) == {"forward", "backward", "step"}
    assert seed_run["case"].is_unique
    back = harness.load(seed_run.attrs["path"])
    pd.testing.assert_frame_equal(
        back.reset_index(drop=True), seed_run.reset_index(drop=True), check_dtype=False
    )


def test_timings_are_positive_and_pyperf_backed(seed_run: pd.DataFrame) -> None:
    ok = seed_run[seed_run["status"] == "ok"]
    assert len(_float32(ok)) >= 20 and len(ok) >= 2 * 20
    assert (ok["median_s"] > 0).all() and (ok["min_s"] <= ok["median_s"]).all()
    assert (ok["median_s"] <= ok["max_s"]).all()
    # quick profile: 2 processes in the first pass, at least 3 paired rounds each
    assert (ok["n_processes"] >= 2).all() and (ok["n_values"] >= 2 * 3).all()
    # fft's numpy backward fails at n=9 (odd width): nothing to pair torch's with there
    unpaired = (ok["layer"] == "fft") & (ok["n"] == 9) & ok["phase"].isin(["backward", "step"])
    assert ok[unpaired & (ok["impl"] == "torch")]["speedup"].isna().all()
    torch_rows = ok[(ok["impl"] == "torch") & ~unpaired]
    assert torch_rows["speedup"].notna().all() and (torch_rows["speedup_low"] > 0).all()
    assert (torch_rows["speedup_low"] <= torch_rows["speedup"]).all()
    assert (torch_rows["speedup"] <= torch_rows["speedup_high"]).all()
    assert set(torch_rows["decision"]) <= {"faster", "slower", "undecided"}
    assert torch_rows["versus"].isin(["numpy", "scipy"]).all()
    assert ok[ok["role"] == "baseline"]["speedup"].isna().all()
    assert (ok["loops"] >= 1).all()
    path = Path(seed_run.attrs["path"]) / "pyperf.json"
    stats = subprocess.run(
        [sys.executable, "-m", "pyperf", "stats", str(path)], capture_output=True, text=True
    )
    assert stats.returncode == 0, stats.stderr
    assert (
        "fft/numpy/n=8/float32/t1/cpu/glibc/forward" in stats.stdout
        and "Median +- MAD" in stats.stdout
    )
    hist = subprocess.run(
        [sys.executable, "-m", "pyperf", "hist", str(path)], capture_output=True, text=True
    )
    assert hist.returncode == 0, hist.stderr


def test_bad_fft_backward_fails_at_an_odd_width_without_stopping_the_run(
    seed_run: pd.DataFrame,
) -> None:
    row = seed_run.set_index("case").loc["fft/numpy/n=9/float32/t1/cpu/glibc/backward"]
    assert row["status"] == "error"
    assert "shape" in row["error"]
    assert (
        seed_run.set_index("case").loc["fft/numpy/n=9/float32/t1/cpu/glibc/forward", "status"]
        == "ok"
    )
    assert (
        seed_run.set_index("case").loc[
            "conv2d/scipy/n=9,k=3/float32/t1/cpu/glibc/backward", "status"
        ]
        == "ok"
    )


def test_deviation_figures_of_the_seed_layers(seed_run: pd.DataFrame) -> None:
    rows = seed_run.set_index("case")
    bad = rows.loc["fft/numpy/n=8/float32/t1/cpu/glibc/backward"]
    assert not bad["within_tol"] and bad["max_rel_err"] > 0.5
    assert pd.notna(bad["gradcheck"]) and not bad["gradcheck"]
    assert "Jacobian mismatch" in bad["gradcheck_error"]
    assert rows.loc["fft/numpy/n=8/float32/t1/cpu/glibc/forward", "within_tol"]
    conv = rows.loc["conv2d/scipy/n=8,k=3/float32/t1/cpu/glibc/backward"]
    assert conv["within_tol"] and pd.notna(conv["gradcheck"]) and conv["gradcheck"]
    assert conv["max_rel_err"] < 1e-4
    native = rows.loc["fft/torch/n=8/float32/t1/cpu/glibc/backward"]
    assert native["within_tol"] and pd.isna(native["gradcheck"])
    devs = pd.read_csv(Path(seed_run.attrs["path"]) / "deviations.csv")
    conv_grads = set(
        devs[(devs["case"] == "conv2d/scipy/n=8,k=3/float32/t1/cpu/glibc/backward")]["tensor"]
    )
    assert conv_grads == {"grad_x", "grad_filter", "grad_bias"}


@pytest.mark.parametrize("n", [8, 9])
def test_float64_run_shows_the_seed_conv_downcasting_its_parameter_gradients(
    seed_run: pd.DataFrame, n: int
) -> None:
    all_devs = pd.read_csv(Path(seed_run.attrs["path"]) / "deviations.csv")
    point = (all_devs["layer"] == "conv2d") & (all_devs["point"] == f"n={n},k=3")
    devs = all_devs[point & (all_devs["dtype"] == "float64")]
    devs = devs.set_index(["impl", "phase", "tensor"])
    assert devs.loc[("scipy", "backward", "grad_x"), "within_tol"]
    assert not devs.loc[
        ("scipy", "backward", "grad_filter"), "within_tol"
    ]  # .to(torch.float) in backward
    assert devs.loc[("torch", "backward", "grad_filter"), "within_tol"]
    # in float32 the same downcast is within float32's tolerance
    f32 = all_devs[point & (all_devs["dtype"] == "float32")].set_index(["impl", "phase", "tensor"])
    assert f32.loc[("scipy", "backward", "grad_filter"), "within_tol"]
    conv = seed_run[(seed_run["layer"] == "conv2d") & (seed_run["dtype"] == "float64")]
    assert len(conv) == 2 * 2 * 3 and set(conv["status"]) == {"ok"}


def test_environment_and_run_files(seed_run: pd.DataFrame) -> None:
    folder = Path(seed_run.attrs["path"])
    env = json.loads((folder / "environment.json").read_text())
    assert env["allocator"]["swept"] == ["glibc"] and env["versions"]["torch"]
    assert env["threads"]["swept"] == [1]
    assert env["cpu_capability"] and env["schema"] == SCHEMA_VERSION
    assert env["noise"]["samples"] >= 1
    run = json.loads((folder / "run.json").read_text())
    # 2 layers x 2 sizes x 2 dtypes
    assert (
        run["config"]["profile"] == "quick"
        and run["groups"] == 8
        and run["schema"] == SCHEMA_VERSION
    )
    assert run["layers"]["conv2d"]["size_axis"] == "n"
    assert run["layers"]["fft"]["baselines"] == ["numpy"]
    assert run["timing"]["first_pass"]["processes"] == 2
    # the seconds inside timed regions: some, and fewer than the timing spent
    assert 0 < run["timing"]["timed_s"] < run["timing"]["spent_s"]
    assert run["timing"]["pool_wait_s"] >= 0
    # the groups' processes forked, their forms built and warmed: outside the values
    assert 0 < run["timing"]["prepare_s"] < run["timing"]["spent_s"] - run["timing"]["timed_s"]
    # each timing worker's start-up, as the supervisor measured it: one per process
    starts = run["timing"]["worker_starts_s"]
    assert len(starts) >= 2 and all(0 < t < run["timing"]["spent_s"] for t in starts)
    # timing workers start two at a time (harness.supervisor): the pair shares its wait,
    # each job ran on a worker started ahead, and no worker without a job is left
    assert starts[0] == starts[1]
    logs = folder / "logs"
    jobs = sorted(logs.glob("timing-*.log"))
    assert jobs and all(p.read_text().startswith("started ahead of its job") for p in jobs)
    assert len(list(logs.glob("spare-*.log"))) in (len(jobs), len(jobs) + 1)
    assert not list(logs.glob("*.ready"))
    import pyperf

    bench = pyperf.BenchmarkSuite.load(str(folder / "pyperf.json")).get_benchmarks()[0]
    meta = bench.get_runs()[0].get_metadata()
    assert meta["harness_threads"] == 1 and meta["harness_allocator"] == "glibc"


def test_user_layer_isolation_exception_crash_and_hang(tmp_path: Path) -> None:
    out = tmp_path / "user"
    frame = harness.run(
        layers="square",
        layers_from=USER_LAYERS,
        # the declared implementations, without the baseline's compile form: its
        # compile alone can take over 10 s on a busy machine (a timeout of its own)
        impls="numpy,torch,raises,crashes,hangs,always_crashes",
        grid=["n=8,16"],
        profile="quick",
        budget_s=1,  # the first pass only
        threads=1,
        out=out,
        capabilities=False,
        # the profiling pass's own handling of workers that die or hang:
        # tests/harness/test_breakdown_pass.py
        breakdown="none",
        report=False,
        timeout_s=10,
    )
    rows = frame.set_index("case")
    for impl in ("numpy", "torch", "raises", "crashes", "hangs"):  # fine at n=8
        assert rows.loc[f"square/{impl}/n=8/float32/t1/cpu/glibc/forward", "status"] == "ok", impl
    assert (
        "broken above n=8" in rows.loc["square/raises/n=16/float32/t1/cpu/glibc/forward", "error"]
    )
    assert "exit code 7" in rows.loc["square/crashes/n=16/float32/t1/cpu/glibc/forward", "error"]
    assert (
        "timed out after 10s" in rows.loc["square/hangs/n=16/float32/t1/cpu/glibc/forward", "error"]
    )
    # crashing even at the point where declarations are checked: still only failed points
    for n in (8, 16):
        assert (
            "exit code 9"
            in rows.loc[f"square/always_crashes/n={n}/float32/t1/cpu/glibc/forward", "error"]
        )
    # the run went on: points after the failures were measured
    assert rows.loc["square/numpy/n=16/float32/t1/cpu/glibc/backward", "status"] == "ok"
    assert rows.loc["square/torch/n=16/float32/t1/cpu/glibc/backward", "status"] == "ok"


def test_interrupted_run_keeps_its_points_and_resume_measures_only_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the one run through `python -m harness`: Ctrl-C reaches a process of its own
    out = tmp_path / "interrupted"
    args = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--layers",
        "fft",
        "--impls",
        "numpy,torch",
        "--grid",
        "n=8,16,32,64",
        "--profile",
        "quick",
        "--no-capabilities",
        "--no-report",
        "--breakdown",
        "none",
        "--budget",
        "1",
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    # Ctrl-C as in a terminal: a shell without job control starts background commands
    # (and so this test, under nohup or a CI runner) with SIGINT ignored, which the
    # child would inherit, and Python installs no KeyboardInterrupt handler then.
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    timing = out / "raw" / "timing-000.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # as soon as one point is timed: most of the run is still ahead
        if timing.exists() and timing.read_text().count(ROUNDS) >= 1:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err
    kept = harness.load(out)
    assert (kept["status"] == "ok").sum() >= 1
    assert set(kept["status"]) <= {"ok", "incomplete"}
    setup_lines = (out / "raw" / "setup.jsonl").read_text().count('"event": "setup"')
    before = {p.name: p.read_text().count(ROUNDS) for p in (out / "raw").glob("timing-*.jsonl")}

    done = cli(capsys, "run", "--resume", str(out), "--no-report")
    assert done.returncode == 0, done.stderr
    final = harness.load(out)
    # 4 sizes x 2 implementations x 3 phases (forward, backward, step)
    assert set(final["status"]) == {"ok"} and len(final) == 24
    assert (final["n_processes"] == 2).all()
    # what was measured before was kept, not measured again
    assert (out / "raw" / "setup.jsonl").read_text().count('"event": "setup"') == setup_lines
    after = {p.name: p.read_text().count(ROUNDS) for p in (out / "raw").glob("timing-*.jsonl")}
    # 4 groups (points) x 2 first-pass processes; a budget of 1 s leaves no adaptive pass
    assert sum(after.values()) == 4 * 2 and all(after[k] >= v for k, v in before.items())


def test_resume_refuses_an_incompatible_grid(
    seed_run: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    res = cli_process("run", "--resume", seed_run.attrs["path"], "--grid", "n=16")
    assert res.returncode == 2
    assert res.stderr.startswith("error: --resume") and "--grid (n=16 here" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    # a profile given with --resume is not silently ignored
    res = cli(capsys, "run", "--resume", seed_run.attrs["path"], "--profile", "rigorous")
    assert res.returncode == 2 and "--profile (rigorous here, quick there)" in res.stderr
    # the same value as stored is fine: nothing is missing, so nothing is measured
    res = cli(
        capsys, "run", "--resume", seed_run.attrs["path"], "--profile", "quick", "--no-report"
    )
    assert res.returncode == 0, res.stderr


# Argument errors found before any worker starts are tested in-process, in
# test_cli_commands.py; these need one: the layer's declaration runs in a validate worker.
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "/proc/harness-cannot-write"], "cannot write there"),
        (
            ["--layers-from", str(FIXTURES / "bad_shape_layers.py")],
            "returns shape (3,) at n=4, but the reference returns (4,)",
        ),
        (
            ["--layers-from", str(FIXTURES / "bad_factory_layers.py")],
            "make_inputs must return a tuple of tensors",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    args: list[str], message: str, tmp_path: Path
) -> None:
    res = cli_process("run", *args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert message in lines[0]
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "reports").exists()  # nothing was created or measured


def test_existing_results_folder_is_never_overwritten(
    seed_run: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = Path(seed_run.attrs["path"])
    before = (folder / "results.csv").read_bytes()
    res = cli(capsys, "run", "--out", str(folder))
    assert res.returncode == 2 and "already exists" in res.stderr
    assert (folder / "results.csv").read_bytes() == before


@pytest.mark.skipif(
    not os.environ.get("HARNESS_TEST_CUDA") and not __import__("torch").cuda.is_available(),
    reason="no CUDA device",
)
@pytest.mark.cuda
def test_cuda_run(tmp_path: Path) -> None:
    frame = harness.run(
        layers="conv2d",
        impls="scipy,torch",
        grid=["n=32", "k=3"],
        devices="cuda",
        profile="quick",
        out=tmp_path / "cuda",
        capabilities=False,
        report=False,
    )
    assert set(frame["status"]) == {"ok"}
    env = json.loads((tmp_path / "cuda" / "environment.json").read_text())
    assert env["gpus"]


def test_a_damaged_results_file_is_rebuilt_from_raw_events(
    seed_run: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    folder = tmp_path / "damaged"
    shutil.copytree(seed_run.attrs["path"], folder)
    good = (folder / "results.csv").read_bytes()
    (folder / "results.csv").write_bytes(good[: len(good) // 2])  # cut off mid-row
    res = cli(capsys, "report", str(folder))
    assert res.returncode == 0, res.stderr
    assert "results.csv" in res.stderr and "rebuilt it from raw/" in res.stderr
    assert harness.load(folder).equals(harness.load(seed_run.attrs["path"]))
    # without the raw events there is nothing to rebuild from: one line, exit 2
    (folder / "results.csv").write_bytes(good[: len(good) // 2])
    shutil.rmtree(folder / "raw")
    res = cli_process("report", str(folder))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "results.csv: damaged" in res.stderr
