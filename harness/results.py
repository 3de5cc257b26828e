"""A results folder on disk: its layout, atomic writes, and reading it back, checked.

Layout of a results folder ``DIR``::

    run.json           what was asked: layers, implementations, grid, dtypes, threads,
                       devices, profile; and the environment fingerprint --resume checks
    environment.json   CPU, cores, versions, BLAS/FFT backends, thread and allocator settings
    raw/*.jsonl        what the worker processes wrote as they measured (append-only;
                       the source of truth that survives a kill)
    logs/*.log         each worker's stdout and stderr
    pyperf.json        every timing as a pyperf BenchmarkSuite (python -m pyperf stats ...)
    results.csv        the results frame (columns: harness.frame.COLUMNS, then grid axes)
    deviations.csv     per-tensor deviation detail (harness.frame.DEVIATION_COLUMNS)
    capabilities.csv   the capability matrix (harness.frame.CAPABILITY_COLUMNS)
    breakdown.csv      where one profiled call's time goes (harness.frame.BREAKDOWN_COLUMNS);
                       only in folders whose run profiled (--breakdown), optional to read
    manifest.json      schema, rows, columns, size and sha256 of the files above
    report.md, plots/  the report (python -m harness report DIR)

Every file but ``raw/`` is rewritten whole through a temporary file and ``os.replace``,
so a reader never sees half a file from a live writer; a file cut short or altered
afterwards (a full disk, a bad copy, an editor) is caught by ``load_results``.

Schema versions: the format is ``SCHEMA_VERSION`` (4). The JSON files carry it as a
top-level ``"schema"`` key (``versioned``); the CSVs and pyperf.json have it in
``manifest.json``. A folder without versions is format 1 and is still read.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.atomic import AtomicFile, atomic_write_bytes, atomic_write_json, atomic_write_text
from harness.config import PLAN_KEYS
from harness.errors import HarnessError, ResultsError
from harness.frame import BREAKDOWN_COLUMNS, CAPABILITY_COLUMNS, COLUMNS, DEVIATION_COLUMNS
from harness.pyperf_adapter import benchmark_json, json_version, load_suite, pyperf_suite
from harness.shard import identity_mismatch

__all__ = [
    "MANIFEST_JSON",
    "RAW_DIR",
    "SCHEMA_VERSION",
    "AtomicFile",
    "Results",
    "ResultsWriter",
    "atomic_write_bytes",
    "atomic_write_csv",
    "atomic_write_json",
    "atomic_write_text",
    "benchmark_json",
    "csv_chunk",
    "damaged_file",
    "load",
    "load_results",
    "pyperf_suite",
    "versioned",
    "write_results",
]

#: The format of a results folder this harness writes, and the newest it reads.
#: 1: no versions anywhere (before the manifest); 2: "schema" in the JSON files, manifest.json;
#: 3: results.csv has ``step`` rows (a training step timed whole) and a ``returns`` column,
#: and ``allocator_measured`` (the allocator the workers really ran with); 4: results.csv
#: has ``minor_faults``, ``writes_inputs``, ``random_output``, ``reference_gradcheck``
#: (and its error) and ``alternating_torch_s``/``alternating_numpy_s``, and breakdown.csv
#: may be there (format 3 was not bumped for the first five: a format-3 folder may or
#: may not have them, and whatever it lacks is read as empty).
SCHEMA_VERSION = 4

RUN_JSON = "run.json"
ENVIRONMENT_JSON = "environment.json"
PYPERF_JSON = "pyperf.json"
RESULTS_CSV = "results.csv"
DEVIATIONS_CSV = "deviations.csv"
CAPABILITIES_CSV = "capabilities.csv"
BREAKDOWN_CSV = "breakdown.csv"
MANIFEST_JSON = "manifest.json"
REPORT_MD = "report.md"

#: The workers' append-only event files (the source of truth a damaged folder is
#: rebuilt from); declared here only.
RAW_DIR = "raw"

#: The columns each CSV had in format 1. A format-1 folder must have these (those still
#: documented in harness.frame); the columns documented since are read as empty. When
#: columns are added again, bump SCHEMA_VERSION and keep the column sets of the older
#: formats here.
_FORMAT1_COLUMNS: dict[str, frozenset[str]] = {
    "results.csv": frozenset(
        [
            "case",
            "layer",
            "impl",
            "role",
            "form",
            "source",
            "point",
            "size",
            "dtype",
            "threads",
            "device",
            "phase",
            "status",
            "error",
            "median_s",
            "mean_s",
            "stdev_s",
            "min_s",
            "max_s",
            "n_values",
            "n_processes",
            "loops",
            "max_abs_err",
            "max_rel_err",
            "worst_tensor",
            "rtol",
            "within_tol",
            "gradcheck",
            "gradcheck_error",
            "oneoff_s",
            "oneoff_what",
        ]
    ),
    "deviations.csv": frozenset(
        [
            "case",
            "layer",
            "impl",
            "point",
            "size",
            "dtype",
            "phase",
            "tensor",
            "max_abs_err",
            "max_rel_err",
            "within_tol",
        ]
    ),
    "capabilities.csv": frozenset(
        ["layer", "impl", "role", "check", "status", "reason", "graph_breaks"]
    ),
}

#: The columns each CSV had in format 2 (before ``returns``); its step speedup is the
#: old estimate (forward and backward summed per round), and it has no ``step`` rows.
_FORMAT2_COLUMNS: dict[str, frozenset[str]] = {
    "results.csv": _FORMAT1_COLUMNS["results.csv"]
    | frozenset(
        [
            "allocator",
            "group",
            "versus",
            "speedup",
            "speedup_low",
            "speedup_high",
            "decision",
            "step_speedup",
            "step_speedup_low",
            "step_speedup_high",
            "step_decision",
            "break_even_calls",
            "peak_bytes",
            "peak_sources",
        ]
    ),
    "deviations.csv": _FORMAT1_COLUMNS["deviations.csv"],
    "capabilities.csv": _FORMAT1_COLUMNS["capabilities.csv"],
}
#: The columns each CSV had in format 3: format 2's and the step's (before the columns
#: listed at ``SCHEMA_VERSION``); breakdown.csv is not listed, so whatever of it a
#: format-3 folder lacks is read as empty.
_FORMAT3_COLUMNS: dict[str, frozenset[str]] = {
    "results.csv": _FORMAT2_COLUMNS["results.csv"] | frozenset(["returns", "allocator_measured"]),
    "deviations.csv": _FORMAT2_COLUMNS["deviations.csv"],
    "capabilities.csv": _FORMAT2_COLUMNS["capabilities.csv"],
}
_OLDER_COLUMNS = {1: _FORMAT1_COLUMNS, 2: _FORMAT2_COLUMNS, 3: _FORMAT3_COLUMNS}


def atomic_write_csv(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    atomic_write_text(path, frame.to_csv(index=False))


def versioned(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` with ``"schema": SCHEMA_VERSION``: how run.json and
    environment.json are written (``atomic_write_json(path, versioned(obj))``)."""
    return {**obj, "schema": SCHEMA_VERSION}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files_digest(files: Mapping[str, Any]) -> str:
    """The sha256 of a manifest's ``files`` entries, written canonically."""
    return _sha256(json.dumps(files, sort_keys=True, separators=(",", ":")).encode("utf-8"))


class ResultsWriter:
    """Writes the data files of a results folder a piece at a time, then the manifest.

    ``add`` appends typed CSV chunks (``csv_chunk``) and pyperf benchmarks
    (``benchmark_json``) in the order the folder should list them; ``finish`` puts every
    file in place and writes ``manifest.json`` last. Memory does not depend on the size
    of the grid, only on the largest chunk. ``write_results`` is the one-chunk case::

        {"schema": 2,
         "files": {"results.csv": {"schema": 2, "rows": 12, "columns": [...],
                                   "bytes": 4096, "sha256": "..."},
                   "deviations.csv": {...}, "capabilities.csv": {...},
                   "pyperf.json": {"schema": 2, "bytes": 8192, "sha256": "..."}}}

    A file cut short or with a row missing is also caught without the manifest (the
    last row must be complete) or by its row count; but a byte flipped inside a number
    that still parses (``0.0123`` read as ``0.0133``) leaves a well-formed file with
    wrong data, and the checksum is the only way to catch it: that is why the manifest
    exists.

    The old manifest is removed just before the data files are replaced, so a writer
    killed halfway leaves a folder without a manifest (read with the structural checks
    only), never a manifest that describes other files than those present; a writer
    that fails before ``finish`` (or calls ``discard``) leaves the old files as they were.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        axes: Sequence[str] = (),
        *,
        results_columns: Sequence[str] | None = None,
        deviation_columns: Sequence[str] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        # the documented columns then the grid axes (harness.frame), unless a whole
        # table given to write_results says otherwise
        self._columns = {
            RESULTS_CSV: [str(c) for c in (results_columns or [*COLUMNS, *axes])],
            DEVIATIONS_CSV: [str(c) for c in (deviation_columns or DEVIATION_COLUMNS)],
        }
        self._rows = dict.fromkeys(self._columns, 0)
        self._files: dict[str, AtomicFile] = {}
        self._benchmarks = 0
        try:
            for name, columns in self._columns.items():
                self._files[name] = AtomicFile(self.folder / name)
                self._files[name].write(_csv_header(columns))
            self._files[PYPERF_JSON] = AtomicFile(self.folder / PYPERF_JSON)
            self._files[PYPERF_JSON].write(b'{"benchmarks":[')
        except BaseException:
            self.discard()
            raise

    def add(
        self,
        results: tuple[bytes, int] | None = None,
        deviations: tuple[bytes, int] | None = None,
        benchmarks: tuple[bytes, int] | None = None,
    ) -> None:
        """Append ``(data, count)`` pieces: CSV rows without a header (``csv_chunk``),
        or comma-separated ``benchmark_json`` texts."""
        for name, piece in ((RESULTS_CSV, results), (DEVIATIONS_CSV, deviations)):
            if piece is not None and piece[1]:
                self._files[name].write(piece[0])
                self._rows[name] += piece[1]
        if benchmarks is not None and benchmarks[1]:
            if self._benchmarks:
                self._files[PYPERF_JSON].write(b",")
            self._files[PYPERF_JSON].write(benchmarks[0])
            self._benchmarks += benchmarks[1]

    def finish(
        self,
        capabilities: pd.DataFrame,
        pyperf_text: str | None = None,
        breakdown: pd.DataFrame | None = None,
    ) -> None:
        """Put every file in place, then the manifest. ``pyperf_text``, when given,
        replaces the streamed benchmarks with a whole pyperf.json (``merge``);
        ``breakdown``, when given, is breakdown.csv (without it, none is left)."""
        try:
            if breakdown is not None:
                part = AtomicFile(self.folder / BREAKDOWN_CSV)
                self._files[BREAKDOWN_CSV] = part
                part.write(breakdown.to_csv(index=False).encode("utf-8"))
                self._columns[BREAKDOWN_CSV] = [str(c) for c in breakdown.columns]
                self._rows[BREAKDOWN_CSV] = len(breakdown)
            caps = AtomicFile(self.folder / CAPABILITIES_CSV)
            self._files[CAPABILITIES_CSV] = caps
            caps.write(capabilities.to_csv(index=False).encode("utf-8"))
            self._columns[CAPABILITIES_CSV] = [str(c) for c in capabilities.columns]
            self._rows[CAPABILITIES_CSV] = len(capabilities)
            perf: AtomicFile | None = self._files.pop(PYPERF_JSON)
            assert perf is not None
            if pyperf_text is not None:
                perf.discard()
                perf = AtomicFile(self.folder / PYPERF_JSON)
                perf.write(pyperf_text.encode("utf-8"))
            elif self._benchmarks:
                perf.write(b'],"version":"%s"}\n' % json_version().encode())
            else:
                perf.discard()  # nothing timed yet: no pyperf.json
                perf = None
            with contextlib.suppress(FileNotFoundError):
                (self.folder / MANIFEST_JSON).unlink()
            if breakdown is None:  # the manifest will not list one
                with contextlib.suppress(FileNotFoundError):
                    (self.folder / BREAKDOWN_CSV).unlink()
            files: dict[str, dict[str, Any]] = {}
            for name, handle in self._files.items():
                files[name] = {
                    "schema": SCHEMA_VERSION,
                    "rows": self._rows[name],
                    "columns": self._columns[name],
                    **handle.commit(),
                }
            if perf is not None:
                files[PYPERF_JSON] = {"schema": SCHEMA_VERSION, **perf.commit()}
        except BaseException:
            self.discard()
            raise
        # its own checksum: a flipped byte in the manifest is the manifest's damage, not
        # that of the file whose entry it hit
        manifest = {"files": files, "files_sha256": _files_digest(files)}
        atomic_write_json(self.folder / MANIFEST_JSON, versioned(manifest))

    def discard(self) -> None:
        """Drop what was written; the folder's files stay as they were."""
        for handle in self._files.values():
            handle.discard()
        self._files.clear()


def _csv_header(columns: Sequence[str]) -> bytes:
    return pd.DataFrame(columns=list(columns)).to_csv(index=False).encode("utf-8")


def csv_chunk(table: pd.DataFrame) -> tuple[bytes, int]:
    """A typed table's rows as CSV without its header, for ``ResultsWriter.add``:
    the chunks of a table, concatenated, read the same as the table written whole."""
    return table.to_csv(index=False, header=False).encode("utf-8"), len(table)


def write_results(
    folder: str | os.PathLike[str],
    frame: pd.DataFrame,
    deviations: pd.DataFrame,
    capabilities: pd.DataFrame,
    pyperf_text: str | None,
    breakdown: pd.DataFrame | None = None,
) -> None:
    """Write the data files of a results folder from whole tables (``ResultsWriter``
    with one chunk each): results.csv, deviations.csv, capabilities.csv, pyperf.json
    when ``pyperf_text`` is given, breakdown.csv when ``breakdown`` is, and last
    ``manifest.json``."""
    writer = ResultsWriter(
        folder, results_columns=list(frame.columns), deviation_columns=list(deviations.columns)
    )
    try:
        writer.add(results=csv_chunk(frame), deviations=csv_chunk(deviations))
    except BaseException:
        writer.discard()
        raise
    writer.finish(capabilities, pyperf_text, breakdown)


# -- reading back ---------------------------------------------------------------------


class _Problem(Exception):
    """What is wrong with one file of a folder (turned into a ``ResultsError`` line)."""

    def __init__(
        self,
        name: str,
        kind: str,
        detail: str = "",
        *,
        rebuildable: bool = True,
        hint: str | None = None,
        message: str | None = None,
    ) -> None:
        super().__init__(name, kind, detail)
        self.name = name
        self.kind = kind  # "damaged", "missing", or what the file is ("was written by ...")
        self.detail = detail
        self.rebuildable = rebuildable
        self.hint = hint
        self.message = message  # the whole error line, when "FILE: KIND: DETAIL" does not fit

    def what(self, folder: Path) -> str:
        """The file and the problem, without advice."""
        if self.message is not None:
            return self.message
        sep = " " if self.kind.startswith("was ") else ": "
        text = f"{folder / self.name}{sep}{self.kind}"
        return text + (f": {self.detail}" if self.detail else "")

    def error(self, folder: Path, *, has_raw: bool, rebuilt: bool = False) -> str:
        """The whole error line: the file, the problem, and what to do."""
        text = self.what(folder)
        if rebuilt:
            hint = f"rebuilding it from {RAW_DIR}/ did not fix it; re-run it"
        elif self.hint is not None:
            hint = self.hint
        elif self.message is not None:
            hint = ""
        elif has_raw and self.rebuildable:
            hint = "re-run or rebuild it with --resume"
        else:
            hint = "re-run it"
        return f"{text}; {hint}" if hint else text

    def summary(self) -> str:
        """The file and its problem, as a note says it: ``results.csv is damaged (...)``."""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.name} is {self.kind}{detail}"

    def note(self) -> str:
        return f"{self.summary()}; rebuilt it from {RAW_DIR}/"


def _newer(name: str, schema: int) -> _Problem:
    return _Problem(
        name,
        f"was written by a newer harness (schema {schema}; this one reads up to {SCHEMA_VERSION})",
        rebuildable=False,
        hint="read it with a newer version of the harness",
    )


def _check_schema(name: str, value: Any, *, rebuildable: bool, where: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Problem(
            name,
            "damaged",
            f"{where}schema is {value!r}, not a version number",
            rebuildable=rebuildable,
        )
    if value > SCHEMA_VERSION:
        raise _newer(name, value)
    return value


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise _Problem(path.name, "damaged", "it is a folder, not a file") from None
    except OSError as exc:
        raise _Problem(path.name, "unreadable", exc.strerror or str(exc)) from None


def _parse_json(name: str, data: bytes, *, rebuildable: bool) -> dict[str, Any]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise _Problem(name, "damaged", "it is not UTF-8 text", rebuildable=rebuildable) from None
    except ValueError as exc:
        raise _Problem(
            name, "damaged", f"not valid JSON ({exc})", rebuildable=rebuildable
        ) from None
    if not isinstance(obj, dict):
        raise _Problem(name, "damaged", "expected a JSON object", rebuildable=rebuildable)
    if "schema" in obj:
        _check_schema(name, obj["schema"], rebuildable=rebuildable)
    return obj


def _read_json(folder: Path, name: str) -> dict[str, Any]:
    """run.json or environment.json: ``{}`` when absent. Not derived from raw/, so a
    damaged one cannot be rebuilt."""
    data = _read_bytes(folder / name)
    if data is None:
        return {}
    return _parse_json(name, data, rebuildable=False)


def _parse_manifest(data: bytes) -> tuple[int, dict[str, dict[str, Any]]]:
    """The schema and the ``files`` of manifest.json, each entry checked for shape."""
    obj = _parse_json(MANIFEST_JSON, data, rebuildable=True)
    if "schema" not in obj:
        raise _Problem(MANIFEST_JSON, "damaged", "it has no schema")
    files = obj.get("files")
    if not isinstance(files, dict):
        raise _Problem(MANIFEST_JSON, "damaged", "'files' is not an object")
    if "files_sha256" in obj and obj["files_sha256"] != _files_digest(files):
        raise _Problem(MANIFEST_JSON, "damaged", "its own checksum does not match its entries")
    for name, entry in files.items():
        ok = (
            isinstance(entry, dict)
            and isinstance(entry.get("bytes"), int)
            and isinstance(entry.get("sha256"), str)
        )
        if ok and name != PYPERF_JSON:
            ok = isinstance(entry.get("rows"), int) and isinstance(entry.get("columns"), list)
        if not ok:
            raise _Problem(MANIFEST_JSON, "damaged", f"its entry for {name} is malformed")
        if "schema" in entry:
            _check_schema(name, entry["schema"], rebuildable=True, where="manifest.json: ")
    return obj["schema"], files


def _check_against_manifest(
    name: str,
    data: bytes,
    entry: Mapping[str, Any] | None,
    rows: int | None = None,
    columns: list[str] | None = None,
) -> None:
    if entry is None:
        return
    if len(data) != entry["bytes"]:
        raise _Problem(
            name, "damaged", f"it is {len(data)} bytes, {MANIFEST_JSON} says {entry['bytes']}"
        )
    if _sha256(data) != entry["sha256"]:
        raise _Problem(name, "damaged", f"sha256 differs from {MANIFEST_JSON}")
    if rows is not None and rows != entry["rows"]:
        raise _Problem(name, "damaged", f"it has {rows} rows, {MANIFEST_JSON} says {entry['rows']}")
    if columns is not None and columns != entry["columns"]:
        raise _Problem(name, "damaged", f"its columns differ from those in {MANIFEST_JSON}")


def _csv_records(name: str, data: bytes) -> tuple[str, list[str], int]:
    """(text, header, number of data rows) of a CSV whose every row is complete."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Problem(name, "damaged", "it is not UTF-8 text") from None
    if not text.strip():
        raise _Problem(name, "damaged", "it is empty")
    try:
        records = [r for r in csv.reader(io.StringIO(text, newline=""), strict=True) if r]
    except csv.Error as exc:
        if "end of data" in str(exc):
            raise _Problem(
                name, "damaged", "its last row is incomplete (it ends inside a quoted field)"
            ) from None
        raise _Problem(name, "damaged", f"it is not valid CSV ({exc})") from None
    header, rows = records[0], records[1:]
    for number, record in enumerate(rows, start=1):
        if len(record) != len(header):
            counts = f"row {number} has {len(record)} of {len(header)} fields"
            if number == len(rows) and len(record) < len(header):
                raise _Problem(name, "damaged", f"its last row is incomplete ({counts})")
            raise _Problem(name, "damaged", counts)
    if not text.endswith("\n"):
        raise _Problem(
            name, "damaged", "its last row is incomplete (the file does not end with a newline)"
        )
    return text, header, len(rows)


def _bad_value(series: pd.Series, dtype: str) -> tuple[int, Any] | None:
    """The first (row number, value) of ``series`` that is not a ``dtype``."""
    for number, value in enumerate(series.tolist(), start=1):
        if value is None or value is pd.NA or (isinstance(value, float) and value != value):
            continue
        if dtype == "boolean":
            good = isinstance(value, bool) or str(value) in ("True", "False", "true", "false")
        elif dtype in ("Float64", "Int64"):
            try:
                number_value = float(value)
                good = dtype == "Float64" or number_value.is_integer()
            except (TypeError, ValueError):
                good = False
        else:
            good = True
        if not good:
            return number, value
    return None


_KIND_OF = {"Float64": "a number", "Int64": "an integer", "boolean": "True or False"}


def _read_table(
    name: str,
    data: bytes,
    columns: Mapping[str, tuple[str, str]],
    entry: Mapping[str, Any] | None,
    *,
    extra_allowed: bool,
    schema: int,
    notes: list[str],
) -> pd.DataFrame:
    """A checked CSV as a typed frame: ``columns`` (then, for results.csv, the grid axes)."""
    text, header, rows = _csv_records(name, data)
    _check_against_manifest(name, data, entry, rows, header)
    # a format-1 file lacks the columns documented since: they are read as empty
    older = (
        _OLDER_COLUMNS[schema].get(name, frozenset())
        if schema in _OLDER_COLUMNS
        else frozenset(columns)
    )
    missing = [c for c in columns if c not in header and c in older]
    absent = [c for c in columns if c not in header and c not in older]
    unexpected = [] if extra_allowed else [c for c in header if c not in columns]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected " + ", ".join(unexpected))
        raise _Problem(name, "damaged", "wrong columns (" + "; ".join(parts) + ")")
    if len(set(header)) != len(header):
        raise _Problem(name, "damaged", "a column name appears twice")
    try:
        raw = pd.read_csv(
            io.StringIO(text),
            dtype={c: "string" for c, (dtype, _) in columns.items() if dtype == "string"},
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise _Problem(name, "damaged", f"cannot parse it ({exc})".splitlines()[0]) from None
    if len(raw) != rows:
        raise _Problem(name, "damaged", f"pandas reads {len(raw)} rows, the csv module {rows}")
    if absent:
        for column in absent:
            raw[column] = pd.NA
        notes.append(
            f"{name} is from an older harness (format {schema}): its columns "
            f"{', '.join(absent)} are empty"
        )
    # format-1 columns no longer documented are dropped (they are not grid axes)
    gone = [c for c in raw.columns if c in _FORMAT1_COLUMNS.get(name, ()) and c not in columns]
    raw = raw[[*columns, *(c for c in raw.columns if c not in columns and c not in gone)]]
    for column, (dtype, _) in columns.items():
        try:
            raw[column] = raw[column].astype(pd.api.types.pandas_dtype(dtype))
        except (ValueError, TypeError) as exc:
            bad = _bad_value(raw[column], dtype)
            what = _KIND_OF.get(dtype, dtype)
            detail = (
                f"column {column} has {bad[1]!r} in row {bad[0]}, not {what}"
                if bad is not None
                else f"column {column} is not {what} ({exc})".splitlines()[0]
            )
            raise _Problem(name, "damaged", detail) from None
    return raw


def _empty_table(columns: Mapping[str, tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, (t, _) in columns.items()})


@functools.cache
def _parse_suite(data: bytes) -> Any:
    try:
        return load_suite(data.decode("utf-8"))
    except Exception as exc:  # pyperf raises ValueError, KeyError, TypeError, ... on bad input
        detail = f"pyperf cannot read it ({type(exc).__name__}: {exc})".splitlines()[0]
        raise _Problem(PYPERF_JSON, "damaged", detail) from None


_UNLOADED = object()


@dataclass
class Results:
    """Everything a results folder holds, read back.

    ``notes`` says what ``load_results`` had to repair (a file rebuilt from ``raw/``).
    """

    path: Path
    frame: pd.DataFrame
    deviations: pd.DataFrame
    capabilities: pd.DataFrame
    environment: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    breakdown: pd.DataFrame | None = None
    """breakdown.csv (``BREAKDOWN_COLUMNS``, then grid axes); None where the run did not
    profile (folders before it, ``--breakdown none``)."""
    _suite: Any = field(default=_UNLOADED, init=False, repr=False, compare=False)

    @property
    def pyperf_path(self) -> Path:
        return self.path / PYPERF_JSON

    def suite(self) -> Any:
        """The pyperf ``BenchmarkSuite`` holding the raw values (None if absent).

        ``load_results`` has read and checked it already; a ``Results`` built in memory
        reads ``pyperf.json`` on the first call. Either way it is read once.
        """
        if self._suite is _UNLOADED:
            data = None
            with contextlib.suppress(OSError):
                data = self.pyperf_path.read_bytes()
            try:
                self._suite = None if data is None else _parse_suite(data)
            except _Problem as problem:
                raise ResultsError(f"{self.pyperf_path}: {problem.detail}") from None
        return self._suite

    def raw_values(self) -> dict[str, list[float]]:
        """Raw timing values (seconds per call) per case name."""
        suite = self.suite()
        if suite is None:
            return {}
        return {b.get_name(): list(b.get_values()) for b in suite.get_benchmarks()}


def _has_raw(folder: Path) -> bool:
    raw = folder / RAW_DIR
    return raw.is_dir() and any(raw.glob("*.jsonl"))


def _load_once(folder: Path, manifest_data: bytes | None) -> Results:
    manifest: dict[str, dict[str, Any]] | None = None
    run = _read_json(folder, RUN_JSON)
    environment = _read_json(folder, ENVIRONMENT_JSON)
    edited = identity_mismatch(run, environment, PLAN_KEYS)
    if edited is not None:  # what it says of the run would not be what was measured
        name, _, why = edited.partition(": ")
        raise _Problem(name, "damaged", why, rebuildable=False, hint="re-run it")
    # the folder's format: the manifest's; before the first write, run.json's (the runner
    # writes it first); without either, format 1
    schema = int(run.get("schema", environment.get("schema", 1)))
    if manifest_data is not None:
        schema, manifest = _parse_manifest(manifest_data)
    notes: list[str] = []

    def entry(name: str) -> dict[str, Any] | None:
        if manifest is None:
            return None
        if name not in manifest:
            raise _Problem(name, "damaged", f"it is not listed in {MANIFEST_JSON}")
        return manifest[name]

    def table(name: str, columns: Mapping[str, tuple[str, str]], *, required: bool) -> pd.DataFrame:
        data = _read_bytes(folder / name)
        if data is None:
            if manifest is not None:
                raise _Problem(name, "missing", f"{MANIFEST_JSON} lists it")
            if required:
                raise _Problem(
                    name, "missing", message=f"{folder}: not a results folder (no {name})"
                )
            return _empty_table(columns)
        return _read_table(
            name,
            data,
            columns,
            entry(name),
            extra_allowed=columns is COLUMNS or columns is BREAKDOWN_COLUMNS,
            schema=schema,
            notes=notes,
        )

    frame = table(RESULTS_CSV, COLUMNS, required=True)
    deviations = table(DEVIATIONS_CSV, DEVIATION_COLUMNS, required=False)
    capabilities = table(CAPABILITIES_CSV, CAPABILITY_COLUMNS, required=False)
    # optional: only a run that profiled has one (older folders never do)
    listed = manifest is not None and BREAKDOWN_CSV in manifest
    breakdown = (
        table(BREAKDOWN_CSV, BREAKDOWN_COLUMNS, required=False)
        if listed or (folder / BREAKDOWN_CSV).exists()
        else None
    )

    suite = None
    data = _read_bytes(folder / PYPERF_JSON)
    if data is None:
        if manifest is not None and PYPERF_JSON in manifest:
            raise _Problem(PYPERF_JSON, "missing", f"{MANIFEST_JSON} lists it")
    else:
        if manifest is not None:
            _check_against_manifest(PYPERF_JSON, data, manifest.get(PYPERF_JSON))
        suite = _parse_suite(data)

    results = Results(
        path=folder,
        frame=frame,
        deviations=deviations,
        capabilities=capabilities,
        environment=environment,
        run=run,
        notes=tuple(notes),
        breakdown=breakdown,
    )
    results._suite = suite
    return results


def _load_consistent(folder: Path) -> Results:
    """One consistent reading: a writer may replace the files while they are read (the
    manifest is removed first and written last), so a mismatch seen while the manifest
    changed is read again rather than reported."""
    attempts = 3
    for attempt in range(attempts):
        manifest = _read_bytes(folder / MANIFEST_JSON)
        try:
            return _load_once(folder, manifest)
        except _Problem:
            if attempt == attempts - 1 or _read_bytes(folder / MANIFEST_JSON) == manifest:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


def load_results(
    path: str | os.PathLike[str], rebuild: Callable[[Path], None] | None = None
) -> Results:
    """Read a results folder, checking every file it reads; ``ResultsError`` (one line
    naming the file and the problem) if it is missing, not one, damaged, or newer.

    Checked: run.json, environment.json and manifest.json parse and have no newer
    ``schema``; each CSV has complete rows (it ends with a newline, every row has as
    many fields as the header), the documented columns (``harness.frame``; results.csv
    may have grid-axis columns besides), values of the documented types, and, when
    manifest.json lists it, its size, sha256, rows and columns; pyperf.json parses. A
    folder without manifest.json (format 1, or a run interrupted before its first
    write finished) gets every check but those against the manifest.

    With ``rebuild``, a damaged or missing results.csv, deviations.csv,
    capabilities.csv, pyperf.json or manifest.json in a folder that has ``raw/*.jsonl``
    is repaired by calling ``rebuild(folder)`` (which rewrites them from the workers'
    raw event files) and reading again; ``Results.notes`` then says what was rebuilt.
    Nothing is rebuilt for a damaged run.json or environment.json (they do not come from
    raw/) nor for a file written by a newer harness.
    """
    folder = Path(path)
    if not folder.exists():
        raise ResultsError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise ResultsError(f"{folder}: not a folder")
    try:
        return _load_consistent(folder)
    except _Problem as problem:
        has_raw = _has_raw(folder)
        if rebuild is None or not has_raw or not problem.rebuildable:
            raise ResultsError(problem.error(folder, has_raw=has_raw)) from None
        first = problem
    try:
        rebuild(folder)
    except (HarnessError, OSError) as exc:
        raise ResultsError(
            f"{first.what(folder)}; rebuilding it from {RAW_DIR}/ failed: {exc}".splitlines()[0]
        ) from None
    try:
        results = _load_consistent(folder)
    except _Problem as problem:
        raise ResultsError(problem.error(folder, has_raw=True, rebuilt=True)) from None
    results.notes = (first.note(), *results.notes)
    return results


def damaged_file(path: str | os.PathLike[str]) -> str | None:
    """What a rebuild from ``raw/`` would repair in a results folder: its first damaged
    or missing table, pyperf.json or manifest.json, said as a note (``results.csv is
    damaged (its last row is incomplete)``); None when the folder reads back whole, when
    it has no tables yet (a run stopped before its first write), or when the problem is
    one no rebuild repairs (run.json, environment.json, a newer harness). For
    ``--resume``, which rewrites those files from ``raw/`` and says so."""
    folder = Path(path)
    try:
        _load_consistent(folder)
    except _Problem as problem:
        if problem.rebuildable and problem.message is None:
            return problem.summary()
    return None


def load(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The results frame of a results folder (``frame.attrs`` holds run and environment)."""
    results = load_results(path)
    frame = results.frame
    frame.attrs["path"] = str(results.path)
    frame.attrs["run"] = results.run
    frame.attrs["environment"] = results.environment
    return frame
