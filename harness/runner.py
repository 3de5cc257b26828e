"""The runner: plans a run, drives worker processes, and writes the results folder.

The runner never times anything itself. It starts one worker at a time (timings must
not overlap on a small machine):

1. a *setup* worker checks every variant (deviation, gradcheck, one-off costs, loop
   calibration) and computes each layer's capability matrix;
2. ``profile.processes`` *timing* workers each run every case that set up cleanly,
   each in its own shuffled order, so slow drift and allocator state do not favour
   one implementation; their pyperf runs merge into one suite.

A worker that crashes or hangs (no progress within ``profile.case_timeout_s``) is
killed; the case it was on is recorded as failed and a new worker carries on with the
rest. Results are rewritten atomically as they arrive; Ctrl-C or SIGTERM keeps
everything measured so far, and ``--resume DIR`` measures only what is missing.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from harness.case import PHASES
from harness.collect import (
    RAW_DIR,
    SETUP_FILE,
    State,
    build_outputs,
    read_state,
    suite_json,
    timing_file,
)
from harness.config import RunConfig
from harness.environment import collect_environment, fingerprint, worker_env
from harness.errors import ConfigError, HarnessError, LayerDefinitionError, ResultsError
from harness.forms import quiet as silence
from harness.plan import Plan, make_plan
from harness.progress import Progress
from harness.registry import Registry
from harness.results import (
    CAPABILITIES_CSV,
    DEVIATIONS_CSV,
    ENVIRONMENT_JSON,
    PYPERF_JSON,
    RESULTS_CSV,
    RUN_JSON,
    atomic_write_csv,
    atomic_write_json,
    atomic_write_text,
)
from harness.worker import EventLog

__all__ = ["RunOutcome", "Runner", "default_out_dir", "run"]

_WRITE_EVERY_S = 2.0
_STARTUP_TIMEOUT_S = 180.0


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
    frame: pd.DataFrame
    failed: list[str]
    interrupted: bool = False


def _prepare_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(
            f"--out {out}: already exists and is not empty; choose another folder or resume it with --resume {out}"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None


def _check_resume(folder: Path, config: RunConfig, env: dict[str, Any]) -> RunConfig:
    """The stored config of a folder to resume, after checking it may be resumed."""
    if not folder.is_dir():
        raise ConfigError(f"--resume {folder}: no such folder")
    path = folder / RUN_JSON
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        stored_config = RunConfig.from_json(stored["config"])
    except FileNotFoundError:
        raise ConfigError(f"--resume {folder}: not a results folder (no {RUN_JSON})") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--resume {folder}: {RUN_JSON} is unreadable ({exc})") from None
    if config != RunConfig() and config.updated(
        profile=stored_config.profile
    ) != stored_config.updated(profile=stored_config.profile):
        raise ConfigError(
            f"--resume {folder}: it was made with a different grid or selection "
            f"({_describe_config(stored_config)}); resume it without other options, or start a new --out"
        )
    if stored.get("fingerprint") != fingerprint(env):
        raise ConfigError(
            f"--resume {folder}: it was measured on another machine or with other versions "
            f"({stored.get('fingerprint')} vs {fingerprint(env)}); start a new --out"
        )
    return stored_config


def _describe_config(config: RunConfig) -> str:
    grid = " ".join(f"{k}={','.join(v)}" for k, v in config.grid.items()) or "default grid"
    return f"layers={','.join(config.layers or ['all'])} impls={','.join(config.impls or ['all'])} {grid} dtypes={','.join(config.dtypes)}"


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
    ) -> None:
        self.env = collect_environment(config.threads)
        if resume is not None:
            self.out = Path(resume)
            config = _check_resume(self.out, config, self.env)
            self.resuming = True
        else:
            self.out = Path(out) if out is not None else default_out_dir()
            self.resuming = False
        self.config = config
        with silence():
            self.registry = Registry.default(config.layers_from)
        self.plan: Plan = make_plan(self.registry, config)
        self.quiet = quiet
        self.report = report
        self.progress = progress or Progress(enabled=not quiet)
        self.profile = config.profile_spec
        self._last_write = 0.0
        self._cache_dir: Path | None = None

    # -- validation -------------------------------------------------------------------

    def _declared_impls(self, name: str) -> list[str]:
        layer = self.registry.get(name)
        return list(dict.fromkeys(layer.implementation(i).origin for i in self.plan.impls_of(name)))

    def validate(self) -> list[str]:
        """Check every layer's declaration by running it once, in a worker process:
        it is the user's code, and it may raise, crash or hang. A broken declaration
        raises ``LayerDefinitionError``; an implementation that fails is a note (its
        points will be measured, and fail, in isolation)."""
        tasks = [
            {"key": f"validate:{name}", "layer": name, "impls": self._declared_impls(name)}
            for name in self.plan.layers
        ]
        limit = _STARTUP_TIMEOUT_S + sum(30.0 * (len(t["impls"]) + 1) for t in tasks)
        code: int | None
        with tempfile.TemporaryDirectory(prefix="harness-validate-") as tmp:
            raw = Path(tmp) / "validate.jsonl"
            job = Path(tmp) / "job.json"
            atomic_write_json(
                job,
                {
                    "mode": "validate",
                    "tasks": tasks,
                    "raw": str(raw),
                    "process": -1,
                    "profile": vars(self.profile),
                    "layers_from": list(self.config.layers_from),
                    "seed": self.config.seed,
                },
            )
            try:
                proc = subprocess.run(
                    [sys.executable, "-m", "harness.worker", str(job)],
                    capture_output=True,
                    text=True,
                    env=worker_env(max(self.config.threads)),
                    stdin=subprocess.DEVNULL,
                    timeout=limit,
                )
                code, tail = proc.returncode, (proc.stdout + proc.stderr).strip().splitlines()[-1:]
            except subprocess.TimeoutExpired:
                code, tail = None, []
            events = EventLog.read(raw)
        notes: list[str] = []
        done = set()
        for event in events:
            if event["event"] == "invalid":
                raise LayerDefinitionError(event["error"])
            if event["event"] == "validated":
                notes += event["notes"]
                done.add(event["layer"])
        for task in tasks:
            if task["layer"] not in done:
                why = (
                    f"timed out after {limit:.0f}s"
                    if code is None
                    else f"the worker exited with code {code}"
                )
                notes.append(
                    f"layer {task['layer']!r}: checking its declaration failed ({why}"
                    + (f": {tail[0]}" if tail else "")
                    + "); its points will be measured in isolation"
                )
        return notes

    # -- the run --------------------------------------------------------------------

    def run(self) -> RunOutcome:
        notes = self.validate()
        if not self.resuming:
            _prepare_out(self.out)
        for note in [*self.plan.dropped, *notes]:
            self._say(f"note: {note}")
        atomic_write_json(
            self.out / RUN_JSON,
            {
                "config": self.config.to_json(),
                "profile": {"name": self.profile.name, **vars(self.profile)},
                "variants": [v.name for v in self.plan.variants],
                "created": self.env["date"],
                "fingerprint": fingerprint(self.env),
                "command": " ".join(sys.argv),
            },
        )
        if not (self.out / ENVIRONMENT_JSON).exists():
            atomic_write_json(self.out / ENVIRONMENT_JSON, self.env)
        (self.out / RAW_DIR).mkdir(exist_ok=True)
        (self.out / "logs").mkdir(exist_ok=True)
        interrupted = False
        old_term = signal.signal(signal.SIGTERM, self._on_term)
        started = time.monotonic()
        try:
            self._setup_pass()
            self._timing_passes()
        except (KeyboardInterrupt, Interrupted):
            interrupted = True
        finally:
            signal.signal(signal.SIGTERM, old_term)
            self.progress.close()
            frame = self._write_outputs()
            if self._cache_dir is not None:
                shutil.rmtree(self._cache_dir, ignore_errors=True)
        bad = frame[frame["status"].isin(["error", "incomplete"])]
        failed = [
            f"{c}: {s}: {e}"
            for c, s, e in zip(bad["case"], bad["status"], bad["error"], strict=True)
        ]
        if interrupted:
            self._say(
                f"interrupted: kept {int((frame['status'] == 'ok').sum())} measured points in {self.out}; "
                f"continue with: python -m harness run --resume {self.out}",
                always=True,
            )
        else:
            self._say(
                f"measured {len(frame)} points in {time.monotonic() - started:.0f}s into {self.out}"
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
        return RunOutcome(self.out, frame, failed, interrupted)

    def _on_term(self, signum: int, frame: Any) -> None:
        raise Interrupted("terminated")

    def _say(self, text: str, always: bool = False) -> None:
        if always or not self.quiet:
            self.progress.message(text)

    def _write_report(self) -> None:
        try:
            from harness.report import write_report
        except ImportError:  # pragma: no cover - shipped with the harness
            return
        try:
            path = write_report(self.out)
        except Exception as exc:  # the results are saved; a report failure must not hide them
            self._say(
                f"report not written ({type(exc).__name__}: {exc}); retry with: python -m harness report {self.out}",
                always=True,
            )
            return
        self._say(f"report: {path}")

    # -- passes ---------------------------------------------------------------------

    def _setup_tasks(self, state: State) -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = []
        for name in self.plan.layers if self.config.capabilities else ():
            if name not in state.capabilities:
                layer = self.registry.get(name)
                declared = list(
                    dict.fromkeys(layer.implementation(i).origin for i in self.plan.impls_of(name))
                )
                tasks.append(
                    {
                        "kind": "capabilities",
                        "key": f"capabilities:{name}",
                        "layer": name,
                        "impls": declared,
                    }
                )
        planned: set[str] = set()
        for variant in self.plan.variants:
            layer = self.registry.get(variant.layer)
            impl = layer.implementation(variant.impl)
            if (
                impl.role == "baseline"
                and impl.form == "eager"
                and (variant.layer, variant.impl) not in state.gradchecks
            ):
                key = f"gradcheck:{variant.layer}/{variant.impl}"
                if key not in planned:
                    planned.add(key)
                    tasks.append(
                        {
                            "kind": "gradcheck",
                            "key": key,
                            "layer": variant.layer,
                            "impl": variant.impl,
                        }
                    )
            if variant.name not in state.setup:
                tasks.append({"kind": "variant", "key": variant.name, "phases": list(PHASES)})
        return tasks

    def _setup_pass(self) -> None:
        state = read_state(self.out)
        tasks = self._setup_tasks(state)
        if not tasks:
            return
        self.progress.begin("checking", len(tasks))
        self._run_until_done(
            "setup",
            tasks,
            self.out / RAW_DIR / SETUP_FILE,
            process=None,
            remaining=lambda: self._setup_tasks(read_state(self.out)),
        )

    def _timed_cases(self, state: State) -> list[tuple[str, int]]:
        out = []
        for variant in self.plan.variants:
            setup = state.setup.get(variant.name)
            if not setup:
                continue
            for phase in PHASES:
                info = setup["phases"].get(phase, {})
                if info.get("status") == "ok":
                    out.append((f"{variant.name}/{phase}", int(info["loops"])))
        return out

    def _timing_passes(self) -> None:
        state = read_state(self.out)
        cases = self._timed_cases(state)
        todo = {
            p: [c for c in cases if not state.done_for(c[0], p)]
            for p in range(self.profile.processes)
        }
        total = sum(len(v) for v in todo.values())
        if total == 0:
            return
        self.progress.begin("timing", total)
        for process in range(self.profile.processes):
            if not todo[process]:
                continue
            rng = random.Random(self.config.seed * 1000 + process)

            def remaining(p: int = process, rng: random.Random = rng) -> list[dict[str, Any]]:
                st = read_state(self.out)
                left = [
                    {"case": c, "loops": loops, "key": c}
                    for c, loops in cases
                    if not st.done_for(c, p)
                ]
                rng.shuffle(left)
                return left

            self._run_until_done(
                "timing", remaining(), self.out / RAW_DIR / timing_file(process), process, remaining
            )

    def _run_until_done(
        self,
        mode: str,
        tasks: list[dict[str, Any]],
        raw: Path,
        process: int | None,
        remaining: Callable[[], list[dict[str, Any]]],
    ) -> None:
        attempts = 0
        while tasks:
            attempts += 1
            if attempts > len(tasks) + 3:
                raise ResultsError(f"workers keep failing; see {self.out / 'logs'}")
            self._run_worker(mode, tasks, raw, process, attempts)
            tasks = remaining()

    def _run_worker(
        self, mode: str, tasks: list[dict[str, Any]], raw: Path, process: int | None, attempt: int
    ) -> None:
        tag = f"{mode}-{process if process is not None else 0:03d}-{attempt}"
        job = {
            "mode": mode,
            "tasks": tasks,
            "raw": str(raw),
            "process": process if process is not None else -1,
            "profile": vars(self.profile),
            "layers_from": list(self.config.layers_from),
            "seed": self.config.seed,
        }
        job_path = self.out / "logs" / f"{tag}.job.json"
        atomic_write_json(job_path, job)
        extra = {"TORCHINDUCTOR_CACHE_DIR": str(self._inductor_cache())}
        env = worker_env(max(self.config.threads), extra)
        offset = raw.stat().st_size if raw.exists() else 0
        with open(self.out / "logs" / f"{tag}.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "harness.worker", str(job_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                cwd=os.getcwd(),
            )
            try:
                self._watch(proc, raw, offset, process)
            except BaseException:
                _kill(proc)
                raise

    def _inductor_cache(self) -> Path:
        # One cache per run: the setup worker compiles cold (the one-off cost a user
        # pays), the timing workers reuse its kernels instead of compiling again. It
        # lives outside the results folder and is removed at the end.
        if self._cache_dir is None:
            self._cache_dir = Path(tempfile.mkdtemp(prefix="harness-inductor-"))
        return self._cache_dir

    def _watch(
        self, proc: subprocess.Popen[bytes], raw: Path, offset: int, process: int | None
    ) -> None:
        current: str | None = None
        since = time.monotonic()
        buffer = b""
        limit = _STARTUP_TIMEOUT_S
        while True:
            code = proc.poll()
            if raw.exists():
                with open(raw, "rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
                offset += len(chunk)
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    kind = event.get("event")
                    if kind == "start":
                        current = event["key"]
                        since = time.monotonic()
                        limit = self.profile.case_timeout_s
                        self.progress.step(current)
                    elif kind == "done":
                        current = None
            if code is not None:
                if current is not None:
                    why = f"worker crashed (exit code {code}) while running it; see {self.out / 'logs'}"
                    if code < 0:
                        why = f"worker killed by signal {-code} while running it; see {self.out / 'logs'}"
                    self._record_crash(raw, current, why)
                self._maybe_write()
                return
            if time.monotonic() - since > limit:
                _kill(proc)
                proc.wait()
                what = current or "worker start-up"
                self._record_crash(
                    raw, current or "startup", f"timed out after {limit:.0f}s ({what})"
                )
                if current is None:
                    raise ResultsError(
                        f"a worker did not start within {limit:.0f}s; see {self.out / 'logs'}"
                    )
                return
            self._maybe_write()
            time.sleep(0.05)

    def _record_crash(self, raw: Path, key: str, why: str) -> None:
        EventLog(raw).write({"event": "crash", "key": key, "error": why})

    # -- outputs --------------------------------------------------------------------

    def _maybe_write(self) -> None:
        if time.monotonic() - self._last_write >= _WRITE_EVERY_S:
            self._write_outputs()

    def _write_outputs(self) -> pd.DataFrame:
        state = read_state(self.out)
        frame, deviations, capabilities, suite = build_outputs(
            state, self.plan.variants, self.registry
        )
        if suite is not None:
            atomic_write_text(self.out / PYPERF_JSON, suite_json(suite))
        atomic_write_csv(self.out / RESULTS_CSV, frame)
        atomic_write_csv(self.out / DEVIATIONS_CSV, deviations)
        atomic_write_csv(self.out / CAPABILITIES_CSV, capabilities)
        self._last_write = time.monotonic()
        return frame


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait()


def run(
    layers: Sequence[str] | str | None = None,
    impls: Sequence[str] | str | None = None,
    grid: Sequence[str] | dict[str, Any] | None = None,
    dtypes: Sequence[str] | str = ("float32",),
    threads: Sequence[int] | int = (1,),
    devices: Sequence[str] | str = ("cpu",),
    profile: str = "default",
    layers_from: Sequence[str] | str = (),
    out: str | Path | None = None,
    resume: str | Path | None = None,
    quiet: bool = True,
    report: bool = True,
    seed: int = 0,
    capabilities: bool = True,
    timeout_s: float | None = None,
) -> pd.DataFrame:
    """Measure a grid and return the results frame (columns: ``harness.frame.COLUMNS``).

    Arguments mirror ``python -m harness run``: ``grid`` is ``["n=8,16", "k=3"]`` or
    ``{"n": [8, 16]}``. The results folder is ``frame.attrs["path"]``.
    """
    from harness.config import parse_grid, parse_list

    def as_tuple(value: Sequence[Any] | str | int) -> tuple[Any, ...]:
        if isinstance(value, str):
            return parse_list(value, "value")
        if isinstance(value, int):
            return (value,)
        return tuple(value)

    config = RunConfig(
        layers=as_tuple(layers) if layers is not None else None,
        impls=as_tuple(impls) if impls is not None else None,
        grid=parse_grid(grid) if grid else {},
        dtypes=as_tuple(dtypes),
        threads=tuple(int(t) for t in as_tuple(threads)),
        devices=as_tuple(devices),
        profile=profile,
        layers_from=as_tuple(layers_from),
        seed=seed,
        capabilities=capabilities,
        timeout_s=timeout_s,
    )
    outcome = Runner(config, out=out, resume=resume, quiet=quiet, report=report).run()
    frame = outcome.frame
    frame.attrs["path"] = str(outcome.path)
    if outcome.interrupted:
        raise KeyboardInterrupt
    return frame
