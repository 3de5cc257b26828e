"""harness.stats: paired speedup intervals, decisions, planning, and the unpaired tests,
on synthetic rounds (no timing involved)."""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import harness.stats
from harness.stats import (
    BAND,
    Interval,
    Pending,
    big_enough,
    decide,
    fdr_adjust,
    geomean,
    inside_band,
    plan_extra_rounds,
    round_ratios,
    significance,
    speedup_interval,
    straddles,
)

Rounds = dict[int, list[float]]


def paired(
    speedup: float,
    processes: int,
    rounds: int,
    *,
    round_sd: float = 0.1,
    process_sd: float = 0.0,
    seed: int = 0,
    drift: Callable[[int, int], float] | None = None,
) -> tuple[Rounds, Rounds]:
    """Baseline and candidate times per process and round: the candidate is ``speedup``
    times faster, with a lognormal process effect and round noise on the ratio, and
    ``drift(p, r)`` multiplying both sides of round ``r`` of process ``p``."""
    rng = np.random.default_rng(seed)
    base: Rounds = {}
    cand: Rounds = {}
    for p in range(processes):
        effect = rng.normal(0, process_sd) if process_sd else 0.0
        noise = rng.normal(0, round_sd, rounds)
        level = rng.lognormal(0, 0.2, rounds)  # per-round common noise, cancels in the ratio
        d = [drift(p, r) if drift else 1.0 for r in range(rounds)]
        base[p] = [1e-3 * level[r] * d[r] for r in range(rounds)]
        cand[p] = [
            1e-3 * level[r] * d[r] / speedup * math.exp(-effect - noise[r]) for r in range(rounds)
        ]
    return base, cand


def interval(speedup: float, processes: int, rounds: int, **kw: float) -> Interval:
    iv = speedup_interval(round_ratios(*paired(speedup, processes, rounds, **kw)))
    assert iv is not None
    return iv


def test_stats_imports_no_torch_pandas_or_report() -> None:
    tree = ast.parse(Path(harness.stats.__file__).read_text(encoding="utf-8"))
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in modules if m.split(".")[0] in ("torch", "pandas", "harness")}


# ------------------------------------------------------------------ decisions


def test_a_known_speedup_is_decided() -> None:
    fast = interval(2.0, 3, 10)
    assert decide(fast) == "faster"
    assert fast.estimate == pytest.approx(2.0, rel=0.1)
    assert fast.low < fast.estimate < fast.high
    assert (fast.processes, fast.rounds) == (3, 30)
    slow = interval(0.5, 3, 10, seed=1)
    assert decide(slow) == "slower"
    assert slow.estimate == pytest.approx(0.5, rel=0.1)
    assert not straddles(fast) and not straddles(slow)


def test_a_speedup_within_the_band_stays_undecided() -> None:
    iv = interval(1.02, 8, 40, round_sd=0.05)
    assert decide(iv) == "undecided"
    assert inside_band(iv) and not straddles(iv)
    assert iv.estimate == pytest.approx(1.02, rel=0.01)


def test_drift_on_both_sides_cancels_in_the_pairs() -> None:
    def drift(p: int, r: int) -> float:
        trend = 1 + 0.05 * r  # the machine slows down over the run
        burst = 4.0 if (p, r) in {(0, 2), (1, 5), (1, 6), (2, 0)} else 1.0
        return trend * burst

    calm = interval(1.5, 3, 12)
    drifting = interval(1.5, 3, 12, drift=drift)  # type: ignore[arg-type]
    assert drifting.estimate == pytest.approx(calm.estimate, rel=0.01)
    assert decide(drifting) == "faster"


def test_decisions_on_crafted_intervals() -> None:
    assert decide(None) == "undecided"
    assert not straddles(None) and not inside_band(None)
    edge = 1 + BAND
    assert decide(Interval(1.2, edge * 1.001, 1.3, 3, 30)) == "faster"
    assert decide(Interval(0.8, 0.7, 1 / edge * 0.999, 3, 30)) == "slower"
    crossing = Interval(1.06, 1.01, 1.1, 3, 30)
    assert decide(crossing) == "undecided" and straddles(crossing)
    assert inside_band(Interval(1.0, 0.97, 1.03, 3, 30))
    assert straddles(Interval(1.0, 0.9, 1.1, 3, 30))  # crosses both edges
    assert decide(Interval(1.1, 1.08, 1.12, 3, 30), band=0.1) == "undecided"


# ------------------------------------------------------------------ the interval


def coverage(processes: int, rounds: int, process_sd: float, round_sd: float) -> float:
    """Share of 200 simulated designs whose interval covers the true median speedup."""
    true = 1.3
    hits = 0
    for sim in range(200):
        ratios = round_ratios(
            *paired(
                true, processes, rounds, round_sd=round_sd, process_sd=process_sd, seed=sim + 100
            )
        )
        iv = speedup_interval(ratios, resamples=300, seed=sim)
        assert iv is not None
        hits += iv.low <= true <= iv.high
    return hits / 200


@pytest.mark.parametrize(
    ("processes", "rounds", "process_sd", "round_sd"),
    [(3, 8, 0.03, 0.08), (2, 10, 0.0, 0.08)],
    ids=["3x8-process-effect", "2x10"],
)
def test_coverage_with_few_processes(
    processes: int, rounds: int, process_sd: float, round_sd: float
) -> None:
    assert coverage(processes, rounds, process_sd, round_sd) >= 0.90


def test_interval_is_deterministic_and_ignores_key_order() -> None:
    ratios = round_ratios(*paired(1.3, 3, 8))
    a = speedup_interval(ratios, seed=7)
    assert a == speedup_interval(dict(reversed(list(ratios.items()))), seed=7)
    assert a != speedup_interval(ratios, seed=8)


def test_interval_edge_cases() -> None:
    assert speedup_interval({}) is None
    assert speedup_interval({0: [math.nan, -1.0]}) is None
    one = speedup_interval({0: [2.0, 2.1, 1.9]})
    assert one == Interval(2.0, 0.0, math.inf, 1, 3)  # no process level: no interval
    assert straddles(one) and decide(one) == "undecided"
    with pytest.raises(ValueError, match="confidence"):
        speedup_interval({0: [1.0]}, confidence=1.0)


# ------------------------------------------------------------------ pairs


def test_round_ratios_pairs_by_index_and_skips_bad_rounds() -> None:
    base = {"p0": [2.0, 4.0, math.nan, 6.0], "p1": [1.0], "p2": [0.0], "p3": [1.0]}
    cand = {"p0": [1.0, 2.0, 1.0], "p1": [0.5, 9.0], "p2": [1.0]}
    assert round_ratios(base, cand) == {"p0": [2.0, 2.0], "p1": [2.0]}


def test_no_helper_sums_phases_into_a_step() -> None:
    """A training step is judged on its own rounds only (issue 16): the helper that
    summed forward and backward per round into an estimated step is gone for good."""
    assert not hasattr(harness.stats, "combine_phases")


# ------------------------------------------------------------------ planning


def test_plan_extra_rounds_spends_the_budget_on_straddling_groups() -> None:
    decided = Interval(2.0, 1.8, 2.2, 3, 30)
    equal = Interval(1.0, 0.98, 1.02, 3, 30)
    close = Interval(1.08, 1.04, 1.12, 3, 30)  # nearly decided: low just under 1.05
    far = Interval(1.0, 0.8, 1.25, 3, 30)
    pending = [
        Pending("decided", (decided, None), 1.0, near_crossover=True),
        Pending("equal", (equal,), 1.0, near_crossover=False),
        Pending("far", (far,), 1.0, near_crossover=False),
        Pending("close", (decided, close), 1.0, near_crossover=False),
        Pending("crossover", (far,), 1.0, near_crossover=True),
    ]
    assert plan_extra_rounds(pending, budget_s=100, rounds=10) == ["crossover", "close", "far"]
    assert plan_extra_rounds(pending, budget_s=25, rounds=10) == ["crossover", "close"]
    assert plan_extra_rounds(pending, budget_s=5, rounds=10) == []
    # a group too costly for what is left is skipped, a cheaper one after it still fits
    costly = [Pending("big", (close,), 3.0, False), Pending("small", (far,), 1.0, False)]
    assert plan_extra_rounds(costly, budget_s=20, rounds=10) == ["small"]


def test_decidable_projects_the_process_level_and_gives_up_on_edge_ties() -> None:
    from harness.stats import decidable

    # far from the edges, wide for want of processes: a few more decide it
    assert decidable(Interval(1.3, 0.9, 1.9, 2, 10), 1)
    # a tie sitting on the +5% edge: no budget decides it
    assert not decidable(Interval(1.04, 1.0, 1.09, 8, 40), 50)
    # decided or inside the band: nothing to decide
    assert not decidable(Interval(2.0, 1.8, 2.2, 3, 30), 10)
    assert not decidable(Interval(1.0, 0.98, 1.02, 3, 30), 10)
    # one process: no process level to project, so more are worth a try
    assert decidable(Interval(1.3, 0.5, 3.0, 1, 5), 1)
    # more processes make more decidable
    wide = Interval(1.2, 0.95, 1.5, 3, 30)
    assert not decidable(wide, 1) and decidable(wide, 20)


# ------------------------------------------------------------------ unpaired tools


def test_fdr_adjust_matches_benjamini_hochberg_by_hand() -> None:
    # sorted p: 0.001 0.01 0.035 0.045 0.5, m = 5: p*m/rank = 0.005 0.025 0.0583 0.05625
    # 0.5; step-up minimum from the top: 0.005 0.025 0.05625 0.05625 0.5
    ps = [0.045, 0.5, 0.001, 0.035, 0.01]
    assert fdr_adjust(ps) == pytest.approx([0.05625, 0.5, 0.005, 0.05625, 0.025])
    assert fdr_adjust([]) == []


def test_geomean() -> None:
    assert geomean([1.0, 4.0]) == pytest.approx(2.0)
    assert geomean(iter([2.0, 2.0, 2.0])) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="no values"):
        geomean([])
    with pytest.raises(ValueError, match="positive"):
        geomean([1.0, 0.0])
    with pytest.raises(ValueError, match="positive"):
        geomean([1.0, math.nan])


def test_big_enough_is_symmetric_in_log() -> None:
    assert big_enough(1.05, 0.05) and big_enough(1 / 1.05, 0.05)
    assert not big_enough(1.049, 0.05) and not big_enough(0.96, 0.05)


def test_significance_uses_mann_whitney_then_ranges() -> None:
    a = [2.0 + 0.01 * i for i in range(10)]
    b = [1.0 + 0.01 * i for i in range(10)]
    t = significance(a, b, None, None)
    assert t.method == "Mann-Whitney U" and t.significant and t.decisive
    assert t.ratio == pytest.approx(np.median(a) / np.median(b))
    few = significance([2.0], [1.0], (1.9, 2.1), (0.9, 1.1), ratio=2.0)
    assert few.method == "min-max ranges apart" and few.decisive and few.p_value is None
    close = significance([1.0], [1.0], (0.9, 1.1), (0.95, 1.2), ratio=1.01)
    assert close.method == "min-max ranges overlap" and not close.significant
    small = significance(None, None, (1.02, 1.03), (1.0, 1.01), ratio=1.02)
    assert small.significant and not small.decisive  # apart, but within the minimum effect
    assert significance(None, None, None, None, ratio=1.5).method == "no spread recorded"
    with pytest.raises(ValueError, match="ratio"):
        significance(None, [1.0], None, None)
