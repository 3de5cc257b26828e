"""scripts/allocator_history.py's pure parts: points and bad arguments (no process)."""

from __future__ import annotations

import allocator_history as script  # scripts/ is on sys.path (conftest.py)
import pytest


def test_points_keep_integers_and_strings() -> None:
    assert script.parse_point("n=512,k=3") == {"n": 512, "k": 3}
    assert script.parse_point("n=64, mode=same") == {"n": 64, "mode": "same"}


@pytest.mark.parametrize("bad", ["n", "n=", "=3", "n=3,,k=1"])
def test_a_malformed_point_is_one_error_line(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="not a point"):
        script.parse_point(bad)
    assert script.main(["--point", bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: not a point") and err.count("\n") == 1
