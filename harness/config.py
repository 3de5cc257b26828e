"""What a run measures: the settings, declared once, and the profiles.

``RunConfig``'s fields are the one declaration of every setting of a run. Each field's
metadata (``setting(...)``) names its command-line option, its TOML key(s), its help
text and its parser; from it come

- the options of ``python -m harness run`` (``add_run_options``),
- the keys of a TOML config file (``load_config``),
- ``run.json``'s round trip (``RunConfig.to_json`` / ``from_json``),
- the signature of ``harness.run()`` (``run_signature``).

A TOML config holds the same settings, for example::

    layers = ["conv2d"]
    impls = ["scipy", "torch", "compile"]
    dtype = ["float32"]
    threads = [1]
    profile = "quick"
    out = "reports/conv2d"      # where to write (not a setting of the measurement)

    [grid]
    n = "8..1024*2"      # 8, 16, ..., 1024; also "8..64+8" or [8, 16, 32]
    k = [3, 15]
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from harness.dtypes import DTYPES
from harness.environment import ALLOCATORS, DEFAULT_ALLOCATOR
from harness.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "BREAKDOWNS",
    "DTYPES",
    "OPTIONS",
    "PLAN_KEYS",
    "PROFILES",
    "USES",
    "Profile",
    "RunConfig",
    "add_run_option",
    "add_run_options",
    "default_threads",
    "load_config",
    "merge_settings",
    "parse_grid",
    "parse_grid_values",
    "parse_list",
    "run_signature",
    "settings_from_namespace",
]


@dataclass(frozen=True)
class Profile:
    """How much measuring a run gets: a time budget for timing, and its design.

    Timing is paired: each worker process times every implementation of one grid
    point in alternation, ``rounds`` rounds, each in a fresh random order. The first
    pass runs ``processes`` processes with as many rounds as fit in half of
    ``budget_s`` (at least ``min_rounds``, at most ``max_rounds``); then, while the
    budget lasts, extra processes give ``extra_rounds`` more rounds or, where a process
    costs more to start than its rounds take, more (``schedule.adaptive_rounds``) to
    the points whose speedup interval still straddles the ±5% band, points near a
    crossover first. One timed value repeats the call until it lasts at least ``min_time``.
    ``case_timeout_s`` bounds one setup task (or one group's rounds, scaled by their
    expected duration) in one process.
    """

    name: str
    budget_s: float
    processes: int
    min_rounds: int
    max_rounds: int
    extra_rounds: int
    min_time: float
    case_timeout_s: float = 120.0


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        "quick",
        budget_s=20,
        processes=2,
        min_rounds=3,
        max_rounds=8,
        extra_rounds=4,
        min_time=0.002,
        case_timeout_s=60,
    ),
    # The default budget fits the default grid: its first pass at the fewest rounds
    # (3 processes x 4 rounds of 24 groups at 2 threads) took 203-243 s on 2026-11-30
    # (2 cores, AVX512), past the 130 s budget it had, so no adaptive pass ever ran and
    # a quarter of the points stayed undecided. Half of the budget holds that first
    # pass; the other half goes to the points still undecided, near-crossover first.
    # Since each implementation is timed in processes of its own (harness.own_process)
    # a visit of a group costs more (9 processes, about 2 s besides its values): the
    # first pass took 330 s of a 420 s budget on 2026-12-03 (AVX512), and two runs left
    # 13.1% and 16.1% of comparisons undecided, conv2d's training verdicts among them.
    # 600 s gives it its half again.
    # A value lasts 10 ms, as a block of scripts/truth.py's plain loop: with 5 ms values
    # the waits for other libraries' spinning pools before each value
    # (harness.contention.PoolWatch, up to ~10 ms after a torch or ONNX Runtime value)
    # were a third of the time timed, and two default runs on 2026-12-01 (AVX512) left
    # 7.1% and 14.3% of comparisons undecided; with 10 ms, 4.8% and 10.7%.
    "default": Profile(
        "default",
        budget_s=600,
        processes=3,
        min_rounds=4,
        max_rounds=20,
        extra_rounds=6,
        min_time=0.01,
    ),
    "rigorous": Profile(
        "rigorous",
        budget_s=900,
        processes=6,
        min_rounds=10,
        max_rounds=60,
        extra_rounds=16,
        min_time=0.02,
        case_timeout_s=600,
    ),
}


# ---------------------------------------------------------------------------- parsers


def parse_list(text: str | Sequence[Any], what: str) -> tuple[str, ...]:
    """``"a,b"`` or ``["a", "b"]`` -> ``("a", "b")``; empty items are an error."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        text = [text]
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
            if count > 100_000:
                raise ConfigError(f"--grid {axis}={text}: range {item!r} has too many values")
    return tuple(dict.fromkeys(out))  # keep order, drop repeats


def parse_grid(items: Sequence[str] | Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """``["n=8,16", "k=3"]`` (or a TOML table) -> ``{"n": ("8", "16"), "k": ("3",)}``."""
    grid: dict[str, tuple[str, ...]] = {}
    pairs: list[tuple[str, Any]]
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        if isinstance(items, str):
            items = [items]
        pairs = []
        for item in items:
            axis, eq, values = str(item).partition("=")
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


def _names(what: str, known: Sequence[str] | None = None) -> Callable[[Any], tuple[str, ...]]:
    def parse(value: Any) -> tuple[str, ...]:
        items = parse_list(value, what)
        if known is not None:
            for item in items:
                if item not in known:
                    raise ConfigError(f"unknown {what} {item!r} (known: {', '.join(known)})")
        if len(set(items)) != len(items):
            raise ConfigError(f"{what}: {','.join(items)} lists a value twice")
        return items

    return parse


def _positive_ints(what: str) -> Callable[[Any], tuple[int, ...]]:
    def parse(value: Any) -> tuple[int, ...]:
        items = parse_list(value, what)
        try:
            out = tuple(int(x) for x in items)
        except ValueError:
            raise ConfigError(
                f"{what} {','.join(items)!r}: expected integers such as 1,2"
            ) from None
        if any(x < 1 for x in out):
            raise ConfigError(f"{what} must be positive integers, got {','.join(items)}")
        return out

    return parse


def default_threads() -> int:
    """The intra-op threads a fresh process of the user's gets: torch's own default
    (one per physical core, or ``OMP_NUM_THREADS``), read before anything sets it."""
    import torch

    return int(torch.get_num_threads())


def _threads(value: Any) -> tuple[int, ...]:
    if value is None or value in ((), []):
        return (default_threads(),)
    return _positive_ints("threads")(value)


#: What verdicts a run can decide: ``training`` (on the whole training step) and
#: ``inference`` (on the forward, over every deployable form).
USES = ("training", "inference")


def _int(what: str) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ConfigError(f"{what}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{what}: expected an integer, got {value!r}") from None

    return parse


def _seconds(what: str) -> Callable[[Any], float | None]:
    def parse(value: Any) -> float | None:
        if value is None:
            return None
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{what}: expected seconds, got {value!r}") from None
        if not (math.isfinite(out) and out > 0):
            raise ConfigError(f"{what} must be a positive number of seconds, got {value!r}")
        return out

    return parse


def _bool(what: str) -> Callable[[Any], bool]:
    def parse(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off"):
            return False
        raise ConfigError(f"{what}: expected true or false, got {value!r}")

    return parse


#: What ``--breakdown`` profiles after timing (``harness.breakdown_pass``).
BREAKDOWNS = ("all", "verdict", "none")


def _choice(what: str, known: Sequence[str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        name = str(value)
        if name not in known:
            raise ConfigError(f"unknown {what} {name!r} (known: {', '.join(known)})")
        return name

    return parse


def _profile(value: Any) -> str:
    name = str(value)
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})")
    return name


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else parse(value)


def _shard(value: Any) -> Any:
    if value is None:
        return None
    from harness.shard import Shard, parse_shard

    if isinstance(value, Shard):
        return value
    if isinstance(value, Mapping):
        return Shard(int(value["index"]), int(value["count"]))
    return parse_shard(str(value))


# --------------------------------------------------------------------------- schema


def setting(
    default: Any,
    *,
    parse: Callable[[Any], Any],
    flag: str,
    help: str,
    toml: Sequence[str] = (),
    metavar: str | None = None,
    negate: bool = False,
    append: bool = False,
    in_plan: bool = True,
) -> Any:
    """A ``RunConfig`` field with everything the CLI, TOML and ``harness.run`` need.

    ``negate``: a boolean whose option is ``--no-...`` (given: False). ``append``: the
    option may be repeated (``--grid``, ``--layers-from``). ``in_plan``: False for
    settings that do not change what a run measures (a shard of the same plan).
    """
    meta = {
        "parse": parse,
        "flag": flag,
        "help": help,
        "toml": tuple(toml),
        "metavar": metavar,
        "negate": negate,
        "append": append,
        "in_plan": in_plan,
    }
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class RunConfig:
    """Everything ``python -m harness run`` needs to know; the cartesian product of
    grid, dtypes, threads, devices and allocators (per selected layer and
    implementation) is the set of points measured. Values are parsed and validated
    on construction, whatever their source."""

    layers: tuple[str, ...] | None = setting(
        None,
        parse=_optional(_names("layer")),
        flag="--layers",
        help="comma-separated layer names (default: all registered)",
    )
    impls: tuple[str, ...] | None = setting(
        None,
        parse=_optional(_names("implementation")),
        flag="--impls",
        help="comma-separated implementations (default: all of each layer)",
    )
    grid: Mapping[str, tuple[str, ...]] = setting(
        {},
        parse=parse_grid,
        flag="--grid",
        metavar="AXIS=VALUES",
        append=True,
        help="values of one grid axis: n=8,16,32 or n=8..1024*2 or n=8..64+8 (repeatable)",
    )
    dtypes: tuple[str, ...] = setting(
        ("float32",),
        parse=_names("dtype", DTYPES),
        flag="--dtype",
        toml=("dtype", "dtypes"),
        help="comma-separated dtypes (default: float32)",
    )
    threads: tuple[int, ...] = setting(
        None,
        parse=_threads,
        flag="--threads",
        help="comma-separated intra-op thread counts for torch and NumPy/SciPy's pools "
        "(default: what a fresh process gets, torch.get_num_threads(); 1 gives quieter, "
        "comparable figures)",
    )
    devices: tuple[str, ...] = setting(
        ("cpu",),
        parse=_names("device", ("cpu", "cuda")),
        flag="--device",
        toml=("device", "devices"),
        help="cpu, cuda, or both comma-separated (default: cpu)",
    )
    allocators: tuple[str, ...] = setting(
        (DEFAULT_ALLOCATOR,),
        parse=_names("allocator", ALLOCATORS),
        flag="--allocator",
        toml=("allocator", "allocators"),
        help="memory allocators of the workers, comma-separated: glibc (glibc's defaults, "
        "what a training process gets; the default), glibc-fixed (fixed mmap/trim "
        "thresholds), jemalloc, tcmalloc (LD_PRELOAD, where installed)",
    )
    use: tuple[str, ...] = setting(
        USES,
        parse=_names("use", USES),
        flag="--use",
        metavar="training,inference",
        help="verdicts to decide: training (on a whole training step: forward recording the "
        "graph, then backward) and inference (on the forward, over every deployable form); "
        "inference alone times forward only (default: both)",
    )
    profile: str = setting(
        "default",
        parse=_profile,
        flag="--profile",
        metavar="quick|default|rigorous",
        help="time budget and design of timing (default: default)",
    )
    budget_s: float | None = setting(
        None,
        parse=_seconds("budget"),
        flag="--budget",
        metavar="SECONDS",
        toml=("budget_s",),
        help="seconds of timing to spend, first pass and adaptive rounds (default: the profile's)",
    )
    min_time_s: float | None = setting(
        None,
        parse=_seconds("min-time"),
        flag="--min-time",
        metavar="SECONDS",
        toml=("min_time_s",),
        help="least duration of one timed value: a value repeats the call until it lasts "
        "this long (default: the profile's)",
    )
    layers_from: tuple[str, ...] = setting(
        (),
        parse=lambda v: parse_list(v, "layers_from") if v not in ((), []) else (),
        flag="--layers-from",
        metavar="MODULE_OR_FILE",
        append=True,
        help="also load layers from a module path or a .py file (repeatable)",
    )
    seed: int = setting(
        0, parse=_int("seed"), flag="--seed", help="seed of inputs and case order (default: 0)"
    )
    capabilities: bool = setting(
        True,
        parse=_bool("capabilities"),
        flag="--no-capabilities",
        negate=True,
        help="skip the capability matrix (TorchScript, compile, ONNX checks)",
    )
    memory: bool = setting(
        True,
        parse=_bool("memory"),
        flag="--no-memory",
        negate=True,
        help="skip measuring peak memory in the setup pass",
    )
    breakdown: str = setting(
        "verdict",
        parse=_choice("breakdown", BREAKDOWNS),
        flag="--breakdown",
        metavar="all|verdict|none",
        help="after timing, profile one call per implementation, size and phase (step, "
        "forward) to show where the time goes (breakdown.csv): verdict profiles the sizes "
        "verdicts turn on (smallest, the two around each crossover, largest) and skips "
        "torch.compile forms, all every size and form, none nothing (default: verdict)",
    )
    timeout_s: float | None = setting(
        None,
        parse=_seconds("timeout"),
        flag="--timeout",
        metavar="SECONDS",
        toml=("timeout_s",),
        help="time limit of one setup task in one worker (default: the profile's)",
    )
    shard: Any = setting(
        None,
        parse=_shard,
        flag="--shard",
        metavar="K/N|auto|auto/N",
        in_plan=False,
        help="measure only the K-th of N deterministic parts of the plan (0-based); auto "
        "reads SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX (auto/N)",
    )
    cache: bool = setting(
        True,
        parse=_bool("cache"),
        flag="--no-cache",
        negate=True,
        in_plan=False,
        help="check everything afresh: neither read nor write the cache of checks across "
        "runs (capabilities, gradcheck, deviations, peak memory; nothing timed is cached)",
    )
    cache_dir: str | None = setting(
        None,
        parse=_optional(str),
        flag="--cache-dir",
        metavar="DIR",
        in_plan=False,
        help="the cache of checks, ONNX exports and compiled kernels across runs (default: "
        "$HARNESS_CACHE_DIR, else $XDG_CACHE_HOME/port-harness, ~/.cache/port-harness)",
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "grid" and isinstance(value, Mapping) and not value:
                object.__setattr__(self, "grid", {})
                continue
            object.__setattr__(self, f.name, f.metadata["parse"](value))
        for name in ("dtypes", "threads", "devices", "allocators"):
            if not getattr(self, name):
                raise ConfigError(f"{name} must not be empty")

    @property
    def phases(self) -> tuple[str, ...]:
        """The phases timed: all three for training verdicts (``step`` decides, forward
        and backward explain it), the forward alone for inference verdicts only."""
        return ("forward", "backward", "step") if "training" in self.use else ("forward",)

    @property
    def profile_spec(self) -> Profile:
        """The profile, with ``budget_s``, ``min_time_s`` and ``timeout_s`` applied when
        given."""
        base = PROFILES[self.profile]
        if self.timeout_s:
            base = replace(base, case_timeout_s=self.timeout_s)
        if self.budget_s:
            base = replace(base, budget_s=self.budget_s)
        if self.min_time_s:
            base = replace(base, min_time=self.min_time_s)
        return base

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "grid":
                value = {k: list(v) for k, v in value.items()}
            elif f.name == "shard":
                value = None if value is None else {"index": value.index, "count": value.count}
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def plan_json(self) -> dict[str, Any]:
        """The settings that define what is measured (not which part of it)."""
        return {k: v for k, v in self.to_json().items() if _FIELDS[k].metadata["in_plan"]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunConfig:
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise ConfigError(f"unknown settings {unknown}")
        return cls(**{k: v for k, v in data.items()})

    def updated(self, **changes: Any) -> RunConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def differences(self, other: RunConfig, keys: Sequence[str]) -> list[str]:
        """``--option value`` for each of ``keys`` whose value differs from ``other``'s."""
        return [
            f"{_FIELDS[k].metadata['flag']} ({_show(getattr(self, k))} here, "
            f"{_show(getattr(other, k))} there)"
            for k in keys
            if getattr(self, k) != getattr(other, k)
        ]


_FIELDS: dict[str, Field[Any]] = {f.name: f for f in fields(RunConfig)}
#: The settings that define what a run measures (``RunConfig.plan_json``'s keys).
PLAN_KEYS = frozenset(name for name, f in _FIELDS.items() if f.metadata["in_plan"])
#: Settings a TOML file or ``harness.run`` may name, besides RunConfig's: where to write.
OPTIONS = ("out",)


def _show(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value) or "none"
    if isinstance(value, Mapping):
        return " ".join(f"{k}={','.join(map(str, v))}" for k, v in value.items()) or "default"
    return str(value)


def _toml_keys() -> dict[str, str]:
    keys = {}
    for f in fields(RunConfig):
        for key in f.metadata["toml"] or (f.name,):
            keys[key] = f.name
    return keys


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML config into ``RunConfig`` keyword arguments (and ``out``), parsed."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path}: not valid TOML: {exc}") from None
    keys = _toml_keys()
    unknown = sorted(set(data) - set(keys) - set(OPTIONS))
    if unknown:
        raise ConfigError(
            f"config {path}: unknown keys {unknown} (known: {sorted([*keys, *OPTIONS])})"
        )
    out: dict[str, Any] = {}
    try:
        for key, value in data.items():
            if key in OPTIONS:
                out[key] = str(value)
                continue
            name = keys[key]
            if name == "grid" and not isinstance(value, dict):
                raise ConfigError("grid must be a table of axis = values")
            out[name] = _FIELDS[name].metadata["parse"](value)
    except ConfigError as exc:
        raise ConfigError(f"config {path}: {exc}") from None
    return out


# ------------------------------------------------------------------------ the CLI side


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """One option per ``RunConfig`` field, named and explained by its declaration.

    Every option defaults to ``None`` so that "given on the command line" can be told
    from "left at its default" (for TOML merging and ``--resume`` checks)."""
    for f in fields(RunConfig):
        add_run_option(parser, f.name)


def add_run_option(parser: argparse.ArgumentParser, name: str) -> None:
    """The option of one ``RunConfig`` field, as its declaration names and explains it
    (also for commands that share a setting with ``run``: ``--layers``,
    ``--layers-from``); ``settings_from_namespace`` reads it back parsed."""
    meta = _FIELDS[name].metadata
    if meta["negate"]:
        parser.add_argument(
            meta["flag"], dest=name, action="store_const", const=False, help=meta["help"]
        )
    elif meta["append"]:
        parser.add_argument(
            meta["flag"], dest=name, action="append", metavar=meta["metavar"], help=meta["help"]
        )
    else:
        parser.add_argument(meta["flag"], dest=name, metavar=meta["metavar"], help=meta["help"])


def settings_from_namespace(ns: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (parsed), by field name."""
    out: dict[str, Any] = {}
    for f in fields(RunConfig):
        value = getattr(ns, f.name, None)
        if value is None:
            continue
        if f.metadata["append"] and f.name != "grid":
            value = [item for v in value for item in parse_list(v, f.metadata["flag"])]
        out[f.name] = f.metadata["parse"](value)
    return out


def merge_settings(
    config: str | Path | None,
    given: Mapping[str, Any],
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
) -> tuple[dict[str, Any], str | Path | None]:
    """A run's settings and folder from a TOML file (``config``, read by ``load_config``)
    and the settings ``given`` on the command line or to ``harness.run``: a given
    setting wins over the file's, except that a repeatable one adds to it (``grid``
    axis by axis, ``layers_from`` after the file's). ``out`` wins over the file's
    ``out``; with ``resume``, the file's ``out`` must name that folder (a resumed run
    keeps its own, and a setting that disagrees is never silently ignored).
    ``cli.cmd_run`` and ``harness.run`` both merge through here."""
    file = load_config(config) if config is not None else {}
    file_out = file.pop("out", None)
    moved = resume is not None and file_out is not None
    if moved and Path(str(file_out)).resolve() != Path(str(resume)).resolve():
        raise ConfigError(
            f"--resume {resume}: {config} sets out = {str(file_out)!r}: "
            "a resumed run keeps its own folder; remove out from the file, or start a new run"
        )
    settings = {**file, **given}
    for name in file.keys() & given.keys():
        if _FIELDS[name].metadata["append"]:
            added = _FIELDS[name].metadata["parse"](given[name])
            settings[name] = (
                {**file[name], **added} if isinstance(added, Mapping) else (*file[name], *added)
            )
    return settings, out if out is not None else file_out


def run_signature(extra: Sequence[inspect.Parameter]) -> inspect.Signature:
    """``harness.run``'s signature: every ``RunConfig`` field as a keyword, then ``extra``."""
    params = []
    for f in fields(RunConfig):
        default = f.default if f.default is not MISSING else {}
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default))
    return inspect.Signature([*params, *extra])


def options_markdown() -> str:
    """The README's table of ``run`` options, generated from the declaration (a test
    keeps the README in step with it)."""
    lines = ["| option | TOML key | meaning |", "| --- | --- | --- |"]
    for f in fields(RunConfig):
        meta = f.metadata
        flag = meta["flag"] + (
            f" {meta['metavar']}" if meta["metavar"] and not meta["negate"] else ""
        )
        keys = " / ".join(f"`{k}`" for k in (meta["toml"] or (f.name,)))
        if meta["negate"]:
            keys += " = false"
        text = meta["help"].replace("|", "\\|")
        flag = flag.replace("|", "\\|")
        lines.append(f"| `{flag}` | {keys} | {text} |")
    return "\n".join(lines)
