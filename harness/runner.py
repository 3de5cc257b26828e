"""The runner: plans a run, drives worker processes, and writes the results folder.

The runner never times anything itself. It starts one worker at a time (timings must
not overlap on a small machine):

1. a *validate* worker runs each layer's declaration once (it is the user's code);
2. a *setup* worker (per allocator) checks every variant (deviation, gradcheck, peak
   memory, one-off costs, loop calibration) and computes each layer's capabilities;
3. the *first timing pass*: ``profile.processes`` workers (per allocator) each time
   every group in paired rounds (``harness.worker``), each in its own seeded order,
   with as many rounds as fit in half of the profile's time budget;
4. *adaptive passes*: while the budget lasts, one more worker at a time gives extra
   rounds to the groups whose speedup interval still straddles the ±5% band, points
   next to a crossover first (``harness.stats.plan_extra_rounds``). Each pass is a new
   process: the process level is where most of the uncertainty lives.

A worker that crashes or hangs is killed; the task it was on is recorded as failed
(``Crash``) and a new worker carries on with the rest (``harness.supervisor`` starts,
watches and kills the workers; the runner is the wiring). The runner follows the raw
files incrementally (``harness.collect.Collector``) and rewrites the results
atomically as they arrive; Ctrl-C or SIGTERM keeps everything measured so far, and
``--resume DIR`` measures only what is missing: the timing its earlier sessions spent
counts against the budget (run.json's ``timing``), and a folder whose run is complete
is not measured again (its tables are rewritten from ``raw/``, and the report if asked).
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import json
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from harness.case import Group
from harness.collect import Builder, Collector, Comparison, State, Written
from harness.config import RunConfig, default_threads, merge_settings, run_signature
from harness.declarations import DeclarationChecks
from harness.environment import NoiseMonitor, collect_environment, fingerprint
from harness.errors import ConfigError, HarnessError, ResultsError
from harness.lifetime import FolderLock, clean_stale
from harness.plan import Plan, make_plan
from harness.progress import Progress
from harness.protocol import EventLog
from harness.rebuild import PIECES_FILE, rebuild_outputs, stored_run
from harness.registry import load_registry
from harness.results import (
    ENVIRONMENT_JSON,
    RAW_DIR,
    RESULTS_CSV,
    RUN_JSON,
    atomic_write_json,
    damaged_file,
    versioned,
)
from harness.schedule import Record, Scheduler, Stop, TimingLog
from harness.supervisor import Supervisor

__all__ = ["RunOutcome", "Runner", "default_out_dir", "rebuild_outputs", "run"]

_WRITE_EVERY_S = 2.0

#: Rebuilding the outputs may take at most this share of the runner's time.
_WRITE_SHARE = 0.02
_SAMPLE_EVERY_S = 5.0


class Interrupted(HarnessError):
    """The run was stopped by Ctrl-C or SIGTERM; what was measured is kept."""


def default_out_dir(root: str | Path = "reports") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"run-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"run-{stamp}-{n}"
    return path


@dataclass
class RunOutcome:
    """What ``Runner.run`` produced."""

    path: Path
    rows: int
    """Rows written to results.csv (``ok`` of them measured)."""
    ok: int
    failed: list[str]
    interrupted: bool = False

    @property
    def frame(self) -> pd.DataFrame:
        """The results frame, read back from the folder (the runner never holds it)."""
        from harness.results import load_results

        return load_results(self.path).frame


def _refuse_used_out(out: Path) -> None:
    """``ConfigError`` when ``out`` exists and is not an empty folder: a user's mistake,
    told before anything slow (environment, layers) runs."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(
            f"--out {out}: already exists and is not empty; choose another folder or resume it with --resume {out}"
        )


def _prepare_out(out: Path) -> None:
    _refuse_used_out(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None


def resume_config(folder: Path, given: Mapping[str, Any], env: Mapping[str, Any]) -> RunConfig:
    """The stored config of a folder to resume, after checking that the settings given
    with ``--resume`` agree with it and the machine is the same."""
    stored = stored_run(folder)
    shard = stored.get("shard")
    if isinstance(shard, Mapping) and shard.get("merged"):
        # its raw/ holds the parts' events under raw/part-K/: nothing to resume from
        raise ConfigError(f"{folder} is a merged folder; resume its parts instead")
    try:
        config = RunConfig.from_json(stored["config"])
    except (HarnessError, TypeError, ValueError) as exc:
        raise ResultsError(f"{folder / RUN_JSON}: damaged: {exc}".splitlines()[0]) from None
    asked = RunConfig.from_json({**config.to_json(), **given})
    conflicts = asked.differences(config, list(given))
    if conflicts:
        raise ConfigError(
            f"--resume {folder}: {'; '.join(conflicts)}: a resumed run keeps its own settings; "
            "resume without them, or start a new --out"
        )
    if stored.get("fingerprint") != fingerprint(env):
        raise ConfigError(
            f"--resume {folder}: it was measured on another machine or with other versions "
            f"({stored.get('fingerprint')} vs {fingerprint(env)}); start a new --out"
        )
    return config


def already_complete(runner: Runner) -> RunOutcome:
    """``--resume`` of a folder whose run completed: nothing is checked, measured or
    timed again, and run.json and environment.json stay as they are; the tables are
    rewritten from ``raw/`` (which repairs a damaged one, with its note), and the report
    unless ``--no-report``. One line says so."""
    out = runner.out
    clean_stale(out)
    damaged = damaged_file(out)
    if damaged is not None:
        runner._say(f"note: {damaged}; --resume rebuilds it from {RAW_DIR}/", always=True)
    runner.builder = Builder(runner.plan, runner.config.seed, out / PIECES_FILE)
    try:
        written = runner._write_outputs()
    finally:
        runner.builder.close()
        clean_stale(out)
    runner._say(
        f"{out}: its run is already complete; nothing measured again (tables rewritten "
        f"from {RAW_DIR}/{'' if runner.report else ', no report'})"
    )
    if runner.report:
        runner._write_report()
    return RunOutcome(out, written.rows, written.ok, written.failed)


def _resumed(
    folder: Path, given: Mapping[str, Any] | None, env: Mapping[str, Any]
) -> tuple[RunConfig, Mapping[str, Any], FolderLock | None]:
    """A resumed folder's settings, its run.json as stored, and its lock (held: refused
    while a runner, or an orphaned worker of one, writes the folder)."""
    lock = FolderLock.acquire(folder) if folder.is_dir() else None
    try:
        return (
            resume_config(folder, given if given is not None else {}, env),
            stored_run(folder),
            lock,
        )
    except BaseException:
        if lock is not None:
            lock.release()
        raise


class Runner:
    """Runs a plan into a results folder. ``harness.run`` is the short way in."""

    def __init__(
        self,
        config: RunConfig,
        out: str | Path | None = None,
        resume: str | Path | None = None,
        quiet: bool = False,
        report: bool = True,
        progress: Progress | None = None,
        given: Mapping[str, Any] | None = None,
    ) -> None:
        if resume is None and out is not None:
            _refuse_used_out(Path(out))
        self.env = collect_environment(config.threads, config.allocators)
        self._lock: FolderLock | None = None
        # a resumed folder's run.json: its timing so far, and whether the run is complete
        stored: Mapping[str, Any] = {}
        if resume is not None:
            self.out = Path(resume)
            config, stored, self._lock = _resumed(self.out, given, self.env)
            self.resuming = True
        else:
            self.out = Path(out) if out is not None else default_out_dir()
            self.resuming = False
        self.config = config
        self.registry, self.load_warnings = load_registry(config.layers_from)
        self.plan: Plan = make_plan(self.registry, config)
        self.quiet = quiet
        self.report = report
        self.progress = progress or Progress(enabled=not quiet)
        self.profile = config.profile_spec
        self.collector = Collector(self.out)
        # made by run(), once the results folder exists: its pieces live in there
        self.builder: Builder | None = None
        self.noise = NoiseMonitor()
        # a complete run resumed is not measured again (``already_complete``)
        self.was_complete = stored.get("complete") is True
        self.scheduler = Scheduler(
            self.plan,
            self.profile,
            clock=time.monotonic,
            comparisons=self._comparisons,
            logs=str(self.out / "logs"),
            earlier=TimingLog.from_json(stored["timing"], self.profile.budget_s)
            if "timing" in stored
            else None,
            startups=lambda: self.supervisor.startups.get("timing", ()),
        )
        # the scheduler fills it in as the passes go
        self.timing: TimingLog = self.scheduler.timing
        self._last_write = 0.0
        self._write_cost = 0.0
        self._last_sample = time.monotonic()
        self._complete = False
        # why an incomplete run stopped (run.json's "stopped"; the report says it)
        self._stopped: str | None = None
        self._declaration_notes: list[str] = []
        # spawns, watches and kills the workers; a hung task's limit is the scheduler's
        self.supervisor = Supervisor(
            self.out,
            config,
            self.env,
            self.progress,
            task_limit=self.scheduler.task_limit,
            tick=self._maybe_write,
        )
        self.declarations = DeclarationChecks(
            self.plan,
            self.registry,
            config,
            str(self.env.get("cpu_capability")),
            self.supervisor.cache_root(),
        )
        self.supervisor.lock = self._lock

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any],
        out: str | Path | None = None,
        resume: str | Path | None = None,
        quiet: bool = False,
        report: bool = True,
    ) -> Runner:
        """A runner from parsed settings (the CLI's); with ``resume`` they are checked
        against the folder's stored settings rather than used."""
        if resume is not None:
            return cls(RunConfig(), resume=resume, quiet=quiet, report=report, given=settings)
        return cls(RunConfig(**settings), out=out, quiet=quiet, report=report)

    # -- validation -------------------------------------------------------------------

    def validate(self) -> list[str]:
        """Check every layer's declaration (``harness.declarations``): the notes of
        implementations that fail; ``LayerDefinitionError`` for a broken one."""
        return self.declarations.run()

    # -- the run --------------------------------------------------------------------

    def _run_json(self) -> dict[str, Any]:
        from harness.shard import plan_id

        data: dict[str, Any] = {
            "config": self.config.to_json(),
            "profile": {"name": self.profile.name, **vars(self.profile)},
            "layers": {name: info.to_json() for name, info in self.plan.info.items()},
            "groups": len(self.plan.groups),
            "created": self.env["date"],
            "fingerprint": fingerprint(self.env),
            "command": " ".join(sys.argv),
            "plan": plan_id(self.config.plan_json()),
            "timing": {
                **self.scheduler.record().to_json(),
                # spent timed, waiting for pools, preparing groups (the budget line)
                "timed_s": round(self.collector.state.timed_s, 2),
                "pool_wait_s": round(self.collector.state.pool_wait_s, 2),
                "prepare_s": round(self.collector.state.prepare_s, 2),
            },
            "cache": self._cache_record(),
            # false until every pass ended: a run killed, interrupted or cut by a full
            # disk says so in report and compare (harness.report.faults)
            "complete": self._complete,
            **({"stopped": self._stopped} if self._stopped and not self._complete else {}),
            # what a fresh process of the user's gets: the report says which verdicts
            # are for it (threads default to it unless --threads says otherwise)
            "default_threads": default_threads(),
            # what the layers' own code warned as it loaded (the report's head)
            "load_warnings": list(self.load_warnings),
            # implementations that failed their declaration check (the report's head)
            "declaration_notes": list(self._declaration_notes),
        }
        if self.config.shard is not None:
            data["shard"] = {
                "index": self.config.shard.index,
                "count": self.config.shard.count,
                "plan": data["plan"],
            }
        return versioned(data)

    def run(self) -> RunOutcome:
        """Measure what the folder lacks, write it, and the report. A full disk is one
        line (``ResultsError``); the folder then stays marked incomplete in run.json."""
        try:
            return self._run()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            raise ResultsError(self._disk_full(exc)) from None
        finally:
            if self._lock is not None:
                self._lock.release()

    def _disk_full(self, exc: OSError) -> str:
        """The one line of a full disk; the folder, if the run had begun writing it, is
        marked incomplete with why (best effort: the disk is full)."""
        where = exc.filename or f"{self.out}/…"
        if not (self.out / RUN_JSON).exists():
            return f"no space left on device writing {where}; nothing was measured; free space and run again"
        self._complete = False  # the tables may be cut short, or older than raw/
        self._stopped = f"no space left on device writing {where}"
        with contextlib.suppress(OSError):
            atomic_write_json(self.out / RUN_JSON, self._run_json())
        return (
            f"no space left on device writing {where}; what was measured is in "
            f"{self.out / RAW_DIR}; free space and run `python -m harness run --resume {self.out}`"
        )

    def _run(self) -> RunOutcome:
        if self.resuming and self.was_complete:
            return already_complete(self)
        notes = self._declaration_notes = self.validate()
        if not self.resuming:
            _prepare_out(self.out)
        if self._lock is None:
            self._lock = FolderLock.acquire(self.out)
        self.supervisor.lock = self._lock  # workers inherit it
        clean_stale(self.out)  # cut atomic writes and the compile cache of a killed run
        if self.resuming:  # its tables are rewritten from raw/: a repair is said, not silent
            damaged = damaged_file(self.out)
            if damaged is not None:
                self._say(f"note: {damaged}; --resume rebuilds it from {RAW_DIR}/", always=True)
        for note in [*self.plan.dropped, *notes]:
            self._say(f"note: {note}")
        atomic_write_json(self.out / RUN_JSON, self._run_json())
        if not (self.out / ENVIRONMENT_JSON).exists():
            atomic_write_json(self.out / ENVIRONMENT_JSON, versioned(dict(self.env)))
        (self.out / RAW_DIR).mkdir(exist_ok=True)
        (self.out / "logs").mkdir(exist_ok=True)
        # a scratch file left by a run killed outright is truncated, and removed by close()
        self.builder = Builder(self.plan, self.config.seed, self.out / PIECES_FILE)
        interrupted = False
        old_term = signal.signal(signal.SIGTERM, self._on_term)
        started = time.monotonic()
        try:
            self._passes()
            self._complete = True
        except (KeyboardInterrupt, Interrupted):
            interrupted = True
            self._stopped = "it was interrupted (Ctrl-C or SIGTERM)"
        finally:
            signal.signal(signal.SIGTERM, old_term)
            self.progress.close()
            try:
                written = self._write_outputs()
                self._write_run_records()
            finally:  # a full disk must not leave the compile cache or temporaries behind
                self.builder.close()
                self.supervisor.close_spares()
                self.supervisor.close_caches()
                clean_stale(self.out)
            if self._lock is not None:
                self._lock.release()
        failed = written.failed
        if interrupted:
            self._say(
                f"interrupted: kept {written.ok} measured points in {self.out}; "
                f"continue with: python -m harness run --resume {self.out}",
                always=True,
            )
        else:
            self._say(
                f"measured {written.rows} points in {time.monotonic() - started:.0f}s into {self.out}"
            )
        if failed:
            self._say(f"{len(failed)} points failed:", always=True)
            for line in failed[:50]:
                self._say(f"  {line}", always=True)
            if len(failed) > 50:
                self._say(
                    f"  ... and {len(failed) - 50} more (see {self.out / RESULTS_CSV})", always=True
                )
        if self.report and not interrupted:
            self._write_report()
        return RunOutcome(self.out, written.rows, written.ok, failed, interrupted)

    def _write_run_records(self) -> None:
        atomic_write_json(self.out / RUN_JSON, self._run_json())
        try:
            env = json.loads((self.out / ENVIRONMENT_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            env = versioned(dict(self.env))
        env["noise"] = self.noise.summary()
        atomic_write_json(self.out / ENVIRONMENT_JSON, env)

    def _on_term(self, signum: int, frame: Any) -> None:
        raise Interrupted("terminated")

    def _say(self, text: str, always: bool = False) -> None:
        if always or not self.quiet:
            self.progress.message(text)

    def _write_report(self) -> None:
        from harness.report import write_report

        try:
            path = write_report(self.out)
        except Exception as exc:  # the results are saved; a report failure must not hide them
            self._say(
                f"report not written ({type(exc).__name__}: {exc}); retry with: python -m harness report {self.out}",
                always=True,
            )
            return
        self._say(f"report: {path}")

    # -- the passes -------------------------------------------------------------------

    def _passes(self) -> None:
        """Run what the scheduler asks for (``harness.schedule``) until it stops."""
        while True:
            step = self.scheduler.next(self.collector.poll())
            if isinstance(step, Stop):
                break
            if isinstance(step, Record):
                log = EventLog(self.out / RAW_DIR / step.raw)
                for event in step.events:
                    log.write(event)
                log.close()
                continue
            if step.begin is not None:
                self.progress.begin(*step.begin)
            raw = self.out / RAW_DIR / step.raw
            tasks = list(step.tasks)
            self.supervisor.run_worker(
                step.mode, tasks, raw, step.allocator, step.process, step.attempt
            )
        self.supervisor.close_spares()  # timing is over: the last of a pair has no job
        # Issue 19's profiling pass runs here, after timing, when it is defined.
        breakdown = getattr(self, "_breakdown_pass", None)
        if breakdown is not None:
            breakdown()

    def _breakdown_pass(self) -> None:
        """Where the time goes (issue 19): after every timing pass, unless --breakdown
        none; its cost goes to run.json's timing (``TimingLog.profiling``)."""
        from harness.breakdown_pass import breakdown_pass

        self.timing.profiling = breakdown_pass(self)

    def _comparisons(
        self, state: State, groups: Sequence[Group]
    ) -> dict[str, Mapping[str, Comparison]]:
        # the builder keeps each group's analysis until an event changes the group
        assert self.builder is not None
        self.builder.refresh(state, groups)  # every changed group in one go
        return {g.name: self.builder.group(state, g).comparisons for g in groups}

    # -- run.json's record of the cache (harness.cache) ------------------------------

    def _cache_record(self) -> dict[str, Any]:
        """run.json's ``cache``: which checks came from the cache, for which layers."""
        from harness.breakdown_pass import PROFILE_FILE
        from harness.cache import cache_summary
        from harness.collect import SETUP_FILE as setup_file

        events = EventLog.read(self.out / RAW_DIR / setup_file)
        profiled = self.out / RAW_DIR / PROFILE_FILE
        if profiled.exists():
            events += EventLog.read(profiled)
        record = cache_summary(self.supervisor.cache_root(), events)
        for layer, status in self.declarations.cache.items():
            into = record["hits"] if status == "hit" else record["misses"]
            into.setdefault("validate", {})[layer] = 1
            record["damaged"] += status == "damaged"
        return record

    # -- outputs --------------------------------------------------------------------

    def _maybe_write(self) -> None:
        now = time.monotonic()
        if now - self._last_sample >= _SAMPLE_EVERY_S:
            self.noise.sample()
            self._last_sample = now
        # Rebuilding the outputs costs time in proportion to the grid: on a large
        # grid, write less often so that it stays a small share of the runner's time.
        interval = max(_WRITE_EVERY_S, self._write_cost / _WRITE_SHARE)
        if now - self._last_write >= interval:
            self._write_outputs()
            # run.json too, still marked incomplete: a runner killed outright (SIGKILL,
            # OOM) leaves the timing it spent for --resume to count against the budget
            atomic_write_json(self.out / RUN_JSON, self._run_json())

    def _write_outputs(self) -> Written:
        assert self.builder is not None
        t0 = time.monotonic()
        written = self.builder.write(self.collector.poll(), self.out)
        self._last_write = time.monotonic()
        self._write_cost = self._last_write - t0
        return written


def run(
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    config: str | Path | None = None,
    quiet: bool = True,
    report: bool = True,
    **settings: Any,
) -> pd.DataFrame:
    """Measure a grid and return the results frame (columns: ``harness.frame.COLUMNS``).

    The settings are ``RunConfig``'s fields, the same as ``python -m harness run``'s
    options (``grid=["n=8,16", "k=3"]`` or ``{"n": [8, 16]}``, ``dtypes="float32"``,
    ``threads=(1, 2)``, ``profile="quick"``, ...). ``config`` names a TOML file of
    settings, merged as ``run --config`` merges it (``config.merge_settings``: keywords
    win, ``grid`` and ``layers_from`` add to the file's). The results folder is
    ``frame.attrs["path"]``.
    """
    unknown = sorted(set(settings) - set(RunConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"harness.run: unknown settings {unknown}")
    settings, out = merge_settings(config, settings, out=out, resume=resume)
    if resume is not None:
        runner = Runner.from_settings(settings, resume=resume, quiet=quiet, report=report)
    else:
        runner = Runner.from_settings(settings, out=out, quiet=quiet, report=report)
    outcome = runner.run()
    frame = outcome.frame
    frame.attrs["path"] = str(outcome.path)
    if outcome.interrupted:
        raise KeyboardInterrupt
    return frame


run.__signature__ = run_signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, default=None),
        inspect.Parameter("resume", inspect.Parameter.KEYWORD_ONLY, default=None),
        inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None),
        inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=True),
        inspect.Parameter("report", inspect.Parameter.KEYWORD_ONLY, default=True),
    ]
)
