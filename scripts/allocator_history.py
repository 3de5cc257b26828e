"""Does a process's history change what a call costs? One point, after other points.

For one layer, a candidate against its baseline at one grid point (``--point``), this
script measures the whole training step (forward with grad, then ``autograd.grad``
freeing the graph), paired and interleaved as ``scripts/truth.py`` does, in fresh
processes under glibc's default malloc, each process first running a few steps at
other points (``--history``): none, then each history in turn. It prints each side's
time per step and the speedup per history and thread count.

Why it exists: glibc's mmap and trim thresholds adapt to the buffers a process frees
and never come back down, so the same call can cost a different amount after other
sizes ran. This is why the harness times each group in a child forked for it
(``harness.worker.run_in_child``) rather than after the other groups; run it to see
how large the effect is for your layer on your machine.

Usage: python scripts/allocator_history.py [--layer conv2d] [--point n=512,k=3]
       [--history "n=128,k=3;n=1024,k=3"] [--threads 1,2] [--seconds 6]
Quote its output with the date and the CPU capability it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import truth  # (the plain loop: user-style callables, paired rounds)

HISTORY_STEPS = 5


def parse_point(text: str) -> dict[str, int | str]:
    """``"n=512,k=3"`` -> ``{"n": 512, "k": 3}``; ValueError on a malformed point."""
    point: dict[str, int | str] = {}
    for part in text.split(","):
        axis, sep, value = part.partition("=")
        if not sep or not axis.strip() or not value.strip():
            raise ValueError(f"not a point: {text!r} (want axis=value,...)")
        value = value.strip()
        point[axis.strip()] = int(value) if value.lstrip("-").isdigit() else value
    return point


def child(spec: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - a fresh process
    import torch
    from threadpoolctl import threadpool_limits

    from harness.registry import Registry

    threads = int(spec["threads"])
    torch.set_num_threads(threads)
    limiter = threadpool_limits(threads)
    layer = Registry.default().get(spec["layer"])

    def steps(point: dict[str, Any]) -> dict[str, Any]:
        inputs = layer.make(point, dtype=torch.float32, seed=0)
        sides = {"baseline": spec["baseline"], "candidate": spec["candidate"]}
        built = {s: truth._user_callable(layer, impl, point, inputs) for s, impl in sides.items()}
        with torch.no_grad():
            out = built["baseline"][0](*built["baseline"][1])
        grad_output = torch.randn(out.shape, dtype=out.dtype)
        return truth._phase_calls(built, "step", grad_output)

    for point in spec["history"]:
        for call in steps(point).values():
            for _ in range(HISTORY_STEPS):
                call()
    calls = steps(spec["point"])
    for call in calls.values():
        for _ in range(3):
            call()
    rounds = truth._paired_rounds(
        calls,
        truth.Spec(
            pick={},
            threads=str(threads),
            layers_from=None,
            seed=1,
            seconds=spec["seconds"],
            block_ms=100.0,
        ),
        random.Random(1),
    )
    del limiter
    return {
        "ratio": statistics.median(rounds["ratios"]),
        "baseline_ms": statistics.median(rounds["times"]["baseline"]) * 1e3,
        "candidate_ms": statistics.median(rounds["times"]["candidate"]) * 1e3,
        "capability": torch.backends.cpu.get_cpu_capability(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--layer", default="conv2d")
    parser.add_argument("--baseline", default="scipy")
    parser.add_argument("--candidate", default="torch")
    parser.add_argument("--point", default="n=512,k=3")
    parser.add_argument(
        "--history",
        default="n=128,k=3;n=1024,k=3",
        help="points run before, ';'-separated (each alone, after none)",
    )
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    try:
        point = parse_point(args.point)
        histories = [[], *([parse_point(h)] for h in args.history.split(";") if h.strip())]
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MALLOC_") and k not in truth.ALLOCATOR_VARS
    }
    print(
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {args.layer} {args.point}: "
        f"{args.candidate} against {args.baseline}, whole training step, glibc defaults"
    )
    for count in threads:
        for history in histories:
            spec = {
                "layer": args.layer,
                "baseline": args.baseline,
                "candidate": args.candidate,
                "point": point,
                "history": history,
                "threads": count,
                "seconds": args.seconds,
            }
            done = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(spec)],
                env={**env, "OMP_NUM_THREADS": str(count)},
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                print(
                    f"error: the measuring process failed: {done.stderr.strip()[-300:]}",
                    file=sys.stderr,
                )
                return 1
            r = json.loads(done.stdout.strip().splitlines()[-1])
            after = (
                " then ".join(",".join(f"{k}={v}" for k, v in h.items()) for h in history)
                or "nothing (fresh)"
            )
            print(
                f"threads {count}, after {after:<22} {args.baseline} {r['baseline_ms']:7.2f} ms"
                f"  {args.candidate} {r['candidate_ms']:7.2f} ms  ×{r['ratio']:.2f}"
                f"  ({r['capability']})",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
