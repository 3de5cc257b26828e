"""Results folders: schema versions, the manifest, and the checks made when one is read.

Crafted frames only (no workers): each test damages one file the way a full disk, a bad
copy or an editor would, and checks that ``load_results`` names the file and the problem.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyperf
import pytest

import harness.results as hr
from harness.errors import ResultsError
from harness.frame import (
    CAPABILITY_COLUMNS,
    COLUMNS,
    DEVIATION_COLUMNS,
    build_frame,
    build_table,
)
from harness.results import (
    MANIFEST_JSON,
    SCHEMA_VERSION,
    Results,
    atomic_write_json,
    load,
    load_results,
    versioned,
    write_results,
)

AXES = ("n",)
MEDIANS = (0.012345, 0.023456, 0.034567, 0.045678, 0.056789, 0.067891)


def _row(i: int, median: float, impl: str = "torch") -> dict[str, Any]:
    n = 8 * (i + 1)
    case = f"conv2d/{impl}/n={n}/float32/t1/cpu/forward"
    return {
        "case": case,
        "layer": "conv2d",
        "impl": impl,
        "role": "native",
        "form": "eager",
        "source": impl,
        "point": f"n={n}",
        "size": float(n),
        "dtype": "float32",
        "threads": 1,
        "device": "cpu",
        "phase": "forward",
        "status": "ok",
        "median_s": median,
        "mean_s": median,
        "stdev_s": 0.0,
        "min_s": median,
        "max_s": median,
        "n_values": 3,
        "n_processes": 1,
        "loops": 1,
        "within_tol": True,
        "n": n,
    }


def _frame(medians: tuple[float, ...] = MEDIANS) -> pd.DataFrame:
    rows = [_row(i, m) for i, m in enumerate(medians)]
    # a failed row whose message holds a comma, quotes and a newline (quoted in the CSV)
    rows.append(
        {
            **{k: v for k, v in _row(len(rows), 0.0).items() if not k.endswith("_s")},
            "case": "conv2d/scipy/n=99/float32/t1/cpu/forward",
            "impl": "scipy",
            "status": "error",
            "error": 'ValueError: bad "shape", got (1, 2)\nsecond line',
            "n_values": None,
            "within_tol": None,
        }
    )
    return build_frame(rows, axes=AXES)


def _deviations() -> pd.DataFrame:
    return build_table(
        [
            {
                "case": "conv2d/torch/n=8/float32/t1/cpu/forward",
                "layer": "conv2d",
                "impl": "torch",
                "point": "n=8",
                "size": 8.0,
                "dtype": "float32",
                "phase": "forward",
                "tensor": "output",
                "max_abs_err": 1e-7,
                "max_rel_err": 1e-6,
                "within_tol": True,
            }
        ],
        DEVIATION_COLUMNS,
    )


def _capabilities() -> pd.DataFrame:
    return build_table(
        [
            {
                "layer": "conv2d",
                "impl": "torch",
                "role": "native",
                "check": "trace",
                "status": "ok",
            },
            {
                "layer": "conv2d",
                "impl": "torch",
                "role": "native",
                "check": "compile",
                "status": "ok",
                "graph_breaks": 0,
            },
        ],
        CAPABILITY_COLUMNS,
    )


def _pyperf_text(frame: pd.DataFrame) -> str:
    benches = [
        pyperf.Benchmark(
            [
                pyperf.Run(
                    [row.median_s] * 3,
                    metadata={"name": row.case, "unit": "second", "loops": 1},
                    collect_metadata=False,
                )
            ]
        )
        for row in frame[frame["status"] == "ok"].itertuples()
    ]
    buf = io.StringIO()
    pyperf.BenchmarkSuite(benches).dump(buf, compact=True)
    return buf.getvalue()


def _write(folder: Path, medians: tuple[float, ...] = MEDIANS, *, pyperf_json: bool = True) -> Path:
    """A results folder as the runner writes one (format 2)."""
    frame = _frame(medians)
    atomic_write_json(folder / "run.json", versioned({"config": {"layers": ["conv2d"]}}))
    atomic_write_json(folder / "environment.json", versioned({"cpu": "test cpu"}))
    write_results(
        folder,
        frame,
        _deviations(),
        _capabilities(),
        _pyperf_text(frame) if pyperf_json else None,
    )
    return folder


def _legacy(folder: Path) -> Path:
    """A format-1 folder: no schema anywhere, no manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = _frame()
    (folder / "results.csv").write_text(frame.to_csv(index=False))
    (folder / "deviations.csv").write_text(_deviations().to_csv(index=False))
    (folder / "capabilities.csv").write_text(_capabilities().to_csv(index=False))
    (folder / "run.json").write_text(json.dumps({"config": {"layers": ["conv2d"]}}))
    (folder / "environment.json").write_text(json.dumps({"cpu": "test cpu"}))
    (folder / "pyperf.json").write_text(_pyperf_text(frame))
    return folder


def _error(folder: Path, **kw: Any) -> str:
    with pytest.raises(ResultsError) as info:
        load_results(folder, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


def _truncate_mid_row(path: Path) -> None:
    data = path.read_bytes()
    cut = len(data) // 2
    while data[cut - 1 : cut] in (b"\n", b","):  # end inside a field, not on a boundary
        cut += 1
    path.write_bytes(data[:cut])


def _add_raw(folder: Path) -> None:
    (folder / "raw").mkdir(exist_ok=True)
    (folder / "raw" / "timing-000.jsonl").write_text('{"event": "done"}\n')


# -- writing --------------------------------------------------------------------------


def test_round_trip(tmp_path: Path) -> None:
    folder = _write(tmp_path / "run")
    results = load_results(folder)
    expected = _frame()
    cols = [c for c in expected.columns if c not in AXES]
    pd.testing.assert_frame_equal(results.frame[cols], expected[cols])
    assert results.frame["n"].tolist() == expected["n"].tolist()
    assert results.frame["error"].iloc[-1] == 'ValueError: bad "shape", got (1, 2)\nsecond line'
    pd.testing.assert_frame_equal(results.deviations, _deviations())
    pd.testing.assert_frame_equal(results.capabilities, _capabilities())
    assert results.run == {"schema": SCHEMA_VERSION, "config": {"layers": ["conv2d"]}}
    assert results.environment["cpu"] == "test cpu"
    assert results.notes == ()
    raw = results.raw_values()
    assert raw["conv2d/torch/n=8/float32/t1/cpu/forward"] == [MEDIANS[0]] * 3
    assert results.suite() is results.suite()  # read once, at load time
    assert load(folder).attrs["environment"]["cpu"] == "test cpu"


def test_manifest_format(tmp_path: Path) -> None:
    folder = _write(tmp_path / "run")
    manifest = json.loads((folder / MANIFEST_JSON).read_text())
    assert manifest["schema"] == SCHEMA_VERSION == 4
    assert set(manifest["files"]) == {
        "results.csv",
        "deviations.csv",
        "capabilities.csv",
        "pyperf.json",
    }
    entry = manifest["files"]["results.csv"]
    data = (folder / "results.csv").read_bytes()
    assert entry["schema"] == SCHEMA_VERSION
    assert entry["rows"] == len(_frame())
    assert entry["columns"] == list(_frame().columns)
    assert entry["bytes"] == len(data)
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert set(manifest["files"]["pyperf.json"]) == {"schema", "bytes", "sha256"}
    # without pyperf text, no pyperf.json entry
    _write(tmp_path / "nopyperf", pyperf_json=False)
    manifest = json.loads((tmp_path / "nopyperf" / MANIFEST_JSON).read_text())
    assert "pyperf.json" not in manifest["files"]
    assert load_results(tmp_path / "nopyperf").suite() is None


def test_a_table_written_in_chunks_reads_as_the_whole_table(tmp_path: Path) -> None:
    whole = _write(tmp_path / "whole")
    frame = _frame()
    suite = pyperf.BenchmarkSuite.loads(_pyperf_text(frame))
    axes = [c for c in frame.columns if c not in COLUMNS]
    writer = hr.ResultsWriter(tmp_path / "chunked", axes)
    for i in range(len(frame)):  # one row, and its benchmark if it has one, at a time
        name = frame["case"].iloc[i]
        benches = [b for b in suite if b.get_name() == name]
        writer.add(
            results=hr.csv_chunk(frame.iloc[i : i + 1]),
            deviations=hr.csv_chunk(_deviations()) if i == 0 else None,
            benchmarks=(",".join(map(hr.benchmark_json, benches)).encode(), len(benches)),
        )
    writer.finish(_capabilities())
    for name in ("results.csv", "deviations.csv", "capabilities.csv"):
        assert (tmp_path / "chunked" / name).read_bytes() == (whole / name).read_bytes()
    (tmp_path / "chunked" / "run.json").write_bytes((whole / "run.json").read_bytes())
    (tmp_path / "chunked" / "environment.json").write_bytes(
        (whole / "environment.json").read_bytes()
    )
    chunked = load_results(tmp_path / "chunked")  # every manifest check passes
    assert chunked.raw_values() == load_results(whole).raw_values()
    manifest = json.loads((tmp_path / "chunked" / MANIFEST_JSON).read_text())
    assert manifest["files"]["results.csv"]["rows"] == len(frame)


def test_a_writer_that_stops_halfway_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    folder = _write(tmp_path / "run")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    writer = hr.ResultsWriter(folder, ["n"])
    writer.add(results=hr.csv_chunk(_frame(tuple(2 * m for m in MEDIANS)).iloc[:2]))
    writer.discard()  # what an exception inside Builder.write does
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no temp files left
    load_results(folder)


def test_versioned_and_atomic_write_json(tmp_path: Path) -> None:
    obj = {"a": 1}
    assert versioned(obj) == {"a": 1, "schema": SCHEMA_VERSION}
    assert obj == {"a": 1}  # a copy
    atomic_write_json(tmp_path / "x.json", obj)
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}  # nothing added


def test_legacy_folder_loads(tmp_path: Path) -> None:
    results = load_results(_legacy(tmp_path / "old"))
    assert len(results.frame) == len(_frame())
    assert "schema" not in results.run
    assert len(results.raw_values()) == len(MEDIANS)


def test_folder_being_written_loads(tmp_path: Path) -> None:
    # write_results removes the manifest first and writes it last: a kill in between
    # leaves complete files without one
    folder = _write(tmp_path / "run")
    (folder / MANIFEST_JSON).unlink()
    assert len(load_results(folder).frame) == len(_frame())
    # and only results.csv written so far
    for name in ("deviations.csv", "capabilities.csv", "pyperf.json"):
        (folder / name).unlink()
    results = load_results(folder)
    assert results.deviations.empty and results.capabilities.empty
    assert results.suite() is None


def test_reader_racing_a_writer_reads_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _write(tmp_path / "run")
    original = hr._load_once
    calls = []

    def racing(folder_: Path, manifest: bytes | None) -> Results:
        calls.append(manifest)
        if len(calls) == 1:  # the writer replaces everything after the manifest was read
            _write(folder, tuple(m * 2 for m in MEDIANS))
        return original(folder_, manifest)

    monkeypatch.setattr(hr, "_load_once", racing)
    results = load_results(folder)
    assert len(calls) == 2
    assert results.frame["median_s"].iloc[0] == MEDIANS[0] * 2


# -- damage ---------------------------------------------------------------------------


@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "no-manifest"])
def test_truncated_results_csv(tmp_path: Path, manifest: bool) -> None:
    folder = _write(tmp_path / "run")
    if not manifest:
        (folder / MANIFEST_JSON).unlink()
    _truncate_mid_row(folder / "results.csv")
    message = _error(folder)
    assert message.startswith(f"{folder / 'results.csv'}: damaged: its last row is incomplete (")
    assert message.endswith("; re-run it")


def test_truncated_at_a_row_boundary_caught_by_manifest(tmp_path: Path) -> None:
    folder = _write(tmp_path / "run")
    path = folder / "results.csv"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3]))
    message = _error(folder)
    assert f"{path}: damaged: it is " in message and "manifest.json says" in message
    # without the manifest, a file cut at a row boundary is well-formed: it loads
    (folder / MANIFEST_JSON).unlink()
    assert len(load_results(folder).frame) == 2


def test_truncated_inside_a_quoted_field(tmp_path: Path) -> None:
    folder = _legacy(tmp_path / "old")
    path = folder / "results.csv"
    text = path.read_text()
    path.write_text(text[: text.index("second line")])
    assert "its last row is incomplete (it ends inside a quoted field)" in _error(folder)


def test_flipped_byte_in_a_number_caught_by_manifest(tmp_path: Path) -> None:
    folder = _write(tmp_path / "run")
    path = folder / "results.csv"
    text = path.read_text()
    assert "0.012345" in text
    path.write_text(text.replace("0.012345", "0.013345"))  # still a number
    message = _error(folder)
    assert message == (f"{path}: damaged: sha256 differs from manifest.json; re-run it")
    # without the manifest nothing can tell
    (folder / MANIFEST_JSON).unlink()
    assert load_results(folder).frame["median_s"].iloc[0] == 0.013345


def test_bad_value_in_a_number_column(tmp_path: Path) -> None:
    folder = _legacy(tmp_path / "old")
    path = folder / "results.csv"
    path.write_text(path.read_text().replace("0.023456", "0.02x456"))
    assert f"{path}: damaged: column median_s has '0.02x456' in row 2, not a number" in _error(
        folder
    )


def test_renamed_column(tmp_path: Path) -> None:
    folder = _legacy(tmp_path / "old")
    path = folder / "results.csv"
    path.write_text(path.read_text().replace("median_s", "median", 1))
    # results.csv may have grid-axis columns: an extra column is allowed, a missing one not
    assert _error(folder).startswith(f"{path}: damaged: wrong columns (missing median_s)")
    path = folder / "deviations.csv"
    _legacy(folder)
    path.write_text(path.read_text().replace("tensor", "tensr", 1))
    assert _error(folder).startswith(
        f"{path}: damaged: wrong columns (missing tensor; unexpected tensr)"
    )


def test_renamed_column_with_manifest(tmp_path: Path) -> None:
    folder = _write(tmp_path / "run")
    path = folder / "capabilities.csv"
    path.write_text(path.read_text().replace("graph_breaks", "graph_brakes", 1))
    assert _error(folder).startswith(f"{path}: damaged: sha256 differs from manifest.json")


@pytest.mark.parametrize("name", ["run.json", "environment.json", "manifest.json"])
def test_future_schema(tmp_path: Path, name: str) -> None:
    folder = _write(tmp_path / "run")
    path = folder / name
    obj = json.loads(path.read_text())
    newer = SCHEMA_VERSION + 1
    obj["schema"] = newer
    path.write_text(json.dumps(obj))
    _add_raw(folder)
    calls: list[Path] = []
    message = _error(folder, rebuild=calls.append)
    assert message.startswith(
        f"{path} was written by a newer harness (schema {newer}; this one reads up to "
        f"{SCHEMA_VERSION})"
    )
    assert calls == []  # an older harness does not overwrite a newer one's files


def test_future_schema_of_a_file_in_the_manifest(tmp_path: Path) -> None:
    folder = _write(tmp_path / "run")
    manifest = json.loads((folder / MANIFEST_JSON).read_text())
    manifest["files"]["results.csv"]["schema"] = SCHEMA_VERSION + 1
    # as a newer harness would write it: with its own checksum over its entries
    manifest["files_sha256"] = hr._files_digest(manifest["files"])
    (folder / MANIFEST_JSON).write_text(json.dumps(manifest))
    assert _error(folder).startswith(f"{folder / 'results.csv'} was written by a newer harness")


def test_pyperf_suites_keep_names_unique(tmp_path: Path) -> None:
    benches = [
        pyperf.Benchmark(
            [pyperf.Run([1.0, 2.0], metadata={"name": f"c{i}", "loops": 1}, collect_metadata=False)]
        )
        for i in range(3)
    ]
    assert hr.pyperf_suite(benches).get_benchmark_names() == ["c0", "c1", "c2"]
    with pytest.raises(ValueError, match="already a benchmark called 'c0'"):
        hr.pyperf_suite([*benches, benches[0]])
    # read back: a pyperf.json naming one case twice is damaged, as pyperf says
    folder = _legacy(tmp_path / "run")
    data = json.loads((folder / "pyperf.json").read_text())
    data["benchmarks"].append(data["benchmarks"][0])
    (folder / "pyperf.json").write_text(json.dumps(data))
    message = _error(folder)
    assert message.startswith(f"{folder / 'pyperf.json'}: damaged: pyperf cannot read it (")
    assert "already a benchmark called" in message


@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "no-manifest"])
def test_pyperf_json_does_not_parse(tmp_path: Path, manifest: bool) -> None:
    folder = tmp_path / "run"
    if manifest:
        folder.mkdir()
        frame = _frame()
        write_results(folder, frame, _deviations(), _capabilities(), '{"benchmarks": 5}')
    else:
        _legacy(folder)
        (folder / "pyperf.json").write_text("{not json")
    message = _error(folder)
    assert message.startswith(f"{folder / 'pyperf.json'}: damaged: pyperf cannot read it (")


def test_manifest_does_not_parse(tmp_path: Path) -> None:
    folder = _write(tmp_path / "run")
    (folder / MANIFEST_JSON).write_text('{"schema": 2, "files": {')
    assert _error(folder).startswith(f"{folder / MANIFEST_JSON}: damaged: not valid JSON (")
    (folder / MANIFEST_JSON).write_text('{"schema": 2, "files": {"results.csv": {}}}')
    assert _error(folder).startswith(
        f"{folder / MANIFEST_JSON}: damaged: its entry for results.csv is malformed"
    )


def test_file_listed_in_manifest_is_missing(tmp_path: Path) -> None:
    folder = _write(tmp_path / "run")
    (folder / "deviations.csv").unlink()
    assert _error(folder).startswith(
        f"{folder / 'deviations.csv'}: missing: manifest.json lists it"
    )


def test_not_a_results_folder(tmp_path: Path) -> None:
    assert _error(tmp_path) == f"{tmp_path}: not a results folder (no results.csv)"
    assert _error(tmp_path / "nope") == f"{tmp_path / 'nope'}: no such folder"


# -- rebuilding from raw/ -------------------------------------------------------------


def _flip(folder: Path) -> None:
    path = folder / "results.csv"
    path.write_text(path.read_text().replace("0.012345", "0.013345"))


def test_rebuild_from_raw(tmp_path: Path) -> None:
    folder = _write(tmp_path / "run")
    _flip(folder)
    _add_raw(folder)
    rebuilt = tuple(m * 3 for m in MEDIANS)
    calls: list[Path] = []

    def rebuild(path: Path) -> None:
        calls.append(path)
        _write(path, rebuilt)

    results = load_results(folder, rebuild=rebuild)
    assert calls == [folder]
    assert results.notes == (
        "results.csv is damaged (sha256 differs from manifest.json); rebuilt it from raw/",
    )
    assert results.frame["median_s"].iloc[0] == rebuilt[0]
    assert results.raw_values()["conv2d/torch/n=8/float32/t1/cpu/forward"] == [rebuilt[0]] * 3


def test_rebuild_of_a_truncated_file_without_manifest(tmp_path: Path) -> None:
    folder = _legacy(tmp_path / "old")
    _truncate_mid_row(folder / "results.csv")
    _add_raw(folder)

    def rebuild(path: Path) -> None:
        _write(path)

    results = load_results(folder, rebuild=rebuild)
    assert len(results.frame) == len(_frame())
    assert results.notes[0].startswith("results.csv is damaged (its last row is incomplete (")
    assert results.notes[0].endswith("); rebuilt it from raw/")


def test_rebuild_that_does_not_fix_it_still_raises(tmp_path: Path) -> None:
    folder = _write(tmp_path / "run")
    _flip(folder)
    _add_raw(folder)
    calls: list[Path] = []
    message = _error(folder, rebuild=calls.append)
    assert calls == [folder]
    assert message == (
        f"{folder / 'results.csv'}: damaged: sha256 differs from manifest.json; "
        "rebuilding it from raw/ did not fix it; re-run it"
    )


def test_rebuild_that_fails_raises(tmp_path: Path) -> None:
    folder = _write(tmp_path / "run")
    _flip(folder)
    _add_raw(folder)

    def rebuild(path: Path) -> None:
        raise ResultsError("raw/timing-000.jsonl: unreadable")

    assert _error(folder, rebuild=rebuild).endswith(
        "; rebuilding it from raw/ failed: raw/timing-000.jsonl: unreadable"
    )


def test_no_rebuild_without_raw(tmp_path: Path) -> None:
    folder = _write(tmp_path / "run")
    _flip(folder)
    calls: list[Path] = []
    assert _error(folder, rebuild=calls.append).endswith("; re-run it")
    assert calls == []
    # with raw/ but no callback, the message says how to rebuild
    _add_raw(folder)
    assert _error(folder).endswith("; re-run or rebuild it with --resume")


def test_damaged_run_json_is_not_rebuilt(tmp_path: Path) -> None:
    folder = _write(tmp_path / "run")
    (folder / "run.json").write_text('{"config": ')
    _add_raw(folder)
    calls: list[Path] = []
    message = _error(folder, rebuild=calls.append)
    assert message.startswith(f"{folder / 'run.json'}: damaged: not valid JSON (")
    assert calls == []


def test_in_memory_results_read_pyperf_lazily(tmp_path: Path) -> None:
    folder = _write(tmp_path / "run")
    results = Results(
        path=folder, frame=_frame(), deviations=_deviations(), capabilities=_capabilities()
    )
    assert results.notes == ()
    assert len(results.raw_values()) == len(MEDIANS)
    assert (
        Results(
            path=tmp_path / "none",
            frame=_frame(),
            deviations=_deviations(),
            capabilities=_capabilities(),
        ).raw_values()
        == {}
    )


# -- format 1 ---------------------------------------------------------------------------

_NEW_COLUMNS = [c for c in COLUMNS if c not in hr._FORMAT1_COLUMNS["results.csv"]]


def test_format1_results_csv_without_the_columns_added_since(tmp_path: Path) -> None:
    folder = _legacy(tmp_path / "old")
    old = _frame().drop(columns=_NEW_COLUMNS)
    (folder / "results.csv").write_text(old.to_csv(index=False))
    results = load_results(folder)
    assert list(results.frame.columns) == [*COLUMNS, *AXES]
    for column in _NEW_COLUMNS:
        assert results.frame[column].isna().all()
        assert str(results.frame[column].dtype) == COLUMNS[column][0]
    if _NEW_COLUMNS:
        assert results.notes == (
            f"results.csv is from an older harness (format 1): its columns "
            f"{', '.join(_NEW_COLUMNS)} are empty",
        )


def test_format2_results_csv_needs_every_column(tmp_path: Path) -> None:
    if not _NEW_COLUMNS:
        pytest.skip("no column was added since format 1")
    folder = _write(tmp_path / "run")
    (folder / MANIFEST_JSON).unlink()  # being written: run.json says format 2
    path = folder / "results.csv"
    path.write_text(_frame().drop(columns=_NEW_COLUMNS[:1]).to_csv(index=False))
    assert _error(folder).startswith(f"{path}: damaged: wrong columns (missing {_NEW_COLUMNS[0]})")


def test_format3_results_csv_reads_the_columns_added_since_as_empty(tmp_path: Path) -> None:
    """2026-11-30: columns added after format 3 without a bump made every older folder
    read as "damaged" and rebuilt from raw/; format 4 lists what format 3 must have."""
    since = [c for c in COLUMNS if c not in hr._FORMAT3_COLUMNS["results.csv"]]
    assert "alternating_torch_s" in since and "returns" not in since
    folder = _write(tmp_path / "run")
    (folder / MANIFEST_JSON).unlink()  # run.json says which format
    for name in ("run.json", "environment.json"):
        data = json.loads((folder / name).read_text())
        (folder / name).write_text(json.dumps({**data, "schema": 3}))
    path = folder / "results.csv"
    path.write_text(_frame().drop(columns=since[:2]).to_csv(index=False))
    results = load_results(folder)
    assert results.notes == (
        f"results.csv is from an older harness (format 3): its columns "
        f"{', '.join(since[:2])} are empty",
    )
    assert results.frame[since[0]].isna().all()
    # a column format 3 had is still required
    path.write_text(_frame().drop(columns=["returns"]).to_csv(index=False))
    assert _error(folder).startswith(f"{path}: damaged: wrong columns (missing returns)")
