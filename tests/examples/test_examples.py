"""The worked examples in ``examples/``: each loads by path, its baseline computes the
reference, and its backward is the gradient (except ``bad_gradient.py``, 2x on purpose)."""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

from harness import ConfigError, Layer
from harness.registry import load_layers_from

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CORRECT = ["ndimage_smooth.py", "linear_numpy.py", "special_erf.py"]
BAD = ["bad_gradient.py"]

#: A second small point per layer, next to its declared ``gradcheck_point``.
SMALL = {
    "ndimage_smooth": {"n": 9, "k": 5},
    "numpy_linear": {"batch": 7, "in_features": 6, "out_features": 3},
    "special_erf": {"n": 33},
    "bad_tanh": {"n": 33},
}


def _load(filename: str) -> ModuleType:
    path = EXAMPLES / filename
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _layers(filenames: list[str]) -> list[Layer]:
    return [layer for f in filenames for layer in _load(f).LAYERS]


ALL = _layers(CORRECT + BAD)
GOOD_LAYERS = _layers(CORRECT)
BAD_LAYERS = _layers(BAD)


def _ids(layers: list[Layer]) -> list[str]:
    return [layer.name for layer in layers]


def _inputs(layer: Layer, point: dict, dtype: torch.dtype = torch.float64) -> list[torch.Tensor]:
    return [t.requires_grad_() for t in layer.make(point, dtype)]


def _grads(fn, inputs: list[torch.Tensor], seed: int = 1) -> tuple[torch.Tensor, ...]:
    out = fn(*inputs)
    upstream = torch.randn(
        out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype
    )
    return torch.autograd.grad(out, inputs, upstream)


def _gradcheck_point(layer: Layer) -> dict:
    assert layer.gradcheck_point is not None
    return layer.check_point(layer.gradcheck_point)


def test_every_example_file_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(CORRECT + BAD)
    assert sorted(SMALL) == sorted(_ids(ALL))


@pytest.mark.parametrize("filename", CORRECT + BAD)
def test_harness_loads_the_file(filename: str) -> None:
    module = _load(filename)
    loaded = load_layers_from(str(EXAMPLES / filename))
    assert [layer.name for layer in loaded] == [layer.name for layer in module.LAYERS]


@pytest.mark.parametrize("layer", ALL, ids=_ids(ALL))
def test_baseline_forward_matches_reference(layer: Layer) -> None:
    for point in (_gradcheck_point(layer), layer.check_point(SMALL[layer.name])):
        inputs = layer.make(point)
        out = layer.baseline.callable_for(point)(*inputs)
        ref = layer.reference(*inputs)
        assert out.dtype == torch.float64
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("layer", ALL, ids=_ids(ALL))
def test_every_implementation_keeps_float32(layer: Layer) -> None:
    point = _gradcheck_point(layer)
    for impl in layer.implementations:
        inputs = _inputs(layer, point, torch.float32)
        fn = impl.callable_for(point)
        assert fn(*inputs).dtype == torch.float32, impl.name
        assert all(g.dtype == torch.float32 for g in _grads(fn, inputs)), impl.name


@pytest.mark.parametrize("layer", GOOD_LAYERS, ids=_ids(GOOD_LAYERS))
def test_baseline_gradient_is_correct(layer: Layer) -> None:
    point = _gradcheck_point(layer)
    fn = layer.baseline.callable_for(point)
    assert torch.autograd.gradcheck(fn, _inputs(layer, point))
    for p in (point, layer.check_point(SMALL[layer.name])):
        got = _grads(fn, _inputs(layer, p))
        want = _grads(layer.reference, _inputs(layer, p))
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("layer", BAD_LAYERS, ids=_ids(BAD_LAYERS))
def test_bad_gradient_is_twice_the_true_one(layer: Layer) -> None:
    point = _gradcheck_point(layer)
    fn = layer.baseline.callable_for(point)
    assert not torch.autograd.gradcheck(fn, _inputs(layer, point), raise_exception=False)
    (got,) = _grads(fn, _inputs(layer, point))
    (want,) = _grads(layer.reference, _inputs(layer, point))
    torch.testing.assert_close(got, 2 * want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("layer", ALL, ids=_ids(ALL))
def test_native_candidates_script(layer: Layer) -> None:
    """Native candidates are plain typed functions, so TorchScript accepts them."""
    point = _gradcheck_point(layer)
    inputs = layer.make(point)
    for impl in layer.implementations:
        if impl.role == "native":
            scripted = torch.jit.script(impl.callable_for(point))
            torch.testing.assert_close(scripted(*inputs), layer.reference(*inputs))


@pytest.mark.parametrize("layer", ALL, ids=_ids(ALL))
def test_default_grid_is_valid_and_bad_values_are_refused(layer: Layer) -> None:
    valid, _ = layer.points()
    assert valid
    first = layer.axes[0].name
    for bad in ([0], [-4], [2.5]):
        with pytest.raises(ConfigError):
            layer.points({first: bad})
    with pytest.raises(ConfigError):
        layer.check_point({**valid[0], "no_such_axis": 1})


def test_ndimage_smooth_constraint() -> None:
    (layer,) = _load("ndimage_smooth.py").LAYERS
    valid, dropped = layer.points({"n": [4, 16], "k": [3, 4, 7]})
    assert {(p["n"], p["k"]) for p in valid} == {(4, 3), (16, 3), (16, 7)}
    assert len(dropped) == 3
    for point in ({"n": 16, "k": 4}, {"n": 5, "k": 7}):
        with pytest.raises(ConfigError):
            layer.check_point(point)
