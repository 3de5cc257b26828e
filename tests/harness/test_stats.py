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


def test_coverage_holds_when_a_late_process_has_many_more_rounds() -> None:
    """Three first-pass processes of 7 rounds and an adaptive one of 100 (what
    ``rounds_per_process`` gives a pass of one cheap group), a 10% process effect:
    each process weighs as one, so the long one does not pull the interval onto its
    own level (97% of these 200 simulations; 94.7-98.3% over 300 in the designs
    3x7 + 3x20, 3x7 + 1x100 and 3x7 + 4x40, with 0-10% process effects)."""
    true, hits = 1.3, 0
    for sim in range(200):
        ratios = {
            (part, key): values
            for part, (processes, rounds) in enumerate(((3, 7), (1, 100)))
            for key, values in round_ratios(
                *paired(
                    true, processes, rounds, round_sd=0.1, process_sd=0.1, seed=sim * 100 + part
                )
            ).items()
        }
        iv = speedup_interval(ratios, resamples=300, seed=sim)
        assert iv is not None
        hits += iv.low <= true <= iv.high
    assert hits / 200 >= 0.90


def test_interval_is_deterministic_and_ignores_key_order() -> None:
    ratios = round_ratios(*paired(1.3, 3, 8))
    a = speedup_interval(ratios, seed=7)
    assert a == speedup_interval(dict(reversed(list(ratios.items()))), seed=7)
    assert a != speedup_interval(ratios, seed=8)


def test_interval_edge_cases() -> None:
    assert speedup_interval({}) is None
    assert speedup_interval({0: [math.nan, -1.0]}) is None
    one = speedup_interval({0: [2.0, 2.1, 1.9]})
    assert one is not None  # no process level: no interval
    assert (one.low, one.high, one.processes, one.rounds) == (0.0, math.inf, 1, 3)
    assert one.estimate == pytest.approx(2.0, rel=1e-3)
    assert straddles(one) and decide(one) == "undecided"
    with pytest.raises(ValueError, match="confidence"):
        speedup_interval({0: [1.0]}, confidence=1.0)


def test_interval_carries_the_variance_components_of_its_rounds() -> None:
    """Round noise 10% and a 20% process effect, 40 processes of 30 rounds: the
    within part estimates 0.1², the between part 0.2² (its sampling error over 40
    processes is about a quarter)."""
    ratios = round_ratios(*paired(1.3, 40, 30, round_sd=0.1, process_sd=0.2, seed=3))
    got = speedup_interval(ratios, resamples=10)
    assert got is not None
    assert got.within_var == pytest.approx(0.01, rel=0.15)
    assert got.between_var == pytest.approx(0.04, rel=0.5)
    # no process effect: what the means' spread shows is their rounds' noise, nothing more
    flat = speedup_interval(round_ratios(*paired(1.3, 40, 30, seed=3)), resamples=10)
    assert flat is not None and flat.between_var < 0.002
    # one process: no between part; one round each: no within part
    one = speedup_interval({0: [2.0, 2.1, 1.9]})
    assert one is not None and math.isnan(one.between_var) and one.within_var > 0
    single = speedup_interval({0: [2.0], 1: [2.2]})
    assert single is not None and math.isnan(single.within_var)
    assert single.between_var == pytest.approx(np.var(np.log([2.0, 2.2]), ddof=1))


def test_each_process_weighs_as_one_in_the_pooled_estimate() -> None:
    """Three processes of 4 rounds at ×2 and one of 40 at ×1: by rounds the pooled
    estimate is ×1 (the long process's); by process it is ×2 (three of four say so)."""
    long = {0: [2.0] * 4, 1: [2.0] * 4, 2: [2.0] * 4, 3: [1.0] * 40}
    got = speedup_interval(long, resamples=50)
    assert got is not None and got.estimate == pytest.approx(2.0)
    # pooled 1, 2, 3, 5 (a quarter each): the middle half is 2 and 3, in log space
    even = {0: [1.0, 3.0], 1: [2.0, 5.0]}
    balanced = speedup_interval(even, resamples=50)
    assert balanced is not None and balanced.estimate == pytest.approx(math.sqrt(6))
    # two processes of unequal rounds, half the weight on each side: between them
    split = speedup_interval({0: [1.0], 1: [3.0, 3.0, 3.0]}, resamples=50)
    assert split is not None and split.estimate == pytest.approx(math.sqrt(3))


def test_the_estimate_is_the_interquartile_mean_and_moves_smoothly_with_a_bimodal_mix() -> None:
    """torch's 1-thread conv2d step at n=512 took 21-23 or 35-39 ms a call, round to
    round (2026-12-03, AVX512): a median of the ratios jumps from one mode to the other
    when one round in ten changes mode; the interquartile mean moves by a fraction."""
    fast, slow = [0.75] * 3, [0.45] * 3

    def estimate(fast_rounds: int) -> float:
        rounds = [0.75] * fast_rounds + [0.45] * (10 - fast_rounds)
        got = speedup_interval({0: rounds, 1: fast + slow, 2: fast + slow}, resamples=20)
        assert got is not None
        return got.estimate

    steps = [estimate(k) / estimate(k + 1) for k in range(10)]
    assert all(0.9 < s <= 1.0 for s in steps)
    # eight rounds of a weight each: the middle half is 3, 4, 5 and 6
    got = speedup_interval({0: [1.0, 2.0, 3.0, 4.0], 1: [5.0, 6.0, 7.0, 8.0]}, resamples=20)
    logs = np.log([3.0, 4.0, 5.0, 6.0])
    assert got is not None and got.estimate == pytest.approx(math.exp(logs.mean()))


def test_rounds_per_process_is_the_two_stage_optimum_within_bounds() -> None:
    from harness.stats import rounds_per_process

    # sqrt(4 s * 0.01 / (0.1 s * 0.0025)) = sqrt(160) = 12.6 -> 13
    assert rounds_per_process(4.0, 0.1, 0.01, 0.0025, 6, 20) == 13
    # a costly round against a cheap start: few rounds, floored at the low bound
    assert rounds_per_process(4.0, 10.0, 0.01, 0.0025, 6, 20) == 6
    # no process level measured: all the rounds allowed; unknown: the low bound
    assert rounds_per_process(4.0, 0.1, 0.01, 0.0, 6, 20) == 20
    assert rounds_per_process(4.0, 0.1, math.nan, 0.01, 6, 20) == 6
    assert rounds_per_process(4.0, 0.1, 0.01, math.nan, 6, 20) == 6
    # more rounds per process as the start grows dearer or the rounds noisier
    cheap, dear = (rounds_per_process(s, 0.1, 0.01, 0.0025, 1, 100) for s in (1.0, 9.0))
    assert cheap < dear
    with pytest.raises(ValueError, match="low"):
        rounds_per_process(4.0, 0.1, 0.01, 0.0025, 5, 4)


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


def test_processes_needed_is_the_fewest_that_decide() -> None:
    from harness.stats import decidable, processes_needed

    wide = Interval(1.2, 0.95, 1.5, processes=3, rounds=30)
    assert processes_needed(wide, 1) is None
    k = processes_needed(wide, 20)
    assert k is not None and decidable(wide, k) and not decidable(wide, k - 1)
    assert processes_needed(Interval(1.04, 1.0, 1.09, processes=8, rounds=40), 50) is None
    assert processes_needed(None, 10) is None


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
