"""Case keys: readable names, and structured values that round-trip exactly."""

from __future__ import annotations

import json

import pytest

from harness.case import Case, Group, Variant


def test_names_read_as_documented() -> None:
    group = Group("conv2d", (("n", 64), ("k", 3)), "float64", 2, "cpu", "jemalloc")
    assert group.name == "conv2d/n=64,k=3/float64/t2/cpu/jemalloc"
    variant = group.variant("torch")
    assert variant.name == "conv2d/torch/n=64,k=3/float64/t2/cpu/jemalloc"
    assert variant.group == group
    case = variant.case("backward")
    assert case.name == "conv2d/torch/n=64,k=3/float64/t2/cpu/jemalloc/backward"


@pytest.mark.parametrize(
    "value", ["a/b", "1,2", "x=y", "3", 3, 3.0, "3.0", "", " padded ", "n=1,k=2/x"]
)
def test_axis_values_round_trip_exactly_through_json(value: object) -> None:
    group = Group("layer", (("v", value), ("n", 8)), "float64", 2, "cpu", "jemalloc")  # type: ignore[arg-type]
    case = group.variant("torch").case("step")
    for key in (group, group.variant("torch"), case):
        back = type(key).from_json(json.loads(json.dumps(key.to_json())))  # type: ignore[attr-defined]
        assert back == key
        point = back.variant.point if isinstance(back, Case) else back.point
        assert type(dict(point)["v"]) is type(value)  # "3" stays a str, 3.0 a float


def test_equal_values_of_other_types_keep_their_own_text() -> None:
    # 2 == 2.0 and they hash alike; a cached name must not give one the other's text
    ints, floats = Group("a", (("n", 2),)), Group("b", (("n", 2.0),))
    assert (ints.point_str, floats.point_str) == ("n=2", "n=2.0")
    assert Group("c", (("n", 2.0),)).point_str == "n=2.0"
    assert Group("d", (("n", 2),)).variant("x").point_str == "n=2"
    back = Case.from_json(floats.variant("x").case("forward").to_json())
    assert back.variant.point == (("n", 2.0),) and isinstance(back.variant.point[0][1], float)
    assert Variant.from_json(ints.variant("x").to_json()).point_str == "n=2"
