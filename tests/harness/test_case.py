"""Case keys: readable names that round-trip, whatever the order they are built in."""

from __future__ import annotations

from harness.case import Case, Group, Variant


def test_names_round_trip() -> None:
    group = Group("conv2d", (("n", 64), ("k", 3)), "float64", 2, "cpu", "jemalloc")
    assert group.name == "conv2d/n=64,k=3/float64/t2/cpu/jemalloc"
    assert Group.from_name(group.name) == group
    variant = group.variant("torch")
    assert Variant.from_name(variant.name) == variant and variant.group == group
    case = variant.case("backward")
    assert case.name == "conv2d/torch/n=64,k=3/float64/t2/cpu/jemalloc/backward"
    assert Case.from_name(case.name) == case


def test_equal_values_of_other_types_keep_their_own_text() -> None:
    # 2 == 2.0 and they hash alike; a cached name must not give one the other's text
    ints, floats = Group("a", (("n", 2),)), Group("b", (("n", 2.0),))
    assert (ints.point_str, floats.point_str) == ("n=2", "n=2.0")
    assert Group("c", (("n", 2.0),)).point_str == "n=2.0"
    assert Group("d", (("n", 2),)).variant("x").point_str == "n=2"
    assert Case.from_name(floats.variant("x").case("forward").name).variant.point == (("n", 2.0),)
