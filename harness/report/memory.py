"""The report's memory parts: peak bytes of one call per implementation, size and phase.

Pure functions over a layer's rows of the results frame, whose ``peak_bytes`` column
holds the peak allocated during one call above what was live before it (the sum over
the counted allocators, see :mod:`harness.memory`) and ``peak_sources`` says what was
counted (``numpy+torch-cpu; not counted: onnxruntime arena``). A frame without those
columns, or with no peak recorded, gives ``None`` everywhere.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from harness.report._data import Setting, impl_order, records, settings
from harness.report._data import size_axis as find_size_axis
from harness.report.plots import _colors, _figure, _save, _size_ticks, _title
from harness.text import cell, fmt_size, md_table

__all__ = ["fmt_bytes", "memory_finding", "memory_table", "plot_memory"]

_PHASES = ("forward", "backward", "step")
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
_NOT_COUNTED = "not counted:"


def fmt_bytes(n: float | None) -> str:
    """``3_984_588`` -> ``3.8 MiB``; ``12_582_912`` -> ``12 MiB``; ``512`` -> ``512 B``
    (binary units, two significant digits below 10, whole numbers above)."""
    if n is None or (isinstance(n, float) and not math.isfinite(n)):
        return "—"
    value = float(n)
    unit = _UNITS[0]
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            break
        value /= 1024
    if unit == "B":
        return f"{value:.0f} B"
    return f"{value:.1f} {unit}" if abs(value) < 10 else f"{value:.0f} {unit}"


def _peak_rows(layer_frame: pd.DataFrame) -> list[dict[str, Any]]:
    if "peak_bytes" not in layer_frame.columns:
        return []
    return records(layer_frame)


def _peak(row: Mapping[str, Any]) -> int | None:
    value = row.get("peak_bytes")
    return None if value is None else int(value)


def _missed(row: Mapping[str, Any]) -> list[str]:
    """The sources a row says were not counted (``onnxruntime arena``)."""
    text = str(row.get("peak_sources") or "")
    _, sep, rest = text.partition(_NOT_COUNTED)
    return [s.strip() for s in rest.split(",") if s.strip()] if sep else []


def _by_size(setting: Setting, impl: str, phase: str) -> dict[float, Mapping[str, Any]]:
    return {
        float(r["size"]): r
        for r in setting.rows_for(impl, phase)
        if r.get("size") is not None and _peak(r) is not None
    }


def memory_table(layer_frame: pd.DataFrame, axis: str | None = None) -> str | None:
    """Peak bytes of one call, implementations as rows and sizes as columns, one table per
    phase (and setting of the other axes); ``—`` where no peak was measured. A cell whose
    measurement left an allocator out reads ``≥ …`` (a lower bound), the allocator named
    below the tables. ``None`` when no peak was recorded."""
    rows = _peak_rows(layer_frame)
    if not any(_peak(r) is not None for r in rows):
        return None
    axis = find_size_axis(rows)
    parts: list[str] = []
    missed: list[str] = []
    for setting in settings(rows, axis):
        sizes = sorted({float(r["size"]) for r in setting.rows if r.get("size") is not None})
        for phase in _PHASES:
            phase_rows = [r for r in setting.rows if r.get("phase") == phase]
            body = []
            for impl in impl_order(phase_rows):
                by_size = _by_size(setting, impl, phase)
                if not by_size:
                    continue
                role = by_size[min(by_size)].get("role")
                cells = [cell(f"{impl} (baseline)" if role == "baseline" else impl)]
                for size in sizes:
                    row = by_size.get(size)
                    if row is None:
                        cells.append("—")
                        continue
                    lacking = _missed(row)
                    missed += [m for m in lacking if m not in missed]
                    cells.append(("≥ " if lacking else "") + fmt_bytes(_peak(row)))
                body.append(cells)
            if not body:
                continue
            title = phase.capitalize() + (f", {setting.label}" if setting.label else "")
            header = ["implementation"] + [f"{axis}={fmt_size(s)}" for s in sizes]
            parts.append(f"**{title}**\n\n{md_table(header, body)}")
    legend = (
        "Cells: peak bytes allocated during one call above what was live before it, "
        "the result included, summed over the allocators counted (NumPy through "
        "tracemalloc, torch's CPU allocator through its profiler, CUDA); "
        "— where not measured."
    )
    if missed:
        legend += f" ≥: a lower bound, not counting {', '.join(missed)}."
    return "\n\n".join([*parts, legend])


def _bytes_label(v: float, _: Any) -> str:
    return fmt_bytes(v)


def plot_memory(
    layer_frame: pd.DataFrame, path: str | os.PathLike[str], axis: str | None = None
) -> Path | None:
    """Peak bytes of one call against size, log-log, one line per implementation, forward
    solid and backward dashed, one panel per setting; ``None`` when nothing to plot."""
    rows = _peak_rows(layer_frame)
    if not any(_peak(r) is not None and r.get("size") is not None for r in rows):
        return None
    axis = find_size_axis(rows)
    layer = str(rows[0]["layer"]) if rows else ""
    groups = [g for g in settings(rows, axis) if any(_peak(r) is not None for r in g.rows)]
    colors = _colors(impl_order(rows))
    fig, axes = _figure(len(groups), 1)
    for i, setting in enumerate(groups):
        ax = axes[i][0]
        sizes = sorted({float(r["size"]) for r in setting.rows if r.get("size") is not None})
        peaks = [p for r in setting.rows if (p := _peak(r)) is not None and p > 0]
        floor = min(peaks) / 2 if peaks else 1.0
        for impl in impl_order(setting.rows):
            for phase in _PHASES:
                by_size = _by_size(setting, impl, phase)
                if not by_size:
                    continue
                xs = sorted(by_size)
                ys = [max(float(_peak(by_size[s]) or 0), floor) for s in xs]
                lower = any(_missed(by_size[s]) for s in xs)
                ax.plot(
                    xs,
                    ys,
                    {"step": "-", "forward": "--"}.get(phase, ":"),
                    marker="o",
                    ms=3,
                    color=colors[impl],
                    label=f"{impl}, {phase}" + (" (lower bound)" if lower else ""),
                )
        ax.set_xscale("log")
        ax.set_yscale("log", base=2)  # ticks at powers of two: 1 KiB, 4 KiB, 16 KiB
        ax.yaxis.set_major_locator(LogLocator(base=2, numticks=9))
        ax.yaxis.set_major_formatter(FuncFormatter(_bytes_label))
        ax.yaxis.set_minor_formatter(NullFormatter())
        _size_ticks(ax, sizes)
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
        ax.set_xlabel(f"{axis} (size)")
        ax.set_ylabel("peak bytes of one call")
        ax.set_title(_title(layer, setting, "peak memory"))
        ax.grid(True, which="major", alpha=0.3)
    return _save(fig, path)


def _metric(
    by_size: Mapping[tuple[str, str], Mapping[float, Mapping[str, Any]]],
    baseline: str,
    native: str,
    size: float,
) -> tuple[int, int, str]:
    """Baseline and native bytes at ``size``, and what they are: the peak of a whole
    training step where both sides have one (what training needs), else the sum of the
    forward and backward peaks where both have both (folders from before the step),
    else the forward peaks."""
    peaks = {
        (impl, phase): _peak(row)
        for impl in (baseline, native)
        for phase in _PHASES
        if (row := by_size[impl, phase].get(size)) is not None
    }
    if all(peaks.get((impl, "step")) for impl in (baseline, native)):
        return (
            peaks[baseline, "step"] or 0,
            peaks[native, "step"] or 0,
            "peak of a training step",
        )
    if all((impl, "backward") in peaks for impl in (baseline, native)):
        return (
            (peaks[baseline, "forward"] or 0) + (peaks[baseline, "backward"] or 0),
            (peaks[native, "forward"] or 0) + (peaks[native, "backward"] or 0),
            "forward + backward peak",
        )
    return peaks[baseline, "forward"] or 0, peaks[native, "forward"] or 0, "forward peak"


def _fmt_ratio(ratio: float) -> str:
    return f"{ratio:.2g}×" if ratio < 10 else f"{ratio:.0f}×"


def _setting_finding(
    setting: Setting,
    baseline: str,
    native: str,
    size_axis: str,
    factor: float,
    skip: Collection[float] = (),
) -> str | None:
    by_size = {
        (impl, phase): _by_size(setting, impl, phase)
        for impl in (baseline, native)
        for phase in _PHASES
    }
    sizes = sorted(set(by_size[baseline, "forward"]) & set(by_size[native, "forward"]) - set(skip))
    for size in reversed(sizes):
        b_bytes, n_bytes, what = _metric(by_size, baseline, native, size)
        ratio = max(b_bytes, 1) / max(n_bytes, 1)
        lacks = {
            impl: [m for phase in _PHASES for m in _missed(by_size[impl, phase].get(size) or {})]
            for impl in (baseline, native)
        }
        # a lower bound (an allocator not counted) supports "more" of its own side only
        # (2026-12-02: "48610× less memory ... 43 MiB vs 927 B; not counting onnxruntime
        # arena", where the output alone is 7.8 MiB)
        if ratio > factor and not lacks[native]:
            change = f"{_fmt_ratio(ratio)} less"
        elif 1 / ratio > factor and not lacks[baseline]:
            change = f"{_fmt_ratio(1 / ratio)} more"
        else:
            continue
        where = f"{size_axis}={fmt_size(size)}" + (f", {setting.label}" if setting.label else "")
        missed = list(dict.fromkeys(lacks[baseline] + lacks[native]))
        caveat = f"; not counting {', '.join(missed)}" if missed else ""
        return (
            f"Porting also needs {change} memory at {where} "
            f"({what}: {fmt_bytes(b_bytes)} vs {fmt_bytes(n_bytes)}{caveat})."
        )
    return None


def memory_finding(
    layer_frame: pd.DataFrame,
    baseline: str,
    native: str,
    size_axis: str,
    factor: float = 2.0,
    skip: Collection[float] = (),
) -> str | None:
    """The sentence a verdict adds when porting ``baseline`` to ``native`` changes the
    peak memory of a call by more than ``factor`` at some size: ``Porting also needs
    3.1× less memory at n=1024 (forward + backward peak: 12 MiB vs 3.9 MiB).``

    Compared on the sum of the forward and backward peaks where both implementations
    have both, else on forward; the largest size where the ratio exceeds ``factor`` is
    named, never one of ``skip`` (where the verdict's point failed: a candidate that
    fails or is wrong there is no port to weigh memory for). One sentence per setting of
    the other axes that qualifies (labelled when the layer has several); ``None`` when no
    size qualifies."""
    rows = _peak_rows(layer_frame)
    if not rows:
        return None
    found = [
        s
        for setting in settings(rows, size_axis)
        if (s := _setting_finding(setting, baseline, native, size_axis, factor, skip)) is not None
    ]
    return " ".join(found) if found else None
