"""Verdicts weighed by their share of the training step (``--scan DIR``).

A scan (``python -m harness scan``) says how much of the profiled step each custom
Function took. With it, each layer's verdict gets what it is worth to the step, by
Amdahl's law: a layer that is a share ``s`` of the step, made ``×k`` faster, saves
``s × (1 - 1/k)`` of the step. The lines are ordered by that saving.

``share_lines(scan, decisions)`` is pure; ``scan_section(folder, decisions)`` reads
the ``scan.json`` kept in a results folder (``attach_scan`` puts it there) and is the
report's one call site. No torch here.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

__all__ = [
    "SCAN_JSON",
    "Saving",
    "attach_scan",
    "check_scan",
    "savings",
    "scan_section",
    "share_lines",
]

SCAN_JSON = "scan.json"


@dataclass(frozen=True)
class Saving:
    """What porting one layer is worth to the step."""

    layer: str
    share: float
    shape: str
    speedup: float | None
    candidate: str | None
    saving: float | None
    """Share of the step saved (negative: porting would cost time); None: no speedup."""
    decided: bool = True
    """The speedup's interval lies outside the noise band (the point is decided)."""
    low: float | None = None
    high: float | None = None


def _speedup_at(decision: Any, size: float | None) -> tuple[Any, str | None]:
    """The best candidate's point (speedup, interval, side) at ``size`` (else the point
    nearest to it), over the layer's settings (the first setting that has one)."""
    for s in getattr(decision, "settings", ()):
        points = [p for p in s.points if p.speedup is not None]
        if not points:
            compiled = getattr(s, "compiled", None)
            points = [p for p in (compiled.points if compiled else ()) if p.speedup is not None]
            name = compiled.impl if compiled else None
        else:
            name = s.native
        if not points:
            continue
        if size is None:
            best = points[0]
        else:
            best = min(points, key=lambda p: (abs(float(p.size) - size), float(p.size)))
        return best, name
    return None, None


def _shape_text(function: Mapping[str, Any]) -> str:
    shapes = function.get("shapes") or []
    if not shapes:
        return "its shapes"
    return ", ".join(str(list(s)) for s in shapes[0][0])


def _size_of(function: Mapping[str, Any]) -> float | None:
    """The largest dimension of the first input of the most frequent signature (what
    ``harness.scan_layers`` makes the size axis ``n`` for a single shape)."""
    shapes = function.get("shapes") or []
    if not shapes or not shapes[0][0] or not shapes[0][0][0]:
        return None
    return float(max(shapes[0][0][0]))


def savings(scan: Mapping[str, Any], decisions: Sequence[Any]) -> list[Saving]:
    """One ``Saving`` per decided layer that the scan found, largest saving first
    (layers without a speedup last, by share)."""
    by_name = {str(f.get("name")): f for f in scan.get("functions") or []}
    out = []
    for d in decisions:
        f = by_name.get(str(d.layer))
        if f is None:
            continue
        share = float(f.get("share") or 0.0)
        # the grid point of the most frequent shape: index 0 on a 'shape' axis
        size = 0.0 if getattr(d, "size_axis", None) == "shape" else _size_of(f)
        point, candidate = _speedup_at(d, size)
        speedup = float(point.speedup) if point is not None else None
        saving = share * (1 - 1 / speedup) if speedup else None
        decided = point is not None and getattr(point, "side", "native") in (
            "native",
            "baseline",
            "tie",
        )
        low, high = (getattr(point, "low", None), getattr(point, "high", None))
        out.append(
            Saving(
                str(d.layer),
                share,
                _shape_text(f),
                speedup,
                candidate,
                saving,
                decided,
                float(low) if low is not None else None,
                float(high) if high is not None else None,
            )
        )
    # decided savings first, largest first; then undecided ones; then none
    out.sort(key=lambda s: (s.saving is None, not s.decided, -(s.saving or 0.0), -s.share))
    return out


def share_lines(scan: Mapping[str, Any], decisions: Sequence[Any]) -> list[str]:
    """The report's section "Share of your step" (Markdown lines), or ``[]`` when no
    decided layer came from the scan."""
    rows = savings(scan, decisions)
    if not rows:
        return []
    kinds = {str(d.layer): str(d.kind) for d in decisions}
    lines = [
        "## Share of your step",
        "",
        f"From the scan of `{Path(str(scan.get('script', '?'))).name}` "
        f"({float(scan.get('profiled_s') or 0):.2f} s profiled"
        + (f" on {scan['date'][:10]}" if scan.get("date") else "")
        + "). A layer that is a share s of the step, made ×k faster, saves s × (1 − 1/k) "
        "of it (Amdahl); largest saving first.",
        "",
    ]
    for r in rows:
        head = f"- **{r.layer}** is {_pct(r.share)} of your step"
        if r.speedup is None or r.saving is None:
            lines.append(
                f"{head}; no candidate's speedup was weighed (none was measured, or "
                "each was wrong against the reference: see its verdict), so no saving to weigh "
                f"(verdict: {kinds.get(r.layer, '?')})."
            )
        elif not r.decided:
            interval = f", 95% interval {r.low:.3g}–{r.high:.3g}" if r.low and r.high else ""
            lines.append(
                f"{head}; at {r.shape} the speedup of porting is undecided (×{r.speedup:.2f}"
                f"{interval}, {r.candidate}), so no saving is claimed: measure longer "
                f"(verdict: {kinds.get(r.layer, '?')})."
            )
        elif r.saving >= 0:
            lines.append(
                f"{head}; porting it at {r.shape} (×{r.speedup:.2f}, {r.candidate}) saves about "
                f"{_pct(r.saving)} of the step (verdict: {kinds.get(r.layer, '?')})."
            )
        else:
            lines.append(
                f"{head}; porting it at {r.shape} (×{r.speedup:.2f}, {r.candidate}) would cost "
                f"about {_pct(-r.saving)} more of the step (verdict: {kinds.get(r.layer, '?')})."
            )
    total = sum(r.saving for r in rows if r.saving and r.saving > 0 and r.decided)
    if total:
        lines.append("")
        lines.append(f"Porting every layer that gains saves about {_pct(total)} of the step.")
    return [*lines, ""]


def _pct(share: float) -> str:
    pct = 100 * share
    return f"{pct:.0f}%" if abs(pct) >= 10 or pct == 0 else f"{pct:.1f}%"


def scan_section(folder: str | os.PathLike[str], decisions: Sequence[Any]) -> list[str]:
    """``share_lines`` for the ``scan.json`` kept in a results folder; ``[]`` without one
    (or when it cannot be read: the rest of the report does not depend on it)."""
    path = Path(folder) / SCAN_JSON
    if not path.is_file():
        return []
    try:
        scan = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return share_lines(scan, decisions) if isinstance(scan, Mapping) else []


def check_scan(scan: str | os.PathLike[str]) -> Path:
    """The ``scan.json`` of a scan folder (or the file itself), checked to be a scan;
    ``ConfigError`` when it is missing or is not one (before anything is measured)."""
    source = Path(scan)
    if source.is_dir():
        source = source / SCAN_JSON
    if not source.is_file():
        raise ConfigError(f"{scan}: no {SCAN_JSON} there (write one with python -m harness scan)")
    try:
        data = json.loads(source.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}".splitlines()[0]) from None
    if not isinstance(data, Mapping) or not isinstance(data.get("functions"), list):
        raise ConfigError(f"{source}: not a scan (no functions list)")
    return source


def attach_scan(results: str | os.PathLike[str], scan: str | os.PathLike[str]) -> Path:
    """Copy a scan folder's ``scan.json`` into a results folder (where the report finds
    it). ``ConfigError`` when there is none or it cannot be copied."""
    source = check_scan(scan)
    target = Path(results) / SCAN_JSON
    if not Path(results).is_dir():
        raise ConfigError(f"{results}: not a results folder")
    try:
        shutil.copyfile(source, target)
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write: {exc}".splitlines()[0]) from None
    return target
