"""A variant made ready to time (``harness.prepared``): its served forward."""

from __future__ import annotations

import pytest
import torch

from harness import Axis, Layer, baseline, native
from harness.case import Variant
from harness.forms import Built
from harness.prepared import Prepared


def _no_inference_mode(x: torch.Tensor) -> torch.Tensor:
    if torch.is_inference_mode_enabled():
        raise AssertionError("Guard failed on the same frame it was created")
    return x * 2


def _prepared(fn: object) -> Prepared:
    layer = Layer(
        name="lay",
        description="x times 2",
        axes=(Axis("n", (4,)),),
        inputs={"x": 1},
        make_inputs=lambda p, g: (torch.randn(int(p["n"]), generator=g),),
        reference=lambda x: x * 2,
        implementations=(baseline("numpy", lambda x: x * 2), native("torch", fn)),  # type: ignore[arg-type]
    )
    impl = layer.implementation("torch")
    (x,) = layer.make({"n": 4}, torch.float32, "cpu", seed=0)
    variant = Variant.make("lay", "torch", {"n": 4})
    return Prepared(variant, layer, impl, Built(impl.callable_for({"n": 4})), (x,), (True,), 0)


def test_a_forward_failing_under_inference_mode_alone_names_the_mode() -> None:
    """2026-12-02: a compiled native with torch.from_numpy inside failed a Dynamo guard
    under inference_mode alone; the report showed the guard's AssertionError beside a
    capability matrix that said compile ✓, the trigger unnamed."""
    with pytest.raises(RuntimeError, match=r"fails under torch.inference_mode\(\), the mode") as e:
        _prepared(_no_inference_mode).forward()
    assert "runs under torch.no_grad() (serve it there): AssertionError: Guard failed" in str(
        e.value
    )

    def always(x: torch.Tensor) -> torch.Tensor:
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):  # failing either way: its own error
        _prepared(always).forward()
