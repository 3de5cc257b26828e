"""The command line's own checks that need no worker process."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main


def test_resume_with_a_config_that_sets_another_out_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    toml = tmp_path / "o.toml"
    toml.write_text('out = "X"\n')
    code = main(["run", "--resume", str(folder), "--config", str(toml)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    # refused for the conflicting out, not for anything else about the folder
    assert "out = 'X'" in lines[0] and "keeps its own folder" in lines[0]
