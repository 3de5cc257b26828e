"""Is one timing faster than another? A test on raw values plus a minimum effect size."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.report._data import Measure

__all__ = ["ALPHA", "MIN_EFFECT", "Significance", "compare_measures"]

#: Significance level of the Mann-Whitney U test.
ALPHA = 0.05
#: Minimum effect: a ratio within ``1 ± MIN_EFFECT`` (here 5%) is never called a win.
MIN_EFFECT = 0.05


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


def compare_measures(
    a: Measure, b: Measure, *, alpha: float = ALPHA, min_effect: float = MIN_EFFECT
) -> Significance:
    """Compare two successful measures.

    With enough raw values on both sides (enough that the exact test could reach
    ``alpha``), a two-sided Mann-Whitney U test on pyperf's raw values; otherwise the
    min-max ranges must not overlap.
    """
    assert a.median is not None and b.median is not None
    ratio = a.median / b.median
    big_enough = ratio >= 1 + min_effect or ratio <= 1 / (1 + min_effect)
    if a.values and b.values and _min_attainable_p(len(a.values), len(b.values)) < alpha:
        p = _mann_whitney(a.values, b.values)
        if p is not None:
            significant = p < alpha
            return Significance(ratio, significant, p, "Mann-Whitney U", significant and big_enough)
    if None not in (a.min, a.max, b.min, b.max):
        assert a.min is not None and a.max is not None and b.min is not None and b.max is not None
        apart = a.min > b.max or b.min > a.max
        return Significance(
            ratio,
            apart,
            None,
            "min-max ranges " + ("apart" if apart else "overlap"),
            apart and big_enough,
        )
    return Significance(ratio, False, None, "no spread recorded", False)
