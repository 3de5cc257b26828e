"""The identity of one measurement: frozen, hashable keys with readable names.

- A ``Group`` is one grid point of one layer in one setting (dtype, threads, device,
  allocator): the implementations of a group are timed together, in alternation, so
  that their ratios are paired.
- A ``Variant`` adds the implementation: everything that decides *what* runs.
- A ``Case`` adds the phase (``forward``, ``backward`` or ``step``: see
  ``harness.measure`` for what each times): one timed measurement.

Each has a unique readable ``name`` (the case's is the pyperf benchmark name and the
key of every record), and ``from_name`` inverts it, so a case is found the same way in
every process and every file::

    conv2d/n=64,k=3/float32/t1/cpu/glibc                     a group
    conv2d/torch/n=64,k=3/float32/t1/cpu/glibc               a variant
    conv2d/torch/n=64,k=3/float32/t1/cpu/glibc/backward      a case
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from harness.points import format_point, parse_point

AxisValue = int | float | str

__all__ = ["PHASES", "Case", "Group", "Phase", "Variant"]

Phase = Literal["forward", "backward", "step"]


def _point_text(point: tuple[tuple[str, AxisValue], ...]) -> str:
    # The value types are part of the key: 2 and 2.0 are equal (and hash alike) but
    # read "n=2" and "n=2.0".
    return _typed_point_text(point, tuple(type(v) for _, v in point))


@functools.lru_cache(maxsize=1 << 16)
def _typed_point_text(point: tuple[tuple[str, AxisValue], ...], types: tuple[type, ...]) -> str:
    # names are built for every row at every rebuild, over and over for the same points
    return format_point(dict(point))


#: ``forward`` (inference), ``backward`` (on a retained graph: where a step's time goes)
#: and ``step`` (a whole training step: what training verdicts are decided on).
PHASES: tuple[Phase, ...] = ("forward", "backward", "step")


@dataclass(frozen=True, order=True)
class Group:
    """One (layer, point, dtype, threads, device, allocator): a unit of paired timing."""

    layer: str
    point: tuple[tuple[str, AxisValue], ...]
    dtype: str = "float32"
    threads: int = 1
    device: str = "cpu"
    allocator: str = "glibc"

    @property
    def point_dict(self) -> dict[str, AxisValue]:
        return dict(self.point)

    @property
    def point_str(self) -> str:
        return _point_text(self.point)

    @property
    def setting(self) -> str:
        return f"{self.dtype}/t{self.threads}/{self.device}/{self.allocator}"

    @property
    def name(self) -> str:
        return f"{self.layer}/{self.point_str}/{self.setting}"

    def variant(self, impl: str) -> Variant:
        return Variant(
            self.layer, impl, self.point, self.dtype, self.threads, self.device, self.allocator
        )

    @classmethod
    def from_name(cls, name: str) -> Group:
        parts = name.split("/")
        if len(parts) != 6:
            raise ValueError(f"not a group name: {name!r}")
        layer, point, dtype, threads, device, allocator = parts
        return cls(
            layer, tuple(parse_point(point).items()), dtype, int(threads[1:]), device, allocator
        )


@dataclass(frozen=True, order=True)
class Variant:
    """One (layer, implementation, point, dtype, threads, device, allocator)."""

    layer: str
    impl: str
    point: tuple[tuple[str, AxisValue], ...]
    dtype: str = "float32"
    threads: int = 1
    device: str = "cpu"
    allocator: str = "glibc"

    @classmethod
    def make(
        cls,
        layer: str,
        impl: str,
        point: Mapping[str, AxisValue],
        dtype: str = "float32",
        threads: int = 1,
        device: str = "cpu",
        allocator: str = "glibc",
    ) -> Variant:
        return cls(layer, impl, tuple(point.items()), dtype, threads, device, allocator)

    @property
    def group(self) -> Group:
        return Group(self.layer, self.point, self.dtype, self.threads, self.device, self.allocator)

    @property
    def point_dict(self) -> dict[str, AxisValue]:
        return dict(self.point)

    @property
    def point_str(self) -> str:
        return _point_text(self.point)

    @property
    def name(self) -> str:
        return f"{self.layer}/{self.impl}/{self.point_str}/{self.group.setting}"

    def case(self, phase: Phase) -> Case:
        return Case(self, phase)

    @classmethod
    def from_name(cls, name: str) -> Variant:
        """Inverse of ``name``."""
        return Case.from_name(f"{name}/forward").variant


@dataclass(frozen=True, order=True)
class Case:
    """One timed measurement: a variant and a phase."""

    variant: Variant
    phase: Phase

    @property
    def name(self) -> str:
        return f"{self.variant.name}/{self.phase}"

    @classmethod
    def from_name(cls, name: str) -> Case:
        """Inverse of ``name`` (axis values come back as int, float or str)."""
        parts = name.split("/")
        if len(parts) != 8 or parts[7] not in PHASES:
            raise ValueError(f"not a case name: {name!r}")
        layer, impl, point, dtype, threads, device, allocator, phase = parts
        variant = Variant(
            layer,
            impl,
            tuple(parse_point(point).items()),
            dtype,
            int(threads[1:]),
            device,
            allocator,
        )
        return cls(variant, phase)  # type: ignore[arg-type]
