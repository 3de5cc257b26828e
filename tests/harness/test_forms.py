"""Forms of a module-declared native candidate: parameters bound from the layer's inputs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import Axis, Layer, baseline, native
from harness.deviation import compare_tensors
from harness.errors import FormUnsupported
from harness.forms import CallableModule, build, ort_callable, ort_session
from harness_layers.native import torch_conv2d
from harness_layers.seed import ScipyConv2dFunction


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
        torch.randn(int(p["n"]), int(p["n"]), generator=g),
        torch.randn(int(p["k"]), int(p["k"]), generator=g),
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
    with pytest.raises(FormUnsupported, match="not built: .*declare it with fn="):
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


class Scale(torch.nn.Module):
    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


@pytest.mark.slow
def test_a_module_is_exported_per_point_not_per_shape(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two points of one shape build two modules (module=lambda point: ...): the second
    must not be served the first's export from the cache."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    scaled = Layer(
        name="scaled",
        description="x times a factor the point gives the module",
        axes=(Axis("n", (4,)), Axis("factor", (2, 3))),
        inputs={"x": 1},
        make_inputs=lambda p, g: (torch.randn(int(p["n"]), generator=g),),
        reference=lambda x: x,
        implementations=(
            baseline("numpy", lambda x: x),
            native("torch", module=lambda p: Scale(int(p["factor"]))),
        ),
    )
    impl = scaled.implementation("onnxruntime")
    for factor in (2, 3):
        point = {"n": 4, "factor": factor}
        (x,) = scaled.make(point, torch.float32, "cpu", seed=0)
        built = build(scaled, impl, point, (x,), "float32", 1, "cpu", [True])
        assert torch.allclose(built.fn(x), x * factor), factor


def _checked_double(x: torch.Tensor) -> torch.Tensor:
    if bool(torch.all(x > -100)):  # data-dependent: torch.export cannot guard on it
        return x * 2
    return x


def _sign_branch(x: torch.Tensor) -> torch.Tensor:
    if bool(x.sum() > 0):  # a trace bakes the branch its example takes
        return x * 2
    return -x


@pytest.mark.slow
def test_onnx_runtime_falls_back_to_the_torchscript_based_exporter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """2026-12-02: a public distance map's native, whose data-dependent check torch.export
    cannot guard, had no ONNX Runtime form, though the matrix said the TorchScript-based
    exporter takes it; a deployment falls back to that exporter, and so does the form."""
    from harness.forms import _legacy_export

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    checked = Layer(
        name="checked",
        description="a data-dependent check, then x * 2",
        axes=(Axis("n", (4,)),),
        inputs={"x": 1},
        make_inputs=lambda p, g: (torch.randn(int(p["n"]), generator=g),),
        reference=_checked_double,
        implementations=(baseline("numpy", lambda x: x * 2), native("torch", _checked_double)),
    )
    (x,) = checked.make({"n": 4}, torch.float32, "cpu", seed=0)
    built = build(
        checked, checked.implementation("onnxruntime"), {"n": 4}, (x,), "float32", 1, "cpu", [True]
    )
    assert built.oneoff_what == "torch.onnx.export(dynamo=False) + InferenceSession"
    assert torch.allclose(built.fn(x), x * 2)
    # a trace that took another branch than eager takes on a second input is not trusted
    module = CallableModule(_sign_branch)
    ones = torch.ones(4)
    with pytest.raises(FormUnsupported, match="trace, on a second input, differs from eager"):
        _legacy_export(module, (ones,), ("x",), lambda: (-ones,), "cause")
    assert _legacy_export(module, (ones,), ("x",), lambda: (2 * ones,), "cause")


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.mm(a, b)  # of two vectors: fails, eager or scripted


def test_a_torchscript_form_that_cannot_be_called_as_eager_is_unsupported() -> None:
    """2026-12-02: ``native("torch", F.mse_loss)`` scripts and saves, but the function
    loaded back has lost its default arguments; every timed point was an error."""
    import torch.nn.functional as F

    mse = Layer(
        name="mse",
        description="mean squared error",
        axes=(Axis("n", (4,)),),
        inputs={"a": 1, "b": 1},
        make_inputs=lambda p, g: (torch.randn(4, generator=g), torch.randn(4, generator=g)),
        reference=F.mse_loss,
        implementations=(
            baseline("numpy", lambda a, b: ((a - b) ** 2).mean()),
            native("torch", F.mse_loss),
        ),
    )
    inputs = mse.make({"n": 4}, torch.float32, "cpu", seed=0)
    impl = mse.implementation("torchscript")
    with pytest.raises(FormUnsupported, match="keeps no default arguments.*'size_average'"):
        build(mse, impl, {"n": 4}, inputs, "float32", 1, "cpu", [True, True])
    # a failure of the layer itself, eager's too, stays the layer's error
    broken = native("broken", _matmul)
    impl = replace(broken, name="broken-torchscript", form="torchscript", source="broken")
    with pytest.raises(RuntimeError, match="must be a matrix"):
        build(mse, impl, {"n": 4}, inputs, "float32", 1, "cpu", [True, True])


def _onnx(fn: object, example: tuple[torch.Tensor, ...], names: list[str]) -> bytes:
    import io
    import warnings

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            CallableModule(fn),  # type: ignore[arg-type]
            example,
            buffer,  # type: ignore[arg-type]
            dynamo=False,
            input_names=names,
            verbose=False,
        )
    return buffer.getvalue()


def test_one_ort_session_builder_feeds_inputs_by_name_or_in_order() -> None:
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    model = _onnx(lambda a, b: a - 2 * b, (x, y), ["a", "b"])
    session = ort_session(model, threads=2)
    assert session.get_providers() == ["CPUExecutionProvider"]
    by_name = ort_callable(session, ["a", "b"])
    in_order = ort_callable(session)
    for run in (by_name, in_order):
        out = run(x, y)
        assert isinstance(out, torch.Tensor) and torch.allclose(out, x - 2 * y)
    # an exporter that drops an unused input: the remaining ones are found by name
    model = _onnx(lambda a, b: b * 3, (x, y), ["a", "b"])
    session = ort_session(model)
    assert [i.name for i in session.get_inputs()] == ["b"]
    assert torch.allclose(ort_callable(session, ["a", "b"])(x, y), y * 3)


def test_a_scalar_output_of_onnx_runtime_stays_a_scalar() -> None:
    # a loss: the reference returns shape (), and ONNX Runtime's 0-d array must not
    # come back as shape (1,) (np.ascontiguousarray did that, and every onnxruntime
    # row of a public Hausdorff loss failed its shape check, 2026-12-02)
    x = torch.randn(3, 4)
    session = ort_session(_onnx(lambda a: (a * a).mean(), (x,), ["a"]))
    out = ort_callable(session, ["a"])(x)
    assert out.shape == () and torch.allclose(out, (x * x).mean())


def test_ort_session_on_cuda_needs_the_cuda_provider() -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has a CUDA provider")
    x = torch.randn(2, 2)
    with pytest.raises(NotImplementedError, match="no CUDAExecutionProvider"):
        ort_session(_onnx(lambda a: a + 1, (x,), ["a"]), device="cuda")


def _numpy_constant(x: torch.Tensor) -> torch.Tensor:
    return x * float(np.log(2.0))


def _imports(x: torch.Tensor) -> torch.Tensor:
    import math

    return x * math.pi


def test_a_script_error_that_names_no_place_is_given_the_functions() -> None:
    """2026-12-02: a native with an ``np.log`` read "cannot create weak reference to
    'numpy.ufunc' object", with no word of where."""
    from harness.forms import _script, script_cause

    with pytest.raises(Exception) as failed:
        _script(_numpy_constant)
    said = script_cause(failed.value, "script", _numpy_constant)
    line = _numpy_constant.__code__.co_firstlineno
    assert said.endswith(
        f"(in _numpy_constant, test_forms.py:{line}; a NumPy function in it, which "
        "TorchScript cannot compile)"
    ), said
    # TorchScript's own place, below its first line, is kept
    with pytest.raises(Exception) as failed:
        _script(_imports)
    line = _imports.__code__.co_firstlineno + 1
    assert script_cause(failed.value, "script", _imports) == (
        f"TorchScript cannot script it: import statements aren't supported (at test_forms.py:{line})"
    )
    # an error that names its place keeps it alone
    assert script_cause(RuntimeError("bad at f.py:3"), "script", _numpy_constant) == (
        "TorchScript cannot script it: bad at f.py:3"
    )


def test_a_compiled_native_failing_under_inference_mode_alone_names_the_mode() -> None:
    """2026-12-02: torch.compile of a native with torch.from_numpy inside failed a Dynamo
    guard on its first call under inference_mode, and ran under no_grad."""
    from harness.forms import _first_calls

    def guarded(x: torch.Tensor) -> torch.Tensor:
        if torch.is_inference_mode_enabled():
            raise AssertionError("Guard failed on the same frame it was created")
        return x * 2

    impl = native("torch", guarded)
    with pytest.raises(RuntimeError, match=r"fails under torch.inference_mode\(\), the mode"):
        _first_calls(guarded, impl, (torch.ones(3),), (True,), trains=False)

    # failing either way, or the baseline's code (served under no_grad): its own error
    def broken(x: torch.Tensor) -> torch.Tensor:
        raise ValueError("broken")

    for impl in (native("torch", broken), baseline("numpy", broken)):
        with pytest.raises(ValueError, match="broken"):
            _first_calls(broken, impl, (torch.ones(3),), (True,), trains=False)


def test_a_compiled_form_compiles_only_the_graphs_of_the_phases_its_process_times() -> None:
    """A process that times the inference forward alone makes no training graph, and
    one that times steps no inference graph: each first call compiles a graph."""
    from harness.forms import _first_calls

    calls: list[str] = []

    def recorded(x: torch.Tensor) -> torch.Tensor:
        calls.append("inference" if torch.is_inference_mode_enabled() else "training")
        out = x * 2
        if out.requires_grad:
            out.register_hook(lambda g: calls.append("backward"))
        return out

    impl = native("torch", recorded)
    expected = {
        ("forward",): ["inference"],
        ("step", "backward"): ["training", "backward"],
        ("backward",): ["training", "backward"],
        None: ["inference", "training", "backward"],
    }
    for phases, wanted in expected.items():
        calls.clear()
        _first_calls(recorded, impl, (torch.ones(3),), (True,), phases=phases)
        assert calls == wanted, phases
    calls.clear()  # a forward-only layer's training phases compile nothing
    _first_calls(recorded, impl, (torch.ones(3),), (True,), trains=False, phases=("step",))
    assert calls == []
