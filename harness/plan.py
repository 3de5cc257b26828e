"""From a ``RunConfig`` to the groups and variants to measure, validated up front.

Everything that can be wrong with the user's request is found here, before any
folder is created or anything measured: unknown layers or implementations, grid axes
no selected layer has, values an axis refuses, a grid with no valid point, a device or
allocator that is not there. With ``--shard K/N`` the plan keeps the K-th of N
deterministic, cost-balanced parts; the unit of the split is the group (every
implementation of one grid point), so paired comparisons stay paired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.case import Group, Variant
from harness.config import RunConfig
from harness.errors import ConfigError
from harness.layer import AxisValue, Layer
from harness.registry import Registry

if TYPE_CHECKING:
    from harness.shard import Shard

__all__ = ["LayerInfo", "Plan", "make_plan"]


@dataclass(frozen=True)
class LayerInfo:
    """What the report needs to know of a layer, recorded in run.json."""

    name: str
    axes: tuple[str, ...]
    size_axis: str
    baselines: tuple[str, ...]
    backward: tuple[str, ...]
    """Implementations (declared and derived) that run backward."""
    sources: dict[str, str]
    """Implementation -> the declared implementation it is (or derives from)."""
    roles: dict[str, str]
    forms: dict[str, str]
    reference_is: str | None = None
    """The implementation whose function is the layer's reference itself, if one is:
    its deviations then measure its dtype alone, and the report says so."""

    def to_json(self) -> dict[str, object]:
        return {
            **({"reference_is": self.reference_is} if self.reference_is else {}),
            "axes": list(self.axes),
            "size_axis": self.size_axis,
            "baselines": list(self.baselines),
            "backward": list(self.backward),
            "sources": self.sources,
            "roles": self.roles,
            "forms": self.forms,
        }


@dataclass(frozen=True)
class Plan:
    """The variants of a run grouped by grid point, in a fixed order, and what was
    left out and why."""

    config: RunConfig
    layers: tuple[str, ...]
    groups: tuple[Group, ...]
    impls: dict[str, tuple[str, ...]]
    """Layer -> implementations measured, in declaration order (baselines first)."""
    dropped: tuple[str, ...]
    info: dict[str, LayerInfo]

    @property
    def variants(self) -> tuple[Variant, ...]:
        return tuple(g.variant(i) for g in self.groups for i in self.impls[g.layer])

    def variants_of(self, group: Group) -> tuple[Variant, ...]:
        return tuple(group.variant(i) for i in self.impls[group.layer])

    def impls_of(self, layer: str) -> list[str]:
        return list(self.impls.get(layer, ()))


def _selected_layers(registry: Registry, config: RunConfig) -> list[Layer]:
    names = config.layers or tuple(registry.names())
    return [registry.get(n) for n in names]


def _layer_info(layer: Layer, impls: tuple[str, ...]) -> LayerInfo:
    chosen = [layer.implementation(i) for i in impls]
    return LayerInfo(
        name=layer.name,
        axes=layer.axis_names,
        size_axis=layer.size_axis_name,
        baselines=tuple(i.name for i in chosen if i.role == "baseline"),
        # a forward-only layer's natives run no backward either (Layer.trains)
        backward=tuple(i.name for i in chosen if i.backward and layer.trains),
        sources={i.name: i.origin for i in chosen},
        roles={i.name: i.role for i in chosen},
        forms={i.name: i.form for i in chosen},
        reference_is=next((i.name for i in chosen if _is_reference(layer, i.fn)), None),
    )


def _is_reference(layer: Layer, fn: object) -> bool:
    """Whether ``fn`` (a function, or an autograd Function class) is the reference."""
    ref = layer.reference
    return fn is not None and (fn is ref or getattr(fn, "apply", None) == ref)


def make_plan(registry: Registry, config: RunConfig) -> Plan:
    """Validate ``config`` against the registry and enumerate its groups."""
    layers = _selected_layers(registry, config)
    _check_request(layers, config)
    groups: list[Group] = []
    impls: dict[str, tuple[str, ...]] = {}
    info: dict[str, LayerInfo] = {}
    dropped: list[str] = []
    for layer in layers:
        points, why = _layer_points(layer, config)
        dropped.extend(f"{layer.name}: {w}" for w in why)
        chosen = tuple(
            i.name
            for i in layer.all_implementations()
            if config.impls is None or i.name in config.impls
        )
        if not chosen:
            continue
        impls[layer.name] = chosen
        info[layer.name] = _layer_info(layer, chosen)
        groups += _layer_groups(layer, points, config)
    if not groups:
        raise ConfigError("nothing to measure: no selected layer has the selected implementations")
    if config.shard is not None:
        groups = _shard_part(groups, impls, config.shard)
    return Plan(
        config,
        tuple(layer.name for layer in layers if layer.name in impls),
        tuple(groups),
        impls,
        tuple(dropped),
        info,
    )


def _check_request(layers: Sequence[Layer], config: RunConfig) -> None:
    """``ConfigError`` for what the selected layers or this machine cannot give: an
    implementation or grid axis no selected layer has, a CUDA device or an
    allocator that is not here. Checked before any point is made."""
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
    from harness.environment import allocator_env

    for allocator in config.allocators:
        allocator_env(allocator)  # raises ConfigError when it is not installed here


def _layer_points(layer: Layer, config: RunConfig) -> tuple[list[dict[str, AxisValue]], list[str]]:
    """The layer's valid grid points with ``--grid`` applied to its own axes (each
    value parsed by its axis), and why the others were left out; ``ConfigError``
    when no point is valid, as nothing of the layer could be measured."""
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
    return points, why


def _layer_groups(
    layer: Layer, points: Sequence[dict[str, AxisValue]], config: RunConfig
) -> list[Group]:
    """One group per point and setting (dtype, threads, device, allocator), in this
    nesting order: the plan's order, which the runner and the tables keep."""
    return [
        Group(layer.name, tuple(point.items()), dtype, threads, device, allocator)
        for point in points
        for dtype in config.dtypes
        for threads in config.threads
        for device in config.devices
        for allocator in config.allocators
    ]


def _shard_part(
    groups: list[Group], impls: Mapping[str, tuple[str, ...]], shard: Shard
) -> list[Group]:
    """The groups of ``--shard K/N``'s part: groups split into N parts of about equal
    cost (``harness.shard``), whole groups so that paired comparisons stay paired."""
    from harness.shard import assign, group_cost

    if shard.count > len(groups):
        # more parts than groups would leave parts empty (and 10**12 parts would
        # exhaust memory): the scheduler was asked for the wrong number of copies
        raise ConfigError(
            f"--shard {shard}: {shard.count} parts but the plan has only "
            f"{len(groups)} groups (points x settings); use at most {len(groups)} parts"
        )
    costs = [(g.name, group_cost(g.point_dict, 2 * len(impls[g.layer]))) for g in groups]
    part = assign(costs, shard.count)
    return [g for g in groups if part[g.name] == shard.index]
