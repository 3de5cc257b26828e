"""The report's figures: matplotlib on the Agg backend, one PNG per function call.

Each function takes one layer's rows and an output path, draws one panel per setting
(``k=3``, ``k=15``) and returns the path. Failed points are marked with a red ``x``
on the size axis, so a missing line segment never reads as "not measured".
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from harness.report._data import Setting, impl_order, records, settings, size_axis
from harness.report.decide import compared_baseline
from harness.results import atomic_write_bytes
from harness.text import fmt_size

__all__ = ["plot_deviations", "plot_speedups", "plot_times"]

#: The training step (what training verdicts are decided on), then its two parts.
_PHASES = ("step", "forward", "backward")
_STYLE = {"step": "-", "forward": "--", "backward": ":"}
#: The phases verdicts are decided on: training (step) and inference (forward).
_VERDICT_PHASES = ("step", "forward")


def _figure(rows: int, cols: int) -> tuple[Figure, list[list[Axes]]]:
    fig, axes = plt.subplots(
        rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False, constrained_layout=True
    )
    return fig, [list(r) for r in axes]


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=110)
    finally:
        plt.close(fig)
    atomic_write_bytes(out, buffer.getvalue())
    return out


def _finite(value: Any) -> bool:
    """A number that is neither missing, NaN nor infinite."""
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _size_ticks(ax: Axes, sizes: Sequence[float]) -> None:
    """Ticks at the grid sizes, skipping any too close to the previous one to read."""
    ticks: list[float] = []
    for size in sorted(sizes):
        if not ticks or size / ticks[-1] >= 1.4:
            ticks.append(size)
    if ticks:
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_size(v)))
        ax.xaxis.set_minor_formatter(NullFormatter())


def _log_y(ax: Axes, label: Callable[[float, Any], str]) -> None:
    """Log y axis with 1-2-5 ticks on short ranges, decades on long ones, all labelled
    by ``label`` (no ``6×10^-1`` minor labels)."""
    ax.set_yscale("log")
    bottom, top = ax.get_ylim()
    decades = math.log10(top / bottom) if bottom > 0 and top > bottom else 1.0
    subs = (1.0, 2.0, 5.0) if decades <= 2 else (1.0, 3.0) if decades <= 4 else (1.0,)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(FuncFormatter(label))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _seconds_label(v: float, _: Any) -> str:
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")):
        if v >= scale:
            return f"{v / scale:g} {unit}"
    return f"{v:g} s"


def _mark_failures(ax: Axes, failures: Sequence[float], impl: str, color: Any) -> None:
    """Red crosses on the size axis where ``impl`` failed (edged in its line colour)."""
    if failures:
        ax.scatter(
            failures,
            [0.03] * len(failures),
            marker="X",
            s=60,
            color="red",
            edgecolors=[color],
            linewidths=0.8,
            transform=ax.get_xaxis_transform(),
            label=f"{impl} failed",
            zorder=5,
            clip_on=False,
        )


def _series(
    setting: Setting, impl: str, phase: str, key: str
) -> list[tuple[float, Mapping[str, Any]]]:
    pts = [
        (float(r["size"]), r)
        for r in setting.rows_for(impl, phase)
        if r.get("size") is not None and r.get("status") == "ok" and r.get(key) is not None
    ]
    return sorted(pts, key=lambda p: p[0])


def _failures(setting: Setting, impl: str, phase: str) -> list[float]:
    return sorted(
        float(r["size"])
        for r in setting.rows_for(impl, phase)
        if r.get("status") == "error" and r.get("size") is not None
    )


def _title(layer: str, setting: Setting, extra: str) -> str:
    parts = [layer, extra]
    if setting.label:
        parts.append(setting.label)
    return ", ".join(parts)


def _colors(impls: Sequence[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {impl: cmap(i % 10) for i, impl in enumerate(impls)}


def plot_times(
    layer_frame: pd.DataFrame, path: str | os.PathLike[str], axis: str | None = None
) -> Path:
    """Median seconds per call against size, log-log, one line per implementation with
    its min-max band; forward and backward side by side, one row per setting."""
    rows = records(layer_frame)
    axis = axis or size_axis(rows)
    layer = str(rows[0]["layer"]) if rows else ""
    groups = settings(rows, axis)
    colors = _colors(impl_order(rows))
    fig, axes = _figure(max(1, len(groups)), len(_PHASES))
    for i, setting in enumerate(groups):
        sizes = sorted({float(r["size"]) for r in setting.rows if r.get("size") is not None})
        for j, phase in enumerate(_PHASES):
            ax = axes[i][j]
            drawn = failed = False
            for impl in impl_order(setting.rows):
                pts = _series(setting, impl, phase, "median_s")
                fails = _failures(setting, impl, phase)
                label = impl + (
                    " (baseline)"
                    if setting.rows_for(impl, phase)
                    and setting.rows_for(impl, phase)[0].get("role") == "baseline"
                    else ""
                )
                if pts:
                    xs = [p[0] for p in pts]
                    ax.plot(
                        xs,
                        [p[1]["median_s"] for p in pts],
                        marker="o",
                        ms=3,
                        color=colors[impl],
                        label=label,
                    )
                    lo = [p[1].get("min_s") or p[1]["median_s"] for p in pts]
                    hi = [p[1].get("max_s") or p[1]["median_s"] for p in pts]
                    ax.fill_between(xs, lo, hi, color=colors[impl], alpha=0.2, linewidth=0)
                    drawn = True
                _mark_failures(ax, fails, impl, colors[impl])
                failed = failed or bool(fails)
            if drawn:
                ax.set_xscale("log")
                _log_y(ax, _seconds_label)
                _size_ticks(ax, sizes)
                ax.legend(fontsize="small")
            else:
                what = "every point failed" if failed else "not measured"
                ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes)
            ax.set_xlabel(f"{axis} (size)")
            ax.set_ylabel("time per call (median, min-max band)")
            ax.set_title(_title(layer, setting, phase))
            ax.grid(True, which="major", alpha=0.3)
    return _save(fig, path)


def plot_speedups(
    layer_frame: pd.DataFrame, path: str | os.PathLike[str], axis: str | None = None
) -> Path:
    """Paired speedup of each candidate over the baseline against size, log-log, with its
    95% interval as a band; forward solid and backward dashed; the ±5% band shaded."""
    rows = records(layer_frame)
    axis = axis or size_axis(rows)
    layer = str(rows[0]["layer"]) if rows else ""
    groups = settings(rows, axis)
    colors = _colors(impl_order(rows))
    fig, axes = _figure(max(1, len(groups)), 1)
    for i, setting in enumerate(groups):
        ax = axes[i][0]
        base = compared_baseline(setting.rows)
        sizes = sorted({float(r["size"]) for r in setting.rows if r.get("size") is not None})
        ratios: list[float] = []
        for impl in impl_order(setting.rows):
            if impl == base or base is None:
                continue
            for phase in _VERDICT_PHASES:
                pts = _series(setting, impl, phase, "speedup")
                if pts:
                    xs = [p[0] for p in pts]
                    est = [float(p[1]["speedup"]) for p in pts]
                    lo = [
                        float(p[1].get("speedup_low") or e) for p, e in zip(pts, est, strict=True)
                    ]
                    hi = [
                        min(float(p[1].get("speedup_high") or e), 1e3 * e)
                        for p, e in zip(pts, est, strict=True)
                    ]
                    ratios += est
                    ax.plot(
                        xs,
                        est,
                        _STYLE[phase],
                        marker="o",
                        ms=3,
                        color=colors[impl],
                        label=f"{impl}, {'training step' if phase == 'step' else 'inference forward'}",
                    )
                    ax.fill_between(xs, lo, hi, color=colors[impl], alpha=0.15, linewidth=0)
        ax.axhline(1.0, color="black", linewidth=1.2, label="1× (same speed)")
        ax.axhspan(1 / 1.05, 1.05, color="grey", alpha=0.2, linewidth=0, label="±5% band")
        if ratios:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_ylim(min(min(ratios), 1.0) / 1.3, max(max(ratios), 1.0) * 1.3)
            _log_y(ax, lambda v, _: f"×{v:g}")
            _size_ticks(ax, sizes)
        else:
            ax.text(
                0.5,
                0.5,
                "no native and baseline both measured",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
        ax.set_xlabel(f"{axis} (size)")
        ax.set_ylabel(f"speedup over {base or 'baseline'} (× faster)")
        ax.set_title(_title(layer, setting, "speedup (above 1: native faster)"))
        ax.grid(True, which="major", alpha=0.3)
        # up to two lines per native form: outside the axes, so no line is hidden
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)


def plot_deviations(
    layer_frame: pd.DataFrame,
    path: str | os.PathLike[str],
    axis: str | None = None,
) -> Path:
    """Max relative error against the float64 reference against size, log-log, one line
    per implementation and phase, with the dtype's tolerance dashed. Exact zeros are
    drawn at the bottom of the axis."""
    rows = records(layer_frame)
    axis = axis or size_axis(rows)
    layer = str(rows[0]["layer"]) if rows else ""
    groups = settings(rows, axis)
    colors = _colors(impl_order(rows))
    fig, axes = _figure(max(1, len(groups)), 1)
    for i, setting in enumerate(groups):
        ax = axes[i][0]
        sizes = sorted({float(r["size"]) for r in setting.rows if r.get("size") is not None})
        # NaN/inf errors (a non-finite output) cannot be drawn on a log axis: the
        # report's text calls them out instead
        positive = [
            float(r["max_rel_err"])
            for r in setting.rows
            if _finite(r.get("max_rel_err")) and float(r["max_rel_err"]) > 0
        ]
        floor = min(positive) / 10 if positive else 1e-16
        drawn = False
        for impl in impl_order(setting.rows):
            for phase in _PHASES:
                pts = _series(setting, impl, phase, "max_rel_err")
                pts = [(x, r) for x, r in pts if _finite(r.get("max_rel_err"))]
                if not pts:
                    continue
                ys = [max(float(r["max_rel_err"]), floor) for _, r in pts]
                what = "output" if phase == "forward" else "gradients"
                ax.plot(
                    [p[0] for p in pts],
                    ys,
                    _STYLE[phase],
                    marker="o",
                    ms=3,
                    color=colors[impl],
                    label=f"{impl}, {what}",
                )
                drawn = True
        tols = sorted({float(r["rtol"]) for r in setting.rows if r.get("rtol") is not None})
        for tol in tols:
            ax.axhline(tol, color="grey", linestyle=":", label=f"tolerance {tol:g}")
        if drawn:
            ax.set_xscale("log")
            _log_y(ax, lambda v, _: f"{v:.0e}" if v < 0.01 else f"{v:g}")
            _size_ticks(ax, sizes)
            ax.legend(fontsize="small")
        else:
            ax.text(
                0.5, 0.5, "no deviation recorded", ha="center", va="center", transform=ax.transAxes
            )
        ax.set_xlabel(f"{axis} (size)")
        ax.set_ylabel("max relative error vs float64 reference")
        ax.set_title(_title(layer, setting, "deviation"))
        ax.grid(True, which="major", alpha=0.3)
    return _save(fig, path)
