"""What the cache of checks across runs saves (issue 20): the same grid run cold (a
fresh cache folder) then warm, and the targets.

    python scripts/bench_cache.py [--out DIR] [-- RUN OPTIONS...]

Prints, cold and warm: wall time, time outside timing (wall − run.json's
``timing.spent_s``), the timed share of wall time (seconds inside timed regions, every
process's warm-ups and values, from pyperf.json: ``scripts/bench_harness.timed_share``),
what came from the cache, what the timing spent preparing each group's processes and
waiting for other pools, and each timing process's start-up (job written → its first
task started: imports and the registry) and first group (preparing its forms: compile,
export load, then its rounds). Then the targets: warm time outside timing ≤ 40% of
cold's, timed share ≥ 40% cold and ≥ 60% warm, and verdicts that agree
(``scripts/stability.py``'s rules). Exit status 0 when every target is met.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_harness import timed_share
from stability import _verdict_pairs, decisions, verdicts_agree


def run(out: Path, cache: Path, extra: Sequence[str]) -> float:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "harness", "run", "--out", str(out), "--quiet"]
    subprocess.run([*cmd, "--cache-dir", str(cache), *extra], check=True)
    return time.perf_counter() - t0


def process_costs(folder: Path) -> list[tuple[str, float, float]]:
    """(timing process, start-up s, first group s) from the job files and raw events."""
    out = []
    for job in sorted((folder / "logs").glob("timing-*.job.json")):
        data = json.loads(job.read_text())
        raw = Path(data["raw"])
        starts = [
            json.loads(line)["t"]
            for line in raw.read_text().splitlines()
            if line.strip() and json.loads(line).get("event") == "start"
        ]
        if len(starts) < 2:
            continue
        spawned = job.stat().st_mtime
        out.append((job.name.split(".")[0], starts[0] - spawned, starts[1] - starts[0]))
    return out


def summary(folder: Path, wall: float) -> dict[str, Any]:
    record = json.loads((folder / "run.json").read_text())
    spent = float(record["timing"]["spent_s"])
    return {
        "wall": wall,
        "spent": spent,
        "outside": wall - spent,
        "share": timed_share(folder, wall),
        # the groups' visits outside their rounds: forks, forms, warm-ups (since 2026-12-03)
        "prepare": float(record["timing"].get("prepare_s") or 0.0),
        "waits": float(record["timing"].get("pool_wait_s") or 0.0),
        "cache": record.get("cache") or {},
        "processes": process_costs(folder),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/bench-cache"))
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="options of harness run")
    args = parser.parse_args(argv)
    extra = [a for a in args.extra if a != "--"]
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    cache = args.out / "cache"
    date = time.strftime("%Y-%m-%d")
    print(f"{date}: python -m harness run {' '.join(extra) or '(default grid)'}, cold then warm")
    found = {}
    for name in ("cold", "warm"):
        wall = run(args.out / name, cache, extra)
        found[name] = s = summary(args.out / name, wall)
        hits = {k: sum(v.values()) for k, v in s["cache"].get("hits", {}).items()}
        misses = {k: sum(v.values()) for k, v in s["cache"].get("misses", {}).items()}
        print(
            f"{name}: wall {wall:.1f}s, timing {s['spent']:.1f}s, outside timing "
            f"{s['outside']:.1f}s, timed share {100 * s['share']:.1f}%; "
            f"cache hits {hits or 'none'}, computed {misses or 'none'}"
        )
        print(
            f"  of the timing: {s['prepare']:.1f}s preparing groups' processes (forks, forms, "
            f"warm-ups), {s['waits']:.1f}s waiting for other pools"
        )
        for proc, start, first in s["processes"]:
            print(f"  {proc}: start-up {start:.1f}s, first group (forms + rounds) {first:.1f}s")
    cold, warm = found["cold"], found["warm"]
    pairs = [
        (d.layer, use, sa, sb)
        for d, e in zip(decisions(args.out / "cold"), decisions(args.out / "warm"), strict=True)
        for use, sa, sb in _verdict_pairs(d, e)
    ]
    agree = all(verdicts_agree(sa, sb) for _, _, sa, sb in pairs)
    for layer, use, sa, sb in pairs:
        mark = "agree" if verdicts_agree(sa, sb) else "DIFFER"
        print(f"  {layer} {use} {sa.label}: cold {sa.kind}, warm {sb.kind}: {mark}")
    ratio = warm["outside"] / cold["outside"] if cold["outside"] > 0 else float("nan")
    targets = {
        f"warm time outside timing ≤ 40% of cold's ({100 * ratio:.0f}%)": ratio <= 0.40,
        f"cold timed share ≥ 40% ({100 * cold['share']:.1f}%)": cold["share"] >= 0.40,
        f"warm timed share ≥ 60% ({100 * warm['share']:.1f}%)": warm["share"] >= 0.60,
        f"verdicts agree cold and warm ({len(pairs)} verdicts)": agree and bool(pairs),
    }
    for text, ok in targets.items():
        print(f"{'met ' if ok else 'MISS'}  {text}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
