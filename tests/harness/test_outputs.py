"""Layers of several outputs (``harness.outputs``): each output is compared with the
reference's on its own scale, every output with a graph gets an upstream gradient, and
the forms (TorchScript, compile, ONNX Runtime) return them all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from harness.case import Variant
from harness.deviation import compare_outputs, output_mismatch, upstream_gradient
from harness.errors import LayerDefinitionError
from harness.outputs import as_tuple, differentiable, output_names, several, tensors_of
from harness.registry import load_layers_from, validate_layer

FIXTURE = str(Path(__file__).resolve().parents[1] / "fixtures" / "outputs_layers.py")


def _layers() -> dict[str, Any]:
    return {layer.name: layer for layer in load_layers_from(FIXTURE)}


def test_outputs_are_one_tensor_or_a_tuple_of_them() -> None:
    x = torch.ones(2)
    assert as_tuple(x) == (x,) and not several(x)
    assert several((x, x)) and several([x, x]) and as_tuple([x, x]) == (x, x)
    with pytest.raises(TypeError, match="not a tensor or a tuple of tensors"):
        as_tuple((x, 3))
    assert output_names(1) == ["output"]
    assert output_names(2) == ["output[0]", "output[1]"]


def test_arrays_become_tensors_of_the_same_shape() -> None:
    import numpy as np

    assert tensors_of(np.float64(2.5), "cpu").shape == ()  # a NumPy scalar: a loss
    assert tensors_of(np.array(2.5), "cpu").shape == ()
    reversed_ = np.arange(6.0).reshape(2, 3)[:, ::-1]  # negative strides: copied
    assert torch.equal(tensors_of(reversed_, "cpu"), torch.tensor([[2.0, 1, 0], [5, 4, 3]]))
    loss, grad = tensors_of((np.array(1.0), np.ones((2, 2))), "cpu")
    assert loss.shape == () and grad.shape == (2, 2)


def test_several_outputs_get_an_upstream_gradient_each_the_first_as_one_output_gets() -> None:
    a, b = torch.zeros(3), torch.zeros(2, dtype=torch.float64)
    one = upstream_gradient(a, 7)
    both = upstream_gradient((a, b), 7)
    assert isinstance(both, tuple) and len(both) == 2
    assert torch.equal(both[0], one) and both[1].dtype == torch.float64
    assert not torch.equal(both[1], upstream_gradient(b, 7))  # drawn after the first


def test_a_backward_differentiates_only_the_outputs_with_a_graph() -> None:
    x = torch.randn(5, requires_grad=True)
    values, indices = torch.sort(x)
    outs, grads = differentiable((values, indices), upstream_gradient((values, indices), 1))
    assert len(outs) == 1 and outs[0] is values and grads[0].dtype == values.dtype
    # one output is handed on as it is: a missing graph fails as it always did
    assert differentiable(indices, torch.ones(5))[0] == (indices,)


def test_each_output_is_held_to_its_own_scale() -> None:
    big, angle = torch.full((4,), 1e5), torch.linspace(0.1, 1.0, 4)
    devs = compare_outputs((big, angle * 1.05), (big, angle), "float32")
    assert [d.tensor for d in devs] == ["output[0]", "output[1]"]
    assert devs[0].within_tol and not devs[1].within_tol
    assert devs[1].max_rel_err == pytest.approx(0.05, rel=1e-5)
    # joined, the large output's scale hides the small one's error: the tolerance is
    # the large one's, and the small one's entries fall under the relative error's cut
    joined = compare_outputs(torch.cat([big, angle * 1.05]), torch.cat([big, angle]), "float32")
    assert joined[0].within_tol and joined[0].max_rel_err == 0.0
    with pytest.raises(ValueError, match="returns 1 outputs where the reference returns 2"):
        compare_outputs(big, (big, angle), "float32")


def test_a_wrong_dtype_is_named_per_output() -> None:
    x = torch.randn(3, dtype=torch.float64)
    found = output_mismatch((x, x.float()), (x,), [(3,), (3,)])
    assert found is not None and found.startswith("output[1]: float32 for float64 input")
    assert output_mismatch((x, x), (x,), [(3,), (3,)]) is None
    assert output_mismatch((x, x), (x,), (3,)) == "2 outputs where the reference returns one"


def test_a_layer_of_several_outputs_validates_and_a_wrong_count_is_a_declaration_error() -> None:
    layers = _layers()
    for layer in layers.values():
        assert validate_layer(layer) == [], layer.name
    polar = layers["polar"]
    from dataclasses import replace

    from harness import native

    one = replace(
        polar,
        implementations=(*polar.implementations, native("radius", lambda xy: xy.norm(dim=1))),
    )
    with pytest.raises(LayerDefinitionError, match="returns 1 tensor at n=16, but the reference"):
        validate_layer(one)
    bad = replace(polar, reference=lambda xy: (xy, 3))
    with pytest.raises(LayerDefinitionError, match="a tuple holding int"):
        validate_layer(bad)


def _setup(tmp_path: Path, variants: list[Variant], gradcheck: tuple[str, str] | None = None):  # type: ignore[no-untyped-def]
    from harness.protocol import EventLog, GradcheckDone, Job, SetupDone
    from harness.worker import Worker

    raw = tmp_path / f"setup-{len(list(tmp_path.iterdir()))}.jsonl"
    worker = Worker(Job("setup", (), str(raw), layers_from=(FIXTURE,), memory=True))
    if gradcheck is not None:
        worker.gradcheck(*gradcheck)
    for variant in variants:
        worker.setup(variant)
    worker.log.close()
    events = list(EventLog.read(raw))
    done = {e.variant.impl: e for e in events if isinstance(e, SetupDone)}
    checked = [e for e in events if isinstance(e, GradcheckDone)]
    return done, checked


def test_every_phase_of_a_layer_of_several_outputs_is_checked_and_timed(tmp_path: Path) -> None:
    impls = ("numpy", "torch", "torchscript", "compile", "onnxruntime")
    variants = [Variant.make("polar", impl, {"n": 16}) for impl in impls]
    done, (checked,) = _setup(tmp_path, variants, gradcheck=("polar", "numpy"))
    assert checked.ok is True and checked.reference_ok is True, checked.error
    for impl in impls:
        phases = done[impl].phases
        forward = phases["forward"]
        assert forward.status == "ok", (impl, forward.error)
        assert [d["tensor"] for d in forward.deviations] == ["output[0]", "output[1]"], impl
        assert all(d["within_tol"] for d in forward.deviations), (impl, forward.deviations)
        assert forward.returns is None and forward.loops, impl
        for phase in ("backward", "step"):
            if impl == "onnxruntime":
                assert phases[phase].status == "unsupported"
                continue
            assert phases[phase].status == "ok", (impl, phase, phases[phase].error)
            assert phases[phase].loops and phases[phase].estimate_s, (impl, phase)
        grads = phases["backward"].deviations if impl != "onnxruntime" else ()
        assert all(d["within_tol"] for d in grads), (impl, grads)


def test_a_small_output_off_beside_a_large_one_is_found(tmp_path: Path) -> None:
    done, _ = _setup(tmp_path, [Variant.make("skewed_polar", "numpy", {"n": 16})])
    forward = done["numpy"].phases["forward"]
    by_name = {d["tensor"]: d for d in forward.deviations}
    assert by_name["output[0]"]["within_tol"]
    assert not by_name["output[1]"]["within_tol"]
    assert by_name["output[1]"]["max_rel_err"] == pytest.approx(0.05, rel=1e-4)


def test_an_output_without_a_gradient_is_left_out_of_the_backward(tmp_path: Path) -> None:
    variants = [Variant.make("sort", impl, {"n": 16}) for impl in ("numpy", "torch", "compile")]
    done, _ = _setup(tmp_path, variants)
    for impl in ("torch", "compile"):
        for phase in ("forward", "backward", "step"):
            info = done[impl].phases[phase]
            assert info.status == "ok", (impl, phase, info.error)
            assert all(d["within_tol"] for d in info.deviations), (impl, phase)
    assert done["numpy"].phases["forward"].status == "ok"
    assert done["numpy"].phases["step"].status == "unsupported"  # a function of arrays


def test_a_forward_only_layer_sets_up_no_training_phase_of_its_natives(tmp_path: Path) -> None:
    """No baseline has a backward: no verdict reads a native's step, and an integer
    output has no gradient to take (2026-12-02: a NumPy argmax's torch and compile
    rows were 'failed points' of 'element 0 of tensors does not require grad')."""
    variants = [Variant.make("argmax", impl, {"n": 16}) for impl in ("numpy", "torch", "compile")]
    done, _ = _setup(tmp_path, variants)
    for impl in ("numpy", "torch", "compile"):
        assert done[impl].phases["forward"].status == "ok", impl
    for impl in ("torch", "compile"):
        for phase in ("backward", "step"):
            info = done[impl].phases[phase]
            assert info.status == "unsupported" and "forward-only" in str(info.error)
    assert not _layers()["argmax"].trains and _layers()["sort"].trains


@pytest.mark.slow
def test_compile_of_a_forward_only_layer_compiles_its_forward_alone() -> None:
    from harness.forms import build

    layer = _layers()["argmax"]
    point = {"n": 16}
    inputs = layer.make(point, torch.float32, "cpu", seed=0)
    built = build(
        layer, layer.implementation("compile"), point, inputs, "float32", 1, "cpu", [True]
    )
    assert built.oneoff_what == "first call: compile the forward (inference)"
    with torch.inference_mode():
        assert torch.equal(built.fn(*inputs), torch.argmax(inputs[0], dim=-1))


@pytest.mark.slow
def test_compile_of_a_forward_only_layer_is_checked_on_its_forward() -> None:
    from harness.capabilities import capability_matrix

    rows = capability_matrix(_layers()["argmax"], ["torch"], checks=["compile_fullgraph"])
    assert [r["status"] for r in rows] == ["ok"], rows


def test_a_reference_whose_backward_raises_leaves_the_outputs_compared(tmp_path: Path) -> None:
    """2026-12-01: torch's complex SVD refuses a loss that depends on its singular
    vectors' phases; every forward of a public SciPy SVD layer then failed with the
    reference's backward error. Complex outputs compile too (their first calls' backward
    took a .sum() that has no real value to differentiate)."""
    variants = [Variant.make("complex_svd", i, {"n": 4}) for i in ("numpy", "torch", "compile")]
    done, _ = _setup(tmp_path, variants)
    for impl in ("numpy", "torch", "compile"):
        forward = done[impl].phases["forward"]
        assert forward.status == "ok", (impl, forward.error)
        assert [d["tensor"] for d in forward.deviations] == ["output[0]", "output[1]", "output[2]"]
    # no loss of random upstream gradients is defined: the backward says so, not the forward
    for impl in ("torch", "compile"):
        for phase in ("backward", "step"):
            info = done[impl].phases[phase]
            assert info.status == "error" and "ill-defined" in str(info.error), (impl, phase)


def test_the_capability_checks_compare_each_output() -> None:
    from harness.deviation import eager_mismatch as _mismatch

    a, b = torch.linspace(1, 2, 4), torch.linspace(0.1, 1.0, 4)
    assert _mismatch((a, b), (a, b)) is None
    found = _mismatch((a, b * 1.05), (a, b))
    assert found is not None and found.endswith(", in output[1]")
    assert _mismatch(a, (a, b)) == "is 1 tensor, eager gives 2"


@pytest.mark.slow
def test_the_capability_matrix_of_a_layer_of_several_outputs() -> None:
    from harness.capabilities import capability_matrix

    checks = ["script_save", "trace", "compile_fullgraph", "onnx_dynamo"]
    rows = capability_matrix(_layers()["polar"], ["torch"], checks=checks)
    assert {r["check"]: r["status"] for r in rows} == dict.fromkeys(checks, "ok"), rows
