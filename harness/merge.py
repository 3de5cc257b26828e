"""``python -m harness merge OUT DIR...``: join the parts of a sharded run into one
results folder that ``report`` and ``compare`` read exactly as a single run's.

Each part is a results folder made with ``run --shard K/N`` (its ``run.json`` has
``"shard": {"index": K, "count": N, "plan": PLAN_ID}``). The merged folder holds:

- results.csv, deviations.csv, capabilities.csv: the parts' rows, concatenated in part
  order (capabilities are per layer: a row found in several parts is kept once), and
  manifest.json, written by ``results.write_results``;
- pyperf.json: one suite with every part's benchmarks;
- environment.json: part 0's environment, plus ``"parts"`` (each part's environment,
  path and shard) and ``"mixed_machines"``;
- run.json: part 0's run.json, with ``"shard": {"merged": true, "count", "plan",
  "parts": [paths]}``, ``config.shard`` cleared (the folder holds the whole plan), the
  parts' ``"groups"`` summed, their ``"layers"`` and ``"variants"`` joined, and
  ``"mixed_machines"``;
- raw/part-K/: each part's raw/ folder, copied for provenance (nothing reads it back).

Everything is checked before anything is written, and the folder is assembled in a
hidden sibling of OUT and renamed into place at the end: a refused or interrupted
merge leaves no OUT behind (nor a half one). Refusals are one-line ``ConfigError``s.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import ConfigError, ResultsError, first_line, truncate
from harness.frame import CAPABILITY_COLUMNS, COLUMNS, DEVIATION_COLUMNS
from harness.results import (
    ENVIRONMENT_JSON,
    RAW_DIR,
    RESULTS_CSV,
    RUN_JSON,
    Results,
    atomic_write_json,
    load_results,
    pyperf_suite,
    versioned,
    write_results,
)

__all__ = ["FINGERPRINT_KEYS", "machine_fingerprint", "merge"]

#: What must be equal in every part's environment.json for the timings to be comparable
#: (``gpus`` too when the run measured on CUDA). Hostnames may differ: nodes of one
#: kind are interchangeable.
FINGERPRINT_KEYS = ("cpu_capability", "cpu", "cores", "versions")


@dataclass
class _Part:
    path: Path
    given: str
    results: Results
    index: int
    count: int
    plan: str


def machine_fingerprint(environment: Mapping[str, Any], cuda: bool = False) -> dict[str, Any]:
    """The keys of ``environment`` that decide whether two parts' timings compare."""
    keys = (*FINGERPRINT_KEYS, "gpus") if cuda else FINGERPRINT_KEYS
    return {key: environment.get(key) for key in keys}


def _differences(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key in sorted(set(a) | set(b), key=str):
        x, y = a.get(key), b.get(key)
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            out += _differences(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(f"{prefix}{key} {x!r} vs {y!r}")
    return out


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"merge: {out} already exists and is not empty; choose another OUT")


def _check_not_inside(out: Path, parts: Sequence[str | Path]) -> None:
    """Refuse an OUT inside a part: the merge copies each part's raw/ into OUT, so an
    OUT in a part's raw/ copies itself, and one elsewhere in a part changes the part."""
    target = out.resolve()
    for given in parts:
        part = Path(given).resolve()
        if target == part or part in target.parents:
            raise ConfigError(
                f"merge: OUT {out} is inside the part {given}; choose an OUT outside every part"
            )


def _load_part(given: str | os.PathLike[str]) -> _Part:
    path = Path(given)
    try:
        results = load_results(path)
    except ResultsError as exc:
        raise ConfigError(f"merge: part {path}: {exc}") from None
    shard = results.run.get("shard")
    if not isinstance(shard, Mapping):
        raise ConfigError(
            f"merge: {path} was not made with --shard (its {RUN_JSON} has no shard); "
            "only the parts of one sharded run can be merged"
        )
    if shard.get("merged"):
        raise ConfigError(f"merge: {path} is already a merged folder, not a part")
    try:
        index, count, plan = int(shard["index"]), int(shard["count"]), str(shard["plan"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            f"merge: {path}: the shard in its {RUN_JSON} is malformed ({dict(shard)!r}); "
            'expected {"index": K, "count": N, "plan": ID}'
        ) from None
    if not 0 <= index < count:
        raise ConfigError(f"merge: {path}: its shard {index}/{count} is out of range")
    return _Part(path, str(given), results, index, count, plan)


def _check_parts(parts: list[_Part], allow_mixed: bool) -> bool:
    """Refuse parts that do not make one complete plan; True when machines differ."""
    first = parts[0]
    for part in parts[1:]:
        if part.plan != first.plan:
            raise ConfigError(
                f"merge: {part.path} belongs to another plan than {first.path} "
                f"(plan {part.plan} vs {first.plan}): the parts were run with different settings"
            )
        if part.count != first.count:
            raise ConfigError(
                f"merge: {part.path} is one of {part.count} parts, {first.path} one of "
                f"{first.count}: the parts were split differently"
            )
    seen: dict[int, _Part] = {}
    for part in parts:
        if part.index in seen:
            raise ConfigError(
                f"merge: {seen[part.index].path} and {part.path} are both part "
                f"{part.index}/{part.count}; give each part once"
            )
        seen[part.index] = part
    missing = [i for i in range(first.count) if i not in seen]
    if missing:
        listed = ", ".join(str(i) for i in missing)
        raise ConfigError(
            f"merge: part{'s' if len(missing) > 1 else ''} {listed} of {first.count} "
            f"{'are' if len(missing) > 1 else 'is'} missing (given: "
            f"{', '.join(str(i) for i in sorted(seen))})"
        )
    devices = (first.results.run.get("config") or {}).get("devices") or ()
    cuda = "cuda" in devices
    base = machine_fingerprint(first.results.environment, cuda)
    mixed = False
    for part in parts[1:]:
        other = machine_fingerprint(part.results.environment, cuda)
        if other == base:
            continue
        if not allow_mixed:
            diff = "; ".join(_differences(base, other)[:3])
            raise ConfigError(
                f"merge: {part.path} was measured on another machine or with other versions "
                f"than {first.path} ({diff}); pass --allow-mixed to merge anyway "
                "(the merged run is then marked mixed_machines)"
            )
        mixed = True
    return mixed


def _axis_text(part: _Part) -> pd.DataFrame:
    """The grid-axis columns of a part's results.csv as written (strings; empty as NaN):
    read back typed, ``k`` of ``3`` next to an empty cell would become ``3.0``."""
    axes = [c for c in part.results.frame.columns if c not in COLUMNS]
    if not axes:
        return pd.DataFrame(index=part.results.frame.index)
    text = pd.read_csv(
        part.path / RESULTS_CSV, dtype=str, usecols=axes, keep_default_na=False, na_values=[""]
    )
    text.index = part.results.frame.index
    return text


def _concat(
    frames: Sequence[pd.DataFrame], columns: Mapping[str, tuple[str, str]], extra: Sequence[str]
) -> pd.DataFrame:
    order = [*columns, *extra]
    kept = [f.reindex(columns=order) for f in frames if len(f)]
    if not kept:
        out = pd.DataFrame({c: pd.Series(dtype=t) for c, (t, _) in columns.items()})
        for name in extra:
            out[name] = pd.Series(dtype="object")
        return out
    out = pd.concat(kept, ignore_index=True)
    for name, (dtype, _) in columns.items():
        out[name] = out[name].astype(pd.api.types.pandas_dtype(dtype))
    for name in extra:
        out[name] = out[name].astype("object")
    return out


def _results_frame(parts: Sequence[_Part]) -> pd.DataFrame:
    axes: list[str] = []
    frames = []
    owner: dict[str, Path] = {}
    for part in parts:
        frame = part.results.frame.copy()
        text = _axis_text(part)
        for axis in text.columns:
            frame[axis] = text[axis].astype("object")
            if axis not in axes:
                axes.append(axis)
        for case in frame["case"].dropna().tolist():
            if case in owner:
                where = "twice in" if owner[case] == part.path else f"in {owner[case]} and"
                raise ConfigError(
                    f"merge: case {case} is {where} {part.path}; parts must not overlap"
                )
            owner[case] = part.path
        frames.append(frame)
    return _concat(frames, COLUMNS, axes)


def _capabilities(parts: Sequence[_Part]) -> tuple[pd.DataFrame, list[str]]:
    """Capability rows of every part, each distinct row once; a (layer, impl, check)
    the parts disagree on keeps the lowest part's row and gets a note."""
    table = _concat([p.results.capabilities for p in parts], CAPABILITY_COLUMNS, ())
    if table.empty:
        return table, []
    table = table.drop_duplicates(ignore_index=True)
    key = ["layer", "impl", "check"]
    clash = table.duplicated(subset=key, keep="first")
    notes = sorted(
        {
            f"capability {r['layer']}/{r['impl']}/{r['check']} differs between parts; "
            "kept the lowest part's result"
            for _, r in table[clash].iterrows()
        }
    )
    return table[~clash].reset_index(drop=True), notes


def _suite_text(parts: Sequence[_Part]) -> str | None:
    benches: list[Any] = []
    owner: dict[str, Path] = {}
    for part in parts:
        suite = part.results.suite()
        if suite is None:
            continue
        for bench in suite.get_benchmarks():
            name = bench.get_name()
            if name in owner:
                raise ConfigError(
                    f"merge: benchmark {name} is in the pyperf.json of both {owner[name]} and "
                    f"{part.path}; parts must not overlap"
                )
            owner[name] = part.path
            benches.append(bench)
    if not benches:
        return None
    buf = io.StringIO()
    pyperf_suite(benches).dump(buf, compact=True)
    return buf.getvalue()


def _strip_schema(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "schema"}


def merge(out: str | Path, parts: Sequence[str | Path], *, allow_mixed: bool = False) -> Path:
    """Merge the results folders ``parts`` of one sharded run into a new folder ``out``.

    Raises ``ConfigError`` (one line naming the folder and the reason), having written
    nothing, when: ``out`` exists and is not empty; a part is not a results folder or is
    damaged; a part was not made with ``--shard``; parts come from different plans or
    were split into different counts; a part is given twice or one is missing; parts
    overlap (a case or benchmark in two of them); or the parts' machines differ
    (``FINGERPRINT_KEYS``) and ``allow_mixed`` is false. Returns ``Path(out)``.
    """
    out = Path(out)
    if not parts:
        raise ConfigError("merge: no parts given; list the folders of every part")
    _check_out(out)
    _check_not_inside(out, parts)
    loaded = [_load_part(p) for p in parts]
    mixed = _check_parts(loaded, allow_mixed)
    loaded.sort(key=lambda p: p.index)

    capabilities, notes = _capabilities(loaded)
    breakdowns = [p.results.breakdown for p in loaded if p.results.breakdown is not None]
    tables = _Tables(
        frame=_results_frame(loaded),
        deviations=_concat([p.results.deviations for p in loaded], DEVIATION_COLUMNS, ()),
        capabilities=capabilities,
        pyperf_text=_suite_text(loaded),
        breakdown=pd.concat(breakdowns, ignore_index=True) if breakdowns else None,
    )
    _write_merged(
        out,
        loaded,
        _merged_run(loaded, mixed, notes),
        _merged_environment(loaded, mixed),
        tables,
    )
    return out


@dataclass
class _Tables:
    """The merged folder's data files, as ``write_results`` takes them."""

    frame: pd.DataFrame
    deviations: pd.DataFrame
    capabilities: pd.DataFrame
    pyperf_text: str | None
    breakdown: pd.DataFrame | None


def _merged_environment(loaded: Sequence[_Part], mixed: bool) -> dict[str, Any]:
    """Part 0's environment.json, with every part's (``parts``) and ``mixed_machines``."""
    environment = _strip_schema(loaded[0].results.environment)
    environment["parts"] = [
        {
            **_strip_schema(p.results.environment),
            "path": p.given,
            "shard": {"index": p.index, "count": p.count, "plan": p.plan},
        }
        for p in loaded
    ]
    environment["mixed_machines"] = mixed
    return environment


def _merged_run(loaded: Sequence[_Part], mixed: bool, notes: Sequence[str]) -> dict[str, Any]:
    """Part 0's run.json made the whole plan's: ``shard`` says merged (and from which
    parts), ``config.shard`` is cleared, groups summed, variants and layers joined."""
    first = loaded[0]
    run = _strip_schema(first.results.run)
    run["shard"] = {
        "merged": True,
        "count": first.count,
        "plan": first.plan,
        "parts": [p.given for p in loaded],
    }
    if notes:
        run["shard"]["notes"] = list(notes)
    config = run.get("config")
    if isinstance(config, Mapping) and "shard" in config:
        # the merged folder holds the whole plan, as an unsharded run of it would
        run["config"] = {**config, "shard": None}
    variants = [p.results.run.get("variants") for p in loaded]
    if all(isinstance(v, list) for v in variants):
        run["variants"] = list(dict.fromkeys(name for v in variants for name in v or ()))
    groups = [p.results.run.get("groups") for p in loaded]
    if all(isinstance(g, int) and not isinstance(g, bool) for g in groups):
        run["groups"] = sum(g for g in groups if isinstance(g, int))
    layers = [p.results.run.get("layers") for p in loaded]
    if all(isinstance(info, Mapping) for info in layers):
        run["layers"] = {k: v for info in reversed(layers) for k, v in dict(info or {}).items()}
    run["mixed_machines"] = mixed
    return run


def _write_merged(
    out: Path,
    loaded: Sequence[_Part],
    run: Mapping[str, Any],
    environment: Mapping[str, Any],
    tables: _Tables,
) -> None:
    """Assemble the folder in a hidden sibling of ``out`` (run.json, environment.json,
    the tables, each part's raw/ under raw/part-K/) and rename it into place; on any
    failure nothing is left, and an ``OSError`` is one short line."""
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.merging-", dir=parent))
    except OSError as exc:
        raise ConfigError(f"merge: cannot write in {parent} ({exc.strerror or exc})") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)
        atomic_write_json(tmp / RUN_JSON, versioned(run))
        atomic_write_json(tmp / ENVIRONMENT_JSON, versioned(environment))
        write_results(
            tmp,
            tables.frame,
            tables.deviations,
            tables.capabilities,
            tables.pyperf_text,
            tables.breakdown,
        )
        for part in loaded:
            raw = part.path / RAW_DIR
            if raw.is_dir():
                shutil.copytree(raw, tmp / RAW_DIR / f"part-{part.index}", symlinks=True)
        _check_out(out)  # nobody made it meanwhile
        if out.is_dir():
            out.rmdir()
        os.rename(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            # shutil.Error lists every file it could not copy: one short line instead
            why = truncate(first_line(exc) if exc.strerror is None else exc.strerror, 200)
            raise ConfigError(f"merge: cannot write {out} ({why})") from None
        raise
