"""Shared fixtures. Tests that spawn workers use the quick profile and tiny grids.

The suite runs in two pytest-xdist workers (``-n 2 --dist loadfile`` in pyproject's
addopts): each test file stays in one worker, so a module-scoped run is made once and
the tests of a file keep their order. The longest files go first, the many short
files fill in at the end, so that neither worker is left with a long file alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # The cache across runs (checks, ONNX exports, torch's compile caches of the workers)
    # goes to a per-session folder, never the user's ~/.cache (harness.cache.cache_root).
    os.environ["HARNESS_CACHE_DIR"] = str(tmp_path_factory.mktemp("harness-cache"))


#: Seconds each of the longest files took (``--durations``, 2026-11-30, 2 cores, AVX512):
#: the order files are handed out in, longest first, so that the two workers finish
#: together (a long file handed out last runs alone). Only the order depends on these;
#: a file not listed counts as 10 s if it has a slow test, else 0.
_FILE_SECONDS = {
    "tests/harness/test_run.py": 105,
    "tests/test_layer_kinds.py": 96,
    "tests/test_own_layer.py": 80,
    "tests/harness/test_worker_fork.py": 65,
    "tests/harness/test_merge.py": 61,
    "tests/harness/test_cache.py": 41,
    "tests/harness/test_breakdown_pass.py": 35,
    "tests/harness/test_lifetime.py": 35,
    "tests/harness/test_scan.py": 28,
    "tests/harness/test_capabilities.py": 16,
    "tests/harness/test_faults.py": 16,
}


@pytest.fixture()
def fixtures_pythonpath() -> str:
    """PYTHONPATH with tests/fixtures first, for a script run in a fresh interpreter that
    imports a helper from there (``heap_probe``)."""
    fixtures = str(Path(__file__).resolve().parent / "fixtures")
    return os.pathsep.join(p for p in (fixtures, os.environ.get("PYTHONPATH")) if p)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Longest files first, every file's tests in their own order: xdist hands out whole
    # files in this order (--no-loadscope-reorder), each to the worker that frees first.
    slow = {item.path for item in items if item.get_closest_marker("slow")}

    def seconds(item: pytest.Item) -> float:
        name = item.path.relative_to(ROOT).as_posix()
        return _FILE_SECONDS.get(name, 10.0 if item.path in slow else 0.0)

    items.sort(key=lambda item: -seconds(item))  # stable: the order within a file
