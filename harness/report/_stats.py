"""Is one timing faster than another? The report's adapter to :mod:`harness.stats`.

The statistics live in :mod:`harness.stats`; this module only turns the report's
``Measure`` into the plain sequences :func:`harness.stats.significance` takes.
"""

from __future__ import annotations

from harness.report._data import Measure
from harness.stats import ALPHA, MIN_EFFECT, Significance, significance

__all__ = ["ALPHA", "MIN_EFFECT", "Significance", "compare_measures"]


def compare_measures(
    a: Measure, b: Measure, *, alpha: float = ALPHA, min_effect: float = MIN_EFFECT
) -> Significance:
    """Compare two successful measures (``a / b`` of their medians).

    With enough raw values on both sides (enough that the exact test could reach
    ``alpha``), a two-sided Mann-Whitney U test on pyperf's raw values; otherwise the
    min-max ranges must not overlap.
    """
    if a.median is None or b.median is None:
        raise ValueError("compare_measures needs two successful measures")
    a_range = None if a.min is None or a.max is None else (a.min, a.max)
    b_range = None if b.min is None or b.max is None else (b.min, b.max)
    return significance(
        a.values,
        b.values,
        a_range,
        b_range,
        alpha=alpha,
        min_effect=min_effect,
        ratio=a.median / b.median,
    )
