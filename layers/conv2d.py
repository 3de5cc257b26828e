"""The seed's layer with learnable weights: SciPy cross-correlation plus a bias."""

import torch

from harness import Axis, Layer, Point, baseline, native
from harness_layers.native import torch_conv2d
from harness_layers.seed import ScipyConv2d


def _make_inputs(point: Point, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    n, k = int(point["n"]), int(point["k"])
    return (
        torch.randn(n, n, generator=gen, dtype=torch.float64),
        torch.randn(k, k, generator=gen, dtype=torch.float64),
        torch.randn(1, 1, generator=gen, dtype=torch.float64),
    )


def _k_fits(point: Point) -> str | None:
    return None if int(point["k"]) <= int(point["n"]) else "k must be <= n"


def _scipy_module(point: Point) -> ScipyConv2d:
    k = int(point["k"])
    return ScipyConv2d(k, k)


LAYER = Layer(
    name="conv2d",
    description=(
        "'valid' 2-D cross-correlation of an n x n image with a learnable k x k filter "
        "plus a scalar bias: the tutorial's ScipyConv2d (scipy.signal.correlate2d) "
        "against torch.nn.functional.conv2d with autograd."
    ),
    axes=(
        Axis("n", (8, 16, 32, 64, 128, 256, 512, 1024), "image side (n x n input)"),
        Axis("k", (3, 7), "filter side (k x k filter)"),
    ),
    constraint=_k_fits,
    inputs={"x": 2, "filter": 2, "bias": 2},
    make_inputs=_make_inputs,
    reference=torch_conv2d,
    implementations=(
        baseline(
            "scipy", module=_scipy_module, description="seed ScipyConv2d module (scipy.signal)"
        ),
        native("torch", torch_conv2d, description="torch.nn.functional.conv2d + bias"),
    ),
    gradcheck_point={"n": 12, "k": 3},
)
