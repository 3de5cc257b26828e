"""Pure wording helpers of harness.report.explain."""

from __future__ import annotations

from harness.report.explain import _one_error

_WRONG = "its gradients exceed tolerance against the float64 reference"


def test_failures_differing_only_in_their_error_size_quote_the_largest() -> None:
    # 2026-12-03: "fails at n=16, 32, 64: ... (max relative error 28)" was n=16's figure
    errors = [f"{_WRONG} (max relative error 28)", f"{_WRONG} (max relative error 99.8)"]
    assert _one_error(errors) == f"{_WRONG} (max relative error up to 1e+02)"
    # the same figure, or other messages: the first, as it is
    same = [f"{_WRONG} (max relative error 28)"] * 2
    assert _one_error(same) == same[0]
    mixed = ["RuntimeError: singular", f"{_WRONG} (max relative error 28)"]
    assert _one_error(mixed) == "RuntimeError: singular"
    assert _one_error(["ValueError: x"]) == "ValueError: x"
