"""The tutorial's claims, reproduced, and each counterpart agreeing with its seed layer."""

from __future__ import annotations

import pytest
import torch

import harness_layers as layers
from harness.deviation import compare_tensors, gradients
from harness.errors import ConfigError, InputError
from harness.forms import build
from harness_layers.native import torch_conv2d, torch_fft
from harness_layers.seed import BadFFTFunction, ScipyConv2d, ScipyConv2dFunction, incorrect_fft


def test_fft_8x8_gives_8x5() -> None:
    x = torch.randn(8, 8, requires_grad=True)
    y = incorrect_fft(x)
    assert tuple(y.shape) == (8, 5)
    y.backward(torch.randn(y.size()))
    assert x.grad is not None and tuple(x.grad.shape) == (8, 8)


def test_conv_10x10_with_3x3_gives_8x8() -> None:
    module = ScipyConv2d(3, 3)
    x = torch.randn(10, 10, requires_grad=True)
    out = module(x)
    assert tuple(out.shape) == (8, 8)
    out.backward(torch.randn(8, 8))
    assert x.grad is not None and tuple(x.grad.shape) == (10, 10)
    assert module.filter.grad is not None and tuple(module.filter.grad.shape) == (3, 3)
    assert module.bias.grad is not None and tuple(module.bias.grad.shape) == (1, 1)


def test_scipy_conv_gradcheck_passes_as_in_the_tutorial() -> None:
    torch.manual_seed(0)
    module = ScipyConv2d(3, 3)
    inputs = [torch.randn(20, 20, dtype=torch.double, requires_grad=True)]
    assert torch.autograd.gradcheck(module, inputs, eps=1e-6, atol=1e-4)


def test_bad_fft_gradient_fails_gradcheck_and_differs_from_autograd() -> None:
    x = torch.randn(8, 8, dtype=torch.double, requires_grad=True)
    assert not torch.autograd.gradcheck(
        incorrect_fft, [x], eps=1e-6, atol=1e-4, raise_exception=False
    )
    y = incorrect_fft(x)
    g = torch.randn_like(y)
    (bad,) = torch.autograd.grad(y, x, g)
    x2 = x.detach().clone().requires_grad_(True)
    (good,) = torch.autograd.grad(torch_fft(x2), x2, g)
    rel = (bad - good).norm() / good.norm()
    assert 0.5 < float(rel) < 2.0  # "near 1": the two gradients share nothing


def test_bad_fft_backward_fails_for_an_odd_width() -> None:
    x = torch.randn(9, 9, requires_grad=True)
    y = BadFFTFunction.apply(x)
    with pytest.raises(RuntimeError, match="shape"):
        y.backward(torch.randn_like(y))


@pytest.mark.parametrize("n", [8, 13, 32, 100])
def test_native_fft_agrees_with_seed_forward(n: int) -> None:
    x = torch.randn(n, n)
    dev = compare_tensors("output", torch_fft(x), incorrect_fft(x), "float32")
    assert dev.within_tol, dev


@pytest.mark.parametrize(("n", "k"), [(10, 3), (17, 5), (64, 15), (31, 31)])
def test_native_conv_agrees_with_seed_forward_and_gradients(n: int, k: int) -> None:
    gen = torch.Generator().manual_seed(n * 100 + k)
    args = [
        torch.randn(n, n, generator=gen),
        torch.randn(k, k, generator=gen),
        torch.randn(1, 1, generator=gen),
    ]
    seed_leaves = [a.clone().requires_grad_(True) for a in args]
    native_leaves = [a.clone().requires_grad_(True) for a in args]
    y_seed = ScipyConv2dFunction.apply(*seed_leaves)
    y_native = torch_conv2d(*native_leaves)
    assert compare_tensors("output", y_native, y_seed, "float32").within_tol
    g = torch.randn(y_seed.shape, generator=gen)
    for name, a, b in zip(
        ["x", "filter", "bias"],
        gradients(y_seed, seed_leaves, g),
        gradients(y_native, native_leaves, g),
        strict=True,
    ):
        dev = compare_tensors(name, a, b, "float32")
        assert dev.within_tol, dev


@pytest.mark.slow
@pytest.mark.parametrize(
    ("layer", "point"),
    [
        (layers.FFT, {"n": 8}),
        (layers.FFT, {"n": 33}),
        (layers.CONV2D, {"n": 12, "k": 3}),
        (layers.CONV2D, {"n": 40, "k": 7}),
    ],
    ids=["fft-8", "fft-33", "conv2d-12-3", "conv2d-40-7"],
)
@pytest.mark.parametrize("form", ["torchscript", "compile", "onnxruntime"])
def test_derived_forms_agree_with_the_seed_layer(layer, point, form: str) -> None:
    inputs = layer.make(point, torch.float32, "cpu", seed=3)
    impl = layer.implementation(form)
    mask = [True] * len(inputs)
    built = build(layer, impl, point, inputs, "float32", 1, "cpu", mask)
    seed = layer.baseline.callable_for(point)
    with torch.no_grad():
        dev = compare_tensors("output", built.fn(*inputs), seed(*inputs), "float32")
    assert dev.within_tol, dev
    assert built.oneoff_s is not None and built.oneoff_s > 0
    # a second, different input: a form that baked in constants would fail here
    other = layer.make(point, torch.float32, "cpu", seed=4)
    with torch.no_grad():
        assert compare_tensors("output", built.fn(*other), seed(*other), "float32").within_tol
    if impl.backward:  # and the gradients match native autograd's
        leaves = [t.clone().requires_grad_(True) for t in inputs]
        ref_leaves = [t.clone().requires_grad_(True) for t in inputs]
        out, ref = built.fn(*leaves), layer.reference(*ref_leaves)
        g = torch.randn(ref.shape, generator=torch.Generator().manual_seed(5))
        for a, b in zip(gradients(out, leaves, g), gradients(ref, ref_leaves, g), strict=True):
            assert compare_tensors("grad", a, b, "float32").within_tol


def test_registry_declarations_of_the_seed_layers() -> None:
    assert layers.FFT.name == "fft" and layers.CONV2D.name == "conv2d"
    assert [i.name for i in layers.FFT.all_implementations()] == [
        "numpy",
        "torch",
        "numpy-compile",
        "torchscript",
        "compile",
        "onnxruntime",
    ]
    assert next(i.name for i in layers.CONV2D.all_implementations()) == "scipy"
    assert not layers.CONV2D.implementation("onnxruntime").backward
    assert layers.CONV2D.implementation("compile").backward


def test_registry_bad_input_errors_name_the_layer_and_value() -> None:
    with pytest.raises(ConfigError, match=r"conv2d.*k=15.*k must be <= n"):
        layers.CONV2D.check_point({"n": 8, "k": 15})
    with pytest.raises(ConfigError, match=r"'n' value 0 must be >= 1"):
        layers.CONV2D.check_point({"n": 0, "k": 3})
    with pytest.raises(ConfigError, match=r"'n' value -4 must be >= 1"):
        layers.FFT.points({"n": [8, -4]})
    with pytest.raises(InputError, match=r"fft.*'x' must be 2-D, got 3-D"):
        layers.FFT("numpy", torch.randn(2, 8, 8))
    with pytest.raises(ConfigError, match="no implementation 'cuda_fft'"):
        layers.FFT.implementation("cuda_fft")
