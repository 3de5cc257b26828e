"""Check the harness's own speed and trustworthiness on the default grid.

Runs ``python -m harness run`` (default grid and profile) twice and prints:

- the wall time of each run (target: under 5 minutes including the report);
- the share of wall time spent inside timed regions (from pyperf's raw values);
- run-to-run agreement: the median over points above 10 us of |t1 - t2| / t1
  (target: under 10%);
- for a few points, the harness's median against ``torch.utils.benchmark.Timer``'s
  ``blocked_autorange`` at one thread, the two measured back to back in rounds
  (target: within 10%).

Usage: python scripts/bench_harness.py [--out DIR] [--runs 2] [--skip-runs DIR1 DIR2]
Timings on a shared machine are noisy: compare the ratios, measured in one go.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

# Measure the Timer side under the settings the harness's workers get (the default
# allocator, thread pools sized for one thread), so only the method differs.
from harness.environment import worker_env

_ENV = worker_env(1)
# Only when run as the script: bench_cache.py imports timed_share from here, and this
# re-exec used to turn its whole run (and the harness runs it starts) into 1 thread.
if __name__ == "__main__" and any(
    os.environ.get(k) != _ENV.get(k) for k in ("MALLOC_MMAP_THRESHOLD_", "OMP_NUM_THREADS")
):
    os.execve(sys.executable, [sys.executable, *sys.argv], _ENV)

import torch
from torch.utils.benchmark import Timer

import harness
from harness.forms import build, quiet
from harness.measure import set_threads
from harness.registry import Registry

ROUNDS = 3
POINTS = [
    ("fft", "numpy", {"n": 512}, "forward"),
    ("fft", "torch", {"n": 256}, "forward"),
    ("fft", "torch", {"n": 128}, "backward"),
    ("conv2d", "scipy", {"n": 128, "k": 3}, "forward"),
    ("conv2d", "torch", {"n": 512, "k": 3}, "forward"),
    ("conv2d", "scipy", {"n": 64, "k": 7}, "backward"),
]


def case_name(layer: str, impl: str, point: dict[str, Any], phase: str) -> str:
    where = ",".join(f"{k}={v}" for k, v in point.items())
    return f"{layer}/{impl}/{where}/float32/t1/cpu/glibc/{phase}"


def run_default(out: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "harness", "run", "--out", str(out), "--quiet"], check=True
    )
    return time.perf_counter() - t0


def timed_share(folder: Path, wall_s: float) -> float:
    """Seconds inside timed regions (warm-ups and values, every process) / wall time."""
    suite = json.loads((folder / "pyperf.json").read_text())
    inside = 0.0
    for bench in suite["benchmarks"]:
        common = bench.get("metadata", {})
        for run in bench["runs"]:
            meta = {**suite.get("metadata", {}), **common, **run.get("metadata", {})}
            loops = meta.get("loops", 1) * meta.get("inner_loops", 1)
            inside += sum(v * loops for v in run.get("values", []))
            inside += sum(
                loops_w * meta.get("inner_loops", 1) * v for loops_w, v in run.get("warmups", [])
            )
    return inside / wall_s


def agreement(a: pd.DataFrame, b: pd.DataFrame) -> tuple[float, int]:
    left = a[a["status"] == "ok"].set_index("case")["median_s"]
    right = b[b["status"] == "ok"].set_index("case")["median_s"]
    common = left.index.intersection(right.index)
    t1, t2 = left[common], right[common]
    keep = t1 > 10e-6
    rel = ((t1[keep] - t2[keep]).abs() / t1[keep]).astype(float)
    return float(rel.median()), int(keep.sum())


def timer_median(layer_name: str, impl_name: str, point: dict[str, Any], phase: str) -> float:
    registry = Registry.default()
    layer = registry.get(layer_name)
    impl = layer.implementation(impl_name)
    set_threads(1)
    inputs = layer.make(point, torch.float32, "cpu", seed=0)
    mask = [True] * len(inputs)
    with quiet():
        fn = build(layer, impl, point, inputs, "float32", 1, "cpu", mask).fn
    if phase == "forward":
        timer = Timer(
            "with torch.no_grad(): fn(*inputs)",
            globals={"fn": fn, "inputs": inputs, "torch": torch},
            num_threads=1,
        )
    else:
        leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
        out = fn(*leaves)
        gen = torch.Generator().manual_seed(1)
        grad = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out.dtype)
        timer = Timer(
            "torch.autograd.grad(out, leaves, grad, retain_graph=True)",
            globals={"out": out, "leaves": leaves, "grad": grad, "torch": torch},
            num_threads=1,
        )
    return float(timer.blocked_autorange(min_run_time=1.0).median)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", default="reports/bench-harness", help="folder for the two runs")
    parser.add_argument(
        "--skip-runs", nargs=2, metavar="DIR", help="reuse two finished runs instead"
    )
    args = parser.parse_args()
    if args.skip_runs:
        dirs = [Path(d) for d in args.skip_runs]
        walls = [float("nan"), float("nan")]
    else:
        root = Path(args.out)
        if root.exists() and any(root.iterdir()):
            print(f"error: {root} exists; pass another --out", file=sys.stderr)
            return 2
        dirs = [root / "run1", root / "run2"]
        walls = [run_default(d) for d in dirs]
    frames = [harness.load(d) for d in dirs]
    for i, (d, wall) in enumerate(zip(dirs, walls, strict=True), 1):
        share = timed_share(d, wall) if wall == wall else float("nan")
        print(
            f"run {i}: wall {wall:.1f} s (including the report), {share:.0%} of it inside timed regions  [{d}]"
        )
    med, n = agreement(*frames)
    print(
        f"run-to-run agreement: median |t1-t2|/t1 = {med:.1%} over {n} points above 10 us (target < 10%)"
    )
    print(
        "harness median vs torch.utils.benchmark.Timer.blocked_autorange (1 thread), interleaved: "
        f"{ROUNDS} rounds of (a harness run of these points, then Timer on each), medians over rounds"
    )
    # This machine's speed drifts by tens of percent over minutes, so a figure from the
    # default run above and a Timer figure taken minutes later are not comparable. Each
    # round measures both sides back to back; medians over rounds absorb the bursts.
    ours_values: dict[int, list[float]] = {i: [] for i in range(len(POINTS))}
    timer_values: dict[int, list[float]] = {i: [] for i in range(len(POINTS))}
    scratch = Path(tempfile.mkdtemp(prefix="bench-harness-"))
    for r in range(ROUNDS):
        frame = harness.run(
            layers=sorted({p[0] for p in POINTS}),
            impls=sorted({p[1] for p in POINTS}),
            grid={
                "n": sorted({p[2]["n"] for p in POINTS}),
                "k": sorted({p[2]["k"] for p in POINTS if "k" in p[2]}),
            },
            out=scratch / f"round{r}",
            capabilities=False,
            report=False,
        ).set_index("case")
        for i, (layer, impl, point, phase) in enumerate(POINTS):
            ours_values[i].append(
                float(frame.loc[case_name(layer, impl, point, phase), "median_s"])
            )
            timer_values[i].append(timer_median(layer, impl, point, phase))
    shutil.rmtree(scratch, ignore_errors=True)
    ratios = []
    for i, (layer, impl, point, phase) in enumerate(POINTS):
        case = case_name(layer, impl, point, phase)
        ours = statistics.median(ours_values[i])
        theirs = statistics.median(timer_values[i])
        ratios.append(ours / theirs)
        default_run = float(frames[0].set_index("case").loc[case, "median_s"])
        print(
            f"  {case}: harness {ours * 1e6:9.1f} us  Timer {theirs * 1e6:9.1f} us  ratio {ours / theirs:5.2f}"
            f"   (default run 1: {default_run * 1e6:9.1f} us)"
        )
    worst = max(abs(r - 1) for r in ratios)
    print(
        f"largest deviation from Timer: {worst:.1%} (target within 10%); median ratio {statistics.median(ratios):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
