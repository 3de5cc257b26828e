"""Worked example: a fully connected layer written in NumPy.

What the user had: ``y = x @ W.T + b`` as a ``torch.autograd.Function`` whose forward
and backward are NumPy matrix products (the layout of ``torch.nn.Linear``: ``W`` is
``(out_features, in_features)``, ``b`` is ``(out_features,)``).

The native candidate is ``torch.nn.functional.linear``.

    python -m harness run --layers-from examples/linear_numpy.py
"""

import torch
import torch.nn.functional as F

from harness import Axis, Layer, Point, baseline, native


class NumpyLinear(torch.autograd.Function):
    """``x @ W.T + b`` in NumPy, with the NumPy backward for ``x``, ``W`` and ``b``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        xn, wn, bn = (t.detach().cpu().numpy() for t in (x, weight, bias))
        return torch.from_numpy(xn @ wn.T + bn).to(x)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x, weight = ctx.saved_tensors
        g, xn, wn = (t.detach().cpu().numpy() for t in (grad_out, x, weight))
        grad_x = g @ wn  # (batch, out) @ (out, in)
        grad_w = g.T @ xn  # (out, batch) @ (batch, in)
        grad_b = g.sum(axis=0)
        return tuple(torch.from_numpy(a).to(x) for a in (grad_x, grad_w, grad_b))


def torch_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T + bias``."""
    return F.linear(x, weight, bias)


def _make_inputs(point: Point, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    batch, fin, fout = int(point["batch"]), int(point["in_features"]), int(point["out_features"])
    bound = fin**-0.5  # the scale nn.Linear initialises its parameters with
    return (
        torch.randn(batch, fin, generator=gen, dtype=torch.float64),
        (torch.rand(fout, fin, generator=gen, dtype=torch.float64) * 2 - 1) * bound,
        (torch.rand(fout, generator=gen, dtype=torch.float64) * 2 - 1) * bound,
    )


LAYER = Layer(
    name="numpy_linear",
    description=(
        "Fully connected layer x @ W.T + b: NumPy matmul forward and backward "
        "against torch.nn.functional.linear."
    ),
    axes=(
        Axis("batch", (16, 128, 1024), "rows of x"),
        Axis("in_features", (64, 512), "columns of x"),
        Axis("out_features", (64, 512), "rows of W, length of b"),
    ),
    size_axis="batch",
    inputs={"x": 2, "weight": 2, "bias": 1},
    make_inputs=_make_inputs,
    reference=torch_linear,
    implementations=(
        baseline("numpy", NumpyLinear, description="numpy matmul forward and backward"),
        native("torch", torch_linear, description="F.linear"),
    ),
    gradcheck_point={"batch": 3, "in_features": 4, "out_features": 5},
)

LAYERS = [LAYER]
