"""Are the harness's speedups true? Its figures against a plain loop of the user's own.

For a handful of picks (layer, baseline, candidate, grid point) this script

1. runs ``python -m harness run`` on a narrow grid (once per layer and thread setting,
   covering all of that layer's picks), with the budget per grid point that a run of
   the default grid gets (``--budget`` to set it), and reads the candidate's paired speedups from
   ``results.csv``: the ``step`` row (a training step) and the ``forward`` row (the
   inference forward);
2. measures the same two things with its own plain loop, each side (baseline,
   candidate) in a fresh process of its own, as a user's loop runs one of them (two in
   one process share a heap whose thresholds, set by either's buffers, decide which
   takes fresh pages each call), the two paired in rounds from this script
   (``--processes`` pairs per pick, thread setting and phase before the harness run, as many after
   it: the truth is pooled from both, and the table shows how far it moved between
   them, since this machine's speed drifts over minutes and not alike for every
   implementation), exactly as a user's code runs them,
   under the default allocator (glibc malloc defaults: ``MALLOC_*`` and ``LD_PRELOAD``
   are cleared), the forward and the step each in a process of its own (an inference
   process runs forwards only, a training loop steps only; the harness times a group's
   phases apart likewise, ``harness.case.PROCESS_PHASES``):

   - **step**: every iteration ``out = fn(*leaves)`` with grad enabled, then
     ``torch.autograd.grad(out, leaves, grad_output)`` without ``retain_graph`` (the
     graph is freed), for every differentiable input the layer declares (a module's
     parameters are its own ``nn.Parameter``\\ s, called as ``module(x)``);
   - **forward**: the candidate under ``torch.inference_mode()``, the baseline under
     ``torch.no_grad()``.

   Baseline and candidate are paired and interleaved: rounds of [baseline block,
   candidate block] in a random order, each block begun once the other side's
   threads rest, each block a loop of calls lasting at least
   ``--block-ms``; one ratio per round, baseline time / candidate time. The truth is
   the interquartile mean of the log ratios of all rounds of all processes (the
   estimate the harness takes too; ``interquartile_mean`` says why not the median),
   with a 95% interval from a two-level bootstrap (processes, then rounds within
   each), computed here without the harness's statistics.

It prints, per pick, thread setting and phase: the harness's speedup and interval, the
truth's, harness / truth, and whether they agree within 15% (the target of issue 16,
"Truth, checked by a script"); beside them, the range of per-process speedups on each
side (the harness's from its raw timing events): this VM's speed is a state that lasts
seconds to minutes and moves a ratio by up to a third, so two sides measured minutes
apart can each be right about their own minutes; then a [pass] or [fail] line per
target, with its misses sorted by cause. It does not
import ``harness.measure``, ``harness.stats`` or ``harness.worker``: the layers'
callables come from ``layers/`` or a layer file (through ``harness.registry``), the
rest is its own.

Thread settings (``--threads 1,default``): ``1`` is ``OMP_NUM_THREADS=1``,
``torch.set_num_threads(1)`` and threadpoolctl limits of 1; ``default`` is what a fresh
process gets (``torch.get_num_threads()`` as it comes, thread variables cleared), and
the harness is given that count explicitly.

Until the harness writes ``step`` rows, the training figure falls back to the forward
row's ``step_speedup`` (forward + backward on a retained graph, summed per round),
marked "(old harness: summed step)".

Usage: python scripts/truth.py [--picks NAME,...] [--threads 1,default] [--noisy-neighbour]
       [--profile P] [--budget S] [--out DIR]
Quote its output with the date and ``torch.backends.cpu.get_cpu_capability()``; it
prints both. Exit status 0 whether or not the target is met (it is a measurement), 1
when a measurement failed, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 0.15  # harness / truth within 15%
PHASES = ("step", "forward")
OLD_STEP_MARK = "(old harness: summed step)"
#: environment variables that set thread pools, cleared for the "default" setting
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: environment variables that change the allocator, cleared for every truth process
ALLOCATOR_VARS = ("LD_PRELOAD",)


# -- picks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pick:
    """One comparison: ``candidate`` against ``baseline`` at ``point`` of ``layer``.

    ``source`` is where the layer comes from: ``"builtin"`` (``layers/``),
    ``"readme"`` (the README's "Benchmark your own layer" example, written into the
    output folder as ``my_layers.py``) or a layer file's path in the repository (an
    example of ``examples/``).
    """

    name: str
    layer: str
    point: Mapping[str, int]
    baseline: str
    candidate: str
    source: str = "builtin"
    dtype: str = "float32"


PICKS: tuple[Pick, ...] = (
    # a size where a call costs tens of microseconds: what wraps the user's call shows
    Pick("conv2d-16", "conv2d", {"n": 16, "k": 3}, "scipy", "torch"),
    Pick("conv2d-128", "conv2d", {"n": 128, "k": 3}, "scipy", "torch"),
    Pick("conv2d-512", "conv2d", {"n": 512, "k": 3}, "scipy", "torch"),
    Pick("conv2d-1024", "conv2d", {"n": 1024, "k": 3}, "scipy", "torch"),
    Pick("fft-64", "fft", {"n": 64}, "numpy", "torch"),
    Pick("fft-1024", "fft", {"n": 1024}, "numpy", "torch"),
    # a compile form of a layer compile takes whole: torch.compile(torch.tanh, dynamic=False)
    Pick("tanh-compile-100000", "tanh", {"n": 100_000}, "numpy", "compile", source="readme"),
    # a baseline on a BLAS pool of its own (NumPy's matmul on OpenBLAS's threads), whose
    # spinning threads meet torch's OpenMP ones when the two are timed in turns
    # (harness.contention.PoolWatch)
    Pick(
        "linear-256",
        "numpy_linear",
        {"batch": 256, "in_features": 512, "out_features": 512},
        "numpy",
        "torch",
        source="examples/linear_numpy.py",
    ),
)


def select_picks(text: str | None, picks: Sequence[Pick] = PICKS) -> list[Pick]:
    """The picks named in ``text`` (comma-separated; all when empty), in table order."""
    if not text:
        return list(picks)
    wanted = [w.strip() for w in text.split(",") if w.strip()]
    known = {p.name: p for p in picks}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ValueError(f"unknown pick(s) {', '.join(unknown)} (known: {', '.join(known)})")
    return [p for p in picks if p.name in wanted]


def parse_threads(text: str, default_threads: int) -> list[tuple[str, int]]:
    """``"1,default"`` -> ``[("1", 1), ("default", N)]``; a setting equal to an earlier
    one is dropped (on a 1-core machine "default" is "1")."""
    out: list[tuple[str, int]] = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        if item == "default":
            count = default_threads
        elif item.isdigit() and int(item) > 0:
            count = int(item)
        else:
            raise ValueError(f"--threads: {item!r} is neither a positive integer nor 'default'")
        if all(count != c for _, c in out):
            out.append((item, count))
    if not out:
        raise ValueError("--threads: no thread setting given")
    return out


def harness_groups(picks: Sequence[Pick]) -> dict[tuple[str, str], list[Pick]]:
    """Picks by (layer, source): one harness run per group and thread setting."""
    groups: dict[tuple[str, str], list[Pick]] = {}
    for pick in picks:
        groups.setdefault((pick.layer, pick.source), []).append(pick)
    return groups


def harness_command(
    picks: Sequence[Pick],
    threads: int,
    out: Path,
    profile: str,
    budget: float | None,
    layers_from: Path | str | None = None,
    python: str = sys.executable,
) -> list[str]:
    """``python -m harness run`` on the narrow grid covering ``picks`` (one layer)."""
    layer = picks[0].layer
    assert all(p.layer == layer for p in picks)
    axes: dict[str, list[int]] = {}
    for pick in picks:
        for axis, value in pick.point.items():
            if value not in axes.setdefault(axis, []):
                axes[axis].append(value)
    impls: list[str] = []
    for pick in picks:
        for impl in (pick.baseline, pick.candidate):
            if impl not in impls:
                impls.append(impl)
    dtypes = sorted({p.dtype for p in picks})
    cmd = [python, "-m", "harness", "run"]
    if layers_from is not None:
        cmd += ["--layers-from", str(layers_from)]
    cmd += ["--layers", layer]
    for axis, values in axes.items():
        cmd += ["--grid", f"{axis}={','.join(str(v) for v in sorted(values))}"]
    cmd += ["--impls", ",".join(impls), "--dtype", ",".join(dtypes)]
    cmd += ["--threads", str(threads), "--profile", profile]
    if budget is not None:
        cmd += ["--budget", f"{budget:g}"]
    cmd += ["--no-capabilities", "--no-memory", "--out", str(out), "--no-report", "--quiet"]
    return cmd


def grid_groups(picks: Sequence[Pick]) -> int:
    """How many groups (grid points) the narrow harness run of ``picks`` measures: the
    product of each axis's distinct values, as ``harness_command`` writes the grid."""
    axes: dict[str, set[int]] = {}
    for pick in picks:
        for axis, value in pick.point.items():
            axes.setdefault(axis, set()).add(value)
    count = 1
    for values in axes.values():
        count *= len(values)
    return count


def default_budget_per_group(profile: str = "default") -> float:
    """The timing budget a run of the default grid (``python -m harness run``) gives
    each of its groups: ``profile``'s budget over the default grid's groups (the
    default profile: 600 s over 24 groups since 2026-12-03). The harness run here gets as
    much per group, so that its figures are those of the run a user makes: a fixed 20 s
    left a three-point run at its fewest rounds, with none of the adaptive rounds a
    default run gives the points still undecided. Imports torch (the built-in layers
    make the default grid)."""
    from harness.config import PROFILES, RunConfig
    from harness.plan import make_plan
    from harness.registry import Registry

    groups = len(make_plan(Registry.default([]), RunConfig()).groups)
    return PROFILES[profile].budget_s / max(groups, 1)


# -- statistics (our own, not harness.stats) ---------------------------------------------


def interquartile_mean(groups: Sequence[Sequence[float]]) -> float:
    """The speedup of ``groups`` (each process's per-round ratios): the mean of the
    middle half of the log ratios of every round, pooled, each process weighing as one
    (a round's weight is split where it straddles a quartile). Not the median: where a
    side's calls take one of two times round to round (torch's 1-thread conv2d step
    at n=512, 21-23 or 35-39 ms, 2026-12-03, AVX512), a median lands on either mode
    as their mix shifts by a round, a user's loop runs both, and the interquartile
    mean moves smoothly with the mix; and like the median it leaves out the outlying
    quarter at either end that a burst of load makes."""
    parts = [np.log(np.asarray(g, dtype=float)) for g in groups if len(g)]
    if not parts:
        return math.nan
    values = np.concatenate(parts)
    weights = np.concatenate([np.full(len(g), 1.0 / len(g)) for g in parts])
    order = np.argsort(values)
    values, weights = values[order], weights[order] / weights.sum()
    upper = np.cumsum(weights)
    kept = np.clip(np.minimum(upper, 0.75) - np.maximum(upper - weights, 0.25), 0.0, None)
    return float(np.exp((values * kept).sum() / kept.sum()))


def bootstrap_interval(
    groups: Sequence[Sequence[float]],
    level: float = 0.95,
    reps: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of the pooled speedup (``interquartile_mean``) under a
    two-level bootstrap: resample the processes (groups) with replacement, then the
    rounds within each chosen one.

    With one process only the rounds are resampled. The estimate is taken in log
    space, so the interval of the inverse ratio is the inverse of this interval.
    """
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not groups:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    estimates = np.empty(reps)
    k = len(groups)
    for r in range(reps):
        chosen = rng.integers(0, k, size=k) if k > 1 else np.zeros(1, dtype=int)
        parts = [groups[i][rng.integers(0, len(groups[i]), size=len(groups[i]))] for i in chosen]
        estimates[r] = interquartile_mean(parts)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(estimates, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def summarize(groups: Sequence[Sequence[float]], seed: int = 0) -> dict[str, float]:
    lo, hi = bootstrap_interval(groups, seed=seed)
    return {"speedup": interquartile_mean(groups), "low": lo, "high": hi}


def agreement(harness: float, truth: float, tolerance: float = TOLERANCE) -> tuple[float, bool]:
    """harness / truth, and whether it lies within ``tolerance`` of 1."""
    if not (harness > 0 and truth > 0):
        return (math.nan, False)
    ratio = harness / truth
    return (ratio, abs(ratio - 1.0) <= tolerance + 1e-12)


def intervals_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool | None:
    """Whether two intervals share a point; None where either end is unknown."""
    if any(not v > 0 for v in (*a, *b)):
        return None
    return a[0] <= b[1] and b[0] <= a[1]


# -- reading the harness's results ----------------------------------------------------------


@dataclass
class HarnessFigure:
    speedup: float
    low: float
    high: float
    note: str = ""


#: Page faults per call from which a side counts as faulting its buffers afresh each
#: call (256 faults: 1 MiB of 4 KiB pages)
FAULTING = 256.0


def fault_regimes_differ(harness: float, truth: float, faulting: float = FAULTING) -> bool:
    """Whether the harness's and the truth's processes ran one side in different page-
    fault regimes: one gets its buffers afresh from the kernel each call (``faulting``
    minor faults per call or more), the other at most a quarter as many (it reuses
    them). glibc's default malloc returns freed memory at the top of the heap to the
    kernel, so which regime a call is in depends on what else the process holds
    (``scripts/group_neighbours.py``); a speedup measured in one regime does not carry
    over to the other. False when either figure is unknown."""
    if harness != harness or truth != truth:
        return False
    high, low = max(harness, truth), min(harness, truth)
    return high >= faulting and low <= high / 4


def truth_drift(
    before: Sequence[Sequence[float]], after: Sequence[Sequence[float]]
) -> tuple[float, float] | None:
    """The truth's speedup from its processes before the harness run and from those
    after it (each the ``interquartile_mean`` of the per-round ratios of its
    processes), or None when either side has none."""
    if not any(before) or not any(after):
        return None
    return interquartile_mean(before), interquartile_mean(after)


def drift_apart(before: float, after: float, tolerance: float = TOLERANCE) -> bool:
    """Whether the truth moved by more than ``tolerance`` between before and after: by
    itself more than the harness is allowed to differ from it."""
    return max(before, after) / min(before, after) - 1 > tolerance


def harness_faults(
    rows: Sequence[Mapping[str, str]], pick: Pick, threads: int, phase: str, impl: str
) -> float:
    """``results.csv``'s minor page faults per call of ``impl`` for ``phase`` at the
    pick's point (the median over its values), NaN if none."""
    for row in rows:
        if _matches(row, pick, threads, impl) and row.get("phase") == phase:
            return _float(row.get("minor_faults"))
    return math.nan


def harness_rounds(folder: Path, pick: Pick, threads: int) -> list[dict[str, list[float]]]:
    """The values (seconds per call) of each timing process's rounds event of the
    pick's group, read from the raw timing events of ``folder`` (JSON lines: no harness
    code), keyed by ``impl/phase``. One dict per process and batch: read once per pick
    and thread setting, for every phase and side."""
    out: list[dict[str, list[float]]] = []
    for path in sorted((folder / "raw").glob("timing-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line cut by a killed worker
            if event.get("event") != "rounds":
                continue
            group = event.get("group") or {}
            point = {axis: value for axis, value in group.get("point", [])}
            if (
                group.get("layer") != pick.layer
                or point != dict(pick.point)
                or group.get("threads") != threads
                or group.get("dtype") != pick.dtype
            ):
                continue
            values = {}
            for case, got in (event.get("values") or {}).items():
                parts = case.split("/")
                values[f"{parts[1]}/{parts[-1]}"] = got
            out.append(values)
    return out


def harness_process_ratios(
    rounds: Sequence[Mapping[str, list[float]]], pick: Pick, phase: str
) -> list[float]:
    """The harness's speedup of the pick's candidate over its baseline per timing
    process (``rounds``: ``harness_rounds``): the ``interquartile_mean`` of that
    process's per-round ratios (baseline value / candidate value, round by round, as
    the harness pairs them). One figure per process and batch."""
    out: list[float] = []
    for values in rounds:
        base = values.get(f"{pick.baseline}/{phase}")
        cand = values.get(f"{pick.candidate}/{phase}")
        if base and cand and len(base) == len(cand):
            out.append(interquartile_mean([[b / c for b, c in zip(base, cand, strict=True)]]))
    return out


def harness_process_ms(
    rounds: Sequence[Mapping[str, list[float]]], phase: str, impl: str
) -> list[float]:
    """Milliseconds per call of one implementation in each harness timing process
    (``rounds``: ``harness_rounds``; the median of its values there)."""
    return [
        float(np.median(values[f"{impl}/{phase}"])) * 1e3
        for values in rounds
        if values.get(f"{impl}/{phase}")
    ]


def time_off(harness_ms: Sequence[float], truth_ms: Sequence[float]) -> float:
    """How much slower one side ran in the harness's processes than in the truth's:
    the median of the harness's per-process times over the median of the truth's
    (NaN without either)."""
    if not harness_ms or not truth_ms:
        return math.nan
    return float(np.median(harness_ms) / np.median(truth_ms))


def off_cell(base: float, cand: float, tolerance: float = TOLERANCE) -> tuple[str, list[str]]:
    """``"1.43, 1.02"`` (harness/truth time per call of baseline and candidate), and
    the sides off by more than ``tolerance``: a miss whose baseline alone is off was
    made by the baseline's speed, not by the harness's reading of the candidate."""
    off = [
        side
        for side, value in (("baseline", base), ("candidate", cand))
        if value == value and abs(value - 1.0) > tolerance
    ]
    text = ", ".join("n/a" if v != v else f"{v:.2f}" for v in (base, cand))
    return text + (f" ({' and '.join(off)})" if off else ""), off


def process_ratios(runs: Sequence[Sequence[float]]) -> list[float]:
    """Each truth process's speedup: the ``interquartile_mean`` of its rounds' ratios."""
    return [interquartile_mean([r]) for r in runs if len(r)]


def spread_cell(harness: Sequence[float], truth: Sequence[float]) -> str:
    """``"lo–hi | lo–hi"``: the range of per-process speedups on each side."""

    def span(values: Sequence[float]) -> str:
        if not values:
            return "n/a"
        return f"{min(values):.2f}–{max(values):.2f}"

    return f"{span(harness)} | {span(truth)}"


def spreads_apart(harness: Sequence[float], truth: Sequence[float]) -> bool:
    """Whether every harness process lies outside the range of the truth's processes,
    all on one side: the harness's processes saw a speed none of the truth's saw.

    Where they overlap, the harness measured what the truth measured in some of its
    processes, and a miss comes from which processes each side happened to get (this
    VM's speed is a per-process state that lasts seconds to minutes: the same fresh
    plain loop of NumPy's fft at n=64 on 2 threads ran at ×1.6 in one process and ×2.0
    in the next, 2026-11-30). False when either side has no figure."""
    if not harness or not truth:
        return False
    return min(harness) > max(truth) or max(harness) < min(truth)


def _float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _matches(row: Mapping[str, str], pick: Pick, threads: int, impl: str) -> bool:
    if row.get("layer") != pick.layer or row.get("impl") != impl:
        return False
    if row.get("dtype") != pick.dtype or _float(row.get("threads")) != threads:
        return False
    if row.get("device", "cpu") not in ("", "cpu"):
        return False
    return all(_float(row.get(axis)) == value for axis, value in pick.point.items())


def harness_figure(
    rows: Sequence[Mapping[str, str]], pick: Pick, threads: int, phase: str
) -> HarnessFigure | None:
    """The candidate's paired speedup for ``phase`` ("step" or "forward"), or None.

    "step" reads the ``step`` row; where there is none (or it carries no speedup) it
    falls back to the ``forward`` row's ``step_speedup*`` (the old harness's summed
    step), with a note saying so.
    """
    mine = [r for r in rows if _matches(r, pick, threads, pick.candidate)]
    by_phase = {r.get("phase"): r for r in mine}
    row = by_phase.get(phase)
    if row is not None and row.get("status") == "ok" and _float(row.get("speedup")) > 0:
        return HarnessFigure(
            _float(row["speedup"]), _float(row.get("speedup_low")), _float(row.get("speedup_high"))
        )
    if phase != "step":
        return None
    fwd = by_phase.get("forward")
    if fwd is not None and _float(fwd.get("step_speedup")) > 0:
        note = OLD_STEP_MARK
        if row is not None and row.get("status") != "ok":
            note += f"; its step row: {row.get('status')} {row.get('error') or ''}".rstrip()
        return HarnessFigure(
            _float(fwd["step_speedup"]),
            _float(fwd.get("step_speedup_low")),
            _float(fwd.get("step_speedup_high")),
            note,
        )
    return None


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# -- the README's own layer -------------------------------------------------------------------


def readme_layer_file(out_dir: Path, readme: Path = ROOT / "README.md") -> Path:
    """Write the README's "Benchmark your own layer" example to ``out_dir/my_layers.py``."""
    text = readme.read_text(encoding="utf-8")
    match = re.search(
        r"<!-- readme-example: start -->\n```python\n(.*?)```\n<!-- readme-example: end -->",
        text,
        re.S,
    )
    if match is None:
        raise RuntimeError("README.md has no readme-example block")
    path = out_dir / "my_layers.py"
    path.write_text(match.group(1), encoding="utf-8")
    return path


# -- the truth: one child process -------------------------------------------------------------


def _child_env(threads_label: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MALLOC_") and k not in ALLOCATOR_VARS
    }
    for var in THREAD_VARS:
        env.pop(var, None)
    if threads_label != "default":
        env["OMP_NUM_THREADS"] = threads_label
    return env


@dataclass
class Spec:
    """What one child process measures (passed as JSON)."""

    pick: dict[str, Any]
    threads: str  # "default" or a count
    layers_from: str | None
    seed: int
    seconds: float  # timing per phase
    block_ms: float
    min_rounds: int = 10
    max_rounds: int = 400
    # one phase per process, as the user's processes run them: an inference process
    # forwards only, a training loop steps only. Forwards timed first in the steps'
    # process set glibc's adaptive mmap and trim thresholds for them: torch's fft step
    # at n=1024 on 2 threads then took 5,090 fresh pages a call (12 ms) where steps
    # alone reuse their heap (0, 9 ms), 2026-12-03, AVX512. The harness times them
    # apart likewise (harness.case.PROCESS_PHASES).
    phases: list[str] = field(default_factory=lambda: ["step"])


def _load_layer(spec: Spec) -> Any:
    """The layer, as the harness's registry finds it (built-in, entry points, a file)."""
    from harness.registry import Registry

    registry = Registry.default(layers_from=[spec.layers_from] if spec.layers_from else [])
    return registry.get(spec.pick["layer"])


def _user_callable(layer: Any, impl_name: str, point: dict[str, int], inputs: tuple[Any, ...]):  # type: ignore[no-untyped-def]
    """(fn, args, leaves) as the user's code calls the implementation: a module as
    ``module(x)`` with its own parameters holding the layer's other inputs; a function
    or autograd.Function on the inputs; a compile form as ``torch.compile(fn,
    dynamic=False)`` of its source's callable."""
    import torch

    impl = layer.implementation(impl_name)
    diff = set(layer.differentiable)
    names = list(layer.inputs)
    if impl.form not in ("eager", "compile"):
        raise RuntimeError(f"{impl_name}: the truth runs eager and compile forms only")
    source = layer.implementation(impl.origin) if impl.form == "compile" else impl
    tensors = [t.detach().clone() for t in inputs]
    if source.module is not None:
        module = source.module(point)
        params = list(module.named_parameters())
        if len(params) != len(tensors) - 1:
            raise RuntimeError(f"{impl_name}: module parameters {params} do not match the inputs")
        for i, (_, param) in enumerate(params, start=1):
            param.data = tensors[i]
            param.requires_grad_(names[i] in diff)
        x = tensors[0].requires_grad_(names[0] in diff)
        fn: Callable[..., Any] = module
        args: tuple[Any, ...] = (x,)
        leaves = [t for t in [x, *(p for _, p in params)] if t.requires_grad]
    else:
        fn = source.callable_for(point)
        args = tuple(t.requires_grad_(n in diff) for n, t in zip(names, tensors, strict=True))
        leaves = [t for t in args if t.requires_grad]
    if impl.form == "compile":
        fn = torch.compile(fn, dynamic=False)
    return fn, args, leaves


def _calibrate(call: Callable[[], None], block_s: float) -> tuple[int, bool]:
    """Calls per block of about ``block_s``, and whether the calls run threads of their
    own: process CPU time at least 1.1x wall time over calls lasting 0.1 s or more (the
    kernel accounts other threads' time by the scheduler tick, 4 ms: over one 10 ms
    block torch's two-thread F.linear read as one thread once in three), the other
    threads at rest first."""
    _rest(free=0)
    t0 = time.perf_counter()
    call()
    t = time.perf_counter() - t0
    loops = max(1, math.ceil(block_s / max(t, 1e-7)))
    t0 = time.perf_counter()
    for _ in range(loops):
        call()
    t = (time.perf_counter() - t0) / loops
    _rest(free=0)
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < 0.1:
        call()
    pooled = (time.process_time() - c0) >= 1.1 * (time.perf_counter() - t0)
    return max(1, math.ceil(block_s / max(t, 1e-7))), pooled


def _paired_rounds(sides: Mapping[str, _Side], spec: Spec, rng: random.Random) -> dict[str, Any]:
    """Rounds of one block per side, in random order, each side in a process of its own
    (``_Side``), each block begun once the two processes' other threads leave it the
    cores it needs (``_rest``), after one untimed call where that took a wait; seconds
    and page faults per call per round, and when each round ended (seconds since the
    discarded warm-up round)."""
    loops = {side: proc.loops for side, proc in sides.items()}
    # the cores other threads may hold while a block runs: a side on one thread leaves
    # the others to them; a side with threads of its own wants every core
    free = {side: 0 if proc.pooled else (os.cpu_count() or 1) - 1 for side, proc in sides.items()}
    pids = [proc.pid for proc in sides.values()]
    times: dict[str, list[float]] = {side: [] for side in sides}
    faults: dict[str, list[float]] = {side: [] for side in sides}
    ends: list[float] = []
    got: dict[str, tuple[float, float]] = {}
    names = list(sides)
    started = deadline = math.inf
    rounds = -1  # one discarded warm-up round
    while rounds < spec.max_rounds:
        order = names[:]
        rng.shuffle(order)
        for side in order:
            # the other side's pool, spinning, is no part of this side's loop; and this
            # side's own, asleep after a wait, is awake in its loop (no call otherwise:
            # one more call between blocks moved NumPy's rfft2 at 1024 on one thread
            # into glibc's faulting regime, 2012 fresh pages a call, where a loop of it
            # reuses its heap)
            got[side] = sides[side].block(warm=_rest(pids, free=free[side]))
        if rounds >= 0:
            for side in names:
                times[side].append(got[side][0])
                faults[side].append(got[side][1])
            ends.append(time.perf_counter() - started)
        else:
            started = time.perf_counter()
            deadline = started + spec.seconds
        rounds += 1
        if rounds >= spec.min_rounds and time.perf_counter() >= deadline:
            break
    ratios = [b / c for b, c in zip(times["baseline"], times["candidate"], strict=True)]
    return {"loops": loops, "times": times, "faults": faults, "ratios": ratios, "ends": ends}


def _rest(pids: Sequence[int] | None = None, free: int = 0, longest_s: float = 0.3) -> bool:
    """Wait while more than ``free`` threads of the processes ``pids`` (None: this one)
    are running (state ``R`` in ``/proc/PID/task/*/stat``), their main threads aside
    (each side's caller, or this one's), ``longest_s`` at most; whether it waited.
    A user's loop runs one side:
    no other library's pool spins beside it. Two sides in turns do:
    OpenBLAS's threads spin about 0.1 s after a NumPy matmul, OpenMP's about 10 ms
    after a torch op, and a block begun meanwhile shares the cores with them (NumPy's
    linear at batch 256, 512x512, 2 threads: 4.7 ms a step beside torch's blocks,
    no faster than on 1 thread, 2026-12-01, AVX512)."""
    import threading

    where = [("self", threading.get_native_id())] if pids is None else [(p, p) for p in pids]
    deadline = time.perf_counter() + longest_s
    waited = False
    while time.perf_counter() < deadline:
        running = 0
        for pid, main in where:
            try:
                tids = [t for t in os.listdir(f"/proc/{pid}/task") if int(t) != main]
            except OSError:
                continue  # gone, or no /proc: nothing to look at
            for tid in tids:
                try:
                    with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                        stat = f.read()
                except OSError:
                    continue
                if stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] == b"R":
                    running += 1
        if running <= free:
            return waited
        time.sleep(0.001)
        waited = True
    return waited


def _minor_faults() -> int:
    """This process's minor page faults so far (getrusage; the clock reads around it)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _built_side(spec: Spec, side: str) -> tuple[tuple[Any, ...], Any]:  # pragma: no cover - torch
    """The pick's ``side`` (``baseline`` or ``candidate``) as the user's code calls it,
    ``(fn, args, leaves)``, and the output gradient a step's backward gets (seeded,
    drawn in float64 then cast, so every side and dtype gets the same values)."""
    import torch

    layer = _load_layer(spec)
    point = dict(spec.pick["point"])
    inputs = layer.make(point, dtype=getattr(torch, spec.pick["dtype"]), seed=0)
    built = _user_callable(layer, spec.pick[side], point, inputs)
    with torch.no_grad():
        out = built[0](*built[1])
    gen = torch.Generator().manual_seed(1)
    grad_output = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out.dtype)
    return built, grad_output


def _phase_call(
    built: tuple[Any, ...], phase: str, side: str, grad_output: Any
) -> Callable[[], None]:  # pragma: no cover - torch
    """One call of ``phase`` of a side built by ``_built_side``: ``step`` is a forward
    recording the graph, then ``autograd.grad`` freeing it; ``forward`` runs the
    candidate under ``inference_mode``, the baseline under ``no_grad``."""
    import torch

    fn, args, leaves = built
    if phase == "step":

        def step() -> None:
            out = fn(*args)
            torch.autograd.grad(out, leaves, grad_output)

        return step
    ctx = torch.inference_mode if side == "candidate" else torch.no_grad

    def forward() -> None:
        with ctx():
            fn(*args)

    return forward


def side_main(spec: Spec, side: str) -> None:  # pragma: no cover - runs in a fresh process
    """One side's process: build it, warm it up and calibrate its block, say so on
    stdout (a JSON line), then run one block per line read from stdin (``warm``: one
    untimed call first) and answer each with its seconds and page faults per call."""
    import torch

    if spec.threads != "default":
        count = int(spec.threads)
        torch.set_num_threads(count)
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(count)  # kept for the life of the process
    else:
        limiter = None
    (phase,) = spec.phases
    built, grad_output = _built_side(spec, side)
    call = _phase_call(built, phase, side, grad_output)
    for _ in range(3):  # warm-up: compiles, pools, the allocator's state
        call()
    loops, pooled = _calibrate(call, spec.block_ms / 1000.0)
    ready = {
        "pid": os.getpid(),
        "torch_threads": torch.get_num_threads(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "loops": loops,
        "pooled": pooled,
    }
    print(_MARK + json.dumps(ready), flush=True)
    for line in sys.stdin:
        if line.strip() == "exit":
            break
        if line.strip() == "warm":
            call()
        f0 = _minor_faults()
        t0 = time.perf_counter()
        for _ in range(loops):
            call()
        took = (time.perf_counter() - t0) / loops
        print(_MARK + json.dumps([took, (_minor_faults() - f0) / loops]), flush=True)
    del limiter


#: Marks the lines a side's process answers with (a library may print on stdout too).
_MARK = "@truth "


class _Side:
    """A side's process (``side_main``), as its parent drives it."""

    def __init__(self, spec: Spec, side: str) -> None:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--side",
            side,
            "--child",
            json.dumps(spec.__dict__),
        ]
        self.proc = subprocess.Popen(
            cmd,
            env=_child_env(spec.threads),
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = self._answer()
        self.pid: int = ready["pid"]
        self.loops: int = ready["loops"]
        self.pooled: bool = ready["pooled"]
        self.ready: dict[str, Any] = ready

    def _answer(self) -> Any:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(_MARK):
                return json.loads(line[len(_MARK) :])
        tail = (self.proc.stderr.read() if self.proc.stderr else "").strip().splitlines()[-5:]
        self.proc.wait()
        raise RuntimeError(f"truth process failed ({self.proc.returncode}): " + " | ".join(tail))

    def block(self, warm: bool) -> tuple[float, float]:
        """Seconds and page faults per call of one block."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("warm\n" if warm else "block\n")
        self.proc.stdin.flush()
        took, faults = self._answer()
        return float(took), float(faults)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("exit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def run_child(spec: Spec) -> dict[str, Any]:
    """One truth measurement of ``spec``'s phase: baseline and candidate each in a
    fresh process of its own (a user's loop runs one of them: two in one process share
    a heap, whose thresholds, set by either's buffers, decide which takes fresh pages
    each call; 2026-12-03, AVX512, fft's step at n=1024 on 1 thread: NumPy's 31-36 ms
    and torch's 17-20 ms each alone, 22 and 26 ms in turns in one process), started
    one after the other, their blocks paired in rounds from here."""
    sides: dict[str, _Side] = {}
    try:
        for side in ("baseline", "candidate"):
            sides[side] = _Side(spec, side)
        rng = random.Random(spec.seed)
        (phase,) = spec.phases
        first = sides["baseline"].ready
        return {
            "pid": first["pid"],
            "pids": [s.pid for s in sides.values()],
            "torch_threads": first["torch_threads"],
            "capability": first["capability"],
            "phases": {phase: _paired_rounds(sides, spec, rng)},
        }
    finally:
        for s in sides.values():
            s.close()


def probe() -> dict[str, Any]:
    """Default thread count, CPU capability and torch version of a fresh process."""
    code = (
        "import json, torch; print(json.dumps({'threads': torch.get_num_threads(), "
        "'capability': torch.backends.cpu.get_cpu_capability(), 'torch': torch.__version__}))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        env=_child_env("default"),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(res.stdout)  # type: ignore[no-any-return]


# -- the noisy neighbour ------------------------------------------------------------------------


def start_neighbour() -> subprocess.Popen[bytes]:
    """scripts/stability.py's neighbour (2 s burning one core, 1 s off), in its own process."""
    code = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('stability', {str(ROOT / 'scripts' / 'stability.py')!r}); "
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod); "
        "mod._burn(2.0, 1.0)"
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)


# -- output --------------------------------------------------------------------------------------


def _load() -> str:
    """The 1/5/15-minute load averages: how busy the machine was (other tenants)."""
    try:
        return "/".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def fmt_speedup(value: float, low: float, high: float) -> str:
    if not value > 0:
        return "n/a"
    interval = f" ({low:.2f}–{high:.2f})" if low > 0 and high > 0 else ""
    return f"×{value:.2f}{interval}"


def format_table(rows: Sequence[Mapping[str, str]], columns: Sequence[str]) -> str:
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append(
            "  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(columns, widths, strict=True))
        )
    return "\n".join(lines)


COLUMNS = (
    "pick",
    "threads",
    "what",
    "harness",
    "truth",
    "truth ms (base/cand)",
    "harness/truth",
    "intervals overlap?",
    "within 15%?",
    "faults/call base, cand: harness | truth",
    "truth before → after harness",
    "per-process ×: harness | truth",
    "ms/call harness/truth: base, cand",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--picks",
        help="comma-separated pick names (default: all): " + ", ".join(p.name for p in PICKS),
    )
    parser.add_argument(
        "--threads", default="1,default", help="thread settings (default: 1,default)"
    )
    parser.add_argument(
        "--noisy-neighbour", action="store_true", help="burn a core 2 s on, 1 s off throughout"
    )
    parser.add_argument(
        "--profile", default="default", help="the harness's --profile (default: default)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help=(
            "the harness's --budget per run, seconds (default: what a default run gives "
            "each group, times the run's groups)"
        ),
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "truth")
    parser.add_argument(
        "--processes",
        type=int,
        default=3,
        help="truth processes per pick and thread setting (default: 3)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=1.5,
        help="truth timing per phase and process, seconds (default: 1.5)",
    )
    parser.add_argument(
        "--block-ms",
        type=float,
        default=10.0,
        help="least duration of one timed block (default: 10 ms)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--side", default="baseline", help=argparse.SUPPRESS)
    return parser


@dataclass
class _Session:
    """One invocation's settings and what it has gathered so far."""

    args: argparse.Namespace
    layer_file: Path | None
    out: Path
    seed: int = 0
    table: list[dict[str, str]] = field(default_factory=list)
    record: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def layers_from(self, source: str) -> str | None:
        """The layer file a pick's ``source`` names: the README example's copy, a file
        of the repository, or None for a built-in layer."""
        if source == "builtin":
            return None
        if source == "readme":
            return str(self.layer_file)
        return str(ROOT / source)

    def truth_runs(self, pick: Pick, label: str, count: int) -> list[dict[str, Any]]:
        """``--processes`` truth processes of ``pick`` at a thread setting, each one's
        result; a failed one is an error and left out."""
        found = []
        for _ in range(self.args.processes):
            self.seed += 1
            specs = [
                Spec(
                    pick={**pick.__dict__, "point": dict(pick.point)},
                    threads=str(count) if label != "default" else "default",
                    layers_from=self.layers_from(pick.source),
                    seed=self.seed,
                    seconds=self.args.seconds,
                    block_ms=self.args.block_ms,
                    phases=[phase],
                )
                for phase in ("forward", "step")
            ]
            try:
                parts = [run_child(spec) for spec in specs]
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                self.errors.append(f"{pick.name} t{count}: {exc}")
                continue
            got = {**parts[0], "phases": {k: v for p in parts for k, v in p["phases"].items()}}
            got["pids"] = [pid for p in parts for pid in p["pids"]]
            if got["torch_threads"] != count:
                self.errors.append(
                    f"{pick.name}: the truth process ran {got['torch_threads']} "
                    f"threads, the harness {count}"
                )
            self.record.append({"pick": pick.name, "threads": count, **got})
            found.append(got)
        return found


@dataclass
class _Pooled:
    """A pick's truth processes pooled, per phase: each process's per-round ratios
    (``groups``), per-call seconds and page faults of each side, each process's
    milliseconds per call of each side (``process_ms``: its median), and the ratios of
    the processes from before and from after the harness run."""

    groups: dict[str, list[list[float]]]
    ms: dict[str, dict[str, list[float]]]
    process_ms: dict[str, dict[str, list[float]]]
    faults: dict[str, dict[str, list[float]]]
    halves: dict[str, dict[str, list[list[float]]]]

    @classmethod
    def of(cls, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> _Pooled:
        pooled = cls(
            groups={ph: [] for ph in PHASES},
            ms={ph: {"baseline": [], "candidate": []} for ph in PHASES},
            process_ms={ph: {"baseline": [], "candidate": []} for ph in PHASES},
            faults={ph: {"baseline": [], "candidate": []} for ph in PHASES},
            halves={ph: {"before": [], "after": []} for ph in PHASES},
        )
        for when, runs in (("before", before), ("after", after)):
            for got in runs:
                for ph in PHASES:
                    pooled.groups[ph].append(got["phases"][ph]["ratios"])
                    pooled.halves[ph][when].append(got["phases"][ph]["ratios"])
                    for side in ("baseline", "candidate"):
                        times = got["phases"][ph]["times"][side]
                        pooled.ms[ph][side].extend(times)
                        if times:
                            pooled.process_ms[ph][side].append(float(np.median(times)) * 1e3)
                        pooled.faults[ph][side].extend(got["phases"][ph]["faults"][side])
        return pooled

    def median_ms(self, phase: str, side: str) -> float:
        values = self.ms[phase][side]
        return float(np.median(values)) * 1e3 if values else math.nan


def _table_row(
    pick: Pick,
    label: str,
    count: int,
    phase: str,
    pooled: _Pooled,
    rows: list[dict[str, str]],
    rounds: Sequence[Mapping[str, list[float]]],
    seed: int,
) -> tuple[dict[str, str], bool]:
    """One (pick, thread setting, phase) line of the table (``rows``: the harness's
    results.csv; ``rounds``: its raw rounds of the pick, ``harness_rounds``), and
    whether the harness had a figure for it."""
    truth = summarize(pooled.groups[phase], seed=seed)
    figure = harness_figure(rows, pick, count, phase)
    h = figure.speedup if figure else math.nan
    ratio, ok = agreement(h, truth["speedup"])
    regimes = []
    cells = []
    for side, impl in (("baseline", pick.baseline), ("candidate", pick.candidate)):
        h_f = harness_faults(rows, pick, count, phase, impl)
        t_f = (
            float(np.median(pooled.faults[phase][side])) if pooled.faults[phase][side] else math.nan
        )
        cells.append((h_f, t_f))
        if fault_regimes_differ(h_f, t_f):
            regimes.append(side)
    fault_cell = f"{cells[0][0]:.0f}, {cells[1][0]:.0f} | {cells[0][1]:.0f}, {cells[1][1]:.0f}"
    if regimes:
        fault_cell += f" (regimes differ: {' and '.join(regimes)})"
    h_procs = harness_process_ratios(rounds, pick, phase)
    t_procs = process_ratios(pooled.groups[phase])
    apart = spreads_apart(h_procs, t_procs)
    offs = [
        time_off(harness_process_ms(rounds, phase, impl), pooled.process_ms[phase][side])
        for side, impl in (("baseline", pick.baseline), ("candidate", pick.candidate))
    ]
    off_text, off_sides = off_cell(*offs)
    moved = truth_drift(pooled.halves[phase]["before"], pooled.halves[phase]["after"])
    drift_cell = f"×{moved[0]:.2f} → ×{moved[1]:.2f}" if moved else "n/a"
    drifted = moved is not None and drift_apart(*moved)
    if drifted:
        drift_cell += " (moved)"
    overlap = intervals_overlap(
        (figure.low, figure.high) if figure else (math.nan,) * 2, (truth["low"], truth["high"])
    )
    row = {
        "pick": pick.name,
        "threads": f"{count} ({label})" if label == "default" else label,
        "what": phase + (f" {figure.note}" if figure and figure.note else ""),
        "harness": fmt_speedup(h, figure.low, figure.high) if figure else "n/a",
        "truth": fmt_speedup(truth["speedup"], truth["low"], truth["high"]),
        "truth ms (base/cand)": (
            f"{pooled.median_ms(phase, 'baseline'):.3g}/{pooled.median_ms(phase, 'candidate'):.3g}"
        ),
        "harness/truth": f"{ratio:.2f}" if ratio == ratio else "n/a",
        "intervals overlap?": {True: "yes", False: "NO", None: "n/a"}[overlap],
        "within 15%?": "[pass]" if ok else "[fail]",
        "faults/call base, cand: harness | truth": fault_cell,
        "truth before → after harness": drift_cell,
        "per-process ×: harness | truth": spread_cell(h_procs, t_procs)
        + (" (apart)" if apart else ""),
        "ms/call harness/truth: base, cand": off_text,
        "_apart": str(apart),
        "_off": ",".join(off_sides),
        "_drift": str(drifted),
        "_phase": phase,
        "_ok": str(ok),
        "_regimes": ",".join(regimes),
    }
    return row, figure is not None


def _measure_layer(
    session: _Session,
    layer: str,
    source: str,
    group: list[Pick],
    label: str,
    count: int,
    per_group: float,
) -> None:
    """One layer's picks at one thread setting: the truth before, the harness run, the
    truth after (pooled: a machine whose speed drifts over minutes, as this VM's does
    and not alike for every implementation, moves the truth itself, which the table
    shows), then a table row per pick and phase."""
    args = session.args
    before = {pick.name: session.truth_runs(pick, label, count) for pick in group}
    folder = session.out / f"harness-{layer}-t{count}"
    budget = args.budget if args.budget is not None else per_group * grid_groups(group)
    cmd = harness_command(
        group,
        count,
        folder,
        args.profile,
        budget,
        session.layers_from(source),
    )
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    print(
        f"harness {layer} threads={count} (--budget {budget:.0f}): "
        f"{time.perf_counter() - t0:.0f}s, exit {res.returncode}",
        flush=True,
    )
    rows: list[dict[str, str]] = []
    if (folder / "results.csv").is_file():
        rows = read_rows(folder / "results.csv")
    elif res.returncode != 0:
        session.errors.append(f"harness {layer} t{count}: {res.stderr.strip()[-300:]}")
    after = {pick.name: session.truth_runs(pick, label, count) for pick in group}
    for pick in group:
        pooled = _Pooled.of(before[pick.name], after[pick.name])
        rounds = harness_rounds(folder, pick, count)
        for ph in PHASES:
            row, found = _table_row(pick, label, count, ph, pooled, rows, rounds, session.seed)
            if not found:
                session.errors.append(f"{pick.name} t{count} {ph}: no harness figure")
            session.table.append(row)
            print(format_table([row], COLUMNS).splitlines()[-1], flush=True)


def summary_lines(table: Sequence[Mapping[str, str]]) -> list[str]:
    """The [pass]/[fail] line of each target, with its misses sorted by cause."""
    lines = []
    # picks within the target at one thread: a miss of theirs at more threads is an
    # effect of the threads (this VM has windows in which 2-thread ops run about 3x
    # slower, in any process: README, "Threads")
    single = {
        (r["pick"], r["_phase"])
        for r in table
        if str(r.get("threads", "")).split(" ")[0] == "1" and r["_ok"] == "True"
    }
    for ph, what in (("step", "training step"), ("forward", "inference forward")):
        mine = [r for r in table if r["_phase"] == ph]
        passed = sum(r["_ok"] == "True" for r in mine)
        verdict = "[pass]" if mine and passed == len(mine) else "[fail]"
        lines.append(
            f"{verdict} {what}: every pick within {TOLERANCE:.0%} of the truth "
            f"({passed}/{len(mine)})"
        )
        missed = [r for r in mine if r["_ok"] != "True"]
        if not missed:
            continue
        apart = [r for r in missed if r.get("_regimes")]
        moved = [r for r in missed if r.get("_drift") == "True"]
        outside = [r for r in missed if r.get("_apart") == "True"]
        threaded = [
            r
            for r in missed
            if str(r.get("threads", "")).split(" ")[0] != "1" and (r["pick"], ph) in single
        ]
        lines.append(
            f"       of its {len(missed)} misses, {len(apart)} ran a side in another page-fault "
            "regime in the harness than in the truth's process (glibc's heap, shaped by what "
            "else each process holds: scripts/group_neighbours.py), at "
            f"{len(moved)} the truth itself moved more than {TOLERANCE:.0%} between its "
            "processes before and after the harness run, and at "
            f"{len(missed) - len(outside)} some harness process measured a speedup inside "
            "the range of the truth's own processes (the rest: every harness process "
            f"outside it, named here); {len(threaded)} of them were within "
            f'{TOLERANCE:.0%} at 1 thread (an effect of more threads: README, "Threads")'
        )
        for r in outside:
            lines.append(
                f"       - {r['pick']} t{r['threads']} {r['_phase']}: per-process "
                f"{r['per-process ×: harness | truth']}"
            )
        by_side = {
            side: sum(r.get("_off") == side for r in missed) for side in ("baseline", "candidate")
        }
        both = sum(r.get("_off") == "baseline,candidate" for r in missed)
        lines.append(
            f"       which side's time per call differed by more than {TOLERANCE:.0%} between "
            f"the harness's processes and the truth's: the baseline alone at "
            f"{by_side['baseline']}, the candidate alone at {by_side['candidate']}, both at "
            f"{both}, neither at {len(missed) - both - sum(by_side.values())}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        side_main(Spec(**json.loads(args.child)), args.side)
        return 0

    try:
        picks = select_picks(args.picks)
        if args.processes < 1 or args.seconds <= 0 or args.block_ms <= 0:
            raise ValueError("--processes, --seconds and --block-ms must be positive")
        if args.budget is not None and args.budget <= 0:
            raise ValueError("--budget must be positive")
        from harness.config import PROFILES

        if args.profile not in PROFILES:
            raise ValueError(f"--profile: no profile {args.profile!r} ({', '.join(PROFILES)})")
        per_group = default_budget_per_group(args.profile) if args.budget is None else math.nan
        env = probe()
        settings = parse_threads(args.threads, env["threads"])
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out / stamp
    out.mkdir(parents=True, exist_ok=False)
    print(
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, CPU capability {env['capability']}, "
        f"torch {env['torch']}, {os.cpu_count()} CPUs, default threads of a fresh process: "
        f"{env['threads']}, load average {_load()}"
    )
    print(
        f"command: {' '.join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}"
    )
    print(f"folder: {out}")

    layer_file = readme_layer_file(out) if any(p.source == "readme" for p in picks) else None
    session = _Session(args, layer_file, out)
    neighbour = start_neighbour() if args.noisy_neighbour else None
    if neighbour is not None:
        print("with a noisy neighbour: a process burning a core 2 s on, 1 s off")
    try:
        for (layer, source), group in harness_groups(picks).items():
            for label, count in settings:
                _measure_layer(session, layer, source, group, label, count, per_group)
    finally:
        if neighbour is not None:
            neighbour.terminate()
            neighbour.wait()

    print()
    print(format_table(session.table, COLUMNS))
    wall = time.perf_counter() - started
    print(f"\nwall time {wall:.0f}s, load average at the end {_load()}")
    (out / "truth.json").write_text(
        json.dumps(
            {
                "environment": env,
                "table": session.table,
                "processes": session.record,
                "errors": session.errors,
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    for message in session.errors:
        print(f"error: {message}")
    for line in summary_lines(session.table):
        print(line)
    return 1 if session.errors else 0


if __name__ == "__main__":
    sys.exit(main())
