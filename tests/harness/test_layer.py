"""The declaration API refuses incomplete or inconsistent layers with a clear message."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from harness import Axis, Layer, baseline, native
from harness.errors import ConfigError, InputError, LayerDefinitionError
from harness.layer import bind_module
from harness.points import format_point, parse_point


def _relu(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x)


def _make(point: Any, gen: torch.Generator) -> tuple[torch.Tensor]:
    return (torch.randn(int(point["n"]), generator=gen, dtype=torch.float64),)


def _layer(**changes: Any) -> Layer:
    kwargs: dict[str, Any] = dict(
        name="relu",
        description="a test layer",
        axes=(Axis("n", (4, 8)),),
        inputs={"x": 1},
        make_inputs=_make,
        reference=_relu,
        implementations=(baseline("numpy", _relu), native("torch", _relu)),
    )
    kwargs.update(changes)
    return Layer(**kwargs)


def test_a_valid_layer_and_its_derived_forms() -> None:
    layer = _layer()
    assert [i.name for i in layer.all_implementations()] == [
        "numpy",
        "torch",
        "numpy-compile",
        "torchscript",
        "compile",
        "onnxruntime",
    ]
    assert layer.implementation("compile").source == "torch"
    # the baseline as declared, under torch.compile: a candidate of its own role
    compiled = layer.implementation("numpy-compile")
    assert (compiled.role, compiled.form, compiled.source) == ("compiled", "compile", "numpy")
    assert layer.smallest_point() == {"n": 4}
    (x,) = layer.make({"n": 5}, torch.float32, "cpu", seed=1)
    assert x.dtype == torch.float32 and x.shape == (5,)
    (again,) = layer.make({"n": 5}, torch.float32, "cpu", seed=1)
    assert torch.equal(x, again)  # seeded: every process sees the same input


def test_the_checks_take_the_runs_values_of_axes_other_than_the_size() -> None:
    """2026-12-03: a Bessel layer run at ``--grid v=1`` had its gradient checked at v=0."""
    layer = _layer(axes=(Axis("n", (4, 8)), Axis("v", (0, 1), minimum=0)))
    assert layer.smallest_point() == {"n": 4, "v": 0}
    assert layer.smallest_point({"v": 1}) == {"n": 4, "v": 1}
    # a combination the layer refuses: the default grid's point
    refusing = _layer(
        axes=(Axis("n", (4, 8)), Axis("v", (0, 1, 2), minimum=0)),
        constraint=lambda p: "v=2 needs n=8" if p["v"] == 2 and p["n"] < 8 else None,
    )
    assert refusing.smallest_point({"v": 2}) == {"n": 4, "v": 0}


def test_forms_of_other_candidates_are_prefixed_and_can_be_opted_out() -> None:
    layer = _layer(
        implementations=(
            baseline("numpy", _relu, compile=False),
            native("clamp", _relu, forms=("compile",)),
        )
    )
    assert [i.name for i in layer.all_implementations()] == ["numpy", "clamp", "clamp-compile"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "bad name"}, "layer name 'bad name' is not valid"),
        ({"axes": ()}, "declares no grid axes"),
        ({"axes": (Axis("n", (4,)), Axis("n", (8,)))}, "axis 'n' is declared twice"),
        ({"axes": (Axis("n", (0,)),)}, "invalid default.*must be >= 1"),
        ({"axes": (Axis("n", ()),)}, "no default values"),
        ({"reference": None}, "has no float64 reference"),
        ({"make_inputs": None}, "has no input factory"),
        ({"inputs": {}}, "declares no inputs"),
        ({"inputs": {"x": "2-D"}}, "must map to its number of dimensions"),
        ({"implementations": (native("torch", _relu),)}, "declares no baseline"),
        ({"implementations": ()}, "declares no implementations"),
        (
            {"implementations": (baseline("numpy", _relu), baseline("numpy", _relu))},
            "'numpy' is used twice",
        ),
        (
            {
                "implementations": (
                    baseline("numpy", _relu),
                    native("compile", _relu, forms=()),
                    native("torch", _relu),
                )
            },
            "'compile' is used twice",
        ),
        ({"implementations": (baseline("numpy"),)}, "needs exactly one of fn= or module="),
        ({"implementations": (baseline("numpy", 3),)}, "is not callable"),  # type: ignore[arg-type]
        (
            {"implementations": (baseline("numpy", _relu), native("torch", _relu, forms=("tvm",)))},
            "unknown forms",
        ),
        ({"size_axis": "m"}, "size_axis 'm' is not one of its axes"),
        ({"grad_inputs": ("w",)}, r"grad_inputs \['w'\] are not inputs"),
    ],
)
def test_invalid_declarations_name_the_layer_and_the_problem(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(LayerDefinitionError, match=message):
        _layer(**changes)


def test_points_drop_invalid_combinations_and_validate_values() -> None:
    layer = _layer(
        axes=(Axis("n", (4, 8)), Axis("k", (3, 5))),
        constraint=lambda p: None if p["k"] <= p["n"] else "k must be <= n",
    )
    valid, dropped = layer.points()
    assert {(p["n"], p["k"]) for p in valid} == {(4, 3), (8, 3), (8, 5)}
    assert dropped == ["n=4,k=5: k must be <= n"]
    with pytest.raises(ConfigError, match="'k' value 2.5 is not a int"):
        layer.points({"k": [2.5]})
    with pytest.raises(ConfigError, match="lacks axes"):
        layer.check_point({"n": 4})


def test_check_inputs_refuses_wrong_rank_and_count() -> None:
    layer = _layer()
    with pytest.raises(InputError, match="'x' must be 1-D, got 2-D"):
        layer("numpy", torch.randn(3, 3))
    with pytest.raises(InputError, match="takes 1 inputs"):
        layer.check_inputs(torch.randn(3), torch.randn(3))
    assert torch.equal(layer("torch", torch.ones(3)), torch.ones(3))


def test_an_input_factory_of_the_wrong_shape_or_type_is_a_definition_error() -> None:
    wrong_rank = _layer(make_inputs=lambda p, g: (torch.randn(2, 2, generator=g),))
    with pytest.raises(LayerDefinitionError, match="'x' must be 1-D"):
        wrong_rank.make({"n": 4})
    not_tensors = _layer(make_inputs=lambda p, g: [[1.0, 2.0]])
    with pytest.raises(LayerDefinitionError, match="must return a tuple of tensors"):
        not_tensors.make({"n": 4})
    raising = _layer(make_inputs=lambda p, g: 1 / 0)
    with pytest.raises(LayerDefinitionError, match="make_inputs failed.*ZeroDivisionError"):
        raising.make({"n": 4})
    with pytest.raises(LayerDefinitionError) as failed:
        raising.make({"n": 4})
    assert "make_inputs failed at n=4: ZeroDivisionError: division by zero" in str(failed.value)


# -- point strings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "text"),
    [
        ({"n": 64, "k": 3}, "n=64,k=3"),
        ({"n": 8, "scale": 0.5, "mode": "same"}, "n=8,scale=0.5,mode=same"),
        ({"x": 2.0}, "x=2.0"),
        ({}, ""),
    ],
)
def test_point_strings_round_trip(point: dict[str, Any], text: str) -> None:
    assert format_point(point) == text
    parsed = parse_point(text)
    assert parsed == point and [type(v) for v in parsed.values()] == [
        type(v) for v in point.values()
    ]


def test_parse_point_refuses_what_is_not_a_point() -> None:
    assert parse_point(" n = 8 , k=3 ") == {"n": 8, "k": 3}
    for bad in ("n", "n=8,", "=3"):
        with pytest.raises(ValueError, match="not a grid point"):
            parse_point(bad)


# -- module implementations: the one binding of parameters to inputs ---------------------


class _Affine(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = torch.nn.Linear(3, 3, bias=False)
        self.shift = torch.nn.Parameter(torch.zeros(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) + self.shift


def test_bind_module_takes_parameters_from_the_inputs_by_name() -> None:
    mod = _Affine()
    own = mod.inner.weight
    call = bind_module(mod)
    x, b, w = torch.randn(2, 3), torch.randn(3), torch.randn(3, 3, requires_grad=True)
    out = call(x, b, w)  # named_parameters order: shift, then inner.weight
    assert torch.allclose(out, x @ w.T + b)
    out.sum().backward()
    assert w.grad is not None and own.grad is None
    with pytest.raises(InputError, match=r"parameters \['shift', 'inner.weight'\] but got 1"):
        call(x, b)


def test_bind_module_binds_by_name_whatever_the_order_of_the_inputs() -> None:
    """2026-11-30: dynoNet's module, declared with inputs u_in, a_coeff, b_coeff for
    parameters b_coeff, a_coeff, had them swapped, and the report said its gradient
    was wrong."""
    from harness.layer import parameter_order

    mod = _Affine()  # named_parameters order: shift, inner.weight
    x, b, w = torch.randn(2, 3), torch.randn(3), torch.randn(3, 3)
    for inputs, args in (
        (("inner.weight", "shift"), (w, b)),  # full names, the other order
        (("weight", "shift"), (w, b)),  # attribute names
        (("shift", "weight"), (b, w)),
        (("b", "w"), (b, w)),  # no name matches: in order
    ):
        out = bind_module(mod, inputs)(x, *args)
        assert torch.allclose(out, x @ w.T + b), inputs
    assert parameter_order(["shift", "inner.weight"], ["inner.weight", "shift"]) == [1, 0]
    with pytest.raises(InputError, match="share some names but not all"):
        parameter_order(["shift", "inner.weight"], ["shift", "w"])


def test_a_layer_binds_its_module_to_the_inputs_after_the_first() -> None:
    layer = Layer(
        name="affine",
        description="x @ w.T + shift",
        axes=(Axis("n", (2,), "rows"),),
        inputs={"x": 2, "weight": 2, "shift": 1},
        make_inputs=lambda p, g: (
            torch.randn(int(p["n"]), 3, generator=g, dtype=torch.float64),
            torch.randn(3, 3, generator=g, dtype=torch.float64),
            torch.randn(3, generator=g, dtype=torch.float64),
        ),
        reference=lambda x, w, s: x @ w.T + s,
        implementations=(baseline("mod", module=lambda p: _Affine()),),
    )
    (impl,) = layer.implementations
    assert impl.bound_inputs == ("weight", "shift")
    x, w, b = torch.randn(2, 3), torch.randn(3, 3), torch.randn(3)
    assert torch.allclose(impl.callable_for({"n": 2})(x, w, b), x @ w.T + b)


def test_bind_module_works_under_the_tracer_and_restores_the_module() -> None:
    mod = _Affine()
    before = [(name, p) for name, p in mod.named_parameters()]
    call = bind_module(mod)

    class Wrapper(torch.nn.Module):
        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return call(*args)

    a = (torch.randn(2, 3), torch.randn(3), torch.randn(3, 3))
    b = (torch.randn(2, 3), torch.randn(3), torch.randn(3, 3))
    traced = torch.jit.trace(Wrapper(), a, check_trace=False)
    after = [(name, p) for name, p in mod.named_parameters()]
    assert [n for n, _ in after] == [n for n, _ in before]
    assert all(p is q for (_, p), (_, q) in zip(before, after, strict=True))
    with torch.no_grad():
        assert torch.allclose(traced(*b), call(*b))  # the parameters are graph inputs


def test_an_eager_bound_call_is_the_modules_own_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # functional_call cost 22-34 us a call (2026-11-30): a timed baseline must not pay it
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("functional_call in an eager call")

    monkeypatch.setattr(torch.func, "functional_call", refuse)
    mod = _Affine()
    call = bind_module(mod)
    x = torch.randn(2, 3)
    b, w = torch.randn(3), torch.randn(3, 3, requires_grad=True)
    out = call(x, b, w)
    assert torch.allclose(out, x @ w.T + b)
    assert mod.shift is b and mod.inner.weight is w  # kept, as a module keeps its parameters
    out.sum().backward()
    assert w.grad is not None
    b2, w2 = torch.randn(3), torch.randn(3, 3)
    assert torch.allclose(call(x, b2, w2), x @ w2.T + b2)  # new tensors are bound again
    assert torch.allclose(call(x, b2, w2), x @ w2.T + b2)


def test_bind_module_binds_every_place_of_a_tied_parameter() -> None:
    class Tied(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Linear(3, 3, bias=False)
            self.b = torch.nn.Linear(3, 3, bias=False)
            self.b.weight = self.a.weight

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x))

    mod = Tied()
    call = bind_module(mod)
    x, w = torch.randn(2, 3), torch.randn(3, 3)
    assert torch.allclose(call(x, w), x @ w.T @ w.T)  # one parameter, two places


@pytest.mark.slow  # torch.compile: seconds
def test_bind_module_under_compile_and_after_it() -> None:
    mod = _Affine()
    call = bind_module(mod)
    x, b, w = torch.randn(2, 3), torch.randn(3), torch.randn(3, 3)
    compiled = torch.compile(call, fullgraph=True, dynamic=False)
    assert torch.allclose(compiled(x, b, w), x @ w.T + b)
    b2 = torch.randn(3)
    assert torch.allclose(compiled(x, b2, w), x @ w.T + b2)  # parameters are inputs
    assert torch.allclose(call(x, b2, w), x @ w.T + b2)


@pytest.mark.slow  # torch.compile of the wrapped NumPy function: seconds
def test_a_plain_numpy_function_of_arrays_is_a_forward_only_baseline() -> None:
    import numpy as np

    def numpy_relu(a: np.ndarray) -> np.ndarray:
        return np.maximum(a, 0)

    layer = _layer(
        implementations=(baseline("numpy", numpy_relu, arrays=True), native("torch", _relu))
    )
    eager = layer.implementation("numpy")
    assert eager.arrays and not eager.backward
    x = torch.tensor([-1.0, 2.0])
    assert torch.equal(eager.callable_for({})(x), torch.tensor([0.0, 2.0]))
    compiled = layer.implementation("numpy-compile")
    assert compiled.role == "compiled" and not compiled.backward
    fn = torch.compile(compiled.callable_for({}), fullgraph=True)  # wrap_numpy: traced whole
    assert torch.equal(fn(x), torch.tensor([0.0, 2.0]))
    with pytest.raises(LayerDefinitionError, match="arrays=True takes a NumPy function"):
        baseline("numpy", module=lambda p: torch.nn.ReLU(), arrays=True)


# -- inputs that are not floating --------------------------------------------------------


def _lookup(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.embedding(idx, table)


def _lookup_inputs(point: Any, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    table = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    return table, torch.randint(0, 10, (int(point["n"]),), generator=gen)


def _lookup_layer(**changes: Any) -> Layer:
    return _layer(
        **{
            "inputs": {"table": 2, "idx": 1},
            "make_inputs": _lookup_inputs,
            "reference": _lookup,
            "implementations": (baseline("numpy", _lookup), native("torch", _lookup)),
            **changes,
        }
    )


def test_integer_inputs_keep_their_dtype_and_take_no_gradient() -> None:
    layer = _lookup_layer()
    table, idx = layer.make({"n": 4}, torch.float32)
    assert table.dtype == torch.float32
    assert idx.dtype == torch.int64  # an index cast to float fails every implementation
    assert layer.grad_mask((table, idx)) == (True, False)
    assert layer("torch", table, idx).shape == (4, 3)


def test_complex_inputs_take_the_complex_dtype_of_the_precision() -> None:
    layer = _layer(make_inputs=lambda p, g: (torch.randn(4, dtype=torch.complex128, generator=g),))
    (x,) = layer.make({"n": 4}, torch.float32)
    assert x.dtype == torch.complex64
    assert layer.grad_mask((x,)) == (True,)


def test_grad_inputs_naming_an_integer_input_is_a_definition_error() -> None:
    layer = _lookup_layer(grad_inputs=("table", "idx"))
    with pytest.raises(LayerDefinitionError, match="grad_inputs names 'idx'.*int64"):
        layer.make({"n": 4})


class _Masked(torch.nn.Module):
    """A module of two tensors: ``forward(x, mask)``, and a parameter of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(3))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x * self.scale * mask


def test_bind_module_passes_the_inputs_forward_takes_and_binds_the_rest() -> None:
    """Until 2026-12-01 every input after the first was a parameter: a module of
    several tensors could not be declared."""
    mod = _Masked()
    own = mod.scale
    x, s, m = torch.randn(2, 3), torch.randn(3, requires_grad=True), torch.rand(2, 3)
    for inputs, args in ((("scale", "mask"), (s, m)), (("mask", "scale"), (m, s))):
        out = bind_module(mod, inputs)(x, *args)
        assert torch.equal(out, x * s * m), inputs
    out.sum().backward()
    assert s.grad is not None and own.grad is None  # the input's, not the module's own
    # under the tracer and under torch.func (compile, export) alike
    traced = torch.jit.trace(bind_module(_Masked(), ("mask", "scale")), (x, m, s))
    assert torch.equal(traced(x, m, s), x * s * m)
    with torch.no_grad():
        fake_like = torch.func.functional_call(_Masked(), {"scale": s}, (x,), {"mask": m})
    assert torch.equal(fake_like, x * s * m)


def test_a_module_input_neither_argument_nor_parameter_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"parameters \['scale'\] but the layer binds"):
        bind_module(_Masked(), ("scale", "weights"))
    with pytest.raises(InputError, match="forward takes"):
        bind_module(_Masked(), ("mask", "scale", "bias"))
