"""The seed's parameter-free layer: ``|rfft2(x)|`` through NumPy (``BadFFTFunction``)."""

import torch

from harness import Axis, Layer, Point, baseline, native
from harness_layers.native import torch_fft
from harness_layers.seed import BadFFTFunction


def _make_inputs(point: Point, gen: torch.Generator) -> tuple[torch.Tensor]:
    n = int(point["n"])
    return (torch.randn(n, n, generator=gen, dtype=torch.float64),)


LAYER = Layer(
    name="fft",
    description=(
        "Magnitude of the 2-D real FFT, |rfft2(x)| of an n x n image: the tutorial's "
        "BadFFTFunction (NumPy rfft2 forward, irfft2 backward, which is not its gradient) "
        "against torch.fft.rfft2(x).abs() with autograd."
    ),
    axes=(Axis("n", (8, 16, 32, 64, 128, 256, 512, 1024), "image side (n x n input)"),),
    inputs={"x": 2},
    make_inputs=_make_inputs,
    reference=torch_fft,
    implementations=(
        baseline("numpy", BadFFTFunction, description="seed BadFFTFunction (numpy.fft)"),
        native("torch", torch_fft, description="torch.fft.rfft2(x).abs()"),
    ),
    gradcheck_point={"n": 8},
)
