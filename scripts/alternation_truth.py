"""Does the harness's "Thread pools" figure agree with a plain loop? A baseline's
forward alternating with a torch op, timed by a loop that shares no code with
``harness/contention.py``'s probe, beside the harness's ``alternating_torch_s`` and
``alternating_numpy_s`` for the same point (from a results folder).

The plain loop runs blocks of ``--calls`` iterations, each block timed whole:

- ``torch``: ``torch.add`` of 2^18 float32 into a buffer, then the call;
- ``numpy``: the same add through NumPy (one thread), then the call;
- ``torch alone`` and ``numpy alone``: the adds without the call.

A block's cost per call is its time over ``--calls``; the figure is the median over
``--blocks`` blocks (interleaved, so drift hits all four alike) of a cycle's cost less
its add's. The harness's probe instead times each cycle apart and takes medians of 15.
Both use the worker's thread setting: ``torch.set_num_threads`` and threadpoolctl.

Usage: python scripts/alternation_truth.py --layer NAME --point n=8
       [--layers-from FILE] [--threads N] [--results DIR] [--blocks 9] [--calls 20]
Quote its output with the date and the CPU capability it prints.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def _block(first: Callable[[], Any], call: Callable[[], Any] | None, calls: int) -> float:
    """Seconds per iteration of ``first`` then ``call`` (``first`` alone if None)."""
    start = time.perf_counter()
    for _ in range(calls):
        first()
        if call is not None:
            call()
    return (time.perf_counter() - start) / calls


def _harness_figures(results: Path, layer: str, impl: str, point: str, threads: int) -> str:
    import pandas as pd

    frame = pd.read_csv(results / "results.csv")
    rows = frame[
        (frame["layer"] == layer)
        & (frame["impl"] == impl)
        & (frame["point"] == point)
        & (frame["phase"] == "forward")
        & (frame["threads"] == threads)
        & (frame["dtype"] == "float32")
    ]
    if rows.empty or rows["alternating_torch_s"].isna().all():
        return "harness: no alternating_* figure for this point (not probed)"
    r = rows.iloc[0]
    on_torch, on_numpy = float(r["alternating_torch_s"]), float(r["alternating_numpy_s"])
    return (
        f"harness: {on_torch * 1e3:.3f} ms alternating with torch, {on_numpy * 1e3:.3f} ms "
        f"with NumPy (×{on_torch / on_numpy:.2f})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", required=True)
    parser.add_argument("--point", required=True)
    parser.add_argument("--layers-from", action="append", default=[])
    parser.add_argument("--threads", type=int, default=0, help="default: torch's own")
    parser.add_argument("--results", type=Path, help="a results folder to compare with")
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args(argv)
    import numpy as np
    import torch

    from harness.errors import HarnessError
    from harness.measure import set_threads
    from harness.points import format_point, parse_point
    from harness.registry import Registry

    try:
        layer = Registry.default(args.layers_from).get(args.layer)
        point = layer.check_point(parse_point(args.point))
    except (HarnessError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    threads = args.threads or torch.get_num_threads()
    set_threads(threads)
    impl = layer.baseline
    fn = impl.callable_for(point)
    inputs = layer.make(point, torch.float32, "cpu", seed=0)
    x = torch.randn(1 << 18)
    y = torch.empty_like(x)
    xn, yn = x.numpy(), y.numpy()

    def on_torch() -> None:
        torch.add(x, 1, out=y)

    def on_numpy() -> None:
        np.add(xn, 1, out=yn)

    def call() -> None:
        with torch.no_grad():
            fn(*inputs)

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"{when}, CPU capability {torch.backends.cpu.get_cpu_capability()}, torch "
        f"{torch.__version__}, {threads} thread(s): {args.layer} {impl.name} at "
        f"{format_point(point)}, forward"
    )
    for first in (on_torch, on_numpy):  # warm both paths
        _block(first, call, 2)
    costs: dict[str, list[float]] = {"torch": [], "numpy": []}
    for _ in range(args.blocks):
        cycle_t = _block(on_torch, call, args.calls)
        cycle_n = _block(on_numpy, call, args.calls)
        alone_t = _block(on_torch, None, args.calls)
        alone_n = _block(on_numpy, None, args.calls)
        costs["torch"].append(cycle_t - alone_t)
        costs["numpy"].append(cycle_n - alone_n)
    on_t, on_n = statistics.median(costs["torch"]), statistics.median(costs["numpy"])
    print(
        f"plain loop: {on_t * 1e3:.3f} ms alternating with torch, {on_n * 1e3:.3f} ms with "
        f"NumPy (×{on_t / on_n:.2f}), medians of {args.blocks} blocks of {args.calls} calls"
    )
    if args.results is not None:
        print(_harness_figures(args.results, args.layer, impl.name, format_point(point), threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
