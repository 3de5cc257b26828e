"""A timing worker times each group in a child forked for it (``harness.worker``):
the group's allocator state is its own, as in a user's loop at that size."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from harness.case import Variant
from harness.protocol import EventLog, Finished, Job, RoundsDone, RoundsTask, Started
from harness.worker import fresh_process_per_group, main, run_in_child

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork per group")


@linux_only
def test_run_in_child_runs_the_work_in_a_child_and_waits_for_it(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    run_in_child(lambda: marker.write_text(str(os.getpid())))
    # written (the parent waited) by another process
    assert int(marker.read_text()) != os.getpid()


def _die_in_child(how: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(
        f"""
        import os, signal
        from harness.worker import run_in_child
        def work():
            if {how!r} == "raise":
                raise RuntimeError("boom in the group")
            if {how!r} == "signal":
                os.kill(os.getpid(), signal.SIGABRT)
        run_in_child(work)
        print("parent carried on")
        """
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@linux_only
@pytest.mark.parametrize(
    ("how", "returncode"), [("ok", 0), ("raise", 1), ("signal", -signal.SIGABRT)]
)
def test_a_child_that_dies_takes_the_worker_down_the_same_way(how: str, returncode: int) -> None:
    # so that the supervisor records a crash of the task in progress, as without a fork
    done = _die_in_child(how)
    assert done.returncode == returncode, done.stderr
    assert ("parent carried on" in done.stdout) is (how == "ok")
    if how == "raise":
        assert "RuntimeError: boom in the group" in done.stderr


def test_the_fork_can_be_turned_off_for_experiments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_FORK_GROUPS", "0")
    assert not fresh_process_per_group()
    monkeypatch.delenv("HARNESS_FORK_GROUPS")
    assert fresh_process_per_group() is sys.platform.startswith("linux")


def _timing_job(tmp_path: Path, raw: Path) -> Path:
    tasks = []
    for n in (8, 16):
        variant = Variant.make("fft", "torch", {"n": n})
        tasks.append(RoundsTask(variant.group, ((variant.case("forward"), 2),), rounds=2))
    job = Job("timing", tuple(tasks), str(raw), process=0)
    path = tmp_path / "job.json"
    job.write(path)
    return path


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize("fork", [True, False])
def test_a_timing_worker_times_each_group_in_a_process_of_its_own(
    tmp_path: Path, fork: bool
) -> None:
    raw = tmp_path / "timing.jsonl"
    env = {**os.environ, "HARNESS_FORK_GROUPS": "1" if fork else "0", "OMP_NUM_THREADS": "2"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "harness.worker", str(_timing_job(tmp_path, raw))], env=env
    )
    assert worker.wait(timeout=300) == 0
    events = EventLog.read(raw)
    assert sum(isinstance(e, Started) for e in events) == 2
    assert isinstance(events[-1], Finished)  # all written, though it skipped its teardown
    done = [e for e in events if isinstance(e, RoundsDone)]
    assert [dict(e.group.point)["n"] for e in done] == [8, 16]
    assert all(len(values) == 2 for e in done for values in e.values.values())
    # forward cases of one implementation only: one process per group where it forks
    pids = [tuple(int(p) for p in str(e.metadata["pids"]).split(",")) for e in done]
    if fork:
        assert all(len(p) == 1 for p in pids) and len(set(pids)) == 2
        assert worker.pid not in {p for ps in pids for p in ps}
    else:
        assert pids == [(worker.pid,), (worker.pid,)]


@linux_only
@pytest.mark.slow
def test_a_worker_started_ahead_runs_the_job_it_is_then_given(tmp_path: Path) -> None:
    # the supervisor starts timing workers two at a time; each says when it has started
    # and then waits, blocked, for a job on its stdin
    raw = tmp_path / "timing.jsonl"
    job = _timing_job(tmp_path, raw)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def start(name: str) -> tuple[subprocess.Popen[bytes], Path]:
        ready = tmp_path / f"{name}.ready"
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.worker", "--spare", str(job), str(ready)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=env,
        )
        return proc, ready

    (first, first_ready), (second, second_ready) = start("first"), start("second")
    deadline = time.monotonic() + 240
    while not (first_ready.exists() and second_ready.exists()):
        assert time.monotonic() < deadline, "the workers did not start"
        assert first.poll() is None and second.poll() is None
        time.sleep(0.05)
    assert not raw.exists()  # started, and nothing run before its job came
    log = tmp_path / "job.log"
    assert first.stdin is not None and second.stdin is not None
    first.stdin.write(json.dumps({"job": str(job), "log": str(log)}).encode() + b"\n")
    first.stdin.close()
    assert first.wait(timeout=240) == 0
    events = EventLog.read(raw)
    done = [e for e in events if isinstance(e, RoundsDone)]
    assert [dict(e.group.point)["n"] for e in done] == [8, 16]
    assert isinstance(events[-1], Finished) and log.exists()
    # no job came: it leaves without running anything
    second.stdin.close()
    assert second.wait(timeout=60) == 0
    assert len(EventLog.read(raw)) == len(events)


@linux_only
def test_a_forking_worker_leaves_without_the_interpreters_teardown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the runner waits for each worker's exit, and an interpreter with torch's compile
    # toolchain loaded took 1.1-1.3 s to tear down (2026-11-30)
    left: list[int] = []
    monkeypatch.setattr(os, "_exit", left.append)

    def job(mode: str) -> str:
        path = tmp_path / f"{mode}.json"
        Job(mode, (), str(tmp_path / f"{mode}.jsonl"), process=0).write(path)  # type: ignore[arg-type]
        return str(path)

    assert main([job("timing")], skip_teardown=True) == 0
    assert left == [0]
    assert isinstance(EventLog.read(tmp_path / "timing.jsonl")[-1], Finished)
    left.clear()
    assert main([job("timing")]) == 0  # called as a function: it returns
    # a setup worker compiles with inductor's pool of workers: it exits normally
    assert main([job("setup")], skip_teardown=True) == 0
    assert left == []


@pytest.mark.slow
def test_the_worker_imports_what_its_children_would_import_lazily_before_forking() -> None:
    code = textwrap.dedent(
        """
        import sys, torch
        from harness.toolchain import prepare_to_fork
        assert "torch._dynamo" not in sys.modules and "sympy" not in sys.modules
        prepare_to_fork(["compile"])
        assert torch.get_num_threads() == 1
        # a convolution's first backward would import sympy (0.4 s in every child)
        assert "sympy" in sys.modules and "torch._dynamo" in sys.modules
        assert "onnxruntime" not in sys.modules  # not a form of the job
        # dynamo and inductor warmed on a tiny function, compiling in this process (a
        # pool of compile workers would not survive the fork), with no OpenMP pool
        import torch._inductor.config as inductor_config
        assert inductor_config.compile_threads == 1 and torch.get_num_threads() == 1
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_gpu_groups_are_timed_in_the_worker_itself() -> None:
    from harness.worker import _cpu_only

    def job(device: str) -> Job:
        variant = Variant.make("fft", "torch", {"n": 8}, device=device)
        return Job("timing", (RoundsTask(variant.group, ((variant.case("forward"), 1),), 1),), "r")

    # CUDA cannot run in a forked child of a process that initialised it
    assert _cpu_only(job("cpu")) and not _cpu_only(job("cuda"))


def test_a_groups_phases_are_timed_one_after_the_other_with_no_graph_left_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # forward first (an inference process runs nothing else), then step (whose graphs
    # are freed), then backward: its retained graph never sits beside the others
    from harness.case import PHASES
    from harness.prepared import Prepared
    from harness.worker import TIMED_ORDER, Worker

    assert sorted(TIMED_ORDER) == sorted(PHASES)
    monkeypatch.setenv("HARNESS_FORK_GROUPS", "0")
    seen: list[tuple[str, str, bool]] = []
    alive: list[Prepared] = []
    real = Prepared.time_func

    def spied(self: Prepared, phase: str) -> Any:
        func = real(self, phase)
        alive.append(self)

        def timed(loops: int) -> float:
            graphs = any(p._graph is not None for p in alive if p is not self)
            seen.append((phase, self.variant.impl, graphs))
            return func(loops)

        return timed

    monkeypatch.setattr(Prepared, "time_func", spied)
    variants = [Variant.make("fft", impl, {"n": 8}) for impl in ("numpy", "torch")]
    cases = tuple((v.case(ph), 2) for v in variants for ph in ("backward", "step", "forward"))
    raw = tmp_path / "timing.jsonl"
    worker = Worker(Job("timing", (), str(raw), process=0))
    worker.rounds(RoundsTask(variants[0].group, cases, rounds=3))
    phases = [phase for phase, _, _ in seen]
    # each phase's 4 values (a warm-up and 3 rounds) for both implementations, in turn
    assert phases == ["forward"] * 8 + ["step"] * 8 + ["backward"] * 8
    assert {impl for _, impl, _ in seen} == {"numpy", "torch"}
    assert not any(graphs for phase, _, graphs in seen if phase != "backward")
    (done,) = [e for e in EventLog.read(raw) if isinstance(e, RoundsDone)]
    assert all(len(v) == 3 for v in done.values.values()) and len(done.values) == 6
    assert set(done.faults) == set(done.values)


def _last_json(env: dict[str, str], code: str, *args: str) -> Any:
    """Run ``code`` in a fresh interpreter with ``env``; the JSON of its last line."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


#: Run in a fresh interpreter: a forking worker (one thread until it forks) times one
#: group of two implementations, the phases given on the command line, and prints the
#: rounds event's process ids, cases and errors, and its own pid.
_APART = """
import json, sys
from harness.case import Variant
from harness.protocol import EventLog, Job, RoundsDone, RoundsTask
from harness.worker import Worker

phases = sys.argv[2].split(",")
variants = [Variant.make("fft", impl, {"n": 8}) for impl in ("numpy", "torch")]
cases = tuple((v.case(ph), 2) for v in variants for ph in phases)
task = RoundsTask(variants[0].group, cases, rounds=2)
worker = Worker(Job("timing", (task,), sys.argv[1], process=0, min_time=1e-4))
assert worker.forking
worker.rounds(task)
(done,) = [e for e in EventLog.read(sys.argv[1]) if isinstance(e, RoundsDone)]
print(json.dumps({
    "me": __import__("os").getpid(),
    "pids": [int(p) for p in str(done.metadata["pids"]).split(",")],
    "values": {k: len(v) for k, v in done.values.items()},
    "faults": sorted(done.faults),
    "errors": done.errors,
}))
"""


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize(("phases", "processes"), [("forward,step,backward", 4), ("forward", 2)])
def test_a_forking_worker_times_each_implementation_and_phase_set_in_a_process_of_its_own(
    tmp_path: Path, phases: str, processes: int
) -> None:
    # a user's loop runs one implementation: two in turns in one process share a heap
    # whose thresholds decide which takes fresh pages each call (harness.own_process);
    # an inference process has run forwards only, a training loop steps only
    env = {**os.environ, "HARNESS_FORK_GROUPS": "1", "OMP_NUM_THREADS": "1"}
    found = _last_json(env, _APART, str(tmp_path / "timing.jsonl"), phases)
    assert len(set(found["pids"])) == processes and found["me"] not in found["pids"]
    # every case of every process in the one event, with its rounds and page faults
    n_phases = len(phases.split(","))
    assert len(found["values"]) == 2 * n_phases and set(found["values"].values()) == {2}
    assert found["faults"] == sorted(found["values"]) and not found["errors"]


#: Packages a group's child must never import itself: each costs seconds (sympy alone
#: 0.4 s), paid again in every child when the worker did not import it before forking.
EXPENSIVE = (
    "sympy",
    "torch._dynamo",
    "torch._inductor",
    "torch.onnx",
    "onnx",
    "onnxscript",
    "onnxruntime",
    "torch.jit",
    "torch.fx.experimental",
)

#: The setup pass of a run, as far as the timing children depend on it: every derived
#: form built in the run's caches at the threads it is timed at, as ``Worker.prepare``
#: builds it (an ONNX Runtime form exported into ``harness.forms._onnx_model``'s cache,
#: from which a timing child loads it; a compiled form's graphs in TORCHINDUCTOR_CACHE_DIR,
#: where the child's compile finds them), and the timing worker's toolchain warm-up
#: compiled once before. Run in a process of its own, as a run's setup worker is, so that
#: its imports do not reach the timing worker. Without the compiled graphs the children
#: missed the cache and loaded inductor's pattern library (2.7 s) that no child of a
#: run pays: the test then depended on what earlier tests had left in torch's default
#: cache (CI 2026-11-30: failed on a fresh machine, passed here).
_SETUP_EXPORTS = """
import contextlib
import torch
from harness.forms import build
from harness.registry import Registry
from harness.toolchain import warm_toolchains

warm_toolchains({"compile"})
torch.set_num_threads(1)
for name, point in ({"conv2d": {"n": 8, "k": 3}, "fft": {"n": 8}}).items():
    layer = Registry.default(()).get(name)
    inputs = layer.make(point, torch.float32, "cpu", 0)
    mask = tuple(n in layer.differentiable for n in layer.inputs)
    for impl in layer.all_implementations():
        if impl.form in ("onnxruntime", "compile"):
            with contextlib.suppress(Exception):  # a form that fails: a run records it
                build(layer, impl, point, inputs, "float32", 1, "cpu", mask)
"""

#: Run in a fresh interpreter (the test process's own imports would hide the gaps): a
#: timing worker prepares to fork as a run's does (``Worker.__init__`` calls
#: ``harness.toolchain.prepare_to_fork`` with the job's forms), then each group is run
#: in a forked child by ``Worker.run_task``, as ``run_in_child`` does, and the child
#: reports the modules it imported itself. Every implementation and form the registry lists, every phase.
_CHILD_IMPORTS = """
import json, os, sys
from harness.case import PHASES, Variant
from harness.protocol import EventLog, Job, RoundsDone, RoundsTask
from harness.registry import Registry
from harness.worker import Worker

raw = sys.argv[1]
tasks = []
for layer, point in ({"conv2d": {"n": 8, "k": 3}, "fft": {"n": 8}}).items():
    impls = [i.name for i in Registry.default(()).get(layer).all_implementations()]
    variants = [Variant.make(layer, impl, point) for impl in impls]
    cases = tuple((v.case(ph), 1) for v in variants for ph in PHASES)
    tasks.append(RoundsTask(variants[0].group, cases, rounds=1))
worker = Worker(Job("timing", tuple(tasks), raw, process=0, min_time=1e-4))
assert worker.forking, "the worker does not fork: nothing to check"
new = {}
for task in tasks:
    read, write = os.pipe()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        before = set(sys.modules)
        try:
            worker.forking = False  # this child is the group's process: time it here
            worker.run_task(task)
            found = sorted(set(sys.modules) - before)
        except BaseException as exc:
            found = [f"!{exc!r}"]
        with os.fdopen(write, "w") as f:
            json.dump(found, f)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        new[task.group.layer] = json.load(f)
    os.waitpid(pid, 0)
timed = {c for e in EventLog.read(raw) if isinstance(e, RoundsDone) for c in e.values}
print(json.dumps({"new": new, "timed": sorted(timed)}))
"""


@linux_only
@pytest.mark.slow
def test_a_groups_child_imports_nothing_expensive_the_worker_could_have(tmp_path: Path) -> None:
    """Guards the hand-kept lists ``LAZY_IMPORTS`` and ``FORM_IMPORTS`` (and
    ``warm_toolchains``) of ``harness.toolchain``: a torch upgrade that imports another
    heavy module lazily on a first call would make every group's child pay it, and this
    test says which."""

    env = {
        **os.environ,
        "HARNESS_FORK_GROUPS": "1",
        "OMP_NUM_THREADS": "1",
        "HARNESS_CACHE_DIR": str(tmp_path / "cache"),
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),
    }
    setup = subprocess.run(
        [sys.executable, "-c", _SETUP_EXPORTS], capture_output=True, text=True, env=env
    )
    assert setup.returncode == 0, setup.stderr
    assert list((tmp_path / "cache" / "onnx").glob("*/model.onnx")), "nothing exported"
    found = _last_json(env, _CHILD_IMPORTS, str(tmp_path / "timing.jsonl"))
    # the children really ran the groups: every implementation's forward was timed
    timed = {name.split("/")[1] for name in found["timed"] if name.endswith("/forward")}
    assert {"scipy", "numpy", "torch", "compile", "torchscript", "onnxruntime"} <= timed, found[
        "timed"
    ]
    bad: dict[str, list[str]] = {}
    for layer, modules in found["new"].items():
        for m in modules:
            if m.startswith(_GENERATED):
                continue  # the group's own compiled kernels: no worker could import them
            if m.startswith("!") or any(m == p or m.startswith(p + ".") for p in EXPENSIVE):
                bad.setdefault(m, []).append(layer)
    assert not bad, (
        "a group's forked child imported expensive modules the timing worker should "
        "have imported once before forking (each child pays them again): "
        + _listed(bad)
        + ". Add them to harness.toolchain.LAZY_IMPORTS (any group) or FORM_IMPORTS "
        "(a form's), or warm them in warm_toolchains."
    )


#: Modules inductor generates for the code it compiles (its kernels, loaded by name).
_GENERATED = "torch._inductor.runtime.compile_tasks."


def _listed(bad: dict[str, list[str]]) -> str:
    """The modules, each with the layers whose child imported it; a package's
    submodules counted after it rather than named, when the package is listed too."""
    out = []
    for m in sorted(bad):
        if any(m.startswith(p + ".") for p in bad):
            continue
        subs = sum(1 for s in bad if s.startswith(m + "."))
        more = f" (+{subs} submodules)" if subs else ""
        out.append(f"{m}{more} [{', '.join(bad[m])}]")
    return "; ".join(out)


def test_an_implementations_process_warms_up_its_first_phase_only() -> None:
    # a loop's steady state before the process's first value; its later phase (the
    # backward after the step) finds the heap warm and has the warm-up round
    import threading
    from multiprocessing import Pipe

    from harness.worker import OWN_WARM_CALLS, _serve_variant

    calls: list[str] = []

    class FakePrepared:
        def time_func(self, phase: str) -> Any:
            def timed(loops: int) -> float:
                calls.extend([phase] * loops)
                return 1e-4 * loops

            return timed

        def drop_graph(self) -> None:
            pass

    parent, child = Pipe()
    variant = Variant.make("fft", "torch", {"n": 8})
    server = threading.Thread(
        target=_serve_variant, args=(lambda _: FakePrepared(), variant, child)
    )
    server.start()
    for request in [
        ("ready",),
        ("phase", "step"),
        ("value", 3),
        ("phase", "backward"),
        ("value", 2),
    ]:
        parent.send(request)
        assert parent.recv()[0] == "ok"
    parent.send(("exit",))
    server.join(timeout=10)
    assert calls == ["step"] * (OWN_WARM_CALLS + 3) + ["backward"] * 2


#: Run in a fresh interpreter: a forking worker times one group of two eager
#: implementations after raising its own mmap threshold past 1 MiB (what the compile
#: toolchain's and ONNX Runtime's imports do: harness.own_process.Zygote); each
#: implementation's process writes where its 1 MiB buffer comes from before serving.
_HEAP = """
import json, os, sys
import harness.worker as w
from harness.case import Variant
from harness.protocol import EventLog, Job, RoundsDone, RoundsTask
from heap_probe import placement, raise_threshold

out = sys.argv[2]
real = w._serve_variant
def spied(prepare, variant, conn):
    with open(os.path.join(out, str(os.getpid())), "w") as f:
        f.write(placement())
    real(prepare, variant, conn)
w._serve_variant = spied

variants = [Variant.make("fft", impl, {"n": 8}) for impl in ("numpy", "torch")]
cases = tuple((v.case(ph), 2) for v in variants for ph in ("forward", "step"))
task = RoundsTask(variants[0].group, cases, rounds=2)
worker = w.Worker(Job("timing", (task,), sys.argv[1], process=0, min_time=1e-4))
assert worker.forking and worker.zygote is not None
raise_threshold()
here = placement()
zygote = worker.zygote.pid
worker.run()
(done,) = [e for e in EventLog.read(sys.argv[1]) if isinstance(e, RoundsDone)]
pids = [int(p) for p in str(done.metadata["pids"]).split(",")]
print(json.dumps({
    "worker": here,
    "processes": {p: open(os.path.join(out, str(p))).read() for p in pids},
    "errors": done.errors,
    "zygote reaped": not os.path.exists(f"/proc/{zygote}"),
}))
"""


@linux_only
@pytest.mark.slow
def test_an_eager_implementations_process_starts_with_a_fresh_processs_heap(
    tmp_path: Path, fixtures_pythonpath: str
) -> None:
    # forked from the worker's zygote, not from the worker whose later imports raised
    # its malloc thresholds: torch's 1-thread conv2d step at n=512 took 7 fresh pages
    # a call where a user's loop takes 8,128 (2026-12-03)
    env = {
        **os.environ,
        "HARNESS_FORK_GROUPS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": fixtures_pythonpath,  # heap_probe
    }
    found = _last_json(env, _HEAP, str(tmp_path / "timing.jsonl"), str(tmp_path))
    assert found["worker"] == "heap"  # the worker's own threshold was raised
    assert len(found["processes"]) == 4 and not found["errors"]
    assert set(found["processes"].values()) == {"mmap"}, found
    # reaped at the end of the worker's run: its processes' CPU time is the run's own
    assert found["zygote reaped"]


def test_only_clean_heap_forms_are_forked_from_the_zygote(monkeypatch: pytest.MonkeyPatch) -> None:
    # eager and TorchScript from the zygote (a user's training process's heap); compile
    # and ONNX Runtime from the worker (their deployed process imported the toolchain);
    # an implementation the registry cannot find from the worker, whose child says so
    import harness.worker as w
    from harness.registry import Registry

    started: list[tuple[str, str]] = []

    class FakeZygote:
        def start(self, key: tuple[Variant, int, tuple[str, ...]]) -> str:
            started.append(("zygote", key[0].impl))
            return "zygote"

    def forked(serve: Any) -> str:
        started.append(("worker", serve.args[1].impl))
        return "worker"

    monkeypatch.setattr(w, "OwnProcess", forked)

    class FakeWorker:
        registry = Registry.default(())
        zygote = FakeZygote()
        seed = 0

    impls = [i.name for i in FakeWorker.registry.get("fft").all_implementations()]
    for impl in [*impls, "no-such-impl"]:
        variant = Variant.make("fft", impl, {"n": 8})
        w._own_process(FakeWorker(), variant, ("forward",))  # type: ignore[arg-type]
    where = dict((impl, side) for side, impl in started)
    forms = {i.name: i.form for i in FakeWorker.registry.get("fft").all_implementations()}
    for impl, form in forms.items():
        assert where[impl] == ("zygote" if form in ("eager", "torchscript") else "worker"), impl
    assert {"compile", "onnxruntime"} <= set(forms.values())  # both sides were exercised
    assert where["no-such-impl"] == "worker"
