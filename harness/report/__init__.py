"""The report and the comparison of results folders.

::

    write_report(DIR)             DIR/report.md and DIR/plots/*.png (python -m harness report)
    render_report(results, plots) the Markdown of report.md, written nowhere
    decide_layers(frame, run)     structured verdicts: port / keep / port above N /
                                  keep above N / fix the gradient first / undecided
    compare_runs(BASE, NEW)       new/base per common point, with significance
    format_comparison(cmp)        that comparison as Markdown

The modules: ``decide`` decides (structured findings, no prose), ``explain`` turns
them into sentences, ``tables``, ``memory`` and ``markdown`` format (pure), ``plots``
draws, ``compare`` compares two runs. Nothing here imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.names import child
from harness.report._data import rebuild_from_raw
from harness.report.breakdown import plot_breakdown
from harness.report.compare import Comparison, compare_results, compare_runs, format_comparison
from harness.report.decide import KINDS, LayerDecision, decide_layers
from harness.report.markdown import render_report
from harness.report.memory import plot_memory
from harness.report.plots import plot_deviations, plot_speedups, plot_times
from harness.results import REPORT_MD, Results, atomic_write_text, load_results

__all__ = [
    "KINDS",
    "Comparison",
    "LayerDecision",
    "compare_results",
    "compare_runs",
    "decide_layers",
    "format_comparison",
    "render_report",
    "write_plots",
    "write_report",
]

PLOTS_DIR = "plots"


def write_plots(results: Results, folder: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """Draw every layer's plots into ``folder``; return layer -> kind -> file name."""
    out: dict[str, dict[str, str]] = {}
    frame = results.frame
    layers = results.run.get("layers")
    infos: dict[str, Any] = layers if isinstance(layers, dict) else {}
    for layer in dict.fromkeys(str(v) for v in frame["layer"].dropna()):
        layer_frame = frame[frame["layer"] == layer]
        axis = (infos.get(layer) or {}).get("size_axis")
        base = Path(folder)
        # the layer name comes from results.csv: data, never a path (harness.names)
        paths = {
            "time": plot_times(layer_frame, child(base, layer, "-time.png"), axis),
            "speedup": plot_speedups(layer_frame, child(base, layer, "-speedup.png"), axis),
            "deviation": plot_deviations(layer_frame, child(base, layer, "-deviation.png"), axis),
            "memory": plot_memory(layer_frame, child(base, layer, "-memory.png"), axis),
            "breakdown": plot_breakdown(results, layer, child(base, layer, "-breakdown.png")),
        }
        out[layer] = {kind: path.name for kind, path in paths.items() if path is not None}
    return out


def write_report(path: str | os.PathLike[str], notes: Callable[[str], None] | None = None) -> Path:
    """Write ``DIR/report.md`` and ``DIR/plots/*.png`` for a results folder; return the
    report's path. ``ResultsError`` when ``DIR`` is not a readable results folder (a
    damaged one is rebuilt from its raw events where it has them, and ``notes`` is
    told so), ``ConfigError`` when it cannot be written."""
    results = load_results(path, rebuild=rebuild_from_raw)
    for note in results.notes:
        if notes is not None:
            notes(note)
    folder = results.path
    if (folder / PLOTS_DIR).is_symlink():
        # a crafted folder must not make the report write somewhere else
        raise ConfigError(f"{folder / PLOTS_DIR} is a symbolic link; remove it and retry")
    try:
        names = write_plots(results, folder / PLOTS_DIR)
        links = {
            layer: {kind: f"{PLOTS_DIR}/{name}" for kind, name in kinds.items()}
            for layer, kinds in names.items()
        }
        text = render_report(results, links)
        report = folder / REPORT_MD
        atomic_write_text(report, text)
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot write the report: {exc}".splitlines()[0]) from None
    return report
