"""Does what else a group's child holds change a call's cost? Each candidate, timed
beside every implementation of its group (as the harness times it) and beside its
baseline alone (as ``scripts/truth.py``'s plain loop, and a user's process, runs it).

The harness times a group (one grid point) in a child forked for it, holding every
implementation at once: the baseline, the native, its TorchScript, compile and ONNX
Runtime forms, each prepared (built, its inputs made) before the rounds, and called in
turn, round by round. Under glibc's default malloc, whether a call's large buffers are
page-faulted every call (the top of the heap trimmed after each free) or reused (they
land in holes the other implementations left) depends on that heap. This script
measures, for one layer, point and phase, in children forked from one prepared
worker exactly as the harness's are:

- ``group``: every implementation prepared and timed in one child, one value per
  implementation per round in a random order (as ``harness.worker.Worker.rounds``);
- ``pair``: for each candidate, a child holding only the baseline and that candidate,
  timed the same way.

It prints, per candidate, both speedups (the median of the per-round ratios
baseline / candidate) and each side's milliseconds and minor page faults per call.
Where they differ, the harness's figure depends on which other implementations were
timed with it (``--impls``), not only on the code being compared.

Usage: python scripts/group_neighbours.py [--layer fft] [--point n=1024]
       [--phase forward] [--threads 1] [--rounds 12] [--impls a,b,...]
Quote its output with the date and the CPU capability it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from allocator_history import parse_point


def speedup(baseline: Sequence[float], candidate: Sequence[float]) -> float:
    """The median of the per-round ratios baseline / candidate (values in round order)."""
    return statistics.median(b / c for b, c in zip(baseline, candidate, strict=True))


def table(group: Mapping[str, Any], pairs: Mapping[str, Any], baseline: str) -> list[str]:
    """The printed lines: per candidate, its speedup beside the whole group and beside
    its baseline alone, and each side's ms and faults per call in both. ``group`` and
    each of ``pairs`` map an implementation to ``{"s": [...], "faults": [...]}``."""

    def cell(side: Mapping[str, Any]) -> str:
        ms = statistics.median(side["s"]) * 1e3
        return f"{ms:8.3f} ms {statistics.median(side['faults']):7.0f} flt"

    head = f"{'candidate':<14} {'group ×':>8} {'pair ×':>8} {'pair/group':>10}   "
    head += f"{'baseline in group':>22} {'baseline in pair':>22} "
    head += f"{'candidate in group':>22} {'candidate in pair':>22}"
    lines = [head, "-" * len(head)]
    for cand, pair in pairs.items():
        g = speedup(group[baseline]["s"], group[cand]["s"])
        p = speedup(pair[baseline]["s"], pair[cand]["s"])
        lines.append(
            f"{cand:<14} {g:8.2f} {p:8.2f} {p / g:10.2f}   {cell(group[baseline]):>22} "
            f"{cell(pair[baseline]):>22} {cell(group[cand]):>22} {cell(pair[cand]):>22}"
        )
    return lines


def _time_in_child(worker: Any, variants: Sequence[Any], phase: str, rounds: int) -> Any:
    """Fork a child (``harness.worker.run_in_child``'s way), prepare ``variants`` there,
    time ``rounds`` rounds with the harness's own round loop (``_time_rounds``: a
    discarded warm-up round, a fresh random order each round, page faults counted
    around each value), and return ``{impl: {"s": [...], "faults": [...]}}`` through a
    pipe."""
    from harness.measure import calibrate_loops, set_threads
    from harness.worker import _time_rounds, _Timed

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        code = 0
        try:
            set_threads(variants[0].threads)
            funcs, loops = {}, {}
            for v in variants:  # one that cannot run the phase is left out, as a row
                try:
                    funcs[v.impl] = worker.prepare(v).time_func(phase)
                    loops[v.impl] = calibrate_loops(funcs[v.impl], worker.job.min_time)[0]
                except Exception:  # the harness's setup pass says why
                    funcs.pop(v.impl, None)
            timed = _Timed()
            _time_rounds(funcs, loops, rounds, random.Random(0), timed, worker.job.min_time)
            out = {i: {"s": timed.values[i], "faults": timed.faults[i]} for i in timed.values}
            data = json.dumps(out).encode()
        except BaseException as exc:
            data = json.dumps({"error": repr(exc)}).encode()
            code = 1
        with os.fdopen(write, "wb") as f:
            f.write(data)
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        result = json.loads(f.read() or b"{}")
    os.waitpid(pid, 0)
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="fft")
    parser.add_argument("--point", default="n=1024")
    parser.add_argument("--phase", default="forward", choices=("forward", "step", "backward"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--impls", default="", help="the group (default: all the layer's)")
    parser.add_argument("--min-time", type=float, default=0.005, help="seconds per value")
    args = parser.parse_args(argv)
    try:
        point = parse_point(args.point)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("HARNESS_FORK_GROUPS", "1")
    import torch

    from harness.case import Variant
    from harness.protocol import Job
    from harness.worker import Worker

    raw = Path(os.environ.get("TMPDIR", "/tmp")) / f"group-neighbours-{os.getpid()}.jsonl"
    worker = Worker(Job("timing", (), str(raw), process=0, min_time=args.min_time))
    try:
        layer = worker.registry.get(args.layer)
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    impls = [i.name for i in layer.all_implementations()]
    if args.impls:
        wanted = [w.strip() for w in args.impls.split(",") if w.strip()]
        unknown = sorted(set(wanted) - set(impls))
        if unknown:
            print(
                f"error: {args.layer} has no implementation {', '.join(unknown)}", file=sys.stderr
            )
            return 2
        impls = [i for i in impls if i in wanted]
    baseline = layer.baseline.name
    if baseline not in impls:
        impls.insert(0, baseline)
    variants = {i: Variant.make(args.layer, i, point, "float32", args.threads) for i in impls}
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"{when}, CPU capability {torch.backends.cpu.get_cpu_capability()}, torch "
        f"{torch.__version__}: {args.layer} {args.point} {args.phase}, {args.threads} "
        f"thread(s), baseline {baseline}"
    )
    try:
        group = _time_in_child(worker, list(variants.values()), args.phase, args.rounds)
    except RuntimeError as exc:
        print(f"error: the group child failed: {exc}", file=sys.stderr)
        return 1
    if baseline not in group:
        print(f"error: the baseline {baseline} cannot run {args.phase}", file=sys.stderr)
        return 1
    pairs: dict[str, Any] = {}
    for impl in impls:
        if impl == baseline or impl not in group:
            continue
        try:
            pairs[impl] = _time_in_child(
                worker, [variants[baseline], variants[impl]], args.phase, args.rounds
            )
        except RuntimeError as exc:
            print(f"note: {impl} not timed in a pair: {exc}", file=sys.stderr)
    print("\n".join(table(group, pairs, baseline)))
    raw.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
