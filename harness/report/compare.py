"""Comparing two results folders: ``python -m harness compare BASE_DIR NEW_DIR``.

For every case measured in both runs: the ratio new/base of the medians, whether the
change is significant (Mann-Whitney U on pyperf's raw values, min-max ranges where
those are missing) and at least ``threshold_pct``; a geometric mean per layer and
implementation; slowdowns first. Cases only one run measured are listed as left out;
machine and version differences are flagged, not refused. A change of CPU model or of
torch's CPU capability (``AVX2`` against ``AVX512``: which kernels torch runs) makes
the runs come from *different machines*, said plainly at the top.

The statistics (the test, the Benjamini-Hochberg adjustment, the minimum effect, the
geometric mean) live in :mod:`harness.stats`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.report._data import Measure, measure, rebuild_from_raw, records
from harness.report._stats import ALPHA, Significance, compare_measures
from harness.report.faults import incomplete_reason
from harness.results import Results, load_results
from harness.stats import big_enough, fdr_adjust, geomean
from harness.text import cell, fmt_seconds, md_table

__all__ = [
    "Comparison",
    "GeoMean",
    "PointChange",
    "compare_results",
    "compare_runs",
    "format_comparison",
]

SLOWER = "slower"
FASTER = "faster"
SAME = "same"
NOW_FAILING = "now failing"
NOW_WORKING = "now working"
FAILS_IN_BOTH = "fails in both"
NOT_MEASURED = "not measured in either"


@dataclass(frozen=True)
class PointChange:
    """One case measured in both runs."""

    case: str
    layer: str
    impl: str
    phase: str
    base: Measure
    new: Measure
    test: Significance | None
    change: str
    """``slower``, ``faster``, ``same``, ``now failing``, ``now working``, ``fails in
    both`` or ``not measured in either`` (unsupported, say)."""

    @property
    def ratio(self) -> float | None:
        """New time / base time (above 1: slower)."""
        return None if self.test is None else self.test.ratio


@dataclass(frozen=True)
class GeoMean:
    """Geometric mean of new/base over the common successful points of one layer and
    implementation, per phase and over both."""

    layer: str
    impl: str
    by_phase: Mapping[str, float]
    overall: float
    points: int


@dataclass(frozen=True)
class Comparison:
    """Everything ``format_comparison`` prints and the CLI decides on."""

    base_path: Path
    new_path: Path
    threshold_pct: float
    points: tuple[PointChange, ...]
    geomeans: tuple[GeoMean, ...]
    only_in_base: tuple[str, ...] = ()
    only_in_new: tuple[str, ...] = ()
    differences: tuple[str, ...] = ()
    base_date: str | None = None
    new_date: str | None = None
    alpha: float = ALPHA
    corrected: bool = False
    different_machine: bool = False
    """The CPU model or torch's CPU capability changed: timings are not comparable."""
    machine_changes: tuple[str, ...] = ()
    """What makes the machines different, e.g. ``CPU capability AVX512 → AVX2``."""
    notes: tuple[str, ...] = ()
    """Files rebuilt from raw/ while loading, and runs marked incomplete (``base: ...``)."""

    @property
    def slowdowns(self) -> list[PointChange]:
        """Significant slowdowns beyond the threshold, worst first."""
        return sorted((p for p in self.points if p.change == SLOWER), key=lambda p: -(p.ratio or 0))

    @property
    def speedups(self) -> list[PointChange]:
        """Significant speedups beyond the threshold, best first."""
        return sorted((p for p in self.points if p.change == FASTER), key=lambda p: p.ratio or 0)

    @property
    def newly_failing(self) -> list[PointChange]:
        """Cases that ran in the base run and fail (or became unsupported) in the new one."""
        return [p for p in self.points if p.change == NOW_FAILING]

    @property
    def worst_significant_slowdown_pct(self) -> float:
        """The largest statistically significant slowdown, in percent (0 if none).

        Significance here is the test alone, not the threshold, so that
        ``--fail-above PCT`` can be stricter or looser than ``--threshold``.
        """
        worst = 0.0
        for p in self.points:
            if p.test is not None and p.test.significant and p.test.ratio > 1:
                worst = max(worst, 100.0 * (p.test.ratio - 1.0))
        return worst


def _key(row: Mapping[str, Any]) -> str:
    if row.get("case"):
        return str(row["case"])
    return "/".join(
        str(row.get(k)) for k in ("layer", "impl", "point", "dtype", "threads", "device", "phase")
    )


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    if isinstance(value, list):
        # lists such as the native thread pools carry no meaningful order
        return {
            prefix: sorted(value, key=lambda item: json.dumps(item, sort_keys=True, default=str))
        }
    return {prefix: value}


_MACHINE_KEYS = (
    "hostname",
    "cpu",
    "cpu_capability",
    "cpu_flags",
    "cores",
    "gpus",
    "platform",
    "python",
    "native_pools",
    "versions",
    "threads",
    "allocator",
)

#: Keys whose change makes two runs come from different machines, with their names.
_MACHINE_IDENTITY = {"cpu_capability": "CPU capability", "cpu": "CPU"}


def _flag_set(value: Any) -> set[str] | None:
    if isinstance(value, str):
        return set(value.split())
    if isinstance(value, (list, tuple, set)):
        return {str(v) for v in value}
    return None


def _flag_change(base: Any, new: Any, limit: int = 12) -> str | None:
    """``cpu_flags: +avx512f −sse4a`` (``None`` when equal or not recorded on a side)."""
    a, b = _flag_set(base), _flag_set(new)
    if a is None or b is None or a == b:
        return None
    changes = [f"+{f}" for f in sorted(b - a)] + [f"−{f}" for f in sorted(a - b)]
    more = f" … and {len(changes) - limit} more" if len(changes) > limit else ""
    return "cpu_flags: " + " ".join(changes[:limit]) + more


def _machine_changes(base: Results, new: Results) -> list[str]:
    """Changes that make the runs come from different machines (both sides recorded)."""
    out = []
    for key, name in _MACHINE_IDENTITY.items():
        a, b = base.environment.get(key), new.environment.get(key)
        if a is not None and b is not None and a != b:
            out.append(f"{name} {a} → {b}")
    return out


def _differences(base: Results, new: Results) -> list[str]:
    """Machine, version and profile differences, as ``key: base → new`` lines."""
    out = []
    for key in _MACHINE_KEYS:
        if key == "cpu_flags":
            a_flags, b_flags = base.environment.get(key), new.environment.get(key)
            line = _flag_change(a_flags, b_flags)
            if line is not None:
                out.append(line)
            elif (a_flags is None) != (b_flags is None):
                out.append(
                    f"cpu_flags: {'—' if a_flags is None else 'recorded'} → "
                    f"{'—' if b_flags is None else 'recorded'}"
                )
            continue
        a = _flatten(key, base.environment.get(key))
        b = _flatten(key, new.environment.get(key))
        for name in sorted(set(a) | set(b)):
            if a.get(name) != b.get(name) and not (a.get(name) is None and b.get(name) is None):
                out.append(f"{name}: {a.get(name, '—')} → {b.get(name, '—')}")
    a = _flatten("profile", base.run.get("profile"))
    b = _flatten("profile", new.run.get("profile"))
    for name in sorted(set(a) | set(b)):
        if a.get(name) != b.get(name):
            out.append(f"{name}: {a.get(name, '—')} → {b.get(name, '—')}")
    return out


def _adjust(
    tests: Mapping[str, Significance], alpha: float, min_effect: float
) -> dict[str, Significance]:
    """Benjamini-Hochberg adjustment of the tests that have a p-value."""
    with_p = [(k, t.p_value) for k, t in tests.items() if t.p_value is not None]
    keys = [k for k, _ in with_p]
    qs = fdr_adjust([p for _, p in with_p])
    out = dict(tests)
    for key, q in zip(keys, qs, strict=True):
        t = tests[key]
        out[key] = Significance(
            t.ratio,
            q < alpha,
            q,
            f"{t.method}, BH-adjusted over {len(keys)}",
            q < alpha and big_enough(t.ratio, min_effect),
        )
    return out


def compare_results(
    base: Results,
    new: Results,
    threshold_pct: float = 5.0,
    *,
    base_raw: Mapping[str, Sequence[float]] | None = None,
    new_raw: Mapping[str, Sequence[float]] | None = None,
    alpha: float = ALPHA,
    correct: bool = True,
) -> Comparison:
    """Compare two loaded runs (pure, given raw values; ``None`` reads ``pyperf.json``).

    With ``correct`` (the default) the Mann-Whitney p-values are adjusted for the
    number of points compared (Benjamini-Hochberg): comparing 240 points at p < 0.05
    would otherwise call about 12 of them changed between two runs of the same code.
    """
    braw = base.raw_values() if base_raw is None else base_raw
    nraw = new.raw_values() if new_raw is None else new_raw
    brows = {_key(r): r for r in records(base.frame)}
    nrows = {_key(r): r for r in records(new.frame)}
    common = [k for k in brows if k in nrows]
    measures = {k: (measure(brows[k], braw), measure(nrows[k], nraw)) for k in common}
    tests = _tests(measures, alpha, threshold_pct / 100.0, correct)
    points = tuple(_point_change(key, brows[key], *measures[key], tests.get(key)) for key in common)
    machine = _machine_changes(base, new)
    return Comparison(
        base_path=base.path,
        new_path=new.path,
        threshold_pct=threshold_pct,
        points=points,
        geomeans=_geomeans(points),
        only_in_base=tuple(k for k in brows if k not in nrows),
        only_in_new=tuple(k for k in nrows if k not in brows),
        differences=tuple(_differences(base, new)),
        different_machine=bool(machine),
        machine_changes=tuple(machine),
        base_date=_date(base),
        new_date=_date(new),
        alpha=alpha,
        corrected=correct,
    )


def _tests(
    measures: Mapping[str, tuple[Measure, Measure]],
    alpha: float,
    min_effect: float,
    correct: bool,
) -> dict[str, Significance]:
    """The test of new against base at each point both measured, adjusted for their
    number (Benjamini-Hochberg) when ``correct``."""
    tests = {
        k: compare_measures(nm, bm, alpha=alpha, min_effect=min_effect)
        for k, (bm, nm) in measures.items()
        if bm.ok and nm.ok
    }
    return _adjust(tests, alpha, min_effect) if correct else tests


def _point_change(
    key: str, row: Mapping[str, Any], bm: Measure, nm: Measure, test: Significance | None
) -> PointChange:
    """One common point and its change: slower, faster or the same where both ran,
    else which side fails."""
    if test is not None:
        change = (SLOWER if test.ratio > 1 else FASTER) if test.decisive else SAME
    elif bm.ok:
        change = NOW_FAILING
    elif nm.ok:
        change = NOW_WORKING
    elif "error" in (bm.status, nm.status):
        change = FAILS_IN_BOTH
    else:
        change = NOT_MEASURED
    layer, impl, phase = (str(row.get(k)) for k in ("layer", "impl", "phase"))
    return PointChange(key, layer, impl, phase, bm, nm, test, change)


def _geomeans(points: Sequence[PointChange]) -> tuple[GeoMean, ...]:
    """The geometric mean of new/base per layer and implementation, by phase and over
    all phases, of the points with a ratio."""
    groups: dict[tuple[str, str], dict[str, list[float]]] = {}
    for p in points:
        if p.ratio is not None and p.ratio > 0:
            groups.setdefault((p.layer, p.impl), {}).setdefault(p.phase, []).append(p.ratio)
    return tuple(
        GeoMean(
            layer,
            impl,
            {phase: geomean(v) for phase, v in by_phase.items()},
            geomean([r for v in by_phase.values() for r in v]),
            sum(len(v) for v in by_phase.values()),
        )
        for (layer, impl), by_phase in groups.items()
    )


def _date(results: Results) -> str | None:
    value = results.environment.get("date") or results.run.get("created")
    return None if value is None else str(value)


def compare_runs(
    base_path: str | os.PathLike[str],
    new_path: str | os.PathLike[str],
    threshold_pct: float = 5.0,
    correct: bool = True,
) -> Comparison:
    """Load two results folders and compare them; ``ResultsError`` for bad input.
    ``notes`` says what was rebuilt from raw/ and which run is incomplete."""
    base = load_results(base_path, rebuild=rebuild_from_raw)
    new = load_results(new_path, rebuild=rebuild_from_raw)
    cmp = compare_results(base, new, threshold_pct, correct=correct)
    notes = []
    for label, results in (("base", base), ("new", new)):
        notes += [f"{label}: {note}" for note in results.notes]
        reason = incomplete_reason(results.run)
        if reason is not None:
            notes.append(f"{label}: the run is incomplete ({reason})")
    return replace(cmp, notes=tuple(notes))


def _pct(ratio: float) -> str:
    return f"{100 * (ratio - 1):+.1f}%"


def _measure_cell(m: Measure) -> str:
    if m.ok and m.median is not None:
        return fmt_seconds(m.median)
    if m.status == "unsupported":
        return "n/a (unsupported)"
    return cell(m.status)


def _short(text: str | None, limit: int = 100) -> str:
    text = " ".join((text or "no message").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _change_cell(p: PointChange) -> str:
    if p.change == NOW_FAILING or (p.change == FAILS_IN_BOTH and p.new.status == "error"):
        return cell(f"{p.change}: {_short(p.new.error)}")
    if p.change == FAILS_IN_BOTH:
        return cell(f"{p.change}: {_short(p.base.error)}")
    return p.change


def _point_rows(points: Sequence[PointChange]) -> list[list[str]]:
    rows = []
    for p in points:
        rows.append(
            [
                f"`{cell(p.case)}`",
                _measure_cell(p.base),
                _measure_cell(p.new),
                "—" if p.ratio is None else f"{p.ratio:.3f} ({_pct(p.ratio)})",
                "—" if p.test is None else cell(p.test.describe),
                _change_cell(p),
            ]
        )
    return rows


_POINT_HEADER = ["case", "base", "new", "new / base", "test", "change"]


def _left_out(keys: Sequence[str], limit: int = 20) -> list[str]:
    lines = [f"- `{k}`" for k in keys[:limit]]
    if len(keys) > limit:
        lines.append(f"- … and {len(keys) - limit} more")
    return lines


def format_comparison(cmp: Comparison) -> str:
    """The comparison as Markdown: flags, slowdowns first, geometric means, every point."""
    out = _comparison_head(cmp)
    out += _comparison_points(cmp)
    out += _comparison_geomeans(cmp)
    out += ["## Other common points", ""]
    others = [p for p in cmp.points if p.change not in (SLOWER, FASTER, NOW_FAILING)]
    out += _points_table(others, "None besides those above.")
    out += _comparison_left_out(cmp)
    return "\n".join(out).rstrip("\n") + "\n"


def _points_table(points: Sequence[PointChange], empty: str) -> list[str]:
    if not points:
        return [empty, ""]
    return [md_table(_POINT_HEADER, _point_rows(points), ["l", "r", "r", "r", "l", "l"]), ""]


def _comparison_head(cmp: Comparison) -> list[str]:
    """Title, how to read it, notes, machine and settings warnings, the one-line summary."""
    t = cmp.threshold_pct
    out = [
        "# Comparison",
        "",
        f"- base: `{cmp.base_path}`" + (f" ({cmp.base_date})" if cmp.base_date else ""),
        f"- new: `{cmp.new_path}`" + (f" ({cmp.new_date})" if cmp.new_date else ""),
        "",
        "Ratios are new time / base time (above 1: slower). A change counts when it is "
        f"significant (Mann-Whitney U on pyperf's raw values, p < {cmp.alpha:g}"
        + (
            ", p-values adjusted for the number of points compared (Benjamini-Hochberg)"
            if cmp.corrected
            else ""
        )
        + f"; non-overlapping min-max ranges where raw values are missing) and beyond ±{t:g}%.",
        "",
    ]
    out += [f"**Note**: {cell(note)}." for note in cmp.notes] + ([""] if cmp.notes else [])
    if cmp.different_machine:
        out += [
            "**Different machines**: "
            + "; ".join(cell(c) for c in cmp.machine_changes)
            + ": timings are not comparable; a change below may be the machine's, "
            "not the code's.",
            "",
        ]
    if cmp.differences:
        out += [
            "**Warning: the runs come from different machines, versions or profiles**; "
            "part of any change may be theirs:",
            "",
            *[f"- {cell(d)}" for d in cmp.differences],
            "",
        ]
    if cmp.only_in_base or cmp.only_in_new:
        out += [
            f"The grids differ: compared on the {len(cmp.points)} common points; "
            f"{len(cmp.only_in_base)} only in base, {len(cmp.only_in_new)} only in new "
            "(listed at the end).",
            "",
        ]
    summary = (
        f"{len(cmp.slowdowns)} slower beyond {t:g}%, {len(cmp.speedups)} faster, "
        f"{len(cmp.newly_failing)} now failing, of {len(cmp.points)} common points; "
        f"worst significant slowdown {cmp.worst_significant_slowdown_pct:+.1f}%."
    )
    return [*out, f"**{summary}**", ""]


def _comparison_points(cmp: Comparison) -> list[str]:
    """Slower, now failing, faster: the points that changed."""
    t = cmp.threshold_pct
    out = [f"## Slower beyond {t:g}%", "", *_points_table(cmp.slowdowns, "None.")]
    if cmp.newly_failing:
        out += ["## Now failing", "", *_points_table(cmp.newly_failing, "None.")]
    out += [f"## Faster beyond {t:g}%", "", *_points_table(cmp.speedups, "None.")]
    return out


def _comparison_geomeans(cmp: Comparison) -> list[str]:
    out = ["## Geometric mean of new / base per layer and implementation", ""]
    if not cmp.geomeans:
        return [*out, "No point succeeded in both runs.", ""]
    phases = sorted(
        {ph for g in cmp.geomeans for ph in g.by_phase}, key=lambda p: (p != "forward", p)
    )
    body = [
        [cell(g.layer), cell(g.impl)]
        + [f"{g.by_phase[ph]:.3f}" if ph in g.by_phase else "—" for ph in phases]
        + [f"{g.overall:.3f} ({_pct(g.overall)})", str(g.points)]
        for g in cmp.geomeans
    ]
    return [
        *out,
        md_table(
            ["layer", "implementation", *phases, "all", "points"],
            body,
            ["l", "l"] + ["r"] * (len(phases) + 2),
        ),
        "",
    ]


def _comparison_left_out(cmp: Comparison) -> list[str]:
    if not (cmp.only_in_base or cmp.only_in_new):
        return []
    out = ["## Left out", ""]
    if cmp.only_in_base:
        out += [f"Only in base ({len(cmp.only_in_base)}):", "", *_left_out(cmp.only_in_base), ""]
    if cmp.only_in_new:
        out += [f"Only in new ({len(cmp.only_in_new)}):", "", *_left_out(cmp.only_in_new), ""]
    return out
