"""harness.environment: machine identity, noise over a run, and the allocator setting.
Parsers run on fake /proc and /sys text; one test starts real subprocesses."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from harness import environment as envmod
from harness.environment import (
    ALLOCATORS,
    DEFAULT_ALLOCATOR,
    GLIBC_FIXED_ENV,
    NoiseMonitor,
    allocator_env,
    allocator_in_use,
    available_allocators,
    classify_allocator,
    collect_environment,
    fingerprint,
    inherited_allocator_settings,
    parse_cpu_flags,
    parse_cpu_model,
    parse_ldconfig,
    parse_loadavg,
    parse_proc_stat,
    read_caches,
    worker_env,
)
from harness.errors import ConfigError

# -- machine identity ---------------------------------------------------------------------

X86_CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
flags\t\t: fpu vme sse sse2 avx f16c fma avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni amx_tile amx_bf16 amx_int8 hypervisor

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
flags\t\t: fpu sse sse2
"""

ARM_CPUINFO = """\
processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimddp sve i8mm bf16
CPU implementer\t: 0x41
"""


def test_parse_cpu_flags_x86_keeps_isa_flags_of_the_first_processor_sorted() -> None:
    assert parse_cpu_flags(X86_CPUINFO) == [
        "amx_bf16",
        "amx_int8",
        "amx_tile",
        "avx",
        "avx2",
        "avx512_vnni",
        "avx512bw",
        "avx512dq",
        "avx512f",
        "avx512vl",
        "f16c",
        "fma",
    ]


def test_parse_cpu_flags_haswell_has_no_avx512() -> None:
    text = "model name\t: Intel Xeon E5-2686 v4\nflags\t: sse4_2 avx avx2 fma f16c bmi2\n"
    assert parse_cpu_flags(text) == ["avx", "avx2", "f16c", "fma"]


def test_parse_cpu_flags_arm_and_missing() -> None:
    assert parse_cpu_flags(ARM_CPUINFO) == [
        "asimd",
        "asimddp",
        "asimdhp",
        "bf16",
        "fphp",
        "i8mm",
        "sve",
    ]
    assert parse_cpu_flags("") == []
    assert parse_cpu_flags("processor : 0\n") == []


def test_parse_cpu_model() -> None:
    assert parse_cpu_model(X86_CPUINFO) == "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"
    assert parse_cpu_model(ARM_CPUINFO) is None


def _cache(root: Path, index: int, level: int, kind: str, size: str) -> None:
    entry = root / f"index{index}"
    entry.mkdir(parents=True)
    (entry / "level").write_text(f"{level}\n")
    (entry / "type").write_text(f"{kind}\n")
    (entry / "size").write_text(f"{size}\n")


def test_read_caches_labels_levels_and_types(tmp_path: Path) -> None:
    _cache(tmp_path, 0, 1, "Data", "48K")
    _cache(tmp_path, 1, 1, "Instruction", "32K")
    _cache(tmp_path, 2, 2, "Unified", "1280K")
    _cache(tmp_path, 3, 3, "Unified", "55296K")
    (tmp_path / "index4").mkdir()  # incomplete entry: skipped
    (tmp_path / "uevent").write_text("")
    assert read_caches(tmp_path) == {"L1d": "48K", "L1i": "32K", "L2": "1280K", "L3": "55296K"}


def test_read_caches_missing_folder(tmp_path: Path) -> None:
    assert read_caches(tmp_path / "nope") == {}


def test_fingerprint_includes_cpu_capability() -> None:
    env = {"cpu": "AMD EPYC", "cores": 2, "versions": {"torch": "2.13.0"}, "date": "x"}
    a = fingerprint({**env, "cpu_capability": "AVX512"})
    b = fingerprint({**env, "cpu_capability": "AVX2"})
    assert a["cpu_capability"] == "AVX512"
    assert a != b  # same model string, other kernels: not resumable
    assert set(a) == {"cpu", "cpu_capability", "cores", "versions"}


def test_collect_environment_has_the_new_keys_here() -> None:
    import numpy
    import torch

    env = collect_environment(threads=(1, 2), allocators=("glibc", "glibc-fixed"))
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["cpu_capability"] == fingerprint(env)["cpu_capability"]
    assert isinstance(env["cpu_flags"], list) and env["cpu_flags"] == sorted(env["cpu_flags"])
    if Path("/proc/cpuinfo").exists() and platform.machine() == "x86_64":
        assert "avx" in env["cpu_flags"] or env["cpu_capability"] == "DEFAULT"
    assert isinstance(env["caches"], dict)
    if Path("/sys/devices/system/cpu/cpu0/cache/index0").exists():
        assert any(level.startswith("L1") for level in env["caches"])
    # probed, not a constant: it names what it probed
    assert numpy.__version__ in env["numpy_fft"]
    alloc = env["allocator"]
    assert alloc["swept"] == ["glibc", "glibc-fixed"]
    assert list(alloc["available"]) == list(ALLOCATORS)
    assert alloc["available"]["glibc"] is None
    assert "noise" not in env  # the runner adds NoiseMonitor.summary()


# -- noise over the run -------------------------------------------------------------------


def _stat(user: int, system: int, idle: int, iowait: int, steal: int) -> str:
    return (
        f"cpu  {user} 0 {system} {idle} {iowait} 0 0 {steal} 0 0\n"
        f"cpu0 {user} 0 {system} {idle} {iowait} 0 0 {steal} 0 0\n"
        "intr 123 4 5\nctxt 99\n"
    )


class _Fake:
    def __init__(self, stats: list[str], loads: list[str]) -> None:
        self.stats, self.loads, self.now = list(stats), list(loads), 100.0

    def clock(self) -> float:
        self.now += 5.0
        return self.now

    def stat(self) -> str:
        return self.stats.pop(0)

    def loadavg(self) -> str:
        return self.loads.pop(0)


def test_parse_proc_stat() -> None:
    times = parse_proc_stat(_stat(100, 50, 800, 10, 40))
    assert times is not None
    assert (times.user, times.system, times.idle, times.iowait, times.steal) == (
        100,
        50,
        800,
        10,
        40,
    )
    assert times.total == 1000 and times.busy == 150
    # older kernels: four columns
    old = parse_proc_stat("cpu 1 2 3 4\n")
    assert old is not None and old.total == 10 and old.steal == 0
    assert parse_proc_stat("cpu0 1 2 3 4\n") is None
    assert parse_proc_stat("") is None


def test_parse_loadavg() -> None:
    assert parse_loadavg("0.52 0.58 0.59 2/89 4389\n") == 0.52
    assert parse_loadavg("") is None


def test_noise_monitor_computes_steal_iowait_busy_and_load() -> None:
    fake = _Fake(
        stats=[
            _stat(1000, 500, 8000, 0, 0),  # at construction
            _stat(1100, 550, 8300, 10, 40),  # +500 ticks: steal 40 (8%)
            _stat(1200, 600, 8800, 10, 40),  # +650 ticks: no steal
            _stat(1300, 650, 9290, 10, 50),  # +650 ticks: steal 10; summary()'s sample
        ],
        loads=["0.50 0 0 1/1 1", "2.00 0 0 1/1 1", "1.00 0 0 1/1 1", "3.00 0 0 1/1 1"],
    )
    own = iter([0.0, 0.5, 1.0, 1.5])  # the run's own CPU seconds at each sample
    mon = NoiseMonitor(
        clock=fake.clock,
        read_stat=fake.stat,
        read_loadavg=fake.loadavg,
        read_own=lambda: next(own),
        ticks_per_s=100,
    )
    mon.sample()
    mon.sample()
    summary = mon.summary()
    # totals: 9500 -> 11300 ticks = 1800; steal 50, iowait 10, busy 2100 -> 1950 = 450;
    # busy 4.5 s of 18 s, 1.5 s of it the run's own: others 3 s (16.67%, 0.2 CPUs
    # over 15 s)
    assert summary == {
        "available": True,
        "samples": 4,
        "duration_s": 15.0,
        "steal_pct": round(100 * 50 / 1800, 2),
        "steal_pct_max": 8.0,
        "iowait_pct": round(100 * 10 / 1800, 2),
        "busy_pct": 25.0,
        "others_pct": 16.67,
        "others_cpus": 0.2,
        "load1": {"min": 0.5, "median": 1.5, "max": 3.0},
    }


def test_noise_monitor_without_proc_stat() -> None:
    def unreadable() -> str:
        raise PermissionError(13, "Permission denied")

    mon = NoiseMonitor(clock=lambda: 0.0, read_stat=unreadable, read_loadavg=unreadable)
    mon.sample()
    summary = mon.summary()
    assert summary["available"] is False
    assert "/proc/stat" in summary["why"] and "Permission denied" in summary["why"]


def test_noise_monitor_single_sample_is_not_available() -> None:
    fake = _Fake(stats=[_stat(1, 1, 1, 0, 0)], loads=["1.0"])
    mon = NoiseMonitor(clock=fake.clock, read_stat=fake.stat, read_loadavg=fake.loadavg)
    summary = mon.summary(final_sample=False)
    assert summary["available"] is False and summary["samples"] == 1


def test_noise_monitor_on_this_machine() -> None:
    mon = NoiseMonitor()
    sum(range(200_000))
    summary = mon.summary()
    if Path("/proc/stat").exists():
        assert summary["samples"] == 2
        if summary["available"]:
            assert 0 <= summary["steal_pct"] <= 100 and 0 <= summary["busy_pct"] <= 100
            assert 0 <= summary["others_pct"] <= summary["busy_pct"] + 1e-9
    else:
        assert summary["available"] is False


# -- the allocator -------------------------------------------------------------------------


def test_allocator_names_and_default() -> None:
    assert ALLOCATORS == ("glibc", "glibc-fixed", "jemalloc", "tcmalloc")
    assert DEFAULT_ALLOCATOR == "glibc"
    assert allocator_env("glibc", environ={}) == {}
    assert allocator_env("glibc-fixed", environ={}) == {
        "MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024),
        "MALLOC_TRIM_THRESHOLD_": str(256 * 1024 * 1024),
    }


def test_allocator_env_unknown_name() -> None:
    with pytest.raises(ConfigError) as err:
        allocator_env("x")
    assert str(err.value) == "unknown allocator 'x' (known: glibc, glibc-fixed, jemalloc, tcmalloc)"


@pytest.fixture
def no_system_allocators(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if neither ldconfig nor the usual folders had jemalloc or tcmalloc."""
    original = envmod._locate

    def locate(name, environ, ldconfig_text=None, search_dirs=None):  # type: ignore[no-untyped-def]
        return original(name, environ, ldconfig_text="", search_dirs=[])

    monkeypatch.setattr(envmod, "_locate", locate)


@pytest.mark.usefixtures("no_system_allocators")
def test_allocator_env_not_installed() -> None:
    with pytest.raises(ConfigError) as err:
        allocator_env("jemalloc", environ={})
    assert str(err.value) == (
        "allocator 'jemalloc' is not installed here (no libjemalloc.so.2 found; "
        "apt-get install libjemalloc2, or set HARNESS_JEMALLOC=/path/to/libjemalloc.so)"
    )
    assert "\n" not in str(err.value)
    available = available_allocators(environ={})
    assert available["glibc"] is None and available["glibc-fixed"] is None
    assert available["jemalloc"] and available["tcmalloc"]
    with pytest.raises(ConfigError, match="HARNESS_TCMALLOC"):
        allocator_env("tcmalloc", environ={})


@pytest.mark.usefixtures("no_system_allocators")
def test_allocator_env_override_and_ld_preload_kept(tmp_path: Path) -> None:
    lib = tmp_path / "libjemalloc.so.2"
    lib.write_bytes(b"")
    environ = {"HARNESS_JEMALLOC": str(lib), "LD_PRELOAD": "/opt/libfoo.so /opt/libbar.so"}
    assert available_allocators(environ)["jemalloc"] is None
    # the allocator first (the first preloaded malloc wins), existing entries kept
    assert allocator_env("jemalloc", environ) == {
        "LD_PRELOAD": f"{lib.resolve()}:/opt/libfoo.so:/opt/libbar.so"
    }
    assert allocator_env("jemalloc", {"HARNESS_JEMALLOC": str(lib)}) == {
        "LD_PRELOAD": str(lib.resolve())
    }
    missing = {"HARNESS_JEMALLOC": str(tmp_path / "nope.so")}
    with pytest.raises(ConfigError, match="is not a file"):
        allocator_env("jemalloc", missing)


def test_locate_through_ldconfig_and_search_dirs(tmp_path: Path) -> None:
    lib = tmp_path / "libtcmalloc_minimal.so.4"
    lib.write_bytes(b"")
    ldconfig = (
        "1234 libs found in cache `/etc/ld.so.cache'\n"
        f"\tlibtcmalloc_minimal.so.4 (libc6,x86-64) => {lib}\n"
        "\tlibc.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libc.so.6\n"
    )
    assert parse_ldconfig(ldconfig)["libc.so.6"] == "/lib/x86_64-linux-gnu/libc.so.6"
    assert envmod._locate("tcmalloc", {}, ldconfig_text=ldconfig, search_dirs=[]) == (
        str(lib),
        None,
    )
    assert envmod._locate("tcmalloc", {}, ldconfig_text="", search_dirs=[str(tmp_path)]) == (
        str(lib),
        None,
    )


def test_worker_env_removes_conflicting_allocator_settings() -> None:
    parent = {
        "PATH": "/usr/bin",
        "MALLOC_ARENA_MAX": "2",
        "MALLOC_MMAP_THRESHOLD_": "65536",
        "MALLOC_CONF": "background_thread:true",
        "TCMALLOC_RELEASE_RATE": "0",
        "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0:glibc.cpu.hwcaps=-AVX512F",
        "LD_PRELOAD": "/usr/lib/libtcmalloc.so.4:/opt/libfoo.so",
        "OMP_NUM_THREADS": "16",
    }
    assert set(inherited_allocator_settings(parent)) == {
        "MALLOC_ARENA_MAX",
        "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_CONF",
        "TCMALLOC_RELEASE_RATE",
        "GLIBC_TUNABLES",
        "LD_PRELOAD",
    }
    env = worker_env(2, "glibc", environ=parent)
    assert not [k for k in env if k.startswith(("MALLOC_", "TCMALLOC_"))]
    assert env["GLIBC_TUNABLES"] == "glibc.cpu.hwcaps=-AVX512F"
    assert env["LD_PRELOAD"] == "/opt/libfoo.so"
    assert env["PATH"] == "/usr/bin" and env["OMP_NUM_THREADS"] == "2"
    assert env["PYTHONHASHSEED"] == "0"

    fixed = worker_env(1, "glibc-fixed", environ=parent)
    assert {k: v for k, v in fixed.items() if k.startswith("MALLOC_")} == GLIBC_FIXED_ENV

    # extra is applied last: settings wanted on purpose survive
    tuned = worker_env(1, "glibc", {"MALLOC_ARENA_MAX": "4"}, environ=parent)
    assert tuned["MALLOC_ARENA_MAX"] == "4"
    # extra with the default allocator: by keyword (there is no other call shape)
    cache = worker_env(1, extra={"TORCHINDUCTOR_CACHE_DIR": "/tmp/x"}, environ=parent)
    assert cache["TORCHINDUCTOR_CACHE_DIR"] == "/tmp/x" and "MALLOC_ARENA_MAX" not in cache
    with pytest.raises(ConfigError, match="unknown allocator"):
        worker_env(1, {"TORCHINDUCTOR_CACHE_DIR": "/tmp/x"}, environ=parent)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown allocator"):
        worker_env(1, "mimalloc", environ=parent)


def test_worker_env_clean_parent_has_nothing_to_remove() -> None:
    env = worker_env(1, environ={"PATH": "/bin"})
    assert "LD_PRELOAD" not in env and "GLIBC_TUNABLES" not in env
    assert not [k for k in env if k.startswith("MALLOC_")]


def test_classify_allocator() -> None:
    libc = "/lib/x86_64-linux-gnu/libc.so.6"
    assert classify_allocator(libc, {}) == "glibc"
    assert classify_allocator(libc, GLIBC_FIXED_ENV) == "glibc-fixed"
    assert classify_allocator(libc, {"MALLOC_ARENA_MAX": "2"}) == "glibc (MALLOC_ARENA_MAX=2)"
    assert classify_allocator("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", {}) == "jemalloc"
    maps = (
        "7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.9\n"
        f"7f02-7f03 r-xp 00000000 08:01 2 {libc}\n"
    )
    assert classify_allocator(maps, GLIBC_FIXED_ENV) == "tcmalloc"
    assert allocator_in_use(maps_text=maps, environ={}) == "tcmalloc"
    assert allocator_in_use(maps_text=f"7f02-7f03 r-xp 0 0 2 {libc}\n", environ={}) == "glibc"


_REPORT = "from harness.environment import allocator_in_use; print(allocator_in_use())"


@pytest.mark.parametrize("name", ALLOCATORS)
def test_a_worker_reports_the_allocator_it_was_given(name: str) -> None:
    if available_allocators()[name] is not None:
        pytest.skip(f"{name} is not installed here: {available_allocators()[name]}")
    out = subprocess.run(
        [sys.executable, "-c", _REPORT],
        env=worker_env(1, name),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == name, out.stderr
