"""Worked example: an elementwise ``scipy.special`` function as a layer.

What the user had: ``scipy.special.erf`` applied to every element of a tensor, in a
``torch.autograd.Function`` with the NumPy backward ``d/dx erf(x) = 2/sqrt(pi) exp(-x^2)``.

The native candidate is ``torch.special.erf``.

    python -m harness run --layers-from examples/special_erf.py
"""

import math

import numpy as np
import torch
from scipy import special

from harness import Axis, Layer, Point, baseline, native


class ScipyErf(torch.autograd.Function):
    """``scipy.special.erf(x)`` with its NumPy derivative."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.from_numpy(special.erf(x.detach().cpu().numpy())).to(x)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        xn, g = x.detach().cpu().numpy(), grad_out.detach().cpu().numpy()
        return torch.from_numpy(g * (2 / math.sqrt(math.pi)) * np.exp(-xn * xn)).to(x)


def torch_erf(x: torch.Tensor) -> torch.Tensor:
    """``erf(x)`` elementwise."""
    return torch.special.erf(x)


def _make_inputs(point: Point, gen: torch.Generator) -> tuple[torch.Tensor]:
    # Spread over [-3, 3] so both the linear centre and the flat tails are exercised.
    return (torch.randn(int(point["n"]), generator=gen, dtype=torch.float64) * 1.5,)


LAYER = Layer(
    name="special_erf",
    description=(
        "Elementwise erf of a vector: scipy.special.erf with a NumPy backward "
        "against torch.special.erf."
    ),
    axes=(Axis("n", (1_024, 16_384, 262_144, 1_048_576), "number of elements"),),
    inputs={"x": 1},
    make_inputs=_make_inputs,
    reference=torch_erf,
    implementations=(
        baseline("scipy", ScipyErf, description="scipy.special.erf, NumPy backward"),
        native("torch", torch_erf, description="torch.special.erf"),
    ),
    gradcheck_point={"n": 16},
)

LAYERS = [LAYER]
