"""Split one plan into N parts that a cluster scheduler runs anywhere, then merge.

The harness does not schedule anything: SLURM job arrays, Kubernetes Indexed Jobs or
a CI matrix start N copies of ``python -m harness run --shard K/N``; each copy
computes the same partition of the plan and measures its own part into its own
folder; ``python -m harness merge OUT DIR...`` joins the folders into one.

- ``parse_shard`` reads ``--shard``: ``K/N`` (0-based), ``auto`` (a SLURM array task,
  from ``SLURM_ARRAY_TASK_*``) or ``auto/N`` (a Kubernetes Indexed Job, from
  ``JOB_COMPLETION_INDEX``; a SLURM array of N tasks is accepted too).
- ``group_cost`` estimates what timing one group (every implementation of one grid
  point in one setting) costs, and ``assign`` partitions the groups into balanced
  parts, deterministically: every process that computes it gets the same answer,
  whatever order it lists the groups in. The unit is the group, so the paired timing
  of one point's implementations never spans two machines.
- ``plan_id`` is a short stable hash of the settings that define the plan, stored in
  each part's ``run.json`` so that ``merge`` refuses parts of different plans.

Pure Python: no torch, no pandas.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError

__all__ = [
    "NOT_PLAN_KEYS",
    "Shard",
    "assign",
    "group_cost",
    "identity_mismatch",
    "parse_shard",
    "plan_id",
    "select",
]


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (0-based) of ``count`` parts of one plan."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ConfigError(f"shard count must be a positive integer, got {self.count!r}")
        if isinstance(self.index, bool) or not isinstance(self.index, int) or self.index < 0:
            raise ConfigError(f"shard index must be a non-negative integer, got {self.index!r}")
        if self.index >= self.count:
            raise ConfigError(
                f"shard {self.index}/{self.count}: index must be below the count "
                f"(parts are numbered 0 to {self.count - 1})"
            )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def to_json(self, plan: str) -> dict[str, Any]:
        """What ``run.json`` stores under ``"shard"``: ``{"index", "count", "plan"}``."""
        return {"index": self.index, "count": self.count, "plan": plan}


# ------------------------------------------------------------------------ --shard

_EXPLICIT = re.compile(r"^\s*([+-]?\d+)\s*/\s*([+-]?\d+)\s*$")
_AUTO_N = re.compile(r"^\s*auto\s*/\s*(.*?)\s*$")


def _env_int(environ: Mapping[str, str], name: str, flag: str) -> int | None:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw.strip())
    except ValueError:
        raise ConfigError(f"--shard {flag}: {name}={raw!r} is not an integer") from None


def _slurm(environ: Mapping[str, str], flag: str) -> Shard | None:
    """The shard of a SLURM array task, or None outside a SLURM array."""
    task = _env_int(environ, "SLURM_ARRAY_TASK_ID", flag)
    if task is None:
        return None
    count = _env_int(environ, "SLURM_ARRAY_TASK_COUNT", flag)
    low = _env_int(environ, "SLURM_ARRAY_TASK_MIN", flag)
    high = _env_int(environ, "SLURM_ARRAY_TASK_MAX", flag)
    step = _env_int(environ, "SLURM_ARRAY_TASK_STEP", flag)
    step = 1 if step is None else step
    if step < 1:
        raise ConfigError(f"--shard {flag}: SLURM_ARRAY_TASK_STEP={step} must be positive")
    if low is not None and high is not None:
        if high < low:
            raise ConfigError(
                f"--shard {flag}: SLURM_ARRAY_TASK_MAX={high} is below SLURM_ARRAY_TASK_MIN={low}"
            )
        if not low <= task <= high or (task - low) % step:
            raise ConfigError(
                f"--shard {flag}: SLURM_ARRAY_TASK_ID={task} is not in the array "
                f"{low}-{high}" + (f":{step}" if step > 1 else "")
            )
        span = (high - low) // step + 1
        if count is not None and count != span:
            # --array=0,3,7 or 0-3,8-11: a list or a range with holes. Task IDs do not
            # then map onto 0..N-1 without knowing the list.
            raise ConfigError(
                f"--shard {flag}: the SLURM array is not one evenly spaced range "
                f"(SLURM_ARRAY_TASK_COUNT={count}, but {low}-{high}"
                + (f":{step}" if step > 1 else "")
                + f" holds {span} tasks); submit with --array=0-{count - 1} or give --shard K/N"
            )
        return Shard((task - low) // step, span)
    if count is not None:
        if step != 1:
            raise ConfigError(
                f"--shard {flag}: a stepped SLURM array (SLURM_ARRAY_TASK_STEP={step}) needs "
                "SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_MAX; give --shard K/N"
            )
        if task >= count:
            raise ConfigError(
                f"--shard {flag}: SLURM_ARRAY_TASK_ID={task} is not below "
                f"SLURM_ARRAY_TASK_COUNT={count} and there is no SLURM_ARRAY_TASK_MIN; "
                f"submit with --array=0-{count - 1} or give --shard K/N"
            )
        if task < 0:
            raise ConfigError(f"--shard {flag}: SLURM_ARRAY_TASK_ID={task} is negative")
        return Shard(task, count)
    raise ConfigError(
        f"--shard {flag}: SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT "
        "nor SLURM_ARRAY_TASK_MIN/MAX; give --shard K/N"
    )


def parse_shard(text: str, environ: Mapping[str, str] = os.environ) -> Shard:
    """``--shard`` to a ``Shard``; ``ConfigError`` (one line) for anything else.

    - ``"K/N"``: part K (0-based) of N;
    - ``"auto"``: a SLURM array task: ``SLURM_ARRAY_TASK_ID`` with
      ``SLURM_ARRAY_TASK_MIN``/``MAX`` (index = ID - MIN, count = MAX - MIN + 1; a
      stepped array ``--array=0-15:4`` counts its tasks: index = (ID - MIN) / STEP), or
      with ``SLURM_ARRAY_TASK_COUNT`` alone (index = ID). An array with holes
      (``--array=0,3,7``) is refused, since its IDs do not number the parts;
    - ``"auto/N"``: a Kubernetes Indexed Job of N completions (``JOB_COMPLETION_INDEX``),
      or a SLURM array task whose array has exactly N tasks.
    """
    flag = str(text).strip()
    explicit = _EXPLICIT.match(flag)
    if explicit:
        index, count = int(explicit.group(1)), int(explicit.group(2))
        if count < 1:
            raise ConfigError(f"--shard {flag}: the count must be at least 1")
        if index < 0:
            raise ConfigError(f"--shard {flag}: the index must be 0 or more (parts count from 0)")
        if index >= count:
            raise ConfigError(
                f"--shard {flag}: index must be below the count (parts are numbered 0 to {count - 1})"
            )
        return Shard(index, count)

    if flag == "auto":
        shard = _slurm(environ, flag)
        if shard is not None:
            return shard
        if _env_int(environ, "JOB_COMPLETION_INDEX", flag) is not None:
            raise ConfigError(
                "--shard auto: JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but "
                "the number of completions is not in the environment; give --shard auto/N"
            )
        raise ConfigError(
            "--shard auto: no SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX in the environment; "
            "give --shard K/N"
        )

    auto_n = _AUTO_N.match(flag)
    if auto_n:
        try:
            count = int(auto_n.group(1))
        except ValueError:
            raise ConfigError(
                f"--shard {flag}: expected auto/N with N the number of parts, such as auto/8"
            ) from None
        if count < 1:
            raise ConfigError(f"--shard {flag}: the count must be at least 1")
        completion = _env_int(environ, "JOB_COMPLETION_INDEX", flag)
        if completion is not None:
            if not 0 <= completion < count:
                raise ConfigError(
                    f"--shard {flag}: JOB_COMPLETION_INDEX={completion} is not below {count}; "
                    f"the Job's completions must equal N ({count})"
                )
            return Shard(completion, count)
        shard = _slurm(environ, flag)
        if shard is not None:
            if shard.count != count:
                raise ConfigError(
                    f"--shard {flag}: the SLURM array has {shard.count} tasks, not {count}; "
                    "give --shard auto to follow the array"
                )
            return shard
        raise ConfigError(
            f"--shard {flag}: no JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID in the "
            "environment; give --shard K/N"
        )

    raise ConfigError(
        f"--shard {flag}: expected K/N (such as 0/8), auto (SLURM array) or auto/N "
        "(Kubernetes Indexed Job)"
    )


# ---------------------------------------------------------------------- partition


def group_cost(point: Mapping[str, int | float | str], cases: int) -> float:
    """Expected cost of timing one group: ``cases * max(1, prod of numeric axis values)``.

    ``point`` is the group's grid point (axis -> value: not dtype, threads or device);
    ``cases`` the number of cases timed for it (implementations x phases).

    Every case costs its calibration, its warm-ups and its values; a value lasts at
    least the profile's ``min_time`` and longer when one call does, and a call's work
    grows with the sizes. The product of the numeric axis values (``n * k``; strings
    and booleans count as 1, values below 1 as 1) is a monotone stand-in for that
    work: it need not be exact, only rank large points above small ones so that
    ``assign`` spreads them. The result is always at least ``max(cases, 1)``, never 0.
    """
    product = 1.0
    for value in point.values():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        number = abs(float(value))
        if math.isfinite(number):
            product *= max(number, 1.0)
    if not math.isfinite(product):
        product = float.fromhex("0x1p1000")  # absurd, but finite and comparable
    return float(max(int(cases), 1)) * product


def assign(groups: Sequence[tuple[str, float]], count: int) -> dict[str, int]:
    """Partition named groups ``(name, cost)`` into ``count`` parts: name -> part index.

    Longest processing time first: groups by decreasing cost, ties by name, each to the
    part with the smallest total so far (ties: the lowest index). The order of
    ``groups`` does not matter, so every process gets the same partition; the largest
    part costs at most the mean plus one group. Parts may be empty when there are
    fewer groups than parts.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"the number of parts must be a positive integer, got {count!r}")
    seen: set[str] = set()
    for name, cost in groups:
        if name in seen:
            raise ValueError(f"group {name!r} listed twice")
        seen.add(name)
        if not (isinstance(cost, int | float) and math.isfinite(cost) and cost > 0):
            raise ValueError(f"group {name!r}: cost must be a positive finite number, got {cost!r}")
    order = sorted(groups, key=lambda g: (-float(g[1]), g[0]))
    # parts beyond the number of groups stay empty: no heap entry for them, so an
    # absurd count (10**12) costs nothing
    loads: list[tuple[float, int]] = [(0.0, i) for i in range(min(count, len(order)))]
    out: dict[str, int] = {}
    for name, cost in order:
        load, index = heapq.heappop(loads)
        out[name] = index
        heapq.heappush(loads, (load + float(cost), index))
    return out


def select(groups: Sequence[tuple[str, float]], shard: Shard) -> set[str]:
    """The names of the groups that ``shard`` measures."""
    parts = assign(groups, shard.count)
    return {name for name, index in parts.items() if index == shard.index}


# ------------------------------------------------------------------------ plan id

#: Settings that do not change what is measured: they are left out of ``plan_id``.
NOT_PLAN_KEYS = frozenset(
    {"shard", "out", "resume", "quiet", "report", "no_report", "progress", "config", "schema"}
)


def plan_id(config_json: Mapping[str, Any]) -> str:
    """A stable id (16 hex digits of sha256) of the settings that define the plan.

    ``config_json`` is the run's settings as JSON (``RunConfig.to_json()``); the keys
    in ``NOT_PLAN_KEYS`` (the shard itself, the output folder, presentation flags) are
    left out, and key order does not matter. Lists keep their order.
    """
    kept = {k: v for k, v in config_json.items() if k not in NOT_PLAN_KEYS}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=_jsonable)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def identity_mismatch(
    run: Mapping[str, Any], environment: Mapping[str, Any], plan_keys: frozenset[str]
) -> str | None:
    """Why a folder's ``run.json`` or ``environment.json`` is not what its run wrote, or
    None. run.json carries the plan id of its settings and the fingerprint of its
    environment, computed when they were written: an edited grid (n=8 made n=9) or
    machine no longer gives them back. ``plan_keys``: the settings the plan id covers
    (``harness.config.PLAN_KEYS``). Folders before schema 3 are not checked."""
    if int(run.get("schema", 1)) < 3:
        return None

    config, stored = run.get("config"), run.get("plan")
    if isinstance(config, Mapping) and isinstance(stored, str):
        got = plan_id({k: v for k, v in config.items() if k in plan_keys})
        if got != stored:
            return (
                f"run.json: edited since it was written (its settings give plan {got}, not "
                f"the plan {stored} it was written with)"
            )
    printed = run.get("fingerprint")
    shard = run.get("shard")
    merged = isinstance(shard, Mapping) and shard.get("merged")
    if isinstance(printed, Mapping) and environment and not merged:
        keys = ("cpu", "cpu_capability", "cores", "versions")
        if any(environment.get(k) != printed.get(k) for k in keys if k in printed):
            return (
                "environment.json: edited since it was written (its machine or versions "
                "differ from the fingerprint run.json recorded)"
            )
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"plan_id: {type(value).__name__} is not JSON: {value!r}")
