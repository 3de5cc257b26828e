"""The supervisor: starts worker processes, watches them, kills them, records crashes.

It decides nothing about what to run (``harness.schedule`` does) and keeps no results
(``harness.collect`` folds the raw files): given a job, it writes the job file, starts
``python -m harness.worker JOB.json`` with the run's environment, follows the worker's
events, and when the worker dies or hangs on a task, kills it and writes a ``Crash``
for that task so that the next worker carries on with the rest.

A worker dies with the runner (``harness.lifetime.die_with_parent``) and inherits the
folder's lock (``FolderLock``, passed by file descriptor), so an orphaned worker still
keeps other runners out of the folder while it lives. Where a worker keeps ONNX
exports and torch's compile caches is the cache across runs (``harness.cache``) or,
with ``--no-cache``, a folder inside the results folder removed at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import RunConfig
from harness.environment import worker_env
from harness.errors import ResultsError
from harness.lifetime import INDUCTOR_CACHE, FolderLock, die_with_parent
from harness.progress import Progress
from harness.protocol import (
    CapabilitiesTask,
    Crash,
    EventLog,
    EventReader,
    Finished,
    GradcheckTask,
    Job,
    ProfileTask,
    RoundsTask,
    SetupTask,
    Started,
    Task,
)

__all__ = ["STARTUP_TIMEOUT_S", "Supervisor", "describe_task", "kill", "run_to_end"]


@dataclass
class _Spare:
    """A timing worker started ahead of its job (``harness.worker.spare``)."""

    proc: subprocess.Popen[bytes]
    ready: Path  # created by the worker once it has started
    log: Path  # what it prints until its job names another file
    spawned: float


#: Seconds a worker may take to start (import torch, build the registry).
STARTUP_TIMEOUT_S = 180.0

_POLL_S = 0.05


class Supervisor:
    """Runs one worker's job at a time for a results folder. Timing workers start two
    at a time (``_ordered``): the second waits, blocked, for the next job.

    ``task_limit`` says how long a task may run before its worker counts as hung (the
    scheduler's rule); ``tick`` is called while a worker runs (the runner's write
    cadence). ``lock`` is the folder's lock, set once the runner holds it."""

    def __init__(
        self,
        out: Path,
        config: RunConfig,
        env: Mapping[str, Any],
        progress: Progress,
        task_limit: Callable[[Task], float],
        tick: Callable[[], None],
    ) -> None:
        self.out = out
        self.config = config
        self.env = env
        self.progress = progress
        self.task_limit = task_limit
        self.tick = tick
        self.lock: FolderLock | None = None
        self._min_time = config.profile_spec.min_time
        self._cache_dir: Path | None = None
        #: per mode, each worker's start-up: spawned to its first task started (the
        #: interpreter, torch, the layers, the toolchains' warm-up), as measured here
        self.startups: dict[str, list[float]] = {}
        #: per allocator, timing workers started ahead and waiting for a job
        self._spares: dict[str, list[_Spare]] = {}
        self._spare_count = 0

    # -- one worker ------------------------------------------------------------------

    def run_worker(
        self,
        mode: str,
        tasks: list[Task],
        raw: Path,
        allocator: str,
        process: int,
        attempt: int,
    ) -> None:
        """Run ``tasks`` in one worker writing ``raw``, until it ends, dies or hangs."""
        tag = f"{mode}-{max(process, 0):03d}-{allocator}-{attempt}"
        job = Job(
            mode,  # type: ignore[arg-type]
            tuple(tasks),
            str(raw),
            process=process,
            min_time=self._min_time,
            layers_from=self.config.layers_from,
            seed=self.config.seed,
            memory=self.config.memory,
            phases=self.config.phases,
            cache_dir=str(self.cache_root()) if self.cache_root() else None,
        )
        job_path = self.out / "logs" / f"{tag}.job.json"
        job.write(job_path)
        extra = self.cache_env()
        env = worker_env(max(self.config.threads), allocator, extra)
        reader = EventReader(raw)
        reader.offset = raw.stat().st_size if raw.exists() else 0
        log = self.out / "logs" / f"{tag}.log"
        startups = self.startups.setdefault(mode, [])
        if mode == "timing":
            proc, spawned = self._ordered(job_path, log, env, allocator, startups), None
        else:
            proc, spawned = self._spawn([str(job_path)], log, env), time.monotonic()
        try:
            self._watch(proc, raw, reader, startups, spawned)
        except BaseException:
            kill(proc)
            raise

    def _spawn(
        self, args: list[str], log: Path, env: Mapping[str, str], orders: bool = False
    ) -> subprocess.Popen[bytes]:
        """Start ``python -m harness.worker ARGS`` printing to ``log`` (``orders``: with
        a pipe on its stdin, for a worker started ahead of its job)."""
        with open(log, "wb") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "harness.worker", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE if orders else subprocess.DEVNULL,
                env=dict(env),
                # A process group of its own (Ctrl-C reaches the runner, which stops
                # it), in the runner's session: the kernel's autogroup scheduling
                # groups processes by session, and a user's training script shares
                # the session it was started from. A session of its own made the
                # worker's threads a group apart: beside a busy process of the user's
                # session, torch's 2-thread conv2d step at n=128 took 32 ms a call
                # against 0.5 ms in the session (2026-11-30, AVX512, 2 cores).
                process_group=0,
                cwd=os.getcwd(),
                # it dies with the runner, and holds the folder's lock while it lives
                preexec_fn=die_with_parent,
                pass_fds=(self.lock.fd,) if self.lock is not None else (),
            )

    # -- timing workers, started in pairs ----------------------------------------------

    def _ordered(
        self,
        job_path: Path,
        log: Path,
        env: Mapping[str, str],
        allocator: str,
        startups: list[float],
    ) -> subprocess.Popen[bytes]:
        """A timing worker running ``job_path``: one started beside the last if it is
        ready, otherwise two started together (``harness.worker.spare``), the first
        given the job once both have started. No start-up then runs beside a timed
        value, and two start in about the time of one."""
        ready = [s for s in self._spares.get(allocator, []) if s.proc.poll() is None]
        if not ready:
            ready = [self._spawn_spare(job_path, env, allocator) for _ in range(2)]
            self._await_started(ready, startups)
        spare = ready.pop(0)
        spare.ready.unlink(missing_ok=True)
        self._spares[allocator] = ready
        log.write_text(f"started ahead of its job; its start-up printed to {spare.log.name}\n")
        order = json.dumps({"job": str(job_path), "log": str(log)}) + "\n"
        assert spare.proc.stdin is not None
        with contextlib.suppress(OSError):  # it died meanwhile: _watch records how
            spare.proc.stdin.write(order.encode())
            spare.proc.stdin.close()
        return spare.proc

    def _spawn_spare(self, like: Path, env: Mapping[str, str], allocator: str) -> _Spare:
        self._spare_count += 1
        name = f"spare-{self._spare_count:03d}-{allocator}"
        ready, log = self.out / "logs" / f"{name}.ready", self.out / "logs" / f"{name}.log"
        ready.unlink(missing_ok=True)
        proc = self._spawn(["--spare", str(like), str(ready)], log, env, orders=True)
        return _Spare(proc, ready, log, time.monotonic())

    def _await_started(self, spares: list[_Spare], startups: list[float]) -> None:
        """Wait until every one of ``spares`` has started or died; record the wall time
        waited as each one's start-up, shared among those started together (what the
        run paid per process, which the scheduler plans on)."""
        begun = time.monotonic()
        waiting = list(spares)
        while waiting:
            waiting = [s for s in waiting if s.proc.poll() is None and not s.ready.exists()]
            if waiting and time.monotonic() - begun > STARTUP_TIMEOUT_S:
                for s in spares:
                    kill(s.proc)
                raise ResultsError(
                    f"a worker did not start within {STARTUP_TIMEOUT_S:.0f}s; see {self.out / 'logs'}"
                )
            self.tick()
            if waiting:
                time.sleep(_POLL_S)
        share = (time.monotonic() - begun) / len(spares)
        startups.extend(share for s in spares if s.ready.exists())

    def close_spares(self) -> None:
        """Stop the workers started ahead that no job needed (the last of a pair)."""
        for spares in self._spares.values():
            for spare in spares:
                kill(spare.proc)
                spare.ready.unlink(missing_ok=True)
        self._spares.clear()

    def _watch(
        self,
        proc: subprocess.Popen[bytes],
        raw: Path,
        reader: EventReader,
        startups: list[float],
        spawned: float | None,
    ) -> None:
        current: Task | None = None
        finished = False
        since = time.monotonic()
        limit = STARTUP_TIMEOUT_S
        started = spawned is None  # a worker started ahead: its start-up is recorded
        while True:
            code = proc.poll()
            for event in reader.poll():
                if isinstance(event, Started):
                    if not started and spawned is not None:  # its first task: started
                        started = True
                        startups.append(time.monotonic() - spawned)
                    current = event.task
                    since = time.monotonic()
                    limit = self.task_limit(current)
                    self.progress.step(describe_task(current))
                elif isinstance(event, Finished):
                    # everything is written: the worker has only to exit, and a slow
                    # exit (interpreter teardown on a loaded machine) is no fault
                    current, finished = None, True
                    since, limit = time.monotonic(), STARTUP_TIMEOUT_S
            if code is not None:
                if current is not None:
                    EventLog(raw).write(Crash(current, self._died(code)))
                self.tick()
                return
            if time.monotonic() - since > limit:
                kill(proc)
                if finished:
                    self.tick()
                    return
                if current is None:
                    raise ResultsError(
                        f"a worker did not start within {limit:.0f}s; see {self.out / 'logs'}"
                    )
                what = describe_task(current)
                if isinstance(current, SetupTask):
                    what += (
                        ": building and checking it took longer than the limit of one "
                        "setup task; `--timeout SECONDS` raises it"
                    )
                EventLog(raw).write(Crash.timeout(current, limit, what))
                return
            self.tick()
            time.sleep(_POLL_S)

    def _died(self, code: int) -> str:
        if code < 0:
            return f"worker killed by signal {-code} while running it; see {self.out / 'logs'}"
        return f"worker crashed (exit code {code}) while running it; see {self.out / 'logs'}"

    # -- the caches a worker uses (harness.cache) ------------------------------------

    def cache_root(self) -> Path | None:
        """The cache of checks, ONNX exports and compiled kernels; None: --no-cache."""
        if not self.config.cache:
            return None
        from harness.cache import cache_root

        return cache_root(self.config.cache_dir)

    def cache_env(self) -> dict[str, str]:
        """Where a worker keeps ONNX exports and torch's compile caches: under the
        cache across runs (inductor's in a folder per torch and CPU capability), or,
        with --no-cache, in this run's folder (removed at the end, as before)."""
        root = self.cache_root()
        if root is None:
            run_cache = str(self._inductor_cache())
            return {"TORCHINDUCTOR_CACHE_DIR": run_cache, "HARNESS_CACHE_DIR": run_cache}
        from harness.cache import inductor_dir

        versions = self.env.get("versions") or {}
        inductor = inductor_dir(
            root, str(versions.get("torch")), str(self.env.get("cpu_capability"))
        )
        return {"TORCHINDUCTOR_CACHE_DIR": str(inductor), "HARNESS_CACHE_DIR": str(root)}

    def _inductor_cache(self) -> Path:
        # With --no-cache (see cache_env), one cache per run: the setup worker compiles
        # cold (the one-off cost a user pays), the timing workers reuse its kernels. It
        # lives in the results folder (a killed run leaves nothing in the system's
        # temporary folder; a resume removes it) and is removed at the end.
        if self._cache_dir is None:
            self._cache_dir = self.out / INDUCTOR_CACHE
            self._cache_dir.mkdir(exist_ok=True)
        return self._cache_dir

    def close_caches(self) -> None:
        """At the end of a run: remove this run's cache (--no-cache), trim the cache
        across runs."""
        if self._cache_dir is not None:
            shutil.rmtree(self._cache_dir, ignore_errors=True)
        root = self.cache_root()
        if root is None:
            return
        from harness.cache import Store

        # never raises: a cache that cannot be trimmed only grows until a run trims it
        Store(root).evict(keep=[Path(self.cache_env()["TORCHINDUCTOR_CACHE_DIR"])])


def run_to_end(
    job_path: Path, env: Mapping[str, str], timeout: float
) -> tuple[int | None, list[str]]:
    """Run a worker on ``job_path`` to its end: its exit code (None: it timed out and
    was killed) and the last line it printed, if any."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "harness.worker", str(job_path)],
            capture_output=True,
            text=True,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            preexec_fn=die_with_parent,
        )
    except subprocess.TimeoutExpired:
        return None, []
    return proc.returncode, (proc.stdout + proc.stderr).strip().splitlines()[-1:]


def describe_task(task: Task) -> str:
    """A task in a few words, for the progress line and a timeout's message."""
    if isinstance(task, SetupTask):
        return task.variant.name
    if isinstance(task, RoundsTask):
        return task.group.name
    if isinstance(task, GradcheckTask):
        return f"gradcheck {task.layer}/{task.impl}"
    if isinstance(task, CapabilitiesTask):
        return f"capabilities {task.layer}"
    if isinstance(task, ProfileTask):
        return f"profile {task.variant.name}"
    return f"validate {task.layer}"


def kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill a worker and its process group (it leads a process group of its own)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait()
