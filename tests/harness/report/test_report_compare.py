"""compare: ratios with significance on crafted folders, exit codes, bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from harness.cli import main
from harness.errors import ResultsError
from harness.report import compare_runs, format_comparison
from harness.results import SCHEMA_VERSION, load_results

IMPLS = {"numpy": lambda n: 1e-3, "torch": lambda n: 0.5e-3}


def _make(rf: ModuleType, path: Path, sizes, slower: float = 1.0, cpu: str = "cpu A") -> Path:
    rows = rf.series("fft", IMPLS, sizes)
    for r in rows:
        if r["impl"] == "torch" and r["phase"] == "forward" and r["n"] == 64:
            rows[rows.index(r)] = rf.row("fft", "torch", 64, "forward", 0.5e-3 * slower)
    return rf.write_folder(path, rows, raw=rf.raw_for(rows), environment={"cpu": cpu})


@pytest.fixture
def runs(rf: ModuleType, tmp_path: Path) -> tuple[Path, Path]:
    base = _make(rf, tmp_path / "base", (8, 64, 256))
    new = _make(rf, tmp_path / "new", (64, 256, 1024), slower=1.3, cpu="cpu B")
    return base, new


def test_compare_finds_the_known_slowdown(runs: tuple[Path, Path]) -> None:
    cmp = compare_runs(*runs)
    (slow,) = cmp.slowdowns
    assert slow.case == "fft/torch/n=64/float32/t1/cpu/glibc/forward"
    assert slow.ratio == pytest.approx(1.3)
    assert slow.test is not None and slow.test.method.startswith("Mann-Whitney U, BH-adjusted")
    assert cmp.worst_significant_slowdown_pct == pytest.approx(30.0)
    assert not cmp.speedups and not cmp.newly_failing
    # common points only; the rest said
    assert len(cmp.points) == 8
    assert len(cmp.only_in_base) == 4 and len(cmp.only_in_new) == 4
    torch = next(g for g in cmp.geomeans if g.impl == "torch")
    assert torch.by_phase["forward"] == pytest.approx(1.3**0.5)
    assert torch.by_phase["backward"] == pytest.approx(1.0)


def test_compare_markdown_lists_slowdowns_first_and_flags(runs: tuple[Path, Path]) -> None:
    text = format_comparison(compare_runs(*runs))
    assert "cpu: cpu A → cpu B" in text
    assert (
        "The grids differ: compared on the 8 common points; 4 only in base, 4 only in new" in text
    )
    first_table = text.index("## Slower beyond 5%")
    assert first_table < text.index("## Geometric mean") < text.index("## Left out")
    assert text.index("fft/torch/n=64/float32/t1/cpu/glibc/forward") > first_table
    assert "1.300 (+30.0%)" in text
    assert "`fft/numpy/n=8/float32/t1/cpu/glibc/forward`" in text.split("Only in base")[1]


def test_a_threshold_above_the_change_hides_it(runs: tuple[Path, Path]) -> None:
    cmp = compare_runs(*runs, threshold_pct=40)
    assert not cmp.slowdowns
    assert cmp.worst_significant_slowdown_pct == pytest.approx(30.0)


def test_a_written_folder_loads_with_its_manifest(rf: ModuleType, tmp_path: Path) -> None:
    rows = rf.series("fft", IMPLS, (8, 64))
    folder = rf.write_folder(tmp_path / "run", rows, raw=rf.raw_for(rows))
    assert (folder / "manifest.json").is_file()
    res = load_results(folder)
    assert res.notes == ()
    assert res.run["schema"] == res.environment["schema"] == SCHEMA_VERSION
    assert len(res.frame) == len(rows)
    assert set(res.raw_values()) == {r["case"] for r in rows}
    torch = res.frame[(res.frame["impl"] == "torch") & (res.frame["phase"] == "forward")]
    assert list(torch["speedup"]) == pytest.approx([2.0, 2.0])
    assert list(torch["decision"]) == ["faster", "faster"]


def test_no_change_is_not_significant(rf: ModuleType, tmp_path: Path) -> None:
    base = _make(rf, tmp_path / "a", (8, 64))
    new = _make(rf, tmp_path / "b", (8, 64))
    cmp = compare_runs(base, new)
    assert cmp.worst_significant_slowdown_pct == 0.0
    assert all(p.change == "same" for p in cmp.points)
    assert not cmp.differences


def test_exit_codes(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = map(str, runs)
    assert main(["compare", base, new]) == 0
    assert "## Slower beyond 5%" in capsys.readouterr().out
    assert main(["compare", base, new, "--fail-above", "10"]) == 1
    assert "30.0% exceeds --fail-above 10%" in capsys.readouterr().err
    assert main(["compare", base, new, "--fail-above", "50"]) == 0
    capsys.readouterr()
    out = tmp_path / "cmp.md"
    assert main(["compare", base, new, "--out", str(out), "--threshold", "2"]) == 0
    assert capsys.readouterr().out == ""
    assert "## Slower beyond 2%" in out.read_text(encoding="utf-8")


def test_a_point_failing_in_new_fails_ci(rf: ModuleType, tmp_path: Path) -> None:
    base = _make(rf, tmp_path / "a", (8,))
    rows = rf.series("fft", {"numpy": lambda n: 1e-3}, (8,))
    rows += [
        rf.row("fft", "torch", 8, "forward", status="error", error="RuntimeError: boom"),
        rf.row("fft", "torch", 8, "backward", 0.5e-3),
    ]
    new = rf.write_folder(tmp_path / "b", rows, raw=rf.raw_for(rows))
    cmp = compare_runs(base, new)
    assert [p.case for p in cmp.newly_failing] == ["fft/torch/n=8/float32/t1/cpu/glibc/forward"]
    assert "RuntimeError: boom" in format_comparison(cmp)
    assert main(["compare", str(base), str(new), "--fail-above", "10"]) == 1


def _missing(rf: ModuleType, tmp_path: Path) -> Path:
    return tmp_path / "missing"


def _empty(rf: ModuleType, tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def _corrupt(rf: ModuleType, tmp_path: Path) -> Path:
    folder = tmp_path / "corrupt"
    folder.mkdir()
    (folder / "results.csv").write_text("this,is\nnot,a results table\n")
    return folder


def _tampered(rf: ModuleType, tmp_path: Path) -> Path:
    """A folder written whole (with its manifest), then one median altered in place:
    still a well-formed CSV, caught by the manifest's checksum."""
    rows = rf.series("fft", IMPLS, (8,))
    folder = rf.write_folder(tmp_path / "tampered", rows)
    csv = folder / "results.csv"
    text = csv.read_text(encoding="utf-8")
    csv.write_text(text.replace("0.001,", "0.002,", 1), encoding="utf-8")
    assert csv.read_text(encoding="utf-8") != text
    return folder


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_missing, "no such folder"),
        (_empty, "not a results folder"),
        (_corrupt, "results.csv: damaged: wrong columns"),
        (_tampered, "results.csv: damaged: sha256 differs from manifest.json"),
    ],
    ids=["missing", "not-results", "corrupt-csv", "tampered-csv"],
)
def test_bad_input_is_one_line_and_exit_2(
    rf: ModuleType,
    runs: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[ModuleType, Path], Path],
    message: str,
) -> None:
    bad = make(rf, tmp_path)
    with pytest.raises(ResultsError):
        compare_runs(runs[0], bad)
    for args in (["compare", str(runs[0]), str(bad)], ["report", str(bad)]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err
        assert err.count("\n") == 1


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "only-one"]) == 2
    assert main(["compare", "a", "b", "--fail-above", "-3"]) == 2
    assert main(["report"]) == 2
    err = capsys.readouterr().err
    assert err.count("error: ") == 3 and err.count("\n") == 3


def test_benjamini_hochberg_keeps_false_alarms_down() -> None:
    from harness.report._stats import Significance
    from harness.report.compare import _adjust

    ps = {"a": 0.001, "b": 0.01, "c": 0.035, "d": 0.045, "e": 0.5}
    tests = {k: Significance(1.5, p < 0.05, p, "Mann-Whitney U", p < 0.05) for k, p in ps.items()}
    adjusted = _adjust(tests, alpha=0.05, min_effect=0.05)
    # q_i = min over j >= i of p_j * m / j: c and d were "significant" only uncorrected
    assert [adjusted[k].p_value for k in "abcde"] == pytest.approx(
        [0.005, 0.025, 0.05625, 0.05625, 0.5]
    )
    assert [adjusted[k].significant for k in "abcde"] == [True, True, False, False, False]
    assert [adjusted[k].decisive for k in "abcde"] == [True, True, False, False, False]


def test_no_correction_flag(runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(runs[0]), str(runs[1]), "--no-correction"]) == 0
    out = capsys.readouterr().out
    assert "Benjamini-Hochberg" not in out and "1.300 (+30.0%)" in out
    assert main(["compare", str(runs[0]), str(runs[1])]) == 0
    assert (
        "adjusted for the number of points compared (Benjamini-Hochberg)" in capsys.readouterr().out
    )


def test_a_changed_cpu_capability_means_different_machines(rf: ModuleType, tmp_path: Path) -> None:
    rows = rf.series("fft", IMPLS, (8, 64))
    env = {"cpu": "Test CPU", "cpu_capability": "AVX512", "cpu_flags": ["avx2", "avx512f"]}
    base = rf.write_folder(tmp_path / "a", rows, raw=rf.raw_for(rows), environment=env)
    new = rf.write_folder(
        tmp_path / "b",
        rows,
        raw=rf.raw_for(rows),
        environment={**env, "cpu_capability": "AVX2"},
    )
    cmp = compare_runs(base, new)
    assert cmp.different_machine
    assert cmp.machine_changes == ("CPU capability AVX512 → AVX2",)
    assert cmp.differences == ("cpu_capability: AVX512 → AVX2",)
    text = format_comparison(cmp)
    assert (
        "**Different machines**: CPU capability AVX512 → AVX2: timings are not comparable" in text
    )
    assert text.index("**Different machines**") < text.index("## Slower beyond")
    # the same machine is not flagged
    same = compare_runs(base, base)
    assert not same.different_machine and "Different machines" not in format_comparison(same)


def test_cpu_flags_are_listed_as_added_and_removed(rf: ModuleType, tmp_path: Path) -> None:
    rows = rf.series("fft", IMPLS, (8,))
    base = rf.write_folder(
        tmp_path / "a", rows, environment={"cpu": "c", "cpu_flags": "sse4_2 avx2 fma"}
    )
    new = rf.write_folder(
        tmp_path / "b", rows, environment={"cpu": "c", "cpu_flags": "sse4_2 avx2 avx512f"}
    )
    cmp = compare_runs(base, new)
    assert cmp.differences == ("cpu_flags: +avx512f −fma",)
    assert not cmp.different_machine


def test_blas_and_numpy_fft_are_not_machine_keys(rf: ModuleType, tmp_path: Path) -> None:
    rows = rf.series("fft", IMPLS, (8,))
    base = rf.write_folder(tmp_path / "a", rows, environment={"cpu": "c", "numpy_fft": "x"})
    new = rf.write_folder(tmp_path / "b", rows, environment={"cpu": "c", "numpy_fft": "y"})
    assert compare_runs(base, new).differences == ()
