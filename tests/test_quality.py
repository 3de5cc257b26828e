"""The habits that keep the codebase healthy, run as part of the test command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, timeout=600)


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable}: install the 'test' extra")
    return str(path)


def test_ruff_lint() -> None:
    res = _run(_tool("ruff"), "check", ".")
    assert res.returncode == 0, res.stdout + res.stderr


def test_ruff_format() -> None:
    res = _run(_tool("ruff"), "format", "--check", ".")
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.slow  # mypy over the package: tens of seconds
def test_mypy() -> None:
    res = _run(_tool("mypy"))
    assert res.returncode == 0, res.stdout + res.stderr


def test_readme_run_options_table_is_generated_from_the_declaration() -> None:
    from harness.config import options_markdown

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("<!-- run-options: start -->") + len("<!-- run-options: start -->")
    end = text.index("<!-- run-options: end -->")
    assert text[start:end].strip() == options_markdown().strip(), (
        "README's run options differ from RunConfig: paste harness.config.options_markdown()"
    )
