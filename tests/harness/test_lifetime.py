"""Issue 18: a results folder has one writer at a time, workers die with their runner,
and what a killed writer leaves behind is cleaned up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import ConfigError
from harness.lifetime import INDUCTOR_CACHE, FolderLock, clean_stale

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_locked_folder_refuses_a_second_writer(tmp_path: Path) -> None:
    lock = FolderLock.acquire(tmp_path)
    try:
        with pytest.raises(ConfigError, match=rf"pid {os.getpid()}") as err:
            FolderLock.acquire(tmp_path)
        assert "\n" not in str(err.value)
    finally:
        lock.release()
    FolderLock.acquire(tmp_path).release()  # free again once released


def test_resume_of_a_folder_being_written_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = FolderLock.acquire(tmp_path)
    try:
        code = main(["run", "--resume", str(tmp_path), "--no-report"])
    finally:
        lock.release()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and "being written" in err[0]


def test_stale_temporary_files_and_the_compile_cache_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".results.csv.x1y2.tmp").write_text("half")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / ".fft-time.png.abc.tmp").write_text("half")
    (tmp_path / INDUCTOR_CACHE / "kernels").mkdir(parents=True)
    (tmp_path / "results.csv").write_text("kept")
    removed = clean_stale(tmp_path)
    assert len(removed) == 3
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["plots", "results.csv"]


def test_a_child_started_with_die_with_parent_dies_with_its_parent(tmp_path: Path) -> None:
    # the parent starts a child the way the runner starts a worker, then is SIGKILLed
    script = (
        "import subprocess, sys, time\n"
        "from harness.lifetime import die_with_parent\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],\n"
        "                         start_new_session=True, preexec_fn=die_with_parent)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert _alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _workers_of(out: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "harness.worker" in cmd and str(out) in cmd and _alive(int(proc.name)):
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_workers_die_with_a_killed_runner_and_the_folder_can_be_resumed(tmp_path: Path) -> None:
    out = tmp_path / "run"
    runner = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--layers", "fft", "--impls", "numpy,torch",
         "--grid", "n=8,16", "--profile", "quick", "--no-capabilities", "--no-memory",
         "--no-report", "--budget", "1", "--breakdown", "none", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not _workers_of(out):
        time.sleep(0.05)
    assert _workers_of(out), "no worker started"
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    time.sleep(1.5)
    assert _workers_of(out) == []
    # nothing writes the folder any more: the lock is free and a resume finishes it
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--resume", str(out), "--no-report", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not list(out.glob(".*.tmp")) and not (out / INDUCTOR_CACHE).exists()
