"""Do verdicts hold when the harness is run again? Two default runs, back to back.

Runs ``python -m harness run`` twice with the same settings (default: the default grid
and profile) and prints, per (layer, setting):

- verdict agreement: identical verdicts; "undecided" in one run agrees with a verdict
  in the other only when that verdict is among those its noisy sizes left possible;
- crossover agreement: the same grid interval, or overlapping ranges;
- speedup agreement: the median of |s1 - s2| / s1 over (point, candidate, metric)
  decided in both runs (the decisive metrics: the training step for training verdicts,
  the forward for inference verdicts);
- the share of (point, candidate, metric) comparisons left undecided;
- the wall time of each run, report included.

Targets (issue "Verdicts that hold when you run it again"): identical verdicts, speedup
agreement <= 5%, <= 10% undecided, <= 5 minutes per run. Exit status 1 when a target
is missed, so the script can gate.

Usage: python scripts/stability.py [--out DIR] [--skip-runs DIR1 DIR2] [-- RUN OPTIONS]
Quote its output with the date and ``torch.backends.cpu.get_cpu_capability()``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from harness.report.decide import (
    FIX_GRADIENT,
    FIX_LAYER,
    UNDECIDED,
    LayerDecision,
    SettingDecision,
    decide_layers,
)
from harness.report.explain import headline
from harness.results import load_results

TARGET_SPEEDUP = 0.05
TARGET_UNDECIDED = 0.10
TARGET_WALL_S = 300.0


def _burn(seconds_on: float, seconds_off: float) -> None:  # pragma: no cover - a child
    """A noisy neighbour: bursts of pure-Python CPU work, forever."""
    while True:
        end = time.perf_counter() + seconds_on
        while time.perf_counter() < end:
            sum(i * i for i in range(10_000))
        time.sleep(seconds_off)


def run_once(out: Path, extra: Sequence[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "harness", "run", "--out", str(out), "--quiet", *extra], check=True
    )
    return time.perf_counter() - t0


def decisions(folder: Path) -> list[LayerDecision]:
    results = load_results(folder)
    return decide_layers(results.frame, results.run, results.capabilities, results.breakdown)


def _verdict(d: LayerDecision, s: SettingDecision, use: str = "inference") -> str:
    """A setting's verdict as printed; a verdict that the layer's wrong gradient or a
    runtime call overrides says so (the speed verdict beside it, which is compared)."""
    text = headline(s.kind, s.threshold, d.size_axis, s.closing)
    if use == "training" and d.kind == FIX_GRADIENT:
        return f"{FIX_GRADIENT} (speed: {text})"
    if d.fixes_layer_first(s):
        return f"{FIX_LAYER} (speed: {text})"
    return text


def verdicts_agree(a: SettingDecision, b: SettingDecision) -> bool:
    if a.kind == b.kind:
        return True
    if a.kind == UNDECIDED:
        return b.kind in a.possible
    if b.kind == UNDECIDED:
        return a.kind in b.possible
    return False


def crossovers_agree(a: SettingDecision, b: SettingDecision) -> bool | None:
    """Whether the crossings' ranges overlap (both of a middle stretch's); None where
    either has none."""
    if a.threshold is None or b.threshold is None:
        return None
    pairs = [(a.threshold, b.threshold)]
    if a.closing is not None and b.closing is not None:
        pairs.append((a.closing, b.closing))
    return all(x.lower <= y.upper and y.lower <= x.upper for x, y in pairs)


def decisive_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (point, candidate, metric) a verdict is decided on: the ``step`` rows
    (training) and the ``forward`` rows (inference). Folders from before the step was
    timed whole carry the training step in the forward rows' ``step_*`` columns."""
    rows = frame[frame["phase"].isin(["step", "forward"]) & frame["speedup"].notna()].copy()
    if not (frame["phase"] == "step").any():
        old = frame[(frame["phase"] == "forward") & frame["step_speedup"].notna()].copy()
        for col in ("speedup", "speedup_low", "speedup_high", "decision"):
            old[col] = old[f"step_{col}"]
        old["case"] = old["case"].str.rsplit("/", n=1).str[0] + "/step"
        rows = pd.concat([rows, old])
    rows["key"] = rows["case"]
    return rows.set_index("key")


def _verdict_pairs(
    a: LayerDecision, b: LayerDecision
) -> list[tuple[str, SettingDecision, SettingDecision]]:
    """(use, run 1's setting, run 2's) for each verdict both runs decided."""
    out = []
    for use, va, vb in (
        ("training", a.training, b.training),
        ("inference", a.inference_verdict, b.inference_verdict),
    ):
        if va is not None and vb is not None:
            out += [(use, sa, sb) for sa, sb in zip(va.settings, vb.settings, strict=True)]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/stability"))
    parser.add_argument("--skip-runs", nargs=2, type=Path, metavar="DIR")
    parser.add_argument(
        "--noisy-neighbour",
        action="store_true",
        help="run a process beside the harness that burns CPU in bursts (2 s on, 1 s off), "
        "as another tenant of a shared machine would",
    )
    parser.add_argument("run_options", nargs="*", help="options for both runs (after --)")
    args = parser.parse_args(argv)
    neighbour = None
    if args.noisy_neighbour:
        import multiprocessing

        neighbour = multiprocessing.Process(target=_burn, args=(2.0, 1.0), daemon=True)
        neighbour.start()
        print("with a noisy neighbour: a process burning CPU 2 s on, 1 s off")

    import torch

    print(
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}"
    )
    if args.skip_runs:
        folders = list(args.skip_runs)
        walls = [float("nan"), float("nan")]
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        folders = [args.out / f"{stamp}-run{i}" for i in (1, 2)]
        try:
            walls = [run_once(f, args.run_options) for f in folders]
        finally:
            if neighbour is not None:
                neighbour.terminate()
    for i, (folder, wall) in enumerate(zip(folders, walls, strict=True), 1):
        run = json.loads((folder / "run.json").read_text())
        timing = run.get("timing", {})
        print(
            f"run {i}: wall {wall:.0f}s (report included), timing budget "
            f"{timing.get('budget_s')}s, spent {timing.get('spent_s')}s  [{folder}]"
        )

    d1, d2 = decisions(folders[0]), decisions(folders[1])
    agree_all = True
    print("\nverdicts (run 1 | run 2):")
    for a, b in zip(d1, d2, strict=True):
        for use, sa, sb in _verdict_pairs(a, b):
            ok = verdicts_agree(sa, sb)
            cross = crossovers_agree(sa, sb)
            agree_all &= ok and cross is not False
            print(
                f"  {a.layer:10s} {sa.label or 'all':8s} {use:9s} {_verdict(a, sa, use):36s} | "
                f"{_verdict(b, sb, use):36s} {'agree' if ok else 'DIFFER'}"
                + (
                    ""
                    if cross is None
                    else f", crossover ranges {'overlap' if cross else 'DISJOINT'}"
                )
            )

    f1 = decisive_rows(load_results(folders[0]).frame)
    f2 = decisive_rows(load_results(folders[1]).frame)
    common = f1.index.intersection(f2.index)
    both = [
        k
        for k in common
        if f1.loc[k, "decision"] != "undecided" and f2.loc[k, "decision"] != "undecided"
    ]
    diffs = [abs(f1.loc[k, "speedup"] - f2.loc[k, "speedup"]) / f1.loc[k, "speedup"] for k in both]
    flipped = [k for k in both if f1.loc[k, "decision"] != f2.loc[k, "decision"]]
    median = statistics.median(diffs) if diffs else float("nan")
    undecided = [float((f["decision"] == "undecided").mean()) if len(f) else 0.0 for f in (f1, f2)]
    print(
        f"\nspeedup agreement: median |s1-s2|/s1 = {median:.1%} over {len(both)} comparisons "
        f"decided in both runs (p90 {pd.Series(diffs).quantile(0.9):.1%}); "
        f"decided opposite ways: {len(flipped)}"
    )
    for k in flipped[:10]:
        print(
            f"  {k}: {f1.loc[k, 'speedup']:.2f} ({f1.loc[k, 'decision']}) vs "
            f"{f2.loc[k, 'speedup']:.2f} ({f2.loc[k, 'decision']})"
        )
    print(f"undecided: {undecided[0]:.1%} and {undecided[1]:.1%} of comparisons")
    targets = {
        "identical verdicts": agree_all,
        f"speedup agreement <= {TARGET_SPEEDUP:.0%}": median <= TARGET_SPEEDUP,
        f"undecided <= {TARGET_UNDECIDED:.0%}": max(undecided) <= TARGET_UNDECIDED,
    }
    if all(w == w for w in walls):  # not known for runs made elsewhere (--skip-runs)
        targets[f"wall <= {TARGET_WALL_S:.0f}s"] = all(w <= TARGET_WALL_S for w in walls)
    print("\ntargets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in targets.items()))
    if len(targets) == 3:
        print(f"(wall <= {TARGET_WALL_S:.0f}s: not judged, the runs' wall times are not known)")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
