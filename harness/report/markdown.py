"""The text of ``report.md``: a summary of verdicts, one section per layer, the
environment. Pure: it reads the loaded ``Results`` and returns a string."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.report._data import records, settings
from harness.report.breakdown import breakdown_section
from harness.report.decide import (
    FIX_GRADIENT,
    FIX_LAYER,
    LayerDecision,
    SettingDecision,
    decide_layers,
    nothing_compared,
)
from harness.report.explain import (
    baseline_output_sentences,
    budget_sentence,
    cache_sentence,
    candidate_output_sentences,
    headline,
    layer_sentences,
    runtime_sentences,
    setting_headline,
    setting_sentences,
    unrun_sentences,
)
from harness.report.faults import fault_lines
from harness.report.heap import heap_lines, heap_regimes
from harness.report.memory import memory_finding, memory_table
from harness.report.scan_share import scan_section
from harness.report.tables import (
    capability_table,
    deviation_table,
    environment_table,
    noise_warnings,
    oneoff_table,
    summary_table,
    threads_sentence,
    time_tables,
    untimed_phase,
)
from harness.results import Results
from harness.stats import BAND
from harness.text import Footnotes

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["render_report"]

_INTRO = (
    "This report compares NumPy/SciPy autograd layers (the *baseline*, what the code "
    "uses today) with native torch implementations they could be ported to, and their "
    "TorchScript, torch.compile and ONNX Runtime forms. Timing is paired: inside each "
    "worker process the implementations of one point are timed in alternation, round "
    "after round in a fresh random order, so that drift and bursts of noise hit every "
    "side of a comparison alike. A speedup ×N is the interquartile mean over rounds of "
    "baseline time / candidate time within a round (the mean of the middle half, in log "
    "space; above ×1 the candidate is faster), with its 95% "
    "interval (rounds nested in processes) in parentheses. A size is decided only when "
    "the interval lies outside the ±{band:.0%} band; a verdict is built from decided "
    "sizes only, and says *undecided* where noise could change it."
)

_USES = (
    "*Training* verdicts are decided on a whole training step, timed as a training loop "
    "runs it: each call a forward that records the autograd graph, then the backward of "
    "every gradient, which frees it. *Inference* verdicts are decided on the forward as "
    "it is served, one request per call (each call of a native candidate or its forms "
    "enters `torch.inference_mode()`, TorchScript saved and loaded back, an ONNX Runtime "
    "session called bare; each call of the NumPy/SciPy baseline enters `no_grad`), over "
    "every deployable form. Forward and backward timed apart "
    "(backward on a retained graph) show where a step's time goes."
)

_KINDS = (
    "*port*: the native implementation is faster at some size and slower at none; "
    "*keep*: it is faster at no size (a size where its results are wrong counts as "
    "the baseline's); *port above size N*: the baseline is faster below "
    "N and native above it (N with the range of sizes it lies in); *keep above size N*: "
    "native is faster below N and the baseline above it (port only for sizes below N); "
    "*port between sizes N1 and N2*: native is faster between N1 and N2 only, the "
    "baseline below N1 and above N2 (*keep between*: the reverse); "
    "*fix the gradient first*: the baseline's gradient disagrees with autograd, or none "
    "can be taken through it, whatever "
    "the speed; *fix the layer first*: the port's gain is a call into the Python runtime "
    "the baseline makes every call (`gc.collect()`, `time.sleep`, `print`), and without "
    "it the port is no longer decidedly faster, or the baseline returns integers where "
    "the reference's outputs are floating, or it fails at every size (nothing compared); "
    "*undecided*: too noisy to tell at the sizes named; *compile as is*: "
    "`torch.compile` of the baseline exactly as declared runs without a graph break, "
    "agrees with the reference and keeps up with the best native candidate."
)


def _plot(paths: Mapping[str, str], kind: str, alt: str) -> str | None:
    path = paths.get(kind)
    return f"![{alt}]({path})" if path else None


def _verdict_block(d: LayerDecision, layer_frame: Any) -> list[str]:
    runtime = runtime_sentences(d, d.use)
    layer_text = (
        [*layer_sentences(d), *runtime]
        if d.kind == FIX_GRADIENT
        else [*runtime, *layer_sentences(d)]
    )
    per_setting = [
        setting_sentences(s, d.size_axis, memory=_memory(d, s, layer_frame)) for s in d.settings
    ]
    title = "Training verdict" if d.use == "training" else "Inference verdict"
    head = headline(d.kind, d.threshold, d.size_axis, d.closing)
    lines = _verdict_lines(
        d, title, head, d.settings, per_setting, layer_text, d.kind in (FIX_GRADIENT, FIX_LAYER)
    )
    if d.inference is not None:
        v = d.inference
        lines += [
            "",
            *_verdict_lines(
                d,
                "Inference verdict",
                headline(v.kind, v.threshold, d.size_axis, v.closing),
                v.settings,
                [
                    # the memory sentence rides with the training verdict, unless that
                    # one compared nothing (its baseline never trained)
                    setting_sentences(
                        s,
                        d.size_axis,
                        memory=_memory(d, s, layer_frame) if nothing_compared(t) else None,
                    )
                    for s, t in zip(v.settings, d.settings, strict=False)
                ],
                [
                    *runtime_sentences(d, v.use),
                    *baseline_output_sentences(d),
                    *candidate_output_sentences(d),
                ],
                v.kind == FIX_LAYER,
            ),
        ]
    return lines


def _memory(d: LayerDecision, s: SettingDecision, layer_frame: Any) -> str | None:
    """The memory sentence of one setting's verdict (``memory_finding``), none where its
    baseline fails at every size: a baseline that never ran is no port's "before"."""
    if not (s.baseline and s.native) or nothing_compared(s):
        return None
    frame = layer_frame_for(layer_frame, s, d.size_axis)
    # never a size the verdict's point failed at (2026-12-03: "2.6× more memory at
    # n=100000" for a candidate the verdict said fails there)
    failed = [p.size for p in s.points if p.failed is not None]
    return memory_finding(frame, s.baseline, s.native, d.size_axis, skip=failed)


def _verdict_lines(
    d: LayerDecision,
    title: str,
    head: str,
    settings_: Sequence[SettingDecision],
    per_setting: Sequence[Sequence[str]],
    layer_text: Sequence[str] = (),
    layer_first: bool = False,
) -> list[str]:
    """One verdict: a single setting's in one paragraph (the layer's sentences first
    when they decide it), else the layer's headline and a bullet per setting; a
    declared baseline that never ran leads either (``unrun_sentences``)."""
    lead = unrun_sentences(d)
    if len(settings_) == 1:
        s_text = per_setting[0]
        reasons = [*layer_text, *s_text] if layer_first else [*s_text, *layer_text]
        title_line = f"**{title}: {setting_headline(d, settings_[0])}.**"
        return [" ".join([title_line, *lead, *reasons])]
    lines = [" ".join([f"**{title}: {head}.**", *lead, *layer_text]), ""]
    for s, text in zip(settings_, per_setting, strict=True):
        lines.append(f"- **{s.label}: {setting_headline(d, s)}.** " + " ".join(text))
    return lines


def layer_frame_for(layer_frame: Any, setting: Any, axis: str) -> Any:
    """The rows of one setting, as a frame (for the memory finding)."""
    cases = {r.get("case") for r in setting_rows(layer_frame, setting, axis)}
    return layer_frame[layer_frame["case"].isin(cases)]


def setting_rows(layer_frame: Any, setting: Any, axis: str) -> Sequence[Mapping[str, Any]]:
    for s in settings(records(layer_frame), axis):
        if s.label == setting.label:
            return s.rows
    return ()


def render_report(results: Results, plot_paths: Mapping[str, Mapping[str, str]]) -> str:
    """The Markdown of ``report.md`` for a loaded results folder.

    ``plot_paths`` maps a layer to its plots (``time``, ``speedup``, ``deviation``,
    ``memory``) as paths relative to the report, which are linked as given."""
    decisions = decide_layers(results.frame, results.run, results.capabilities, results.breakdown)
    notes = Footnotes()
    out = _head(results)
    out += _summary(results, decisions)
    for d in decisions:
        out += _layer_section(results, d, plot_paths.get(d.layer, {}), notes)
    out += _environment_section(results)
    if notes:
        out += ["## Notes", "", notes.render(), ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _head(results: Results) -> list[str]:
    """The title, the introduction, when and where, and what is wrong with the folder."""
    out: list[str] = ["# Port report", "", _INTRO.format(band=BAND), ""]
    date = results.environment.get("date") or results.run.get("created")
    cap = results.environment.get("cpu_capability")
    if date:
        machine = f" on a CPU with {cap} kernels" if cap else ""
        out += [f"Measured {date}{machine}; see [Environment](#environment).", ""]
    if results.run.get("mixed_machines"):
        out += [
            "**Mixed machines**: this folder merges parts measured on machines whose "
            "fingerprints differ (see Environment); compare speedups within a part only.",
            "",
        ]
    for note in results.notes:
        out += [f"*Note: {note}.*", ""]
    said = results.run.get("load_warnings") or []
    if said:
        out += [
            "**The layers' code warned as it loaded** (what it says may explain its "
            "timings): "
            + "; ".join("`" + " ".join(str(w).replace("`", "'").split()) + "`" for w in said[:5]),
            "",
        ]
    failed = results.run.get("declaration_notes") or []
    if failed:
        out += [
            "**Declaration check** (each layer run once at its smallest point, before "
            "anything is measured): " + "; ".join(str(n) for n in failed[:5]) + ".",
            "",
        ]
    out += fault_lines(results)  # a cut run, NaN/inf in inputs or outputs
    return out


def _summary(results: Results, decisions: Sequence[LayerDecision]) -> list[str]:
    """The summary table with its reading notes, the scan's shares, budget and cache."""
    out = ["## Summary", ""]
    if decisions:
        out += [summary_table(decisions), ""]
        threads = threads_sentence(decisions, results.run.get("default_threads"))
        out += [threads, ""] if threads else []
        crowded = load_caution(results.environment, [t for d in decisions for t in d.threads])
        out += [crowded, ""] if crowded else []
        out += [_USES, "", _KINDS, ""]
    else:
        out += ["The results frame holds no rows: nothing was measured.", ""]
    out += scan_section(results.path, decisions)  # shares of a scan (--scan), by saving
    budget = budget_sentence(
        results.run.get("timing") or {}, (results.run.get("profile") or {}).get("min_rounds")
    )
    if budget:
        out += [budget, ""]
    cached = cache_sentence(results.run.get("cache") or {})
    if cached:
        out += [cached, ""]
    return out


def _layer_section(
    results: Results, d: LayerDecision, paths: Mapping[str, str], notes: Footnotes
) -> list[str]:
    """One layer: its verdict, where the time goes, its times and the tables beside."""
    frame = results.frame
    layer_frame = frame[frame["layer"] == d.layer]
    rows = records(layer_frame)
    out = [f"## {d.layer}", ""]
    out += _verdict_block(d, layer_frame)
    out.append("")
    out += breakdown_section(results, d, paths)  # where the time goes (issue 19)
    contexts = list(dict.fromkeys(s.context for s in settings(rows, d.size_axis)))
    if len(contexts) == 1:
        out += [f"Measured in {contexts[0]}; size axis `{d.size_axis}`.", ""]
    out += _time_section(layer_frame, d, paths, notes)
    out += heap_lines(heap_regimes(_runs_by_case(results, rows), _case_labels(rows)))
    out += _cost_sections(layer_frame, d, paths, notes)
    devs = results.deviations
    layer_devs = devs[devs["layer"] == d.layer] if len(devs) else None
    table = deviation_table(layer_frame, layer_devs, notes)
    if table:
        out += [
            f"### Deviation from the float64 reference ({d.layer})",
            "",
            "Largest relative error over all sizes; ✗: outside the dtype's tolerance at some size.",
            "",
            table,
            "",
        ]
        img = _plot(paths, "deviation", f"{d.layer}: max relative error against {d.size_axis}")
        if img:
            out += [img, ""]
    caps = results.capabilities
    table = capability_table(caps[caps["layer"] == d.layer], notes) if len(caps) else None
    if table:
        out += [f"### Capabilities ({d.layer})", "", table, ""]
    return out


_PHASE_WORDS = {"step": "training step", "forward": "forward", "backward": "backward"}


def _case_labels(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Each timed case of ``rows`` in words: ``torch's training step at n=512,k=7``."""
    return {
        str(r["case"]): f"{r['impl']}'s {_PHASE_WORDS.get(str(r['phase']), r['phase'])} "
        f"at {r['point']}"
        for r in rows
        if r.get("status") == "ok" and r.get("case")
    }


def _runs_by_case(
    results: Results, rows: Sequence[Mapping[str, Any]]
) -> dict[str, list[tuple[float, float]]]:
    """Per case of ``rows``: one (minor faults per call, median seconds per call) per
    pyperf run (a timing process's values), from ``pyperf.json``."""
    suite = results.suite()
    if suite is None:
        return {}
    wanted = {str(r["case"]) for r in rows if r.get("case")}
    out: dict[str, list[tuple[float, float]]] = {}
    for bench in suite.get_benchmarks():
        name = bench.get_name()
        if name not in wanted:
            continue
        pairs = []
        for run in bench.get_runs():
            faults = run.get_metadata().get("harness_minor_faults")
            if faults is not None and run.values:
                pairs.append((float(faults), statistics.median(run.values)))
        out[name] = pairs
    return out


def _time_section(
    layer_frame: pd.DataFrame, d: LayerDecision, paths: Mapping[str, str], notes: Footnotes
) -> list[str]:
    """Time per call: the plot, a table per phase, how to read them, the speedup plot."""
    out = [f"### Time per call ({d.layer})", ""]
    img = _plot(
        paths, "time", f"{d.layer}: time per call against {d.size_axis}, log-log, min-max bands"
    )
    if img:
        out += [img, ""]
    for phase, name in (
        ("step", "Training step"),
        ("forward", "Forward (inference)"),
        ("backward", "Backward (on a retained graph)"),
    ):
        for label, text in time_tables(layer_frame, phase, notes, d.size_axis):
            title = name + (f", {label}" if label else "")
            out += [f"**{title}**", "", text, ""]
        untimed = untimed_phase(layer_frame, phase)
        if untimed:
            out += [f"**{name}**: not timed for any implementation: {untimed}.", ""]
    out += [
        "Cells: median time per call ± standard deviation as a share of the median; "
        "×N (low–high): paired speedup over the baseline with its 95% interval, **bold** "
        f"where the interval lies outside the ±{BAND:.0%} band.",
        "",
    ]
    img = _plot(paths, "speedup", f"{d.layer}: speedup over the baseline against {d.size_axis}")
    if img:
        out += [f"### Speedup ({d.layer})", "", img, ""]
    return out


def _cost_sections(
    layer_frame: pd.DataFrame, d: LayerDecision, paths: Mapping[str, str], notes: Footnotes
) -> list[str]:
    """What a port costs besides its time: one-off costs and peak memory."""
    out: list[str] = []
    table = oneoff_table(layer_frame, notes, d.size_axis)
    if table:
        out += [
            f"### One-off costs ({d.layer})",
            "",
            "Paid once per process or shape, never part of the times above; "
            "`break_even_calls` in results.csv says after how many calls each pays off.",
            "",
            table,
            "",
        ]
    table = memory_table(layer_frame, d.size_axis)
    if table:
        out += [
            f"### Peak memory ({d.layer})",
            "",
            "Peak bytes allocated during one call above what was live before it "
            "(measured in the setup pass, never while timing).",
            "",
            table,
            "",
        ]
        img = _plot(paths, "memory", f"{d.layer}: peak memory against {d.size_axis}")
        if img:
            out += [img, ""]
    return out


def _environment_section(results: Results) -> list[str]:
    """The machine, and the noise seen while measuring."""
    out = ["## Environment", "", environment_table(results.environment, results.run), ""]
    out += ["### Noise", ""]
    out += _noise_lines(results.environment)
    warnings = noise_warnings(results.frame)
    if warnings:
        out += [
            "These points have a large spread (pyperf `check`'s rules); their paired "
            "speedups are still valid where decided, but their absolute times are rough:",
            "",
        ]
        out += [f"- {w}" for w in warnings]
    else:
        out.append("Every point's spread is within pyperf `check`'s limits.")
    out.append("")
    return out


#: Other processes' average load (CPUs) from which a run is said to have been crowded,
#: where what they left idle cannot hold the workers' threads and the runner.
_CROWDED_CPUS = 0.25


def load_caution(environment: Mapping[str, Any], threads: Sequence[int]) -> str | None:
    """A caution for the summary when other processes kept the CPUs the run needed
    busy (environment.json's ``noise``: ``others_cpus``), else None (2026-12-01: a
    quick run beside a test suite decided speedups in the wrong direction, with
    "machine busy 100%" only in the Environment section)."""
    noise = environment.get("noise")
    cores = environment.get("cores")
    if not isinstance(noise, Mapping) or not isinstance(cores, int) or cores < 1:
        return None
    others = noise.get("others_cpus")
    if not isinstance(others, int | float) or others < _CROWDED_CPUS:
        return None
    workers = max(threads, default=1)
    if cores - others >= workers + 1:  # a worker's threads and the runner fit
        return None
    return (
        f"**Caution: a crowded machine.** While this run measured, other processes kept "
        f"{others:.2g} of the machine's {cores} CPUs busy on average "
        f"({noise.get('others_pct', 0):.0f}% of its CPU time), CPUs the workers' "
        f"{workers} thread(s) needed: timed values ran beside them, so "
        "speedups may be off as well as noisy, in either direction. Measure again on a "
        # a run on one thread already is: only a quiet machine helps it (2026-12-03)
        + ("quiet machine, or with `--threads 1`." if workers > 1 else "quiet machine.")
    )


def _noise_lines(environment: Mapping[str, Any]) -> list[str]:
    noise = environment.get("noise")
    if not isinstance(noise, Mapping):
        return []
    if not noise.get("available", True):
        return [f"The machine's load was not recorded ({noise.get('why', 'unavailable')}).", ""]
    load = noise.get("load1") if isinstance(noise.get("load1"), Mapping) else {}
    text = (
        f"While this run measured ({noise.get('duration_s', 0):.0f}s, {noise.get('samples', 0)} "
        f"samples of /proc/stat): CPU steal {noise.get('steal_pct', 0):.1f}% of all CPU time "
        f"(worst interval {noise.get('steal_pct_max', 0):.1f}%), iowait "
        f"{noise.get('iowait_pct', 0):.1f}%, machine busy {noise.get('busy_pct', 0):.0f}%"
    )
    if isinstance(noise.get("others_cpus"), int | float):
        text += (
            f" ({noise.get('others_pct', 0):.0f}% by other processes than the run's: "
            f"{noise['others_cpus']:.2g} CPUs on average)"
        )
    if load:
        text += (
            f", 1-minute load average {load.get('min', 0):.2f}–{load.get('max', 0):.2f} "
            f"(median {load.get('median', 0):.2f})"
        )
    text += "."
    if (noise.get("steal_pct_max") or 0) >= 5:
        text += (
            " Another tenant took CPU time from this VM during the run: expect wider "
            "intervals and more undecided sizes."
        )
    return [text, ""]
