"""scripts/truth.py's pure parts: its own statistics, reading the harness's rows (the
``step`` row, or the old harness's summed step as a marked fallback), the harness
command it builds and its options. No worker or truth process is started."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import truth  # scripts/ is on sys.path (conftest.py)

ROOT = Path(__file__).resolve().parent.parent.parent


def test_importing_the_script_loads_no_torch_and_none_of_the_harness_machinery() -> None:
    for banned in ("harness.measure", "harness.stats", "harness.worker"):
        assert f"import {banned}" not in (ROOT / "scripts" / "truth.py").read_text()
        assert f"from {banned}" not in (ROOT / "scripts" / "truth.py").read_text()


# -- statistics -------------------------------------------------------------------------


def test_the_speedup_is_the_interquartile_mean_of_every_rounds_log_ratio() -> None:
    # each process weighs as one: 1 and 2 a sixth each, 3 a third, 10 and 20 a sixth;
    # the middle half keeps a twelfth of 2, all of 3 and a twelfth of 10
    got = truth.interquartile_mean([[1.0, 2.0], [3.0], [10.0, 20.0]])
    assert got == pytest.approx((2 * 3**4 * 10) ** (1 / 6))
    assert math.isnan(truth.interquartile_mean([[], []]))
    assert truth.interquartile_mean([[2.0, 2.0], [2.0]]) == pytest.approx(2.0)


def test_the_speedup_moves_smoothly_when_a_bimodal_sides_mix_shifts_by_one_round() -> None:
    """torch's 1-thread conv2d step at n=512 took 21-23 or 35-39 ms a call, round to
    round (2026-12-03): a median jumps between the modes as one round changes sides."""
    fast, slow = 0.75, 0.45
    even = [[fast] * 5 + [slow] * 5]
    shifted = [[fast] * 4 + [slow] * 6]
    assert float(np.median(even[0])) / float(np.median(shifted[0])) == pytest.approx(1.333, 1e-3)
    moved = truth.interquartile_mean(even) / truth.interquartile_mean(shifted)
    assert 1.0 < moved < 1.12


def test_bootstrap_interval_holds_the_median_and_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    groups = [list(2.0 * np.exp(rng.normal(0, 0.05, 40))) for _ in range(3)]
    lo, hi = truth.bootstrap_interval(groups, seed=3)
    med = truth.interquartile_mean(groups)
    assert lo < med < hi
    assert lo > 1.9 and hi < 2.1
    assert truth.bootstrap_interval(groups, seed=3) == (lo, hi)


def test_bootstrap_interval_widens_when_processes_disagree() -> None:
    rng = np.random.default_rng(2)
    same = [list(1.0 + rng.normal(0, 0.01, 30)) for _ in range(4)]
    apart = [list(m + rng.normal(0, 0.01, 30)) for m in (0.8, 1.0, 1.2, 1.4)]
    lo_s, hi_s = truth.bootstrap_interval(same)
    lo_a, hi_a = truth.bootstrap_interval(apart)
    assert hi_a - lo_a > 5 * (hi_s - lo_s)


def test_bootstrap_interval_of_one_process_resamples_its_rounds() -> None:
    lo, hi = truth.bootstrap_interval([[1.0, 1.0, 1.0, 5.0, 5.0]])
    # all five resampled rounds at 1.0: 7.8% of resamples; at 5.0: 1%
    assert lo == pytest.approx(1.0) and 1.0 < hi < 5.0
    assert all(math.isnan(v) for v in truth.bootstrap_interval([]))


@pytest.mark.parametrize(
    ("harness", "truth_value", "ratio", "ok"),
    [
        (1.1, 1.0, 1.1, True),
        (0.85, 1.0, 0.85, True),
        (1.2, 1.0, 1.2, False),
        (0.5, 1.0, 0.5, False),
    ],
)
def test_agreement_is_harness_over_truth_within_15_percent(
    harness: float, truth_value: float, ratio: float, ok: bool
) -> None:
    got_ratio, got_ok = truth.agreement(harness, truth_value)
    assert got_ratio == pytest.approx(ratio)
    assert got_ok is ok


def test_agreement_without_a_figure_fails() -> None:
    ratio, ok = truth.agreement(math.nan, 1.0)
    assert math.isnan(ratio) and ok is False


# -- reading results.csv --------------------------------------------------------------------

PICK = truth.Pick("conv2d-512", "conv2d", {"n": 512, "k": 3}, "scipy", "torch")


def _row(**kw: object) -> dict[str, str]:
    base = {
        "layer": "conv2d",
        "impl": "torch",
        "dtype": "float32",
        "threads": "1",
        "device": "cpu",
        "n": "512",
        "k": "3",
        "status": "ok",
        "error": "",
        "speedup": "",
        "speedup_low": "",
        "speedup_high": "",
        "step_speedup": "",
        "step_speedup_low": "",
        "step_speedup_high": "",
    }
    base.update({k: str(v) for k, v in kw.items()})
    return base


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_step_row_is_read_for_training_and_forward_row_for_inference(tmp_path: Path) -> None:
    rows = truth.read_rows(
        _write(
            tmp_path / "results.csv",
            [
                _row(impl="scipy", phase="step"),
                _row(
                    phase="forward",
                    speedup=2.0,
                    speedup_low=1.8,
                    speedup_high=2.2,
                    step_speedup=0.7,
                ),
                _row(phase="backward", speedup=0.3, speedup_low=0.2, speedup_high=0.4),
                _row(phase="step", speedup=0.4, speedup_low=0.35, speedup_high=0.45),
                # the same candidate at another size and thread count: not ours
                _row(phase="step", n=128, speedup=5.0),
                _row(phase="step", threads=2, speedup=0.6),
            ],
        )
    )
    step = truth.harness_figure(rows, PICK, 1, "step")
    assert (step.speedup, step.low, step.high, step.note) == (0.4, 0.35, 0.45, "")
    fwd = truth.harness_figure(rows, PICK, 1, "forward")
    assert (fwd.speedup, fwd.low, fwd.high) == (2.0, 1.8, 2.2)
    assert truth.harness_figure(rows, PICK, 2, "step").speedup == 0.6


def test_without_step_rows_the_old_summed_step_is_used_and_marked() -> None:
    rows = [
        _row(
            phase="forward",
            speedup=2.0,
            step_speedup=0.7,
            step_speedup_low=0.6,
            step_speedup_high=0.8,
        ),
        _row(phase="backward", speedup=0.3, step_speedup=0.7),
    ]
    step = truth.harness_figure(rows, PICK, 1, "step")
    assert (step.speedup, step.low, step.high) == (0.7, 0.6, 0.8)
    assert step.note == truth.OLD_STEP_MARK


def test_a_failed_step_row_falls_back_and_says_why() -> None:
    rows = [
        _row(phase="forward", speedup=2.0, step_speedup=0.7),
        _row(phase="step", status="error", error="not set up"),
    ]
    step = truth.harness_figure(rows, PICK, 1, "step")
    assert step.speedup == 0.7
    assert step.note.startswith(truth.OLD_STEP_MARK) and "not set up" in step.note


def test_no_matching_row_gives_no_figure() -> None:
    rows = [_row(phase="forward", impl="scipy"), _row(phase="step", k=7, speedup=0.4)]
    assert truth.harness_figure(rows, PICK, 1, "step") is None
    assert truth.harness_figure(rows, PICK, 1, "forward") is None


# -- options and the harness command ----------------------------------------------------------


def test_threads_default_is_the_fresh_process_count_and_duplicates_drop() -> None:
    assert truth.parse_threads("1,default", 2) == [("1", 1), ("default", 2)]
    assert truth.parse_threads("1,default", 1) == [("1", 1)]
    with pytest.raises(ValueError):
        truth.parse_threads("0", 2)
    with pytest.raises(ValueError):
        truth.parse_threads("many", 2)


def test_picks_are_chosen_by_name_in_table_order() -> None:
    assert [p.name for p in truth.select_picks("fft-64,conv2d-128")] == ["conv2d-128", "fft-64"]
    assert len(truth.select_picks(None)) == len(truth.PICKS) >= 6
    with pytest.raises(ValueError, match="nope"):
        truth.select_picks("nope")


def test_one_harness_run_covers_a_layers_picks_with_explicit_threads(tmp_path: Path) -> None:
    picks = truth.select_picks("conv2d-16,conv2d-128,conv2d-512,conv2d-1024")
    groups = truth.harness_groups(truth.select_picks(None))
    assert [p.name for p in groups[("conv2d", "builtin")]] == [p.name for p in picks]
    cmd = truth.harness_command(picks, 2, tmp_path / "h", "quick", 20.0, python="py")
    text = " ".join(cmd)
    assert cmd[:4] == ["py", "-m", "harness", "run"]
    assert "--grid n=16,128,512,1024" in text and "--grid k=3" in text
    assert "--impls scipy,torch" in text and "--threads 2" in text
    assert "--profile quick --budget 20" in text and "--layers-from" not in text
    own = truth.harness_command(
        truth.select_picks("tanh-compile-100000"), 1, tmp_path / "t", "default", None, Path("l.py")
    )
    assert own[own.index("--layers-from") + 1] == "l.py"
    assert "--impls numpy,compile" in " ".join(own) and "--budget" not in own


def test_a_pick_names_the_layer_file_it_comes_from(tmp_path: Path) -> None:
    import argparse

    session = truth._Session(argparse.Namespace(), tmp_path / "my_layers.py", tmp_path)
    assert session.layers_from("builtin") is None
    assert session.layers_from("readme") == str(tmp_path / "my_layers.py")
    (linear,) = truth.select_picks("linear-256")
    path = session.layers_from(linear.source)
    assert path == str(truth.ROOT / "examples" / "linear_numpy.py") and Path(path).is_file()
    cmd = truth.harness_command([linear], 2, tmp_path / "h", "quick", 20.0, path, python="py")
    assert cmd[cmd.index("--layers-from") + 1] == path
    assert "--grid batch=256" in " ".join(cmd) and "--layers numpy_linear" in " ".join(cmd)


def test_the_readme_example_is_written_as_a_layer_file(tmp_path: Path) -> None:
    path = truth.readme_layer_file(tmp_path)
    text = path.read_text()
    assert "class NumpyTanh" in text and "LAYERS" in text
    compile(text, str(path), "exec")


def test_intervals_overlap_or_not() -> None:
    assert truth.intervals_overlap((1.0, 2.0), (1.5, 3.0)) is True
    assert truth.intervals_overlap((1.0, 2.0), (2.5, 3.0)) is False
    assert truth.intervals_overlap((math.nan, 2.0), (1.5, 3.0)) is None


# -- page-fault regimes ---------------------------------------------------------------------


def test_fault_regimes_differ_when_one_process_faults_its_buffers_and_the_other_reuses_them() -> (
    None
):
    # numpy's fft forward at n=1024: 2,033 faults a call in one process, 0.5 in another
    assert truth.fault_regimes_differ(2033.0, 0.5)
    assert truth.fault_regimes_differ(0.5, 2033.0)
    # both faulting, or both reusing: the same regime, whatever the exact counts
    assert not truth.fault_regimes_differ(2033.0, 1510.0)
    assert not truth.fault_regimes_differ(3.0, 0.0)
    # a quarter or less of a faulting count is another regime; more is not
    assert truth.fault_regimes_differ(1024.0, 256.0)
    assert not truth.fault_regimes_differ(1024.0, 300.0)
    assert not truth.fault_regimes_differ(math.nan, 2033.0)


def test_harness_faults_are_read_from_the_sides_row_for_the_phase() -> None:
    rows = [
        _row(impl="scipy", phase="step", minor_faults="3"),
        _row(impl="torch", phase="step", minor_faults="8001"),
        _row(impl="torch", phase="forward", minor_faults="2"),
    ]
    assert truth.harness_faults(rows, PICK, 1, "step", "torch") == 8001.0
    assert truth.harness_faults(rows, PICK, 1, "forward", "torch") == 2.0
    assert truth.harness_faults(rows, PICK, 1, "step", "scipy") == 3.0
    assert math.isnan(truth.harness_faults(rows, PICK, 2, "step", "torch"))  # other threads


# -- the truth's own drift --------------------------------------------------------------------


def test_the_truth_before_and_after_the_harness_run_is_each_sides_pooled_speedup() -> None:
    before = [[2.0, 2.2, 2.1], [2.3]]
    after = [[3.0, 3.2], [3.1]]
    # before: a twelfth of 2.1, a sixth of 2.2, a quarter of 2.3 (each process as one)
    expected = ((2.1 * 2.2**2 * 2.3**3) ** (1 / 6), 3.1)
    assert truth.truth_drift(before, after) == pytest.approx(expected)
    assert truth.truth_drift([], after) is None
    assert truth.truth_drift(before, [[]]) is None


def test_the_truth_moved_when_its_two_sides_differ_by_more_than_the_tolerance() -> None:
    # SciPy's correlate2d at n=128 took 0.46 ms in one minute and 0.85 ms in another
    # (2026-11-30, AVX512) while torch's conv2d barely moved: the ratio moves with it
    assert truth.drift_apart(8.8, 12.0)
    assert truth.drift_apart(12.0, 8.8)
    assert not truth.drift_apart(8.8, 9.9)
    assert not truth.drift_apart(1.0, 1.15)  # exactly the tolerance is not beyond it


# -- per-process spreads ----------------------------------------------------------------


def _rounds_event(point: list[list[object]], threads: int, values: dict[str, list[float]]) -> str:
    return json.dumps(
        {
            "event": "rounds",
            "group": {"layer": "fft", "point": point, "dtype": "float32", "threads": threads},
            "process": 0,
            "values": values,
        }
    )


def test_the_harness_speedup_of_each_timing_process_is_read_from_its_raw_rounds(
    tmp_path: Path,
) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    case = "fft/{impl}/n=64/float32/t2/cpu/glibc/{phase}"
    mine = {
        case.format(impl="numpy", phase="forward"): [2.0, 4.0, 3.0],
        case.format(impl="torch", phase="forward"): [1.0, 1.0, 2.0],
        case.format(impl="numpy", phase="step"): [9.0, 9.0, 9.0],
        case.format(impl="torch", phase="step"): [3.0, 3.0, 3.0],
    }
    other_point = {k.replace("n=64", "n=1024"): v for k, v in mine.items()}
    (raw / "timing-000.jsonl").write_text(
        "\n".join(
            [
                json.dumps({"event": "start", "task": {}}),
                _rounds_event([["n", 64]], 2, mine),
                _rounds_event([["n", 1024]], 2, {k: [1.0] for k in other_point}),
                _rounds_event([["n", 64]], 1, {k: [7.0] for k in mine}),  # another setting
                '{"event": "rounds", "group": {"lay',  # cut by a killed worker
            ]
        )
    )
    (raw / "timing-001.jsonl").write_text(
        _rounds_event([["n", 64]], 2, {k: [v[0]] for k, v in mine.items()})
    )
    pick = truth.Pick("fft-64", "fft", {"n": 64}, "numpy", "torch")
    # round by round: 2/1, 4/1, 3/2 -> the middle half: a quarter of 3/2 and of 4, all of
    # 2 (interquartile_mean); the second process: 2/1
    rounds = truth.harness_rounds(tmp_path, pick, 2)
    assert truth.harness_process_ratios(rounds, pick, "forward") == pytest.approx(
        [(1.5 * 2**4 * 4) ** (1 / 6), 2.0]
    )
    assert truth.harness_process_ratios(rounds, pick, "step") == pytest.approx([3.0, 3.0])
    assert truth.harness_process_ratios(truth.harness_rounds(tmp_path, pick, 4), pick, "step") == []
    # each process's median milliseconds per call of one side
    assert truth.harness_process_ms(rounds, "forward", "numpy") == [3000.0, 2000.0]
    assert truth.harness_process_ms(rounds, "step", "torch") == [3000.0, 3000.0]
    assert truth.harness_process_ms(rounds, "backward", "torch") == []


def test_spreads_are_apart_only_when_every_harness_process_is_beyond_the_truths_range() -> None:
    # fft n=64 forward on 2 threads, 2026-11-30: the harness's processes at 1.83-2.90,
    # the truth's at 1.52-1.60
    assert truth.spreads_apart([2.90, 1.83, 2.20], [1.57, 1.52, 1.60])
    assert truth.spreads_apart([0.5, 0.6], [0.7, 0.9])
    assert not truth.spreads_apart([1.55, 2.9], [1.52, 1.60])  # one process inside
    assert not truth.spreads_apart([0.5, 1.2], [0.7, 0.9])  # on both sides of it
    assert not truth.spreads_apart([], [1.0])
    assert truth.process_ratios([[1.0, 3.0, 2.0], [], [5.0]]) == pytest.approx([48 ** (1 / 6), 5.0])
    assert truth.spread_cell([2.9, 1.83], [1.5]) == "1.83–2.90 | 1.50–1.50"
    assert truth.spread_cell([], [1.5]) == "n/a | 1.50–1.50"


# -- the harness's budget ---------------------------------------------------------------


def test_a_narrow_runs_groups_are_the_product_of_its_axes_values() -> None:
    conv = [p for p in truth.PICKS if p.layer == "conv2d"]
    assert truth.grid_groups(conv) == 4  # n = 16, 128, 512, 1024 at k = 3
    mixed = [
        truth.Pick("a", "conv2d", {"n": 8, "k": 3}, "scipy", "torch"),
        truth.Pick("b", "conv2d", {"n": 16, "k": 7}, "scipy", "torch"),
    ]
    assert truth.grid_groups(mixed) == 4  # n x k, as the command's --grid asks


def test_the_harness_gets_the_budget_per_group_of_a_default_run() -> None:
    from harness.config import PROFILES, RunConfig
    from harness.plan import make_plan
    from harness.registry import Registry

    groups = len(make_plan(Registry.default([]), RunConfig()).groups)
    assert groups > 1
    for name in ("default", "quick"):
        per_group = truth.default_budget_per_group(name)
        assert per_group == pytest.approx(PROFILES[name].budget_s / groups)


def test_a_bad_budget_or_profile_is_one_line_and_exit_code_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert truth.main(["--budget", "0"]) == 2
    assert capsys.readouterr().err == "error: --budget must be positive\n"
    assert truth.main(["--profile", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --profile: no profile 'nope'") and err.count("\n") == 1


# -- the table and its summary ---------------------------------------------------------------


def _process(ratios: dict[str, list[float]], ms: float) -> dict[str, object]:
    """A truth process's result as its child prints it, with every side at ``ms``."""
    return {
        "phases": {
            ph: {
                "ratios": r,
                "times": {"baseline": [ms / 1e3], "candidate": [ms / 2e3]},
                "faults": {"baseline": [0.0], "candidate": [0.0]},
            }
            for ph, r in ratios.items()
        }
    }


def test_a_picks_truth_processes_are_pooled_per_phase_and_kept_apart_by_when() -> None:
    before = [_process({"step": [2.0, 2.1], "forward": [5.0]}, ms=1.0)]
    after = [_process({"step": [3.0], "forward": [6.0]}, ms=3.0)]
    pooled = truth._Pooled.of(before, after)
    assert pooled.groups["step"] == [[2.0, 2.1], [3.0]]
    assert pooled.process_ms["step"]["baseline"] == pytest.approx([1.0, 3.0])
    assert pooled.halves["forward"] == {"before": [[5.0]], "after": [[6.0]]}
    assert pooled.median_ms("step", "baseline") == pytest.approx(2.0)
    assert pooled.median_ms("forward", "candidate") == pytest.approx(1.0)
    assert math.isnan(truth._Pooled.of([], []).median_ms("step", "baseline"))


def test_a_table_row_compares_the_harness_figure_with_the_pooled_truth(tmp_path: Path) -> None:
    rows = [_row(phase="step", speedup=0.5, speedup_low=0.45, speedup_high=0.55)]
    pooled = truth._Pooled.of(
        [_process({"step": [0.40, 0.42, 0.41], "forward": [1.0]}, ms=1.0)],
        [_process({"step": [0.40, 0.41], "forward": [1.0]}, ms=1.0)],
    )
    rounds = truth.harness_rounds(tmp_path, PICK, 1)  # no raw events here
    row, found = truth._table_row(PICK, "1", 1, "step", pooled, rows, rounds, seed=1)
    assert found and row["harness"] == "×0.50 (0.45–0.55)"
    assert row["harness/truth"] == "1.23" and row["_ok"] == "False"
    assert row["within 15%?"] == "[fail]" and row["intervals overlap?"] == "NO"
    assert row["ms/call harness/truth: base, cand"] == "n/a, n/a"  # no raw events here
    # no harness row for the inference forward: no figure, a miss
    row, found = truth._table_row(PICK, "1", 1, "forward", pooled, rows, rounds, seed=1)
    assert not found and row["harness"] == "n/a" and row["_ok"] == "False"


def test_a_target_passes_only_with_every_pick_within_and_its_apart_misses_are_named() -> None:
    def row(phase: str, ok: bool, **extra: str) -> dict[str, str]:
        return {
            "pick": "fft-64",
            "threads": "2",
            "_phase": phase,
            "_ok": str(ok),
            "per-process ×: harness | truth": "×1.2–1.3 | ×2.0–2.1",
            **extra,
        }

    lines = truth.summary_lines(
        [
            row("step", True),
            row("step", True),
            row("forward", True),
            row("forward", False, _apart="True", _drift="True", _off="baseline"),
        ]
    )
    assert lines[0].startswith("[pass] training step") and "(2/2)" in lines[0]
    assert lines[1].startswith("[fail] inference forward") and "(1/2)" in lines[1]
    assert "of its 1 misses, 0 ran a side in another page-fault regime" in lines[2]
    assert "at 1 the truth itself moved" in lines[2] and "and at 0 some harness" in lines[2]
    assert lines[3] == "       - fft-64 t2 forward: per-process ×1.2–1.3 | ×2.0–2.1"
    assert "the baseline alone at 1, the candidate alone at 0, both at 0, neither at 0" in lines[4]
    assert "; 0 of them were within 15% at 1 thread" in lines[2]
    assert len(lines) == 5


def test_a_miss_at_more_threads_of_a_pick_within_at_one_thread_is_counted() -> None:
    """conv2d-128 passed at 1 thread and missed at 2 (2026-11-30, AVX512: the VM's
    2-thread windows); fft-64 missed at 2 and was not measured at 1."""

    def row(pick: str, threads: str, ok: bool) -> dict[str, str]:
        return {"pick": pick, "threads": threads, "_phase": "step", "_ok": str(ok)}

    lines = truth.summary_lines(
        [
            row("conv2d-128", "1", True),
            row("conv2d-128", "2 (default)", False),
            row("fft-64", "2 (default)", False),
        ]
    )
    assert lines[0].startswith("[fail] training step") and "(1/3)" in lines[0]
    assert "of its 2 misses" in lines[1]
    assert "; 1 of them were within 15% at 1 thread" in lines[1]


def test_the_side_whose_time_per_call_moved_is_named() -> None:
    # SciPy's forward at n=512 ran 14.6-16.2 ms a call in every harness process and
    # 7.4-15.7 ms in the truth's (2026-11-30 09:00, AVX512): the baseline made the miss
    assert truth.time_off([14.66, 16.16, 14.78], [7.45, 15.7, 11.7, 7.45]) == pytest.approx(
        14.78 / 9.575
    )
    assert math.isnan(truth.time_off([], [1.0]))
    assert truth.off_cell(1.54, 1.02) == ("1.54, 1.02 (baseline)", ["baseline"])
    assert truth.off_cell(0.8, 1.2) == (
        "0.80, 1.20 (baseline and candidate)",
        ["baseline", "candidate"],
    )
    assert truth.off_cell(1.1, math.nan) == ("1.10, n/a", [])


def test_a_block_begins_once_the_other_threads_rest() -> None:
    import threading
    import time

    stop = threading.Event()

    def spin() -> None:  # a pool spinning for work, 50 ms, the GIL released as a pool has
        import hashlib

        data = b"x" * 1_000_000
        end = time.perf_counter() + 0.05
        while time.perf_counter() < end and not stop.is_set():
            hashlib.sha256(data)

    truth._rest()  # pools an earlier test left spinning (torch's, OpenBLAS's) rest first
    thread = threading.Thread(target=spin)
    thread.start()
    time.sleep(0.005)
    assert truth._rest(free=1) is False  # a side on one thread leaves it the other core
    t0 = time.perf_counter()
    assert truth._rest() is True
    waited = time.perf_counter() - t0
    stop.set()
    thread.join()
    assert 0.02 < waited < 0.3  # until the spinner ended, not the longest wait
    t0 = time.perf_counter()
    assert truth._rest() is False
    assert time.perf_counter() - t0 < 0.02  # nothing running: no wait
