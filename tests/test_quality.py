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


#: The largest a class (docstrings included) and a function of the package may grow
#: (issue 17: a class over 350 lines does more than one job; past about 80, a function
#: can usually be split where its steps are).
MAX_CLASS_LINES = 350
MAX_FUNCTION_LINES = 90


def test_no_class_or_function_of_the_package_outgrows_its_limit() -> None:
    import ast

    too_long = []
    for path in sorted((ROOT / "harness").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                limit = MAX_CLASS_LINES
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                limit = MAX_FUNCTION_LINES
            else:
                continue
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > limit:
                too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines}")
    assert not too_long, (
        f"over the limit ({MAX_CLASS_LINES} a class, {MAX_FUNCTION_LINES} a function): {too_long}"
    )


def test_a_module_run_as_a_script_defines_everything_before_it_runs() -> None:
    """2026-11-30: a function of harness/worker.py defined below its ``if __name__ ==
    "__main__":`` block was undefined when ``python -m harness.worker`` ran it, and
    every worker of a warm run crashed; the in-process tests import the module, which
    defines everything first, so none saw it."""
    import ast

    late = []
    for path in sorted((ROOT / "harness").rglob("*.py")) + sorted((ROOT / "scripts").glob("*.py")):
        body = ast.parse(path.read_text(encoding="utf-8")).body
        for i, node in enumerate(body):
            is_main = (
                isinstance(node, ast.If)
                and isinstance(node.test, ast.Compare)
                and isinstance(node.test.left, ast.Name)
                and node.test.left.id == "__name__"
            )
            if is_main and i != len(body) - 1:
                late.append(f"{path.relative_to(ROOT)}:{body[i + 1].lineno}")
    assert not late, f"defined after the __main__ block: {late}"
