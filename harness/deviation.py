"""Numerical deviation of outputs and gradients from the float64 reference.

The reference is the layer's ``reference`` function run in float64 on the CPU, and
its gradients by autograd for a seeded random upstream gradient (not ones: ones hide
errors that cancel). For one tensor:

- ``max_abs_err`` = max |a - r|;
- ``max_rel_err`` = max |a - r| / |r| over the entries where |r| > 1e-3 * max|r|
  (elementwise, skipping entries too close to zero for a relative error to mean much);
- ``within_tol``: every entry satisfies |a - r| <= rtol * |r| + rtol / 10 * max|r|,
  with the dtype's ``rtol`` (``harness.dtypes.RTOL``): an absolute tolerance scaled by
  the tensor's magnitude. ``within_tolerance`` is that rule alone; it is the one
  tolerance of the harness (the capability checks use it too).

A random layer (a dropout mask from NumPy's global generator) matches nothing, not
even itself: ``seeded`` makes it one function of its inputs, for gradcheck and the
capability checks, by seeding the global generators before each call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harness.dtypes import RTOL, cast_input, differentiable_dtype, dtype_name, torch_dtype
from harness.errors import describe
from harness.outputs import Outputs, as_tuple, differentiable, output_names, several
from harness.protocol import FLOAT32_ROUNDING, INTEGER_TRUNCATION, SHORT_OF_FLOAT64

__all__ = [
    "RANDOM_LOOKS",
    "RTOL",
    "TensorDeviation",
    "compare_outputs",
    "compare_tensors",
    "eager_mismatch",
    "gradients",
    "integer_output",
    "judged_dtype",
    "on_pattern",
    "output_mismatch",
    "precision_mismatch",
    "run_gradcheck",
    "seed_globals",
    "seeded",
    "upstream_gradient",
    "within_tolerance",
]


@dataclass(frozen=True)
class TensorDeviation:
    tensor: str
    max_abs_err: float
    max_rel_err: float
    within_tol: bool


def compare_tensors(
    name: str, actual: torch.Tensor, ref: torch.Tensor, dtype: str
) -> TensorDeviation:
    """Deviation of ``actual`` from ``ref`` (compared in float64 on the CPU).

    A non-finite entry in ``actual`` where the reference is finite makes both errors
    infinite and ``within_tol`` false; non-finite entries only where the reference has
    them too (NaN/inf in the inputs) make ``max_abs_err`` infinite and ``max_rel_err``
    NaN (``harness.report.faults`` words both).
    """
    # complex compared as complex: a cast to float64 drops the imaginary part
    wide = torch.complex128 if actual.is_complex() or ref.is_complex() else torch.float64
    a = _dense(actual).to("cpu", wide)
    r = _dense(ref).to("cpu", wide)
    if a.shape != r.shape:
        raise ValueError(
            f"{name}: shape {tuple(a.shape)} differs from the reference's {tuple(r.shape)}"
        )
    if r.numel() == 0:
        return TensorDeviation(name, 0.0, 0.0, True)
    if not torch.isfinite(a).all():
        if bool((torch.isfinite(a) | ~torch.isfinite(r)).all()):
            # non-finite only where the float64 reference is too: the inputs hold
            # NaN/inf. No relative error (empty); the report says "inputs contain NaN/inf"
            same = within_tolerance(a, r, dtype)
            return TensorDeviation(name, float("inf"), float("nan"), same)
        return TensorDeviation(name, float("inf"), float("inf"), False)
    diff = (a - r).abs()
    scale = float(r.abs().max())
    max_abs = float(diff.max())
    mask = r.abs() > 1e-3 * scale
    max_rel = (
        float((diff[mask] / r.abs()[mask]).max())
        if bool(mask.any())
        else (0.0 if max_abs == 0 else float("inf"))
    )
    within = within_tolerance(a, r, dtype)
    if not within and scale > 0 and bool((~mask).any()):
        # out of tolerance where the reference is near 0, which the ratio above skips: a
        # "max relative error 1.9e-05 ✗" hid 0.29 against a reference of 0 (2026-12-03);
        # those entries count against the tensor's largest reference entry
        max_rel = max(max_rel, float(diff[~mask].max()) / scale)
    return TensorDeviation(name, max_abs, max_rel, within)


def compare_outputs(actual: object, ref: object, dtype: str) -> list[TensorDeviation]:
    """Each output's deviation from the reference's (``compare_tensors``), named
    ``output`` or ``output[0]``, ``output[1]``, ...: several outputs are each held to
    a tolerance scaled by their own magnitude (``harness.outputs``). ``ValueError`` if
    the two return different numbers of tensors (or shapes)."""
    outs, refs = as_tuple(actual), as_tuple(ref)
    if len(outs) != len(refs):
        raise ValueError(f"returns {len(outs)} outputs where the reference returns {len(refs)}")
    names = output_names(len(outs))
    return [compare_tensors(n, a, r, dtype) for n, a, r in zip(names, outs, refs, strict=True)]


def _dense(t: torch.Tensor) -> torch.Tensor:
    """``t`` detached, as a strided tensor: a sparse gradient (a sparse input's, which
    autograd gives only where the input has entries, as torch's own ops do) is compared
    entry by entry with the reference's, its unspecified entries as zeros."""
    t = t.detach()
    return t.to_dense() if t.layout != torch.strided else t


#: More calls that look for randomness where one repeat agreed but the outputs are off
#: what they are held to (the setup's reference, the capability matrix's eager call):
#: one repeat can agree by chance (2026-12-02: ARPACK's eigenvector sign, drawn by its
#: own generator, agreed in 5 calls of 6).
RANDOM_LOOKS = 3


def within_tolerance(actual: torch.Tensor, ref: torch.Tensor, dtype: str) -> bool:
    """Whether ``actual`` matches ``ref`` within ``dtype``'s tolerance: everywhere
    |a - r| <= rtol * |r| + rtol / 10 * max|r|, with ``rtol = RTOL[dtype]``.

    Compared in float64 (complex128 if either is complex) on the CPU; ``ValueError`` if
    the shapes differ. An empty tensor matches; a non-finite entry matches only an
    identical one (the same infinity, or NaN against NaN), and ``max|r|`` is taken over
    the finite entries of ``ref``.
    """
    wide = torch.complex128 if actual.is_complex() or ref.is_complex() else torch.float64
    a = _dense(actual).to("cpu", wide)
    r = _dense(ref).to("cpu", wide)
    if a.shape != r.shape:
        raise ValueError(f"shape {tuple(a.shape)} differs from the reference's {tuple(r.shape)}")
    if r.numel() == 0:
        return True
    same = (a == r) | (torch.isnan(a) & torch.isnan(r))
    finite = torch.isfinite(a) & torch.isfinite(r)
    if not bool((same | finite).all()):
        return False
    a, r = torch.where(finite, a, 0), torch.where(finite, r, 0)
    scale = float(r.abs().max())
    rtol = RTOL[dtype]
    return bool(((a - r).abs() <= rtol * r.abs() + (rtol / 10) * scale).all())


def gradients(
    output: Outputs, leaves: Sequence[torch.Tensor], grad_output: Outputs
) -> tuple[torch.Tensor, ...]:
    """Gradients of ``output`` (one tensor or several, ``harness.outputs``) w.r.t.
    ``leaves`` for ``grad_output`` (graph kept)."""
    outs, grads_out = differentiable(output, grad_output)
    grads = torch.autograd.grad(outs, list(leaves), grads_out, retain_graph=True, allow_unused=True)
    return tuple(
        g if g is not None else torch.zeros_like(t) for g, t in zip(grads, leaves, strict=True)
    )


def upstream_gradient(output: Outputs, seed: int) -> Outputs:
    """The seeded random upstream gradient of ``output``, drawn in float64 and cast to
    ``output``'s dtype and device: the same values in every process and for every
    implementation of a point (not ones: ones hide errors that cancel). For several
    outputs, a tuple: one gradient each, drawn one after the other from one generator
    (the first is the one a single output gets)."""
    gen = torch.Generator().manual_seed(seed)
    grads = tuple(
        torch.randn(t.shape, generator=gen, dtype=torch.float64).to(
            device=t.device, dtype=t.dtype if t.is_floating_point() or t.is_complex() else None
        )
        for t in as_tuple(output)
    )
    return grads if several(output) else grads[0]


def run_gradcheck(
    fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor], grad_mask: Sequence[bool]
) -> tuple[bool, str]:
    """``torch.autograd.gradcheck`` in float64; returns (passed, why not).

    With a sparse input the check is ``masked`` first: only the input's specified
    entries are perturbed, the gradient torch's own sparse ops give (``to_dense``'s
    backward, for one). Unmasked, gradcheck perturbs every zero too and failed a right
    masked backward (2026-11-30: a public SciPy ``spsolve`` Function read as "fix the
    gradient first"); a backward that gives the dense gradient fails masked and passes
    unmasked, and passes here too. Its check that the backward takes an undefined
    gradient is left out there: torch's gradcheck cannot run it on sparse gradients
    (``aten::eq`` has no sparse kernel) and failed the same right backward with that
    error."""
    args = [
        cast_input(t, torch.float64).requires_grad_(bool(m))
        for t, m in zip(inputs, grad_mask, strict=True)
    ]
    sparse = any(t.layout != torch.strided for t in args)
    why = ""
    # a sparse input's gradient has two conventions: on its entries only (torch's own
    # sparse ops) or every entry of the dense matrix it stands for (2026-12-03:
    # torch-fem's spsolve returns a dense gradient, right to 1e-16, and failed masked);
    # a backward right in either is right
    for masked in (True, False) if sparse else (False,):
        try:
            ok = torch.autograd.gradcheck(
                fn,
                args,
                eps=1e-6,
                atol=1e-5,
                rtol=1e-3,
                raise_exception=True,
                masked=masked,
                check_undefined_grad=not sparse,
            )
        except Exception as exc:
            why = why or describe(exc)
            continue
        if ok:
            return True, ""
    return False, why or "gradcheck returned False"


def on_pattern(grad: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``grad`` of the input ``like`` on ``like``'s specified entries only, where ``like``
    is sparse (else ``grad`` as is): the entries both conventions of a sparse input's
    gradient define (``run_gradcheck``). Off them, a dense gradient holds what the
    masked one leaves out, and compared entry by entry it read as wrong (0.29 against
    the reference's 0, 2026-12-03)."""
    if like.layout == torch.strided:
        return grad
    mask = like.detach()
    mask = (mask if mask.layout == torch.sparse_coo else mask.to_sparse()).coalesce()
    return grad.detach().sparse_mask(mask.to(grad.device))


def output_mismatch(out: object, inputs: Sequence[torch.Tensor], shape: Any = None) -> str | None:
    """How an output differs from what its inputs ask for, or None.

    A layer should return the floating dtype and the device of its floating inputs
    (and the reference's ``shape``). ``torch.Tensor(array)`` or ``torch.FloatTensor``
    of a NumPy result always makes float32, a common defect of NumPy bridges that a
    float32 run hides and gradcheck (float64) then reports as a wrong gradient. For
    several outputs (``harness.outputs``; ``shape`` then a list of one shape per
    output), each is checked, and named (``output[1]: float32 for float64 input``)."""
    if not several(out):
        return _tensor_mismatch(out, inputs, shape)
    outs = as_tuple(out)
    if shape is not None and all(isinstance(n, int) for n in shape):
        return f"{len(outs)} outputs where the reference returns one"
    shapes = list(shape) if shape is not None else [None] * len(outs)
    if len(shapes) != len(outs):
        return f"{len(outs)} outputs where the reference returns {len(shapes)}"
    return _each_output(lambda o, sh: _tensor_mismatch(o, inputs, sh), outs, shapes)


def _each_output(
    finding: Callable[[Any, Any], str | None], outs: Sequence[Any], others: Sequence[Any]
) -> str | None:
    """``finding`` of each output against its counterpart in ``others``, each named
    (``output[1]: ...``) and joined, or None where none has one."""
    found = [
        f"{name}: {how}"
        for name, o, other in zip(output_names(len(outs)), outs, others, strict=True)
        if (how := finding(o, other))
    ]
    return "; ".join(found) or None


def _tensor_mismatch(
    out: object, inputs: Sequence[torch.Tensor], shape: Sequence[int] | None
) -> str | None:
    """``output_mismatch`` of one tensor."""
    if not isinstance(out, torch.Tensor):
        return f"{type(out).__name__}, not a tensor"
    floats = [t for t in inputs if isinstance(t, torch.Tensor) and t.is_floating_point()]
    found = []
    if floats and out.is_floating_point() and out.dtype != floats[0].dtype:
        found.append(
            f"{str(out.dtype).removeprefix('torch.')} for "
            f"{str(floats[0].dtype).removeprefix('torch.')} input ({_dtype_cause(out.dtype, floats[0].dtype)})"
        )
    if floats and out.device != floats[0].device:
        found.append(f"a tensor on {out.device} for input on {floats[0].device}")
    if shape is not None and tuple(out.shape) != tuple(shape):
        found.append(f"shape {tuple(out.shape)} where the reference has {tuple(shape)}")
    return "; ".join(found) or None


def integer_output(out: object, ref: object) -> str | None:
    """How an output is integer where the reference's is floating, or None (several
    outputs: each, named). Its values are then truncated: a result array made like an
    integer input (``np.zeros_like(seg)``) keeps the input's dtype. 2026-12-02: a public
    signed distance map (LIVIAETS/boundary-loss ``one_hot2dist``) called on an int32
    one-hot returned int32 distances, 1.0 off, and only "outputs disagree" was said."""
    if several(out) and several(ref) and len(as_tuple(out)) == len(as_tuple(ref)):
        return _each_output(integer_output, as_tuple(out), as_tuple(ref))
    if not isinstance(out, torch.Tensor) or not isinstance(ref, torch.Tensor):
        return None
    if not differentiable_dtype(ref) or differentiable_dtype(out):
        return None
    return (
        f"{str(out.dtype).removeprefix('torch.')} where the reference returns "
        f"{str(ref.dtype).removeprefix('torch.')}: {INTEGER_TRUNCATION} (a result array "
        "made like an integer input, `np.zeros_like(x)` or `np.empty_like(x)`, keeps the "
        "input's dtype; give it a floating `dtype=`)"
    )


#: The relative errors of a float64 output that look like float32 rounding (float32's
#: unit roundoff is 6e-8): from well above float64's to well below what a float32
#: algorithm of few steps leaves.
_FLOAT32_NOISE = (1e-8, 1e-5)


#: The share of a float64 output's finite values that must be float32 numbers exactly
#: (``x == float64(float32(x))``) to say it was cast back from float32: a value computed
#: in float64 is one with odds of about 2^-29.
_FLOAT32_EXACT = 0.9


def eager_mismatch(out: Any, ref: Any) -> str | None:
    """``None`` if ``out`` (a converted form's: compiled, scripted, exported) matches
    the eager ``ref`` within the tolerance of ``ref``'s dtype (``within_tolerance``),
    else what differs; for several outputs, each against its own (``harness.outputs``),
    the first that differs named. The capability matrix and the ONNX exporter's
    fallback (``harness.forms``) hold a form to eager by this one rule."""
    if several(ref):
        refs = as_tuple(ref)
        got = len(out) if isinstance(out, tuple | list) else 1
        if got != len(refs):
            return f"is {got} tensor{'s' if got != 1 else ''}, eager gives {len(refs)}"
        for name, mine, theirs in zip(output_names(len(refs)), out, refs, strict=True):
            problem = _eager_tensor_mismatch(mine, theirs)
            if problem is not None:
                return f"{problem}, in {name}"
        return None
    return _eager_tensor_mismatch(out, ref)


def _eager_tensor_mismatch(out: Any, ref: torch.Tensor) -> str | None:
    """``eager_mismatch`` of one output."""
    if isinstance(out, tuple | list) and len(out) == 1:
        out = out[0]
    if not isinstance(out, torch.Tensor):
        try:
            out = torch.as_tensor(np.asarray(out))
        except Exception:
            return f"is a {type(out).__name__}, not a tensor"
    if tuple(out.shape) != tuple(ref.shape):
        return f"has shape {tuple(out.shape)}, eager gives {tuple(ref.shape)}"
    try:
        dtype = dtype_name(ref.dtype)
    except ValueError:  # not a floating dtype (an integer output): be strict
        dtype = "float64"
    out, ref = out.detach().cpu(), ref.detach().cpu()
    if out.layout != torch.strided or ref.layout != torch.strided:
        out, ref = out.to_dense(), ref.to_dense()
    # NaN where eager has NaN is agreement (2026-11-30: a float32 Sinkhorn that never
    # converged read "differs from eager (max rel err nan)"); elsewhere, say where
    mine, theirs = out.isnan(), ref.isnan()
    if not torch.equal(mine, theirs):
        extra, missing = int((mine & ~theirs).sum()), int((theirs & ~mine).sum())
        if extra:
            return f"gives NaN at {_entries(extra)} where eager does not"
        return f"gives numbers at {_entries(missing)} where eager gives NaN"
    if bool(mine.any()):
        out, ref = out[~mine], ref[~theirs]
    if within_tolerance(out, ref, dtype):
        return None
    wide = torch.complex128 if ref.is_complex() or out.is_complex() else torch.float64
    # the same infinity on both sides is no difference (inf - inf is NaN)
    diff = (out.to(wide) - ref.to(wide)).abs().nan_to_num(nan=0.0)
    want = ref.to(wide).abs()
    want = want.where(want.isfinite(), 0.0)
    scale = float(want.max()) if want.numel() else 0.0
    big = want > 1e-3 * scale
    if scale > 0 and bool(big.any()):
        rel = float((diff[big] / want[big]).max())
    else:
        rel = float("inf") if float(diff.max()) > 0 else float("nan")
    return f"differs from eager (max rel err {rel:.2g})"


def _entries(count: int) -> str:
    return f"{count:,} entr{'y' if count == 1 else 'ies'}"


def judged_dtype(out: object, dtype: str) -> str:
    """The dtype a layer's outputs and gradients are held to: the run's ``dtype``, or the
    narrower floating dtype the layer returns (float32 for float64 input, through
    ``torch.Tensor(array)``). A layer can be right only to its own precision; that it
    narrows the dtype is a finding of its own (``output_mismatch``), a caution, not a
    wrong gradient (2026-12-03: s-vae's IveFunction in a float64 run, its gradients
    3.1e-05 off, within float32's tolerance, read "fix the gradient first")."""
    if dtype not in RTOL:
        return dtype
    floating = [
        t.dtype for t in as_tuple(out) if isinstance(t, torch.Tensor) and t.is_floating_point()
    ]
    narrowest = min(floating, key=lambda d: (torch.finfo(d).bits, str(d)), default=None)
    if narrowest is None or torch.finfo(narrowest).bits >= torch.finfo(torch_dtype(dtype)).bits:
        return dtype
    try:
        return dtype_name(narrowest)
    except ValueError:  # a dtype with no tolerance of its own: the run's
        return dtype


def precision_mismatch(out: object, ref: object) -> str | None:
    """How a float64 output's error against the float64 reference says it is short of
    float64's accuracy, and why, or None (several outputs: each, named). Either way
    gradcheck, whose finite differences (eps 1e-6) need float64 accuracy, cannot judge
    its gradient.

    Which cause: where its values are float32 numbers exactly, it was computed in
    float32 and cast back. 2026-11-30: a public mesh Laplacian that applied its SciPy
    matrix through ``torch.Tensor(Lx)`` returned float64 with errors of 5.9e-8, and
    gradcheck failed it: the report said its gradient was wrong. Elsewhere, it is an
    iterative method's tolerance (or float32 work that float64 arithmetic after it
    hides): 2026-12-01, PROPACK's truncated SVD (peps-torch) returned a ``U`` 1.7e-8
    off in float64, and was told it had computed in float32 through
    ``torch.Tensor(array)``."""
    if several(out) and several(ref) and len(as_tuple(out)) == len(as_tuple(ref)):
        return _each_output(precision_mismatch, as_tuple(out), as_tuple(ref))
    if not isinstance(ref, torch.Tensor):
        return None
    if not isinstance(out, torch.Tensor) or out.dtype != torch.float64:
        return None
    if out.shape != ref.shape or out.layout != torch.strided or ref.layout != torch.strided:
        return None
    err = compare_tensors("output", out, ref, "float64").max_rel_err
    if not _FLOAT32_NOISE[0] <= err <= _FLOAT32_NOISE[1]:  # NaN is neither
        return None
    values = out.detach()[torch.isfinite(out.detach())]
    exact = float((values.float().double() == values).double().mean()) if values.numel() else 0
    if exact >= _FLOAT32_EXACT:
        return (
            f"{FLOAT32_ROUNDING} (max relative error {err:.1e} against the reference, "
            f"where float32 rounds at 6.0e-08, and {exact:.0%} of its values are float32 "
            "numbers exactly: computed in float32 inside and cast back, through "
            "`torch.Tensor(array)`, `.float()` or a float32 array on the way to NumPy)"
        )
    return (
        f"{SHORT_OF_FLOAT64} (max relative error {err:.1e} against the reference, where "
        "float64 rounds at 1.1e-16; its values are not float32 numbers: likely an "
        "iterative method's tolerance, such as a Lanczos, ARPACK or PROPACK solver's, or "
        "a fixed number of iterations; else float32 data or work inside that float64 "
        "arithmetic after it hides, such as constants, knots or buffers stored in float32)"
    )


def _dtype_cause(out: torch.dtype, given: torch.dtype) -> str:
    """The likely cause of a floating output of dtype ``out`` for input of ``given``."""
    if torch.finfo(out).bits < torch.finfo(given).bits:
        return (
            "likely `torch.Tensor(array)`, `torch.FloatTensor` or `.float()` on the way "
            "back from NumPy; `torch.from_numpy` keeps the dtype"
        )
    if torch.finfo(out).bits > torch.finfo(given).bits:
        # 2026-11-30: scipy.linalg.logm and POT's sinkhorn (np.asarray(..., float64))
        # were told to use torch.from_numpy, which is what kept their float64
        return (
            "likely NumPy/SciPy computing in the wider dtype: a routine that works in "
            "float64 whatever it is given, `np.asarray(..., dtype=np.float64)` or a float64 "
            "constant, kept by `torch.from_numpy`; `.to(x.dtype)` on the way back casts it"
        )
    return "a dtype of the same width, cast on the way back from NumPy"


def seed_globals(seed: int = 0) -> None:
    """Seed NumPy's, Python's and torch's global generators: before each call, a random
    layer is one function of its inputs (its draw fixed)."""
    import random

    import numpy as np

    np.random.seed(seed)
    random.seed(seed)
    torch.manual_seed(seed)


def seeded(fn: Callable[..., Any], seed: int = 0) -> Callable[..., Any]:
    """``fn`` with the global generators seeded before each call (``seed_globals``), so
    that gradcheck judges a random layer's gradient and not its randomness."""

    def call(*args: Any) -> Any:
        seed_globals(seed)
        return fn(*args)

    return call
