"""A results folder's stored run, and its tables rebuilt from its raw events.

``stored_run`` reads a folder's ``run.json`` (the settings a run was made with),
checking its schema; ``rebuild_outputs`` rewrites the folder's tables and pyperf.json
from the workers' raw event files, the source of truth. The runner uses both (to
resume a run, to write at the end); the report reaches down here only for a damaged
folder (``load_results(..., rebuild=...)``), and only then imports the layers, hence
torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.collect import Builder, Collector
from harness.config import PLAN_KEYS, RunConfig
from harness.errors import ConfigError, ResultsError
from harness.forms import quiet
from harness.plan import make_plan
from harness.registry import Registry
from harness.results import ENVIRONMENT_JSON, RUN_JSON, SCHEMA_VERSION
from harness.shard import identity_mismatch

__all__ = ["PIECES_FILE", "rebuild_outputs", "stored_run"]

#: The scratch file of a run's encoded table pieces (``collect.Pieces``), removed at the end.
PIECES_FILE = ".pieces.tmp"


def stored_run(folder: Path) -> dict[str, Any]:
    """The ``run.json`` of a results folder made by this schema version (for ``--resume``
    and rebuilding); ``ConfigError`` when it is no results folder or an older one,
    ``ResultsError`` when it is damaged or newer."""
    if not folder.is_dir():
        raise ConfigError(f"--resume {folder}: no such folder")
    path = folder / RUN_JSON
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--resume {folder}: not a results folder (no {RUN_JSON})") from None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: damaged: {exc}".splitlines()[0]) from None
    if not isinstance(stored, dict) or "config" not in stored:
        raise ResultsError(f"{path}: damaged: no run settings in it")
    if int(stored.get("schema", 1)) > SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: written by a newer harness (schema {stored['schema']}; this one reads up to {SCHEMA_VERSION})"
        )
    if int(stored.get("schema", 1)) < SCHEMA_VERSION:
        raise ConfigError(
            f"--resume {folder}: it was made by an older harness (schema {stored.get('schema', 1)}); start a new --out"
        )
    try:
        environment = json.loads((folder / ENVIRONMENT_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        environment = {}
    edited = identity_mismatch(
        stored, environment if isinstance(environment, dict) else {}, PLAN_KEYS
    )
    if edited is not None:  # resuming would measure what was never asked for
        raise ResultsError(f"{folder / edited}; it cannot be resumed: start a new --out")
    return stored


def rebuild_outputs(folder: str | Path) -> None:
    """Rewrite a results folder's tables and pyperf.json from its raw event files (the
    source of truth), for ``load_results(..., rebuild=rebuild_outputs)``."""
    folder = Path(folder)
    stored = stored_run(folder)
    config = RunConfig.from_json(stored["config"])
    with quiet():
        registry = Registry.default(config.layers_from)
    plan = make_plan(registry, config)
    builder = Builder(plan, config.seed, folder / PIECES_FILE)
    try:
        builder.write(Collector(folder).poll(), folder)
    finally:
        builder.close()
