"""The public surface of harness.report, pinned."""

from __future__ import annotations

from types import ModuleType

import harness.report
from harness.report import decide_layers, render_report


def test_all_is_pinned() -> None:
    assert sorted(harness.report.__all__) == [
        "Comparison",
        "KINDS",
        "LayerDecision",
        "compare_results",
        "compare_runs",
        "decide_layers",
        "format_comparison",
        "render_report",
        "write_plots",
        "write_report",
    ]
    for name in harness.report.__all__:
        assert hasattr(harness.report, name)
    assert harness.report.KINDS == (
        "port",
        "keep",
        "port above size N",
        "keep above size N",
        "port between sizes N1 and N2",
        "keep between sizes N1 and N2",
        "fix the gradient first",
        "fix the layer first",
        "undecided",
        "compile as is",
    )


def test_an_empty_frame_renders(rf: ModuleType) -> None:
    assert decide_layers(rf.frame([])) == []
    text = render_report(rf.results([]), {})
    assert "nothing was measured" in text
