"""Each layer's declaration checked before anything is measured, or found in the cache.

A layer's declaration is the user's code: it may raise, crash or hang, so it runs once
at the layer's smallest point in a *validate* worker (``harness.registry.validate_layer``
there). What that finds depends only on code and versions, so it is kept in the cache
of checks across runs (``harness.cache``, check ``validate``): a warm run whose layers
all hit starts no worker for it. A broken declaration raises ``LayerDefinitionError``
(never cached); an implementation that fails is a note, and its points are measured,
and fail, in isolation.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import RunConfig
from harness.environment import worker_env
from harness.errors import LayerDefinitionError
from harness.protocol import EventLog, Invalid, Job, Validated, ValidateTask
from harness.registry import Registry
from harness.schedule import declared_impls
from harness.supervisor import STARTUP_TIMEOUT_S, run_to_end

if TYPE_CHECKING:
    from harness.cache import Checks
    from harness.plan import Plan

__all__ = ["DeclarationChecks"]


class DeclarationChecks:
    """The declaration checks of a plan's layers (``run``); ``cache`` says, per layer,
    whether the cache had it (``hit``), or why it was computed (``miss``,
    ``damaged``): run.json's cache record counts them."""

    def __init__(
        self,
        plan: Plan,
        registry: Registry,
        config: RunConfig,
        cpu_capability: str,
        cache_root: Path | None,
    ) -> None:
        self.plan = plan
        self.registry = registry
        self.config = config
        self.cpu_capability = cpu_capability
        self.cache_root = cache_root
        self.cache: dict[str, str] = {}
        self._checks: Checks | None = None

    def run(self) -> list[str]:
        """The notes of every layer (cached ones first looked up, the others checked
        in one worker); ``LayerDefinitionError`` for a broken declaration."""
        cached, keys = self._from_cache()
        tasks = [
            ValidateTask(name, declared_impls(self.plan, name))
            for name in self.plan.layers
            if name not in cached
        ]
        notes = [note for name in self.plan.layers for note in cached.get(name, ())]
        if tasks:
            notes += self._in_worker(tasks, keys)
        return notes

    def _from_cache(self) -> tuple[dict[str, list[str]], dict[str, Any]]:
        """The layers whose check the cache holds (their notes), and the cache keys of
        the others (to store what the worker finds)."""
        if self.cache_root is None:
            return {}, {}
        from harness.cache import Checks

        checks = Checks(
            self.cache_root, self.cpu_capability, self.config.seed, self.config.layers_from
        )
        self._checks = checks
        cached: dict[str, list[str]] = {}
        keys: dict[str, Any] = {}
        for name in self.plan.layers:
            key = checks.key(
                "validate", self.registry.get(name), impls=list(declared_impls(self.plan, name))
            )
            found = checks.get("validate", key)
            if found.note:
                print(f"note: {found.note}", file=sys.stderr)
            if found.hit and isinstance(found.value, list):
                cached[name] = [str(n) for n in found.value]
                self.cache[name] = "hit"
            else:
                keys[name] = key
                self.cache[name] = found.status or "miss"
        return cached, keys

    def _in_worker(self, tasks: list[ValidateTask], keys: Mapping[str, Any]) -> list[str]:
        limit = STARTUP_TIMEOUT_S + sum(30.0 * (len(t.impls) + 1) for t in tasks)
        with tempfile.TemporaryDirectory(prefix="harness-validate-") as tmp:
            raw = Path(tmp) / "validate.jsonl"
            job_path = Path(tmp) / "job.json"
            Job(
                "validate",
                tuple(tasks),
                str(raw),
                layers_from=self.config.layers_from,
                seed=self.config.seed,
            ).write(job_path)
            code, tail = run_to_end(job_path, worker_env(max(self.config.threads)), limit)
            events = EventLog.read(raw)
        notes: list[str] = []
        done = set()
        for event in events:
            if isinstance(event, Invalid):
                raise LayerDefinitionError(event.error)
            if isinstance(event, Validated):
                notes += event.notes
                done.add(event.layer)
                if self._checks is not None and event.layer in keys:
                    self._checks.put("validate", keys[event.layer], list(event.notes))
        for task in tasks:
            if task.layer not in done:
                why = (
                    f"timed out after {limit:.0f}s"
                    if code is None
                    else f"the worker exited with code {code}"
                )
                notes.append(
                    f"layer {task.layer!r}: checking its declaration failed ({why}"
                    + (f": {tail[0]}" if tail else "")
                    + "); its points will be measured in isolation"
                )
        return notes
