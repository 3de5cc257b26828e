"""scripts/machine_drift.py's pure parts: cutting rounds into windows and the swing of
their ratios, and its argument errors. No timing process is started."""

from __future__ import annotations

import machine_drift  # scripts/ is on sys.path (conftest.py)
import pytest


def test_rounds_are_cut_into_windows_of_their_medians() -> None:
    rounds = [
        (0.5, 2e-3, 1e-3),
        (1.0, 2e-3, 1e-3),
        (2.0, 4e-3, 1e-3),  # closes the first window (2 s)
        (3.0, 3e-3, 2e-3),
        (4.5, 3e-3, 2e-3),  # closes the second (2.5 s after the first's end)
        (5.0, 9e-3, 1e-3),  # a last, short window is kept
    ]
    found = machine_drift.windows(rounds, 2.0)
    assert [w.rounds for w in found] == [3, 2, 1]
    assert [w.end_s for w in found] == [2.0, 4.5, 5.0]
    first = found[0]
    assert first.baseline_ms == pytest.approx(2.0) and first.candidate_ms == pytest.approx(1.0)
    assert first.ratio == pytest.approx(2.0)
    assert found[1].ratio == pytest.approx(1.5) and found[2].ratio == pytest.approx(9.0)
    assert machine_drift.windows([], 2.0) == []


def _window(ratio: float) -> machine_drift.Window:
    return machine_drift.Window(
        end_s=1.0, rounds=1, baseline_ms=ratio, candidate_ms=1.0, ratio=ratio
    )


def test_the_swing_is_the_windows_range_and_the_share_beyond_the_tolerance() -> None:
    # numpy's fft at n=64 over torch's, 2 threads, 2026-11-30: x1.6 for most of a
    # minute, x2.05 for 16 s of it
    ratios = [1.6, 1.58, 1.61, 1.59, 2.05, 2.04, 2.08, 1.57]
    s = machine_drift.swing([_window(r) for r in ratios])
    assert s["median"] == pytest.approx(1.605)
    assert s["low"] == 1.57 and s["high"] == 2.08
    assert s["range"] == pytest.approx(2.08 / 1.57 - 1)
    assert s["beyond"] == pytest.approx(3 / 8)
    steady = machine_drift.swing([_window(r) for r in (1.0, 1.1, 0.9)])
    assert steady["beyond"] == 0.0
    assert machine_drift.swing([]) == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pick", "nope"], "nope"),
        (["--threads", "0"], "--threads must be a positive count or 'default'"),
        (["--seconds", "0"], "must be positive"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_code_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert machine_drift.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
