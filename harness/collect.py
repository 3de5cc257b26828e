"""From the workers' raw event files to the frame, the deviation table, the capability
matrix and one pyperf suite. Pure functions over events, plus ``read_state`` to load
them from a results folder."""

from __future__ import annotations

import io
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.case import PHASES, Case, Variant
from harness.deviation import RTOL
from harness.frame import CAPABILITY_COLUMNS, DEVIATION_COLUMNS, build_frame, build_table
from harness.registry import Registry
from harness.worker import EventLog

__all__ = ["State", "build_outputs", "merge_suite", "read_state"]

RAW_DIR = "raw"
SETUP_FILE = "setup.jsonl"


def timing_file(process: int) -> str:
    return f"timing-{process:03d}.jsonl"


@dataclass
class State:
    """What the raw files of a results folder say has been done."""

    setup: dict[str, dict[str, Any]] = field(default_factory=dict)
    gradchecks: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    capabilities: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    benches: dict[str, dict[int, str]] = field(default_factory=dict)
    timing_errors: dict[str, dict[int, str]] = field(default_factory=dict)

    def add(self, event: dict[str, Any], process: int | None = None) -> None:
        kind = event.get("event")
        if kind == "setup":
            self.setup[event["variant"]] = event
        elif kind == "gradcheck":
            self.gradchecks[(event["layer"], event["impl"])] = event
        elif kind == "capabilities":
            self.capabilities[event["layer"]] = event["rows"]
        elif kind == "bench" and process is not None:
            self.benches.setdefault(event["case"], {})[process] = event["bench"]
        elif kind in ("error", "crash") and process is not None:
            self.timing_errors.setdefault(event["key"], {})[process] = event["error"]
        elif kind == "crash" and process is None:
            key = event["key"]
            if key.startswith("gradcheck:"):
                layer, impl = key.split(":", 1)[1].split("/", 1)
                self.gradchecks[(layer, impl)] = {"ok": False, "error": event["error"], "point": ""}
            elif key.startswith("capabilities:"):
                self.capabilities[key.split(":", 1)[1]] = []
            else:
                self.setup[key] = {
                    "variant": key,
                    "phases": {ph: {"status": "error", "error": event["error"]} for ph in PHASES},
                }

    def done_for(self, case: str, process: int) -> bool:
        return process in self.benches.get(case, {}) or process in self.timing_errors.get(case, {})


def read_state(folder: Path) -> State:
    state = State()
    raw = folder / RAW_DIR
    for event in EventLog.read(raw / SETUP_FILE):
        state.add(event)
    for path in sorted(raw.glob("timing-*.jsonl")):
        process = int(path.stem.split("-")[1])
        for event in EventLog.read(path):
            state.add(event, process)
    return state


def merge_suite(state: State) -> Any:
    """All timing runs as one pyperf BenchmarkSuite (None when nothing was timed)."""
    import pyperf

    benches = []
    for case in sorted(state.benches):
        merged = None
        for process in sorted(state.benches[case]):
            bench = pyperf.Benchmark.loads(state.benches[case][process])
            if merged is None:
                merged = bench
            else:
                merged.add_runs(bench)
        if merged is not None:
            benches.append(merged)
    return pyperf.BenchmarkSuite(benches) if benches else None


def suite_json(suite: Any) -> str:
    buf = io.StringIO()
    suite.dump(buf, compact=True)
    return buf.getvalue()


def _timing_stats(bench: Any) -> dict[str, Any]:
    values = list(bench.get_values())
    runs = [r for r in bench.get_runs() if r.values]
    return {
        "median_s": statistics.median(values),
        "mean_s": statistics.fmean(values),
        "stdev_s": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min_s": min(values),
        "max_s": max(values),
        "n_values": len(values),
        "n_processes": len(runs),
        "loops": int(bench.get_total_loops()),
    }


def build_outputs(
    state: State, variants: Iterable[Variant], registry: Registry
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, Any]:
    """(results frame, deviation table, capability table, pyperf suite or None)."""
    suite = merge_suite(state)
    by_name = {b.get_name(): b for b in suite.get_benchmarks()} if suite is not None else {}
    rows: list[dict[str, Any]] = []
    dev_rows: list[dict[str, Any]] = []
    axes: list[str] = []
    for variant in variants:
        setup = state.setup.get(variant.name)
        if setup is None:
            continue
        layer = registry.get(variant.layer)
        impl = layer.implementation(variant.impl)
        for axis in layer.axis_names:
            if axis not in axes:
                axes.append(axis)
        size_value = variant.point_dict[layer.size_axis_name]
        for phase in PHASES:
            case = Case(variant, phase)
            info = setup["phases"].get(phase, {"status": "error", "error": "not set up"})
            row: dict[str, Any] = {
                "case": case.name,
                "layer": variant.layer,
                "impl": variant.impl,
                "role": impl.role,
                "form": impl.form,
                "source": impl.origin,
                "point": variant.point_str,
                "size": float(size_value) if isinstance(size_value, int | float) else None,
                "dtype": variant.dtype,
                "threads": variant.threads,
                "device": variant.device,
                "phase": phase,
                "status": info["status"],
                "error": info.get("error"),
                "oneoff_s": setup.get("oneoff_s"),
                "oneoff_what": setup.get("oneoff_what"),
                **variant.point_dict,
            }
            devs = info.get("deviations") or []
            if devs:
                worst = max(devs, key=lambda d: (not d["within_tol"], d["max_rel_err"]))
                row.update(
                    max_abs_err=max(d["max_abs_err"] for d in devs),
                    max_rel_err=max(d["max_rel_err"] for d in devs),
                    worst_tensor=worst["tensor"],
                    within_tol=all(d["within_tol"] for d in devs),
                )
                row["rtol"] = RTOL[variant.dtype]
                for d in devs:
                    dev_rows.append(
                        {
                            "case": case.name,
                            "layer": variant.layer,
                            "impl": variant.impl,
                            "point": variant.point_str,
                            "size": row["size"],
                            "dtype": variant.dtype,
                            "phase": phase,
                            **d,
                        }
                    )
            if phase == "backward" and impl.role == "baseline" and impl.form == "eager":
                gc = state.gradchecks.get((variant.layer, variant.impl))
                if gc is not None:
                    row["gradcheck"] = bool(gc["ok"])
                    row["gradcheck_error"] = (
                        f"{gc['error']} (at {gc.get('point', '')})" if gc.get("error") else None
                    )
            if row["status"] == "ok":
                bench = by_name.get(case.name)
                errors = state.timing_errors.get(case.name, {})
                if bench is not None:
                    row.update(_timing_stats(bench))
                    if errors:
                        row["error"] = (
                            f"{len(errors)} worker process(es) failed: {next(iter(errors.values()))}"
                        )
                elif errors:
                    row["status"] = "error"
                    row["error"] = next(iter(errors.values()))
                else:
                    row["status"] = "incomplete"
                    row["error"] = (
                        "checked but not timed yet: the run was interrupted (resume it with --resume)"
                    )
            rows.append(row)
    frame = build_frame(rows, axes)
    deviations = build_table(dev_rows, DEVIATION_COLUMNS)
    cap_rows = [r for layer in sorted(state.capabilities) for r in state.capabilities[layer]]
    capabilities = build_table(cap_rows, CAPABILITY_COLUMNS)
    return frame, deviations, capabilities, suite
