"""harness.toolchain: inductor's vector ISA probes remembered across processes."""

from __future__ import annotations

import json
import os
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
