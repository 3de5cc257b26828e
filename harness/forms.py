"""Turning an implementation into the callable that is timed, with its one-off cost.

- ``eager``: the declared callable. On CUDA, a NumPy/SciPy baseline gets its inputs
  copied to the host and its output copied back *inside* the call: that is its real
  cost on a GPU.
- ``torchscript``: ``torch.jit.script`` of the native callable, saved with
  ``torch.jit.save`` and loaded back with ``torch.jit.load``: what is timed is the
  loaded module, as it is deployed (one-off: script, save and load). A callable that
  scripts but cannot be saved (it calls back into Python, e.g. an
  ``autograd.Function``) is no TorchScript form.
- ``compile``: ``torch.compile(fn, dynamic=False)``; the one-off cost is its first
  forward (no_grad and training) and first backward call, which compile. The
  baseline's own code (``<baseline>-compile``) is compiled with ``fullgraph=True``:
  compile must take it whole, or it is no port.
- ``onnxruntime``: ``torch.onnx.export(..., dynamo=True)`` then an
  ``onnxruntime.InferenceSession``; forward only. Exported models are cached on disk
  by layer, implementation, shapes, dtype and versions, with their export time, so
  repeated use does not re-export (an export that failed is cached as such, with its
  cause); the one-off cost is export plus session creation.

A form that cannot be built raises ``harness.errors.FormUnsupported`` with one line
naming the defect (``no ONNX function for prims.bessel_i1e``, ``TorchScript cannot
save it: it calls back into Python (IveFunction)``): its rows are ``unsupported``,
never errors. ``onnx_cause``, ``script_cause`` and ``dynamo_cause`` extract those lines
(the capability matrix words its reasons with them too).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import logging
import os
import re
import sys
import time
import types
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from harness.case import PHASES
from harness.deviation import eager_mismatch
from harness.dtypes import torch_dtype
from harness.errors import FormUnsupported, first_line, one_line, root_cause
from harness.layer import Implementation, Layer, Point, with_arguments
from harness.measure import served_call
from harness.outputs import as_tuple, tensors_of
from harness.toolchain import remember_isa_probes, saved_and_loaded

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

__all__ = [
    "Built",
    "CallableModule",
    "build",
    "dynamo_cause",
    "missing_onnx_function",
    "onnx_cache_dir",
    "onnx_cause",
    "ort_callable",
    "ort_session",
    "quiet",
    "script_cause",
    "script_saved",
]


@dataclass
class Built:
    """A ready-to-time callable and what it cost to make it."""

    fn: Callable[..., torch.Tensor]
    oneoff_s: float | None = None
    oneoff_what: str | None = None


def onnx_cache_dir() -> Path:
    """Where exported ONNX models are kept: ``onnx/`` of ``harness.cache.cache_root()``
    (``$HARNESS_CACHE_DIR``, which the runner sets for its workers, or ~/.cache)."""
    from harness.cache import cache_root

    return cache_root() / "onnx"


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


# -- causes: one line that names the defect ------------------------------------------------

_CAUSE_CHARS = 240
_NO_ONNX_FUNCTION = re.compile(
    r"No ONNX function found for (?:<OpOverload\(op='(?P<op>[^']+)'|(?P<name>[\w.:]+))"
)
_PYTHON_CALL = re.compile(r"Could not export Python function call '(?P<name>[^']+)'")
_USER_CODE = re.compile(
    r'File "(?P<file>[^"]+)", line (?P<line>\d+), in \S+(?:, code: (?P<code>.*))?'
)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its ``__cause__``/``__context__`` chain, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not e for e in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def missing_onnx_function(exc: BaseException) -> str | None:
    """``no ONNX function for prims.bessel_i1e`` when the ONNX exporter has no function
    for an op (named anywhere in the exception chain or its summary), else None."""
    for link in _chain(exc):
        text = str(link)
        found = _NO_ONNX_FUNCTION.search(text)
        if found:
            op = found.group("op") or found.group("name")
            # 2026-12-01: a dynoNet FFT filter's einsum of rfft outputs read "no ONNX
            # function for aten.einsum", which a real einsum has: ONNX has no complex types
            if "complex-valued input" in text:
                return f"no ONNX function for {op} on complex tensors (ONNX has no complex types)"
            return f"no ONNX function for {op}"
    return None


def onnx_cause(exc: BaseException) -> str:
    """What stopped ``torch.onnx.export(dynamo=True)``, in one line: ``no ONNX function
    for prims.bessel_i1e`` where the exporter has no function for an op (found anywhere
    in the exception chain or its summary), else the step that failed and the root
    cause's first line (``torch.export cannot trace it: Could not guard on
    data-dependent expression ...``)."""
    missing = missing_onnx_function(exc)
    if missing:
        return missing
    names = {type(link).__name__ for link in _chain(exc)}
    root = root_cause(exc)
    text = first_line(root) or type(root).__name__
    if "TorchExportError" in names:
        step = "torch.export cannot trace it"
    elif "ConversionError" in names:
        step = "ONNX conversion failed"
    else:
        step = "ONNX export failed"
    return one_line(f"{step}: {text}", _CAUSE_CHARS)


def script_cause(exc: BaseException, stage: str, fn: object = None) -> str:
    """Why TorchScript cannot ``stage`` (``script`` or ``save``) a callable ``fn``, in one
    line; a call back into Python is named (``it calls back into Python
    (IveFunction)``), and so is a built-in such as ``torch.relu`` declared as it is
    (``torch.jit.script`` takes functions with Python source only)."""
    found = _PYTHON_CALL.search(str(exc))
    if found:
        return f"TorchScript cannot {stage} it: it calls back into Python ({found.group('name')})"
    if isinstance(fn, types.BuiltinFunctionType):
        name = f"{getattr(fn, '__module__', None) or 'torch'}.{fn.__name__}"
        return (
            f"TorchScript cannot {stage} the built-in {name} declared as it is: declare "
            f"a def that calls it (def f(x): return {name}(x))"
        )
    root = root_cause(exc)
    text = first_line(root) or type(exc).__name__
    if isinstance(root, SyntaxError):
        # torch.jit dedents a function's source and parses it: a line at column 0 inside
        # an indented def (a comment, say) fails, and the error names "<unknown>, line 1"
        # (2026-12-02: a public interp1d Function read as if the user's file had a
        # syntax error)
        where = _parsed_function(exc)
        return one_line(
            f"TorchScript cannot {stage} it: Python rejects the source of {where} once "
            f"torch.jit dedents it ({type(root).__name__}: {text}); a line at column 0 "
            "inside the def, a comment say, is the usual cause",
            _CAUSE_CHARS,
        )
    where = _script_error_at(fn, str(root), text)
    return one_line(f"TorchScript cannot {stage} it: {text.rstrip(':')}{where}", _CAUSE_CHARS)


#: Where TorchScript's own errors put the offending line, below their first.
_SCRIPT_FILE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


def _script_error_at(fn: object, message: str, text: str) -> str:
    """`` (at logcmk.py:78)`` where TorchScript's message names the line below its first
    (``import statements aren't supported:``), else `` (in log_cmk_torch, logcmk.py:72)``,
    the function being scripted, when the error names no place at all (2026-12-02:
    "cannot create weak reference to 'numpy.ufunc' object", from an ``np.log`` in a
    native, said nothing of where); "" where the first line already says it."""
    if re.search(r"\.py\W|line \d", text):
        return ""
    numpy = "; a NumPy function in it, which TorchScript cannot compile" if "numpy" in text else ""
    found = _SCRIPT_FILE.search(message)
    if found:
        return f" (at {os.path.basename(found['file'])}:{found['line']}{numpy})"
    code = getattr(fn, "__code__", None)
    if code is None:
        return f" ({numpy[2:]})" if numpy else ""
    name = getattr(fn, "__qualname__", code.co_name)
    return f" (in {name}, {os.path.basename(code.co_filename)}:{code.co_firstlineno}{numpy})"


def _parsed_function(exc: BaseException) -> str:
    """The function torch.jit was parsing when ``exc`` was raised (its ``fn`` in
    ``torch._jit_internal``'s frames), as ``file.py:line (qualname)``."""
    tb = exc.__traceback__
    found = None
    while tb is not None:
        fn = (
            tb.tb_frame.f_locals.get("fn")
            if "_jit_internal" in tb.tb_frame.f_code.co_filename
            else None
        )
        if callable(fn):
            found = fn
        tb = tb.tb_next
    code = getattr(inspect.unwrap(found), "__code__", None) if found is not None else None
    if code is None:
        return "a function it compiles"
    name = getattr(found, "__qualname__", code.co_name)
    return f"{name} ({os.path.basename(code.co_filename)}:{code.co_firstlineno})"


def dynamo_cause(exc: BaseException) -> str:
    """What stopped Dynamo from taking a callable whole, in one line: the graph break's
    name, and where in the user's code it happened (``Data-dependent branching at
    ive.py:19: if np.isclose(v, 0):``)."""
    root = root_cause(exc)
    text = str(root)
    head = first_line(root) or type(root).__name__
    where = ""
    _, _, user = text.partition("from user code:")
    frames = list(_USER_CODE.finditer(user))
    if frames:
        last = frames[-1]
        tail = user[last.end() :].strip().splitlines()
        code = last.group("code") or (tail[0].strip() if tail else "")
        where = f" at {os.path.basename(last.group('file'))}:{last.group('line')}"
        if code:
            where += f": {code.strip()}"
    return one_line(f"{head}{where}", _CAUSE_CHARS)


def script_saved(fn: Callable[..., Any]) -> Any:
    """``fn`` scripted, saved to memory and loaded back: the TorchScript that is deployed.
    ``FormUnsupported`` when it cannot be scripted, or scripted but not saved."""
    try:
        scripted = _script(fn)
    except Exception as exc:
        raise FormUnsupported(script_cause(exc, "script", fn)) from exc
    try:
        return saved_and_loaded(scripted)
    except Exception as exc:
        raise FormUnsupported(script_cause(exc, "save")) from exc


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
    arguments: str = "",
    second: Callable[[], Sequence[torch.Tensor]] | None = None,
) -> tuple[bytes, float, bool, str]:
    """Exported model bytes, the export's duration, and whether it came from the cache
    (keyed by the code, the shapes, the dtype, the layer's ``arguments`` at the point,
    which the export bakes in, a module's whole point, and the versions)."""
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
            # 2: the TorchScript-based exporter is tried where the dynamo one fails (an
            # entry that says unsupported before that is not this one's answer); 3: that
            # exporter's model is held to eager by deviation.eager_mismatch's tolerance
            "exporters": 3,
            **({"arguments": arguments} if arguments else {}),
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    folder = onnx_cache_dir() / f"{layer.name}-{impl.origin}-{digest}"
    model_path, meta_path = folder / "model.onnx", folder / "meta.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("unsupported"):
                raise FormUnsupported(str(meta["unsupported"]))
            if model_path.is_file():
                exporter = str(meta.get("exporter", "dynamo"))
                if exporter in _EXPORTERS:
                    return model_path.read_bytes(), float(meta["export_s"]), True, exporter
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is re-exported below
    from harness.atomic import atomic_write_bytes, atomic_write_json

    module = CallableModule(fn).eval()
    cpu_example = tuple(t.detach().cpu() for t in example)
    t0 = time.perf_counter()
    try:
        with quiet():
            program = torch.onnx.export(module, cpu_example, dynamo=True, verbose=False)
        if program is None:
            raise RuntimeError("torch.onnx.export returned no program")
        data: bytes = program.model_proto.SerializeToString()
        exporter = "dynamo"
    except Exception as exc:
        cause = onnx_cause(exc)
        exporter = "legacy"
        try:
            data = _legacy_export(module, cpu_example, tuple(layer.inputs), second, cause)
        except FormUnsupported as unsupported:
            # An export fails the same way every time: remember why, so that the other
            # points and processes do not export again to learn it.
            with contextlib.suppress(OSError):
                atomic_write_json(
                    meta_path, {"unsupported": unsupported.cause, "key": json.loads(key)}
                )
            raise unsupported from exc
    export_s = time.perf_counter() - t0

    try:
        atomic_write_bytes(model_path, data)
        atomic_write_json(
            meta_path, {"export_s": export_s, "exporter": exporter, "key": json.loads(key)}
        )
    except OSError:
        pass  # an unwritable cache only costs re-exporting next time
    return data, export_s, False, exporter


#: The seed of the second input an export traced by the TorchScript-based exporter is
#: held against eager on (``Layer.make``; the capability matrix's is another).
_SECOND_SEED = 7919

#: How the report names each exporter (meta.json's ``exporter``).
_EXPORTERS = {
    "dynamo": "torch.onnx.export(dynamo=True)",
    "legacy": "torch.onnx.export(dynamo=False)",
}


def _legacy_export(
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    names: tuple[str, ...],
    second: Callable[[], Sequence[torch.Tensor]] | None,
    cause: str,
) -> bytes:
    """``module`` exported by the TorchScript-based exporter (``dynamo=False``), which a
    deployment falls back to where ``torch.export`` cannot trace the code (a public
    distance map's data-dependent guard, 2026-12-02). A trace bakes Python control
    flow and values in: the model is trusted only where ONNX Runtime's output on
    ``second()`` (other inputs of the same point) agrees with eager's.
    ``FormUnsupported`` naming the dynamo exporter's ``cause`` first, otherwise."""
    buffer = io.BytesIO()
    try:
        with quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, example, buffer, dynamo=False, input_names=list(names), verbose=False
            )
        data = buffer.getvalue()
        if second is not None:
            run = ort_callable(ort_session(data), names)
            cpu = tuple(t.detach().cpu() for t in second())
            with torch.no_grad():
                problem = eager_mismatch(run(*cpu), module(*cpu))
            if problem is not None:
                raise FormUnsupported(
                    f"{cause}; the TorchScript-based exporter's trace, on a second input, {problem}"
                )
    except FormUnsupported:
        raise
    except Exception as exc:
        raise FormUnsupported(f"{cause}; nor does the TorchScript-based exporter take it") from exc
    return data


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


def ort_callable(session: InferenceSession, input_names: Sequence[str] = ()) -> Callable[..., Any]:
    """``session`` as a callable on the layer's tensors, returning its output as a
    tensor on the first argument's device (a tuple of them for a model of several
    outputs, as the layer returns them).

    Graph inputs are fed by name when ``input_names`` (the layer's inputs, in order)
    covers all of them, else positionally: an exporter may rename inputs, and drops
    those the graph does not use (a graph with none computes a constant)."""
    graph_inputs = [i.name for i in session.get_inputs()]
    single = len(session.get_outputs()) == 1

    def run(*args: torch.Tensor) -> Any:
        by_name = dict(zip(input_names, args, strict=False))
        if input_names and all(name in by_name for name in graph_inputs):
            chosen = [by_name[name] for name in graph_inputs]
        else:
            chosen = list(args[: len(graph_inputs)])
        feed = {
            name: t.detach().cpu().numpy() for name, t in zip(graph_inputs, chosen, strict=True)
        }
        outs = session.run(None, feed)
        return tensors_of(outs[0] if single else outs, args[0].device)

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
    phases: Collection[str] | None = None,
) -> Built:
    """The callable for ``impl`` at ``point``; ``example`` inputs drive compilation.
    ``phases``: the only phases it will be called in (``harness.case.PHASES``; None:
    any), so that a compiled form compiles only their graphs."""
    fn = impl.callable_for(point)
    if impl.form == "eager":
        if device != "cpu" and impl.role == "baseline":
            return Built(_host_roundtrip(fn, device))
        return Built(fn)
    if impl.form == "torchscript":
        if impl.arguments is not None and impl.fn is not None:
            # the function itself is scripted; the arguments follow the tensors
            built = _build_torchscript(impl, cast(Callable[..., torch.Tensor], impl.fn))
            built = Built(
                with_arguments(built.fn, impl.arguments, point), built.oneoff_s, built.oneoff_what
            )
        else:
            built = _build_torchscript(impl, fn)
        _called_as_eager(built, fn, example)
        return built
    if impl.form == "compile":
        return _build_compiled(impl, fn, example, grad_mask, trains=layer.trains, phases=phases)
    if impl.form == "onnxruntime":
        # the export bakes the layer's arguments in: they key its cache entry
        extra = repr(tuple(impl.arguments(point))) if impl.arguments is not None else ""
        if impl.module is not None:
            # built per point (module=lambda point: ...): a module's export depends on the
            # whole point, not only on the shapes (a Bessel module of order v=1 was
            # served the export, and the cause, of v=0's, 2026-12-02)
            extra += json.dumps(dict(point), sort_keys=True, default=str)

        # the TorchScript-based exporter, tried where the dynamo one fails, traces:
        # its graph is held against eager on a second input before it is trusted
        def second() -> tuple[torch.Tensor, ...]:  # made only if that exporter runs
            return layer.make(point, torch_dtype(dtype), "cpu", seed=_SECOND_SEED)

        return _build_onnxruntime(
            layer, impl, fn, example, dtype, threads, device, extra, second=second
        )
    raise ValueError(f"unknown form {impl.form!r}")


def _build_torchscript(impl: Implementation, fn: Callable[..., torch.Tensor]) -> Built:
    """``fn`` scripted, saved and loaded back (as a deployment would load it); the
    one-off cost is all three."""
    t0 = time.perf_counter()
    if impl.module is not None:
        raise FormUnsupported(
            "not built: the harness times no TorchScript form of a module-declared "
            "candidate (the capability matrix says whether TorchScript scripts and saves "
            "it); declare it with fn= to time one"
        )
    loaded = script_saved(fn)
    return Built(loaded, time.perf_counter() - t0, "torch.jit.script, then save and load back")


def _called_as_eager(
    built: Built, eager: Callable[..., Any], example: Sequence[torch.Tensor]
) -> None:
    """One call of the loaded TorchScript on the example inputs, as the layer calls it.
    A saved function keeps no default arguments (``F.mse_loss`` loaded back wants its
    ``size_average``, 2026-12-02): where eager runs and the loaded form cannot, it is
    ``FormUnsupported``, not an error of every timed point."""
    try:
        with torch.no_grad():
            built.fn(*example)
    except Exception as exc:
        try:
            with torch.no_grad():
                eager(*example)
        except Exception:
            raise exc from None  # the layer's own failure: eager fails too
        why = "TorchScript saved and loaded back cannot be called as the layer calls it"
        if "missing value for argument" in str(exc):
            why += (
                " (a saved function keeps no default arguments:"
                " wrap it in a function of the layer's inputs)"
            )
        cause = first_line(exc).split(" Declaration:")[0]
        raise FormUnsupported(f"{why}: {type(exc).__name__}: {cause}") from exc


def _build_compiled(
    impl: Implementation,
    fn: Callable[..., torch.Tensor],
    example: Sequence[torch.Tensor],
    grad_mask: Sequence[bool],
    *,
    trains: bool = True,
    phases: Collection[str] | None = None,
) -> Built:
    """``fn`` under ``torch.compile``, compiled here by its first calls (the one-off
    cost) so that no timed call compiles; of a forward-only layer (``trains`` false)
    the forward as served alone; of a process that times only some ``phases``, only
    theirs. The baseline compiled (role ``compiled``) must be taken whole
    (``fullgraph``): else it is no port, and ``FormUnsupported`` says why."""
    _compile_every_shape()
    # The baseline's own code is a port only if compile takes it whole.
    whole = impl.role == "compiled"
    compiled = torch.compile(
        _own_code(fn, f"compiled_{impl.origin}_{id(example)}"),
        dynamic=False,
        fullgraph=whole,
    )
    t0 = time.perf_counter()
    try:
        with quiet():
            _first_calls(compiled, impl, example, grad_mask, trains, phases)
    except torch._dynamo.exc.Unsupported as exc:
        if not whole:
            raise
        raise FormUnsupported(
            f"torch.compile(fullgraph=True) cannot take {impl.origin} whole: {dynamo_cause(exc)}"
        ) from exc
    return Built(
        compiled,
        time.perf_counter() - t0,
        "first calls: compile forward (inference and training) and backward"
        if trains
        else "first call: compile the forward (inference)",
    )


def _compile_every_shape() -> None:
    """Dynamo and functorch settings under which each phase of each grid point is
    compiled, and compiled as timed."""
    # The backward phase calls backward repeatedly on one retained graph; donated
    # buffers (a memory optimisation of compiled backward) forbid retain_graph.
    import torch._dynamo.config as dynamo_config
    import torch._functorch.config as functorch_config

    remember_isa_probes()  # inductor's ISA probes: once per machine, not per process
    functorch_config.donated_buffer = False
    # Every shape of a grid compiles the same function again. Past dynamo's
    # recompile limit (8) it would silently run eager: the 'compile' timings of
    # larger sizes would then be eager timings.
    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 4096)
    dynamo_config.accumulated_recompile_limit = max(
        dynamo_config.accumulated_recompile_limit, 65536
    )


def _first_calls(
    compiled: Callable[..., torch.Tensor],
    impl: Implementation,
    example: Sequence[torch.Tensor],
    grad_mask: Sequence[bool],
    trains: bool = True,
    phases: Collection[str] | None = None,
) -> None:
    """Call ``compiled`` once in each grad mode it will be timed in, and its backward
    once when it has one: each compiles a graph of its own. A forward-only layer's
    (``trains`` false) is timed as served alone. ``phases``: the only phases timed
    (None: any). An implementation's process that times the inference forward alone
    compiles no training graphs, and one that times training steps no inference
    graph: each graph cost 0.07-0.3 s in every such process, a visit of a group has
    two, and the rounds of a conv2d visit were about as long (2026-12-03, AVX512)."""
    wanted = set(PHASES if phases is None else phases)
    # the forward is timed as it is served: natives under inference_mode
    # (dynamo guards on the grad mode), the baseline's own code under no_grad
    if "forward" in wanted:
        served_call(compiled, example, inference=impl.role == "native")
    if not trains or not wanted & {"step", "backward"}:
        return
    leaves = [t.detach().requires_grad_(m) for t, m in zip(example, grad_mask, strict=True)]
    out = compiled(*leaves)
    if impl.backward and any(grad_mask):
        outs = [t for t in as_tuple(out) if t.requires_grad]  # several outputs: each
        if outs:
            # an upstream gradient of ones, not .sum(): a complex output has no real sum
            # to differentiate. A backward that refuses it (torch's complex SVD refuses
            # a loss that depends on its singular vectors' phases) leaves the form built
            # for inference; its backward and step then fail when checked, saying why.
            with contextlib.suppress(RuntimeError):
                torch.autograd.backward(outs, [torch.ones_like(t) for t in outs])


def _build_onnxruntime(
    layer: Layer,
    impl: Implementation,
    fn: Callable[..., torch.Tensor],
    example: Sequence[torch.Tensor],
    dtype: str,
    threads: int,
    device: str,
    arguments: str = "",
    *,
    second: Callable[[], Sequence[torch.Tensor]] | None = None,
) -> Built:
    """``fn`` exported to ONNX (or its export from the cache) and run by an ONNX
    Runtime session; the one-off cost is the export and the session's creation.
    ``FormUnsupported`` when ONNX Runtime cannot run the model here."""
    data, export_s, _cached, exporter = _onnx_model(
        layer, impl, fn, example, dtype, arguments, second
    )
    t0 = time.perf_counter()
    try:
        session = ort_session(data, threads, device)
    except Exception as exc:  # no provider, or an op ONNX Runtime has no kernel for
        raise FormUnsupported(
            f"ONNX Runtime cannot run the exported model: {first_line(exc)}"
        ) from exc
    run = ort_callable(session, tuple(layer.inputs))
    return Built(
        run, export_s + time.perf_counter() - t0, f"{_EXPORTERS[exporter]} + InferenceSession"
    )
