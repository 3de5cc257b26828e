"""The public API is small and pinned: changing it is a deliberate act."""

from __future__ import annotations

import harness
import harness.errors


def test_public_api_is_pinned() -> None:
    assert sorted(harness.__all__) == sorted(
        [
            "FORMS",
            "Axis",
            "AxisValue",
            "ConfigError",
            "HarnessError",
            "Implementation",
            "InputError",
            "Layer",
            "LayerDefinitionError",
            "Point",
            "Results",
            "ResultsError",
            "baseline",
            "load",
            "load_results",
            "native",
            "run",
        ]
    )
    for name in harness.__all__:
        assert getattr(harness, name) is not None


def test_every_error_is_a_harness_error() -> None:
    for name in harness.errors.__all__:
        assert issubclass(getattr(harness.errors, name), harness.HarnessError)
