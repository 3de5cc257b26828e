"""What the report says before its summary when a folder is not what it seems: a run
cut short (incomplete), NaN/inf in a layer's inputs or outputs, and rows timed with
another allocator than the one asked for.

Pure: rows in, Markdown lines out (``markdown.render_report`` places them).
"""

from __future__ import annotations

import math
from typing import Any

from harness.report._data import records
from harness.results import Results

__all__ = ["allocator_findings", "fault_lines", "incomplete_reason", "nonfinite_findings"]


def incomplete_reason(run: dict[str, Any]) -> str | None:
    """Why a run is incomplete, from its run.json (``"complete": false`` and
    ``"stopped"``, written by the runner), or None for a complete or older run."""
    if run.get("complete", True) is not False:
        return None
    return str(run.get("stopped") or "it was interrupted, killed or ran out of disk space")


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def nonfinite_findings(results: Results) -> list[str]:
    """One sentence per layer, implementation and phase with NaN/inf: ``inputs contain
    NaN/inf`` where the float64 reference has them too (``max_abs_err`` infinite, no
    relative error), ``output has NaN/inf where the reference has none`` otherwise
    (both errors infinite; see ``harness.deviation.compare_tensors``)."""
    found: dict[tuple[str, str], list[str]] = {}
    for row in records(results.frame):
        if row.get("status") != "ok":
            continue
        abs_err, rel_err = _number(row.get("max_abs_err")), _number(row.get("max_rel_err"))
        if abs_err is None or math.isfinite(abs_err):
            continue
        if rel_err is None or math.isnan(rel_err):
            key = (
                str(row.get("layer")),
                "inputs contain NaN/inf (the float64 reference has them too)",
            )
        else:
            key = (
                str(row.get("layer")),
                f"{row.get('impl')}: output has NaN/inf where the reference has none",
            )
        found.setdefault(key, []).append(str(row.get("point")))
    out = []
    for (layer, what), points in found.items():
        where = ", ".join(dict.fromkeys(points))
        if len(where) > 120:
            where = where[:119].rstrip(", ") + "…"
        out.append(f"`{layer}`: {what} (at {where})")
    return out


def allocator_findings(results: Results) -> list[str]:
    """One sentence per allocator asked for whose rows were timed with another one
    (``allocator_measured``: a preload that did not take, inherited malloc settings),
    naming the layers; none for a folder from before that column."""
    found: dict[tuple[str, str], list[str]] = {}
    for row in records(results.frame):
        asked, measured = row.get("allocator"), row.get("allocator_measured")
        if asked and measured and measured != asked:
            found.setdefault((str(asked), str(measured)), []).append(str(row.get("layer")))
    return [
        f"rows asked for `{asked}` were timed with `{measured}` "
        f"({', '.join(f'`{layer}`' for layer in dict.fromkeys(layers))})"
        for (asked, measured), layers in found.items()
    ]


def fault_lines(results: Results) -> list[str]:
    """Markdown lines (each followed by a blank one) for the top of the report."""
    out: list[str] = []
    reason = incomplete_reason(results.run)
    if reason is not None:
        out += [
            f"**Incomplete run**: {reason}. What was measured is below; continue it with "
            f"`python -m harness run --resume {results.path}`.",
            "",
        ]
    for finding in nonfinite_findings(results):
        out += [f"**Non-finite values**: {finding}; its deviation is not plotted.", ""]
    for finding in allocator_findings(results):
        out += [
            f"**Allocator not as asked**: {finding}; their timings are of that allocator "
            "(see `allocator_measured` in results.csv).",
            "",
        ]
    return out
