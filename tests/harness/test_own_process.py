"""Each implementation in a process of its own (``harness.own_process``)."""

from __future__ import annotations

import mmap
import os
import signal
import subprocess
import sys
import textwrap
import threading
from multiprocessing.connection import Pipe

import pytest

from harness.own_process import process_faults, serve_requests, thread_pids

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc, fork")


@linux_only
def test_a_processs_page_faults_are_read_from_proc_and_grow_with_fresh_pages() -> None:
    before = process_faults(os.getpid())
    assert before > 0
    with mmap.mmap(-1, 64 * mmap.PAGESIZE) as fresh:
        for page in range(64):
            fresh[page * mmap.PAGESIZE] = 1  # each first touch faults a page in
    assert process_faults(os.getpid()) >= before + 64
    assert process_faults(2**22 + 12345) == 0  # no such process: nothing, not an error


@linux_only
def test_the_threads_listed_leave_out_each_processs_main_thread() -> None:
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    try:
        listed = thread_pids([os.getpid()])()
    finally:
        stop.set()
        helper.join()
    tids = {tid for _, tid in listed}
    assert helper.native_id in tids and os.getpid() not in tids
    assert {pid for pid, _ in listed} == {os.getpid()}


def test_requests_are_answered_with_a_value_or_the_error_and_end_on_exit() -> None:
    parent, child = Pipe()
    server = threading.Thread(
        target=serve_requests, args=(child, {"twice": lambda x: 2 * x, "fail": lambda: 1 / 0})
    )
    server.start()
    parent.send(("twice", 21))
    assert parent.recv() == ("ok", 42)
    parent.send(("fail",))
    kind, message = parent.recv()
    assert kind == "error" and message.startswith("ZeroDivisionError: ")
    parent.send(("exit",))
    server.join(timeout=10)
    assert not server.is_alive()


def _run(body: str) -> subprocess.CompletedProcess[str]:
    code = "from harness.own_process import OwnProcess, RemoteFailure, serve_requests\n"
    code += "from harness.own_process import Zygote, ask_all, close_all\n"
    code += textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@linux_only
def test_a_process_answers_in_its_own_process_and_a_failure_is_its_message() -> None:
    done = _run(
        """
        import os
        def serve(conn):
            serve_requests(conn, {"pid": os.getpid, "bad": lambda: int("x")})
        p = OwnProcess(serve)
        assert p.ask("pid") == p.pid != os.getpid()
        try:
            p.ask("bad")
        except RemoteFailure as exc:
            print("failed:", exc)
        p.close()
        print("parent carried on")
        """
    )
    assert done.returncode == 0, done.stderr
    assert "failed: ValueError: invalid literal" in done.stdout
    assert "parent carried on" in done.stdout


@linux_only
def test_ask_all_has_every_process_work_at_once_and_keeps_each_failure() -> None:
    # three processes that each sleep 0.6 s on a request: asked together, in about
    # the time of one (not of three), on any machine with a core or more
    done = _run(
        """
        import os, time
        def serve(conn):
            def nap():
                time.sleep(0.6)
                return os.getpid()
            serve_requests(conn, {"nap": nap, "bad": lambda: 1 / 0})
        ps = {k: OwnProcess(serve) for k in "abc"}
        OwnProcess.group(list(ps.values()))
        t0 = time.perf_counter()
        answers = ask_all(ps, "nap")
        print("took", time.perf_counter() - t0)
        print("own", all(answers[k] == ps[k].pid for k in ps))
        failed = ask_all(ps, "bad")
        print("failures", sorted(k for k, v in failed.items() if isinstance(v, RemoteFailure)))
        close_all(ps.values())
        print("reaped", sum(1 for p in ps.values() if not os.path.exists(f"/proc/{p.pid}")))
        """
    )
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert float(lines["took"]) < 1.2  # one nap and change, where three in turn take 1.8
    assert lines["own"] == "True"
    assert lines["failures"] == "['a', 'b', 'c']"
    assert lines["reaped"] == "3"


@linux_only
@pytest.mark.parametrize(("how", "returncode"), [("raise", 1), ("signal", -signal.SIGABRT)])
def test_a_process_that_dies_takes_the_worker_and_its_siblings_down(
    how: str, returncode: int
) -> None:
    # so that the supervisor records a crash of the task in progress, as without a fork
    done = _run(
        f"""
        import os, signal, time
        def die(conn):
            conn.recv()
            if {how!r} == "raise":
                raise RuntimeError("boom in the implementation")
            os.kill(os.getpid(), signal.SIGABRT)
        def wait(conn):
            conn.recv()
        sibling = OwnProcess(wait)
        dying = OwnProcess(die)
        OwnProcess.group([sibling, dying])
        print(sibling.pid, flush=True)
        dying.ask("go")
        print("parent carried on")
        """
    )
    assert done.returncode == returncode, done.stderr
    assert "parent carried on" not in done.stdout
    sibling = int(done.stdout.split()[0])
    with pytest.raises(ProcessLookupError):
        os.kill(sibling, 0)  # killed and reaped with the worker


@linux_only
def test_a_zygote_forks_processes_that_serve_this_one_and_are_reaped_through_it() -> None:
    # the zygote's children are its own (their heap starts as the zygote's), talked to
    # and reaped as this process's own are
    done = _run(
        """
        import os, functools
        def serve(key, conn):
            serve_requests(conn, {
                "who": lambda: (key, os.getpid(), os.getppid()),
                "bad": lambda: int("x"),
            })
        zygote = Zygote(serve)
        ps = {k: zygote.start(k) for k in ("a", "b")}
        OwnProcess.group(list(ps.values()))
        answers = ask_all(ps, "who")
        print("keys", all(answers[k][0] == k for k in ps))
        print("pids", all(answers[k][1] == ps[k].pid != os.getpid() for k in ps))
        print("parent", all(answers[k][2] == zygote.pid for k in ps))
        try:
            ps["a"].ask("bad")
        except RemoteFailure as exc:
            print("failed", exc)
        close_all(ps.values())
        print("reaped", sum(1 for p in ps.values() if not os.path.exists(f"/proc/{p.pid}")))
        zygote.close()
        print("zygote", os.path.exists(f"/proc/{zygote.pid}"))
        """
    )
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert lines["keys"] == lines["pids"] == lines["parent"] == "True"
    assert lines["failed"].startswith("ValueError: invalid literal")
    assert lines["reaped"] == "2" and lines["zygote"] == "False"


@linux_only
def test_a_zygotes_child_that_dies_takes_the_worker_down_the_same_way() -> None:
    done = _run(
        """
        import os, signal
        def serve(key, conn):
            conn.recv()
            os.kill(os.getpid(), signal.SIGABRT)
        zygote = Zygote(serve)
        dying = zygote.start("x")
        dying.ask("go")
        print("parent carried on")
        """
    )
    assert done.returncode == -signal.SIGABRT, done.stderr
    assert "parent carried on" not in done.stdout


@linux_only
def test_a_zygotes_processes_cpu_time_reaches_this_processs_once_it_is_closed() -> None:
    # the runner tells its own load from other processes' by its reaped children's CPU
    # time (harness.environment.NoiseMonitor): a zygote left unreaped made every eager
    # implementation's timing count as another process's, and the report cautioned
    # of a crowded machine on a quiet one
    done = _run(
        """
        import os, time
        def serve(key, conn):
            def spin():
                end = time.process_time() + 0.4
                while time.process_time() < end:
                    pass
            serve_requests(conn, {"spin": spin})
        zygote = Zygote(serve)
        p = zygote.start("x")
        p.ask("spin")
        p.close()
        zygote.close()
        t = os.times()
        print(t.children_user + t.children_system)
        """
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) >= 0.35
