"""A results folder on disk: its layout, atomic writes, and reading it back.

Layout of a results folder ``DIR``::

    run.json           what was asked: layers, implementations, grid, dtypes, threads,
                       devices, profile; and the environment fingerprint --resume checks
    environment.json   CPU, cores, versions, BLAS/FFT backends, thread and allocator settings
    raw/*.jsonl        what the worker processes wrote as they measured (append-only;
                       the source of truth that survives a kill)
    logs/*.log         each worker's stdout and stderr
    pyperf.json        every timing as a pyperf BenchmarkSuite (python -m pyperf stats ...)
    results.csv        the results frame (columns: harness.frame.COLUMNS)
    deviations.csv     per-tensor deviation detail (harness.frame.DEVIATION_COLUMNS)
    capabilities.csv   the capability matrix (harness.frame.CAPABILITY_COLUMNS)
    report.md, plots/  the report (python -m harness report DIR)

Every file but ``raw/`` is rewritten whole through a temporary file and ``os.replace``,
so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import ResultsError
from harness.frame import CAPABILITY_COLUMNS, COLUMNS, DEVIATION_COLUMNS

__all__ = [
    "Results",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "is_results_dir",
    "load",
    "load_results",
]

RUN_JSON = "run.json"
ENVIRONMENT_JSON = "environment.json"
PYPERF_JSON = "pyperf.json"
RESULTS_CSV = "results.csv"
DEVIATIONS_CSV = "deviations.csv"
CAPABILITIES_CSV = "capabilities.csv"
REPORT_MD = "report.md"


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); results are meant to be shared.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_csv(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    atomic_write_text(path, frame.to_csv(index=False))


def is_results_dir(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / RUN_JSON).is_file() or (Path(path) / RESULTS_CSV).is_file()


def _read_table(path: Path, columns: Mapping[str, tuple[str, str]], what: str) -> pd.DataFrame:
    try:
        raw = pd.read_csv(
            path, dtype={name: "string" for name in columns if columns[name][0] == "string"}
        )
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read {what}: {exc}".splitlines()[0]) from None
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise ResultsError(f"{path}: not a valid {what}: missing columns {missing}")
    try:
        for name, (dtype, _) in columns.items():
            raw[name] = raw[name].astype(pd.api.types.pandas_dtype(dtype))
    except (ValueError, TypeError) as exc:
        raise ResultsError(
            f"{path}: column has bad values in {what}: {exc}".splitlines()[0]
        ) from None
    return raw


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: cannot read: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object")
    return data


@dataclass
class Results:
    """Everything a results folder holds, read back."""

    path: Path
    frame: pd.DataFrame
    deviations: pd.DataFrame
    capabilities: pd.DataFrame
    environment: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)

    @property
    def pyperf_path(self) -> Path:
        return self.path / PYPERF_JSON

    def suite(self) -> Any:
        """The pyperf ``BenchmarkSuite`` holding the raw values (None if absent)."""
        import pyperf

        if not self.pyperf_path.is_file():
            return None
        try:
            return pyperf.BenchmarkSuite.load(str(self.pyperf_path))
        except Exception as exc:
            raise ResultsError(f"{self.pyperf_path}: cannot read: {exc}".splitlines()[0]) from None

    def raw_values(self) -> dict[str, list[float]]:
        """Raw timing values (seconds per call) per case name."""
        suite = self.suite()
        if suite is None:
            return {}
        return {b.get_name(): list(b.get_values()) for b in suite.get_benchmarks()}


def load_results(path: str | os.PathLike[str]) -> Results:
    """Read a results folder; ``ResultsError`` if it is missing, not one, or corrupt."""
    folder = Path(path)
    if not folder.exists():
        raise ResultsError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise ResultsError(f"{folder}: not a folder")
    csv = folder / RESULTS_CSV
    if not csv.is_file():
        raise ResultsError(f"{folder}: not a results folder (no {RESULTS_CSV})")
    frame = _read_table(csv, COLUMNS, "results table")
    dev_path = folder / DEVIATIONS_CSV
    deviations = (
        _read_table(dev_path, DEVIATION_COLUMNS, "deviation table")
        if dev_path.is_file()
        else pd.DataFrame({c: pd.Series(dtype=t) for c, (t, _) in DEVIATION_COLUMNS.items()})
    )
    cap_path = folder / CAPABILITIES_CSV
    capabilities = (
        _read_table(cap_path, CAPABILITY_COLUMNS, "capability table")
        if cap_path.is_file()
        else pd.DataFrame({c: pd.Series(dtype=t) for c, (t, _) in CAPABILITY_COLUMNS.items()})
    )
    return Results(
        path=folder,
        frame=frame,
        deviations=deviations,
        capabilities=capabilities,
        environment=_read_json(folder / ENVIRONMENT_JSON),
        run=_read_json(folder / RUN_JSON),
    )


def load(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The results frame of a results folder (``frame.attrs`` holds run and environment)."""
    results = load_results(path)
    frame = results.frame
    frame.attrs["path"] = str(results.path)
    frame.attrs["run"] = results.run
    frame.attrs["environment"] = results.environment
    return frame
