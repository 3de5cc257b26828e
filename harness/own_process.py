"""Each implementation of a group timed in a process of its own, its rounds paired
with the others' across processes.

Why: a user's loop runs one implementation, and its glibc heap is shaped by that
implementation's buffers alone. Two implementations timed in turns in one process
share one heap: its adaptive mmap and trim thresholds, set by the larger buffers of
either, decide which of them takes fresh pages from the kernel on every call.
Measured on 2026-12-03 (AVX512, 1 thread) with fft's training step at n=1024, each
side's loop alone in a fresh process: NumPy's 31-36 ms (4,050 fresh pages a call),
torch's 17-20 ms (0); the two in turns in one process: NumPy's 22-23 ms (0), torch's
26 ms (4,577): torch ×0.85 where the user's own loops give ×1.8.

So a forking timing worker forks one ``OwnProcess`` per implementation (and phase set,
``harness.case.PROCESS_PHASES``) of a group; each prepares its variant and then waits
for requests over a pipe: warm a phase up, time a value of ``loops`` calls of it, or
drop a retained graph. What is not timed the processes do at once (``ask_all``): a phase
set's processes prepare their forms together, and a phase's warm up together (a
5-implementation group's visit took 2.2-2.5 s where it took 2.9-3.1 s with one process
at a time, conv2d n=64 at 2 threads, 2026-12-03, AVX512; forking both sets' processes at
once gained nothing more, 2.4-2.5 s). The worker runs the rounds as before
(``harness.worker._time_rounds``, a fresh random order per round), asking each process
for its values in turn, so drift and bursts still hit every implementation of a round
alike; it reads each process's page faults from ``/proc`` and waits for the other
processes' spinning pools as it did for the threads of its own
(``harness.contention.PoolWatch``, over ``thread_pids``).

An implementation whose form imports nothing that changes glibc's malloc thresholds
(eager code, TorchScript) is forked from a ``Zygote``, a child the worker forked
before the imports that do (the compile toolchain's, ONNX Runtime's): its heap starts as
a user's training process's would.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from multiprocessing.connection import Connection, Pipe
from multiprocessing.reduction import recv_handle, send_handle
from typing import Any, NoReturn, TypeVar

from harness.errors import HarnessError, describe
from harness.lifetime import die_with_parent

__all__ = [
    "OwnProcess",
    "RemoteFailure",
    "Zygote",
    "ask_all",
    "close_all",
    "exit_like",
    "fork_child",
    "process_faults",
    "redirect_output",
    "serve_requests",
    "thread_pids",
]


K = TypeVar("K")


class RemoteFailure(HarnessError):
    """A request an implementation's process answered with an error (the message)."""


class OwnProcess:
    """A forked child that serves one variant's timed values (module docstring).

    ``serve`` runs in the child: given the request reader it is handed, it prepares
    the variant and answers requests until told to exit. The parent talks to it with
    ``ask``; a child that dies takes this process down the same way (same exit code or
    signal, after killing its siblings: ``kill_all``), so the supervisor records a
    crash of the task in progress, as it would without the fork."""

    def __init__(
        self,
        serve: Callable[[Connection], None] | None = None,
        *,
        forked: tuple[int, Connection] | None = None,
        wait: Callable[[int], int] | None = None,
    ) -> None:
        """Fork a child of this process that runs ``serve``; or, with ``forked`` (its
        pid and the parent's end of its pipe) and ``wait`` (its exit code, once it has
        exited), talk to one another process forked (``Zygote.start``)."""
        if forked is None:
            if serve is None:
                raise TypeError("OwnProcess needs serve or forked")
            parent, child = Pipe()
            forked = (fork_child(lambda: serve(child), parent.close), parent)
            child.close()
        self.pid, self._conn = forked
        self._wait = wait if wait is not None else _wait_child
        self._siblings: Sequence[OwnProcess] = ()

    def ask(self, *request: Any) -> Any:
        """Send ``request``, return the child's answer; ``RemoteFailure`` where it
        answered with an error."""
        self.send(*request)
        return self.answer()

    def send(self, *request: Any) -> None:
        """Send ``request`` without waiting for its answer (``answer``)."""
        try:
            self._conn.send(request)
        except OSError:
            self._died()

    def send_fd(self, fd: int) -> None:
        """Pass the file descriptor ``fd`` to the child (SCM_RIGHTS), after a request."""
        try:
            send_handle(self._conn, fd, self.pid)
        except OSError:
            self._died()

    def answer(self) -> Any:
        """The answer to the request sent last (``RemoteFailure`` for an error)."""
        try:
            kind, value = self._conn.recv()
        except (EOFError, OSError):
            self._died()
        if kind == "error":
            raise RemoteFailure(str(value))
        return value

    def close(self) -> None:
        """Tell the child to exit and reap it."""
        self._tell_exit()
        self._reap()

    def _tell_exit(self) -> None:
        try:
            self._conn.send(("exit",))
            self._conn.close()
        except OSError:
            pass

    def _reap(self) -> None:
        code = self._wait(self.pid)
        if code != 0:
            self._exit_like(code)

    def _died(self) -> NoReturn:
        self._exit_like(self._wait(self.pid) or 1)

    def _exit_like(self, code: int) -> NoReturn:
        kill_all(p for p in self._siblings if p is not self)
        exit_like(code)

    @staticmethod
    def group(processes: Sequence[OwnProcess]) -> None:
        """Let each of ``processes`` kill the others if it dies."""
        for p in processes:
            p._siblings = processes


def ask_all(processes: Mapping[K, OwnProcess], *request: Any) -> dict[K, Any]:
    """``request`` sent to every one of ``processes`` before any answer is read, so
    that they work on it at once (preparing a form, warming a phase up: no process is
    timed meanwhile); their answers by key, a ``RemoteFailure`` for each error."""
    for p in processes.values():
        p.send(*request)
    answers: dict[K, Any] = {}
    for key, p in processes.items():
        try:
            answers[key] = p.answer()
        except RemoteFailure as exc:
            answers[key] = exc
    return answers


def close_all(processes: Iterable[OwnProcess]) -> None:
    """Tell every one of ``processes`` to exit, then reap them (exiting together)."""
    processes = list(processes)
    for p in processes:
        p._tell_exit()
    for p in processes:
        p._reap()


def _wait_child(pid: int) -> int:
    """The exit code (``os.waitstatus_to_exitcode``'s) of this process's child ``pid``,
    once it has exited."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


class Zygote:
    """A child forked early that forks implementation processes on request (``start``),
    each talked to as an ``OwnProcess`` of this process.

    Why: a process's glibc malloc thresholds are inherited by its forked children, and
    a timing worker raises them by what it imports before forking: after the compile
    toolchain's or ONNX Runtime's imports a 1 MiB buffer comes from the heap, where a
    fresh process that imported torch, NumPy and SciPy maps it afresh (and trims it
    back) on every call. torch's 1-thread conv2d training step at n=512 then took 7
    fresh pages a call in the harness where a user's loop took 8,128, and its speedup
    over SciPy read ×0.91 where the user's loops measured ×0.61 (2026-12-03, AVX512).
    So the worker forks a zygote before those imports, and an implementation whose
    form needs none of them (``harness.toolchain.CLEAN_HEAP_FORMS``) is forked from it:
    its heap starts as a user's training process's. The others (compile, ONNX Runtime)
    are forked from the worker, as their deployed process also imported their
    toolchain.

    ``serve(key, conn)`` runs in each process the zygote forks, ``key`` being what
    ``start`` was given (picklable). The zygote reaps its children and tells their exit
    codes (``OwnProcess`` asks for them as it would ``waitpid`` its own); it dies with
    this process, and its children with it."""

    def __init__(self, serve: Callable[[Any, Connection], None]) -> None:
        self._process = OwnProcess(functools.partial(_zygote, serve=serve))
        self.pid = self._process.pid

    def start(self, key: Any) -> OwnProcess:
        """A process forked from the zygote that runs ``serve(key, conn)``."""
        ours, theirs = Pipe()
        self._process.send("fork", key)
        self._process.send_fd(theirs.fileno())
        theirs.close()
        pid: int = self._process.answer()
        return OwnProcess(forked=(pid, ours), wait=self.wait)

    def wait(self, pid: int) -> int:
        """The exit code of the zygote's child ``pid``, once it has exited."""
        code: int = self._process.ask("wait", pid)
        return code

    def redirect_output(self, path: str) -> None:
        """From now on the zygote and the processes it forks print to ``path``, as
        this process does (``redirect_output``)."""
        self._process.ask("output", path)

    def close(self) -> None:
        """Tell the zygote to exit, and reap it."""
        self._process.close()


def _zygote(conn: Connection, serve: Callable[[Any, Connection], None]) -> None:
    """The zygote's requests (``Zygote``), served until it is told to exit or this
    process's parent is gone: fork a process for a key, its pipe's end passed after the
    request; reap one; redirect the output."""

    def fork(key: Any) -> int:
        theirs = Connection(recv_handle(conn))
        pid = fork_child(functools.partial(serve, key, theirs), conn.close)
        theirs.close()
        return pid

    serve_requests(conn, {"fork": fork, "wait": _wait_child, "output": redirect_output})


def redirect_output(path: str) -> None:
    """From now on this process (and its children) print to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def fork_child(work: Callable[[], None], in_child: Callable[[], None] = lambda: None) -> int:
    """Fork; in the child, run ``in_child`` (closing the parent's ends of pipes), then
    ``work``, dying with this process, and exit 0, or 1 with the traceback printed where
    ``work`` raised. Returns the child's pid (in this process)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            in_child()
            die_with_parent()
            work()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def exit_like(code: int) -> NoReturn:
    """Leave this process as a child left with ``code`` (``os.waitstatus_to_exitcode``'s:
    negative for a signal, which is then raised here with its default action)."""
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


def kill_all(processes: Iterable[OwnProcess]) -> None:
    """SIGKILL and reap ``processes`` (a sibling died: theirs is no run to finish)."""
    for p in processes:
        try:
            os.kill(p.pid, signal.SIGKILL)
            os.waitpid(p.pid, 0)
        except (OSError, ChildProcessError):
            continue


def serve_requests(conn: Connection, handlers: dict[str, Callable[..., Any]]) -> None:
    """The child's loop: answer each request ``(name, *args)`` with ``("ok", value)``
    from ``handlers[name](*args)``, or ``("error", message)`` where it raised; return
    on ``("exit",)`` or when the parent is gone."""
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request[0] == "exit":
            return
        try:
            conn.send(("ok", handlers[request[0]](*request[1:])))
        except Exception as exc:
            conn.send(("error", describe(exc)))


def thread_pids(pids: Iterable[int]) -> Callable[[], list[tuple[int, int]]]:
    """A lister of the threads of ``pids``, ``(pid, tid)`` each, but their main threads
    (each process's caller of the timed code, as ``harness.contention`` leaves out its
    caller)."""
    pids = tuple(pids)

    def listed() -> list[tuple[int, int]]:
        out = []
        for pid in pids:
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            out += [(pid, int(t)) for t in tids if int(t) != pid]
        return out

    return listed


def process_faults(pid: int) -> int:
    """The minor page faults of process ``pid`` so far (``/proc/PID/stat``'s tenth
    field; 0 where it cannot be read)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[7])  # minflt: field 10, the 8th after the name
    except (IndexError, ValueError):
        return 0
