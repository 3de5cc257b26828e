"""report.md: a golden file for a fixed frame, plots, and the write_report edge.

Update the golden file deliberately when the format changes::

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/harness/report
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import ModuleType

import pytest

from harness.errors import ResultsError
from harness.report import render_report, write_report
from harness.report.plots import plot_deviations, plot_speedups, plot_times

GOLDEN = Path(__file__).parent / "expected" / "report.md"
PNG = b"\x89PNG\r\n\x1a\n"
PLOTS = {
    layer: {kind: f"plots/{layer}-{kind}.png" for kind in ("time", "speedup", "deviation")}
    for layer in ("fft", "conv2d")
}


def _seed_results(rf: ModuleType):
    rows = rf.seed_like_rows()
    res = rf.results(
        rows,
        caps=rf.seed_like_caps(),
        devs=rf.seed_like_devs(rows),
        environment=rf.ENVIRONMENT,
        run=rf.RUN,
    )
    return res, rf.raw_for(rows)


def test_report_matches_the_golden_file(rf: ModuleType) -> None:
    res, raw = _seed_results(rf)
    text = render_report(res, PLOTS, raw)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_report_opens_with_verdicts_and_shows_failures(rf: ModuleType) -> None:
    res, raw = _seed_results(rf)
    text = render_report(res, PLOTS, raw)
    summary = text.index("## Summary")
    assert summary < text.index("## fft") < text.index("## conv2d") < text.index("## Environment")
    assert "| fft | all | **fix the gradient first** |" in text
    assert "| conv2d | k=3 | **port above n ≈ 160** |" in text
    # each layer section begins with its verdict
    assert text.split("## fft\n\n", 1)[1].startswith("**Verdict: fix the gradient first.**")
    # failures with their message, never blank
    assert re.search(r"\| numpy \(baseline\) \| [^|]+ \| error\[\^\d+\] \|", text)
    assert "n/a (unsupported)[^" in text
    assert "ValueError: operands could not be broadcast together" in text
    assert "(plots/fft-time.png)" in text
    assert "MALLOC_ARENA_MAX=2" in text and "quick (" in text
    assert "conv2d/torch/n=8,k=3/float32/t1/cpu/forward" in text  # noise warning


def test_report_without_raw_values_or_extras(rf: ModuleType) -> None:
    rows = rf.series("lay", {"numpy": lambda n: 1e-3, "torch": lambda n: 0.5e-3}, (8, 64))
    text = render_report(rf.results(rows), {}, {})
    assert "**Verdict: port.**" in text
    assert "min-max ranges" in text
    assert "No environment was recorded." in text
    assert "![" not in text


def test_plots_are_valid_pngs(rf: ModuleType, tmp_path: Path) -> None:
    rows = rf.seed_like_rows()
    frame = rf.frame(rows)
    conv = frame[frame["layer"] == "conv2d"]
    for fn in (plot_times, plot_speedups, plot_deviations):
        path = fn(conv, tmp_path / "sub" / f"{fn.__name__}.png")
        assert path.read_bytes().startswith(PNG)


def test_write_report_writes_report_and_linked_plots(rf: ModuleType, tmp_path: Path) -> None:
    rows = rf.seed_like_rows()
    folder = rf.write_folder(
        tmp_path / "run",
        rows,
        raw=rf.raw_for(rows, count=5),
        caps=rf.seed_like_caps(),
        devs=rf.seed_like_devs(rows),
        environment=rf.ENVIRONMENT,
        run=rf.RUN,
    )
    report = write_report(folder)
    assert report == folder / "report.md"
    text = report.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == 6
    for link in links:
        assert not Path(link).is_absolute()
        assert (folder / link).read_bytes().startswith(PNG)
    assert "Mann-Whitney U" in text
    assert not list(folder.glob("**/*.tmp"))


def test_write_report_rejects_a_folder_that_is_not_a_results_folder(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="not a results folder"):
        write_report(tmp_path)
