"""Reading the results frame the way the report needs it.

A *setting* is everything but the size that identifies a series of measurements: the
values of the other grid axes (``k`` for conv2d), dtype, threads and device. Each
setting of a layer gets its own table rows, plot panel and verdict.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from harness.points import parse_point as _parse_point

__all__ = [
    "Measure",
    "Setting",
    "finite",
    "impl_order",
    "layer_names",
    "measure",
    "parse_point",
    "records",
    "settings",
    "size_axis",
]


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows as dicts, with every missing value (NA, NaN) as ``None``."""
    out: list[dict[str, Any]] = []
    for row in frame.to_dict("records"):
        out.append({str(k): _clean(v) for k, v in row.items()})
    return out


def _clean(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        with contextlib.suppress(AttributeError, ValueError):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def parse_point(point: str | None) -> dict[str, str]:
    """``'n=8,k=3'`` -> ``{'n': '8', 'k': '3'}`` (values kept as written, for labels)."""
    try:
        return {k: str(v) for k, v in _parse_point(point or "").items()}
    except ValueError:
        return {}


def finite(value: Any) -> float | None:
    """``value`` as a finite float, or None (empty, NaN, infinite, not a number): a
    table cell read as a figure."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _num(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def size_axis(rows: Sequence[Mapping[str, Any]]) -> str:
    """The name of the grid axis whose value is the ``size`` column (``'size'`` if none)."""
    votes: dict[str, int] = {}
    for row in rows:
        size = row.get("size")
        if size is None:
            continue
        for key, value in parse_point(row.get("point")).items():
            if _num(value) == float(size):
                votes[key] = votes.get(key, 0) + 1
    if not votes:
        return "size"
    return max(votes, key=lambda k: (votes[k], -list(votes).index(k)))


def layer_names(frame: pd.DataFrame) -> list[str]:
    """Layers in order of first appearance."""
    return list(dict.fromkeys(str(v) for v in frame["layer"].dropna()))


def impl_order(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Implementations, the baseline(s) first, then natives in order of appearance."""
    seen = list(dict.fromkeys(str(r["impl"]) for r in rows if r.get("impl") is not None))
    base = {str(r["impl"]) for r in rows if r.get("role") == "baseline"}
    return [i for i in seen if i in base] + [i for i in seen if i not in base]


@dataclass(frozen=True)
class Setting:
    """One series of a layer: fixed non-size axes, dtype, threads, device, allocator."""

    axes: tuple[tuple[str, str], ...]
    dtype: str
    threads: int | None
    device: str
    label: str
    rows: tuple[Mapping[str, Any], ...]
    size_axis: str = "size"
    allocator: str = ""

    @property
    def context(self) -> str:
        """Dtype, threads, device (and allocator) in words: ``float32, 1 thread, cpu``."""
        text = _context(self.dtype, self.threads, self.device)
        return f"{text}, {self.allocator} allocator" if self.allocator else text

    def rows_for(self, impl: str, phase: str) -> list[Mapping[str, Any]]:
        return list(self._by_impl_phase.get((impl, phase), ()))

    @cached_property
    def _by_impl_phase(self) -> dict[tuple[Any, Any], list[Mapping[str, Any]]]:
        # built once: a scan of every row per call made a report of a 3,000-size grid
        # quadratic (100 s in the memory finding alone)
        index: dict[tuple[Any, Any], list[Mapping[str, Any]]] = {}
        for row in self.rows:
            index.setdefault((row.get("impl"), row.get("phase")), []).append(row)
        return index


def _context(dtype: str, threads: int | None, device: str) -> str:
    parts = [dtype]
    if threads is not None:
        parts.append(f"{threads} thread" + ("" if threads == 1 else "s"))
    parts.append(device)
    return ", ".join(p for p in parts if p)


def _axis_sort(value: str) -> tuple[int, float, str]:
    num = _num(value)
    return (0, num, "") if num is not None else (1, 0.0, value)


def settings(rows: Sequence[Mapping[str, Any]], axis: str | None = None) -> list[Setting]:
    """The settings of one layer's rows, sorted; labels name only what varies.

    ``axis`` is the layer's size axis as run.json records it; folders written before it
    was recorded fall back to the axis whose values equal the ``size`` column."""
    axis = axis or size_axis(rows)
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        axes = tuple((k, v) for k, v in parse_point(row.get("point")).items() if k != axis)
        key = (
            axes,
            str(row.get("dtype") or ""),
            row.get("threads"),
            str(row.get("device") or ""),
            str(row.get("allocator") or ""),
        )
        groups.setdefault(key, []).append(row)
    keys = sorted(
        groups,
        key=lambda k: (
            [(name, _axis_sort(v)) for name, v in k[0]],
            k[1],
            -1 if k[2] is None else k[2],
            k[3],
            k[4],
        ),
    )
    varies = [len({k[i] for k in keys}) > 1 for i in range(5)]
    axis_names = list(dict.fromkeys(name for k in keys for name, _ in k[0]))
    varying_axes = [n for n in axis_names if len({dict(k[0]).get(n) for k in keys}) > 1]
    out = []
    for key in keys:
        axes, dtype, threads, device, allocator = key
        parts = [f"{n}={v}" for n, v in axes if n in varying_axes]
        if varies[1]:
            parts.append(dtype)
        if varies[2]:
            parts.append(_context("", threads, "").strip(", "))
        if varies[3]:
            parts.append(device)
        if varies[4]:
            parts.append(allocator)
        out.append(
            Setting(
                axes,
                dtype,
                threads,
                device,
                ", ".join(parts),
                tuple(groups[key]),
                axis,
                allocator if varies[4] else "",
            )
        )
    return out


@dataclass(frozen=True)
class Measure:
    """One timing (or the failure to get one) of a case, or the sum of two cases."""

    status: str
    median: float | None = None
    min: float | None = None
    max: float | None = None
    stdev: float | None = None
    values: tuple[float, ...] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.median is not None and self.median > 0

    def __add__(self, other: Measure) -> Measure:
        if not (self.ok and other.ok):
            bad = self if not self.ok else other
            return Measure(bad.status, error=bad.error)
        values = None
        if self.values and other.values:
            n = min(len(self.values), len(other.values))
            values = tuple(a + b for a, b in zip(self.values[:n], other.values[:n], strict=True))
        assert self.median is not None and other.median is not None
        return Measure(
            "ok",
            median=self.median + other.median,
            min=_add(self.min, other.min),
            max=_add(self.max, other.max),
            values=values,
        )


def _add(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def measure(row: Mapping[str, Any] | None, raw: Mapping[str, Sequence[float]]) -> Measure:
    """The measure of one frame row (``missing`` when there is no row)."""
    if row is None:
        return Measure("missing")
    status = str(row.get("status") or "error")
    values = raw.get(str(row.get("case")))
    return Measure(
        status,
        median=row.get("median_s"),
        min=row.get("min_s"),
        max=row.get("max_s"),
        stdev=row.get("stdev_s"),
        values=tuple(float(v) for v in values) if values else None,
        error=row.get("error"),
    )


def rebuild_from_raw(folder: Path) -> None:
    """Rewrite a damaged results folder's tables from its raw events. Only a damaged
    folder gets here: rebuilding needs the layers, hence torch, imported now (a floor
    below the report: see the layering in ``harness/__init__.py``)."""
    from harness.rebuild import rebuild_outputs

    rebuild_outputs(folder)
