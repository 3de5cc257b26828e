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
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from multiprocessing.connection import Connection, Pipe
from typing import Any, NoReturn, TypeVar

from harness.errors import HarnessError, describe
from harness.lifetime import die_with_parent

__all__ = [
    "OwnProcess",
    "RemoteFailure",
    "ask_all",
    "close_all",
    "exit_like",
    "fork_child",
    "process_faults",
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

    def __init__(self, serve: Callable[[Connection], None]) -> None:
        parent, child = Pipe()
        self.pid = fork_child(lambda: serve(child), parent.close)
        child.close()
        self._conn = parent
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
        _, status = os.waitpid(self.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            self._exit_like(code)

    def _died(self) -> NoReturn:
        _, status = os.waitpid(self.pid, 0)
        self._exit_like(os.waitstatus_to_exitcode(status) or 1)

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
