"""Worked example: a learnable smoothing filter written with ``scipy.ndimage``.

What the user had: an image filter whose k x k kernel is learned, computed by
``scipy.ndimage.correlate(x, w, mode="constant")`` (zero padding, output the same size
as the image) inside a ``torch.autograd.Function`` with a hand-written SciPy backward.

Zero padding is chosen because its adjoint is exact and simple: the gradient with
respect to the image is the same correlation with the kernel flipped (what
``scipy.ndimage.convolve`` computes for an odd kernel), and the gradient with respect
to the kernel correlates the zero-padded image with the output gradient. A ``reflect``
boundary would fold gradient back into the edge pixels and need more care.

The native candidate is ``torch.nn.functional.conv2d`` with ``padding="same"``, which
is the same zero-padded cross-correlation.

    python -m harness run --layers-from examples/ndimage_smooth.py
"""

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage, signal

from harness import Axis, Layer, Point, baseline, native


class NdimageCorrelate(torch.autograd.Function):
    """``scipy.ndimage.correlate(x, w, mode="constant")`` with an exact SciPy backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        out = ndimage.correlate(x.detach().cpu().numpy(), w.detach().cpu().numpy(), mode="constant")
        return torch.from_numpy(out).to(x)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, w = ctx.saved_tensors
        g, xn, wn = (t.detach().cpu().numpy() for t in (grad_out, x, w))
        # d/dx: correlate with the flipped kernel, i.e. convolve (same centre, odd k).
        grad_x = ndimage.convolve(g, wn, mode="constant")
        # d/dw[a, b] = sum_ij g[i, j] * x[i + a - c, j + b - c], zero outside the image.
        c = wn.shape[0] // 2
        grad_w = signal.correlate(np.pad(xn, c), g, mode="valid")
        return torch.from_numpy(grad_x).to(x), torch.from_numpy(grad_w).to(w)


def torch_smooth(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Zero-padded 'same' cross-correlation of an image with an odd k x k kernel."""
    return F.conv2d(x[None, None], w[None, None], padding="same")[0, 0]


def _make_inputs(point: Point, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    n, k = int(point["n"]), int(point["k"])
    x = torch.randn(n, n, generator=gen, dtype=torch.float64)
    w = torch.rand(k, k, generator=gen, dtype=torch.float64) / (k * k)  # a blur-like kernel
    return x, w


def _odd_kernel_fits(point: Point) -> str | None:
    n, k = int(point["n"]), int(point["k"])
    if k % 2 == 0:
        return "k must be odd (the kernel needs a centre pixel)"
    return None if k <= n else "k must be <= n"


LAYER = Layer(
    name="ndimage_smooth",
    description=(
        "Learnable k x k smoothing of an n x n image, zero padding, same-size output: "
        "scipy.ndimage.correlate with a SciPy backward against F.conv2d(padding='same')."
    ),
    axes=(
        Axis("n", (16, 64, 256, 1024), "image side (n x n input)"),
        Axis("k", (3, 7), "kernel side (odd, k x k kernel)"),
    ),
    constraint=_odd_kernel_fits,
    inputs={"x": 2, "w": 2},
    make_inputs=_make_inputs,
    reference=torch_smooth,
    implementations=(
        baseline("scipy", NdimageCorrelate, description="scipy.ndimage.correlate, SciPy backward"),
        native("torch", torch_smooth, description="F.conv2d(padding='same')"),
    ),
    gradcheck_point={"n": 8, "k": 3},
)

LAYERS = [LAYER]
