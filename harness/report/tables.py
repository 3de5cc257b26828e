"""Pure Markdown formatters for the report: each returns text and writes nothing.

Tables put implementations as rows and sizes as columns (as ``torch.utils.benchmark``'s
``Compare`` does), one table per setting of the other axes (``k=3``, ``k=15``). A
failed cell reads ``error`` and an unsupported one ``n/a (unsupported)``, each with a
footnote holding the recorded message; a point that was never measured reads ``—``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from harness.capabilities import format_capabilities
from harness.protocol import NO_BACKWARD
from harness.report._data import Measure, impl_order, measure, records, settings, size_axis
from harness.report.decide import (
    LayerDecision,
    SettingDecision,
    compared_baseline,
    native_wrong_everywhere,
    nothing_compared,
    reference_judges_gradients,
)
from harness.report.explain import fmt_interval, setting_headline
from harness.text import (
    Footnotes,
    cell,
    fmt_pct,
    fmt_rel_err,
    fmt_seconds,
    fmt_size,
    md_table,
)

__all__ = [
    "capability_table",
    "deviation_table",
    "environment_table",
    "noise_warnings",
    "oneoff_table",
    "summary_table",
    "threads_sentence",
    "time_tables",
    "untimed_phase",
]


def _status_cell(m: Measure, notes: Footnotes) -> str:
    if m.status == "missing":
        return "—"
    if m.status == "unsupported":
        # a form not built (its build ran past the limit at another size) or not timed
        # (compile cannot take the baseline whole) is skipped, not unsupported by
        # the code: the cell says which, the footnote why
        why = str(m.error or "")
        word = next((w for w in ("not built", "not timed") if why.startswith(f"{w}:")), None)
        return f"n/a ({word or 'unsupported'})" + (notes.ref(why) if why else "")
    if m.status == "error":
        return "error" + notes.ref(m.error or "failed with no message recorded")
    return f"{m.status}" + (notes.ref(m.error) if m.error else "")


def _time_cell(m: Measure) -> str:
    assert m.median is not None
    text = fmt_seconds(m.median)
    if m.stdev is not None and m.median > 0:
        text += f" ±{fmt_pct(100 * m.stdev / m.median)}"
    return text


def _rows_by(
    rows: Sequence[Mapping[str, Any]], impl: str, phase: str
) -> dict[float, Mapping[str, Any]]:
    return {
        float(r["size"]): r
        for r in rows
        if r.get("impl") == impl and r.get("phase") == phase and r.get("size") is not None
    }


def time_tables(
    layer_frame: pd.DataFrame,
    phase: str,
    notes: Footnotes,
    axis: str | None = None,
) -> list[tuple[str, str]]:
    """Median time per call per implementation (rows) and size (columns), for one phase.

    Returns ``(setting label, table)`` pairs, one per setting of the other axes. Cells
    read ``1.23 ms ±4%`` (median ± standard deviation as a share of it); candidate cells
    add the paired speedup over the baseline with its 95% interval, ``×3.1 (2.9–3.3)``,
    in bold where the interval lies outside the ±5% band (decided faster or slower).
    """
    all_rows = records(layer_frame)
    out = []
    for setting in settings(all_rows, axis):
        rows = [r for r in setting.rows if r.get("phase") == phase]
        if not any(r.get("status") == "ok" for r in rows):
            continue  # a table of n/a alone says less than ``untimed_phase``'s line
        sizes = sorted({float(r["size"]) for r in rows if r.get("size") is not None})
        impls = impl_order(rows)
        base_impl = compared_baseline(rows)  # the one the speedups are against
        body = []
        for impl in impls:
            by_size = _rows_by(rows, impl, phase)
            label = f"{impl} (baseline)" if impl == base_impl else impl
            cells = [cell(label)]
            for size in sizes:
                row = by_size.get(size)
                m = measure(row, {})
                if not m.ok:
                    cells.append(_status_cell(m, notes))
                    continue
                text = _time_cell(m)
                if row is not None and row.get("speedup") is not None:
                    speed = fmt_interval(
                        row["speedup"], row.get("speedup_low"), row.get("speedup_high")
                    )
                    decided = row.get("decision") in ("faster", "slower")
                    text += f" **{speed}**" if decided else f" {speed}"
                cells.append(text)
            body.append(cells)
        header = ["implementation"] + [f"{setting.size_axis}={fmt_size(s)}" for s in sizes]
        out.append((setting.label, md_table(header, body)))
    return out


def untimed_phase(layer_frame: pd.DataFrame, phase: str) -> str | None:
    """Why no implementation has ``phase`` timed at any size (the baseline's reason
    first: "declared without backward"), or None where some row of it ran."""
    rows = [r for r in records(layer_frame) if r.get("phase") == phase]
    if not rows or any(r.get("status") == "ok" for r in rows):
        return None
    base = [r for r in rows if r.get("role") == "baseline"]
    if phase != "forward" and base and all(r.get("error") == NO_BACKWARD for r in base):
        # each form's own reason (a compile it cannot take, an export) is no reason here
        return f"the layer is forward only (its baseline is {NO_BACKWARD})"
    ordered = sorted(rows, key=lambda r: r.get("role") != "baseline")
    reasons = dict.fromkeys(str(r.get("error") or r.get("status")) for r in ordered)
    return "; ".join(reasons)


def oneoff_table(
    layer_frame: pd.DataFrame, notes: Footnotes, axis: str | None = None
) -> str | None:
    """One-off costs (scripting, first compiled call, ONNX export) per implementation and
    size; ``None`` when nothing recorded one."""
    all_rows = records(layer_frame)
    axis = axis or size_axis(all_rows)
    found: dict[tuple[str, str, str], dict[float, float]] = {}
    sizes: set[float] = set()
    for setting in settings(all_rows, axis):
        for r in setting.rows:
            if r.get("oneoff_s") is None or r.get("size") is None:
                continue
            key = (setting.label, str(r["impl"]), str(r.get("oneoff_what") or ""))
            size = float(r["size"])
            sizes.add(size)
            prev = found.setdefault(key, {}).get(size)
            found[key][size] = max(prev or 0.0, float(r["oneoff_s"]))
    if not found:
        return None
    ordered = sorted(sizes)
    multi = len({k[0] for k in found}) > 1
    body = []
    for (label, impl, what), by_size in found.items():
        name = f"{impl} ({label})" if multi and label else impl
        body.append(
            [cell(name), cell(what or "—")]
            + [fmt_seconds(by_size[s]) if s in by_size else "—" for s in ordered]
        )
    header = ["implementation", "what"] + [f"{axis}={fmt_size(s)}" for s in ordered]
    return md_table(header, body, ["l", "l"] + ["r"] * len(ordered))


def deviation_table(
    layer_frame: pd.DataFrame, layer_deviations: pd.DataFrame | None, notes: Footnotes
) -> str | None:
    """Largest relative error against the float64 reference per implementation, for the
    output and each gradient, over all sizes, plus gradcheck for baselines.

    ``✗`` marks a tensor outside the dtype's tolerance at some size.
    """
    rows = records(layer_frame)
    if not rows:
        return None
    dev = records(layer_deviations) if layer_deviations is not None else []
    impls = impl_order(rows)
    dtypes = list(dict.fromkeys(str(r.get("dtype")) for r in rows))
    multi_dtype = len(dtypes) > 1
    table, tensors = _deviation_slots(rows, dev)
    tensors.sort(key=lambda t: (not t.startswith("output"), t))  # output[0], output[1], ...
    # a reference that fails gradcheck judges no gradient: no ✗ from it (decide.py)
    unjudged = (
        ""
        if reference_judges_gradients(rows)
        else notes.ref(
            "not judged: the reference itself fails gradcheck, so its gradients are not "
            "the derivative of its output over every input entry"
        )
    )
    # per implementation: one that narrows the dtype is held to its own (collect.py)
    rtol: dict[tuple[str, str], float] = {}
    for r in rows:
        if r.get("rtol") is not None:
            key = (str(r["impl"]), str(r.get("dtype")))
            rtol[key] = max(rtol.get(key, 0.0), float(r["rtol"]))
    # a random implementation is not held against the reference (decide.py): no ✗ from
    # it (2026-12-02: ARPACK's eigenvectors, sign drawn afresh each call, read "2 ✗"
    # beside "not held against the float64 reference")
    random = {str(r["impl"]) for r in rows if r.get("random_output") is not None}
    unheld = (
        notes.ref("not held against the reference: two calls on the same input differ (random)")
        if random
        else ""
    )
    body = []
    for impl in impls:
        for dtype in dtypes:
            if not any(r["impl"] == impl and str(r.get("dtype")) == dtype for r in rows):
                continue
            errs = table.get((impl, dtype), {})
            role = next((r.get("role") for r in rows if r["impl"] == impl), None)
            name = f"{impl} (baseline)" if role == "baseline" else impl
            if multi_dtype:
                name += f", {dtype}"
            cells = [cell(name)]
            for tensor in tensors:
                slot = errs.get(tensor)
                if slot is None or slot[0] is None:
                    cells.append("—")
                elif unjudged and not tensor.startswith("output"):
                    cells.append(fmt_rel_err(slot[0]) + unjudged)
                elif impl in random:
                    cells.append(fmt_rel_err(slot[0]) + unheld)
                else:
                    cells.append(fmt_rel_err(slot[0]) + ("" if slot[1] else " ✗"))
            tol = rtol.get((impl, dtype))
            cells.append("—" if tol is None else f"{tol:g}")
            cells.append(_gradcheck_cell(rows, impl, notes))
            body.append(cells)
    header = ["implementation", *tensors, "rtol", "gradcheck"]
    return md_table(header, body)


def _deviation_slots(
    rows: Sequence[Mapping[str, Any]], dev: Sequence[Mapping[str, Any]]
) -> tuple[dict[tuple[str, str], dict[str, list[Any]]], list[str]]:
    """(impl, dtype) -> tensor -> [max rel err, all within tol], and the tensors named,
    from deviations.csv's rows (else results.csv's, for folders without it)."""
    table: dict[tuple[str, str], dict[str, list[Any]]] = {}
    tensors: list[str] = []

    def add(impl: str, dtype: str, tensor: str, err: Any, within: Any) -> None:
        if tensor not in tensors:
            tensors.append(tensor)
        slot = table.setdefault((impl, dtype), {}).setdefault(tensor, [None, True])
        if err is not None:
            slot[0] = max(slot[0] or 0.0, float(err))
        if within is False:
            slot[1] = False

    if dev:
        for d in dev:
            add(
                str(d["impl"]),
                str(d.get("dtype")),
                str(d.get("tensor")),
                d.get("max_rel_err"),
                d.get("within_tol"),
            )
    else:
        for r in rows:
            if r.get("status") != "ok" or r.get("max_rel_err") is None:
                continue
            tensor = "output" if r.get("phase") == "forward" else "gradients"
            add(
                str(r["impl"]),
                str(r.get("dtype")),
                tensor,
                r.get("max_rel_err"),
                r.get("within_tol"),
            )
    return table, tensors


def _gradcheck_cell(rows: Sequence[Mapping[str, Any]], impl: str, notes: Footnotes) -> str:
    marks = [r for r in rows if r["impl"] == impl and r.get("gradcheck") is not None]
    if not marks:
        skipped = [r for r in rows if r["impl"] == impl and r.get("gradcheck_error")]
        if skipped:  # not run (a layer that returns float32 for float64 input)
            return "not run" + notes.ref(str(skipped[0]["gradcheck_error"]))
        return "—"
    failed = [r for r in marks if r.get("gradcheck") is False]
    if failed:
        msg = failed[0].get("gradcheck_error")
        return "fail" + (notes.ref(msg) if msg else "")
    return "pass"


def capability_table(layer_capabilities: pd.DataFrame, notes: Footnotes) -> str | None:
    """The capability matrix: implementations as rows, checks as columns (rendered by
    ``harness.capabilities.format_capabilities``, its footnotes added to ``notes``)."""
    if layer_capabilities.empty:
        return None
    return format_capabilities(layer_capabilities, notes, headings=False).rstrip("\n")


def _speed_cell(s: SettingDecision | None, axis: str) -> str:
    """``torch ×1.27 (1.20–1.34) at n=8, ×0.29 (0.28–0.29) at n=1024``."""
    if s is None or s.native is None:
        return "—"
    measured = [p for p in s.points if p.speedup is not None]
    if not measured:
        if s.baseline and nothing_compared(s):
            # no candidate is best where nothing was compared: naming the first one
            # (whichever the plan listed first) would read as a recommendation
            return f"none compared: {cell(s.baseline)} fails at every size"
        if native_wrong_everywhere(s):  # timed, but a wrong port has no speedup to show
            return f"{cell(s.native)}: wrong at every size, not weighed"
        return f"{cell(s.native)}: not measured"
    lo, hi = measured[0], measured[-1]
    speed = f"{fmt_interval(lo.speedup, lo.low, lo.high)} at {axis}={fmt_size(lo.size)}"
    if hi is not lo:
        speed += f", {fmt_interval(hi.speedup, hi.low, hi.high)} at {axis}={fmt_size(hi.size)}"
    return f"{cell(s.native)} {speed}"


def summary_table(decisions: Sequence[LayerDecision]) -> str:
    """One row per layer and setting: the training verdict (on a whole training step)
    and the inference verdict (on the forward, over every deployable form), each with
    its best candidate and its speedup at the smallest and largest size."""
    body = []
    for d in decisions:
        training, inference = d.training, d.inference_verdict
        primary = training or inference
        if primary is None:
            continue
        for n, label in enumerate(s.label for s in primary.settings):
            t = training.settings[n] if training else None
            i = inference.settings[n] if inference else None
            if t is not None:
                t_verdict = f"**{cell(setting_headline(d, t))}**"
            elif i is not None and i.forward_only:
                t_verdict = "— (forward only: no backward to train)"
            else:
                t_verdict = "not asked (`--use`)"
            i_verdict = (
                f"**{cell(setting_headline(d, i))}**" if i is not None else "not asked (`--use`)"
            )
            payoff = (
                f"{math.ceil(t.break_even[-1][1]):,} at {d.size_axis}={fmt_size(t.break_even[-1][0])}"
                if t is not None and t.break_even
                else "—"
            )
            body.append(
                [
                    cell(d.layer),
                    cell(label or "all"),
                    t_verdict,
                    _speed_cell(t, d.size_axis),
                    i_verdict,
                    _speed_cell(i, d.size_axis),
                    payoff,
                ]
            )
    # a folder from before the step was timed whole has only forward + backward summed
    estimated = any(
        s.estimated for d in decisions if d.training is not None for s in d.training.settings
    )
    header = [
        "layer",
        "setting",
        "training (estimated: forward + backward)" if estimated else "training (a whole step)",
        "best for training: speedup, 95% interval (smallest, largest size)",
        "inference (forward)",
        "best for inference: speedup, 95% interval (smallest, largest size)",
        "break-even calls (training, at the largest size that pays off)",
    ]
    return md_table(header, body, ["l", "l", "l", "l", "l", "l", "r"])


def threads_sentence(decisions: Sequence[LayerDecision], default: int | None = None) -> str:
    """Which intra-op thread count the verdicts are for."""
    counts = sorted({t for d in decisions for t in d.threads})
    if not counts:
        return ""
    word = "thread" if counts == [1] else "threads"
    text = (
        f"Verdicts are for {', '.join(map(str, counts))} intra-op {word} (torch and the "
        "NumPy/SciPy pools alike)"
    )
    if default is not None:
        if counts == [default]:
            text += f": {default} is what a fresh process gets on this machine"
        else:
            text += f"; a fresh process gets {default} here"
    if counts != [1]:
        text += "; `--threads 1` gives quieter, more comparable figures"
    return text + "."


def noise_warnings(frame: pd.DataFrame, limit: int = 20) -> list[str]:
    """Points whose spread is large, by pyperf ``check``'s rules: a standard deviation
    of 10% of the mean or more, or a minimum or maximum 50% away from the mean."""
    out = []
    for r in records(frame):
        if r.get("status") != "ok":
            continue
        mean = r.get("mean_s") or r.get("median_s")
        if not mean:
            continue
        found = []
        stdev = r.get("stdev_s")
        if stdev is not None and (r.get("n_values") or 2) >= 2 and stdev / mean >= 0.10:
            found.append(
                f"the standard deviation is {100 * stdev / mean:.0f}% of the mean ({fmt_seconds(mean)})"
            )
        for what in ("min", "max"):
            value = r.get(f"{what}_s")
            if value is None:
                continue
            pct = 100 * (value - mean) / mean
            if abs(pct) >= 50:
                word = "greater" if pct > 0 else "smaller"
                name = "minimum" if what == "min" else "maximum"
                found.append(
                    f"the {name} ({fmt_seconds(value)}) is {abs(pct):.0f}% {word} than the mean"
                )
        if found:
            out.append(f"`{r.get('case')}`: " + "; ".join(found))
    if len(out) > limit:
        out = [*out[:limit], f"… and {len(out) - limit} more"]
    return out


def _value(value: Any) -> str:
    """A JSON value in words: ``a=1, b=2``; nested mappings in parentheses."""
    if isinstance(value, Mapping):
        return ", ".join(
            f"{k} ({_value(v)})" if isinstance(v, Mapping) else f"{k}={_value(v)}"
            for k, v in value.items()
        )
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value)
    return str(value)


def _native_libraries(environment: Mapping[str, Any]) -> str | None:
    """BLAS, FFT and OpenMP libraries: recorded ``blas`` or threadpoolctl's pools."""
    parts: list[str] = []
    pools = environment.get("native_pools")
    if isinstance(pools, list):
        for pool in pools:
            if isinstance(pool, Mapping):
                text = " ".join(
                    str(pool[k]) for k in ("internal_api", "version") if pool.get(k) is not None
                )
                if pool.get("architecture"):
                    text += f" ({pool['architecture']})"
                parts.append(text)
    if environment.get("numpy_fft"):
        parts.append(f"NumPy FFT: {environment['numpy_fft']}")
    if environment.get("scipy_fft"):
        parts.append(f"SciPy FFT: {environment['scipy_fft']}")
    torch_config = environment.get("torch_config")
    if isinstance(torch_config, Mapping) and torch_config.get("fft_backend"):
        parts.append(f"torch FFT: {torch_config['fft_backend']}")
    parts = list(dict.fromkeys(p for p in parts if p))
    return "; ".join(parts) if parts else None


def _threads(environment: Mapping[str, Any], config: Mapping[str, Any]) -> str | None:
    threads = environment.get("threads")
    if isinstance(threads, Mapping):
        parts = []
        swept = threads.get("swept")
        if swept not in (None, [], ""):
            parts.append(f"swept {_value(swept)}")
        env = threads.get("worker_env")
        if isinstance(env, Mapping) and env:
            parts.append("workers' " + ", ".join(f"{k}={v}" for k, v in sorted(env.items())))
        rest = {k: v for k, v in threads.items() if k not in ("swept", "worker_env")}
        if rest:
            parts.append(_value(rest))
        return "; ".join(parts) or None
    if threads not in (None, "", [], {}):
        return _value(threads)
    if config.get("threads") not in (None, "", [], {}):
        return f"swept {_value(config['threads'])}"
    return None


def _allocator(allocator: Any) -> str | None:
    """The allocators swept, and which others were available."""
    if not isinstance(allocator, Mapping):
        return None
    if "swept" not in allocator:  # format 1: the fixed glibc variables
        text = ", ".join(f"{k}={v}" for k, v in sorted(allocator.items()) if v not in (None, ""))
        return text or "glibc defaults"
    text = "swept " + ", ".join(str(a) for a in allocator.get("swept") or [])
    available = allocator.get("available")
    if isinstance(available, Mapping):
        missing = [f"{k} ({v})" for k, v in available.items() if v]
        if missing:
            text += "; not available here: " + "; ".join(missing)
    return text


def _grid(grid: Any) -> str | None:
    """``{"n": [8, 16], "k": [3]}`` -> ``n=8,16 k=3``; per layer when keyed by layer."""
    if not isinstance(grid, Mapping) or not grid:
        return None if grid in (None, "", [], {}) else _value(grid)

    def axes(g: Mapping[str, Any]) -> str:
        return " ".join(
            f"{axis}=" + (",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v))
            for axis, v in g.items()
        )

    if all(isinstance(v, Mapping) for v in grid.values()):
        return "; ".join(f"{layer}: {axes(g)}" for layer, g in grid.items())
    return axes(grid)


def environment_table(environment: Mapping[str, Any], run: Mapping[str, Any]) -> str:
    """What the numbers were measured on and with: a two-column table.

    Reads ``environment.json`` and ``run.json`` keys when present (run settings either
    at the top level or under ``config``); missing keys are left out.
    """
    nested = run.get("config")
    config: Mapping[str, Any] = nested if isinstance(nested, Mapping) else run
    body: list[list[str]] = []

    def add(label: str, value: Any) -> None:
        if value not in (None, "", {}, []):
            body.append([label, cell(value if isinstance(value, str) else _value(value))])

    add("date", environment.get("date") or run.get("created"))
    add("CPU", environment.get("cpu"))
    add("CPU capability (torch kernels)", environment.get("cpu_capability"))
    add("ISA flags", " ".join(environment.get("cpu_flags") or []))
    caches = environment.get("caches")
    if isinstance(caches, Mapping):
        add("caches", ", ".join(f"{k} {v}" for k, v in caches.items()))
    add("cores", environment.get("cores"))
    add("platform", environment.get("platform"))
    add("Python", environment.get("python"))
    add("GPUs", environment.get("gpus"))
    add("threads", _threads(environment, config))
    add("BLAS / FFT", _native_libraries(environment))
    versions = environment.get("versions")
    if isinstance(versions, Mapping):
        add("versions", ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    add("allocator", _allocator(environment.get("allocator")))
    add("git revision", environment.get("git_revision"))
    profile = run.get("profile") or config.get("profile")
    if isinstance(profile, Mapping):
        rest = {k: v for k, v in sorted(profile.items()) if k != "name"}
        add(
            "profile",
            f"{profile.get('name', '')} ({_value(rest)})" if rest else profile.get("name"),
        )
    else:
        add("profile", profile)
    add("dtypes", config.get("dtypes"))
    add("devices", config.get("devices"))
    add("grid", _grid(config.get("grid")))
    if not body:
        return "No environment was recorded."
    return md_table(["", "value"], body, ["l", "l"])
