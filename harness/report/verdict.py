"""Per-layer verdicts: port, keep, port above size N, keep above size N, or fix the
gradient first, with the reasons in figures.

How a verdict is reached, for each *setting* of a layer (fixed non-size axes such as
conv2d's ``k``, dtype, threads, device):

1. The decision metric is the time of a training step, forward + backward, when the
   NumPy/SciPy baseline has backward rows; forward alone otherwise. Native forms that
   cannot run backward (ONNX Runtime) then only appear in the per-phase figures.
2. The *best native* implementation is the one measured at the most sizes, then the
   one with the lowest geometric mean time relative to the baseline.
3. At each size the speedup is baseline time / native time (medians). A side *wins*
   only when the difference is statistically significant (two-sided Mann-Whitney U
   on pyperf's raw values at ``alpha``; where raw values are absent or too few, the
   min-max ranges must not overlap) **and** at least ``min_effect`` (5%) large.
   Failures are reported; they decide only where no measured size is decisive (a
   baseline that fails everywhere loses to a native one that runs).
4. A *crossover* is where the speedup crosses 1 between two neighbouring sizes,
   interpolated linearly in log(size)-log(speedup) space (geometrically).
5. Only the native side wins anywhere: *port*. Only the baseline, or nobody: *keep*.
   Both: the side that wins at the largest sizes decides, *port above size N* or
   *keep above size N*, N being the crossover just below its winning stretch (or,
   where the speedup does not cross 1 there, the last size the other side won).
6. Whatever the speed, a baseline that fails ``gradcheck``, or whose gradients are
   outside tolerance where the best native's are within, gets *fix the gradient first*.

A layer's verdict merges its settings': any *fix the gradient first* wins; equal
kinds stay (the largest N for *port above*, the smallest for *keep above*); *port*
mixed with *port above* is *port above* the largest N; any other mix is *keep*, with
each setting's verdict listed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.report._data import (
    Measure,
    Setting,
    impl_order,
    layer_names,
    measure,
    records,
    settings,
    size_axis,
)
from harness.report._format import fmt_rel_err, fmt_size, fmt_speedup
from harness.report._stats import ALPHA, MIN_EFFECT, Significance, compare_measures

__all__ = [
    "CAPABILITY_NAMES",
    "FIX_GRADIENT",
    "KEEP",
    "KEEP_ABOVE",
    "KINDS",
    "PORT",
    "PORT_ABOVE",
    "Crossover",
    "PointResult",
    "SettingVerdict",
    "Verdict",
    "find_crossovers",
    "layer_verdicts",
]

PORT = "port"
KEEP = "keep"
PORT_ABOVE = "port above size N"
KEEP_ABOVE = "keep above size N"
FIX_GRADIENT = "fix the gradient first"
KINDS = (PORT, KEEP, PORT_ABOVE, KEEP_ABOVE, FIX_GRADIENT)

#: Capability checks in words.
CAPABILITY_NAMES: dict[str, str] = {
    "script_save": "TorchScript (script and save)",
    "trace": "torch.jit.trace",
    "compile_fullgraph": "torch.compile with fullgraph=True",
    "compile": "torch.compile",
    "onnx_dynamo": "ONNX export (dynamo)",
    "onnx_legacy": "ONNX export (TorchScript-based)",
}

_PHASES = ("forward", "backward")
TOTAL = "forward + backward"


@dataclass(frozen=True)
class PointResult:
    """Baseline against one native implementation at one size."""

    size: float
    baseline: Measure
    native: Measure
    test: Significance | None
    winner: str
    """``native``, ``baseline``, ``tie``, ``baseline failed``, ``native failed`` or ``none``."""

    @property
    def speedup(self) -> float | None:
        """Baseline time / native time (above 1: the native side is faster)."""
        return None if self.test is None else self.test.ratio

    @property
    def decisive(self) -> str | None:
        """The side that wins here, if any."""
        if self.winner in ("native", "baseline failed"):
            return "native"
        if self.winner in ("baseline", "native failed"):
            return "baseline"
        return None


@dataclass(frozen=True)
class Crossover:
    """Where the faster side changes, between grid sizes ``lower`` and ``upper``."""

    size: float
    lower: float
    upper: float
    faster_above: str
    """``native`` or ``baseline``: the side that is faster above ``size``."""


def find_crossovers(points: Sequence[tuple[float, float]]) -> list[Crossover]:
    """Crossovers of (size, speedup) pairs, sorted by size.

    Between neighbouring sizes whose speedups lie on either side of 1, the crossing is
    interpolated linearly in log(size) against log(speedup): the geometric
    interpolation, exact for power laws.
    """
    pts = sorted((float(s), float(r)) for s, r in points if s > 0 and r > 0)
    out = []
    prev: tuple[float, float] | None = None  # last point off the 1x line
    exact: float | None = None  # a point exactly on it since then
    for s1, r1 in pts:
        l1 = math.log(r1)
        if l1 == 0:
            exact = s1 if exact is None else exact
            continue
        if prev is not None:
            s0, r0 = prev
            l0 = math.log(r0)
            if (l0 < 0) != (l1 < 0):
                if exact is not None:
                    size = exact
                else:
                    t = l0 / (l0 - l1)
                    size = math.exp(math.log(s0) + t * (math.log(s1) - math.log(s0)))
                out.append(Crossover(size, s0, s1, "native" if l1 > 0 else "baseline"))
        prev, exact = (s1, r1), None
    return out


@dataclass(frozen=True)
class SettingVerdict:
    """The verdict for one setting of a layer (see the module docstring)."""

    label: str
    context: str
    kind: str
    threshold: float | None
    threshold_interpolated: bool
    baseline: str | None
    native: str | None
    metric: str
    points: tuple[PointResult, ...]
    phase_points: Mapping[str, tuple[PointResult, ...]]
    crossovers: Mapping[str, tuple[Crossover, ...]]
    reasons: tuple[str, ...]
    gradient_problem: bool = False


@dataclass(frozen=True)
class Verdict:
    """A layer's verdict, merged from its settings, with the reasons in sentences."""

    layer: str
    kind: str
    threshold: float | None
    threshold_interpolated: bool
    size_axis: str
    settings: tuple[SettingVerdict, ...]
    reasons: tuple[str, ...] = ()
    capability_gains: tuple[str, ...] = ()
    mixed: bool = False

    @property
    def headline(self) -> str:
        """The verdict in a few words: ``port above n ≈ 91``."""
        return _headline(self.kind, self.threshold, self.threshold_interpolated, self.size_axis)


def _headline(kind: str, threshold: float | None, interpolated: bool, axis: str) -> str:
    if kind in (PORT_ABOVE, KEEP_ABOVE) and threshold is not None:
        word = "port" if kind == PORT_ABOVE else "keep"
        sign = "≈" if interpolated else "="
        return f"{word} above {axis} {sign} {fmt_size(threshold)}"
    return kind


# ---------------------------------------------------------------------------- helpers


def _row(setting: Setting, impl: str, phase: str, size: float) -> Mapping[str, Any] | None:
    for r in setting.rows:
        if (
            r.get("impl") == impl
            and r.get("phase") == phase
            and r.get("size") is not None
            and float(r["size"]) == size
        ):
            return r
    return None


def _sizes(setting: Setting) -> list[float]:
    return sorted({float(r["size"]) for r in setting.rows if r.get("size") is not None})


def _metric_measure(
    setting: Setting,
    impl: str,
    size: float,
    phases: Sequence[str],
    raw: Mapping[str, Sequence[float]],
) -> Measure:
    ms = [measure(_row(setting, impl, p, size), raw) for p in phases]
    out = ms[0]
    for m in ms[1:]:
        out = out + m
    return out


def _compare(
    size: float, base: Measure, nat: Measure, alpha: float, min_effect: float
) -> PointResult:
    if base.ok and nat.ok:
        t = compare_measures(base, nat, alpha=alpha, min_effect=min_effect)
        winner = ("native" if t.ratio > 1 else "baseline") if t.decisive else "tie"
        return PointResult(size, base, nat, t, winner)
    if nat.ok and base.status == "error":
        return PointResult(size, base, nat, None, "baseline failed")
    if base.ok and nat.status == "error":
        return PointResult(size, base, nat, None, "native failed")
    return PointResult(size, base, nat, None, "none")


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.inf


def _span(values: Sequence[float]) -> str:
    lo, hi = min(values), max(values)
    if fmt_speedup(lo) == fmt_speedup(hi):
        return fmt_speedup(lo)
    return f"{fmt_speedup(lo)}–{fmt_speedup(hi)}"


def _size_span(axis: str, sizes: Sequence[float]) -> str:
    if len(sizes) == 1:
        return f"{axis}={fmt_size(sizes[0])}"
    return f"{axis}={fmt_size(min(sizes))}–{fmt_size(max(sizes))}"


def _sizes_list(axis: str, sizes: Sequence[float]) -> str:
    return f"{axis}=" + ", ".join(fmt_size(s) for s in sizes)


def describe_bands(
    points: Sequence[PointResult], crossovers: Sequence[Crossover], axis: str
) -> str:
    """Speedup per size band (bands split at crossovers): ``×0.4–×0.8 at n=8–64, ...``."""
    measured = [p for p in points if p.speedup is not None]
    if not measured:
        return "not measured on both sides"
    cuts = [c.size for c in crossovers]
    bands: list[list[PointResult]] = [[]]
    for p in measured:
        while cuts and p.size > cuts[0]:
            cuts.pop(0)
            if bands[-1]:
                bands.append([])
        bands[-1].append(p)
    parts = []
    for band in bands:
        if not band:
            continue
        ratios = [p.speedup for p in band if p.speedup is not None]
        parts.append(f"{_span(ratios)} at {_size_span(axis, [p.size for p in band])}")
    return ", ".join(parts)


def _describe_crossovers(
    crossovers: Sequence[Crossover], axis: str, native: str, baseline: str
) -> str:
    parts = []
    for c in crossovers:
        faster = native if c.faster_above == "native" else baseline
        parts.append(
            f"{axis} ≈ {fmt_size(c.size)} (between {fmt_size(c.lower)} and {fmt_size(c.upper)}; "
            f"{faster} faster above)"
        )
    return "; ".join(parts)


# ---------------------------------------------------------------------------- settings


def _best_native(
    setting: Setting,
    natives: Sequence[str],
    baseline: str,
    sizes: Sequence[float],
    phases: Sequence[str],
    raw: Mapping[str, Sequence[float]],
) -> str | None:
    scored = []
    for order, impl in enumerate(natives):
        ratios, coverage = [], 0
        for size in sizes:
            nat = _metric_measure(setting, impl, size, phases, raw)
            if not nat.ok:
                continue
            coverage += 1
            base = _metric_measure(setting, baseline, size, phases, raw)
            if base.ok and nat.median and base.median:
                ratios.append(nat.median / base.median)
        if coverage:
            scored.append((-coverage, _geomean(ratios), order, impl))
    return min(scored)[3] if scored else None


def _setting_verdict(
    setting: Setting,
    axis: str,
    raw: Mapping[str, Sequence[float]],
    alpha: float,
    min_effect: float,
) -> SettingVerdict:
    rows = setting.rows
    order = impl_order(rows)
    baselines = [
        i for i in order if any(r["impl"] == i and r.get("role") == "baseline" for r in rows)
    ]
    natives = [i for i in order if i not in baselines]
    sizes = _sizes(setting)
    if not baselines or not natives:
        what = "no NumPy/SciPy implementation" if not baselines else "no native implementation"
        return SettingVerdict(
            setting.label, setting.context, KEEP, None, False,
            baselines[0] if baselines else None, natives[0] if natives else None,
            "forward", (), {}, {}, (f"Nothing to compare: {what} was measured.",),
        )  # fmt: skip
    baseline = baselines[0]
    reasons: list[str] = []

    has_backward = any(r.get("phase") == "backward" for r in setting.rows_for(baseline, "backward"))
    metric_phases: tuple[str, ...] = ("forward",)
    best = None
    if has_backward:
        best = _best_native(setting, natives, baseline, sizes, _PHASES, raw)
        if best is not None:
            metric_phases = _PHASES
    if best is None:
        best = _best_native(setting, natives, baseline, sizes, ("forward",), raw)
    metric = TOTAL if metric_phases == _PHASES else "forward"
    if best is None:
        return SettingVerdict(
            setting.label, setting.context, KEEP, None, False, baseline, None, metric,
            (), {}, {}, ("No native implementation ran successfully.",),
        )  # fmt: skip

    points = tuple(
        _compare(
            s,
            _metric_measure(setting, baseline, s, metric_phases, raw),
            _metric_measure(setting, best, s, metric_phases, raw),
            alpha,
            min_effect,
        )
        for s in sizes
    )
    phase_points = {
        phase: tuple(
            _compare(
                s,
                measure(_row(setting, baseline, phase, s), raw),
                measure(_row(setting, best, phase, s), raw),
                alpha,
                min_effect,
            )
            for s in sizes
        )
        for phase in _PHASES
        if setting.rows_for(baseline, phase)
    }
    crossovers = {
        key: tuple(find_crossovers([(p.size, p.speedup) for p in pts if p.speedup is not None]))
        for key, pts in [(metric, points), *phase_points.items()]
    }

    # decide
    # Sides win on measured sizes; where nothing measured is decisive, a side that
    # runs where the other fails wins.
    decisive = [(p.size, p.winner) for p in points if p.winner in ("native", "baseline")]
    if not decisive:
        decisive = [(p.size, p.decisive) for p in points if p.decisive]
    blocks: list[tuple[str, list[float]]] = []
    for size, side in decisive:
        if blocks and blocks[-1][0] == side:
            blocks[-1][1].append(size)
        else:
            blocks.append((str(side), [size]))
    threshold: float | None = None
    interpolated = False
    if not blocks:
        kind = KEEP
    elif len(blocks) == 1:
        kind = PORT if blocks[0][0] == "native" else KEEP
    else:
        winner, stretch = blocks[-1]
        below = blocks[-2][1][-1]
        kind = PORT_ABOVE if winner == "native" else KEEP_ABOVE
        inside = [
            c
            for c in crossovers[metric]
            if below <= c.lower and c.upper <= stretch[0] and c.faster_above == winner
        ]
        if inside:
            threshold, interpolated = inside[-1].size, True
        else:
            threshold = below
        if len(blocks) > 2:
            reasons.append(
                f"The faster side changes more than once ({len(blocks) - 1} times); "
                "the verdict follows the largest sizes."
            )

    # reasons in figures
    what = "a training step (forward + backward)" if metric == TOTAL else "forward"
    reasons.insert(
        0,
        f"Speedup of {best} over {baseline} on {what}: "
        f"{describe_bands(points, crossovers[metric], axis)}.",
    )
    if crossovers[metric]:
        reasons.insert(
            1,
            "The faster side changes at "
            + _describe_crossovers(crossovers[metric], axis, best, baseline)
            + ".",
        )
    if metric == TOTAL:
        per_phase = []
        for phase, pts in phase_points.items():
            text = f"{phase} {describe_bands(pts, crossovers[phase], axis)}"
            if crossovers[phase]:
                text += (
                    " (crossover "
                    + ", ".join(f"{axis} ≈ {fmt_size(c.size)}" for c in crossovers[phase])
                    + ")"
                )
            per_phase.append(text)
        reasons.append("By phase: " + "; ".join(per_phase) + ".")
    reasons.append(_significance_sentence(points, axis, alpha, min_effect))
    bad = [p for p in points if p.winner == "native failed"]
    if bad:
        reasons.append(
            f"{best} fails at {_sizes_list(axis, [p.size for p in bad])}: "
            f"{bad[0].native.error or 'no message'}."
        )
    if not blocks:
        reasons.append("With no significant difference, speed is no reason to port.")
    return SettingVerdict(
        setting.label,
        setting.context,
        kind,
        threshold,
        interpolated,
        baseline,
        best,
        metric,
        points,
        phase_points,
        crossovers,
        tuple(reasons),
    )


def _significance_sentence(
    points: Sequence[PointResult], axis: str, alpha: float, min_effect: float
) -> str:
    tested = [p for p in points if p.test is not None]
    if not tested:
        return "No size was measured successfully on both sides, so nothing was tested."
    wins = [p for p in tested if p.winner in ("native", "baseline")]
    methods = sorted({p.test.method.split(" ranges")[0] for p in tested if p.test is not None})
    how = " / ".join(methods)
    text = (
        f"The difference is significant and at least {min_effect:.0%} "
        f"({how}, p < {alpha:g}) at {len(wins)} of {len(tested)} sizes"
    )
    rest = [p.size for p in tested if p.winner == "tie"]
    if rest and wins:
        text += f"; not at {_sizes_list(axis, rest)}"
    return text + "."


# ---------------------------------------------------------------------------- layer


def _gradient_findings(
    layer_rows: Sequence[Mapping[str, Any]],
    verdicts: Sequence[SettingVerdict],
    setting_list: Sequence[Setting],
    axis: str,
) -> tuple[bool, list[str]]:
    """(fix the gradient first?, sentences about outputs and gradients)."""
    sentences: list[str] = []
    fix = False
    baselines = {str(r["impl"]) for r in layer_rows if r.get("role") == "baseline"}
    back = [r for r in layer_rows if r.get("impl") in baselines and r.get("phase") == "backward"]
    failed_gc = [r for r in back if r.get("gradcheck") is False]
    if failed_gc:
        fix = True
        r = failed_gc[0]
        msg = r.get("gradcheck_error")
        sentences.append(
            f"{r['impl']} fails torch.autograd.gradcheck" + (f" ({msg})" if msg else "") + "."
        )
    elif any(r.get("gradcheck") is True for r in back):
        sentences.append(
            f"{', '.join(sorted({str(r['impl']) for r in back if r.get('gradcheck') is True}))} passes gradcheck."
        )

    problem = {"outputs": False, "gradients": False}
    known_any = {"outputs": False, "gradients": False}
    agree: dict[str, list[float]] = {"outputs": [], "gradients": []}
    for setting, sv in zip(setting_list, verdicts, strict=True):
        suffix = f" ({setting.label})" if setting.label else ""
        for phase, noun in (("forward", "outputs"), ("backward", "gradients")):
            impls = [sv.baseline, sv.native]
            status = {}
            for impl in impls:
                if impl is None:
                    continue
                rows = [r for r in setting.rows_for(impl, phase) if r.get("status") == "ok"]
                bad = [r for r in rows if r.get("within_tol") is False]
                known = [r for r in rows if r.get("within_tol") is not None]
                status[impl] = (bad, known)
            base_bad, base_known = status.get(sv.baseline or "", ([], []))
            nat_bad, nat_known = status.get(sv.native or "", ([], []))
            if base_bad:
                worst = max(base_bad, key=lambda r: r.get("max_rel_err") or 0)
                sentences.append(
                    f"{sv.baseline}'s {noun} disagree with the float64 reference{suffix} at "
                    f"{_sizes_list(axis, sorted(float(r['size']) for r in base_bad if r.get('size') is not None))}: "
                    f"max relative error {_err(worst)}"
                    + (f" in {worst['worst_tensor']}" if worst.get("worst_tensor") else "")
                    + (f" (tolerance {worst['rtol']:g})" if worst.get("rtol") is not None else "")
                    + "."
                )
                if phase == "backward" and not nat_bad:
                    fix = True
            if nat_bad:
                worst = max(nat_bad, key=lambda r: r.get("max_rel_err") or 0)
                sentences.append(
                    f"Caution: {sv.native}'s {noun} exceed tolerance{suffix} at "
                    f"{_sizes_list(axis, sorted(float(r['size']) for r in nat_bad if r.get('size') is not None))} "
                    f"(max relative error {_err(worst)})."
                )
            if base_bad and nat_bad:
                sentences.append(
                    f"Both sides' {noun} disagree{suffix}, so the reference or the tolerance "
                    "may be at fault rather than either implementation."
                )
            if base_bad or nat_bad:
                problem[noun] = True
            agree[noun] += [
                float(r["max_rel_err"])
                for r in base_known + nat_known
                if r.get("max_rel_err") is not None
            ]
            known_any[noun] = known_any[noun] or bool(base_known or nat_known)
            if sv.baseline:
                errored = [
                    r for r in setting.rows_for(sv.baseline, phase) if r.get("status") == "error"
                ]
                if errored:
                    sizes = sorted(float(r["size"]) for r in errored if r.get("size") is not None)
                    sentences.append(
                        f"{sv.baseline}'s {phase} fails{suffix} at {_sizes_list(axis, sizes)}: "
                        f"{errored[0].get('error') or 'no message'}."
                    )
    fine = [noun for noun in ("outputs", "gradients") if known_any[noun] and not problem[noun]]
    if fine:
        errs = [e for noun in fine for e in agree[noun]]
        worst_txt = f" (max relative error {fmt_rel_err(max(errs))})" if errs else ""
        sentences.append(
            f"{' and '.join(fine).capitalize()} agree with the float64 reference within "
            f"tolerance{worst_txt}."
        )
    return fix, _dedupe(sentences)


def _dedupe(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _err(row: Mapping[str, Any]) -> str:
    err = row.get("max_rel_err")
    return "unknown" if err is None else fmt_rel_err(float(err))


def _capability_gains(
    caps: Sequence[Mapping[str, Any]], baseline: str | None, native_source: str | None
) -> list[str]:
    if not caps or baseline is None or native_source is None:
        return []
    status = {(str(c.get("impl")), str(c.get("check"))): c.get("status") for c in caps}
    checks = list(dict.fromkeys(str(c.get("check")) for c in caps))
    return [
        CAPABILITY_NAMES.get(check, check)
        for check in checks
        if status.get((native_source, check)) == "ok" and status.get((baseline, check)) != "ok"
    ]


def _merge(verdicts: Sequence[SettingVerdict]) -> tuple[str, float | None, bool, bool]:
    kinds = {v.kind for v in verdicts}
    if not verdicts:
        return KEEP, None, False, False
    if len(kinds) == 1 and next(iter(kinds)) in (PORT, KEEP):
        return next(iter(kinds)), None, False, False
    if kinds <= {PORT, PORT_ABOVE}:
        above = [v for v in verdicts if v.kind == PORT_ABOVE and v.threshold is not None]
        top = max(above, key=lambda v: v.threshold or 0)
        return PORT_ABOVE, top.threshold, top.threshold_interpolated, len(kinds) > 1
    if kinds == {KEEP_ABOVE}:
        low = min(verdicts, key=lambda v: v.threshold or 0)
        return KEEP_ABOVE, low.threshold, low.threshold_interpolated, False
    return KEEP, None, False, True


def layer_verdicts(
    frame: pd.DataFrame,
    raw_values: Mapping[str, Sequence[float]] | None = None,
    capabilities: pd.DataFrame | None = None,
    *,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
) -> list[Verdict]:
    """One ``Verdict`` per layer of a results frame, in the frame's order.

    ``raw_values`` maps case names to pyperf's raw seconds-per-call values
    (``Results.raw_values()``); without them, significance falls back to min-max
    ranges. ``capabilities`` is the capability matrix, for what porting buys.
    """
    raw = raw_values or {}
    caps = records(capabilities) if capabilities is not None and len(capabilities) else []
    out = []
    all_rows = records(frame)
    for layer in layer_names(frame):
        rows = [r for r in all_rows if r.get("layer") == layer]
        axis = size_axis(rows)
        setting_list = settings(rows)
        svs = [_setting_verdict(s, axis, raw, alpha, min_effect) for s in setting_list]
        fix, grad_sentences = _gradient_findings(rows, svs, setting_list, axis)
        kind, threshold, interpolated, mixed = _merge(svs)
        if fix:
            kind, threshold, interpolated = FIX_GRADIENT, None, False
        best = next((v for v in svs if v.native), None)
        native_source = None
        if best is not None:
            src = [
                r.get("source") for r in rows if r.get("impl") == best.native and r.get("source")
            ]
            native_source = str(src[0]) if src else best.native
        layer_caps = [c for c in caps if c.get("layer") == layer]
        gains = _capability_gains(layer_caps, best.baseline if best else None, native_source)
        reasons = list(grad_sentences)
        if fix:
            reasons.insert(
                0,
                "The NumPy/SciPy gradient is wrong, so its timings do not matter until it is "
                "fixed (or replaced by the native implementation, whose autograd gradient is correct).",
            )
        if gains:
            reasons.append(
                f"Porting to {native_source} also makes possible: " + ", ".join(gains) + "."
            )
        elif layer_caps and best is not None:
            reasons.append("The capability matrix shows nothing that porting would add.")
        if mixed and not fix:
            reasons.append(
                "The settings disagree (below), so the layer's verdict is the cautious one."
            )
        out.append(
            Verdict(
                layer=layer,
                kind=kind,
                threshold=threshold,
                threshold_interpolated=interpolated,
                size_axis=axis,
                settings=tuple(svs),
                reasons=tuple(reasons),
                capability_gains=tuple(gains),
                mixed=mixed,
            )
        )
    return out


def setting_headline(verdict: Verdict, setting: SettingVerdict) -> str:
    """A setting's verdict in a few words (``fix the gradient first`` when the layer's is)."""
    if verdict.kind == FIX_GRADIENT:
        return FIX_GRADIENT
    return _headline(
        setting.kind, setting.threshold, setting.threshold_interpolated, verdict.size_axis
    )
