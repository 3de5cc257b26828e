"""What a run measures: profiles, grid parsing, and the run configuration.

A ``RunConfig`` comes from the command line or from a TOML file holding the same
settings, for example::

    layers = ["conv2d"]
    impls = ["scipy", "torch", "compile"]
    dtype = ["float32"]
    threads = [1]
    device = ["cpu"]
    profile = "quick"

    [grid]
    n = "8..1024*2"      # 8, 16, ..., 1024; also "8..64+8" or [8, 16, 32]
    k = [3, 15]
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "DTYPES",
    "PROFILES",
    "Profile",
    "RunConfig",
    "load_config",
    "parse_grid",
    "parse_grid_values",
    "parse_list",
]

DTYPES = ("float16", "bfloat16", "float32", "float64")


@dataclass(frozen=True)
class Profile:
    """How much measuring each point gets.

    ``processes`` worker processes each run every case, in a different order;
    each contributes ``warmups`` discarded and ``values`` kept values, and one value
    repeats the call ``loops`` times, with ``loops`` calibrated so a value lasts at
    least ``min_time`` seconds. ``case_timeout_s`` bounds one case in one process.
    """

    name: str
    processes: int
    values: int
    warmups: int
    min_time: float
    case_timeout_s: float = 120.0


PROFILES: dict[str, Profile] = {
    "quick": Profile("quick", processes=2, values=3, warmups=1, min_time=0.002, case_timeout_s=60),
    "default": Profile("default", processes=2, values=3, warmups=1, min_time=0.01),
    "rigorous": Profile(
        "rigorous", processes=10, values=5, warmups=2, min_time=0.1, case_timeout_s=600
    ),
}


def parse_list(text: str | Sequence[Any], what: str) -> tuple[str, ...]:
    """``"a,b"`` or ``["a", "b"]`` -> ``("a", "b")``; empty items are an error."""
    items = (
        [str(x).strip() for x in text]
        if not isinstance(text, str)
        else [x.strip() for x in text.split(",")]
    )
    if not items or any(not x for x in items):
        raise ConfigError(f"{what}: expected a comma-separated list, got {text!r}")
    return tuple(items)


def parse_grid_values(axis: str, text: str) -> tuple[str, ...]:
    """Expand one axis's values: ``8,16,32``, ``8..1024*2`` (geometric), ``8..64+8``
    (arithmetic), or a mix of them separated by commas. Values stay strings until an
    axis parses them into its type."""
    out: list[str] = []
    for item in parse_list(text, f"--grid {axis}"):
        if ".." not in item:
            out.append(item)
            continue
        start_s, _, rest = item.partition("..")
        op = "*" if "*" in rest else "+" if "+" in rest else ""
        stop_s, _, step_s = rest.partition(op) if op else (rest, "", "")
        try:
            start, stop = int(start_s), int(stop_s)
            step = int(step_s) if op else 1
        except ValueError:
            raise ConfigError(
                f"--grid {axis}={text}: range {item!r} must look like 8..1024*2 or 8..64+8"
            ) from None
        if start > stop:
            raise ConfigError(f"--grid {axis}={text}: range {item!r} is empty (start > stop)")
        if (op == "*" and step < 2) or (op != "*" and step < 1):
            raise ConfigError(f"--grid {axis}={text}: step of {item!r} never reaches {stop}")
        if op == "*" and start <= 0:
            raise ConfigError(f"--grid {axis}={text}: a geometric range must start above 0")
        value, count = start, 0
        while value <= stop:
            out.append(str(value))
            value = value * step if op == "*" else value + step
            count += 1
            if count > 10_000:
                raise ConfigError(f"--grid {axis}={text}: range {item!r} has too many values")
    # keep order, drop repeats
    return tuple(dict.fromkeys(out))


def parse_grid(items: Sequence[str] | Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """``["n=8,16", "k=3"]`` (or a TOML table) -> ``{"n": ("8", "16"), "k": ("3",)}``."""
    grid: dict[str, tuple[str, ...]] = {}
    pairs: list[tuple[str, Any]]
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            axis, eq, values = item.partition("=")
            if not eq or not axis.strip():
                raise ConfigError(f"--grid {item!r}: expected AXIS=VALUES, such as n=8,16,32")
            pairs.append((axis.strip(), values))
    for axis, values in pairs:
        if axis in grid:
            raise ConfigError(f"--grid: axis {axis!r} given twice")
        if isinstance(values, list | tuple):
            values = ",".join(str(v) for v in values)
        grid[axis] = parse_grid_values(axis, str(values))
    return grid


@dataclass(frozen=True)
class RunConfig:
    """Everything ``python -m harness run`` needs to know; the cartesian product of
    grid, dtypes, threads and devices (per selected layer and implementation) is the
    set of points measured."""

    layers: tuple[str, ...] | None = None
    impls: tuple[str, ...] | None = None
    grid: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    dtypes: tuple[str, ...] = ("float32",)
    threads: tuple[int, ...] = (1,)
    devices: tuple[str, ...] = ("cpu",)
    profile: str = "default"
    layers_from: tuple[str, ...] = ()
    seed: int = 0
    capabilities: bool = True
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ConfigError(
                f"timeout must be a positive number of seconds, got {self.timeout_s!r}"
            )
        for dtype in self.dtypes:
            if dtype not in DTYPES:
                raise ConfigError(f"unknown dtype {dtype!r} (known: {', '.join(DTYPES)})")
        for t in self.threads:
            if isinstance(t, bool) or not isinstance(t, int) or t < 1:
                raise ConfigError(f"threads must be positive integers, got {t!r}")
        for device in self.devices:
            if device not in ("cpu", "cuda"):
                raise ConfigError(f"unknown device {device!r} (known: cpu, cuda)")
        if self.profile not in PROFILES:
            raise ConfigError(f"unknown profile {self.profile!r} (known: {', '.join(PROFILES)})")
        for name in ("dtypes", "threads", "devices"):
            if not getattr(self, name):
                raise ConfigError(f"{name} must not be empty")

    @property
    def profile_spec(self) -> Profile:
        """The profile, with ``timeout_s`` applied when given."""
        base = PROFILES[self.profile]
        return replace(base, case_timeout_s=self.timeout_s) if self.timeout_s else base

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["grid"] = {k: list(v) for k, v in self.grid.items()}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunConfig:
        return cls(
            layers=tuple(data["layers"]) if data.get("layers") else None,
            impls=tuple(data["impls"]) if data.get("impls") else None,
            grid={k: tuple(v) for k, v in data.get("grid", {}).items()},
            dtypes=tuple(data.get("dtypes", ("float32",))),
            threads=tuple(int(t) for t in data.get("threads", (1,))),
            devices=tuple(data.get("devices", ("cpu",))),
            profile=data.get("profile", "default"),
            layers_from=tuple(data.get("layers_from", ())),
            seed=int(data.get("seed", 0)),
            capabilities=bool(data.get("capabilities", True)),
            timeout_s=data.get("timeout_s"),
        )

    def updated(self, **changes: Any) -> RunConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _ints(values: tuple[str, ...], what: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in values)
    except ValueError:
        raise ConfigError(f"{what}: expected integers, got {','.join(values)!r}") from None
    return out


_CONFIG_KEYS = {
    "layers",
    "impls",
    "grid",
    "dtype",
    "dtypes",
    "threads",
    "device",
    "devices",
    "profile",
    "layers_from",
    "seed",
    "capabilities",
    "timeout_s",
}


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML config into keyword arguments for ``RunConfig`` (and ``out``)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _CONFIG_KEYS - {"out"})
    if unknown:
        raise ConfigError(f"config {path}: unknown keys {unknown} (known: {sorted(_CONFIG_KEYS)})")
    kwargs: dict[str, Any] = {}
    try:
        if "layers" in data:
            kwargs["layers"] = parse_list(data["layers"], "layers")
        if "impls" in data:
            kwargs["impls"] = parse_list(data["impls"], "impls")
        if "grid" in data:
            if not isinstance(data["grid"], dict):
                raise ConfigError("grid must be a table of axis = values")
            kwargs["grid"] = parse_grid(data["grid"])
        for key, target in (
            ("dtype", "dtypes"),
            ("dtypes", "dtypes"),
            ("device", "devices"),
            ("devices", "devices"),
        ):
            if key in data:
                kwargs[target] = parse_list(_as_list(data[key]), key)
        if "threads" in data:
            kwargs["threads"] = _ints(parse_list(_as_list(data["threads"]), "threads"), "threads")
        if "profile" in data:
            kwargs["profile"] = str(data["profile"])
        if "layers_from" in data:
            kwargs["layers_from"] = parse_list(_as_list(data["layers_from"]), "layers_from")
        if "seed" in data:
            kwargs["seed"] = int(data["seed"])
        if "capabilities" in data:
            kwargs["capabilities"] = bool(data["capabilities"])
        if "timeout_s" in data:
            kwargs["timeout_s"] = float(data["timeout_s"])
        if "out" in data:
            kwargs["out"] = str(data["out"])
    except ConfigError as exc:
        raise ConfigError(f"config {path}: {exc}") from None
    return kwargs


def _as_list(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [value] if not (isinstance(value, float) and math.isnan(value)) else []
    return value
