"""The environment a run measured in: recorded in environment.json, and the settings
every worker inherits (threads, allocator)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["ALLOCATOR_ENV", "collect_environment", "fingerprint", "worker_env"]

#: glibc malloc settings fixed in every worker. Left adaptive, glibc's mmap threshold
#: moves with what ran before (numpy's rfft2 at n=512 was measured at 4.4 ms or 1.06 ms
#: depending on history); fixing it, and the trim threshold, makes a case's timing
#: independent of the cases before it. 32 MiB is glibc's largest mmap threshold.
ALLOCATOR_ENV: dict[str, str] = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024),
    "MALLOC_TRIM_THRESHOLD_": str(256 * 1024 * 1024),
}

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
_PACKAGES = (
    "torch",
    "numpy",
    "scipy",
    "pandas",
    "pyperf",
    "onnx",
    "onnxscript",
    "onnxruntime",
    "matplotlib",
    "threadpoolctl",
)


def worker_env(max_threads: int, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for worker processes: ours, plus thread pools sized for the largest
    thread count of the run (each point then lowers it) and the fixed allocator."""
    env = dict(os.environ)
    for var in _THREAD_VARS:
        env[var] = str(max_threads)
    env.update(ALLOCATOR_ENV)
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_revision() -> str | None:
    """HEAD of the harness's checkout, with ``+dirty`` when the code that runs (not, say,
    a committed example report being regenerated) differs from it."""
    where = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], capture_output=True, text=True, timeout=5, cwd=where
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if not head:
        return None
    code = (":/harness", ":/layers", ":/pyproject.toml", ":/constraints.txt")
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", *code)
    return f"{head}+dirty" if dirty else head


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _native_pools() -> list[dict[str, Any]]:
    keys = ("user_api", "internal_api", "version", "num_threads", "prefix", "architecture")
    try:
        import numpy  # noqa: F401  (load its BLAS so threadpoolctl sees it)
        import scipy.linalg  # noqa: F401
        from threadpoolctl import threadpool_info

        pools = [{k: info.get(k) for k in keys} for info in threadpool_info()]
    except Exception as exc:  # diagnostics must never break a run
        return [{"error": f"{type(exc).__name__}: {exc}"}]
    # threadpool_info lists pools in library load order, which varies between
    # processes: sorted, two runs on one machine compare equal.
    return sorted(pools, key=lambda pool: tuple(str(pool[k]) for k in keys))


def _gpus() -> list[str]:
    try:
        import torch

        if torch.cuda.is_available():
            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:
        pass
    return []


def collect_environment(threads: Sequence[int] = (1,)) -> dict[str, Any]:
    """Everything that decides what a timing means, for environment.json."""
    import torch

    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": sys.version.split()[0],
        "versions": _versions(),
        "torch_config": {
            "parallel": torch.__config__.parallel_info().splitlines()[:6],
            "fft_backend": "pocketfft (CPU)"
            if not torch.backends.mkl.is_available()
            else "MKL (CPU)",
            "mkldnn": torch.backends.mkldnn.is_available(),
        },
        "numpy_fft": "pocketfft (numpy.fft)",
        "native_pools": _native_pools(),
        "threads": {
            "swept": list(threads),
            "worker_env": {v: str(max(threads)) for v in _THREAD_VARS},
        },
        "allocator": dict(ALLOCATOR_ENV),
        "openblas_env": {
            k: os.environ.get(k)
            for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
            if os.environ.get(k)
        },
        "gpus": _gpus(),
        "git_revision": _git_revision(),
    }


def fingerprint(env: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the environment a resumed run must share with the original."""
    return {"cpu": env.get("cpu"), "cores": env.get("cores"), "versions": env.get("versions")}
