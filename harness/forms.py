"""Turning an implementation into the callable that is timed, with its one-off cost.

- ``eager``: the declared callable. On CUDA, a NumPy/SciPy baseline gets its inputs
  copied to the host and its output copied back *inside* the call: that is its real
  cost on a GPU.
- ``torchscript``: ``torch.jit.script`` of the native callable (one-off: scripting).
- ``compile``: ``torch.compile(fn, dynamic=False)``; the one-off cost is its first
  forward (no_grad and training) and first backward call, which compile.
- ``onnxruntime``: ``torch.onnx.export(..., dynamo=True)`` then an
  ``onnxruntime.InferenceSession``; forward only. Exported models are cached on disk
  by layer, implementation, shapes, dtype and versions, with their export time, so
  repeated use does not re-export; the one-off cost is export plus session creation.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from harness.layer import Implementation, Layer, Point

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

__all__ = [
    "Built",
    "CallableModule",
    "build",
    "onnx_cache_dir",
    "ort_callable",
    "ort_session",
    "quiet",
]


@dataclass
class Built:
    """A ready-to-time callable and what it cost to make it."""

    fn: Callable[..., torch.Tensor]
    oneoff_s: float | None = None
    oneoff_what: str | None = None


def onnx_cache_dir() -> Path:
    """Where exported ONNX models are kept (``$HARNESS_CACHE_DIR`` or ~/.cache)."""
    root = os.environ.get("HARNESS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "port-harness"
    )
    return Path(root) / "onnx"


_NOISY_LOGGERS = ("torch.onnx", "torch._dynamo", "torch._inductor", "torch.export", "onnxscript")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence what exporters and compilers print, for the duration of one check:
    Python's stdout and stderr, file descriptors 1 and 2 (the TorchScript exporter
    prints from C++), their loggers and their warnings."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    sink = io.StringIO()
    try:
        for logger in loggers:
            logger.setLevel(logging.CRITICAL + 1)
        with (
            warnings.catch_warnings(),
            _silenced_fds(),
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def _silenced_fds() -> Iterator[None]:
    """Point file descriptors 1 and 2 at the null device, restoring them afterwards."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()  # type: ignore[union-attr]
    saved: list[tuple[int, int]] = []
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    try:
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
                os.dup2(null, fd)
            except OSError:
                continue
        yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)


def _script(fn: Callable[..., Any]) -> Any:
    # torch.jit.script is deprecated in torch 2.13; we call it on purpose, to measure
    # the TorchScript form users still deploy, so its deprecation warning is silenced.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.script(fn)


class CallableModule(torch.nn.Module):
    """A plain callable as an ``nn.Module`` (for tracing and export)."""

    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.fn(*args)


def _source_hash(fn: object) -> str:
    try:
        src = inspect.getsource(fn)  # type: ignore[arg-type]
    except (OSError, TypeError):
        src = getattr(fn, "__qualname__", repr(fn))
    return hashlib.sha256(src.encode()).hexdigest()[:16]


def _onnx_model(
    layer: Layer,
    impl: Implementation,
    fn: Callable[..., torch.Tensor],
    example: Sequence[torch.Tensor],
    dtype: str,
) -> tuple[bytes, float, bool]:
    """Exported model bytes, the export's duration, and whether it came from the cache."""
    import onnxruntime

    target = impl.fn if impl.fn is not None else impl.module
    key = json.dumps(
        {
            "layer": layer.name,
            "impl": impl.origin,
            "code": _source_hash(target),
            "shapes": [list(t.shape) for t in example],
            "dtype": dtype,
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    folder = onnx_cache_dir() / f"{layer.name}-{impl.origin}-{digest}"
    model_path, meta_path = folder / "model.onnx", folder / "meta.json"
    if model_path.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            return model_path.read_bytes(), float(meta["export_s"]), True
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is re-exported below
    module = CallableModule(fn).eval()
    cpu_example = tuple(t.detach().cpu() for t in example)
    t0 = time.perf_counter()
    with quiet():
        program = torch.onnx.export(module, cpu_example, dynamo=True, verbose=False)
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    data: bytes = program.model_proto.SerializeToString()
    export_s = time.perf_counter() - t0
    from harness.results import atomic_write_bytes, atomic_write_json

    try:
        atomic_write_bytes(model_path, data)
        atomic_write_json(meta_path, {"export_s": export_s, "key": json.loads(key)})
    except OSError:
        pass  # an unwritable cache only costs re-exporting next time
    return data, export_s, False


def ort_session(model: bytes, threads: int = 1, device: str = "cpu") -> InferenceSession:
    """An ONNX Runtime session for ``model`` (serialized ONNX): ``threads`` intra-op
    threads, one inter-op thread, errors-only logging, on the CPU or CUDA provider.
    ``NotImplementedError`` for ``device="cuda"`` when onnxruntime has no CUDA provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise NotImplementedError("this onnxruntime build has no CUDAExecutionProvider")
        providers = ["CUDAExecutionProvider"]
    return ort.InferenceSession(model, options, providers=providers)


def ort_callable(
    session: InferenceSession, input_names: Sequence[str] = ()
) -> Callable[..., torch.Tensor]:
    """``session`` as a callable on the layer's tensors, returning its first output as
    a tensor on the first argument's device.

    Graph inputs are fed by name when ``input_names`` (the layer's inputs, in order)
    covers all of them, else positionally: an exporter may rename inputs, and drops
    those the graph does not use (a graph with none computes a constant)."""
    graph_inputs = [i.name for i in session.get_inputs()]

    def run(*args: torch.Tensor) -> torch.Tensor:
        by_name = dict(zip(input_names, args, strict=False))
        if input_names and all(name in by_name for name in graph_inputs):
            chosen = [by_name[name] for name in graph_inputs]
        else:
            chosen = list(args[: len(graph_inputs)])
        feed = {
            name: t.detach().cpu().numpy() for name, t in zip(graph_inputs, chosen, strict=True)
        }
        out = session.run(None, feed)[0]
        return torch.from_numpy(np.asarray(out)).to(args[0].device)

    return run


def _own_code(fn: Callable[..., torch.Tensor], name: str) -> Callable[..., torch.Tensor]:
    """A wrapper with a code object of its own. Dynamo keys its cache on the code
    object: without this, every shape of a grid shares one cache, each call walks the
    guards of all other shapes' entries, and timings get an overhead a user compiling
    one shape never sees."""

    def call(*args: torch.Tensor) -> torch.Tensor:
        return fn(*args)

    call.__code__ = call.__code__.replace(co_name=name.replace("-", "_").replace(".", "_"))
    call.__name__ = call.__qualname__ = call.__code__.co_name
    return call


def _host_roundtrip(fn: Callable[..., torch.Tensor], device: str) -> Callable[..., torch.Tensor]:
    def run(*args: torch.Tensor) -> torch.Tensor:
        return fn(*(a.cpu() for a in args)).to(device)

    return run


def build(
    layer: Layer,
    impl: Implementation,
    point: Point,
    example: Sequence[torch.Tensor],
    dtype: str,
    threads: int,
    device: str,
    grad_mask: Sequence[bool],
) -> Built:
    """The callable for ``impl`` at ``point``; ``example`` inputs drive compilation."""
    fn = impl.callable_for(point)
    if impl.form == "eager":
        if device != "cpu" and impl.role == "baseline":
            return Built(_host_roundtrip(fn, device))
        return Built(fn)
    if impl.form == "torchscript":
        t0 = time.perf_counter()
        if impl.module is not None:
            raise NotImplementedError(
                "TorchScript form of a module-based implementation: declare it with fn="
            )
        scripted = _script(fn)
        return Built(scripted, time.perf_counter() - t0, "torch.jit.script")
    if impl.form == "compile":
        # The backward phase calls backward repeatedly on one retained graph; donated
        # buffers (a memory optimisation of compiled backward) forbid retain_graph.
        import torch._dynamo.config as dynamo_config
        import torch._functorch.config as functorch_config

        functorch_config.donated_buffer = False
        # Every shape of a grid compiles the same function again. Past dynamo's
        # recompile limit (8) it would silently run eager: the 'compile' timings of
        # larger sizes would then be eager timings.
        dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 4096)
        dynamo_config.accumulated_recompile_limit = max(
            dynamo_config.accumulated_recompile_limit, 65536
        )
        compiled = torch.compile(
            _own_code(fn, f"compiled_{impl.origin}_{id(example)}"), dynamic=False
        )
        t0 = time.perf_counter()
        with quiet():
            with torch.no_grad():
                compiled(*example)
            leaves = [t.detach().requires_grad_(m) for t, m in zip(example, grad_mask, strict=True)]
            out = compiled(*leaves)
            if impl.backward and any(grad_mask):
                out.sum().backward()
        return Built(
            compiled,
            time.perf_counter() - t0,
            "first calls: compile forward (no_grad and training) and backward",
        )
    if impl.form == "onnxruntime":
        data, export_s, _cached = _onnx_model(layer, impl, fn, example, dtype)
        t0 = time.perf_counter()
        run = ort_callable(ort_session(data, threads, device))
        return Built(
            run,
            export_s + time.perf_counter() - t0,
            "torch.onnx.export(dynamo=True) + InferenceSession",
        )
    raise ValueError(f"unknown form {impl.form!r}")
