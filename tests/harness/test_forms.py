"""Forms of a module-declared native candidate: parameters bound from the layer's inputs."""

from __future__ import annotations

import pytest
import torch

from harness import Axis, Layer, baseline, native
from harness.deviation import compare_tensors
from harness.forms import build
from layers.native import torch_conv2d
from layers.seed import ScipyConv2dFunction


class Conv(torch.nn.Module):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.filter = torch.nn.Parameter(torch.randn(k, k))
        self.bias = torch.nn.Parameter(torch.randn(1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch_conv2d(x, self.filter, self.bias)


LAYER = Layer(
    name="module_conv",
    description="a native candidate declared as a module",
    axes=(Axis("n", (10,)), Axis("k", (3,))),
    inputs={"x": 2, "filter": 2, "bias": 2},
    make_inputs=lambda p, g: (
        torch.randn(p["n"], p["n"], generator=g),
        torch.randn(p["k"], p["k"], generator=g),
        torch.randn(1, 1, generator=g),
    ),
    reference=torch_conv2d,
    implementations=(
        baseline("scipy", ScipyConv2dFunction),
        native("mod", module=lambda p: Conv(int(p["k"]))),
    ),
)
POINT = {"n": 10, "k": 3}


@pytest.mark.slow
@pytest.mark.parametrize("form", ["mod", "mod-compile", "mod-onnxruntime"])
def test_module_candidate_forms_use_the_given_parameters(form: str) -> None:
    inputs = LAYER.make(POINT, torch.float32, "cpu", seed=0)
    built = build(LAYER, LAYER.implementation(form), POINT, inputs, "float32", 1, "cpu", [True] * 3)
    with torch.no_grad():
        assert compare_tensors(
            "output", built.fn(*inputs), torch_conv2d(*inputs), "float32"
        ).within_tol


def test_module_candidate_has_no_torchscript_form() -> None:
    inputs = LAYER.make(POINT, torch.float32, "cpu", seed=0)
    with pytest.raises(NotImplementedError, match="declare it with fn="):
        build(
            LAYER,
            LAYER.implementation("mod-torchscript"),
            POINT,
            inputs,
            "float32",
            1,
            "cpu",
            [True] * 3,
        )
