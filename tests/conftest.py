"""Shared fixtures. Tests that spawn workers use the quick profile and tiny grids."""

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
