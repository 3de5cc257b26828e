"""The public API is small and pinned: changing it is a deliberate act."""

from __future__ import annotations

import inspect

import pytest

import harness
import harness.errors
from harness.errors import describe, first_line, root_cause, truncate


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
    # each name resolves to an object of the kind it is documented as
    kinds: dict[str, set[str]] = {}
    for name in harness.__all__:
        obj = getattr(harness, name)
        kind = "class" if inspect.isclass(obj) else "function" if inspect.isfunction(obj) else ""
        kinds.setdefault(kind or type(obj).__name__, set()).add(name)
    assert kinds == {
        "class": {
            "Axis",
            "ConfigError",
            "HarnessError",
            "Implementation",
            "InputError",
            "Layer",
            "LayerDefinitionError",
            "Results",
            "ResultsError",
        },
        "function": {"baseline", "load", "load_results", "native", "run"},
        "tuple": {"FORMS"},  # the derived forms a native implementation gets
        "UnionType": {"AxisValue"},  # int | float | str
        "GenericAlias": {"Point"},  # Mapping[str, AxisValue]
    }


def test_every_error_is_a_harness_error() -> None:
    classes = [
        obj
        for name in harness.errors.__all__
        if isinstance(obj := getattr(harness.errors, name), type)
    ]
    assert sorted(c.__name__ for c in classes) == sorted(
        [
            "ConfigError",
            "FormUnsupported",
            "HarnessError",
            "InputError",
            "LayerDefinitionError",
            "ResultsError",
        ]
    )
    for cls in classes:
        assert issubclass(cls, harness.HarnessError)


# -- the one exception formatter --------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (ValueError("bad value\nsecond line"), "ValueError: bad value"),
        (KeyError("boom"), "KeyError: 'boom'"),
        (RuntimeError("\n\n  \x1b[31mred\x1b[0m first  \nnext"), "RuntimeError: red first"),
        (TimeoutError(), "TimeoutError"),
    ],
)
def test_describe_is_type_and_first_line(exc: BaseException, text: str) -> None:
    assert describe(exc) == text


def test_describe_truncates_to_its_limit() -> None:
    exc = ValueError("x" * 1000)
    assert len(describe(exc)) == 500 and describe(exc).endswith("…")
    assert describe(exc, limit=20) == "ValueError: xxxxxxx…"
    assert describe(exc, limit=None) == "ValueError: " + "x" * 1000
    assert truncate("short", 10) == "short" and first_line(ValueError()) == ""


def test_root_cause_follows_causes_with_a_message() -> None:
    try:
        try:
            try:
                raise KeyError("innermost")
            except KeyError as inner:
                raise ValueError("middle") from inner
        except ValueError as middle:
            raise RuntimeError("") from middle
    except RuntimeError as outer:
        assert str(root_cause(outer)) == "'innermost'"
    quiet = RuntimeError("outer")
    quiet.__cause__ = ValueError("")
    assert root_cause(quiet) is quiet
