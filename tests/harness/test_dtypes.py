"""The dtype list and its tolerances."""

from __future__ import annotations

from harness.dtypes import narrowed_to, returned_for


def test_a_narrowed_dtype_is_read_from_the_returns_finding() -> None:
    finding = "float32 for float64 input (likely `torch.Tensor(array)` ...)"
    assert narrowed_to(finding, "float64") == "float32"
    assert narrowed_to(finding, "float32") is None  # a finding of another dtype's run
    assert narrowed_to("float64 for float32 input (wider)", "float32") is None  # not narrower
    assert narrowed_to(None, "float64") is None and narrowed_to("integers", "float64") is None
    # a layer of several outputs names the one that narrows, as judged_dtype holds it
    several = "output[1]: float32 for float64 input (...)"
    assert narrowed_to(several, "float64") == "float32"


def test_the_returned_and_input_dtypes_are_read_from_the_finding() -> None:
    assert returned_for("float64 for float32 input (a float64 array)") == ("float64", "float32")
    assert returned_for("output[0]: float32 for float64 input (...)") == ("float32", "float64")
    assert returned_for("shape (3,) for (3, 1)") is None and returned_for(None) is None
