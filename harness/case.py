"""The identity of one measurement: a frozen, hashable case key.

A ``Variant`` is everything that decides *what* runs (layer, implementation, grid
point, dtype, threads, device); a ``Case`` adds the phase (forward or backward).
Both have a unique readable ``name`` that is the pyperf benchmark name and the key of
every record, so a case is found the same way in every process and every file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from harness.layer import AxisValue

__all__ = ["PHASES", "Case", "Phase", "Variant"]

Phase = Literal["forward", "backward"]
PHASES: tuple[Phase, ...] = ("forward", "backward")


@dataclass(frozen=True, order=True)
class Variant:
    """One (layer, implementation, point, dtype, threads, device)."""

    layer: str
    impl: str
    point: tuple[tuple[str, AxisValue], ...]
    dtype: str = "float32"
    threads: int = 1
    device: str = "cpu"

    @classmethod
    def make(
        cls,
        layer: str,
        impl: str,
        point: Mapping[str, AxisValue],
        dtype: str = "float32",
        threads: int = 1,
        device: str = "cpu",
    ) -> Variant:
        return cls(layer, impl, tuple(point.items()), dtype, threads, device)

    @property
    def point_dict(self) -> dict[str, AxisValue]:
        return dict(self.point)

    @property
    def point_str(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.point)

    @property
    def name(self) -> str:
        return (
            f"{self.layer}/{self.impl}/{self.point_str}/{self.dtype}/t{self.threads}/{self.device}"
        )

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
        layer, impl, point, dtype, threads, device, phase = name.split("/")
        pairs: list[tuple[str, AxisValue]] = []
        for item in point.split(","):
            key, _, raw = item.partition("=")
            pairs.append((key, _parse_value(raw)))
        if phase not in PHASES:
            raise ValueError(f"not a case name: {name!r}")
        return cls(Variant(layer, impl, tuple(pairs), dtype, int(threads[1:]), device), phase)  # type: ignore[arg-type]


def _parse_value(raw: str) -> AxisValue:
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw
