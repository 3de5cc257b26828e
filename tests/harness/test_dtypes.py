"""The dtype list and its tolerances."""

from __future__ import annotations

from harness.dtypes import narrowed_to


def test_a_narrowed_dtype_is_read_from_the_returns_finding() -> None:
    finding = "float32 for float64 input (likely `torch.Tensor(array)` ...)"
    assert narrowed_to(finding, "float64") == "float32"
    assert narrowed_to(finding, "float32") is None  # a finding of another dtype's run
    assert narrowed_to("float64 for float32 input (wider)", "float32") is None  # not narrower
    assert narrowed_to(None, "float64") is None and narrowed_to("integers", "float64") is None
