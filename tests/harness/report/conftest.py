"""Crafted results frames and folders for the report tests (no timing involved).

Tests reach these helpers through the ``rf`` fixture (the tests import in
``importlib`` mode, where a helper module cannot be imported by name).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pyperf
import pytest

from harness.frame import CAPABILITY_COLUMNS, DEVIATION_COLUMNS, build_frame, build_table
from harness.results import Results

BASELINES = ("numpy", "scipy")
AXES = ("n", "k")


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
    max_rel_err: float | None = 1e-7,
    within_tol: bool | None = True,
    rtol: float = 1e-5,
    worst_tensor: str | None = None,
    gradcheck: bool | None = None,
    gradcheck_error: str | None = None,
    oneoff_s: float | None = None,
    oneoff_what: str | None = None,
) -> dict[str, Any]:
    """One frame row; timing columns follow from ``median`` and ``spread``."""
    point = f"n={n}" + (f",k={k}" if k is not None else "")
    role = role or ("baseline" if impl in BASELINES else "native")
    out: dict[str, Any] = {
        "case": f"{layer}/{impl}/{point}/{dtype}/t{threads}/{device}/{phase}",
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
        "phase": phase,
        "status": status,
        "error": error,
        "n": n,
        "k": k,
    }
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
    **kw: Any,
) -> list[dict[str, Any]]:
    """Rows for every impl, size and phase; ``impls`` maps name -> median(n)."""
    return [
        row(layer, impl, n, phase, fn(n), **kw)
        for impl, fn in impls.items()
        for n in sizes
        for phase in phases
    ]


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
    """A results folder on disk, written as the harness writes one."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.csv").write_text(frame(rows).to_csv(index=False))
    if devs:
        (path / "deviations.csv").write_text(deviations(devs).to_csv(index=False))
    if caps:
        (path / "capabilities.csv").write_text(capabilities(caps).to_csv(index=False))
    (path / "run.json").write_text(json.dumps(dict(run or {"profile": {"name": "test"}})))
    (path / "environment.json").write_text(json.dumps(dict(environment or {"cpu": "test cpu"})))
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
        pyperf.BenchmarkSuite(benches).dump(str(path / "pyperf.json"))
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
}

FFT_SIZES = (8, 9, 64, 256, 1024)
CONV_SIZES = (8, 64, 256, 1024)
BAD_FFT_GRAD = "ValueError: operands could not be broadcast together with shapes (9,9) (9,5)"
GRADCHECK_MSG = "Jacobian mismatch for output 0 with respect to input 0"
ORT_BACKWARD = "ONNX Runtime sessions run forward only"


def seed_like_rows() -> list[dict[str, Any]]:
    """fft (wrong NumPy gradient, odd width fails backward) and conv2d (k=3 crosses over
    near n=100, k=15 native everywhere; one compile failure; one noisy point)."""
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
            rows.append(row("conv2d", "scipy", n, "forward", 4e-6 + 0.4e-9 * c * n * n, k=k))
            rows.append(
                row(
                    "conv2d", "scipy", n, "backward", 8e-6 + 0.8e-9 * c * n * n, k=k, gradcheck=True
                )
            )
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
                spread = 0.6 if (impl == "torch" and n == 8 and k == 3) else 0.02
                rows.append(
                    row(
                        "conv2d",
                        impl,
                        n,
                        "forward",
                        t,
                        k=k,
                        form=form,
                        source="torch",
                        spread=spread,
                    )
                )
                rows.append(
                    row("conv2d", impl, n, "backward", 2 * t, k=k, form=form, source="torch")
                )
    return rows


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
            else (["grad_x"] if r["layer"] == "fft" else ["grad_x", "grad_filter", "grad_bias"])
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
