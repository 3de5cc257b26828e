"""From a ``RunConfig`` to the list of variants to measure, validated up front.

Everything that can be wrong with the user's request is found here, before any
folder is created or anything measured: unknown layers or implementations, grid axes
no selected layer has, values an axis refuses, a grid with no valid point, a device
that is not there.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.case import PHASES, Case, Variant
from harness.config import RunConfig
from harness.errors import ConfigError
from harness.layer import AxisValue, Layer
from harness.registry import Registry

__all__ = ["Plan", "make_plan"]


@dataclass(frozen=True)
class Plan:
    """The variants of a run, in a fixed order, and what was left out and why."""

    config: RunConfig
    layers: tuple[str, ...]
    variants: tuple[Variant, ...]
    dropped: tuple[str, ...]

    @property
    def cases(self) -> tuple[Case, ...]:
        return tuple(v.case(ph) for v in self.variants for ph in PHASES)

    def impls_of(self, layer: str) -> list[str]:
        return list(dict.fromkeys(v.impl for v in self.variants if v.layer == layer))


def _selected_layers(registry: Registry, config: RunConfig) -> list[Layer]:
    names = config.layers or tuple(registry.names())
    if len(set(names)) != len(names):
        raise ConfigError(f"--layers lists a layer twice: {','.join(names)}")
    return [registry.get(n) for n in names]


def make_plan(registry: Registry, config: RunConfig) -> Plan:
    """Validate ``config`` against the registry and enumerate its variants."""
    layers = _selected_layers(registry, config)
    if config.impls is not None:
        for name in config.impls:
            if not any(name in (i.name for i in layer.all_implementations()) for layer in layers):
                known = sorted({i.name for layer in layers for i in layer.all_implementations()})
                raise ConfigError(
                    f"unknown implementation {name!r} for layers {', '.join(layer.name for layer in layers)} "
                    f"(known: {', '.join(known)})"
                )
    for axis in config.grid:
        if not any(axis in layer.axis_names for layer in layers):
            have = sorted({a for layer in layers for a in layer.axis_names})
            raise ConfigError(
                f"--grid axis {axis!r} is not an axis of the selected layers (axes: {', '.join(have)})"
            )
    if "cuda" in config.devices:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device is available here")

    variants: list[Variant] = []
    dropped: list[str] = []
    for layer in layers:
        overrides: dict[str, list[AxisValue]] = {}
        for axis_name, raw_values in config.grid.items():
            if axis_name in layer.axis_names:
                spec = layer.axis(axis_name)
                overrides[axis_name] = [spec.parse(v, layer.name) for v in raw_values]
        points, why = layer.points(overrides)
        if not points:
            raise ConfigError(
                f"layer {layer.name!r}: no valid point in the grid ({why[0] if why else 'empty grid'})"
            )
        dropped.extend(f"{layer.name}: {w}" for w in why)
        impls = [
            i for i in layer.all_implementations() if config.impls is None or i.name in config.impls
        ]
        if not impls:
            continue
        for point in points:
            for impl in impls:
                for dtype in config.dtypes:
                    for threads in config.threads:
                        for device in config.devices:
                            variants.append(
                                Variant.make(layer.name, impl.name, point, dtype, threads, device)
                            )
    if not variants:
        raise ConfigError("nothing to measure: no selected layer has the selected implementations")
    return Plan(config, tuple(layer.name for layer in layers), tuple(variants), tuple(dropped))
