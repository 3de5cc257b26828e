"""Where the time goes: the report's section on breakdown.csv (issue 19). Pure.

breakdown.csv (``harness.frame.BREAKDOWN_COLUMNS``) splits one profiled call per
implementation, size and phase into parts of a kind (numpy, bridge, python, code,
kernel, other; ``harness.breakdown``). Per layer this module gives:

- ``breakdown_section``: the Markdown lines of "Where the time goes": sentences that
  explain the verdict (what dominates the baseline and the best candidate at the
  smallest and largest profiled sizes, bridge and Python overhead a cheaper fix could
  remove, page faults that differ a lot), the stacked-bar plot, a table of the top
  parts with shares, and the reconciliation of profiled, plain and timed time (every
  gap stated);
- ``breakdown_figure`` / ``plot_breakdown``: baseline and best candidate of each verdict
  (training on ``step``, inference on ``forward``) at the profiled sizes, one bar per
  case stacked by kind.

The pairs come from the verdicts (``harness.report.decide``): the setting's baseline
and best candidate; where that candidate was not profiled (``--breakdown verdict``
skips torch.compile forms) the fastest profiled candidate at the largest size stands
in, and the section says so.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.breakdown import KINDS
from harness.report._data import finite, records, settings
from harness.report.decide import RUNTIME_SHARE
from harness.text import fmt_pct, fmt_seconds, fmt_size, md_table

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from harness.report.decide import LayerDecision
    from harness.results import Results

__all__ = [
    "CASTS",
    "RUNTIME_WHY",
    "Pair",
    "Profiled",
    "breakdown_figure",
    "breakdown_section",
    "explain_pair",
    "pairs",
    "plot_breakdown",
    "profiled_cases",
    "reconcile_lines",
]

KIND_COLORS = {
    "numpy": "#1f77b4",
    "bridge": "#d62728",
    "python": "#ff7f0e",
    "code": "#9467bd",
    "kernel": "#2ca02c",
    "other": "#7f7f7f",
}
#: Bridge parts that cast a dtype (a cheaper fix than a port: keep the dtype).
CASTS = ("astype", ".to", ".float", ".double", ".half", ".type")
_USES = (("training", "step"), ("inference", "forward"))
_PHASE_WORDS = {"step": "training step", "forward": "forward"}
#: A part or kind "dominates" above this share; overhead is worth a sentence above it.
_DOMINANT = 0.5
_NAMED = 0.4
#: Page faults per call differ "a lot": this ratio, and this many at least.
_FAULT_RATIO = 4.0
_FAULT_MIN = 8.0


@dataclass(frozen=True)
class Profiled:
    """One profiled case (implementation, setting, size, phase) and its parts."""

    impl: str
    role: str
    phase: str
    size: float
    key: tuple[Any, ...]
    parts: tuple[tuple[str, str, float, float, int | None], ...]
    """(part, kind, seconds, share, calls), largest first."""
    profiled_s: float | None
    raw_s: float | None
    plain_s: float | None
    faults: float | None
    """Minor page faults per call: the timed processes' (results.csv ``minor_faults``),
    the profiling pass's plain calls' where the case has no timed row."""
    timed_s: float | None = None
    """The timed median of the same case (results.csv), when there is one."""

    def kinds(self) -> dict[str, float]:
        out = dict.fromkeys(KINDS, 0.0)
        for _, kind, _, share, _ in self.parts:
            if kind in out:
                out[kind] += share
        return out

    def of_kind(self, *kinds: str) -> list[tuple[str, str, float, float, int | None]]:
        return [p for p in self.parts if p[1] in kinds]


@dataclass(frozen=True)
class Pair:
    """A verdict's baseline and best candidate at the profiled sizes of one setting."""

    label: str
    use: str
    phase: str
    baseline: str | None
    candidate: str | None
    sizes: tuple[tuple[float, Profiled | None, Profiled | None], ...]
    stand_in: str | None = None
    """The verdict's best candidate, when it was not profiled and ``candidate`` stands in."""


def _key(row: Mapping[str, Any], axis: str) -> tuple[Any, ...]:
    """What identifies a setting: the other axes' values, dtype, threads, device,
    allocator (``harness.report._data.settings`` groups by the same)."""
    from harness.report._data import parse_point

    axes = tuple((k, v) for k, v in parse_point(row.get("point")).items() if k != axis)
    threads = finite(row.get("threads"))
    return (
        axes,
        str(row.get("dtype") or ""),
        None if threads is None else int(threads),
        str(row.get("device") or ""),
        str(row.get("allocator") or ""),
    )


def profiled_cases(
    breakdown_rows: Sequence[Mapping[str, Any]],
    layer_rows: Sequence[Mapping[str, Any]],
    axis: str,
) -> list[Profiled]:
    """The profiled cases of one layer, each with its timed median and page faults
    from results.csv.

    The page faults are the timed processes' where there are any: each implementation
    was timed in processes of its own with a heap as a user's loop's
    (``harness.own_process``), where the profiling worker has imported torch's compile
    toolchain for the profiler, whose imports raise glibc's mmap threshold (a profiled
    eager call then reuses heap memory that a user's loop maps afresh each call)."""
    ok = [r for r in layer_rows if r.get("status") == "ok" and r.get("case") is not None]
    timed = {str(r.get("case")): finite(r.get("median_s")) for r in ok}
    timed_faults = {str(r.get("case")): finite(r.get("minor_faults")) for r in ok}
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for row in breakdown_rows:
        grouped.setdefault(str(row.get("case")), []).append(row)
    out = []
    for case, rows in grouped.items():
        first = rows[0]
        size = finite(first.get("size"))
        if size is None:
            continue
        parts = sorted(
            (
                (
                    str(r.get("part")),
                    str(r.get("kind")),
                    finite(r.get("seconds")) or 0.0,
                    finite(r.get("share")) or 0.0,
                    None if finite(r.get("calls")) is None else int(r["calls"]),
                )
                for r in rows
            ),
            key=lambda p: (-p[3], p[1], p[0]),
        )
        out.append(
            Profiled(
                impl=str(first.get("impl")),
                role=str(first.get("role") or ""),
                phase=str(first.get("phase")),
                size=size,
                key=_key(first, axis),
                parts=tuple(parts),
                profiled_s=finite(first.get("profiled_s")),
                raw_s=finite(first.get("raw_s")),
                plain_s=finite(first.get("plain_s")),
                faults=(
                    timed_faults[case]
                    if timed_faults.get(case) is not None
                    else finite(first.get("minor_faults"))
                ),
                timed_s=timed.get(case),
            )
        )
    return sorted(out, key=lambda c: (c.key, c.phase, c.size, c.impl))


def _fastest(cases: Sequence[Profiled], baseline: str | None) -> str | None:
    """The profiled candidate with the lowest timed (else plain) time at its largest size."""
    best: tuple[float, float, str] | None = None
    for c in cases:
        if c.impl == baseline or c.role == "baseline":
            continue
        t = c.timed_s if c.timed_s is not None else c.plain_s
        if t is None:
            continue
        rank = (-c.size, t, c.impl)
        if best is None or rank < best:
            best = rank
    return best[2] if best is not None else None


def pairs(
    cases: Sequence[Profiled], layer_rows: Sequence[Mapping[str, Any]], decision: LayerDecision
) -> list[Pair]:
    """Per verdict (training, inference) and setting: its baseline and best candidate
    at each profiled size."""
    by_label = {s.label: s for s in settings(layer_rows, decision.size_axis)}
    verdicts = {"training": decision.training, "inference": decision.inference_verdict}
    out = []
    for use, phase in _USES:
        verdict = verdicts[use]
        if verdict is None:
            continue
        for s in verdict.settings:
            setting = by_label.get(s.label)
            if setting is None or not setting.rows:
                continue
            key = _key(setting.rows[0], decision.size_axis)
            mine = [c for c in cases if c.key == key and c.phase == phase]
            if not mine:
                continue
            baseline = s.baseline or next((c.impl for c in mine if c.role == "baseline"), None)
            candidate, stand_in = s.native, None
            if candidate is None or not any(c.impl == candidate for c in mine):
                stand_in = candidate
                candidate = _fastest(mine, baseline)
            sizes = sorted({c.size for c in mine if c.impl in (baseline, candidate)})
            at: dict[tuple[str | None, float], Profiled] = {(c.impl, c.size): c for c in mine}
            out.append(
                Pair(
                    s.label,
                    use,
                    phase,
                    baseline,
                    candidate,
                    tuple((n, at.get((baseline, n)), at.get((candidate, n))) for n in sizes),
                    stand_in if stand_in != candidate else None,
                )
            )
    return out


# -- sentences ----------------------------------------------------------------------------


def _pct(share: float) -> str:
    return fmt_pct(100 * share)


def _named(parts: Sequence[tuple[str, str, float, float, int | None]], n: int = 3) -> str:
    shown = [f"{p[0]} {_pct(p[3])}" for p in parts[:n] if p[3] > 0]
    more = len([p for p in parts[n:] if p[3] > 0])
    return ", ".join(shown) + (", …" if more else "")


def _is_cast(part: str) -> bool:
    return any(part.endswith(c) for c in CASTS)


def _where(axis: str, size: float) -> str:
    return f"at {axis}={fmt_size(size)}"


def _body_is_work(largest: Profiled | None) -> bool:
    """Whether the baseline's Function bodies (kind ``code``) hold work rather than
    overhead, judged at the largest profiled size: a body of Python statements costs
    the same at every size, so its share falls as the data grow (the seed's
    ScipyConv2dFunction.forward, k=3: 62% of the forward at n=8, 2.0% at n=1024), while
    work the tools cannot see into grows with the data and keeps its share (the public
    soft-DTW layer's numba body: 54% at n=16, 99% at n=128; 2026-11-30)."""
    return largest is not None and largest.kinds()["code"] >= _NAMED


#: The part of a call's time outside every event the tools see (``harness.breakdown``).
_BETWEEN = "Python between calls"


def _between(c: Profiled) -> float:
    return sum(p[3] for p in c.parts if p[0] == _BETWEEN)


def _unseen_work(smallest: Profiled | None, largest: Profiled | None) -> bool:
    """Whether the baseline's time between the calls the tools see holds work, not
    overhead: it is most of the call at the largest profiled size and keeps its share
    from the smallest, as work does (Python between calls costs the same at every size).
    The Python hook sees calls of Python and C functions, not of compiled classes' methods
    (2026-12-03: scipy.spatial.cKDTree's build and query, 84% of a Chamfer distance's
    forward measured apart, read as "88% bridge and Python overhead")."""
    if smallest is None or largest is None or smallest is largest:
        return False
    return _between(largest) >= _DOMINANT and _between(largest) >= 0.8 * _between(smallest)


def _unseen_sentences(c: Profiled, axis: str, candidate: str | None) -> list[str]:
    word = _PHASE_WORDS.get(c.phase, c.phase)
    return [
        f"{_where(axis, c.size)}, {_pct(_between(c))} of {c.impl}'s {word} runs between the "
        "calls the tools see, and it keeps its share as the data grow: work they cannot "
        "attribute (methods of compiled classes, such as a SciPy KD-tree's, which the "
        "Python hook does not see; NumPy operators in helpers), not overhead. A port"
        + (f" to {candidate}" if candidate else "")
        + " pays off only where the native does that work faster; a Python-level "
        "profiler (`python -m cProfile`) of the layer names it."
    ]


#: Calls into the Python runtime a layer may make on every call, named apart by the
#: profiling hook (``harness.profile_call.RUNTIME_CALLS``), and what each costs.
RUNTIME_WHY = {
    "gc.collect": (
        "a full garbage collection every call, whose cost grows with every Python object "
        "the process holds (a training process holds many), not with the data"
    ),
    "time.sleep": "a sleep every call",
    "print": "printing every call",
    "input": "waiting for input",
    "torch.cuda.empty_cache": "handing the CUDA memory cache back every call",
    "torch.cuda.synchronize": "waiting for the device every call",
}


def _runtime_sentence(c: Profiled, where: str, word: str) -> str | None:
    """The largest runtime call in ``c`` past ``RUNTIME_SHARE``: the fix it calls for
    comes before any port (2026-12-01: a public sparse solver's ``gc.collect()`` was
    most of its step, read as the layer's own work)."""
    found = [p for p in c.of_kind("python") if p[0] in RUNTIME_WHY and p[3] >= RUNTIME_SHARE]
    if not found:
        return None
    name, _, _, share, _ = max(found, key=lambda p: p[3])
    return (
        f"{where}, `{name}()` alone takes {_pct(share)} of {c.impl}'s {word}: "
        f"{RUNTIME_WHY[name]}. Take it out of the layer's forward and backward before "
        "weighing a port: every speedup here includes it."
    )


def _baseline_sentences(
    c: Profiled, axis: str, candidate: str | None, body_is_work: bool
) -> list[str]:
    kinds = c.kinds()
    word = _PHASE_WORDS.get(c.phase, c.phase)
    where = _where(axis, c.size)
    out = []
    runtime = _runtime_sentence(c, where, word)
    if runtime is not None:
        out.append(runtime)
    # the Function bodies: work (``_body_is_work``), or Python statements, named as
    # overhead with the rest of the Python
    bodies = c.of_kind("code")
    python = [(f"{p[0]}'s own Python", *p[1:]) for p in bodies] if not body_is_work else []
    named = sorted(c.of_kind("bridge", "python") + python, key=lambda p: -p[3])
    overhead = kinds["bridge"] + kinds["python"] + (0.0 if body_is_work else kinds["code"])
    own = kinds["code"] if body_is_work else 0.0
    if overhead >= _DOMINANT:
        text = (
            f"{where}, {_pct(overhead)} of {c.impl}'s {word} is bridge and Python overhead "
            f"({_named(named)}): porting"
            + (f" to {candidate}" if candidate else "")
            + " gains what removing them would"
        )
        if kinds["bridge"] >= 0.2:
            text += " — try that cheaper fix first"
        out.append(text + ".")
    elif own >= _NAMED:
        # before the code kind, a numba layer read as "Python overhead: porting gains
        # what removing it would"
        out.append(
            f"{where}, {_pct(own)} of {c.impl}'s {word} runs in the layer's own "
            f"code ({_named(bodies)}), outside every NumPy/SciPy, bridge and torch "
            "call the profilers see, and it keeps its share as the data grow: NumPy "
            "written as operators (`a * b`, `a[idx]`: no call a profiler sees), compiled "
            "code they cannot see into (numba, Cython, a C extension) or a Python loop "
            "over the data. That is the baseline's work, not overhead: a port"
            + (f" to {candidate}" if candidate else "")
            + " pays off only where the native does it faster."
        )
    else:
        top = c.parts[0] if c.parts else None
        if top is not None and top[3] >= _NAMED:
            out.append(f"{where} {c.impl}'s {word} spends {_pct(top[3])} in {top[0]} ({top[1]}).")
    bridge = c.of_kind("bridge")
    casts = [p for p in bridge if _is_cast(p[0]) and p[3] >= 0.1]
    dominant = max(kinds, key=lambda k: kinds[k]) == "bridge" and kinds["bridge"] > 0
    if dominant or casts:
        fix = (
            f"Cheaper fix to try before a port: {where} the bridge is "
            f"{_pct(kinds['bridge'])} of {c.impl}'s {word} ({_named(bridge)})"
        )
        if casts:
            fix += (
                f"; the dtype cast{'s' if len(casts) > 1 else ''} "
                f"({', '.join(p[0] for p in casts)}) could go by keeping the input's dtype "
                "through the NumPy/SciPy call, where it only converts the input's dtype "
                "and back (a cast the computation needs, such as a mask to numbers, stays)"
            )
        else:
            fix += "; avoid the copies (work on the tensor's memory: `.numpy()` shares it)"
        out.append(fix + ".")
    return out


def _candidate_sentence(c: Profiled, axis: str) -> str | None:
    top = c.parts[0] if c.parts else None
    if top is None or top[3] < _NAMED:
        return None
    word = _PHASE_WORDS.get(c.phase, c.phase)
    text = f"{_where(axis, c.size)} {c.impl}'s {word} spends {_pct(top[3])} in {top[0]}"
    second = c.parts[1] if len(c.parts) > 1 else None
    if second is not None and second[3] >= 0.1:
        text += f" (then {second[0]} {_pct(second[3])})"
    return text + "."


def _faults_sentence(base: Profiled | None, cand: Profiled | None, axis: str) -> str | None:
    if base is None or cand is None or base.faults is None or cand.faults is None:
        return None
    high, low = (cand, base) if cand.faults >= base.faults else (base, cand)
    if high.faults is None or low.faults is None or high.faults < _FAULT_MIN:
        return None
    ratio = high.faults / low.faults if low.faults > 0 else math.inf
    if ratio < _FAULT_RATIO:
        return None
    # a ratio to less than one fault a call says nothing (2026-12-02: "against 0 for
    # torch's (×9673)", torch's 0.33 printed as 0)
    times = f" (×{ratio:.0f})" if low.faults >= 1 else ""
    word = _PHASE_WORDS.get(high.phase, high.phase)
    return (
        f"{_where(axis, high.size)} {high.impl}'s {word} takes {high.faults:,.0f} minor page "
        f"faults per call against {_fewer(low.faults)} for {low.impl}'s{times}: memory the "
        "allocator gets afresh from the kernel each call (compare `--allocator glibc-fixed`)."
    )


def _fewer(faults: float) -> str:
    """Faults per call: ``0``, ``0.33`` (fewer than one a call), ``1,024``."""
    if faults == 0 or faults >= 1:
        return f"{faults:,.0f}"
    return f"{faults:.2g}"


def explain_pair(pair: Pair, axis: str) -> list[str]:
    """Sentences explaining one verdict of one setting: the smallest and the largest
    profiled size, baseline then candidate, and page faults that differ a lot."""
    if not pair.sizes:
        return []
    ends = [pair.sizes[0]] if len(pair.sizes) == 1 else [pair.sizes[0], pair.sizes[-1]]
    work = _body_is_work(pair.sizes[-1][1])
    unseen = _unseen_work(pair.sizes[0][1], pair.sizes[-1][1])
    out: list[str] = []
    for _, base, cand in ends:
        if base is not None and unseen:
            out += _unseen_sentences(base, axis, pair.candidate)
        elif base is not None:
            out += _baseline_sentences(base, axis, pair.candidate, work)
            short = _too_short(base, axis)
            if short:
                out.append(short)
        if cand is not None:
            text = _candidate_sentence(cand, axis)
            if text:
                out.append(text)
        faults = _faults_sentence(base, cand, axis)
        if faults:
            out.append(faults)
    return list(dict.fromkeys(s[0].upper() + s[1:] for s in out))


#: A part that ran this many times in one call, and whose time the tools' estimated
#: cost swallowed whole, is a loop of calls too short to see (``_too_short``).
_MANY_CALLS = 100


def _too_short(c: Profiled, axis: str) -> str | None:
    """A NumPy/SciPy or bridge part called many times whose seconds are 0 once the tools'
    estimated cost is removed (``harness.breakdown._parts`` clips it): each call is
    shorter than that cost, so its share cannot be told from the code around it
    (2026-12-02: a public cross-correlation's 2,044 ``np.dot`` calls a forward, 60% of
    it measured apart, read "99% in the layer's own code")."""
    hidden = [
        p for p in c.parts
        if p[1] in ("numpy", "bridge") and p[2] <= 0 and (p[4] or 0) >= _MANY_CALLS
    ]  # fmt: skip
    if not hidden:
        return None
    named = ", ".join(f"{p[0]} ({p[4]:,} calls)" for p in hidden[:3])
    word = _PHASE_WORDS.get(c.phase, c.phase)
    return (
        f"{_where(axis, c.size)} {c.impl}'s {word} makes calls too short for the tools to "
        f"time, each under their estimated cost per call: {named}. They count as 0 here, "
        "so the shares above understate them and overstate the code around them (a "
        "Python loop of small NumPy calls: the loop is the cost to remove, by "
        "vectorising it or porting)."
    )


# -- reconciliation -------------------------------------------------------------------------


def _gap(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b - 1.0


def _fmt_gap(gap: float | None) -> str:
    if gap is None:
        return "—"
    return ("+" if gap >= 0 else "−") + fmt_pct(100 * abs(gap))


def reconcile_lines(
    cases: Sequence[Profiled], shown: Mapping[tuple[Any, ...], str] | None = None
) -> list[str]:
    """How far the profiled calls lie from the plain calls and the timed medians, in
    words: the range of each gap and the largest, never hidden; ``shown``: the rows the
    table above has (``row_id`` -> its setting's label, "" where there is one setting):
    the range is of those rows (2026-12-02: a range "−99% to +7714%" read beside a table
    whose own rows lay within ±40%), and a row it leaves out is named only where its gap
    is the largest, said to be left out."""
    in_table = [c for c in cases if row_id(c) in shown] if shown else list(cases)
    ranged = in_table or list(cases)
    plain = [(g, c) for c in ranged if (g := _gap(c.profiled_s, c.plain_s)) is not None]
    timed = [(g, c) for c in ranged if (g := _gap(c.profiled_s, c.timed_s)) is not None]
    if not plain and not timed:
        return ["No profiled call has a plain or timed time to reconcile it with."]
    text = "Reconciliation: the profiled calls (the tools' estimated overhead removed)"
    parts = []
    for what, gaps in (("the same calls without the tools", plain), ("the timed medians", timed)):
        if gaps:
            low, high = min(g for g, _ in gaps), max(g for g, _ in gaps)
            parts.append(f"lie {_fmt_gap(low)} to {_fmt_gap(high)} from {what}")
    text += " " + " and ".join(parts) + "."
    g, c = _largest_gap(cases, timed or plain, bool(timed))
    word = _PHASE_WORDS.get(c.phase, c.phase)
    # 2026-12-01: "torch's forward" named here beside a table of scipy and compile only
    left_out = ""
    if shown and row_id(c) not in shown:
        left_out = " (profiled, but not in the table above)"
    elif shown and shown[row_id(c)]:  # which setting's row, where the table has several
        left_out = f" ({shown[row_id(c)]})"
    text += (
        f" The largest gap is {c.impl}'s {word} at size {fmt_size(c.size)}{left_out} "
        f"({_fmt_gap(g)}: profiled {fmt_seconds(c.profiled_s or 0)}"
        + (f", plain {fmt_seconds(c.plain_s)}" if c.plain_s else "")
        + (f", timed {fmt_seconds(c.timed_s)}" if c.timed_s else "")
        + ")."
    )
    if abs(g) >= 0.5 and c.plain_s and c.profiled_s and abs(c.profiled_s / c.plain_s - 1) < 0.25:
        # the tools cost little there: the single calls themselves differ from the loop
        # (2026-11-30: a profile taken under a foreign load, served from the cache to a
        # quiet run, read "+7711%" and blamed the tracing)
        text += (
            " The profiled call is within 25% of the same call without the tools, so the "
            "tools are not the cause: a single call of the profiling pass costs what a "
            "call in the timed loop does not (a first call's cold caches and pools, or "
            "another state of the machine: a profile from the cache was taken in an "
            "earlier run)."
        )
    elif abs(g) >= 0.5:
        text += (
            " Shares there are rough: Python-level tracing costs more than its estimate in "
            "short calls, and that excess counts as Python."
        )
    slow = [
        x for x in ranged
        if x.plain_s and x.profiled_s and x.timed_s
        and x.plain_s > _SLOW_PLAIN * max(x.profiled_s, x.timed_s)
    ]  # fmt: skip
    if slow:
        # 2026-12-02: torch's step "plain 16 ms" beside profiled 486 µs and timed 211 µs
        # made the range's low end, and read as the tools' doing
        x = max(slow, key=lambda x: (x.plain_s or 0.0) / (x.timed_s or 1.0))
        text += (
            f" {x.impl}'s {_PHASE_WORDS.get(x.phase, x.phase)} at size {fmt_size(x.size)} "
            f"ran {fmt_seconds(x.plain_s or 0.0)} without the tools, slower than both its "
            "profiled and its timed call: the few untooled calls of the profiling pass "
            "caught a slow state (pools waking, the machine busy), so that gap says nothing "
            "of the tools."
        )
    return [text]


def _largest_gap(
    cases: Sequence[Profiled], gaps: Sequence[tuple[float, Profiled]], timed: bool
) -> tuple[float, Profiled]:
    """The largest of ``gaps`` (the table's rows), or of a row of ``cases`` the table
    leaves out where its gap, of the same kind (timed, else plain), is larger still."""
    worst = max(gaps, key=lambda gc: abs(gc[0]))
    for c in cases:
        g = _gap(c.profiled_s, c.timed_s if timed else c.plain_s)
        if g is not None and abs(g) > abs(worst[0]):
            worst = (g, c)
    return worst


#: A plain call this many times slower than both the profiled and the timed one is the
#: outlier of its row (``reconcile_lines``).
_SLOW_PLAIN = 3.0


# -- the table ------------------------------------------------------------------------------


def _kinds_cell(c: Profiled) -> str:
    kinds = c.kinds()
    return " · ".join(f"{k} {_pct(v)}" for k, v in kinds.items() if v >= 0.005)


def row_id(c: Profiled) -> tuple[Any, ...]:
    """What identifies a row of the breakdown table: setting, implementation, phase, size."""
    return (c.key, c.impl, c.phase, c.size)


def _table_rows(pair_list: Sequence[Pair]) -> dict[tuple[Any, ...], str]:
    """The rows the breakdown table shows (``row_id`` -> the setting's label), in order."""
    return {
        row_id(c): pair.label
        for pair in pair_list
        for _, base, cand in pair.sizes
        for c in (base, cand)
        if c is not None
    }


def _table(pair_list: Sequence[Pair], axis: str, show_setting: bool) -> str | None:
    rows = []
    seen: set[tuple[Any, ...]] = set()
    for pair in pair_list:
        for size, base, cand in pair.sizes:
            for c in (base, cand):
                if c is None or row_id(c) in seen:
                    continue
                seen.add(row_id(c))
                row = [pair.label] if show_setting else []
                row += [
                    _PHASE_WORDS.get(c.phase, c.phase),
                    c.impl,
                    fmt_size(size),
                    _named(c.parts),
                    _kinds_cell(c),
                    fmt_seconds(c.profiled_s) if c.profiled_s else "—",
                    fmt_seconds(c.plain_s) if c.plain_s else "—",
                    fmt_seconds(c.timed_s) if c.timed_s else "—",
                    _fmt_gap(_gap(c.profiled_s, c.timed_s)),
                    f"{c.faults:,.1f}" if c.faults is not None else "—",
                ]
                rows.append(row)
    if not rows:
        return None
    header = ["setting"] if show_setting else []
    header += [
        "phase",
        "impl",
        axis,
        "top parts (share)",
        "by kind",
        "profiled",
        "plain",
        "timed",
        "profiled vs timed",
        "faults/call",
    ]
    align = (["l"] if show_setting else []) + ["l", "l", "r", "l", "l", "r", "r", "r", "r", "r"]
    return md_table(header, rows, align)


# -- the section ----------------------------------------------------------------------------

_INTRO = (
    "After timing, one call per implementation, size and phase was profiled apart "
    "(never inside a timed region): torch.profiler for aten ops and kernels, a Python "
    "profile hook (sys.setprofile) for NumPy/SciPy and bridge calls; the tools' estimated "
    "overhead is removed. Page faults per call are the timed processes' (getrusage "
    "around each timed value), the profiling pass's where a case was not timed. Kinds: *numpy* (NumPy/SciPy "
    "functions), *bridge* (tensor↔ndarray, copies, casts), *python* (autograd Function "
    "dispatch and the Python between calls), *code* (the layer's own code in its "
    "Function's forward and backward, outside every call the tools see: NumPy operators "
    "such as `a * b` or `a[idx]`, Python loops, or compiled code such as numba), "
    "*kernel* (aten ops), *other*. "
    "breakdown.csv has every part."
)


def layer_breakdown(results: Results, layer: str) -> pd.DataFrame | None:
    """One layer's rows of breakdown.csv, or None."""
    frame = results.breakdown
    if frame is None or not len(frame) or "layer" not in frame.columns:
        return None
    rows = frame[frame["layer"] == layer]
    return rows if len(rows) else None


def breakdown_section(
    results: Results, decision: LayerDecision, plot_paths: Mapping[str, str]
) -> list[str]:
    """The lines of one layer's "Where the time goes" (nothing when it was not profiled)."""
    rows = layer_breakdown(results, decision.layer)
    if rows is None:
        return []
    frame = results.frame
    layer_rows = records(frame[frame["layer"] == decision.layer])
    return section_lines(records(rows), layer_rows, decision, plot_paths.get("breakdown"))


def section_lines(
    breakdown_rows: Sequence[Mapping[str, Any]],
    layer_rows: Sequence[Mapping[str, Any]],
    decision: LayerDecision,
    plot: str | None = None,
) -> list[str]:
    """``breakdown_section`` on rows (dicts): testable without a results folder."""
    axis = decision.size_axis
    cases = profiled_cases(breakdown_rows, layer_rows, axis)
    if not cases:
        return []
    pair_list = pairs(cases, layer_rows, decision)
    out = [f"### Where the time goes ({decision.layer})", "", _INTRO, ""]
    labels = list(dict.fromkeys(p.label for p in pair_list))
    for pair in pair_list:
        sentences = explain_pair(pair, axis)
        if pair.stand_in:
            sentences.insert(
                0,
                f"{pair.stand_in}, the best candidate, was not profiled "
                f"(`--breakdown verdict` skips torch.compile forms); shown: {pair.candidate}.",
            )
        if not sentences:
            continue
        # no candidate that ran the metric (2026-12-01: "Training (scipy vs None)")
        head = f"{pair.use.capitalize()} ({pair.baseline}"
        head += f" vs {pair.candidate}" if pair.candidate else ""
        head += f", {pair.label})" if len(labels) > 1 and pair.label else ")"
        out.append(f"- **{head}:** " + " ".join(sentences))
    if out[-1] != "":
        out.append("")
    if plot:
        out += [
            f"![{decision.layer}: where the time of one call goes, by kind, at the profiled "
            "sizes]" + f"({plot})",
            "",
        ]
    several = len(labels) > 1 and any(labels)  # settings to tell apart
    table = _table(pair_list, axis, several)
    if table:
        out += [table, ""]
    shown = _table_rows(pair_list)
    if not several:
        shown = dict.fromkeys(shown, "")  # one setting: no label to name
    out += reconcile_lines(cases, shown)
    out.append("")
    return out


# -- the figure -----------------------------------------------------------------------------


def breakdown_figure(
    breakdown_rows: Sequence[Mapping[str, Any]],
    layer_rows: Sequence[Mapping[str, Any]],
    decision: LayerDecision,
) -> Figure | None:
    """Stacked bars of each case's shares by kind: one panel per verdict and setting,
    baseline and best candidate side by side at each profiled size, the profiled time
    above each bar. None when nothing was profiled."""
    cases = profiled_cases(breakdown_rows, layer_rows, decision.size_axis)
    pair_list = [p for p in pairs(cases, layer_rows, decision) if p.sizes]
    if not pair_list:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(pair_list),
        1,
        figsize=(max(5.2, 1.3 * max(len(p.sizes) for p in pair_list) + 2.5), 3.4 * len(pair_list)),
        squeeze=False,
        constrained_layout=True,
    )
    for ax, pair in zip((row[0] for row in axes), pair_list, strict=True):
        xs: list[float] = []
        labels: list[str] = []
        bars: list[Profiled | None] = []
        for i, (size, base, cand) in enumerate(pair.sizes):
            for j, (impl, c) in enumerate(((pair.baseline, base), (pair.candidate, cand))):
                xs.append(i * 3 + j)
                labels.append(f"{impl}, {decision.size_axis}={fmt_size(size)}")
                bars.append(c)
        bottoms = [0.0] * len(xs)
        for kind in KINDS:
            heights = [100 * (c.kinds()[kind] if c is not None else 0.0) for c in bars]
            ax.bar(xs, heights, bottom=bottoms, color=KIND_COLORS[kind], label=kind, width=0.9)
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        for x, c in zip(xs, bars, strict=True):
            text = fmt_seconds(c.profiled_s) if c is not None and c.profiled_s else "not profiled"
            ax.text(x, 101, text, ha="center", va="bottom", fontsize="x-small")
        ax.set_xticks(xs)
        ax.set_xticklabels(labels, fontsize="x-small", rotation=30, ha="right")
        ax.set_ylim(0, 112)
        ax.set_ylabel("share of the call, %")
        word = _PHASE_WORDS.get(pair.phase, pair.phase)
        title = f"{decision.layer}, {pair.use} ({word})"
        ax.set_title(title + (f", {pair.label}" if pair.label else ""))
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def plot_breakdown(results: Results, layer: str, path: str | os.PathLike[str]) -> Path | None:
    """Draw ``layer``'s breakdown figure into ``path``; None when it was not profiled."""
    rows = layer_breakdown(results, layer)
    if rows is None:
        return None
    from harness.report.decide import decide_layers
    from harness.report.plots import _save

    frame = results.frame
    layer_frame = frame[frame["layer"] == layer]
    decision = next(iter(decide_layers(layer_frame, results.run, results.capabilities)), None)
    if decision is None:
        return None
    fig = breakdown_figure(records(rows), records(layer_frame), decision)
    return _save(fig, path) if fig is not None else None
