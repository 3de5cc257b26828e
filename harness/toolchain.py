"""First-use costs of torch's toolchains, paid once per worker instead of once per group.

A timing (or profiling) worker forks a child for each group (``harness.worker``), and
a child pays again whatever the worker left for a first use: a lazy import, the
compile toolchain's first compile. ``prepare_to_fork`` pays them in the worker before
it forks: imports only, and one tiny compile, so the children still start with no
OpenMP pool. Some of those imports (the compile toolchain's, ONNX Runtime's) raise
glibc's mmap threshold, which every child inherits: a timing worker forks its eager
and TorchScript implementations' processes from a zygote forked before them
(``CLEAN_HEAP_FORMS``, ``harness.own_process.Zygote``).

``remember_isa_probes`` cuts one cost every process that compiles pays: before its
first compile, inductor checks which vector ISAs the C++ compiler and the machine
support by building a tiny library per ISA (cached in ``TORCHINDUCTOR_CACHE_DIR``) and
loading each in a fresh Python interpreter, 10 interpreters here, 2.6 s a process
(2026-11-30, AVX512). A probe that loaded an unchanged library on this machine is
remembered in that folder and not started again.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CLEAN_HEAP_FORMS",
    "FORM_IMPORTS",
    "LAZY_IMPORTS",
    "PROBES_FILE",
    "PROFILER_IMPORTS",
    "prepare_to_fork",
    "remember_isa_probes",
    "saved_and_loaded",
    "warm_toolchains",
]

#: Modules torch imports lazily on a first use (a convolution's first backward imports
#: sympy through symbolic_shapes: 0.4 s), imported once by the worker before it forks
#: so that no group's child pays them; and those of each derived form.
LAZY_IMPORTS = ("threadpoolctl", "torch.fx.experimental.symbolic_shapes")
FORM_IMPORTS = {
    "compile": (
        "torch._dynamo",
        "torch._inductor.compile_fx",
        "torch._inductor.codecache",
        "torch._inductor.cpp_builder",
        "torch.utils.cpp_extension",
        # what compiling a real layer (conv2d, fft) imports and the warm-up's tiny
        # function does not: found by tests/harness/test_worker_fork.py
        "torch._inductor.bounds",
        "torch._inductor.choices",
        "torch._inductor.kernel_template_choice",
        "torch._inductor.extern_node_serializer",
        "torch._inductor.runtime.caching",
        "torch._inductor.codegen.segmented_tree",
        "torch._inductor.codegen.cpu_device_op_overrides",
        "torch._inductor.codegen.cuda.device_op_overrides",
        "torch._inductor.codegen.mps_device_op_overrides",
        "torch._inductor.codegen.mtia.device_op_overrides",
        "torch._inductor.codegen.xpu.device_op_overrides",
        "torch._inductor.fx_passes.apply_gumbel_max_trick",
        "torch._inductor.fx_passes.efficient_conv_bn_eval",
        "torch._inductor.fx_passes.freezing_patterns",
        "torch._inductor.fx_passes.fuse_attention",
        "torch._inductor.fx_passes.mkldnn_fusion",
        "torch._inductor.fx_passes.pad_mm",
        "torch._inductor.fx_passes.quantization",
        "torch._inductor.fx_passes.serialized_patterns",
        "sympy.combinatorics",
        "sympy.tensor.tensor",
    ),
    # A timing child loads the model the setup pass exported (harness.forms._onnx_model)
    # and needs onnxruntime alone: the exporter (onnx, onnxscript, torch.onnx; 1.1 s a
    # process) is imported only by a child that must export, after a cache miss.
    "onnxruntime": ("onnxruntime",),
    "torchscript": ("torch.jit",),
}

#: The forms whose imports (``LAZY_IMPORTS`` and their own) leave glibc's malloc
#: thresholds as a fresh process's: a timing worker forks their processes from a zygote
#: forked before the others' imports (``harness.own_process.Zygote``), which raise them
#: (a 1 MiB buffer then comes from the heap: measured after importing onnxruntime or
#: the compile toolchain, 2026-12-03; tests/harness/test_toolchain.py checks it).
CLEAN_HEAP_FORMS = ("eager", "torchscript")

#: What a profiled call imports on its first use (torch's profiler pulls in dynamo and
#: the exporter's registries, 283 modules): imported once by a profiling worker, or each
#: profiled variant's child paid 1.2 s for them (2026-11-30, AVX512: 0.2 s a variant
#: became 1.4 s when the ONNX warm-up, which had imported them by the way, was dropped).
PROFILER_IMPORTS = (
    "cProfile",
    "pstats",
    "torch.profiler",
    "torch._dynamo",
    "torch._inductor.compile_fx",
    "torch.onnx",
    "torch.distributed",
    "torch.testing",
)


def prepare_to_fork(forms: Iterable[str] = (), modules: Iterable[str] = ()) -> None:
    """Make the worker a clean parent for its children (``harness.worker.run_in_child``):
    torch at one thread until a child sets its own (so no OpenMP pool exists to be lost
    in a fork), and the modules a child would import lazily imported once here
    (``forms``: the forms of the job's implementations; ``modules``: more to import).
    Imports, and the toolchains' first use on a tiny function (``warm_toolchains``);
    the imports of a form outside ``CLEAN_HEAP_FORMS`` raise glibc's mmap threshold
    (module docstring). What torch prints meanwhile is the caller's to silence
    (``harness.forms.quiet``)."""
    torch.set_num_threads(1)
    names = [
        *LAZY_IMPORTS,
        *(m for form in sorted(set(forms)) for m in FORM_IMPORTS.get(form, ())),
        *modules,
    ]
    for name in names:
        with contextlib.suppress(Exception):  # a form's module missing: its child says so
            importlib.import_module(name)
    with contextlib.suppress(Exception):  # a toolchain that fails: its child says so
        warm_toolchains(set(forms))


#: The toolchains this process has warmed already: a worker started ahead of its job
#: (``harness.worker.spare``) warms them before it knows the job, and again for nothing.
_WARMED: set[str] = set()


def warm_toolchains(forms: set[str]) -> None:
    """Pay the first-use costs of the compile and TorchScript toolchains once, in the
    worker, on an 8-element function: dynamo's and inductor's first compile (2-5 s
    here) in each grad mode a form is timed in, TorchScript's first script, save, load
    and optimised calls. Without this every group's child paid it again (2026-11-29: a
    conv2d group with every form took 6.3 s in its child, 1.3 s after). Each mode has
    first-use costs of its own: with the training compile alone warmed, a compile
    process of conv2d at n=128 still took 0.6 s to build, 0.3 s with the inference
    compile warmed too; a TorchScript process 0.19 s, 0.06 s after the warm-up
    (2026-12-03, AVX512). The tensors are tiny (no buffer near glibc's mmap threshold)
    and one thread runs them, so the children still start with no OpenMP pool (the
    compile imports before it raise the threshold: module docstring; TorchScript's
    leave it as it was, ``CLEAN_HEAP_FORMS``); inductor compiles in this process
    (``compile_threads = 1``): a pool of compile workers would not survive the fork
    either.

    The ONNX exporter is not imported or warmed: a timing or profiling child loads
    the model the setup pass exported from the cache (``harness.forms._onnx_model``)
    and never exports; warming it cost every timing process 2 s (2026-11-30, AVX512)
    for nothing."""
    if "compile" in forms and "compile" not in _WARMED:
        import torch._inductor.config as inductor_config

        remember_isa_probes()
        inductor_config.compile_threads = 1
        compiled = torch.compile(_tiny, dynamic=False)
        x = torch.randn(8, requires_grad=True)
        compiled(x).sum().backward()
        with torch.inference_mode():  # natives' forwards are served so (measure.served_call)
            compiled(torch.randn(8))
        _WARMED.add("compile")
    if "torchscript" in forms and "torchscript" not in _WARMED:
        loaded = saved_and_loaded(torch.jit.script(_tiny))  # as a form is built
        x = torch.randn(8, requires_grad=True)
        for _ in range(3):  # the profiling executor optimises a graph on its later calls
            loaded(x).sum().backward()
            with torch.inference_mode():
                loaded(torch.randn(8))
        _WARMED.add("torchscript")


def saved_and_loaded(scripted: Any) -> Any:
    """A scripted function or module saved to memory and loaded back, as a deployment
    loads it (``harness.forms.script_saved``, and the warm-up above)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(scripted, buffer)
    buffer.seek(0)
    return torch.jit.load(buffer)


def _tiny(x: torch.Tensor) -> torch.Tensor:
    """The function the toolchains are warmed up on (``warm_toolchains``)."""
    return torch.tanh(x) * 2


#: The file in ``TORCHINDUCTOR_CACHE_DIR`` that remembers the ISA probes that loaded.
PROBES_FILE = "harness-isa-probes.json"


def _probe_key(library: str, flags: list[str]) -> dict[str, Any] | None:
    """What a probe's success depends on: the library file as it is now (a rebuilt or
    replaced one is probed again) and the machine's vector ISA flags (the cache folder
    is per CPU capability already; the flags catch a VM moved to a CPU with another
    AMX or VNNI support under the same capability)."""
    try:
        st = os.stat(library)
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "flags": flags}


def remember_isa_probes() -> bool:
    """Remember, across processes, which of inductor's vector ISA probes loaded.

    Inductor decides which ISA to compile for by building a tiny library per ISA and
    loading it in a fresh interpreter (``VecISA._probe_load``), so that a library that
    crashes on load cannot take the compiling process down. The libraries are cached
    on disk; the interpreters are started again by every process (2.6 s each here).
    This wraps the probe: a library that loaded before, unchanged, on a machine with
    the same ISA flags, is not probed again; a failed probe is never remembered (it
    is tried again next time). The record lives beside the libraries, in
    ``TORCHINDUCTOR_CACHE_DIR`` (the runner points every worker at a folder per torch
    and CPU capability); without that variable nothing is remembered.

    Returns whether the probe is wrapped (False: no cache folder, or a torch whose
    inductor no longer has ``VecISA._probe_load``, where every probe runs as before;
    ``tests/harness/test_toolchain.py`` fails on such a torch so that it is noticed).
    """
    folder = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if not folder:
        return False
    try:
        from torch._inductor import cpu_vec_isa
    except ImportError:
        return False
    probe = getattr(cpu_vec_isa.VecISA, "_probe_load", None)
    if probe is None or getattr(probe, "_harness_remembered", False):
        return probe is not None
    record = Path(folder) / PROBES_FILE
    flags = sorted(cpu_vec_isa.x86_isa_checker())

    def remembered(self: Any, output_path: str) -> bool:
        key = _probe_key(output_path, flags)
        known = _read_probes(record)
        if key is not None and known.get(output_path) == key:
            return True
        loaded = bool(probe(self, output_path))
        if loaded and key is not None:
            from harness.atomic import atomic_write_json

            # two processes writing at once: one's entry may be lost, and probed again
            with contextlib.suppress(OSError):
                atomic_write_json(record, {**_read_probes(record), output_path: key})
        return loaded

    remembered._harness_remembered = True  # type: ignore[attr-defined]
    cpu_vec_isa.VecISA._probe_load = remembered  # type: ignore[method-assign]
    return True


def _read_probes(record: Path) -> dict[str, Any]:
    """The remembered probes; an unreadable or damaged record remembers nothing."""
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
