"""Crafted results frames and folders for the report tests (no timing involved).

Tests reach these helpers through the ``rf`` fixture (the tests import in
``importlib`` mode, where a helper module cannot be imported by name).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pyperf
import pytest

from harness.frame import CAPABILITY_COLUMNS, DEVIATION_COLUMNS, build_frame, build_table
from harness.results import Results, atomic_write_json, versioned, write_results
from harness.stats import BAND

BASELINES = ("numpy", "scipy")
AXES = ("n", "k")

#: A speedup as a test gives it: (estimate, low, high) of its 95% interval.
Speedup = tuple[float, float, float]


def iv(estimate: float, half: float = 0.02) -> Speedup:
    """``estimate`` with an interval of relative half-width ``half`` (in log space):
    ``(estimate, estimate / (1 + half), estimate * (1 + half))``."""
    return (estimate, estimate / (1 + half), estimate * (1 + half))


def decision(low: float, high: float) -> str:
    """As ``harness.stats.decide``: the interval against the ±5% band."""
    if low > 1 + BAND:
        return "faster"
    if high < 1 / (1 + BAND):
        return "slower"
    return "undecided"


def _interval_columns(prefix: str, speedup: Speedup) -> dict[str, Any]:
    est, low, high = speedup
    assert low <= est <= high, f"not an interval: {speedup}"
    return {
        f"{prefix}speedup": est,
        f"{prefix}speedup_low": low,
        f"{prefix}speedup_high": high,
        f"{prefix}decision": decision(low, high),
    }


def values(median: float, spread: float = 0.02, count: int = 20) -> list[float]:
    """``count`` evenly spread values around ``median``, min/max at ``median*(1∓spread)``."""
    if count == 1:
        return [median]
    return [median * (1 + spread * (2 * i / (count - 1) - 1)) for i in range(count)]


def row(
    layer: str,
    impl: str,
    n: int,
    phase: str,
    median: float | None = None,
    *,
    k: int | None = None,
    status: str = "ok",
    error: str | None = None,
    spread: float = 0.02,
    count: int = 20,
    role: str | None = None,
    form: str = "eager",
    source: str | None = None,
    dtype: str = "float32",
    threads: int = 1,
    device: str = "cpu",
    allocator: str = "glibc",
    speedup: Speedup | None = None,
    step: Speedup | None = None,
    versus: str | None = None,
    break_even_calls: float | None = None,
    peak_bytes: int | None = None,
    peak_sources: str | None = None,
    max_rel_err: float | None = 1e-7,
    within_tol: bool | None = True,
    rtol: float = 1e-5,
    worst_tensor: str | None = None,
    tensors_out_of_tol: str | None = None,
    gradcheck: bool | None = None,
    gradcheck_error: str | None = None,
    oneoff_s: float | None = None,
    oneoff_what: str | None = None,
) -> dict[str, Any]:
    """One frame row; timing columns follow from ``median`` and ``spread``.

    ``speedup`` and ``step`` are a candidate's paired speedups over ``versus`` (default
    ``numpy``) as (estimate, low, high): for this phase and for a training step; the
    decision columns follow from them. ``paired`` derives those a test leaves out."""
    point = f"n={n}" + (f",k={k}" if k is not None else "")
    role = role or ("baseline" if impl in BASELINES else "native")
    setting = f"{dtype}/t{threads}/{device}/{allocator}"
    out: dict[str, Any] = {
        "case": f"{layer}/{impl}/{point}/{setting}/{phase}",
        "layer": layer,
        "impl": impl,
        "role": role,
        "form": form,
        "source": source or impl,
        "point": point,
        "size": float(n),
        "dtype": dtype,
        "threads": threads,
        "device": device,
        "allocator": allocator,
        "group": f"{layer}/{point}/{setting}",
        "phase": phase,
        "status": status,
        "error": error,
        "n": n,
        "k": k,
    }
    if speedup is not None or step is not None:
        assert role != "baseline", "a baseline has no speedup over itself"
        out["versus"] = versus or "numpy"
        if speedup is not None:
            out.update(_interval_columns("", speedup))
        if step is not None:
            out.update(_interval_columns("step_", step))
    if break_even_calls is not None:
        out["break_even_calls"] = break_even_calls
    if peak_bytes is not None:
        out.update(peak_bytes=peak_bytes, peak_sources=peak_sources or "numpy+torch-cpu")
    if status == "ok":
        assert median is not None
        vals = values(median, spread, count)
        mean = sum(vals) / len(vals)
        stdev = (sum((v - mean) ** 2 for v in vals) / max(1, len(vals) - 1)) ** 0.5
        out.update(
            median_s=median,
            mean_s=mean,
            stdev_s=stdev,
            min_s=min(vals),
            max_s=max(vals),
            n_values=count,
            n_processes=4,
            loops=1,
            max_abs_err=None if max_rel_err is None else max_rel_err * 10,
            max_rel_err=max_rel_err,
            worst_tensor=worst_tensor or ("output" if phase == "forward" else "grad_x"),
            tensors_out_of_tol=tensors_out_of_tol,
            rtol=rtol,
            within_tol=within_tol,
        )
    if phase == "backward" and role == "baseline":
        out.update(gradcheck=gradcheck, gradcheck_error=gradcheck_error)
    if oneoff_s is not None:
        out.update(oneoff_s=oneoff_s, oneoff_what=oneoff_what)
    return out


def frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    return build_frame(rows, axes=AXES)


def paired(rows: list[dict[str, Any]], half: float = 0.02) -> list[dict[str, Any]]:
    """Fill in the speedups a test left out, from the medians: for each candidate row
    whose group's baseline row of the same phase is ok, ``speedup = iv(baseline median /
    its median, half)``; ``step`` likewise from the sums of the forward and backward
    medians, where both sides have both. ``versus`` is the group's baseline. Rows that
    have a speedup (or step) keep it. Returns ``rows``, changed in place."""
    by_group: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for r in rows:
        by_group.setdefault(r["group"], {})[(r["impl"], r["phase"])] = r

    def median(members: Mapping[tuple[str, str], Any], impl: str, phase: str) -> float | None:
        r = members.get((impl, phase))
        return r["median_s"] if r is not None and r["status"] == "ok" else None

    for members in by_group.values():
        base = next((i for (i, _), r in members.items() if r["role"] == "baseline"), None)
        if base is None:
            continue
        for (impl, phase), r in members.items():
            if r["role"] == "baseline" or r["status"] != "ok":
                continue
            b, c = median(members, base, phase), median(members, impl, phase)
            if "speedup" not in r and b is not None and c is not None:
                r["versus"] = base
                r.update(_interval_columns("", iv(b / c, half)))
            times = [median(members, i, p) for i in (base, impl) for p in ("forward", "backward")]
            if "step_speedup" not in r and all(t is not None for t in times):
                bf, bb, cf, cb = times
                assert bf and bb and cf and cb
                r["versus"] = base
                r.update(_interval_columns("step_", iv((bf + bb) / (cf + cb), half)))
    return rows


def raw_for(rows: Iterable[Mapping[str, Any]], count: int = 20) -> dict[str, list[float]]:
    """Raw values matching the rows' medians and spreads (as ``Results.raw_values``)."""
    out = {}
    for r in rows:
        if r.get("status") == "ok":
            spread = (r["max_s"] - r["median_s"]) / r["median_s"]
            out[r["case"]] = values(r["median_s"], spread, r.get("n_values") or count)
    return out


def series(
    layer: str,
    impls: Mapping[str, Callable[[int], float]],
    sizes: Sequence[int],
    phases: Sequence[str] = ("forward", "backward"),
    half: float = 0.02,
    **kw: Any,
) -> list[dict[str, Any]]:
    """Rows for every impl, size and phase; ``impls`` maps name -> median(n). The
    candidates' speedups follow from the medians (``paired`` with ``half``)."""
    rows = [
        row(layer, impl, n, phase, fn(n), **kw)
        for impl, fn in impls.items()
        for n in sizes
        for phase in phases
    ]
    return paired(rows, half)


def capabilities(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    return build_table(rows, CAPABILITY_COLUMNS)


def deviations(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    return build_table(rows, DEVIATION_COLUMNS)


def results(
    rows: Sequence[Mapping[str, Any]],
    *,
    caps: Sequence[Mapping[str, Any]] = (),
    devs: Sequence[Mapping[str, Any]] = (),
    environment: Mapping[str, Any] | None = None,
    run: Mapping[str, Any] | None = None,
    path: str = "results",
) -> Results:
    """An in-memory ``Results`` (its folder need not exist)."""
    return Results(
        path=Path(path),
        frame=frame(rows),
        deviations=deviations(devs),
        capabilities=capabilities(caps),
        environment=dict(environment or {}),
        run=dict(run or {}),
    )


def write_folder(
    path: Path,
    rows: Sequence[Mapping[str, Any]],
    *,
    raw: Mapping[str, Sequence[float]] | None = None,
    caps: Sequence[Mapping[str, Any]] = (),
    devs: Sequence[Mapping[str, Any]] = (),
    environment: Mapping[str, Any] | None = None,
    run: Mapping[str, Any] | None = None,
) -> Path:
    """A results folder on disk, written as the harness writes one (run.json and
    environment.json ``versioned``, the tables and pyperf.json through
    ``write_results``, so that it has a manifest and loads under every check)."""
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path / "run.json", versioned(dict(run or {"profile": {"name": "test"}})))
    atomic_write_json(
        path / "environment.json", versioned(dict(environment or {"cpu": "test cpu"}))
    )
    pyperf_text = None
    if raw:
        benches = [
            pyperf.Benchmark(
                [
                    pyperf.Run(
                        list(vals),
                        metadata={"name": name, "unit": "second", "loops": 1},
                        collect_metadata=False,
                    )
                ]
            )
            for name, vals in raw.items()
        ]
        buf = io.StringIO()
        pyperf.BenchmarkSuite(benches).dump(buf, compact=True)
        pyperf_text = buf.getvalue()
    write_results(path, frame(rows), deviations(devs), capabilities(caps), pyperf_text)
    return path


# ------------------------------------------------------------------ a seed-like run

ENVIRONMENT = {
    "cpu": "Test CPU @ 3.0GHz",
    "cores": 8,
    "platform": "Linux-6.1-x86_64",
    "python": "3.11.9",
    "versions": {"numpy": "2.0.0", "scipy": "1.14.0", "torch": "2.5.0"},
    "native_pools": [
        {"internal_api": "openblas", "version": "0.3.27", "architecture": "Haswell"},
        {"internal_api": "openmp", "version": None, "architecture": None},
    ],
    "numpy_fft": "pocketfft (numpy.fft)",
    "torch_config": {"fft_backend": "MKL (CPU)"},
    "threads": {"swept": [1], "worker_env": {"OMP_NUM_THREADS": "1"}},
    "allocator": {"MALLOC_ARENA_MAX": "2"},
    "git_revision": "0123456789ab",
    "hostname": "not-shown",
    "date": "2024-06-01T12:00:00",
}
RUN = {
    "profile": {"name": "quick", "processes": 4, "values": 5, "min_time": 0.01},
    "config": {
        "grid": {"n": [8, 9, 64, 256, 1024], "k": [3, 15]},
        "dtypes": ["float32"],
        "threads": [1],
        "devices": ["cpu"],
    },
    "created": "2024-06-01T11:00:00",
    "layers": {
        "fft": {
            "size_axis": "n",
            "baselines": ["numpy"],
            "backward": ["numpy", "torch", "torchscript", "compile"],
        },
        "conv2d": {
            "size_axis": "n",
            "baselines": ["scipy"],
            "backward": ["scipy", "torch", "compile"],
        },
        # numpy is declared without a backward: decided on forward
        "norm": {"size_axis": "n", "baselines": ["numpy"], "backward": ["torch"]},
    },
    "timing": {
        "budget_s": 120,
        "first_pass": {"processes": 4, "rounds": 5, "groups": 27, "seconds": 81},
        "adaptive": [{"rounds": 10, "groups": 2, "seconds": 19}],
        "spent_s": 100,
    },
}

FFT_SIZES = (8, 9, 64, 256, 1024)
CONV_SIZES = (8, 64, 256, 1024)
BAD_FFT_GRAD = "ValueError: operands could not be broadcast together with shapes (9,9) (9,5)"
GRADCHECK_MSG = "Jacobian mismatch for output 0 with respect to input 0"
ORT_BACKWARD = "ONNX Runtime sessions run forward only"
NO_BACKWARD = "numpy is declared without a backward"
NORM_SIZES = (8, 64, 256, 1024)
#: norm's forward speedups: decided faster up to n=256, too noisy to tell at n=1024
NORM_SPEEDUPS: dict[int, Speedup] = {
    8: iv(1.6),
    64: iv(1.4),
    256: iv(1.25),
    1024: (1.08, 0.9, 1.3),
}
#: conv2d k=3, compile at n=8: a noisy point (wide spread and interval) on the baseline's
#: side of the crossover, which cannot change the verdict
NOISY_STEP: Speedup = (0.41, 0.2, 1.1)


def seed_like_rows() -> list[dict[str, Any]]:
    """fft (wrong NumPy gradient, odd width fails backward), conv2d (k=3 crosses over
    between n=64 and n=256, k=15 native everywhere; one compile failure; one noisy point
    that cannot change the verdict; peak memory recorded) and norm (a forward-only
    NumPy baseline, undecided at n=1024). Speedups follow from the medians (``paired``,
    ±2%) except the noisy ones, which are given."""
    rows: list[dict[str, Any]] = []
    natives = {
        "torch": lambda n: 15e-6 + 1e-9 * n * n,
        "torchscript": lambda n: 17e-6 + 1e-9 * n * n,
        "compile": lambda n: 12e-6 + 1.1e-9 * n * n,
        "onnxruntime": lambda n: 25e-6 + 0.9e-9 * n * n,
    }
    for n in FFT_SIZES:
        rows.append(row("fft", "numpy", n, "forward", 5e-6 + 2e-9 * n * n))
        if n % 2:
            rows.append(row("fft", "numpy", n, "backward", status="error", error=BAD_FFT_GRAD))
        else:
            rows.append(
                row(
                    "fft", "numpy", n, "backward", 6e-6 + 2e-9 * n * n,
                    max_rel_err=0.97, within_tol=False, gradcheck=False, gradcheck_error=GRADCHECK_MSG,
                )
            )  # fmt: skip
        for impl, fn in natives.items():
            form = "eager" if impl == "torch" else impl
            oneoff = {
                "torchscript": (0.05, "torch.jit.script"),
                "compile": (2.5, "first call (cold cache)"),
                "onnxruntime": (0.4, "export + session"),
            }
            extra: dict[str, Any] = {}
            if impl in oneoff:
                extra = {
                    "oneoff_s": oneoff[impl][0] * (1 + n / 1024),
                    "oneoff_what": oneoff[impl][1],
                }
            rows.append(row("fft", impl, n, "forward", fn(n), form=form, source="torch", **extra))
            if impl == "onnxruntime":
                rows.append(
                    row(
                        "fft",
                        impl,
                        n,
                        "backward",
                        status="unsupported",
                        error=ORT_BACKWARD,
                        form=form,
                        source="torch",
                    )
                )
            else:
                rows.append(row("fft", impl, n, "backward", 2 * fn(n), form=form, source="torch"))
    for k in (3, 15):
        for n in CONV_SIZES:
            c = k * k
            rows.append(
                row(
                    "conv2d", "scipy", n, "forward", 4e-6 + 0.4e-9 * c * n * n, k=k,
                    peak_bytes=12 * n * n + 4096,
                )
            )  # fmt: skip
            rows.append(
                row(
                    "conv2d", "scipy", n, "backward", 8e-6 + 0.8e-9 * c * n * n, k=k,
                    gradcheck=True, peak_bytes=24 * n * n,
                )
            )  # fmt: skip
            for impl, base, slope in (("torch", 20e-6, 0.3e-9), ("compile", 10e-6, 0.35e-9)):
                form = "eager" if impl == "torch" else impl
                t = (
                    (base + slope * (9 if k == 3 else 1) * n * n)
                    if k == 3
                    else (1e-6 + 0.01e-9 * c * n * n)
                )
                if impl == "compile" and k == 15 and n == 1024:
                    rows.append(
                        row(
                            "conv2d",
                            impl,
                            n,
                            "forward",
                            status="error",
                            error="RuntimeError: compiled graph failed",
                            k=k,
                            form=form,
                            source="torch",
                        )
                    )
                    rows.append(
                        row(
                            "conv2d",
                            impl,
                            n,
                            "backward",
                            status="error",
                            error="RuntimeError: compiled graph failed",
                            k=k,
                            form=form,
                            source="torch",
                        )
                    )
                    continue
                noisy = impl == "compile" and n == 8 and k == 3
                given: dict[str, Any] = {"step": NOISY_STEP} if noisy else {}
                rows.append(
                    row(
                        "conv2d", impl, n, "forward", t, k=k, form=form, source="torch",
                        spread=0.6 if noisy else 0.02, peak_bytes=4 * n * n + 1024,
                        **given, **({"speedup": (0.41, 0.2, 1.1), "versus": "scipy"} if noisy else {}),
                    )
                )  # fmt: skip
                rows.append(
                    row(
                        "conv2d", impl, n, "backward", 2 * t, k=k, form=form, source="torch",
                        peak_bytes=8 * n * n, **given, **({"versus": "scipy"} if noisy else {}),
                    )
                )  # fmt: skip
    for n in NORM_SIZES:
        base = 2e-6 + 1e-9 * n * n
        est = NORM_SPEEDUPS[n]
        rows.append(row("norm", "numpy", n, "forward", base))
        rows.append(row("norm", "numpy", n, "backward", status="unsupported", error=NO_BACKWARD))
        rows.append(row("norm", "torch", n, "forward", base / est[0], speedup=est))
        rows.append(row("norm", "torch", n, "backward", 2 * base / est[0]))
    return paired(rows)


def seed_like_caps() -> list[dict[str, Any]]:
    out = []
    for layer, base in (("fft", "numpy"), ("conv2d", "scipy")):
        for check in ("script_save", "compile_fullgraph", "onnx_dynamo"):
            out.append(
                {
                    "layer": layer,
                    "impl": base,
                    "role": "baseline",
                    "check": check,
                    "status": "unsupported",
                    "reason": f"{check}: Python autograd.Function is opaque",
                }
            )
            out.append(
                {
                    "layer": layer,
                    "impl": "torch",
                    "role": "native",
                    "check": check,
                    "status": "ok",
                    "reason": None,
                    "graph_breaks": 0 if check == "compile_fullgraph" else None,
                }
            )
    return out


def seed_like_devs(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        if r.get("status") != "ok":
            continue
        tensors = (
            ["output"]
            if r["phase"] == "forward"
            else (["grad_x", "grad_filter", "grad_bias"] if r["layer"] == "conv2d" else ["grad_x"])
        )
        for tensor in tensors:
            out.append(
                {
                    "case": r["case"], "layer": r["layer"], "impl": r["impl"], "point": r["point"],
                    "size": r["size"], "dtype": r["dtype"], "phase": r["phase"], "tensor": tensor,
                    "max_abs_err": r["max_abs_err"], "max_rel_err": r["max_rel_err"], "within_tol": r["within_tol"],
                }
            )  # fmt: skip
    return out


@pytest.fixture
def rf() -> ModuleType:
    """This module's helpers (crafted rows, frames and results folders), for tests."""
    return sys.modules[__name__]
