"""Explaining, apart from deciding: the sentences of a verdict, made from a
``LayerDecision`` (``harness.report.decide``) and nothing else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from harness.capabilities import CHECK_LABELS
from harness.dtypes import BITS, RTOL, narrowed_to, returned_for, tolerance_text
from harness.protocol import (
    FLOAT32_ROUNDING,
    INTEGER_TRUNCATION,
    SHORT_OF_FLOAT64,
    UPSTREAM_GRADIENT,
    written_what,
)
from harness.report.breakdown import RUNTIME_WHY
from harness.report.decide import (
    ALTERNATING_RATIO,
    COMPILE_AS_IS,
    FIX_GRADIENT,
    FIX_LAYER,
    INFERENCE,
    KEEP,
    KEEP_ABOVE,
    KEEP_BETWEEN,
    PORT_ABOVE,
    PORT_BETWEEN,
    STEP,
    UNDECIDED,
    Crossover,
    GradientFindings,
    LayerDecision,
    PointDecision,
    SettingDecision,
    native_wrong_everywhere,
    nothing_compared,
    reference_raised,
    tensor_names,
)
from harness.stats import BAND
from harness.text import fmt_pct, fmt_rel_err, fmt_seconds, fmt_size, fmt_speedup

__all__ = [
    "NEXT_STEPS",
    "baseline_output_sentences",
    "budget_sentence",
    "cache_sentence",
    "candidate_output_sentences",
    "describe_points",
    "fmt_interval",
    "headline",
    "layer_sentences",
    "runtime_sentences",
    "setting_headline",
    "setting_sentences",
    "unrun_sentences",
]


NEXT_STEPS = (
    "measure longer (`--profile rigorous`, or a larger `--budget`: more worker processes "
    "narrow the intervals), on a quieter machine, or with fewer threads"
)


_KIND_WORDS = {
    PORT_ABOVE: "port above some size",
    KEEP_ABOVE: "keep above some size",
    PORT_BETWEEN: "port between some sizes",
    KEEP_BETWEEN: "keep between some sizes",
}


def fmt_interval(speedup: float | None, low: float | None, high: float | None) -> str:
    """``×2.1 (1.9–2.3)``; ``—`` when nothing was measured."""
    if speedup is None:
        return "—"
    if low is None or high is None:
        return fmt_speedup(speedup)
    if (low <= 0 or speedup / low > UNBOUNDED) and high / speedup > UNBOUNDED:
        # 2026-12-02: two processes' quick run read "(2.7e-07–6153056)": unreadable,
        # and no bound at all in practice
        return f"{fmt_speedup(speedup)} (unbounded: too few processes)"
    return f"{fmt_speedup(speedup)} ({fmt_speedup(low)[1:]}–{_hi(high)})"


#: An interval whose ends both lie further than this factor from its estimate bounds
#: nothing (a quick run's two processes: a t quantile of 12.7 on a between-process
#: spread); one end near it still bounds that side (``(1.90–∞)``).
UNBOUNDED = 100.0


def _hi(high: float) -> str:
    return "∞" if high == float("inf") else fmt_speedup(high)[1:]


def _failing(c: Crossover) -> str:
    """`` (the native fails there and above)``: a crossing a failure makes, said."""
    who = "the native" if c.failing == "native" else "the baseline"
    return f" ({who} fails there and {'above' if c.size == c.upper else 'below'})"


def _measured(axis: str, c: Crossover) -> str | None:
    """A crossing at a measured size (``n = 64``; a failure's says so), else None."""
    if c.failing is not None:
        return f"{axis} = {fmt_size(c.size)}{_failing(c)}"
    if c.lower == c.upper:
        return f"{axis} = {fmt_size(c.size)}"
    return None


def _range(axis: str, c: Crossover) -> str:
    return _measured(axis, c) or (
        f"{axis} ≈ {fmt_size(c.size)} (between {fmt_size(c.lower)} and {fmt_size(c.upper)})"
    )


def headline(
    kind: str, threshold: Crossover | None, axis: str, closing: Crossover | None = None
) -> str:
    """The verdict in a few words: ``port above n ≈ 91 (64–128)``, ``port between
    n ≈ 45 (32–64) and n ≈ 724 (512–1024)``."""
    if kind in (PORT_ABOVE, KEEP_ABOVE) and threshold is not None:
        word = "port" if kind == PORT_ABOVE else "keep"
        # a failure from a measured size on: that size is the first of the stretch
        above = "from" if threshold.failing and threshold.size == threshold.upper else "above"
        return f"{word} {above} {_at(axis, threshold)}"
    if kind in (PORT_BETWEEN, KEEP_BETWEEN) and threshold is not None and closing is not None:
        word = "port" if kind == PORT_BETWEEN else "keep"
        return f"{word} between {_at(axis, threshold)} and {_at(axis, closing)}"
    return kind


def _at(axis: str, c: Crossover) -> str:
    """``n ≈ 91 (64–128)``, or ``n = 64`` where the crossing is at a measured size (a
    failure's: ``m = 12 (the native fails there and above)``)."""
    return _measured(axis, c) or (
        f"{axis} ≈ {fmt_size(c.size)} ({fmt_size(c.lower)}–{fmt_size(c.upper)})"
    )


def setting_headline(decision: LayerDecision, setting: SettingDecision) -> str:
    """A setting's verdict in a few words (``fix the gradient first`` when the layer's
    training verdict is; ``fix the layer first`` where a runtime call undoes its port)."""
    if decision.kind == FIX_GRADIENT and setting.use == decision.use:
        return FIX_GRADIENT
    if decision.fixes_layer_first(setting):
        return FIX_LAYER
    if setting.kind == COMPILE_AS_IS:
        return COMPILE_AS_IS
    if setting.kind == UNDECIDED and setting.undecided_sizes:
        return f"undecided at {_sizes(decision.size_axis, setting.undecided_sizes)}"
    if not setting.points and setting.note:  # no candidate ran: keep by default
        return f"{setting.kind} (nothing compared)"
    return headline(setting.kind, setting.threshold, decision.size_axis, setting.closing)


#: A list of sizes or intervals longer than this is shortened (a grid of thousands of
#: sizes must not turn a verdict into a page of numbers); the tables keep every one.
_LISTED = 8


def _sizes(axis: str, sizes: Sequence[float]) -> str:
    """``n=64, 128``; a long list as ``n=1, 2, 3, …, 998, 1000 (412 sizes)``."""
    if len(sizes) <= _LISTED:
        return f"{axis}=" + ", ".join(fmt_size(s) for s in sizes)
    head = ", ".join(fmt_size(s) for s in sizes[:3])
    tail = ", ".join(fmt_size(s) for s in sizes[-2:])
    return f"{axis}={head}, …, {tail} ({len(sizes):,} sizes)"


def _span(values: Sequence[float]) -> str:
    lo, hi = min(values), max(values)
    if fmt_speedup(lo) == fmt_speedup(hi):
        return fmt_speedup(lo)
    return f"{fmt_speedup(lo)}–{fmt_speedup(hi)}"


def _size_span(axis: str, sizes: Sequence[float]) -> str:
    if len(sizes) == 1:
        return f"{axis}={fmt_size(sizes[0])}"
    return f"{axis}={fmt_size(min(sizes))}–{fmt_size(max(sizes))}"


def describe_points(points: Sequence[PointDecision], axis: str) -> str:
    """Speedup per run of sizes on the same side: ``×0.4–×0.8 at n=8–64, ...``."""
    measured = [p for p in points if p.speedup is not None]
    if not measured:
        return "not measured on both sides"
    bands: list[list[PointDecision]] = [[measured[0]]]
    for p in measured[1:]:
        if ((p.speedup or 0) > 1 and (bands[-1][-1].speedup or 0) > 1) or (
            (p.speedup or 0) <= 1 and (bands[-1][-1].speedup or 0) <= 1
        ):
            bands[-1].append(p)
        else:
            bands.append([p])
    return ", ".join(
        f"{_span([p.speedup for p in band if p.speedup is not None])} at "
        f"{_size_span(axis, [p.size for p in band])}"
        for band in bands
    )


def setting_sentences(s: SettingDecision, axis: str, *, memory: str | None = None) -> list[str]:
    """The reasons behind one setting's verdict, in figures."""
    if s.note:
        return [s.note]
    out: list[str] = []
    if nothing_compared(s):
        # nothing was compared: say so first, before "not measured on both sides"
        out.append(
            f"{s.baseline}'s {'training step' if s.metric == STEP else 'forward'} fails "
            f"at every size measured, so none was compared: {s.native}'s runs where it "
            f"does not. Make {s.baseline}'s run to weigh speed."
        )
    what = {
        STEP: "a whole training step (a forward that records the graph, then the backward)",
        INFERENCE: "inference (the forward as served; natives under inference_mode)",
    }.get(s.metric, s.metric)
    if s.metric == STEP and s.estimated:
        what = (
            "a training step estimated as forward + backward summed per round (this "
            "folder is from before the step was timed whole: an estimate, not what a "
            "training loop runs)"
        )
    wrong_port = native_wrong_everywhere(s)
    if not nothing_compared(s) and not wrong_port:  # else "not measured" says nothing
        out.append(
            f"Speedup of {s.native} over {s.baseline} on {what}: {describe_points(s.points, axis)}."
        )
    out += [
        f"{impl} is not weighed for this verdict: its {noun} exceed tolerance against "
        "the float64 reference, and a port must be right first."
        for impl, noun in s.passed_over
    ]
    if s.forward_only and s.use == "inference":
        out.append(
            # 2026-12-03: said of a plain function of arrays, which nobody "declared" so
            f"Inference verdict only: {s.baseline} has no backward (declared without one, or "
            "a function of NumPy arrays, which autograd cannot go through), so there "
            "is no training step to time and no gradient to check."
        )
    decided = [p for p in s.points if p.side in ("native", "baseline") and p.failed is None]
    ties = [p for p in s.points if p.side == "tie"]
    out += _band_sentences(s, axis)
    turns = _turns_sentence(s, axis)
    if turns:
        out.append(turns)
    if s.kind == UNDECIDED:
        out.append(_undecided_sentence(s, axis))
    out += _also_faster_sentences(s, axis)
    phases = None if nothing_compared(s) or wrong_port else _phase_sentence(s, axis)
    if phases:  # a step's phases explain a step compared, not one never run
        out.append(phases)
    failed = [p for p in s.points if p.failed == "native"]
    if failed:
        out.append(
            f"{s.native} fails at {_sizes(axis, [p.size for p in failed])}: {_one_error(failed)}."
        )
    if wrong_port:
        out.append(
            f"{s.native} is timed (the tables) but not weighed: a port whose results are "
            f"wrong is no port, so the verdict stays with {s.baseline} until {s.native} "
            "agrees with the reference (where the two differ by a convention, such as a "
            "gradient defined for symmetric inputs only, measure on inputs that have it)."
        )
    elif s.kind == KEEP and not decided and not ties and not s.undecided_sizes:
        out.append("Nothing was decided, so speed is no reason to port.")
    if s.compiled is not None:
        out.append(_compiled_sentence(s, axis))
    if memory:
        out.append(memory)
    return _dedupe(out)


def _one_error(points: Sequence[PointDecision]) -> str:
    """One message for a candidate's failures at several sizes: the first size's, with
    its largest relative error where its results are wrong; where every size failed
    alike, with the largest of them (2026-12-03: "fails at n=16, 32, 64: ... (max
    relative error 28)" was n=16's figure, where n=32's was 99.8)."""
    first = points[0].error or "no message"
    alike = all(p.error == points[0].error for p in points)
    errs = [p.rel_err for p in points if p.rel_err is not None] if alike else []
    if not alike and points[0].rel_err is not None:
        errs = [points[0].rel_err]
    if not errs:
        return first
    up_to = "up to " if len(set(errs)) > 1 else ""
    return f"{first} (max relative error {up_to}{max(errs):.2g})"


def _also_faster_sentences(s: SettingDecision, axis: str) -> list[str]:
    """Another candidate decided faster where the verdict's is not, named in one
    sentence with why the verdict follows the other (``SettingDecision.also_faster``);
    the candidate ranked first where the verdict follows another, decided at every size
    (``SettingDecision.instead_of``)."""
    out = []
    if s.instead_of:
        out.append(
            f"{s.instead_of} ranks first (the most sizes measured, then the highest "
            f"geometric-mean speedup) but its verdict is undecided; {s.native} is decided "
            f"faster than {s.baseline} at every size, so the verdict follows {s.native}."
        )
    by_impl: dict[str, list[PointDecision]] = {}
    for impl, p in s.also_faster:
        by_impl.setdefault(impl, []).append(p)
    if by_impl:
        named = "; ".join(
            f"{impl} at "
            + ", ".join(f"{axis}={fmt_size(p.size)} ({fmt_interval(*_interval(p))})" for p in pts)
            for impl, pts in by_impl.items()
        )
        out.append(
            f"Decided faster than {s.baseline} where {s.native} is not: {named}; the "
            f"verdict follows {s.native}, measured against {s.baseline} at the most sizes "
            "(then the highest geometric-mean speedup)."
        )
    return out


def _band_sentences(s: SettingDecision, axis: str) -> list[str]:
    """Where the interval clears the band, where the sides tie, where they cross."""
    out: list[str] = []
    decided = [p for p in s.points if p.side in ("native", "baseline") and p.failed is None]
    compared = [p for p in s.points if p.speedup is not None]
    ties = [p for p in s.points if p.side == "tie"]
    if decided:
        out.append(
            f"The 95% interval is outside the ±{BAND:.0%} band at {len(decided)} of "
            f"{len(compared)} sizes compared"
            + (
                f"; equal within ±{BAND:.0%} at {_sizes(axis, [p.size for p in ties])}"
                if ties
                else ""
            )
            + "."
        )
    elif ties and not s.undecided_sizes:
        out.append(
            f"{s.native} and {s.baseline} are equally fast within ±{BAND:.0%} at every size: "
            "speed is no reason to port."
        )
    if s.threshold is not None and s.closing is not None:
        first = s.native if s.threshold.faster_above == "native" else s.baseline
        again = s.native if s.closing.faster_above == "native" else s.baseline
        out.append(
            f"The faster side changes twice: at {_range(axis, s.threshold)}, above which "
            f"{first} is faster, and at {_range(axis, s.closing)}, above which {again} is "
            f"faster again; {first} wins only between them."
        )
    elif s.threshold is not None and s.threshold.failing is not None:
        c = s.threshold
        failing = s.native if c.failing == "native" else s.baseline
        other = s.baseline if c.failing == "native" else s.native
        where = "from" if c.size == c.upper else "up to"
        ran = c.lower if c.size == c.upper else c.upper
        out.append(
            f"{failing} fails {where} {axis} = {fmt_size(c.size)} and runs at "
            f"{axis} = {fmt_size(ran)}: there {other} wins by running, not by speed."
        )
    elif s.threshold is not None:
        faster = s.native if s.threshold.faster_above == "native" else s.baseline
        out.append(
            f"The faster side changes at {_range(axis, s.threshold)}; {faster} is faster above."
        )
    return out


def _turns_sentence(s: SettingDecision, axis: str) -> str | None:
    """Where the faster side changes more than once across the sizes (decided speeds;
    a side's failure is no speed), or None: a verdict "above N" speaks for the largest
    sizes only."""
    blocks: list[tuple[str, list[float]]] = []
    for p in sorted(s.points, key=lambda p: p.size):
        if p.side not in ("native", "baseline") or p.failed is not None:
            continue
        if blocks and blocks[-1][0] == p.side:
            blocks[-1][1].append(p.size)
        else:
            blocks.append((p.side, [p.size]))
    if len(blocks) <= 2 or (len(blocks) == 3 and s.closing is not None):
        return None  # the verdict says it: above N, or between N1 and N2
    names = {"native": s.native, "baseline": s.baseline}
    stretches = ", ".join(f"{names[side]} at {_sizes(axis, sizes)}" for side, sizes in blocks)
    return (
        f"The faster side changes more than once ({stretches}), so the verdict speaks "
        "for the largest sizes: check the sizes you run."
    )


def _undecided_sentence(s: SettingDecision, axis: str) -> str:
    """Where the setting is too noisy to decide, what it could be, how to decide."""
    noisy = [p for p in s.points if p.side == "noisy"]
    shown = ", ".join(
        f"{axis}={fmt_size(p.size)} {fmt_interval(p.speedup, p.low, p.high)}"
        for p in noisy[:_LISTED]
    ) + (f" and {len(noisy) - _LISTED:,} more" if len(noisy) > _LISTED else "")
    could = " or ".join(_KIND_WORDS.get(k, k) for k in s.possible) or "one of several"
    counts = {p.processes for p in noisy}
    if counts == {2}:
        # 2026-11-30: a quick run's 6 unanimous rounds of ×48-×748 read "too noisy"
        return (
            f"**Undecided at {_sizes(axis, s.undecided_sizes)}: too few processes** "
            f"(intervals {shown} straddle the ±{BAND:.0%} band, and the verdict could be "
            f"{could}). Each point was timed in 2 processes, so the process level of its "
            "interval stands on one degree of freedom (12.7 standard errors of the "
            "process estimates either side): any difference between the two processes "
            "makes it wide. To decide: "
            "`--profile default` (3 processes or more, and adaptive passes)."
        )
    return (
        f"**Undecided at {_sizes(axis, s.undecided_sizes)}: too noisy on this machine** "
        f"(intervals {shown} straddle the ±{BAND:.0%} band, and the verdict could be {could}). "
        f"To decide: {NEXT_STEPS}."
    )


def _phase_sentence(s: SettingDecision, axis: str) -> str | None:
    """A training step's speedup by phase, or None."""
    if s.metric != STEP:
        return None
    parts = [
        f"{phase} {describe_points(pts, axis)}" + _undecided_of(pts, axis)
        for phase, pts in s.phase_points.items()
    ]
    if not parts:
        return None
    return (
        "Where the step's time goes, by phase (forward under inference_mode, "
        "backward on a retained graph): " + "; ".join(parts) + "."
    )


def _undecided_of(points: Sequence[PointDecision], axis: str) -> str:
    """`` (undecided at n=8, 64)`` for the sizes whose interval straddles a band edge:
    figures that explain a verdict are not decided by quoting them (2026-12-02: a
    quick run's "forward ×3.89–×15.4", both undecided, where a default run decided
    ×0.48)."""
    noisy = [p.size for p in points if p.side == "noisy"]
    return f" (undecided at {_sizes(axis, noisy)})" if noisy else ""


def _compiled_sentence(s: SettingDecision, axis: str) -> str:
    """torch.compile of the baseline as declared, against the baseline."""
    c = s.compiled
    assert c is not None
    if c.error and not any(p.speedup is not None for p in c.points):
        if c.error.startswith("not timed: "):
            return f"{c.impl} was not timed: {c.error.removeprefix('not timed: ')}."
        return f"{c.impl} (torch.compile of {s.baseline} as declared): {c.error}."
    return (
        f"{c.impl} (torch.compile of {s.baseline} as declared) against {s.baseline}: "
        f"{describe_points(c.points, axis)}"
        + (f"; as fast as {s.native} within the noise" if c.as_fast else "")
        + ("; its outputs or gradients are outside tolerance" if c.gradients_ok is False else "")
        + "."
    )


def layer_sentences(d: LayerDecision) -> list[str]:
    """Layer-wide sentences: correctness of outputs and gradients, what porting enables,
    how the timing budget was spent."""
    out = _correctness_sentences(d)
    compiled = _compile_check_sentence(d)
    if compiled is not None:
        # compiling as is, when it works, is the verdict: it comes first
        out = [compiled, *out] if d.kind == COMPILE_AS_IS else [*out, compiled]
    out += _port_sentences(d)
    alternating = _alternating_sentence(d)
    if alternating:
        out.append(alternating)
    return _dedupe(out)


def _truncation_sentence(d: LayerDecision, use: str, baseline: str) -> str:
    """*Fix the layer first*: ``baseline`` returns integers for a floating reference."""
    how = next((h for impl, h in d.gradient.returns if impl == baseline), "integers")
    # under the verdict's own title ("fix the layer first") the sentence is its reason
    lead = "Then fix the layer: " if use == d.use and d.kind == FIX_GRADIENT else ""
    return (
        f"{lead}{baseline} returns {how}, so its outputs are wrong wherever a value has "
        "a fraction, and its timings do not matter until it returns floating values."
    )


def runtime_sentences(d: LayerDecision, use: str) -> list[str]:
    """What the baseline's runtime calls (``RuntimeCost``) do to ``use``'s verdict: the
    port they undo (*fix the layer first*, the verdict), else what a port still gains
    without them where the native was decided faster."""
    costs = [c for c in d.runtime if c.use == use]
    undone = [c for c in costs if c.undoes_port]
    word = "training step" if use == "training" else "forward"
    out = [_truncation_sentence(d, use, b) for b in d.gradient.truncated]
    if undone:
        c = max(undone, key=lambda c: c.share)
        w = c.without
        assert w is not None  # undoes_port has one
        label = f" ({c.setting})" if c.setting else ""
        # a wrong gradient comes first; the runtime call is then the next fix
        lead = (
            "Then fix the layer"
            if use == d.use and d.kind == FIX_GRADIENT
            else FIX_LAYER.capitalize()
        )
        others = sorted({x.size for x in undone if x is not c and x.setting == c.setting})
        also = f" (at {_sizes(d.size_axis, others)} too)" if others else ""
        out.append(
            f"{lead}: at {d.size_axis}={fmt_size(c.size)}{label}, `{c.call}()` "
            f"takes {fmt_pct(100 * c.share)} of {c.baseline}'s {word}: "
            f"{RUNTIME_WHY.get(c.call, 'no work of the layer')}. Without it, "
            f"{c.candidate or 'the best candidate'}'s "
            f"{fmt_interval(*_interval(c.point))} there would be about "
            f"{fmt_interval(*w)}{also}, {_fixed_side(w)}: what a port gains is that "
            "call's cost (estimated as the baseline's timed call less the call's profiled "
            "share). Take it out of the layer and run again before weighing a port."
        )
    kept = [
        (w, c)
        for c in costs
        if c.point and c.point.side == "native" and (w := c.without) is not None
    ]
    if kept and not undone:
        w, c = min(kept, key=lambda k: k[0][0])
        out.append(
            f"At {d.size_axis}={fmt_size(c.size)}, `{c.call}()` takes {fmt_pct(100 * c.share)} "
            f"of {c.baseline}'s {word}; without it the port would still gain about "
            f"{fmt_interval(*w)}: take it out whichever way you go."
        )
    return out


def _interval(p: PointDecision | None) -> tuple[float | None, float | None, float | None]:
    return (None, None, None) if p is None else (p.speedup, p.low, p.high)


def _fixed_side(w: tuple[float, float, float]) -> str:
    """Where a port's speedup interval without the runtime call lies, in words."""
    if w[2] < 1 / (1 + BAND):
        return "the baseline the faster"
    if w[1] >= 1 / (1 + BAND) and w[2] <= 1 + BAND:
        return f"as fast as the baseline within ±{BAND:.0%}"
    return "no longer decidedly faster than the baseline"


def unrun_sentences(d: LayerDecision) -> list[str]:
    """A declared baseline that ran nowhere, the comparisons made against another: the
    layer as published does not run, which comes before any speed (the verdict's lead)."""
    compared = next((s.baseline for s in d.settings if s.baseline), None)
    against = f"every speedup here is against {compared}" if compared else "nothing compared"
    return [
        f"{impl}, a baseline declared, ran at no size ({error.rstrip('.')}): {against}."
        for impl, error in d.unrun_baselines
    ]


def _alternating_sentence(d: LayerDecision) -> str | None:
    """Where a baseline's thread pool fights torch's (``LayerDecision.alternating``):
    the worst case in figures, the sizes, the cause and the cheap fixes."""
    if not d.alternating:
        return None
    impl, label, size, on_torch, on_numpy = max(
        d.alternating, key=lambda a: a[3] / a[4] if a[4] > 0 else math.inf
    )
    ratio = on_torch / on_numpy if on_numpy > 0 else math.inf
    sizes = sorted({a[2] for a in d.alternating if a[0] == impl})
    return (
        f"Thread pools: alternating with a small torch op, as inside a model, a call of "
        f"{impl} costs {fmt_seconds(on_torch)} at {d.size_axis}={fmt_size(size)} ({label}) "
        f"where alternating with the same work done by NumPy it costs "
        f"{fmt_seconds(on_numpy)} ({fmt_speedup(ratio)}; ×{ALTERNATING_RATIO:g} or more at "
        f"{_sizes(d.size_axis, sizes)}). Torch's OpenMP threads and {impl}'s own threads (its "
        "BLAS's, say) spin-wait after their work and take turns at the cores, both ways. The "
        f"timings above are of calls back to back: inside a model {impl} costs more than "
        "they say, and porting gains more. One BLAS thread around it "
        '(`threadpoolctl.threadpool_limits(1, "blas")`, or `OPENBLAS_NUM_THREADS=1`) or '
        "`OMP_WAIT_POLICY=PASSIVE` removes most of it."
    )


def _correctness_sentences(d: LayerDecision) -> list[str]:
    """Gradcheck, outputs and gradients against the reference, what each returns."""
    g = d.gradient
    out: list[str] = []
    baselines = {s.baseline for s in d.settings if s.baseline}
    writers = [w for w in g.writes if w[0] in baselines]
    if d.kind == FIX_GRADIENT and writers and not g.gradcheck_failed and not g.baseline_out_of_tol:
        # the real defect: the layer's own gradient may be right
        out.append(
            f"{_writes(*writers[0])}: {_write_harm(*writers[0][1:])} Fix that first; its "
            "timings do not matter until then."
        )
        out += [f"{_writes(*w)}: fix that too." for w in writers[1:]]
    elif d.kind == FIX_GRADIENT and (broken := _no_gradient(g, baselines)):
        out.append(_no_gradient_sentence(*broken, "gradients" in g.agree))
        out += [f"{_writes(*w)}: fix that too." for w in writers]
    elif (
        d.kind == FIX_GRADIENT
        and not g.gradcheck_failed
        and _returns_of(g, baselines)
        and (far := _gradient_error(g)) >= _FORMULA_ERR
    ):
        # what it returns cannot explain an error this large: the formula is the defect
        # (2026-12-03: an interp1d backward that ignored grad_output, 2.3e+02 off, was
        # put down to its float32 knots, which cost 3.6e-08)
        out.append(
            f"The NumPy/SciPy gradients disagree with the float64 reference by up to "
            f"{_err({'max_rel_err': far})} (relative), far more than the precision it "
            "returns (the caution below) can explain: the gradient formula is wrong (a "
            "backward that drops grad_output, a missing transpose or term). Fix it first; "
            "its timings do not matter until then."
        )
        out += [f"{_writes(*w)}: fix that too." for w in writers]
    elif d.kind == FIX_GRADIENT and not g.gradcheck_failed and _returns_of(g, baselines):
        # what it returns (a dtype, float32 inside) is the likelier defect than its formula
        out.append(
            "The NumPy/SciPy gradients disagree with the float64 reference in the dtype "
            "measured, and what it returns (the caution below) is a likely cause, not "
            "necessarily its formula: fix that first; its timings do not matter until then."
        )
        out += [f"{_writes(*w)}: fix that too." for w in writers]
    elif d.kind == FIX_GRADIENT and (narrow := _right_only_in_float64(g, baselines)):
        # gradcheck (float64) passed: the formula is right, its precision is not
        out.append(
            f"{narrow[0]} passes gradcheck, so its gradient formula is right in float64, but "
            f"in {narrow[1]}, the dtype measured, its gradients disagree with the float64 "
            "reference where the native's agree: the formula loses precision there (a "
            "finite difference, a cancellation, a sum accumulated in the narrow dtype). "
            "Fix that first (compute the gradient in float64, or with a stabler formula), "
            "or port; its timings do not matter until then."
        )
        out += [f"{_writes(*w)}: fix that too." for w in writers]
    elif d.kind == FIX_GRADIENT:
        out.append(
            "The NumPy/SciPy gradient is wrong, so its timings do not matter until it is "
            "fixed (or replaced by the native implementation, whose autograd gradient is correct)."
        )
        out += [f"{_writes(*w)}: fix that too." for w in writers]
    out += [f"Caution: {_writes(*w)}." for w in g.writes if w[0] not in baselines]
    out += _check_sentences(d, baselines)
    out += _deviation_sentences(d)
    if g.agree:
        out.append(_agreement(g))
    for impl, how in g.returns:
        if impl in g.truncated:
            continue  # the verdict's own sentence (runtime_sentences) says it
        out.append(
            f"Caution: {impl} returns {how}."
            + _returns_consequence(d, impl in baselines, how, _no_gradient(g, {impl}) is None)
        )
    return out


def _no_gradient(g: GradientFindings, baselines: set[str]) -> tuple[str, str] | None:
    """(baseline, error) when the compared baseline's gradcheck failed because no
    gradient could be taken at all (an exception, not gradcheck's Jacobian mismatch):
    nothing says its formula is wrong (2026-12-02: a public Hausdorff loss calls
    ``.numpy()`` on a tensor that requires grad, and read "the gradient is wrong")."""
    for impl, err in g.gradcheck_failed:
        if impl in baselines and err and not re.search(r"GradcheckError|Jacobian|mismatch", err):
            return impl, err
    return None


def _no_gradient_sentence(baseline: str, error: str, native_agrees: bool) -> str:
    text = (
        f"{baseline} cannot be trained: no gradient can be taken through it ({error}), so "
        "there is no gradient to check or to time, and its timings do not matter until "
        "there is."
    )
    if "numpy() on Tensor that requires grad" in error:
        text += (
            " It converts a tensor that requires grad to NumPy outside a "
            "torch.autograd.Function, where autograd cannot follow: where what NumPy "
            "computes there needs no gradient (indices, an assignment, a mask), "
            "`.detach()` before `.numpy()` is the whole fix; otherwise put that code in "
            "an autograd.Function with a backward of its own"
        )
    else:
        text += " Make its backward run"
    return text + (
        ", or port (the native implementation's autograd gradient agrees with the reference)."
        if native_agrees
        else ", or port."
    )


def _right_only_in_float64(g: GradientFindings, baselines: set[str]) -> tuple[str, str] | None:
    """(baseline, the narrow dtype) when the baseline passes gradcheck and its gradients
    are out of tolerance only in a dtype narrower than float64 (2026-12-01: a public
    gammainc layer's finite-difference gradient, right in float64, 0.3 off in float32,
    read "the NumPy/SciPy gradient is wrong" beside "scipy passes gradcheck")."""
    passed = [b for b in g.gradcheck_passed if b in baselines]
    if not passed or g.gradcheck_failed:
        return None
    dtypes = {
        str(worst.get("dtype") or "")
        for _, what, _, worst in g.baseline_out_of_tol
        if what == "gradients"
    }
    if not dtypes or "float64" in dtypes or "" in dtypes:
        return None
    return passed[0], ", ".join(sorted(dtypes))


#: A baseline's relative gradient error from which what it returns (float32 inside, a
#: narrower dtype: errors of 1e-8 to 1e-4) is no explanation: its formula is wrong.
_FORMULA_ERR = 1e-2


def _gradient_error(g: GradientFindings) -> float:
    """The largest relative error of the baselines' gradients against the reference."""
    errs = [
        float(worst.get("max_rel_err") or 0.0)
        for _, what, _, worst in g.baseline_out_of_tol
        if what == "gradients"
    ]
    return max((e for e in errs if not math.isnan(e)), default=0.0)


def _returns_of(g: GradientFindings, baselines: set[str]) -> bool:
    """Whether a baseline returns another dtype than asked, or float32's rounding."""
    return any(impl in baselines for impl, _ in g.returns)


def _returns_consequence(
    d: LayerDecision, baseline: bool, how: str, has_gradient: bool = True
) -> str:
    """What a baseline's dtype mismatch ``how`` (``deviation.output_mismatch``) does to
    the checks or to the comparison, or "" (nothing about gradients for a baseline no
    gradient can be taken through: ``_no_gradient``)."""
    if not baseline:
        return ""
    found = returned_for(how)
    if found and BITS.get(found[0], 0) > BITS.get(found[1], 64):
        wide, given = found
        return (
            f" It then does {wide} work where the candidates do {given}: its speedups "
            f"compare dtypes as much as code (`--dtype {wide}` compares like with like)."
        )
    if INTEGER_TRUNCATION in how:  # deviation.integer_output: wrong, not imprecise
        return " Its outputs are wrong wherever a value has a fraction: fix that first."
    if d.use != "training" or not has_gradient:
        return ""
    if (far := _gradient_error(d.gradient)) >= _FORMULA_ERR:
        # the verdict says the formula is wrong: "not necessarily its formula" would argue
        # with it (2026-12-03, an interp1d backward that dropped grad_output)
        return (
            " It explains errors of its own precision, not gradients off by "
            f"{_err({'max_rel_err': far})}: gradcheck cannot judge "
            "it, so its gradients are judged against the float64 reference."
        )
    if SHORT_OF_FLOAT64 in how and FLOAT32_ROUNDING not in how:
        return (
            " That is its accuracy, not necessarily its gradient formula: gradcheck's "
            "finite differences need float64 accuracy and cannot judge it, so its "
            "gradients are judged against the float64 reference in the dtype measured, "
            "and the verdict stands on that dtype."
        )
    return (
        " That is a defect of its bridge to NumPy, not of its gradient formula: "
        "gradcheck, which needs float64 end to end, cannot judge it, so its "
        "gradients are judged against the float64 reference in the dtype measured, "
        "and the verdict stands on that dtype."
    )


def _check_sentences(d: LayerDecision, baselines: set[str]) -> list[str]:
    """What the checks of the gradient found: randomness, gradcheck, the reference's."""
    g = d.gradient
    out: list[str] = []
    for impl, diff in g.random:
        out.append(
            f"{impl} is random: two calls on the same input differ (max relative difference "
            f"{_err({'max_rel_err': diff})}), so its outputs and gradients are not held "
            "against the float64 reference"
            + (
                "; gradcheck ran with NumPy's, Python's and torch's global generators "
                "reseeded before each call (a routine with a generator of its own, "
                "ARPACK's random start vector say, still draws afresh)."
                if impl in baselines and d.use == "training"
                else "."
            )
        )
    ill_posed = _ill_posed(g)
    said = _no_gradient(g, baselines) if d.kind == FIX_GRADIENT else None
    for impl, why in g.gradcheck_failed:
        if said is not None and said == (impl, why):
            continue  # "cannot be trained" gave that error already
        out.append(
            f"{impl} fails torch.autograd.gradcheck"
            + (f" ({why})" if why else "")
            + (", which is not held against it: see the reference below" if ill_posed else "")
            + "."
        )
    if g.gradcheck_passed and not g.gradcheck_failed and not _right_only_in_float64(g, baselines):
        out.append(f"{', '.join(g.gradcheck_passed)} passes gradcheck.")
    if ill_posed:
        out.append(
            f"The reference's own backward raises at the gradcheck point ({g.reference_failed}): "
            "the loss of a random upstream gradient is ill-defined there (an output defined "
            "only up to a phase or sign, as an SVD's singular vectors are, makes it depend "
            "on that choice), so neither the reference's gradients nor gradcheck judge a "
            "gradient of this layer: check it on a loss that does not depend on the choice "
            "(for an SVD: the singular values, or U·diag(S)·Vᴴ)."
        )
    elif g.reference_failed is not None:
        out.append(
            f"The reference itself fails gradcheck ({g.reference_failed}): its gradients are "
            "not the derivative of its output over every input entry (a reference whose "
            "backward assumes a structure of its input has the gradient of another "
            "function, as torch.linalg.eigh's, which assumes a symmetric matrix and returns "
            "the symmetric part of the gradient; or the inputs drawn here lack a structure "
            "it needs), so they judge no gradient here, and "
            "gradients off from them are not marked: gradcheck alone judges."
        )
    return out


def _also_out(worst: Mapping[str, Any]) -> str:
    """`` (grad_b out of tolerance too)``: the other tensors a row set names."""
    others = [
        t for t in tensor_names(worst.get("tensors_out_of_tol")) if t != worst.get("worst_tensor")
    ]
    return f" ({' and '.join(others)} out of tolerance too)" if others else ""


def baseline_output_sentences(d: LayerDecision) -> list[str]:
    """The baseline's outputs out of tolerance, by size: what an inference verdict that
    follows the training one says of them (2026-12-02: a von Mises-Fisher log-normaliser
    whose SciPy forward overflows to inf past kappa 713 read "Inference verdict: port",
    its wrong outputs said only in the training paragraph)."""
    return [
        _baseline_deviation(d, *found) for found in d.gradient.baseline_out_of_tol
        if found[1] == "outputs"
    ]  # fmt: skip


def candidate_output_sentences(d: LayerDecision) -> list[str]:
    """The candidates' outputs out of tolerance: what an inference verdict that follows
    the training one says of them, as of the baseline's (2026-12-03: a float32 soft
    sort's natives, 0.41 off at n=256, read "Inference verdict: undecided" with their
    cautions only in the training paragraph)."""
    return [_native_caution(d, *found) for found in d.gradient.native_out_of_tol
            if found[2] == "outputs"]  # fmt: skip


def _native_caution(
    d: LayerDecision,
    label: str,
    native: str,
    noun: str,
    sizes: Sequence[float],
    worst: Mapping[str, Any],
) -> str:
    """``Caution: torch's outputs exceed tolerance at n=256 (max relative error 0.41)``,
    with why where it is the reference's own function or a form of it."""
    g = d.gradient
    tensor = worst.get("worst_tensor")  # which of several outputs, which gradient
    own = g.reference_is and g.reference_is in (native, worst.get("source"))
    return (
        f"Caution: {native}'s {noun} exceed tolerance{_label(label)} at "
        f"{_sizes(d.size_axis, sizes)} (max relative error {_err(worst)}"
        + (f" in {tensor}" if tensor and tensor != "output" else "")
        + (_also_out(worst) if tensor and tensor != "output" else "")
        + ")"
        + (
            (
                f": {native} is the reference's own function"
                if g.reference_is == native
                else f": {native} is a form of the reference's own function ({g.reference_is})"
            )
            + ", so this is that computation's "
            f"rounding in {worst.get('dtype') or 'the dtype measured'}, which no port "
            "in it avoids; it is weighed all the same."
            if own
            else "."
        )
    )


def _baseline_deviation(
    d: LayerDecision, label: str, noun: str, sizes: Sequence[float], worst: Mapping[str, Any]
) -> str:
    baseline = next((s.baseline for s in d.settings if s.baseline), "the baseline")
    return (
        f"{baseline}'s {noun} disagree with the float64 reference{_label(label)} at "
        f"{_sizes(d.size_axis, sizes)}: max relative error {_err(worst)}"
        + (f" in {worst['worst_tensor']}" if worst.get("worst_tensor") else "")
        + _also_out(worst)
        + (
            f" (the tolerance for {worst['dtype']}: {tolerance_text(str(worst['dtype']))})"
            if worst.get("dtype")
            else ""
        )
        + "."
        + (_GAUGE if noun == "outputs" and _ill_posed(d.gradient) else "")
    )


def _deviation_sentences(d: LayerDecision) -> list[str]:
    """Outputs and gradients out of tolerance, and the baseline's failures, by size."""
    g = d.gradient
    out = [_baseline_deviation(d, *found) for found in g.baseline_out_of_tol]
    out += [_native_caution(d, *found) for found in g.native_out_of_tol]
    # phases that fail alike (the same sizes, the same error) are one sentence: a
    # backward that raises fails the step with it, and two sentences read as two defects
    alike: dict[tuple[str, str, tuple[float, ...], str], list[str]] = {}
    for label, baseline, phase, sizes, error in g.baseline_failures:
        alike.setdefault((label, baseline, sizes, error), []).append(phase)
    for (label, baseline, sizes, error), phases in alike.items():
        words = [_FAILING_PHASE.get(ph, ph) for ph in phases]
        verb = "fails" if len(words) == 1 else "fail"
        out.append(
            f"{baseline}'s {' and '.join(words)} {verb}{_label(label)} at "
            f"{_sizes(d.size_axis, sizes)}: {error}"
            + (
                "; no training speedup there (none is estimated from forward + backward)."
                if "step" in phases
                else "."
            )
        )
    return out


_FAILING_PHASE = {"step": "training step"}


def _writes(impl: str, phase: str, names: Sequence[str]) -> str:
    """``numpy writes into its input 'x' (through tensor.numpy(), say)``, or what a
    backward writes into: its saved inputs, the upstream gradient it is handed."""
    who = impl if phase == "forward" else f"{impl}'s backward"
    via = ["tensor.numpy()"] if phase == "forward" else []
    if phase != "forward" and any(n != UPSTREAM_GRADIENT for n in names):
        via.append("a saved tensor's .numpy()")
    if phase != "forward" and UPSTREAM_GRADIENT in names:
        via.append("grad.numpy()")
    return f"{who} writes into {written_what(names)} (through {' and '.join(via)}, say)"


def _write_harm(phase: str, names: Sequence[str]) -> str:
    """Why a write into ``names`` makes the gradients around the layer wrong."""
    if phase == "backward" and UPSTREAM_GRADIENT in names:
        return (
            "autograd may hand that same tensor to other branches of the graph (an "
            "addition's backward passes it to both operands), whose gradients then change "
            "behind autograd's back."
        )
    return (
        "the caller's tensor changes behind autograd's back, so the gradients of the "
        "graph around the layer that use it are wrong."
    )


def _compile_check_sentence(d: LayerDecision) -> str | None:
    """What torch.compile of the baseline as declared does: the verdict, a graph break,
    a failure; None when there is nothing to say."""
    check = d.compile_check
    base_name = next((s.baseline for s in d.settings if s.baseline), None)
    if d.kind == COMPILE_AS_IS:
        return (
            f"torch.compile of {base_name} exactly as declared runs with no graph break, agrees "
            "with the float64 reference and is as fast as the best native candidate: compile "
            "it (`torch.compile(layer)`) rather than rewrite it."
        )
    if check is None or not base_name:
        return None
    breaks = check.get("graph_breaks")
    reason = check.get("reason")
    if check.get("status") == "ok" and breaks:
        return (
            f"torch.compile of {base_name} as declared breaks the graph {int(breaks)} time(s)"
            + (f" (first: {reason})" if reason else "")
            + ": Dynamo cannot trace all of it, so compiling it as is is no port."
        )
    if check.get("status") != "ok":
        said = [s.compiled.error for s in d.settings if s.compiled and s.compiled.error]
        if reason and any(str(reason)[:60] in str(e) for e in said):
            return None  # each setting's "was not timed" says it already (dynoNet, twice)
        return (
            f"torch.compile cannot run {base_name} as declared"
            + (f": {reason}" if reason else "")
            + "."
        )
    return None


def _port_sentences(d: LayerDecision) -> list[str]:
    """What a port costs once and enables, and whether the settings disagree."""
    out: list[str] = []
    for impl, size, calls in d.break_even:
        out.append(
            f"{impl}'s one-off cost needs {math.ceil(calls):,} calls to pay off at "
            f"{d.size_axis}={fmt_size(size)}: worth it only where the process runs the layer "
            "that often."
        )
    if d.capability_gains:
        names = [CHECK_LABELS.get(c, c) for c in d.capability_gains]
        out.append(f"Porting to {d.native_source} also makes possible: " + ", ".join(names) + ".")
    elif d.native_source and d.capabilities_checked:
        out.append("The capability matrix shows nothing that porting would add.")
    if d.mixed and d.kind not in (FIX_GRADIENT, UNDECIDED):
        out.append("The settings disagree (below), so the layer's verdict is the cautious one.")
    return out


#: Said beside outputs that disagree where the reference's backward found its loss
#: ill-defined: the outputs themselves may be defined only up to a choice.
_GAUGE = (
    " The reference's backward says its outputs are defined only up to a phase or sign "
    "(see above): a different choice of it reads as a disagreement here, so compare "
    "quantities that do not depend on it (for an SVD: the singular values, U·diag(S)·Vᴴ), "
    "or fix the choice in every implementation and the reference alike."
)


def _ill_posed(g: GradientFindings) -> bool:
    """Whether the reference's own backward raised at the gradcheck point."""
    return reference_raised(g.reference_failed)


def _agreement(g: GradientFindings) -> str:
    """``Outputs and gradients agree with the float64 reference within float32's
    tolerance (|a − r| ≤ …; largest relative error 3.4e-04 …).``"""
    rule = "; ".join(f"{dt}: {tolerance_text(dt)}" for dt in g.dtypes) or "the dtype's rule"
    narrowed = _narrowed(g)
    if narrowed:  # held to the dtype each returns (harness.deviation.judged_dtype)
        rule += "; " + "; ".join(
            f"{impl}, which returns {dt}: {dt}'s {tolerance_text(dt)}" for impl, dt in narrowed
        )
    whose = " and ".join(g.agree)
    if "gradients" in g.agree and any(f[2] in ("backward", "step") for f in g.baseline_failures):
        # a backward that raised has no gradient to agree (said with its failure)
        whose = whose.replace("gradients", "the gradients computed")
    if g.random:  # they are not judged: the sentence is of the others
        whose = f"the other implementations' {whose}"
    reference = "the float64 reference"
    if g.reference_is:  # 2026-12-01: a baseline-only layer compared with itself, unsaid
        reference += f" ({g.reference_is}'s own function, run in float64)"
    text = f"{whose[0].upper()}{whose[1:]} agree with {reference} within tolerance ({rule}"
    worst = g.worst_agreeing_error
    if worst is not None:
        text += f"; largest relative error {fmt_rel_err(worst)}"
        if g.worst_agreeing_impl:
            text += f", {g.worst_agreeing_impl}'s"
        rtol = min((RTOL[dt] for dt in g.dtypes if dt in RTOL), default=None)
        if rtol is not None and worst > rtol and g.worst_agreeing_impl in dict(narrowed):
            text += f", held to {dict(narrowed)[g.worst_agreeing_impl]}'s tolerance"
        elif rtol is not None and worst > rtol:
            text += ", on entries small against max|r|, which the rule's second term covers"
    return text + ")."


def _narrowed(g: GradientFindings) -> list[tuple[str, str]]:
    """(implementation, the dtype it returns) where it returns a narrower floating dtype
    than its input's (``deviation.output_mismatch``): its results were held to that
    dtype's tolerance (``deviation.judged_dtype``)."""
    # only where the run measured the wider dtype: a float32 run holds it to float32
    # anyway (the narrowing was seen by gradcheck, in float64)
    return [
        (impl, narrow)
        for impl, how in g.returns
        for dt in g.dtypes
        if (narrow := narrowed_to(how, dt)) is not None
    ]


def budget_sentence(timing: Mapping[str, Any], min_rounds: int | None = None) -> str | None:
    """How the timing budget was spent, from run.json's ``timing`` (``min_rounds``: the
    profile's fewest rounds per process in a pass, which explains an overrun)."""
    if not timing or not timing.get("first_pass"):
        return None
    first = timing["first_pass"]
    text = (
        f"Timing budget {timing.get('budget_s', 0):g}s: a first pass of {first.get('processes')} "
        f"processes × {first.get('rounds')} paired rounds over {first.get('groups')} points "
        f"({first.get('seconds', 0):.0f}s)"
    )
    extra = timing.get("adaptive") or []
    if extra:
        rounds = sum(int(e.get("rounds", 0)) for e in extra)
        groups = sum(int(e.get("groups", 0)) for e in extra)
        seconds = sum(float(e.get("seconds", 0)) for e in extra)
        text += (
            f", then {len(extra)} adaptive process(es) giving {rounds} more rounds to "
            f"{groups} undecided point(s) in all ({seconds:.0f}s)"
        )
    spent = float(timing.get("spent_s") or 0)
    text += f"; {spent:.0f}s spent"
    timed = timing.get("timed_s")
    if isinstance(timed, int | float) and spent > 0:
        starts = [t for t in timing.get("worker_starts_s") or [] if isinstance(t, int | float)]
        workers = (
            f"starts {len(starts)} worker{'s' if len(starts) != 1 else ''} "
            f"({sum(starts):.0f}s: torch, the layers and the toolchains imported in each)"
            if starts
            else "starts workers"
        )
        prep = timing.get("prepare_s")
        prepared = float(prep) if isinstance(prep, int | float) and prep >= 0.5 else 0.0
        building = (
            f"forks each implementation's processes of each group, builds its form in "
            f"them and warms them up ({prepared:.0f}s)"
            if prepared
            else "builds each form in each process"
        )
        text += (
            f", {timed:.0f}s ({100 * timed / spent:.0f}%) of it inside timed values and "
            f"warm-ups (the rest {workers}, {building}"
        )
        wait = timing.get("pool_wait_s")
        waited = float(wait) if isinstance(wait, int | float) and wait >= 0.5 else 0.0
        if waited:
            text += (
                f" and waits, {wait:.0f}s in all, for other implementations' thread pools "
                "to go quiet before a value"
            )
        # what no measure names: the runner and pipes between values, and where the
        # preparing was not measured (runs from before prepare_s), the forms too
        rest = spent - timed - sum(starts) - waited - prepared
        if rest >= 0.5:
            between = "between values" if prepared else "building the forms and between values"
            text += f"; {rest:.0f}s {between}"
        text += ")"
    if timing.get("stopped"):
        text += f"; stopped: {timing['stopped']}"
    overrun = _first_pass_overrun(timing, min_rounds)
    if overrun:
        text += f". {overrun}"
    profiling = timing.get("profiling") or {}
    if profiling.get("seconds") is not None:  # issue 19: where the time goes
        text += (
            f". Profiling where the time goes (`--breakdown {profiling.get('mode')}`, after "
            f"timing, apart from it): {profiling.get('variants', 0)} implementation(s) × "
            f"size(s), {float(profiling['seconds']):.0f}s"
        )
    return text + "."


def _first_pass_overrun(timing: Mapping[str, Any], min_rounds: int | None) -> str | None:
    """Why a run spent more than its budget, when its first pass alone did. The first
    pass is sized to half the budget, so that adaptive rounds can narrow what stays
    undecided, but never takes fewer than the profile's minimum rounds per process."""
    first = timing.get("first_pass") or {}
    budget = float(timing.get("budget_s") or 0)
    seconds = float(first.get("seconds") or 0)
    if budget <= 0 or seconds - budget < 0.5:  # "overran by 0s" says nothing
        return None
    rounds = first.get("rounds")
    fits = 10 * math.ceil(2 * seconds / 10)
    if min_rounds is not None and rounds == min_rounds:
        why = (
            f"this grid needs that long at the fewest rounds a pass takes ({rounds} per "
            "process), worker start-up and building each form in its process included"
        )
    else:
        why = (
            "it took longer than the setup's calibration predicted (worker start-up and "
            "building each form in its process are estimated, not measured)"
        )
    return (
        f"The first pass alone overran the budget by {seconds - budget:.0f}s: {why}; no "
        f"time was left for adaptive rounds. A budget it fits is about `--budget {fits}` "
        "(the first pass takes half of it), or narrow the grid"
    )


_CHECK_WORDS = {
    "validate": "declaration check",
    "capabilities": "capability matrix",
    "gradcheck": "gradcheck",
    "setup": "deviation, peak memory, one-off cost and loop calibration",
    "breakdown": "where-the-time-goes profile",
}


def cache_sentence(cache: Mapping[str, Any]) -> str | None:
    """What came from the cache of checks across runs, from run.json's ``cache``:
    which checks, for which layers (``harness.cache``)."""
    if not cache:
        return None
    if not cache.get("enabled"):
        return "Cache of checks: off (`--no-cache`): every check was computed."
    hits: Mapping[str, Mapping[str, int]] = cache.get("hits") or {}
    misses: Mapping[str, Mapping[str, int]] = cache.get("misses") or {}
    parts = []
    for check, words in _CHECK_WORDS.items():
        layers = hits.get(check) or {}
        if layers:
            shown = ", ".join(f"{layer} ({n})" for layer, n in sorted(layers.items()))
            parts.append(f"{words} of {shown}")
    computed = sum(n for by_layer in misses.values() for n in by_layer.values())
    served = "; ".join(parts) if parts else "nothing"
    text = f"From the cache of checks (`{cache.get('dir')}`): {served}; {computed} computed"
    damaged = int(cache.get("damaged") or 0)
    if damaged:
        text += f", {damaged} of them because their cache entry was damaged"
    if hits.get("setup"):
        return text + (
            ". Every timed round ran in full; each timing process checked the cached loop "
            "calibration in its warm-up round."
        )
    return text + ". Every timed round ran in full."


def _label(label: str) -> str:
    return f" ({label})" if label else ""


def _err(row: Mapping[str, Any]) -> str:
    err = row.get("max_rel_err")
    return "unknown" if err is None else fmt_rel_err(float(err))


def _dedupe(items: Sequence[str]) -> list[str]:
    """``items`` once each, each ending in one full stop: a sentence that ends with a
    quoted message ends with the message's own (``... Use np.float64 instead.``)."""
    return list(
        dict.fromkeys(s[:-1] if s.endswith("..") and not s.endswith("...") else s for s in items)
    )
