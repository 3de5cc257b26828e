"""The text of ``report.md``: a summary of verdicts, one section per layer, the
environment. Pure: it reads the loaded ``Results`` and returns a string."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.report._data import records, settings
from harness.report._format import Footnotes
from harness.report._stats import ALPHA, MIN_EFFECT
from harness.report.tables import (
    capability_table,
    deviation_table,
    environment_table,
    noise_warnings,
    oneoff_table,
    summary_table,
    time_tables,
)
from harness.report.verdict import FIX_GRADIENT, Verdict, layer_verdicts, setting_headline
from harness.results import Results

__all__ = ["render_report"]

_INTRO = (
    "This report compares NumPy/SciPy autograd layers (the *baseline*, what the code "
    "uses today) with native torch implementations they could be ported to. Times are "
    "seconds per call: the median over every timed value of every worker process "
    "(pyperf). A speedup ×N means the native implementation is N times faster than the "
    "baseline (below ×1 it is slower). A difference counts only when it is statistically "
    "significant (Mann-Whitney U test on the raw values, p < {alpha:g}; min-max ranges "
    "that do not overlap where raw values are missing) and at least {effect:.0%}."
)

_KINDS = (
    "*port*: the native implementation is significantly faster, and never significantly "
    "slower; *keep*: it is not faster; *port above size N*: the baseline is faster below "
    "N and native above it; *keep above size N*: native is faster below N and the baseline "
    "above it (port only for sizes below N); *fix the gradient first*: the baseline's gradient "
    "disagrees with autograd, whatever the speed."
)


def _plot(paths: Mapping[str, str], kind: str, alt: str) -> str | None:
    path = paths.get(kind)
    return f"![{alt}]({path})" if path else None


def _verdict_block(v: Verdict) -> list[str]:
    lines = []
    if len(v.settings) == 1:
        s = v.settings[0]
        reasons = [*v.reasons, *s.reasons] if v.kind == FIX_GRADIENT else [*s.reasons, *v.reasons]
        lines.append(f"**Verdict: {v.headline}.** " + " ".join(reasons))
        return lines
    lines.append(f"**Verdict: {v.headline}.** " + " ".join(v.reasons))
    lines.append("")
    for s in v.settings:
        lines.append(f"- **{s.label}: {setting_headline(v, s)}.** " + " ".join(s.reasons))
    return lines


def render_report(
    results: Results,
    plot_paths: Mapping[str, Mapping[str, str]],
    raw_values: Mapping[str, Sequence[float]] | None = None,
    *,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
) -> str:
    """The Markdown of ``report.md`` for a loaded results folder.

    ``plot_paths`` maps a layer to its plots (``time``, ``speedup``, ``deviation``) as
    paths relative to the report, which are linked as given. ``raw_values`` maps case
    names to pyperf's raw values; ``None`` reads them from the folder's ``pyperf.json``
    (absent: significance falls back to min-max ranges).
    """
    raw = results.raw_values() if raw_values is None else raw_values
    frame = results.frame
    verdicts = layer_verdicts(frame, raw, results.capabilities, alpha=alpha, min_effect=min_effect)
    notes = Footnotes()
    out: list[str] = ["# Port report", "", _INTRO.format(alpha=alpha, effect=min_effect), ""]
    date = results.environment.get("date") or results.run.get("created")
    if date:
        out += [f"Measured {date}; see [Environment](#environment) for the machine.", ""]

    out += ["## Summary", ""]
    if verdicts:
        out += [summary_table(verdicts), "", _KINDS, ""]
    else:
        out += ["The results frame holds no rows: nothing was measured.", ""]

    for v in verdicts:
        layer_frame = frame[frame["layer"] == v.layer]
        rows = records(layer_frame)
        paths = plot_paths.get(v.layer, {})
        out += [f"## {v.layer}", ""]
        out += _verdict_block(v)
        out.append("")
        contexts = list(dict.fromkeys(s.context for s in settings(rows)))
        if len(contexts) == 1:
            out += [f"Measured in {contexts[0]}; size axis `{v.size_axis}`.", ""]

        out += [f"### Time per call ({v.layer})", ""]
        img = _plot(
            paths, "time", f"{v.layer}: time per call against {v.size_axis}, log-log, min-max bands"
        )
        if img:
            out += [img, ""]
        for phase in ("forward", "backward"):
            tables = time_tables(layer_frame, phase, notes, raw, alpha=alpha, min_effect=min_effect)
            for label, text in tables:
                title = phase.capitalize() + (f", {label}" if label else "")
                out += [f"**{title}**", "", text, ""]
        out += [
            "Cells: median time per call ± standard deviation as a share of the median; "
            f"×N: speedup over the baseline, **bold** where significant and at least {min_effect:.0%}.",
            "",
        ]
        img = _plot(paths, "speedup", f"{v.layer}: speedup over the baseline against {v.size_axis}")
        if img:
            out += [f"### Speedup ({v.layer})", "", img, ""]

        table: str | None = oneoff_table(layer_frame, notes)
        if table:
            out += [
                f"### One-off costs ({v.layer})",
                "",
                "Paid once per process or shape, never part of the times above.",
                "",
                table,
                "",
            ]

        devs = results.deviations
        layer_devs = devs[devs["layer"] == v.layer] if len(devs) else None
        table = deviation_table(layer_frame, layer_devs, notes)
        if table:
            out += [
                f"### Deviation from the float64 reference ({v.layer})",
                "",
                "Largest relative error over all sizes; ✗: outside the dtype's tolerance at some size.",
                "",
                table,
                "",
            ]
            img = _plot(paths, "deviation", f"{v.layer}: max relative error against {v.size_axis}")
            if img:
                out += [img, ""]

        caps = results.capabilities
        table = capability_table(caps[caps["layer"] == v.layer], notes) if len(caps) else None
        if table:
            out += [f"### Capabilities ({v.layer})", "", table, ""]

    out += ["## Environment", "", environment_table(results.environment, results.run), ""]
    warnings = noise_warnings(frame)
    out += ["### Noise warnings", ""]
    if warnings:
        out += [
            "These points have a large spread (pyperf `check`'s rules); rerun them with "
            "more processes or values, or on a quieter machine, before trusting them:",
            "",
        ]
        out += [f"- {w}" for w in warnings]
    else:
        out.append("None: every point's spread is within pyperf `check`'s limits.")
    out.append("")
    if notes:
        out += ["## Notes", "", notes.render(), ""]
    return "\n".join(out).rstrip("\n") + "\n"
