"""A layer's arguments after the tensors, per grid point (``Layer(arguments=...)``):
every implementation, its forms and the reference get them, and ONNX exports, which
bake them in, are kept apart by them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from harness import baseline
from harness.errors import LayerDefinitionError
from harness.registry import load_layers_from, validate_layer

FIXTURE = str(Path(__file__).resolve().parents[1] / "fixtures" / "arguments_layers.py")


def _layer():  # type: ignore[no-untyped-def]
    (layer,) = load_layers_from(FIXTURE)
    return layer


def test_every_implementation_and_the_reference_get_the_points_arguments() -> None:
    layer = _layer()
    assert validate_layer(layer) == []
    x = torch.randn(8, dtype=torch.float64)
    for k in (2, 3):
        point = {"n": 8, "k": k}
        assert torch.equal(layer.reference_for(point)(x), x * k)
        for impl in layer.all_implementations():
            if impl.form in ("eager",):
                assert torch.allclose(impl.callable_for(point)(x), x * k), impl.name
    bad = replace(layer, arguments=lambda point: int(point["k"]))
    with pytest.raises(LayerDefinitionError, match="arguments must return a tuple"):
        validate_layer(bad)


class _ArgumentFirst(torch.autograd.Function):
    """graphnet's LogCMK (2026-12-02) takes its non-tensor first: forward(ctx, m, kappa)."""

    @staticmethod
    def forward(ctx, k, x):  # type: ignore[no-untyped-def]
        return x.mul(k)  # called apply(x, k): an int has no .mul

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        return None, grad


def test_a_function_taking_its_argument_first_is_told_the_order_it_is_called_in() -> None:
    from harness.layer import call_order_hint

    layer = _layer()
    assert call_order_hint(layer.implementation("numpy").fn, ["x"], 1) is None
    assert call_order_hint(torch_mul, ["x"], 1) is None
    swapped = replace(
        layer,
        implementations=(baseline("numpy", _ArgumentFirst), *layer.implementations[1:]),
    )
    (note,) = validate_layer(swapped)
    assert "implementation 'numpy' failed at n=8,k=2" in note
    assert note.endswith(
        "(_ArgumentFirst.forward takes (k, x), but the harness passes (x, <argument>): the "
        "layer's inputs first, then its arguments; declare a function that calls it in its "
        "own order)"
    ), note


def torch_mul(x: torch.Tensor, k: int) -> torch.Tensor:
    return x * k


def test_the_checks_run_with_the_arguments(tmp_path: Path) -> None:
    from harness.case import Variant
    from harness.protocol import EventLog, GradcheckDone, Job, SetupDone
    from harness.worker import Worker

    raw = tmp_path / "setup.jsonl"
    worker = Worker(Job("setup", (), str(raw), layers_from=(FIXTURE,), memory=False))
    worker.gradcheck("scale", "numpy")
    for impl in ("numpy", "torch", "torchscript"):
        worker.setup(Variant.make("scale", impl, {"n": 8, "k": 3}))
    worker.log.close()
    events = list(EventLog.read(raw))
    (checked,) = [e for e in events if isinstance(e, GradcheckDone)]
    assert checked.ok is True and checked.reference_ok is True, checked.error
    for done in (e for e in events if isinstance(e, SetupDone)):
        for phase, info in done.phases.items():
            assert info.status == "ok", (done.variant.impl, phase, info.error)
            assert all(d["within_tol"] for d in info.deviations), (done.variant.impl, phase)


@pytest.mark.slow
def test_onnx_exports_are_kept_apart_by_the_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export bakes k in: k=2 and k=3 at the same shapes must not share a model."""
    from harness.forms import build

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    layer = _layer()
    onnx = next(i for i in layer.all_implementations() if i.form == "onnxruntime")
    x = torch.randn(8)
    for k in (2, 3):
        point = {"n": 8, "k": k}
        built = build(layer, onnx, point, (x,), "float32", 1, "cpu", (True,))
        assert torch.allclose(built.fn(x), x * k), k


def test_the_capability_matrix_calls_with_the_arguments() -> None:
    from harness.capabilities import capability_matrix

    rows = capability_matrix(_layer(), ["torch"], checks=["script_save", "trace"])
    assert {r["check"]: r["status"] for r in rows} == {"script_save": "ok", "trace": "ok"}, rows
