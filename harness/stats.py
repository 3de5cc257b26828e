"""Statistics of timings: paired speedups with honest intervals, decisions against a
band, planning of extra rounds, and the tests the report and ``compare`` use.

Pure functions on plain numbers (NumPy and SciPy only: no torch, no pandas, nothing
from :mod:`harness.report`), so the runner, the report and ``compare`` share one home
for each statistical concept.

Paired rounds
-------------
Inside each worker process the implementations of one grid point are timed in
alternation, in *rounds*: each round times every implementation once, in random order.
For a baseline ``B`` and a candidate ``C`` the per-round speedup is ``tB / tC``
(:func:`round_ratios`); drift of the machine (a trend, a burst of background load)
hits both sides of a round alike and cancels in the ratio. A training step is judged on
its own rounds (the ``step`` phase timed whole, ``harness.measure``), never on forward +
backward summed per round: that sum is not what a training loop runs (issue 16).

The interval (:func:`speedup_interval`)
---------------------------------------
Rounds are nested in processes, and processes differ from one another (address-space
layout, allocator state, frequency, which core): Kalibera & Jones, "Rigorous
Benchmarking in Reasonable Time" (ISMM 2013), show that the process level is usually
where most of the uncertainty lives, and that it can only be estimated from the number
of processes, not of rounds. With the common 2-3 processes a plain percentile
hierarchical bootstrap under-covers (it has 2-3 values to resample from at the top
level, shrinks their spread by ``(P-1)/P`` and uses normal-like quantiles where a
t-distribution with ``P-1`` degrees of freedom is due).

The method, in log space (speedups are ratios; their noise is multiplicative):

* estimate: the interquartile mean of all per-round log-speedups, pooled over
  processes, each process weighing as one (its rounds weigh ``1 / rounds`` each; a
  round straddling a quartile counts for its part inside): adaptive passes give some
  processes more rounds than others (``rounds_per_process``), and the process is the
  independent unit. Not the median: where one side's calls take one of two times,
  round to round (torch's 1-thread conv2d step at n=512 took 21-23 or 35-39 ms a
  call, 2026-12-03, AVX512), the median lands on either mode as their mix shifts by
  a round, and two runs, or the harness and a user's plain loop, differed by a whole
  mode (x0.39 against x0.51); a user's loop runs both modes, and the interquartile
  mean moves smoothly with their mix. It still leaves out the outlying quarter at
  either end, which a burst of load on a shared machine makes. It does not make the
  harness agree with a plain loop more often: re-read from ``scripts/truth.py``'s
  saved rounds of three runs on 2026-12-03 (AVX512; quiet, noisy neighbour, quiet),
  the two agreed within 15% in 28, 24 and 25 of 32 comparisons with this estimate on
  both sides, 27, 25 and 26 with the median, 26, 18 and 24 with the plain mean of the
  log ratios (which outlying rounds move). What it buys is an estimate that does not
  jump with one round, and intervals about a tenth narrower at the same coverage
  (below);
* process level (K&J's between-process component): a t-interval
  ``log(estimate) ± t(P-1) · s / sqrt(P)``, where ``s`` is the standard deviation of
  the per-process interquartile means. Each carries its round noise too, so ``s``
  estimates the whole variance of a process-level summary, with ``P-1`` degrees of
  freedom, as K&J's variance-component formula does for a balanced design;
* round level: the percentile interval of the pooled estimate under a stratified
  bootstrap that resamples rounds within each process (processes kept); it is a floor
  for the cases where two or three process estimates agree by chance;
* the interval reported is the hull of the two (the lower of the lows, the higher of
  the highs).

Measured coverage of the true speedup at nominal 95% (lognormal noise on the per-round
ratio, where its median and interquartile mean agree; 400 simulations each, default
2000 resamples, 2026-12-03), and the median half-width of the interval in log space
(about the relative half-width):

=========  ==============  ===========  ========  ==========
processes  rounds/process  process sd   round sd  coverage, half-width
=========  ==============  ===========  ========  ==========
2          10              0            5%        99%, ±9.9%
2          10              0            8%        99%, ±16%
2          10              3%           8%        98%, ±25%
2          10              10%          5%        97%, ±61%
3          4               3%           8%        97%, ±11%
3          8               3%           8%        96%, ±9.2%
3          10              0            5%        98.5%, ±3.6%
3          10              10%          5%        95%, ±21%
5          10              3%           8%        95.5%, ±4.8%
10         5               3%           8%        95.5%, ±3.4%
=========  ==============  ===========  ========  ==========

With the median as the estimate the same designs covered 96-99% with half-widths
about a tenth wider (±11% and ±9.5% for the first and the 3 x 8 design, 2026-11-30):
the interquartile mean uses half of the rounds where a median uses one or two.
``tests/harness/test_stats.py`` checks two designs with 200 simulations and 300
resamples (3 x 8 with a 3% process effect; 2 x 10 without). A percentile bootstrap of
rounds alone covers 28-83% in the designs with a process effect.

Limits: with two processes the t quantile is 12.7, so the interval is wide: two
processes decide only large effects, and more processes, not more rounds, narrow it
(rounds only shrink the round-level part). Without a process effect the interval is
conservative (98-99%). The t-interval assumes roughly normal process estimates in log
space (trimming makes them robust to outlying rounds, not to an outlying process).
Processes with different numbers of rounds weigh equally, at the process level and in
the pooled estimate; unbalanced designs, as adaptive passes make them (3 processes of 7
rounds beside 3 of 20, 1 of 100 or 4 of 40; process effect 0 or 10%, round noise 8 or
10%), covered 95.3-99.7% in 300 simulations each (2026-12-03). With one process there
is no estimate of the process level at all, and the interval is ``(0, inf)``:
undecided.

Decisions (:func:`decide`, :func:`inside_band`, :func:`straddles`) compare the interval
with the band ``[1 / (1 + BAND), 1 + BAND]``; :func:`plan_extra_rounds` spends a time
budget on the groups that more rounds could decide.

Two runs or two implementations without pairing (the report's tables, ``compare``) use
:func:`significance` (Mann-Whitney U on raw values, min-max ranges as a fallback),
:func:`fdr_adjust` (Benjamini-Hochberg) and :func:`big_enough` (the minimum effect).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np

__all__ = [
    "ALPHA",
    "BAND",
    "CONFIDENCE",
    "MIN_EFFECT",
    "Decision",
    "Interval",
    "Pending",
    "Significance",
    "big_enough",
    "decidable",
    "decide",
    "fdr_adjust",
    "geomean",
    "inside_band",
    "plan_extra_rounds",
    "processes_needed",
    "round_ratios",
    "rounds_per_process",
    "significance",
    "speedup_interval",
    "straddles",
]

K = TypeVar("K", bound=Hashable)

#: The ±5% band: a speedup counts when its interval lies above ``1 + BAND`` or below
#: ``1 / (1 + BAND)``.
BAND: float = 0.05
#: Confidence level of the speedup intervals.
CONFIDENCE: float = 0.95
#: Significance level of the Mann-Whitney U test.
ALPHA: float = 0.05
#: Minimum effect: a ratio within ``1 ± MIN_EFFECT`` (here 5%) is never called a win.
MIN_EFFECT: float = 0.05
#: The share of the weighted per-round log-speedups left out at each end of the
#: speedup estimate (``speedup_interval``): 0.25, the interquartile mean.
TRIM: float = 0.25

Decision = Literal["faster", "slower", "undecided"]


def _valid(x: float) -> bool:
    return math.isfinite(x) and x > 0


# ------------------------------------------------------------------ paired rounds


def round_ratios(
    base: Mapping[K, Sequence[float]], cand: Mapping[K, Sequence[float]]
) -> dict[K, list[float]]:
    """Per-round speedups ``base[i] / cand[i]`` per process key.

    Rounds pair by index within a process; a round missing on either side, or with a
    non-positive or non-finite time, is skipped; a process with no pair is dropped.
    """
    out: dict[K, list[float]] = {}
    for key, b_times in base.items():
        c_times = cand.get(key)
        if c_times is None:
            continue
        ratios = [
            float(b) / float(c)
            for b, c in zip(b_times, c_times, strict=False)
            if _valid(float(b)) and _valid(float(c))
        ]
        if ratios:
            out[key] = ratios
    return out


@dataclass(frozen=True, slots=True)
class Interval:
    """A speedup (baseline time / candidate time: above 1 the candidate is faster)
    with its confidence interval."""

    estimate: float
    """Median of the per-round speedups, pooled over processes."""
    low: float
    high: float
    processes: int
    """Number of processes contributing."""
    rounds: int
    """Total number of rounds."""
    within_var: float = field(default=math.nan, compare=False)
    """Variance of one round's log-speedup about its process's mean, pooled over the
    processes with two rounds or more (NaN: none has)."""
    between_var: float = field(default=math.nan, compare=False)
    """Variance of the process level in log space: the per-process means' variance
    less what their rounds' noise accounts for, floored at 0 (NaN: fewer than two
    processes). With ``within_var``, what ``rounds_per_process`` weighs."""


def speedup_interval(
    ratios: Mapping[Any, Sequence[float]],
    *,
    confidence: float = CONFIDENCE,
    resamples: int = 2000,
    seed: int = 0,
) -> Interval | None:
    """The speedup (the interquartile mean of the per-round log ratios) and its
    interval (the method: see the module docstring).

    ``ratios`` maps a process key to its per-round speedups (``round_ratios``);
    non-positive and non-finite ratios are ignored. ``None`` when no ratio is left.
    Deterministic for a given ``seed`` (processes are taken in the order of their keys'
    ``repr``, so the order of the mapping does not matter).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, not {resamples}")
    logs = []
    for key in sorted(ratios, key=repr):
        values = np.asarray(ratios[key], dtype=float)
        values = values[np.isfinite(values) & (values > 0)]
        if values.size:
            logs.append(np.log(values))
    if not logs:
        return None
    pooled = np.concatenate(logs)
    # each process weighs as one in the pooled estimate, whatever its rounds: an adaptive
    # process of 20 rounds must not outweigh three first-pass processes of 8
    weights = np.concatenate([np.full(g.size, 1.0 / g.size) for g in logs])
    estimate = math.exp(float(_weighted_trimmed_mean(pooled[np.newaxis, :], weights)[0]))
    processes, rounds = len(logs), int(pooled.size)
    within, between = _variance_components(logs)
    if processes < 2:
        return Interval(estimate, 0.0, math.inf, processes, rounds, within, between)
    tail = (1 - confidence) / 2

    # round level: resample rounds within each process, keep the processes
    rng = np.random.default_rng(seed)
    boot = np.concatenate(
        [g[rng.integers(0, g.size, size=(resamples, g.size))] for g in logs], axis=1
    )
    low_r, high_r = np.quantile(_weighted_trimmed_mean(boot, weights), [tail, 1 - tail])

    # process level: t-interval on the per-process estimates, centred on the estimate
    own = np.array([_weighted_trimmed_mean(g[np.newaxis, :], np.ones(g.size))[0] for g in logs])
    half = _t_quantile(1 - tail, processes - 1) * own.std(ddof=1) / math.sqrt(processes)
    centre = math.log(estimate)
    low = math.exp(min(float(low_r), centre - half))
    high = math.exp(max(float(high_r), centre + half))
    return Interval(estimate, low, high, processes, rounds, within, between)


def _weighted_trimmed_mean(rows: np.ndarray, weights: np.ndarray, trim: float = TRIM) -> np.ndarray:
    """The trimmed mean of each row of ``rows`` (R x N), value ``j`` weighing
    ``weights[j]``: the mean of the values between the ``trim`` and ``1 - trim``
    quantiles of the weighted distribution, a value that straddles either edge counted
    for the part of its weight inside (so that the estimate moves smoothly as values
    cross an edge). ``trim`` 0.25: the interquartile mean."""
    order = np.argsort(rows, axis=1)
    values = np.take_along_axis(rows, order, axis=1)
    mass = weights[order] / weights.sum()
    upper = np.cumsum(mass, axis=1)
    lower = upper - mass
    kept = np.clip(np.minimum(upper, 1.0 - trim) - np.maximum(lower, trim), 0.0, None)
    return np.asarray((values * kept).sum(axis=1) / kept.sum(axis=1))


def _variance_components(logs: Sequence[np.ndarray]) -> tuple[float, float]:
    """(within, between): the two variance components of a balanced-enough two-level
    design, as Kalibera & Jones estimate them: the mean of the per-process variances,
    and the variance of the per-process means less the within part over the mean
    number of rounds (floored at 0)."""
    spreads = [float(g.var(ddof=1)) for g in logs if g.size >= 2]
    within = float(np.mean(spreads)) if spreads else math.nan
    if len(logs) < 2:
        return within, math.nan
    means = np.array([g.mean() for g in logs])
    rounds = float(np.mean([g.size for g in logs]))
    noise = within / rounds if math.isfinite(within) else 0.0
    return within, max(0.0, float(means.var(ddof=1)) - noise)


def rounds_per_process(
    start_s: float,
    round_s: float,
    within_var: float,
    between_var: float,
    low: int,
    high: int,
) -> int:
    """How many rounds a new process should time, between ``low`` and ``high``.

    A process costs ``start_s`` before its first round and ``round_s`` a round. For a
    fixed cost, the variance of the process-level mean, ``between / P + within /
    (P * r)``, is smallest at ``r = sqrt(start_s * within / (round_s * between))``: the
    optimum of two-stage sampling (Cochran, *Sampling Techniques*, 1977, 10.6), the
    repetition count Kalibera & Jones derive for benchmarks. Processes that are dear
    to start against their rounds, or rounds that are noisy against the process
    level, call for more rounds per process; a strong process level calls for more
    processes. No process level measured (``between_var`` 0) gives ``high``; unknown
    components (NaN) give ``low``.
    """
    if low < 1 or high < low:
        raise ValueError(f"need 1 <= low <= high, not low={low}, high={high}")
    if not (math.isfinite(within_var) and math.isfinite(between_var)):
        return low
    if start_s <= 0 or round_s <= 0 or within_var <= 0:
        return low
    if between_var <= 0:
        return high
    best = math.sqrt(start_s * within_var / (round_s * between_var))
    return max(low, min(high, math.ceil(best)))


@functools.lru_cache(maxsize=256)
def _t_quantile(q: float, dof: int) -> float:
    """Student's t quantile, cached: the runner computes thousands of intervals with the
    same few (confidence, processes) pairs, and each scipy call costs ~0.1 ms."""
    from scipy.stats import t as student_t

    return float(student_t.ppf(q, dof))


# ------------------------------------------------------------------ decisions


def _edges(band: float) -> tuple[float, float]:
    if not band >= 0:
        raise ValueError(f"band must be non-negative, not {band}")
    return 1 / (1 + band), 1 + band


def decide(interval: Interval | None, band: float = BAND) -> Decision:
    """``faster`` when the whole interval lies above ``1 + band``, ``slower`` when it
    lies below ``1 / (1 + band)``, else (and for ``None``) ``undecided``."""
    lower, upper = _edges(band)
    if interval is None:
        return "undecided"
    if interval.low > upper:
        return "faster"
    if interval.high < lower:
        return "slower"
    return "undecided"


def inside_band(interval: Interval | None, band: float = BAND) -> bool:
    """The interval lies within ``[1 / (1 + band), 1 + band]``: equal within the band,
    and more rounds will not decide it."""
    lower, upper = _edges(band)
    return interval is not None and lower <= interval.low and interval.high <= upper


def straddles(interval: Interval | None, band: float = BAND) -> bool:
    """Undecided but not inside the band: the interval crosses a band edge, and more
    rounds could decide it. ``False`` for ``None`` (nothing measured)."""
    return (
        interval is not None
        and decide(interval, band) == "undecided"
        and not inside_band(interval, band)
    )


@dataclass(frozen=True)
class Pending:
    """A group (a grid point) that could get more rounds."""

    key: str
    intervals: tuple[Interval | None, ...]
    """The group's comparisons (each candidate x phase)."""
    cost_s: float
    """Measured seconds one more round of this group costs."""
    near_crossover: bool
    """A neighbouring size decided the other way."""


def decidable(interval: Interval | None, extra_processes: int, band: float = BAND) -> bool:
    """Whether ``extra_processes`` more processes could plausibly decide a straddling
    ``interval``: its half-width in log space, scaled as the process-level term
    (``t(P-1) / sqrt(P)``) shrinks from its ``processes`` to the more, falls below the
    distance from its estimate to the nearest band edge. A tie sitting on an edge
    (×1.04 at a ±5% band) is decided by no budget, and passes spent on it buy nothing:
    on 2026-11-30 ten adaptive processes (105 s) left the same 6 such points undecided.
    True for an interval with fewer than two processes (no process level yet)."""
    if not straddles(interval, band):
        return False
    assert interval is not None
    if interval.processes < 2 or not (interval.low > 0 and math.isfinite(interval.high)):
        return True
    centre = math.log(interval.estimate)
    edge = math.log1p(band)
    distance = min(abs(centre - edge), abs(centre + edge))
    half = max(math.log(interval.high) - centre, centre - math.log(interval.low))
    now, later = interval.processes, interval.processes + max(0, extra_processes)
    tail = (1 - CONFIDENCE) / 2
    scale = (_t_quantile(1 - tail, later - 1) / math.sqrt(later)) / (
        _t_quantile(1 - tail, now - 1) / math.sqrt(now)
    )
    return half * scale < distance


def processes_needed(interval: Interval | None, most: int, band: float = BAND) -> int | None:
    """The fewest more processes (1 to ``most``) that ``decidable`` says could decide
    ``interval``; ``None`` when not even ``most`` could (or nothing straddles)."""
    if most < 1 or not decidable(interval, most, band):
        return None
    # decidable is monotone in the processes added (t(P-1)/sqrt(P) falls with P)
    low, high = 1, most
    while low < high:
        mid = (low + high) // 2
        if decidable(interval, mid, band):
            high = mid
        else:
            low = mid + 1
    return low


def _shortfall(interval: Interval, band: float) -> float:
    """How far the interval is from deciding, relative to its width, in log space:
    the distance from the band edge on the estimate's side to the interval's bound
    that must cross it, over the interval's width. Near 0: a little more precision
    decides it; near 1 or above: hopeless for now."""
    if not (interval.low > 0 and math.isfinite(interval.high)):
        return math.inf
    low, high = math.log(interval.low), math.log(interval.high)
    edge = math.log1p(band)
    width = high - low
    gap = edge - low if interval.estimate >= 1 else high + edge
    return max(gap, 0.0) / width if width > 0 else math.inf


def plan_extra_rounds(pending: Sequence[Pending], budget_s: float, rounds: int) -> list[str]:
    """Keys of the groups to give ``rounds`` more rounds, in priority order, with
    ``sum(cost_s * rounds) <= budget_s``.

    Only groups with at least one straddling interval qualify. Groups near a crossover
    come first; then the least hopeless first: the group whose most promising
    straddling interval has the smallest shortfall (the distance from the band edge to
    the bound that must cross it, relative to the interval's width, in log space).
    Ties go by key. The budget is filled greedily: a group that does not fit is
    skipped and cheaper ones after it may still be taken.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    scored = []
    for group in pending:
        if not (math.isfinite(group.cost_s) and group.cost_s >= 0):
            raise ValueError(f"{group.key}: cost_s must be non-negative, not {group.cost_s}")
        open_ = [iv for iv in group.intervals if iv is not None and straddles(iv)]
        if open_:
            score = min(_shortfall(iv, BAND) for iv in open_)
            scored.append((not group.near_crossover, score, group.key, group.cost_s))
    scored.sort()
    chosen, spent = [], 0.0
    for _, _, key, cost in scored:
        if spent + cost * rounds <= budget_s:
            chosen.append(key)
            spent += cost * rounds
    return chosen


# ------------------------------------------------------------------ unpaired tests


def geomean(values: Iterable[float]) -> float:
    """The geometric mean; ``ValueError`` when empty or when a value is not positive
    and finite (nothing is left out silently)."""
    logs = []
    for v in values:
        if not _valid(float(v)):
            raise ValueError(f"geomean: {v!r} is not a positive finite number")
        logs.append(math.log(v))
    if not logs:
        raise ValueError("geomean of no values")
    return math.exp(math.fsum(logs) / len(logs))


def fdr_adjust(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control``),
    in the order given."""
    if not len(pvalues):
        return []
    from scipy.stats import false_discovery_control

    return [float(q) for q in false_discovery_control(np.asarray(pvalues, dtype=float))]


def big_enough(ratio: float, min_effect: float) -> bool:
    """The minimum effect: ``ratio`` is at least ``1 + min_effect`` or at most
    ``1 / (1 + min_effect)``."""
    return ratio >= 1 + min_effect or ratio <= 1 / (1 + min_effect)


@dataclass(frozen=True)
class Significance:
    """The outcome of comparing two timings ``a`` and ``b``.

    ``ratio`` is ``a / b`` of the medians (above 1: ``b`` is faster). ``significant``
    is the statistical test alone; ``decisive`` adds the minimum effect size.
    """

    ratio: float
    significant: bool
    p_value: float | None
    method: str
    decisive: bool

    @property
    def describe(self) -> str:
        if self.p_value is not None:
            return f"{self.method}, p={_fmt_p(self.p_value)}"
        return self.method


def _fmt_p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else "<0.001"


def _min_attainable_p(n1: int, n2: int) -> float:
    """The smallest two-sided p-value the exact Mann-Whitney test can give."""
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def _mann_whitney(a: Sequence[float], b: Sequence[float]) -> float | None:
    from scipy.stats import mannwhitneyu

    if len(set(a)) == 1 and set(a) == set(b):
        return 1.0
    try:
        p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    except ValueError:
        return None
    return None if math.isnan(p) else p


def significance(
    a_values: Sequence[float] | None,
    b_values: Sequence[float] | None,
    a_range: tuple[float, float] | None,
    b_range: tuple[float, float] | None,
    *,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
    ratio: float | None = None,
) -> Significance:
    """Is ``a`` different from ``b``?

    With enough raw values on both sides (enough that the exact test could reach
    ``alpha``), a two-sided Mann-Whitney U test on them; otherwise the ``(min, max)``
    ranges must not overlap; with neither, not significant. ``ratio`` is ``a / b`` of
    the medians, by default computed from the values (``ValueError`` if there are
    none); ``decisive`` needs the test and :func:`big_enough`.
    """
    if ratio is None:
        if not (a_values and b_values):
            raise ValueError("significance: give ratio when there are no raw values")
        ratio = float(np.median(a_values)) / float(np.median(b_values))
    enough = big_enough(ratio, min_effect)
    if a_values and b_values and _min_attainable_p(len(a_values), len(b_values)) < alpha:
        p = _mann_whitney(a_values, b_values)
        if p is not None:
            significant = p < alpha
            return Significance(ratio, significant, p, "Mann-Whitney U", significant and enough)
    if a_range is not None and b_range is not None:
        apart = a_range[0] > b_range[1] or b_range[0] > a_range[1]
        method = "min-max ranges " + ("apart" if apart else "overlap")
        return Significance(ratio, apart, None, method, apart and enough)
    return Significance(ratio, False, None, "no spread recorded", False)
