"""harness.toolchain: inductor's vector ISA probes remembered across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness import toolchain

#: (an ISA object, the paths the fake probe was called with, the cache folder, what
#: the fake probe returns per path: default True)
Probes = tuple[Any, list[str], Path, dict[str, bool]]


@pytest.fixture()
def probes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Probes:
    """torch's probe replaced by a fake that records each call and loads what its
    ``outcomes`` say (default: loads), then wrapped by ``remember_isa_probes`` with the
    cache folder at ``tmp_path``; the class attribute is restored after the test."""
    from torch._inductor import cpu_vec_isa

    calls: list[str] = []
    outcomes: dict[str, bool] = {}

    def fake_probe(self: Any, output_path: str) -> bool:
        calls.append(output_path)
        return outcomes.get(output_path, True)

    monkeypatch.setattr(cpu_vec_isa.VecISA, "_probe_load", fake_probe)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    assert toolchain.remember_isa_probes()
    return cpu_vec_isa.VecISA(), calls, tmp_path, outcomes


def test_torchs_inductor_still_probes_isas_as_this_module_expects() -> None:
    # the wrapped method must exist: a torch that renamed it would silently run every
    # probe again (2.6 s a compiling process), and this test says so first
    from torch._inductor import cpu_vec_isa

    assert callable(getattr(cpu_vec_isa.VecISA, "_probe_load", None))
    assert callable(getattr(cpu_vec_isa, "x86_isa_checker", None))


def test_a_library_that_loaded_is_not_probed_again_until_it_changes(
    probes: Probes,
) -> None:
    isa, calls, folder, _outcomes = probes
    lib = folder / "isa.so"
    lib.write_bytes(b"a")
    assert isa._probe_load(str(lib)) and isa._probe_load(str(lib))
    assert calls == [str(lib)]  # the second call was served from the record
    record = json.loads((folder / toolchain.PROBES_FILE).read_text())
    assert record[str(lib)]["size"] == 1
    # rebuilt: another size and time, probed again
    lib.write_bytes(b"bb")
    os.utime(lib, ns=(1, 1))
    assert isa._probe_load(str(lib))
    assert calls == [str(lib)] * 2


def test_a_failed_probe_is_never_remembered(probes: Probes) -> None:
    isa, calls, folder, outcomes = probes
    lib = folder / "bad.so"
    lib.write_bytes(b"x")
    outcomes[str(lib)] = False
    assert not isa._probe_load(str(lib)) and not isa._probe_load(str(lib))
    assert calls == [str(lib)] * 2
    assert not (folder / toolchain.PROBES_FILE).exists()


def test_a_damaged_record_remembers_nothing(probes: Probes) -> None:
    isa, calls, folder, _outcomes = probes
    lib = folder / "isa.so"
    lib.write_bytes(b"a")
    (folder / toolchain.PROBES_FILE).write_text("{not json")
    assert isa._probe_load(str(lib))
    assert calls == [str(lib)]
    # and the probe that loaded is recorded afresh
    assert str(lib) in json.loads((folder / toolchain.PROBES_FILE).read_text())


def test_another_machines_flags_probe_again(
    probes: Probes,
) -> None:
    isa, calls, folder, _outcomes = probes
    lib = folder / "isa.so"
    lib.write_bytes(b"a")
    record = folder / toolchain.PROBES_FILE
    key = toolchain._probe_key(str(lib), ["avx2", "amx_tile"])
    record.write_text(json.dumps({str(lib): key}))
    assert isa._probe_load(str(lib))
    assert calls == [str(lib)]


def test_without_a_cache_folder_nothing_is_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch._inductor import cpu_vec_isa

    before = cpu_vec_isa.VecISA._probe_load
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    assert not toolchain.remember_isa_probes()
    assert cpu_vec_isa.VecISA._probe_load is before


#: Run in a fresh interpreter: what a timing worker imports before it forks its zygote
#: (the layers, ``LAZY_IMPORTS`` and the clean forms' own), then where a forked child's
#: 1 MiB buffer comes from; then the same after a freed 4 MiB mapping raised the
#: threshold, which shows the probe tells the two apart.
_THRESHOLD = """
import os, sys
import torch, numpy, scipy.signal
from harness.registry import Registry
from harness.toolchain import CLEAN_HEAP_FORMS, prepare_to_fork
from heap_probe import placement, raise_threshold

def in_child():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, placement().encode())
        os._exit(0)
    os.close(write)
    where = os.read(read, 16).decode()
    os.waitpid(pid, 0)
    return where

Registry.default(())
prepare_to_fork(CLEAN_HEAP_FORMS)
print("clean", in_child())
raise_threshold()
print("raised", in_child())
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc, fork")
def test_the_clean_forms_imports_leave_a_forked_childs_mmap_threshold_as_a_fresh_processs(
    fixtures_pythonpath: str,
) -> None:
    # guards CLEAN_HEAP_FORMS: a torch, NumPy or SciPy whose import raised glibc's mmap
    # threshold would give every eager implementation's process a heap no user's
    # training process has (harness.own_process.Zygote)
    done = subprocess.run(
        [sys.executable, "-c", _THRESHOLD],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": fixtures_pythonpath},
    )
    assert done.returncode == 0, done.stderr
    lines = dict(line.split() for line in done.stdout.splitlines())
    assert lines == {"clean": "mmap", "raised": "heap"}
