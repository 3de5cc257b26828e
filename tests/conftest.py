"""Shared fixtures. Tests that spawn workers use the quick profile and tiny grids.

The suite runs in two pytest-xdist workers (``-n 2 --dist loadfile`` in pyproject's
addopts): each test file stays in one worker, so a module-scoped run is made once and
the tests of a file keep their order. Files with slow tests go first, the many short
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Files with slow (end-to-end, compiling) tests first, every file's tests in their
    # own order: xdist hands out whole files in this order (--no-loadscope-reorder).
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: the order within a file
