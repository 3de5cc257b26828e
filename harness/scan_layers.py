"""The layer file a scan writes (``DIR/layers.py``), ready for ``--layers-from``.

One ``Layer`` per custom Function found: the Function itself is the baseline, imported
from the file that defines it; the grid comes from the shapes the script used (the
most frequent first); the reference and the native candidate are places marked
``FILL IN``. Until they are filled in the file still runs: the reference is a float64
run of the baseline itself, and the baseline and its ``<baseline>-compile`` form are
measured. Known native equivalents of the NumPy/SciPy calls seen are proposed in
comments, never declared silently.

Pure: ``layer_file(scan)`` returns the text; ``infer_grid`` turns shapes into axes.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.scan import FunctionScan, Scan

__all__ = ["PROPOSALS", "Grid", "infer_grid", "layer_file"]

Shape = tuple[int, ...]
Signature = tuple[Shape, ...]

#: NumPy/SciPy function -> the native torch code proposed for it (a comment).
PROPOSALS: dict[str, str] = {
    "scipy.signal.correlate2d": "F.conv2d(x[None, None], w[None, None])[0, 0]  "
    "# 'valid' cross-correlation",
    "scipy.signal.convolve2d": "F.conv2d(x[None, None], w.flip(0, 1)[None, None], "
    "padding=w.shape[-1] - 1)[0, 0]  # 'full' convolution (square w)",
    "scipy.signal.correlate": "F.conv1d / F.conv2d (cross-correlation)",
    "scipy.signal.convolve": "F.conv1d / F.conv2d with the flipped kernel",
    "scipy.ndimage.gaussian_filter": "F.conv2d with a Gaussian kernel (padding_mode='reflect')",
    "scipy.ndimage.uniform_filter": "F.avg_pool2d(..., stride=1, padding=...)",
    "scipy.special.erf": "torch.special.erf(x)",
    "scipy.special.expit": "torch.sigmoid(x)",
    "scipy.special.logsumexp": "torch.logsumexp(x, dim)",
    "numpy.fft.rfft2": "torch.fft.rfft2(x)  # .abs() for a magnitude",
    "numpy.fft.irfft2": "torch.fft.irfft2(x)",
    "numpy.fft.fft": "torch.fft.fft(x)",
    "numpy.fft.ifft": "torch.fft.ifft(x)",
    "numpy.fft.rfft": "torch.fft.rfft(x)",
    "numpy.fft.irfft": "torch.fft.irfft(x)",
    "numpy.fft.fft2": "torch.fft.fft2(x)",
    "numpy.fft.fftn": "torch.fft.fftn(x)",
    "numpy.dot": "torch.matmul(a, b)",
    "numpy.matmul": "torch.matmul(a, b)",
    "numpy.einsum": "torch.einsum(spec, *tensors)",
    "numpy.tanh": "torch.tanh(x)",
    "numpy.exp": "torch.exp(x)",
    "numpy.sum": "x.sum(...)",
}


@dataclass(frozen=True)
class Grid:
    """How a layer's inputs are built from its grid point.

    ``axis`` is ``"n"`` (a size that replaces the dimensions listed in ``positions``
    in every template shape) or ``"shape"`` (an index into ``shapes``, when the shapes
    vary in more than one way)."""

    axis: str
    values: tuple[int, ...]
    template: Signature
    positions: tuple[tuple[int, int], ...] = ()
    shapes: tuple[Signature, ...] = ()
    description: str = ""


def infer_grid(shapes: Sequence[tuple[Signature, int]], top: int = 8) -> Grid:
    """The grid of a layer from the input shapes seen (most frequent first).

    The ``top`` most frequent signatures with the same number of inputs and dimensions
    as the most frequent one are compared. The dimensions that differ among them all
    take the same value in each signature (``[n, n]`` and a fixed ``[3, 3]``): a size
    axis ``n`` over those values. They vary in more than one way: an axis ``shape``
    indexing the signatures. Only one signature: ``n`` over the first input's largest
    dimension(s), at the value seen (widen it with ``--grid n=...``)."""
    if not shapes:
        raise ValueError("no shapes to build a grid from")
    first = shapes[0][0]
    ranks = tuple(len(s) for s in first)
    sigs = [sig for sig, _ in shapes if tuple(len(s) for s in sig) == ranks][:top]
    positions = [(i, j) for i, r in enumerate(ranks) for j in range(r)]
    varying = [(i, j) for i, j in positions if len({sig[i][j] for sig in sigs}) > 1]
    if not varying:
        if first and first[0]:
            big = max(first[0])
            pos = tuple((0, j) for j, d in enumerate(first[0]) if d == big)
            return Grid(
                "n", (big,), first, pos, description="size of the first input's largest dimension"
            )
        return Grid("n", (1,), first, (), description="unused: the inputs have a fixed shape")
    vectors = {tuple(sig[i][j] for sig in sigs) for i, j in varying}
    if len(vectors) == 1:
        i, j = varying[0]
        values = tuple(sorted({sig[i][j] for sig in sigs}))
        return Grid(
            "n",
            values,
            first,
            tuple(varying),
            description="the dimension that varied among the shapes seen",
        )
    return Grid(
        "shape",
        tuple(range(len(sigs))),
        first,
        (),
        tuple(sigs),
        description="index into SHAPES (the signatures seen, most frequent first)",
    )


def _ident(text: str) -> str:
    name = re.sub(r"\W", "_", text)
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = f"_{name}"
    return name


def _shape_code(shape: Shape, input_index: int, grid: Grid) -> str:
    dims = ["n" if (input_index, j) in grid.positions else str(d) for j, d in enumerate(shape)]
    return ", ".join(dims)


def _input_names(f: FunctionScan, count: int) -> list[str]:
    names = [a for a in f.args if a and not a.startswith("*")][:count]
    names += [f"x{i}" for i in range(len(names), count)]
    seen: set[str] = set()
    out = []
    for i, n in enumerate(names):
        n = _ident(n).lstrip("_") or f"x{i}"
        if n in seen:
            n = f"{n}{i}"
        seen.add(n)
        out.append(n)
    return out


def _baseline_name(f: FunctionScan) -> str:
    calls = f.numpy_calls
    if any(c.startswith("scipy.") for c in calls):
        return "scipy"
    return "numpy" if calls else "baseline"


def _floating(dtype: str | None) -> bool:
    return dtype is not None and (dtype.startswith("float") or dtype.startswith("bfloat"))


def _layer_block(f: FunctionScan, var: str, script: str) -> list[str]:
    """The lines of layers.py for one Function: what the scan saw, then (when it takes
    tensors only) the Function loaded as ``var``, its inputs' maker, the reference and
    native candidate to fill in, and the ``Layer`` declared from them."""
    sig = f.shapes[0][0] if f.shapes else ()
    dts = f.dtypes[0][0] if f.dtypes else ()
    lines = _seen_comment(f)
    if any(d is None for d in dts):
        return lines + _not_tensors_comment(f)
    if f.module == "__main__":
        lines.append(f"{var} = _load_file({script!r}, {f.name!r})")
    else:
        root = _module_root(f.file, f.module)
        lines.append(f"{var} = _load_module({f.module!r}, {root!r}, {f.name!r})")
    grid = infer_grid(f.shapes) if sig else Grid("n", (1,), ())
    names = _input_names(f, len(sig))
    lines += _make_inputs_code(f"_{var}_inputs", sig, dts, grid)
    lines += _to_fill_in_code(f, var, names)
    lines += _layer_code(f, var, names, sig, dts, grid)
    return lines


def _seen_comment(f: FunctionScan) -> list[str]:
    """The block's heading: the Function's share of the profile and where it lives,
    and the shapes, dtypes and NumPy/SciPy calls seen (what the grid and the
    proposals below come from)."""
    where = f"{f.file}:{f.line}" if f.line else f.file
    seen = "; ".join(f"{', '.join(str(list(s)) for s in s_)} ×{n}" for s_, n in f.shapes[:6])
    dt_seen = "; ".join(f"{'/'.join(str(d) for d in d_)} ×{n}" for d_, n in f.dtypes[:3])
    return [
        "",
        "",
        f"# --- {f.name}: {100 * f.share:.1f}% of the profiled time, {f.calls} calls "
        f"({f.module}, {where})",
        f"# shapes seen: {seen}",
        f"# dtypes seen: {dt_seen}",
        "# NumPy/SciPy calls seen: " + (", ".join(f.numpy_calls) or "none"),
    ]


def _not_tensors_comment(f: FunctionScan) -> list[str]:
    """Why a Function that takes non-tensor arguments gets no layer: the harness
    calls a layer with tensors only, so it must be wrapped by hand."""
    return [
        f"# {f.name} takes non-tensor arguments: the harness calls a layer with tensors",
        "# only. FILL IN: wrap it, e.g. `lambda x: Fn.apply(x, 3)`, and declare the layer",
        "# by hand (README, 'Benchmark your own layer'); it is left out until then.",
    ]


def _make_inputs_code(
    fn_inputs: str, sig: Signature, dts: Sequence[str | None], grid: Grid
) -> list[str]:
    """The layer's ``make_inputs`` function: tensors of the shapes seen, picked by the
    grid (the index into the signatures seen, or the one dimension that varied)."""
    lines = [
        "",
        "",
        f"def {fn_inputs}(point: Point, gen: torch.Generator) -> tuple[torch.Tensor, ...]:",
        # 2026-12-03: a sqrtm layer the script fed covariance matrices got randn inputs
        # here, and its gradient read wrong (sqrtm of a non-symmetric matrix is complex)
        '    """CHECK: the scan recorded shapes and dtypes, not values; these are drawn at',
        "    random. Where the layer needs structure your script's inputs have (symmetric,",
        "    positive definite, non-negative, indices in a range), draw it here, or the",
        '    correctness checks judge the layer on inputs it never gets."""',
    ]
    if grid.axis == "shape":
        lines.append(
            f"    shapes = {[[list(s) for s in g] for g in grid.shapes]!r}[int(point['shape'])]"
        )
        made = []
        for i, d in enumerate(dts):
            made.append(_tensor_code(f"*shapes[{i}]", d))
    else:
        lines.append("    n = int(point['n'])" if grid.positions else "    del point")
        made = [
            _tensor_code(_shape_code(s, i, grid), d)
            for i, (s, d) in enumerate(zip(sig, dts, strict=True))
        ]
    lines.append("    return (" + ", ".join(made) + ("," if len(made) == 1 else "") + ")")
    return lines


def _to_fill_in_code(f: FunctionScan, var: str, names: Sequence[str]) -> list[str]:
    """The reference and the native candidate, marked FILL IN: stand-ins that keep the
    file running (the baseline in float64; no native), with the native equivalents
    known for the NumPy/SciPy calls seen proposed in comments, never declared."""
    native_var = f"{var}_native"
    params = ", ".join(names)
    # the native candidate replaces forward; autograd derives its backward
    forward_calls = [c for c in f.numpy_forward if not c.startswith("torch.")] or f.numpy_calls
    proposals = [(c, PROPOSALS[c]) for c in forward_calls if c in PROPOSALS]
    lines = [
        "",
        "",
        f"# FILL IN the reference: a trusted float64 implementation of {f.name}'s forward.",
        "# Until then it is the baseline itself run in float64, so outputs and gradients",
        "# are only checked for self-consistency (gradcheck still tests the backward).",
        f"{var}_reference = {var}.apply",
        "",
        f"# FILL IN the native candidate: torch ops computing the same as {f.name}, e.g.",
        f"#     def {native_var}({params}):",
    ]
    if proposals:
        lines.append("#         ...  # proposed from the NumPy/SciPy calls the scan saw:")
        for call, code in proposals:
            lines.append(f"#         # {call} -> {code}")
    else:
        lines.append("#         ...  # no known native equivalent of what the scan saw")
    lines += [
        "# Until it is filled in, only the baseline and its compile form run.",
        f"{native_var} = None",
    ]
    return lines


def _layer_code(
    f: FunctionScan,
    var: str,
    names: Sequence[str],
    sig: Signature,
    dts: Sequence[str | None],
    grid: Grid,
) -> list[str]:
    """The ``Layer`` declaration: the grid's axis, the inputs and their ranks, the
    floating inputs as the differentiable ones (when not all are), the Function as
    the baseline and the native candidate once filled in."""
    lines = [
        "",
        "LAYERS.append(",
        "    Layer(",
        f"        name={_layer_name(f.name)!r},",
        f"        description={f'{f.name} from {f.module}, found by harness scan; grid from the shapes seen'!r},",
        f"        axes=(Axis({grid.axis!r}, {grid.values!r}, {grid.description!r}"
        + (", minimum=0" if grid.axis == "shape" else "")
        + "),),",
        f"        inputs={dict(zip(names, (len(s) for s in sig), strict=True))!r},",
        f"        make_inputs=_{var}_inputs,",
        f"        reference={var}_reference,",
    ]
    grads = [n for n, d in zip(names, dts, strict=True) if _floating(d)]
    if len(grads) != len(names):
        lines.append(f"        grad_inputs={tuple(grads)!r},")
    lines += [
        "        implementations=(",
        f"            baseline({_baseline_name(f)!r}, {var}, description={f'{f.name} as the script uses it'!r}),",
        f"            *_natives({var}_native),",
        "        ),",
        "    )",
        ")",
    ]
    return lines


def _tensor_code(shape: str, dtype: str | None) -> str:
    if _floating(dtype):
        return f"torch.randn({shape}, generator=gen, dtype=torch.float64)"
    torch_dtype = f"torch.{dtype}" if dtype else "torch.int64"
    return f"torch.randint(0, 2, ({shape},), generator=gen, dtype={torch_dtype})"


def _layer_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name)


def _module_root(file: str, module: str) -> str:
    """The folder to put on ``sys.path`` so that ``module`` imports from ``file``."""
    path = Path(file).resolve()
    parts = module.split(".")
    root = path.parent
    if path.stem == "__init__":
        parts = parts[:-1] if parts else parts
    for _ in parts[:-1]:
        root = root.parent
    return str(root)


_HEADER = '''"""Layers found by `python -m harness scan` in {script}.

Written on {date}. Run them with
    python -m harness run --layers-from {here} --layers {names} --scan {folder}

Each layer's baseline is the custom autograd.Function the script ran, imported from the
file that defines it; its grid is the input shapes the script used. Search for
FILL IN: the native candidate (and a trusted reference) are yours to write. Until
then the file runs as it is: the baseline and its <baseline>-compile form are
measured against a float64 run of the baseline itself.
"""
# ruff: noqa: E501

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import torch
import torch.nn.functional as F  # noqa: F401  (for the native candidates to fill in)

from harness import Axis, Layer, Point, baseline, native

LAYERS: list[Layer] = []


def _load_module(module: str, root: str, name: str) -> Any:
    """``module.name``, importing ``module`` with ``root`` on sys.path."""
    if root not in sys.path:
        sys.path.insert(0, root)
    return getattr(importlib.import_module(module), name)


def _load_file(path: str, name: str) -> Any:
    """``name`` from the script at ``path``, imported as a module (not as __main__)."""
    key = "_harness_scan_" + "".join(c if c.isalnum() else "_" for c in path)
    mod = sys.modules.get(key)
    if mod is None:
        spec = importlib.util.spec_from_file_location(key, path)
        assert spec is not None and spec.loader is not None, path
        mod = importlib.util.module_from_spec(spec)
        sys.modules[key] = mod
        spec.loader.exec_module(mod)
    return getattr(mod, name)


def _natives(fn: Any) -> tuple[Any, ...]:
    """The native candidate once filled in (none until then)."""
    return (native("torch", fn),) if fn is not None else ()
'''


def layer_file(scan: Scan, folder: str = "DIR") -> str:
    """The text of ``layers.py`` for a scan's Functions (those with shapes seen)."""
    functions = [f for f in scan.functions if f.calls > 0]
    names = ",".join(_layer_name(f.name) for f in functions)
    text = _HEADER.format(
        script=scan.script,
        date=scan.date or "(unknown date)",
        here=f"{folder}/layers.py",
        names=names,
        folder=folder,
    )
    lines = [text.rstrip("\n")]
    if not scan.guarded and any(f.module == "__main__" for f in functions):
        lines += [
            "",
            '# WARNING: the script defines Functions and has no `if __name__ == "__main__":`',
            "# guard: importing it (below) runs its training. Guard it before running this file.",
        ]
    used: set[str] = set()
    for f in functions:
        var = _ident(f.name)
        while var in used:
            var += "_"
        used.add(var)
        lines += _layer_block(f, var, scan.script)
    return "\n".join(lines) + "\n"
