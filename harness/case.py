"""The identity of one measurement: frozen, hashable keys with readable names.

- A ``Group`` is one grid point of one layer in one setting (dtype, threads, device,
  allocator): the implementations of a group are timed together, in alternation, so
  that their ratios are paired.
- A ``Variant`` adds the implementation: everything that decides *what* runs.
- A ``Case`` adds the phase (``forward``, ``backward`` or ``step``: see
  ``harness.measure`` for what each times): one timed measurement.

Each has a unique readable ``name`` (the case's is the pyperf benchmark name and the
``case``/``group`` columns of results.csv)::

    conv2d/n=64,k=3/float32/t1/cpu/glibc                     a group
    conv2d/torch/n=64,k=3/float32/t1/cpu/glibc               a variant
    conv2d/torch/n=64,k=3/float32/t1/cpu/glibc/backward      a case

A name is built, never parsed back: between processes and in raw files a key travels
as data (``to_json``/``from_json``: a JSON object whose point is a list of
``[axis, value]`` pairs, each value keeping its type, so ``"3"``, ``3`` and ``3.0``
stay apart and a value may hold ``/``, ``,`` or ``=``). Only the raw files of protocol
schema 2 carried names; ``harness.protocol`` reads those.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.points import format_point

AxisValue = int | float | str

__all__ = ["PHASES", "PROCESS_PHASES", "Case", "Group", "Phase", "Variant", "point_from_json"]

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
#: The phases timed in one process, where each group gets processes of its own
#: (``harness.worker.time_apart``; ``harness.schedule`` budgets a process for each): an
#: inference process has run forwards only, a training loop steps only (its backward,
#: timed on a retained graph to explain the step, comes after). Timed in one process,
#: the forwards set glibc's adaptive mmap and trim thresholds for the steps: torch's
#: fft step at n=1024 on 2 threads then took fresh pages each call (5,090 faults, 12
#: ms) where steps alone reuse their heap (0 faults, 9 ms) (2026-12-03, AVX512).
PROCESS_PHASES: tuple[tuple[Phase, ...], ...] = (("forward",), ("step", "backward"))


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

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "point": [[axis, value] for axis, value in self.point],
            "dtype": self.dtype,
            "threads": self.threads,
            "device": self.device,
            "allocator": self.allocator,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Group:
        """Inverse of ``to_json``; ``ValueError`` naming what is wrong."""
        return cls(
            _text(data, "layer"),
            point_from_json(data.get("point")),
            _text(data, "dtype"),
            _count(data),
            _text(data, "device"),
            _text(data, "allocator"),
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

    def to_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "impl": self.impl, **self.group.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Variant:
        """Inverse of ``to_json``; ``ValueError`` naming what is wrong."""
        group = Group.from_json(data)
        return group.variant(_text(data, "impl"))


@dataclass(frozen=True, order=True)
class Case:
    """One timed measurement: a variant and a phase."""

    variant: Variant
    phase: Phase

    @property
    def name(self) -> str:
        return f"{self.variant.name}/{self.phase}"

    def to_json(self) -> dict[str, Any]:
        return {**self.variant.to_json(), "phase": self.phase}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Case:
        """Inverse of ``to_json``; ``ValueError`` naming what is wrong."""
        phase = data.get("phase")
        if phase not in PHASES:
            raise ValueError(f"not a phase: {phase!r} (one of {', '.join(PHASES)})")
        return cls(Variant.from_json(data), phase)


def point_from_json(pairs: object) -> tuple[tuple[str, AxisValue], ...]:
    """``[["n", 64], ["mode", "3"]]`` -> ``(("n", 64), ("mode", "3"))``: each value keeps
    the type JSON gave it (int, float or str)."""
    if not isinstance(pairs, Sequence) or isinstance(pairs, str):
        raise ValueError(f"not a point: {pairs!r} (expected a list of [axis, value] pairs)")
    out = []
    for pair in pairs:
        if (
            not isinstance(pair, Sequence)
            or isinstance(pair, str)
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or isinstance(pair[1], bool)
            or not isinstance(pair[1], int | float | str)
        ):
            raise ValueError(f"not an [axis, value] pair: {pair!r}")
        out.append((pair[0], pair[1]))
    return tuple(out)


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a string, got {value!r}")
    return value


def _count(data: Mapping[str, Any]) -> int:
    value = data.get("threads")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"threads: expected an integer, got {value!r}")
    return value
