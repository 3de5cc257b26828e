"""The report and the comparison of results folders.

::

    write_report(DIR)             DIR/report.md and DIR/plots/*.png (python -m harness report)
    render_report(results, plots) the Markdown of report.md, written nowhere
    layer_verdicts(frame, ...)    port / keep / port above N / keep above N / fix the gradient first
    compare_runs(BASE, NEW)       new/base per common point, with significance
    format_comparison(cmp)        that comparison as Markdown

The modules: ``verdict`` decides, ``tables`` and ``markdown`` format (pure), ``plots``
draws, ``compare`` compares two runs, ``commands`` is the CLI's entry.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import ConfigError
from harness.report.compare import Comparison, compare_results, compare_runs, format_comparison
from harness.report.markdown import render_report
from harness.report.plots import plot_deviations, plot_speedups, plot_times
from harness.report.verdict import KINDS, Verdict, layer_verdicts
from harness.results import REPORT_MD, Results, atomic_write_text, load_results

__all__ = [
    "KINDS",
    "Comparison",
    "Verdict",
    "compare_results",
    "compare_runs",
    "format_comparison",
    "layer_verdicts",
    "render_report",
    "write_plots",
    "write_report",
]

PLOTS_DIR = "plots"


def write_plots(results: Results, folder: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """Draw every layer's plots into ``folder``; return layer -> kind -> file name."""
    out: dict[str, dict[str, str]] = {}
    frame = results.frame
    for layer in dict.fromkeys(str(v) for v in frame["layer"].dropna()):
        layer_frame = frame[frame["layer"] == layer]
        paths = {
            "time": plot_times(layer_frame, Path(folder) / f"{layer}-time.png"),
            "speedup": plot_speedups(layer_frame, Path(folder) / f"{layer}-speedup.png"),
            "deviation": plot_deviations(layer_frame, Path(folder) / f"{layer}-deviation.png"),
        }
        out[layer] = {kind: path.name for kind, path in paths.items()}
    return out


def write_report(path: str | os.PathLike[str]) -> Path:
    """Write ``DIR/report.md`` and ``DIR/plots/*.png`` for a results folder; return the
    report's path. ``ResultsError`` when ``DIR`` is not a readable results folder,
    ``ConfigError`` when it cannot be written."""
    results = load_results(path)
    folder = results.path
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
