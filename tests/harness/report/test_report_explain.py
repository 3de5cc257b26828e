"""Pure wording helpers of harness.report.explain."""

from __future__ import annotations

from harness.report.decide import PointDecision
from harness.report.explain import _one_error

_WRONG = "its gradients exceed tolerance against the float64 reference"


def _failed(size: float, error: str | None, rel_err: float | None = None) -> PointDecision:
    return PointDecision(
        size, None, None, None, "baseline", frozenset({"baseline"}), "native", error,
        rel_err=rel_err,
    )  # fmt: skip


def test_failures_differing_only_in_their_error_size_quote_the_largest() -> None:
    # 2026-12-03: "fails at n=16, 32, 64: ... (max relative error 28)" was n=16's figure
    errors = [_failed(16, _WRONG, 28.0), _failed(32, _WRONG, 99.8)]
    assert _one_error(errors) == f"{_WRONG} (max relative error up to 1e+02)"
    # the same figure: said once, without "up to"
    same = [_failed(16, _WRONG, 28.0), _failed(32, _WRONG, 28.0)]
    assert _one_error(same) == f"{_WRONG} (max relative error 28)"
    # other messages: the first, with its own figure where it has one
    mixed = [_failed(16, "RuntimeError: singular"), _failed(32, _WRONG, 28.0)]
    assert _one_error(mixed) == "RuntimeError: singular"
    assert _one_error(mixed[::-1]) == f"{_WRONG} (max relative error 28)"
    assert _one_error([_failed(16, "ValueError: x")]) == "ValueError: x"
    assert _one_error([_failed(16, None)]) == "no message"
