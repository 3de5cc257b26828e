"""Numerical deviation of outputs and gradients from the float64 reference.

The reference is the layer's ``reference`` function run in float64 on the CPU, and
its gradients by autograd for a seeded random upstream gradient (not ones: ones hide
errors that cancel). For one tensor:

- ``max_abs_err`` = max |a - r|;
- ``max_rel_err`` = max |a - r| / |r| over the entries where |r| > 1e-3 * max|r|
  (elementwise, skipping entries too close to zero for a relative error to mean much);
- ``within_tol``: every entry satisfies |a - r| <= rtol * |r| + atol * max|r|, with the
  dtype's ``rtol`` (``RTOL``) and atol = rtol / 10, scaled by the tensor's magnitude.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = ["RTOL", "TensorDeviation", "compare_tensors", "gradients", "run_gradcheck"]

#: Relative tolerance per dtype. float64 is strict on purpose: a float64 layer that
#: silently computes a gradient in float32 is a defect worth seeing.
RTOL: dict[str, float] = {
    "float64": 1e-9,
    "float32": 1e-4,
    "float16": 1e-2,
    "bfloat16": 5e-2,
}


@dataclass(frozen=True)
class TensorDeviation:
    tensor: str
    max_abs_err: float
    max_rel_err: float
    within_tol: bool


def compare_tensors(
    name: str, actual: torch.Tensor, ref: torch.Tensor, dtype: str
) -> TensorDeviation:
    """Deviation of ``actual`` from ``ref`` (compared in float64 on the CPU)."""
    a = actual.detach().to("cpu", torch.float64)
    r = ref.detach().to("cpu", torch.float64)
    if a.shape != r.shape:
        raise ValueError(
            f"{name}: shape {tuple(a.shape)} differs from the reference's {tuple(r.shape)}"
        )
    if r.numel() == 0:
        return TensorDeviation(name, 0.0, 0.0, True)
    diff = (a - r).abs()
    scale = float(r.abs().max())
    if not torch.isfinite(a).all():
        return TensorDeviation(name, float("inf"), float("inf"), False)
    max_abs = float(diff.max())
    mask = r.abs() > 1e-3 * scale
    max_rel = (
        float((diff[mask] / r.abs()[mask]).max())
        if bool(mask.any())
        else (0.0 if max_abs == 0 else float("inf"))
    )
    rtol = RTOL[dtype]
    ok = bool((diff <= rtol * r.abs() + (rtol / 10) * scale).all())
    return TensorDeviation(name, max_abs, max_rel, ok)


def gradients(
    output: torch.Tensor, leaves: Sequence[torch.Tensor], grad_output: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """Gradients of ``output`` w.r.t. ``leaves`` for ``grad_output`` (graph kept)."""
    grads = torch.autograd.grad(
        output, list(leaves), grad_output.to(output.dtype), retain_graph=True, allow_unused=True
    )
    return tuple(
        g if g is not None else torch.zeros_like(t) for g, t in zip(grads, leaves, strict=True)
    )


def run_gradcheck(
    fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor], grad_mask: Sequence[bool]
) -> tuple[bool, str]:
    """``torch.autograd.gradcheck`` in float64; returns (passed, why not)."""
    args = [
        t.detach().to(torch.float64).requires_grad_(bool(m))
        for t, m in zip(inputs, grad_mask, strict=True)
    ]
    try:
        ok = torch.autograd.gradcheck(
            fn, args, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True
        )
    except Exception as exc:
        text = str(exc).strip().splitlines()
        return False, f"{type(exc).__name__}: {text[0] if text else ''}"
    return bool(ok), ""
