"""scripts/group_neighbours.py's pure parts: the paired speedup and the table it
prints. No worker or child is started."""

from __future__ import annotations

import group_neighbours as script  # scripts/ is on sys.path (conftest.py)


def test_importing_the_script_starts_no_torch() -> None:
    assert script.speedup and "torch" not in script.__dict__


def test_the_speedup_is_the_median_of_the_per_round_ratios() -> None:
    # rounds paired in order: 2, 4 and 3 -> 3; not the ratio of the medians (20/5 = 4)
    assert script.speedup([20.0, 40.0, 15.0], [10.0, 10.0, 5.0]) == 3.0


def test_the_table_shows_each_candidate_beside_the_group_and_beside_its_baseline() -> None:
    group = {
        "numpy": {"s": [0.020, 0.021, 0.020], "faults": [2000.0, 2010.0, 1990.0]},
        "torch": {"s": [0.005, 0.005, 0.005], "faults": [0.0, 0.0, 0.0]},
        "onnxruntime": {"s": [0.050, 0.050, 0.050], "faults": [0.0, 0.0, 0.0]},
    }
    pairs = {
        "torch": {
            "numpy": {"s": [0.011, 0.011, 0.011], "faults": [0.0, 0.0, 0.0]},
            "torch": {"s": [0.005, 0.005, 0.005], "faults": [1.0, 1.0, 1.0]},
        }
    }
    lines = script.table(group, pairs, "numpy")
    assert lines[0].split()[:3] == ["candidate", "group", "×"]
    (row,) = [line for line in lines if line.startswith("torch")]
    cells = row.split()
    assert cells[1:4] == ["4.00", "2.20", "0.55"]  # group ×, pair ×, pair/group
    assert "20.000 ms" in row and "2000 flt" in row and "11.000 ms" in row
    assert not any(line.startswith("onnxruntime") for line in lines)  # no pair timed
