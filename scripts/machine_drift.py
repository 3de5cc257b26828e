"""How far does this machine's own speed move a speedup, minute by minute, in one process?

One fresh process times a pick of ``scripts/truth.py`` (its baseline and candidate,
built and called as the truth's plain loop calls them) for ``--seconds``, in paired
rounds as the truth does (one block of calls per side, in a random order), and
reports each ``--window`` of rounds: both sides' milliseconds per call and the median
of the rounds' ratios, baseline / candidate. Nothing changes in the process between
windows, so whatever moves is the machine: a virtual machine's host, its other
tenants, frequency.

Why it matters: a paired ratio cancels a slowdown that hits both sides alike. On this
2-core VM (2026-11-30, AVX512) NumPy's fft at n=64 on 2 threads ran at 0.070 ms per
call for 34 s, then at 0.115 ms for 16 s, then at 0.070 ms again, while torch's went
from 0.045 to 0.056 ms: the speedup moved from x1.6 to x2.05 and back, in one process.
Any two measurements of that ratio taken minutes apart (the harness and
``scripts/truth.py``'s truth, two runs of the harness) differ by as much, each true of
its own minutes. The summary says how large that swing was while this ran: the range
of the windows' ratios and the share of windows beyond 15% of their median.

Usage: python scripts/machine_drift.py [--pick fft-64] [--threads 2|default]
       [--phase forward|step] [--seconds 60] [--window 2] [--block-ms 10]
Quote its output with the date and the CPU capability it prints.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import truth  # the truth's picks, layers and plain-loop calls

TOLERANCE = truth.TOLERANCE


@dataclass(frozen=True)
class Window:
    """``rounds`` paired rounds ending ``end_s`` after timing began."""

    end_s: float
    rounds: int
    baseline_ms: float
    candidate_ms: float
    ratio: float


def windows(rounds: Sequence[tuple[float, float, float]], window_s: float) -> list[Window]:
    """Rounds ``(end_s, baseline_s, candidate_s)`` (seconds per call) cut into windows of
    ``window_s``; each window's medians. Pure."""
    out: list[Window] = []
    current: list[tuple[float, float, float]] = []
    start = 0.0
    for row in rounds:
        current.append(row)
        if row[0] - start >= window_s:
            out.append(_window(current))
            current, start = [], row[0]
    if current:
        out.append(_window(current))
    return out


def _window(rows: Sequence[tuple[float, float, float]]) -> Window:
    return Window(
        end_s=rows[-1][0],
        rounds=len(rows),
        baseline_ms=statistics.median(r[1] for r in rows) * 1e3,
        candidate_ms=statistics.median(r[2] for r in rows) * 1e3,
        ratio=statistics.median(r[1] / r[2] for r in rows),
    )


def swing(found: Sequence[Window], tolerance: float = TOLERANCE) -> dict[str, float]:
    """The windows' ratios: median, lowest, highest, highest / lowest - 1, and the share
    of windows further than ``tolerance`` from the median. Pure."""
    ratios = [w.ratio for w in found]
    if not ratios:
        return {}
    mid = statistics.median(ratios)
    beyond = sum(abs(r / mid - 1) > tolerance for r in ratios)
    return {
        "median": mid,
        "low": min(ratios),
        "high": max(ratios),
        "range": max(ratios) / min(ratios) - 1,
        "beyond": beyond / len(ratios),
    }


def child_main(spec: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - a fresh process
    """The pick's pair, built and timed by the truth's own plain loop (``truth``'s
    ``_built_pair``, ``_phase_calls``, ``_paired_rounds``) for ``seconds``, with no cap
    on the rounds; each round's end and both sides' seconds per call."""
    import torch

    if spec["threads"] != "default":
        torch.set_num_threads(int(spec["threads"]))
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(int(spec["threads"]))  # noqa: F841  (kept for the process)
    truth_spec = truth.Spec(
        pick=spec["pick"],
        threads=spec["threads"],
        layers_from=spec["layers_from"],
        seed=0,
        seconds=spec["seconds"],
        block_ms=spec["block_ms"],
        max_rounds=sys.maxsize,
        phases=[spec["phase"]],
    )
    built, grad_output = truth._built_pair(truth_spec)
    calls = truth._phase_calls(built, spec["phase"], grad_output)
    for call in calls.values():  # warm-up, as the truth's
        for _ in range(3):
            call()
    got = truth._paired_rounds(calls, truth_spec, random.Random(0))
    rows = list(zip(got["ends"], got["times"]["baseline"], got["times"]["candidate"], strict=True))
    return {
        "rows": rows,
        "loops": got["loops"],
        "torch_threads": torch.get_num_threads(),
        "capability": torch.backends.cpu.get_cpu_capability(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--pick", default="fft-64", help="one of: " + ", ".join(p.name for p in truth.PICKS)
    )
    parser.add_argument("--threads", default="2", help="a count, or 'default' (default: 2)")
    parser.add_argument("--phase", default="forward", choices=("forward", "step"))
    parser.add_argument("--seconds", type=float, default=60.0, help="default: 60")
    parser.add_argument("--window", type=float, default=2.0, help="seconds (default: 2)")
    parser.add_argument("--block-ms", type=float, default=10.0, help="default: 10")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_main(json.loads(args.child))))
        return 0
    try:
        (pick,) = truth.select_picks(args.pick)
        if args.threads != "default" and not (args.threads.isdigit() and int(args.threads) > 0):
            raise ValueError(
                f"--threads must be a positive count or 'default', not {args.threads!r}"
            )
        if args.seconds <= 0 or args.window <= 0 or args.block_ms <= 0:
            raise ValueError("--seconds, --window and --block-ms must be positive")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    layers_from = None
    if pick.source == "readme":
        layers_from = str(truth.readme_layer_file(Path(tempfile.mkdtemp(prefix="drift-"))))
    spec = {
        "pick": {**pick.__dict__, "point": dict(pick.point)},
        "threads": args.threads,
        "layers_from": layers_from,
        "phase": args.phase,
        "seconds": args.seconds,
        "block_ms": args.block_ms,
    }
    res = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
        env=truth._child_env(args.threads),
        cwd=truth.ROOT,
        capture_output=True,
        text=True,
        timeout=args.seconds * 3 + 300,
        check=False,
    )
    if res.returncode != 0:
        print(f"error: the timing process failed: {res.stderr.strip()[-400:]}", file=sys.stderr)
        return 1
    got = json.loads(res.stdout.strip().splitlines()[-1])
    print(
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, CPU capability {got['capability']}, "
        f"{got['torch_threads']} torch threads; {pick.name} {args.phase}: "
        f"{pick.baseline} / {pick.candidate}, loops {got['loops']}"
    )
    found = windows([tuple(r) for r in got["rows"]], args.window)
    print(
        f"{'until':>7}  {'rounds':>6}  {pick.baseline + ' ms':>12}  {pick.candidate + ' ms':>12}  ratio"
    )
    for w in found:
        print(
            f"{w.end_s:6.1f}s  {w.rounds:6d}  {w.baseline_ms:12.4f}  {w.candidate_ms:12.4f}  "
            f"x{w.ratio:.2f}"
        )
    s = swing(found)
    if s:
        print(
            f"over {len(found)} windows: median x{s['median']:.2f}, lowest x{s['low']:.2f}, "
            f"highest x{s['high']:.2f} (highest / lowest - 1 = {s['range']:.0%}); "
            f"{s['beyond']:.0%} of windows further than {TOLERANCE:.0%} from the median"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
