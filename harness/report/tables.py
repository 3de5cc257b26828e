"""Pure Markdown formatters for the report: each returns text and writes nothing.

Tables put implementations as rows and sizes as columns (as ``torch.utils.benchmark``'s
``Compare`` does), one table per setting of the other axes (``k=3``, ``k=15``). A
failed cell reads ``error`` and an unsupported one ``n/a (unsupported)``, each with a
footnote holding the recorded message; a point that was never measured reads ``—``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from harness.report._data import Measure, impl_order, measure, records, settings, size_axis
from harness.report._format import (
    Footnotes,
    cell,
    fmt_pct,
    fmt_rel_err,
    fmt_seconds,
    fmt_size,
    fmt_speedup,
    md_table,
)
from harness.report._stats import ALPHA, MIN_EFFECT, compare_measures
from harness.report.verdict import CAPABILITY_NAMES, Verdict, setting_headline

__all__ = [
    "capability_table",
    "deviation_table",
    "environment_table",
    "noise_warnings",
    "oneoff_table",
    "summary_table",
    "time_tables",
]


def _status_cell(m: Measure, notes: Footnotes) -> str:
    if m.status == "missing":
        return "—"
    if m.status == "unsupported":
        return "n/a (unsupported)" + (notes.ref(m.error) if m.error else "")
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
    raw_values: Mapping[str, Sequence[float]] | None = None,
    *,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
) -> list[tuple[str, str]]:
    """Median time per call per implementation (rows) and size (columns), for one phase.

    Returns ``(setting label, table)`` pairs, one per setting of the other axes. Cells
    read ``1.23 ms ±4%`` (median ± standard deviation as a share of it); native cells
    add the speedup over the baseline, ``×3.1``, in bold where it is significant and at
    least ``min_effect``.
    """
    raw = raw_values or {}
    all_rows = records(layer_frame)
    axis = size_axis(all_rows)
    out = []
    for setting in settings(all_rows):
        rows = [r for r in setting.rows if r.get("phase") == phase]
        if not rows:
            continue
        sizes = sorted({float(r["size"]) for r in rows if r.get("size") is not None})
        impls = impl_order(rows)
        base_impl = next((r["impl"] for r in rows if r.get("role") == "baseline"), None)
        base = _rows_by(rows, base_impl, phase) if base_impl else {}
        body = []
        for impl in impls:
            by_size = _rows_by(rows, impl, phase)
            label = f"{impl} (baseline)" if impl == base_impl else impl
            cells = [cell(label)]
            for size in sizes:
                m = measure(by_size.get(size), raw)
                if not m.ok:
                    cells.append(_status_cell(m, notes))
                    continue
                text = _time_cell(m)
                b = measure(base.get(size), raw)
                if impl != base_impl and b.ok:
                    t = compare_measures(b, m, alpha=alpha, min_effect=min_effect)
                    speed = fmt_speedup(t.ratio)
                    text += f" **{speed}**" if t.decisive else f" {speed}"
                cells.append(text)
            body.append(cells)
        header = ["implementation"] + [f"{axis}={fmt_size(s)}" for s in sizes]
        out.append((setting.label, md_table(header, body)))
    return out


def oneoff_table(layer_frame: pd.DataFrame, notes: Footnotes) -> str | None:
    """One-off costs (scripting, first compiled call, ONNX export) per implementation and
    size; ``None`` when nothing recorded one."""
    all_rows = records(layer_frame)
    axis = size_axis(all_rows)
    found: dict[tuple[str, str, str], dict[float, float]] = {}
    sizes: set[float] = set()
    for setting in settings(all_rows):
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
    # (impl, dtype) -> tensor -> (max rel err, all within tol, any measured)
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
    tensors.sort(key=lambda t: (t != "output", t))
    rtol = {str(r.get("dtype")): r.get("rtol") for r in rows if r.get("rtol") is not None}
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
                else:
                    cells.append(fmt_rel_err(slot[0]) + ("" if slot[1] else " ✗"))
            tol = rtol.get(dtype)
            cells.append("—" if tol is None else f"{float(tol):g}")
            cells.append(_gradcheck_cell(rows, impl, notes))
            body.append(cells)
    header = ["implementation", *tensors, "rtol", "gradcheck"]
    return md_table(header, body)


def _gradcheck_cell(rows: Sequence[Mapping[str, Any]], impl: str, notes: Footnotes) -> str:
    marks = [r for r in rows if r["impl"] == impl and r.get("gradcheck") is not None]
    if not marks:
        return "—"
    failed = [r for r in marks if r.get("gradcheck") is False]
    if failed:
        msg = failed[0].get("gradcheck_error")
        return "fail" + (notes.ref(msg) if msg else "")
    return "pass"


def capability_table(layer_capabilities: pd.DataFrame, notes: Footnotes) -> str | None:
    """The capability matrix: implementations as rows, checks as columns."""
    caps = records(layer_capabilities)
    if not caps:
        return None
    impls = impl_order(caps)
    checks = list(dict.fromkeys(str(c["check"]) for c in caps))
    body = []
    for impl in impls:
        role = next((c.get("role") for c in caps if c["impl"] == impl), None)
        cells = [cell(f"{impl} (baseline)" if role == "baseline" else impl)]
        for check in checks:
            c = next((c for c in caps if c["impl"] == impl and c["check"] == check), None)
            if c is None:
                cells.append("—")
                continue
            status = str(c.get("status"))
            if status == "ok":
                text = "✓"
                breaks = c.get("graph_breaks")
                if breaks:
                    text += f" ({breaks} graph break{'s' if breaks != 1 else ''})"
            else:
                text = f"✗ {status}"
                if c.get("reason"):
                    text += notes.ref(str(c["reason"]))
            cells.append(text)
        body.append(cells)
    header = ["implementation"] + [CAPABILITY_NAMES.get(c, c) for c in checks]
    return md_table(header, body, ["l"] + ["l"] * len(checks))


def summary_table(verdicts: Sequence[Verdict]) -> str:
    """One row per layer and setting: verdict, best native, speedup at the extremes."""
    body = []
    for v in verdicts:
        for s in v.settings:
            measured = [p for p in s.points if p.speedup is not None]
            if measured:
                lo, hi = measured[0], measured[-1]
                speed = f"{fmt_speedup(lo.speedup or 0)} at {v.size_axis}={fmt_size(lo.size)}"
                if hi is not lo:
                    speed += (
                        f", {fmt_speedup(hi.speedup or 0)} at {v.size_axis}={fmt_size(hi.size)}"
                    )
            else:
                speed = "—"
            body.append(
                [
                    cell(v.layer),
                    cell(s.label or "all"),
                    f"**{cell(setting_headline(v, s))}**",
                    cell(s.native or "—"),
                    cell(s.metric),
                    speed,
                ]
            )
    header = [
        "layer",
        "setting",
        "verdict",
        "best native",
        "decided on",
        "speedup (smallest, largest size)",
    ]
    return md_table(header, body, ["l", "l", "l", "l", "l", "l"])


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
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


_ENV_KEYS = (
    ("date", "date"),
    ("cpu", "CPU"),
    ("cores", "cores"),
    ("platform", "platform"),
    ("python", "Python"),
    ("threads", "threads"),
    ("blas", "BLAS / FFT"),
    ("git_revision", "git revision"),
)


def environment_table(environment: Mapping[str, Any], run: Mapping[str, Any]) -> str:
    """What the numbers were measured on and with: a two-column table."""
    body: list[list[str]] = []
    for key, label in _ENV_KEYS:
        if environment.get(key) not in (None, "", {}, []):
            body.append([label, cell(_value(environment[key]))])
    versions = environment.get("versions")
    if isinstance(versions, Mapping) and versions:
        text = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
        body.append(["versions", cell(text)])
    allocator = environment.get("allocator")
    if isinstance(allocator, Mapping):
        text = (
            ", ".join(f"{k}={v}" for k, v in sorted(allocator.items()) if v not in (None, ""))
            or "defaults"
        )
        body.append(["allocator", cell(text)])
    profile = run.get("profile")
    if isinstance(profile, Mapping):
        name = profile.get("name", "")
        rest = {k: v for k, v in profile.items() if k != "name"}
        text = str(name) + (
            f" ({', '.join(f'{k}={_value(v)}' for k, v in sorted(rest.items()))})" if rest else ""
        )
        body.append(["profile", cell(text)])
    elif profile:
        body.append(["profile", cell(_value(profile))])
    for key, label in (
        ("dtypes", "dtypes"),
        ("devices", "devices"),
        ("grid", "grid"),
        ("created", "run created"),
    ):
        if run.get(key) not in (None, "", {}, []):
            label_threads = label
            body.append([label_threads, cell(_value(run[key]))])
    if run.get("threads") not in (None, "", [], {}) and "threads" not in environment:
        body.append(["threads", cell(_value(run["threads"]))])
    if not body:
        return "No environment was recorded."
    return md_table(["", "value"], body, ["l", "l"])
