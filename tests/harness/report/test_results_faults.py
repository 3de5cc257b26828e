"""Issue 18: damage is attributed to the right file, and repairs are said."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from harness.errors import ResultsError
from harness.results import MANIFEST_JSON, load_results


def _rows(rf: ModuleType) -> list[dict[str, object]]:
    return rf.series("fft", {"numpy": lambda n: 1e-5 * n, "torch": lambda n: 5e-6 * n}, [8])


def test_a_flipped_byte_in_the_manifest_is_the_manifests_damage(
    tmp_path: Path, rf: ModuleType
) -> None:
    folder = rf.write_folder(tmp_path / "run", _rows(rf))
    path = folder / MANIFEST_JSON
    manifest = json.loads(path.read_text())
    digest = manifest["files"]["capabilities.csv"]["sha256"]
    flipped = ("1" if digest[0] != "1" else "2") + digest[1:]
    path.write_text(path.read_text().replace(digest, flipped))  # still valid JSON
    with pytest.raises(ResultsError) as err:
        load_results(folder)
    assert str(err.value).startswith(f"{path}: damaged"), err.value
    assert "capabilities.csv" not in str(err.value)


def test_compare_says_what_it_rebuilt_and_that_a_run_is_incomplete(
    tmp_path: Path, rf: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.report import compare as compare_module

    base = rf.write_folder(tmp_path / "base", _rows(rf), run={"complete": False})
    new = rf.write_folder(tmp_path / "new", _rows(rf))
    # new's manifest is damaged; the "rebuild" writes the folder again, as raw/ would
    (new / MANIFEST_JSON).write_text("{not json")
    (new / "raw").mkdir()
    (new / "raw" / "timing-000.jsonl").write_text("{}\n")
    monkeypatch.setattr(
        compare_module, "rebuild_from_raw", lambda folder: rf.write_folder(folder, _rows(rf))
    )
    cmp = compare_module.compare_runs(base, new)
    assert any(n.startswith("new: manifest.json is damaged") and "rebuilt" in n for n in cmp.notes)
    assert any(n.startswith("base: the run is incomplete") for n in cmp.notes)
    text = compare_module.format_comparison(cmp)
    assert "the run is incomplete" in text and "rebuilt it from raw/" in text
