"""The environment a run measured in: recorded in environment.json, and the settings
every worker inherits (threads, allocator).

Three parts:

- **machine identity** (``collect_environment``): CPU model, the SIMD level torch
  dispatches to (``cpu_capability``), the ISA flags that decide which BLAS/FFT kernels
  run (``cpu_flags``), cache sizes, the BLAS pools and the kernel OpenBLAS chose
  (``native_pools``), and the FFT implementations NumPy and SciPy dispatch to. Two
  machines with the same model string can pick different kernels (OpenBLAS SkylakeX
  vs Haswell made native conv2d 37 ms vs 12 ms), so ``fingerprint`` includes
  ``cpu_capability``.
- **noise over the run** (``NoiseMonitor``): steal, iowait and busy time of the whole
  machine from ``/proc/stat``, and the 1-minute load average, sampled by the runner.
- **the allocator** (``ALLOCATORS``, ``allocator_env``, ``worker_env``,
  ``allocator_in_use``): glibc with its defaults (what a user's process gets), glibc
  with fixed thresholds, jemalloc or tcmalloc through ``LD_PRELOAD``.

Parsing is pure (functions of text, or of a folder for the cache tree); files are read
at the edge, so that every parser is tested on given text.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

__all__ = [
    "ALLOCATORS",
    "DEFAULT_ALLOCATOR",
    "GLIBC_FIXED_ENV",
    "CpuTimes",
    "NoiseMonitor",
    "allocator_env",
    "allocator_in_use",
    "available_allocators",
    "classify_allocator",
    "collect_environment",
    "fingerprint",
    "inherited_allocator_settings",
    "parse_cpu_flags",
    "parse_cpu_model",
    "parse_ldconfig",
    "parse_loadavg",
    "parse_proc_stat",
    "read_caches",
    "worker_env",
]

# -- machine identity -------------------------------------------------------------------

#: ISA flags that decide which BLAS, FFT and oneDNN kernels run: x86 (``flags`` line of
#: /proc/cpuinfo) and Arm (``Features`` line; ``neon`` on 32-bit, ``asimd`` on 64-bit).
ISA_FLAGS: frozenset[str] = frozenset(
    {
        # x86
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512dq",
        "avx512cd",
        "avx512_vnni",
        "avx512_bf16",
        "avx512_fp16",
        "avx_vnni",
        "amx_tile",
        "amx_bf16",
        "amx_int8",
        # Arm
        "neon",
        "asimd",
        "asimdhp",
        "asimddp",
        "fphp",
        "bf16",
        "i8mm",
        "sve",
        "sve2",
        "svebf16",
        "svei8mm",
        "sme",
    }
)


def parse_cpu_model(cpuinfo_text: str) -> str | None:
    """The CPU model of /proc/cpuinfo text (``model name``; ``Hardware``/``CPU part`` on
    some Arm kernels have no model name), or None."""
    for key in ("model name", "Hardware", "cpu model", "Model"):
        for line in cpuinfo_text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return None


def parse_cpu_flags(cpuinfo_text: str, wanted: Iterable[str] = ISA_FLAGS) -> list[str]:
    """The ISA flags in ``wanted`` that the first processor of /proc/cpuinfo text has,
    sorted. Reads the ``flags`` line (x86) or the ``Features`` line (Arm)."""
    keep = set(wanted)
    for line in cpuinfo_text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() in ("flags", "Features"):
            return sorted(keep.intersection(value.split()))
    return []


def _cache_label(level: str, kind: str) -> str:
    suffix = {"data": "d", "instruction": "i"}.get(kind.strip().lower(), "")
    return f"L{level.strip()}{suffix}"


def read_caches(cache_dir: str | Path = "/sys/devices/system/cpu/cpu0/cache") -> dict[str, str]:
    """Cache sizes by level from a sysfs cache folder (``index*/{level,type,size}``):
    ``{"L1d": "32K", "L1i": "32K", "L2": "1024K", "L3": "32768K"}``; {} when absent."""
    out: dict[str, str] = {}
    try:
        entries = sorted(Path(cache_dir).glob("index*"))
    except OSError:
        return out
    for entry in entries:
        try:
            level = (entry / "level").read_text()
            kind = (entry / "type").read_text()
            size = (entry / "size").read_text().strip()
        except OSError:
            continue
        if level.strip() and size:
            out.setdefault(_cache_label(level, kind), size)
    return dict(sorted(out.items()))


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _cpu_model() -> str:
    text = _read_text("/proc/cpuinfo")
    return (parse_cpu_model(text) if text else None) or platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    text = _read_text("/proc/cpuinfo")
    return parse_cpu_flags(text) if text else []


def _cpu_capability() -> str | None:
    """The SIMD level ATen's CPU kernels dispatch to (``AVX2``, ``AVX512``, ``DEFAULT``,
    ``SVE256``...); ``ATEN_CPU_CAPABILITY`` can lower it, and the value reflects that."""
    try:
        import torch

        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:
        return None


def _extension_modules(namespace: Mapping[str, Any]) -> list[str]:
    """Names of the compiled modules a Python module's namespace refers to."""
    names = []
    for value in namespace.values():
        file = getattr(value, "__file__", None)
        name = getattr(value, "__name__", None)
        if isinstance(file, str) and isinstance(name, str) and file.endswith((".so", ".pyd")):
            names.append(name)
    return sorted(set(names))


def _describe_fft(impl_module: str, extensions: Sequence[str]) -> str:
    joined = " ".join([impl_module, *extensions]).lower()
    family = (
        "MKL"
        if "mkl" in joined
        else "pocketfft"
        if "pocketfft" in joined
        else "FFTW"
        if "fftw" in joined
        else None
    )
    where = ", ".join(extensions) if extensions else impl_module
    return f"{family} ({where})" if family else where


def _numpy_fft() -> str | None:
    """Which implementation ``numpy.fft.rfft2`` runs, probed: the module that defines the
    function (``numpy.fft._pocketfft``, or ``mkl_fft`` when patched) and the compiled
    module it calls (numpy 2: ``_pocketfft_umath``, C++ pocketfft; numpy 1:
    ``_pocketfft_internal``, C pocketfft)."""
    try:
        import numpy
        import numpy.fft

        fn = getattr(numpy.fft.rfft2, "__wrapped__", numpy.fft.rfft2)
        namespace = getattr(fn, "__globals__", None)
        if namespace is None:  # a compiled function: its module is the implementation
            impl = str(getattr(fn, "__module__", "") or "")
            if not impl:
                return None
            return f"{_describe_fft(impl, [impl])}, numpy {numpy.__version__}"
        impl = str(namespace.get("__name__", ""))
        exts = [e for e in _extension_modules(namespace) if "fft" in e.lower()]
        return f"{_describe_fft(impl, exts)}, numpy {numpy.__version__}"
    except Exception:
        return None


def _scipy_fft() -> str | None:
    """``scipy.fft``'s global backend (uarray), probed in this process: SciPy's own
    (pocketfft) unless a program set another (mkl_fft, pyFFTW). Layer code that sets a
    backend inside a worker is not seen here."""
    try:
        import scipy
        import scipy.fft
        import scipy.fft._pocketfft as pocketfft
        from scipy._lib import uarray

        state = uarray.get_state()._pickle()  # type: ignore[attr-defined]  # (globals, locals, thread-local)
        backend = state[0].get("numpy.scipy.fft", ((None,),))[0][0]
        if backend is None:
            return None
        cls = backend if isinstance(backend, type) else type(backend)
        name = f"{cls.__module__}.{cls.__qualname__}"
        if name == "scipy.fft._backend._ScipyBackend":
            exts = [e for e in _extension_modules(vars(pocketfft)) if "pocketfft" in e]
            return f"{_describe_fft('scipy.fft', exts)}, scipy {scipy.__version__}"
        return f"backend {name}, scipy {scipy.__version__}"
    except Exception:
        return None


# -- noise over the run -------------------------------------------------------------------


@dataclass(frozen=True)
class CpuTimes:
    """The aggregate ``cpu`` line of /proc/stat, in clock ticks. ``guest`` and
    ``guest_nice`` are already counted in ``user`` and ``nice``, so ``total`` leaves
    them out."""

    user: int
    nice: int
    system: int
    idle: int
    iowait: int = 0
    irq: int = 0
    softirq: int = 0
    steal: int = 0

    @property
    def total(self) -> int:
        return (
            self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
        )

    @property
    def busy(self) -> int:
        """Time the guest's CPUs ran something: not idle, not waiting, not stolen."""
        return self.user + self.nice + self.system + self.irq + self.softirq


def parse_proc_stat(text: str) -> CpuTimes | None:
    """The aggregate ``cpu`` line of /proc/stat text (older kernels have fewer
    columns: missing ones are 0), or None when there is none."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            try:
                values = [int(v) for v in fields[1:9]]
            except ValueError:
                return None
            if len(values) < 4:
                return None
            return CpuTimes(*values)
    return None


def parse_loadavg(text: str) -> float | None:
    """The 1-minute load average of /proc/loadavg text."""
    try:
        return float(text.split()[0])
    except (IndexError, ValueError):
        return None


def _pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 2) if whole > 0 else 0.0


def own_cpu_s() -> float:
    """CPU seconds of this process and of its children that ended (its workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class NoiseMonitor:
    """What else the machine did during a run: the runner makes one at the start (it
    takes the first sample), calls ``sample()`` every few seconds (one read of
    /proc/stat and one of /proc/loadavg) and ``summary()`` at the end, for
    environment.json["noise"].

    ``others_pct`` is the busy time not the run's own, of all CPU time: the machine's
    busy time less the CPU time of the runner and of its workers (``own_cpu_s``: a
    worker's counts once it has ended, so the last sample, after the last worker, has
    them all), and ``others_cpus`` that time over the run's duration: how many CPUs
    other processes kept busy on average (2026-12-01: a quick run beside a test suite,
    "machine busy 100%", decided speedups in the wrong direction, its report silent).

    Steal, iowait and busy percentages are of all CPU time of the whole machine between
    the first and the last sample (guest ``cpu`` line, every core); busy is user, nice,
    system, irq and softirq. ``steal_pct_max`` is the highest steal of one interval
    between samples: a burst of steal hides in the run's average. The load average is
    the kernel's 1-minute one at each sample.

    ``clock``, ``read_stat`` and ``read_loadavg`` are injectable (tests pass a fake
    clock and fake /proc text); a reader returns the file's text or raises OSError.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        read_stat: Callable[[], str] = lambda: Path("/proc/stat").read_text(),
        read_loadavg: Callable[[], str] = lambda: Path("/proc/loadavg").read_text(),
        read_own: Callable[[], float] = own_cpu_s,
        ticks_per_s: float | None = None,
    ) -> None:
        self._clock = clock
        self._read_stat = read_stat
        self._read_loadavg = read_loadavg
        self._read_own = read_own
        self._ticks = ticks_per_s or float(os.sysconf("SC_CLK_TCK"))
        # the run's own CPU seconds at the first sample and at the latest
        self._own_first: float | None = None
        self._own_last = 0.0
        self._start: float | None = None
        self._end = 0.0
        self._first: CpuTimes | None = None
        self._last: CpuTimes | None = None
        self._loads: list[float] = []
        self._samples = 0
        self._steal_max = 0.0
        self._why: str | None = None
        self.sample()

    def sample(self) -> None:
        """Read /proc/stat and /proc/loadavg once. Never raises."""
        self._end = self._clock()
        if self._start is None:
            self._start = self._end
        try:
            times = parse_proc_stat(self._read_stat())
        except OSError as exc:
            self._why = f"/proc/stat is not readable ({exc.strerror or exc})"
            times = None
        else:
            if times is None:
                self._why = "/proc/stat has no aggregate 'cpu' line"
        with contextlib.suppress(OSError):
            load = parse_loadavg(self._read_loadavg())
            if load is not None:
                self._loads.append(load)
        if times is None:
            return
        self._samples += 1
        self._own_last = self._read_own()
        if self._own_first is None:
            self._own_first = self._own_last
        if self._first is None:
            self._first = times
        elif self._last is not None:
            total = times.total - self._last.total
            if total > 0:
                steal = max(0, times.steal - self._last.steal)
                self._steal_max = max(self._steal_max, _pct(steal, total))
        self._last = times

    def summary(self, final_sample: bool = True) -> dict[str, Any]:
        """The run's noise, after one last sample (unless ``final_sample`` is false)::

            {"available": True, "samples": 12, "duration_s": 61.2,
             "steal_pct": 0.4, "steal_pct_max": 2.1, "iowait_pct": 0.0,
             "busy_pct": 48.7, "load1": {"min": 0.9, "median": 1.1, "max": 2.0}}

        or ``{"available": False, "why": ...}`` without /proc/stat."""
        if final_sample:
            self.sample()
        start = self._end if self._start is None else self._start
        duration = round(max(0.0, self._end - start), 3)
        first, last = self._first, self._last
        if first is None or last is None:
            return {"available": False, "why": self._why or "no sample of /proc/stat"}
        total = last.total - first.total
        if self._samples < 2 or total <= 0:
            return {
                "available": False,
                "why": "fewer than two samples of /proc/stat, or no CPU time between them",
                "samples": self._samples,
                "duration_s": duration,
            }
        out: dict[str, Any] = {
            "available": True,
            "samples": self._samples,
            "duration_s": duration,
            "steal_pct": _pct(max(0, last.steal - first.steal), total),
            "steal_pct_max": self._steal_max,
            "iowait_pct": _pct(max(0, last.iowait - first.iowait), total),
            "busy_pct": _pct(max(0, last.busy - first.busy), total),
        }
        if self._own_first is not None:
            own_s = self._own_last - self._own_first
            others_s = max(0.0, (last.busy - first.busy) / self._ticks - own_s)
            out["others_pct"] = _pct(others_s, total / self._ticks)
            out["others_cpus"] = round(others_s / duration, 2) if duration > 0 else 0.0
        if self._loads:
            out["load1"] = {
                "min": min(self._loads),
                "median": round(statistics.median(self._loads), 2),
                "max": max(self._loads),
            }
        return out


# -- the allocator ------------------------------------------------------------------------

#: The allocators a worker can run with, in order; the first is the default. Declared
#: here only: the ``allocators`` setting (``harness.config``) takes its names from it.
ALLOCATORS: tuple[str, ...] = ("glibc", "glibc-fixed", "jemalloc", "tcmalloc")

#: glibc with its defaults: what a user's training process gets unless it tunes malloc.
DEFAULT_ALLOCATOR = ALLOCATORS[0]

#: "glibc-fixed": glibc malloc with fixed thresholds. Left adaptive, glibc's mmap
#: threshold moves with what ran before (numpy's rfft2 at n=512 was measured at 4.4 ms
#: or 1.06 ms depending on history); fixing it, and the trim threshold, makes a case's
#: timing independent of the cases before it. 32 MiB is glibc's largest mmap threshold.
GLIBC_FIXED_ENV: dict[str, str] = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024),
    "MALLOC_TRIM_THRESHOLD_": str(256 * 1024 * 1024),
}


@dataclass(frozen=True)
class _Preload:
    env_var: str  # a user's override: the path of the .so
    sonames: tuple[str, ...]  # looked for, in this order
    package: str  # Debian/Ubuntu package that ships the first


_PRELOADS: dict[str, _Preload] = {
    "jemalloc": _Preload(
        "HARNESS_JEMALLOC", ("libjemalloc.so.2", "libjemalloc.so"), "libjemalloc2"
    ),
    "tcmalloc": _Preload(
        "HARNESS_TCMALLOC",
        (
            "libtcmalloc.so.4",
            "libtcmalloc_minimal.so.4",
            "libtcmalloc.so",
            "libtcmalloc_minimal.so",
        ),
        "libgoogle-perftools4 (or libtcmalloc-minimal4)",
    ),
}

#: Substrings of a shared library's file name that make it a malloc replacement: an
#: inherited LD_PRELOAD entry with one of them would decide which allocator runs.
_ALLOCATOR_LIBS = ("jemalloc", "tcmalloc", "mimalloc", "hoard", "snmalloc", "rpmalloc")

#: Environment variables that tune an allocator: glibc's MALLOC_*_ (and MALLOC_ARENA_MAX,
#: MALLOC_CHECK_...), jemalloc's MALLOC_CONF, gperftools' TCMALLOC_*.
_ALLOCATOR_VAR_PREFIXES = ("MALLOC_", "TCMALLOC_")


def _search_dirs() -> list[str]:
    arch = {"x86_64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(
        platform.machine(), platform.machine()
    )
    dirs = [
        f"/usr/lib/{arch}-linux-gnu",
        f"/lib/{arch}-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/lib",
        "/opt/homebrew/lib",
        os.path.join(sys.prefix, "lib"),  # conda's jemalloc / gperftools
    ]
    return list(dict.fromkeys(dirs))


def parse_ldconfig(text: str) -> dict[str, str]:
    """``ldconfig -p`` output -> {soname: path}, the first path of each soname (the
    native architecture comes first in ldconfig's cache)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        left, sep, path = line.partition("=>")
        if not sep:
            continue
        soname = left.strip().split(" ", 1)[0]
        if soname and path.strip():
            out.setdefault(soname, path.strip())
    return out


@functools.lru_cache(maxsize=1)
def _ldconfig_text() -> str:
    for exe in ("ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        try:
            out = subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0:
            return out.stdout
    return ""


def _locate(
    name: str,
    environ: Mapping[str, str],
    ldconfig_text: str | None = None,
    search_dirs: Sequence[str] | None = None,
) -> tuple[str | None, str | None]:
    """(path of the library, None) or (None, why not)."""
    spec = _PRELOADS[name]
    override = environ.get(spec.env_var)
    if override:
        if Path(override).is_file():
            return str(Path(override).resolve()), None
        return None, f"{spec.env_var}={override} is not a file"
    cache = parse_ldconfig(_ldconfig_text() if ldconfig_text is None else ldconfig_text)
    for soname in spec.sonames:
        path = cache.get(soname)
        if path and Path(path).is_file():
            return path, None
    for folder in _search_dirs() if search_dirs is None else search_dirs:
        for soname in spec.sonames:
            path = os.path.join(folder, soname)
            if Path(path).is_file():
                return path, None
    return None, (
        f"no {spec.sonames[0]} found; apt-get install {spec.package}, "
        f"or set {spec.env_var}=/path/to/{spec.sonames[0].rsplit('.so', 1)[0]}.so"
    )


def available_allocators(environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Each known allocator -> None when a worker can use it here, else why not."""
    env = os.environ if environ is None else environ
    glibc = sys.platform.startswith("linux")
    out: dict[str, str | None] = {
        "glibc": None,  # the platform's allocator with nothing set
        "glibc-fixed": None if glibc else "glibc malloc settings need Linux",
    }
    for name in _PRELOADS:
        out[name] = _locate(name, env)[1]
    return out


def allocator_library(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The shared library preloaded for ``name`` (jemalloc, tcmalloc), or None."""
    if name not in _PRELOADS:
        return None
    return _locate(name, os.environ if environ is None else environ)[0]


def _check_name(name: str) -> None:
    if name not in ALLOCATORS:
        raise ConfigError(f"unknown allocator {name!r} (known: {', '.join(ALLOCATORS)})")


def allocator_env(name: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment variables of a worker that runs with allocator ``name``:

    - ``glibc``: none (glibc's defaults);
    - ``glibc-fixed``: ``GLIBC_FIXED_ENV``;
    - ``jemalloc``, ``tcmalloc``: ``LD_PRELOAD`` with the library first, followed by
      the entries of ``environ``'s LD_PRELOAD (kept, not overwritten; the allocator goes
      first because the first preloaded ``malloc`` is the one every library binds to).

    ``environ`` (default ``os.environ``) gives the LD_PRELOAD to extend and the
    HARNESS_JEMALLOC / HARNESS_TCMALLOC overrides. Raises ``ConfigError`` for an
    unknown name or an allocator not installed here."""
    _check_name(name)
    env = os.environ if environ is None else environ
    if name == "glibc":
        return {}
    if name == "glibc-fixed":
        return dict(GLIBC_FIXED_ENV)
    path, why = _locate(name, env)
    if path is None:
        raise ConfigError(f"allocator {name!r} is not installed here ({why})")
    rest = [p for p in _split_preload(env.get("LD_PRELOAD", "")) if p != path]
    return {"LD_PRELOAD": ":".join([path, *rest])}


def _split_preload(value: str) -> list[str]:
    # ld.so separates LD_PRELOAD entries with colons or spaces
    return [p for p in value.replace(" ", ":").split(":") if p]


def _is_allocator_lib(path: str) -> bool:
    base = os.path.basename(path).lower()
    return any(lib in base for lib in _ALLOCATOR_LIBS)


def _strip_glibc_malloc_tunables(value: str) -> str:
    return ":".join(t for t in value.split(":") if t and not t.startswith("glibc.malloc."))


def inherited_allocator_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parts of ``environ`` (default ``os.environ``) that ``worker_env`` removes
    because they would change which allocator runs, or how: ``MALLOC_*`` and
    ``TCMALLOC_*`` variables, ``glibc.malloc.*`` entries of ``GLIBC_TUNABLES``, and
    malloc-replacement libraries in ``LD_PRELOAD``."""
    env = os.environ if environ is None else environ
    out = {k: v for k, v in env.items() if k.startswith(_ALLOCATOR_VAR_PREFIXES)}
    tunables = env.get("GLIBC_TUNABLES", "")
    if tunables and _strip_glibc_malloc_tunables(tunables) != tunables:
        out["GLIBC_TUNABLES"] = tunables
    preload = _split_preload(env.get("LD_PRELOAD", ""))
    if any(_is_allocator_lib(p) for p in preload):
        out["LD_PRELOAD"] = env["LD_PRELOAD"]
    return dict(sorted(out.items()))


def _without_allocator_settings(env: dict[str, str]) -> dict[str, str]:
    for key in [k for k in env if k.startswith(_ALLOCATOR_VAR_PREFIXES)]:
        del env[key]
    if "GLIBC_TUNABLES" in env:
        tunables = _strip_glibc_malloc_tunables(env["GLIBC_TUNABLES"])
        if tunables:
            env["GLIBC_TUNABLES"] = tunables
        else:
            del env["GLIBC_TUNABLES"]
    if "LD_PRELOAD" in env:
        kept = [p for p in _split_preload(env["LD_PRELOAD"]) if not _is_allocator_lib(p)]
        if kept:
            env["LD_PRELOAD"] = ":".join(kept)
        else:
            del env["LD_PRELOAD"]
    return env


_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def worker_env(
    max_threads: int,
    allocator: str = DEFAULT_ALLOCATOR,
    extra: Mapping[str, str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment for worker processes: ``environ`` (default ours), with thread pools
    sized for the largest thread count of the run (each point then lowers it), and the
    allocator's variables (``allocator_env``).

    So that the allocator measured is the one asked for, the allocator settings
    inherited from ``environ`` are removed first (``inherited_allocator_settings``):
    every ``MALLOC_*`` / ``TCMALLOC_*`` variable (a parent's ``MALLOC_ARENA_MAX`` would
    make "glibc" no longer glibc's defaults; its ``MALLOC_CONF`` would tune
    jemalloc), ``glibc.malloc.*`` tunables, and jemalloc/tcmalloc/mimalloc entries of
    ``LD_PRELOAD`` (other LD_PRELOAD entries stay). ``extra`` is applied last: settings
    a run wants on purpose (``{"MALLOC_CONF": ...}``) go there."""
    env = _without_allocator_settings(dict(os.environ if environ is None else environ))
    for var in _THREAD_VARS:
        env[var] = str(max_threads)
    env.update(allocator_env(allocator, env))
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def classify_allocator(malloc_library: str | None, environ: Mapping[str, str]) -> str:
    """The allocator name of a process whose ``malloc`` comes from ``malloc_library`` (a
    path, or /proc/self/maps text as a fallback: any mapped jemalloc/tcmalloc counts)
    with environment ``environ``: ``jemalloc``, ``tcmalloc``, ``glibc`` (defaults),
    ``glibc-fixed`` (exactly ``GLIBC_FIXED_ENV``), or ``glibc (VAR=value, ...)`` for
    other glibc malloc settings. Pure."""
    text = (malloc_library or "").lower()
    for name in ("jemalloc", "tcmalloc", "mimalloc"):
        if f"lib{name}" in text:
            return name
    tuned = {k: v for k, v in environ.items() if k.startswith("MALLOC_") and k != "MALLOC_CONF"}
    tunables = [
        t for t in environ.get("GLIBC_TUNABLES", "").split(":") if t.startswith("glibc.malloc.")
    ]
    if not tuned and not tunables:
        return "glibc"
    if tuned == GLIBC_FIXED_ENV and not tunables:
        return "glibc-fixed"
    described = [f"{k}={v}" for k, v in sorted(tuned.items())] + tunables
    return f"glibc ({', '.join(described)})"


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def _malloc_provider() -> str | None:
    """The file of the ``malloc`` that global symbol lookup finds in this process (an
    LD_PRELOAD'ed jemalloc, or libc), by ``dladdr``; None where that does not work."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libdl = libc if hasattr(libc, "dladdr") else ctypes.CDLL("libdl.so.2")
        process = ctypes.CDLL(None)
        address = ctypes.cast(process.malloc, ctypes.c_void_p).value
        info = _DlInfo()
        if not address or not libdl.dladdr(ctypes.c_void_p(address), ctypes.byref(info)):
            return None
        return info.dli_fname.decode() if info.dli_fname else None
    except (OSError, AttributeError, ValueError):
        return None


def allocator_in_use(maps_text: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The allocator this process really runs with, for a worker to record (see
    ``classify_allocator``). A preloaded library ld.so could not load (wrong path or
    architecture: ld.so only warns) shows here as ``glibc``. The library is the one
    ``dladdr`` names for ``malloc``; failing that, a jemalloc/tcmalloc in
    ``maps_text`` (default: /proc/self/maps)."""
    env = os.environ if environ is None else environ
    provider = None if maps_text is not None else _malloc_provider()
    if provider is None:
        provider = maps_text if maps_text is not None else _read_text("/proc/self/maps")
    return classify_allocator(provider, env)


# -- the record ---------------------------------------------------------------------------

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
    """threadpoolctl's pools; ``architecture`` is the kernel OpenBLAS chose at load time
    (SkylakeX, Haswell, Zen, ...)."""
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


def collect_environment(
    threads: Sequence[int] = (1,), allocators: Sequence[str] = (DEFAULT_ALLOCATOR,)
) -> dict[str, Any]:
    """Everything that decides what a timing means, for environment.json. ``noise`` is
    not here: the runner adds its ``NoiseMonitor.summary()`` at the end of the run."""
    import torch

    available = available_allocators()
    env: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_capability": _cpu_capability(),
        "cpu_flags": _cpu_flags(),
        "caches": read_caches(),
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
        "native_pools": _native_pools(),
        "threads": {
            "swept": list(threads),
            "worker_env": {v: str(max(threads)) for v in _THREAD_VARS},
        },
        "allocator": {
            "swept": list(allocators),
            "available": available,
            "libraries": {
                name: path
                for name in _PRELOADS
                if available.get(name) is None and (path := allocator_library(name))
            },
            "removed_from_workers": inherited_allocator_settings(),
        },
        "openblas_env": {
            k: os.environ.get(k)
            for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
            if os.environ.get(k)
        },
        "gpus": _gpus(),
        "git_revision": _git_revision(),
    }
    # probed; left out rather than guessed when the probe fails
    for key, probe in (("numpy_fft", _numpy_fft), ("scipy_fft", _scipy_fft)):
        value = probe()
        if value:
            env[key] = value
    return env


def fingerprint(env: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the environment a resumed run (or merged runs) must share with the
    original: the CPU model, the SIMD level torch dispatches to (same model string,
    different kernels on another host), cores and versions."""
    return {
        "cpu": env.get("cpu"),
        "cpu_capability": env.get("cpu_capability"),
        "cores": env.get("cores"),
        "versions": env.get("versions"),
    }
