"""Worked example of a layer with a WRONG gradient, kept wrong on purpose.

What the user had: ``tanh`` in NumPy, in a ``torch.autograd.Function`` whose backward
returns ``2 * (1 - tanh(x)^2) * grad``: twice the true derivative (a slip of the kind
that is easy to make and that training alone rarely reveals). The forward is right.

The native candidate is ``torch.tanh``. The harness's gradient check compares the
baseline's backward with autograd of the reference, so its report should say to fix
the gradient first: timing a port is pointless while the layer computes the wrong
thing. Use this file to see what that report looks like; do not copy the backward.

    python -m harness run --layers-from examples/bad_gradient.py
"""

import numpy as np
import torch

from harness import Axis, Layer, Point, baseline, native


class BadNumpyTanh(torch.autograd.Function):
    """``numpy.tanh`` with a backward that is deliberately 2x the true gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = torch.from_numpy(np.tanh(x.detach().cpu().numpy())).to(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        yn, g = y.detach().cpu().numpy(), grad_out.detach().cpu().numpy()
        # BUG, intentional: the derivative of tanh is (1 - y^2), not 2 * (1 - y^2).
        return torch.from_numpy(2 * (1 - yn * yn) * g).to(y)


def torch_tanh(x: torch.Tensor) -> torch.Tensor:
    """``tanh(x)`` elementwise."""
    return torch.tanh(x)


def _make_inputs(point: Point, gen: torch.Generator) -> tuple[torch.Tensor]:
    return (torch.randn(int(point["n"]), generator=gen, dtype=torch.float64),)


LAYER = Layer(
    name="bad_tanh",
    description=(
        "Elementwise tanh whose NumPy backward is deliberately 2x the true "
        "gradient (a test of the harness's gradient check) against torch.tanh."
    ),
    axes=(Axis("n", (1_024, 16_384, 262_144), "number of elements"),),
    inputs={"x": 1},
    make_inputs=_make_inputs,
    reference=torch_tanh,
    implementations=(
        baseline("numpy", BadNumpyTanh, description="numpy.tanh, backward off by 2x"),
        native("torch", torch_tanh, description="torch.tanh"),
    ),
    gradcheck_point={"n": 16},
)

LAYERS = [LAYER]
