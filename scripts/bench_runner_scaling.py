"""Check that the runner's own cost stays linear in the size of the grid.

For grids of 30, 300 and 3000 sizes (``--sizes``) of a cheap layer (elementwise tanh of
a vector: a NumPy baseline against ``torch.tanh``, no derived forms), runs::

    python -m harness run --layers-from LAYER.py --layers tanh_scaling --grid n=1..N+1
        --profile quick --budget 1 --no-capabilities --no-report --quiet --out DIR

as a subprocess and samples the *runner process itself* (not its workers) every
``--interval`` seconds from ``/proc/<pid>/stat`` and ``/proc/<pid>/status``:

- wall time, from start to exit;
- the runner's own CPU time (utime + stime of that pid; children excluded; read from
  the zombie's ``/proc/<pid>/stat`` after it exits and before it is reaped, so the
  last tick counts too), as a share of wall time;
- its resident memory (VmRSS): the peak over the run and the last sample before exit.

Checks, printed at the end (exit status 1 if one fails, 2 if a run fails):

- linear: the wall time of the largest grid is within 10% of the straight line
  through the two smallest grids (extrapolated);
- light: the runner's CPU time is under 5% of wall time at the largest grid (the
  workers should do the work; a runner that re-reads or re-writes everything on every
  event grows quadratically and shows up here first); the table has every size, and
  the check line the marginal CPU per size between the smallest and largest grid;
- flat memory: the runner's peak RSS at the largest grid is at most 20% (and at most
  64 MiB) above its peak at the smallest grid, i.e. memory does not grow with the grid
  (100 times more points here) beyond a small per-point table;
- report linear: ``python -m harness report DIR``, timed after each run, takes at the
  largest grid at most 10% more than the straight line through the two smallest grids
  predicts (one-sided: its fixed start-up makes small grids dear; what must not
  happen is a term that grows faster than the grid, as a scan of every row per size did).

Usage: python scripts/bench_runner_scaling.py [--sizes 30,300,3000] [--out DIR]
       [--interval 0.05] [--max-seconds 3600] [--keep]
Linux only (/proc). Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER_NAME = "tanh_scaling"

LAYER_FILE = textwrap.dedent(
    f'''
    """A cheap layer for scripts/bench_runner_scaling.py: elementwise tanh."""

    import numpy as np
    import torch

    from harness import Axis, Layer, baseline, native


    class NumpyTanh(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = torch.from_numpy(np.tanh(x.detach().numpy()))
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return torch.from_numpy(grad.numpy() * (1 - y.numpy() ** 2))


    def torch_tanh(x):
        return torch.tanh(x)


    def make_inputs(point, gen):
        return (torch.randn(int(point["n"]), generator=gen, dtype=torch.float64),)


    LAYERS = [
        Layer(
            name="{LAYER_NAME}",
            description="elementwise tanh of a vector (runner scaling benchmark)",
            axes=(Axis("n", (1, 2, 3), "number of elements"),),
            inputs={{"x": 1}},
            make_inputs=make_inputs,
            reference=torch_tanh,
            implementations=(
                baseline("numpy", NumpyTanh, compile=False),
                native("torch", torch_tanh, forms=()),
            ),
        )
    ]
    '''
).lstrip()

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


@dataclass
class Sample:
    t: float
    state: str
    cpu_s: float
    rss: int


@dataclass
class Outcome:
    size: int
    returncode: int
    wall_s: float
    cpu_s: float
    peak_rss: int
    final_rss: int
    samples: int
    rows: int | None = None
    report_s: float | None = None
    error: str = ""
    rss_trace: list[tuple[float, int]] = field(default_factory=list)

    @property
    def cpu_share(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s > 0 else float("nan")


def _read_sample(pid: int, start: float) -> Sample | None:
    """utime+stime (own, not children's) and VmRSS of ``pid``; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name (field 2) may hold spaces: split after its closing parenthesis
    fields = stat[stat.rindex(")") + 2 :].split()
    state = fields[0]
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    rss = int(fields[21]) * _PAGE  # field 24
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
                break
    except (FileNotFoundError, ProcessLookupError):
        pass
    return Sample(time.monotonic() - start, state, (utime + stime) / _TICK, rss)


def _exited(pid: int) -> bool:
    """Whether ``pid`` (our child) has exited, without reaping it."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None and info.si_pid == pid


def run_one(size: int, layer_file: Path, out: Path, interval: float, max_s: float) -> Outcome:
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--layers-from",
        str(layer_file),
        "--layers",
        LAYER_NAME,
        "--grid",
        f"n=1..{size}+1",
        "--profile",
        "quick",
        # The same work per size at every grid: a budget this small leaves the first
        # pass at the profile's minimum rounds and no adaptive pass, which would
        # otherwise spend the leftover budget of a small grid and bend the line.
        "--budget",
        "1",
        "--no-capabilities",
        "--no-report",
        "--quiet",
        "--out",
        str(out),
    ]
    log = open(out.parent / f"{out.name}.log", "wb")  # noqa: SIM115 - closed below
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    samples: list[Sample] = []
    killed = False
    try:
        while True:
            gone = _exited(proc.pid)
            sample = _read_sample(proc.pid, start)  # a zombie still has its CPU times
            if sample is not None:
                if sample.state != "Z" and sample.rss > 0:
                    samples.append(sample)
                else:
                    samples.append(
                        Sample(
                            sample.t, sample.state, sample.cpu_s, samples[-1].rss if samples else 0
                        )
                    )
            if gone:
                break
            if time.monotonic() - start > max_s:
                proc.terminate()
                killed = True
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                break
            time.sleep(interval)
        wall = samples[-1].t if samples else time.monotonic() - start
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    live = [s for s in samples if s.state != "Z"]
    outcome = Outcome(
        size=size,
        returncode=code,
        wall_s=wall,
        cpu_s=max((s.cpu_s for s in samples), default=float("nan")),
        peak_rss=max((s.rss for s in live), default=0),
        final_rss=live[-1].rss if live else 0,
        samples=len(samples),
        rss_trace=[(round(s.t, 2), s.rss) for s in live[:: max(1, len(live) // 200)]],
    )
    if killed:
        outcome.error = f"stopped after --max-seconds {max_s:g}"
    elif code != 0:
        tail = (out.parent / f"{out.name}.log").read_text(errors="replace").strip().splitlines()
        outcome.error = tail[-1] if tail else f"exit code {code}"
    results = out / "results.csv"
    if results.is_file():
        outcome.rows = max(0, len(results.read_text().splitlines()) - 1)
    if code == 0 and not killed:
        t0 = time.monotonic()
        report = subprocess.run(
            [sys.executable, "-m", "harness", "report", str(out)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if report.returncode == 0:
            outcome.report_s = time.monotonic() - t0
        else:
            outcome.error = f"report failed: {report.stderr.strip()[-300:]}"
    return outcome


def _table(outcomes: list[Outcome]) -> str:
    head = (
        f"{'sizes':>6} {'rows':>6} {'wall s':>8} {'s/size':>8} {'runner cpu s':>12} "
        f"{'cpu %':>6} {'peak RSS MiB':>12} {'final RSS MiB':>13} {'report s':>8}  status"
    )
    lines = [head, "-" * len(head)]
    for o in outcomes:
        lines.append(
            f"{o.size:>6} {o.rows if o.rows is not None else '-':>6} {o.wall_s:>8.1f} "
            f"{o.wall_s / o.size:>8.3f} {o.cpu_s:>12.2f} {100 * o.cpu_share:>6.2f} "
            f"{o.peak_rss / MIB:>12.1f} {o.final_rss / MIB:>13.1f} "
            f"{o.report_s if o.report_s is not None else float('nan'):>8.1f}  "
            + ("ok" if o.returncode == 0 and not o.error else f"FAILED: {o.error}")
        )
    return "\n".join(lines)


def checks(outcomes: list[Outcome]) -> list[tuple[str, bool, str]]:
    out: list[tuple[str, bool, str]] = []
    done = sorted((o for o in outcomes if o.returncode == 0 and not o.error), key=lambda o: o.size)
    if len(done) >= 3:
        a, b = done[0], done[1]
        slope = (b.wall_s - a.wall_s) / (b.size - a.size)
        for c in done[2:]:
            expected = b.wall_s + slope * (c.size - b.size)
            dev = (c.wall_s - expected) / expected
            out.append(
                (
                    f"linear: wall at {c.size} within 10% of the line through {a.size} and {b.size}",
                    abs(dev) <= 0.10,
                    f"{c.wall_s:.1f}s vs {expected:.1f}s extrapolated ({100 * dev:+.1f}%; "
                    f"{1000 * slope:.1f} ms per size, intercept {a.wall_s - slope * a.size:.1f}s)",
                )
            )
    else:
        out.append(("linear", False, f"needs 3 completed sizes, have {len(done)}"))
    if done:
        # at the largest grid, where the runner's fixed start-up (importing torch,
        # collecting the environment: about 3 s) is amortised
        o = done[-1]
        marginal = ""
        if len(done) >= 2:
            a = done[0]
            per = (o.cpu_s - a.cpu_s) / (o.size - a.size)
            wall_per = (o.wall_s - a.wall_s) / (o.size - a.size)
            marginal = f"; marginal {1000 * per:.1f} ms CPU per size = {100 * per / wall_per:.1f}% of {1000 * wall_per:.0f} ms wall per size"
        out.append(
            (
                f"light: runner CPU under 5% of wall at {o.size}",
                o.cpu_share < 0.05,
                f"{o.cpu_s:.2f}s of {o.wall_s:.1f}s = {100 * o.cpu_share:.2f}%{marginal}",
            )
        )
    reported = [o for o in done if o.report_s is not None]
    if len(reported) >= 3:
        a, b, c = reported[0], reported[1], reported[-1]
        assert a.report_s is not None and b.report_s is not None and c.report_s is not None
        slope = (b.report_s - a.report_s) / (b.size - a.size)
        expected = b.report_s + slope * (c.size - b.size)
        out.append(
            (
                f"report linear: report at {c.size} at most 10% above the line through "
                f"{a.size} and {b.size}",
                c.report_s <= 1.10 * expected,
                f"{a.report_s:.1f}s, {b.report_s:.1f}s, {c.report_s:.1f}s "
                f"({c.report_s:.1f}s vs {expected:.1f}s extrapolated, "
                f"{100 * (c.report_s - expected) / expected:+.1f}%)",
            )
        )
    if len(done) >= 2:
        lo, hi = done[0], done[-1]
        limit = min(lo.peak_rss * 1.2, lo.peak_rss + 64 * MIB)
        grow = hi.peak_rss - lo.peak_rss
        per_1000 = grow / (hi.size - lo.size) * 1000 / MIB
        out.append(
            (
                f"flat memory: peak RSS at {hi.size} at most 20% and 64 MiB above {lo.size}'s",
                hi.peak_rss <= limit,
                f"{lo.peak_rss / MIB:.0f} -> {hi.peak_rss / MIB:.0f} MiB "
                f"({grow / MIB:+.1f} MiB, {per_1000:+.1f} MiB per 1000 sizes; "
                f"final {hi.final_rss / MIB:.0f} MiB)",
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="30,300,3000", help="grid sizes (default 30,300,3000)")
    parser.add_argument("--out", help="folder for the results folders (default: a temporary one)")
    parser.add_argument("--interval", type=float, default=0.05, help="sampling period, seconds")
    parser.add_argument(
        "--max-seconds", type=float, default=3600.0, help="stop a run that takes longer"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if not Path("/proc/self/stat").exists():
        print("error: needs Linux /proc", file=sys.stderr)
        return 2
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        print(
            f"error: --sizes {args.sizes!r}: expected integers such as 30,300,3000", file=sys.stderr
        )
        return 2
    if not sizes or sizes[0] < 1:
        print("error: --sizes must be positive integers", file=sys.stderr)
        return 2

    base = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="runner-scaling-"))
    base.mkdir(parents=True, exist_ok=True)
    layer_file = base / f"{LAYER_NAME}.py"
    layer_file.write_text(LAYER_FILE)
    print(f"runner scaling: sizes {sizes}, folders under {base}", flush=True)
    outcomes: list[Outcome] = []
    try:
        for size in sizes:
            out = base / f"n{size}"
            if out.exists():
                shutil.rmtree(out)
            outcome = run_one(size, layer_file, out, args.interval, args.max_seconds)
            outcomes.append(outcome)
            state = "ok" if outcome.returncode == 0 and not outcome.error else outcome.error
            print(
                f"  {size:>5} sizes: {outcome.wall_s:7.1f}s wall, runner cpu {outcome.cpu_s:.2f}s, "
                f"peak RSS {outcome.peak_rss / MIB:.0f} MiB, report "
                + (f"{outcome.report_s:.1f}s" if outcome.report_s is not None else "-")
                + f" ({state})",
                flush=True,
            )
    finally:
        summary = base / "scaling.json"
        summary.write_text(json.dumps([asdict(o) for o in outcomes], indent=1) + "\n")
    print()
    print(_table(outcomes))
    print()
    results = checks(outcomes)
    for name, ok, detail in results:
        print(f"[{'pass' if ok else 'FAIL'}] {name}: {detail}")
    print(f"\nsamples and RSS traces: {summary}")
    if not args.out and not args.keep:
        for o in outcomes:
            shutil.rmtree(base / f"n{o.size}", ignore_errors=True)
    if any(o.returncode != 0 or o.error for o in outcomes):
        return 2
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
