"""The profiling pass: after timing, where the time goes (``--breakdown``).

``profile_targets`` picks what to profile from the timed results: per layer, the sizes
a verdict turns on (``verdict``: the smallest, the two around each crossover of the
training and the inference verdicts, the largest; ``all``: every size), every
implementation there (``verdict`` skips torch.compile forms: preparing them again
costs seconds each), phases ``step`` and ``forward``, each only where the variant's
setup passed: a phase whose setup failed (an exception, a form unsupported at that
point) was never timed and has nothing to profile. ``breakdown_pass`` runs them in
one worker per allocator (``ProfileTask`` -> ``BreakdownDone``, ``raw/profile.jsonl``)
after every timing pass has ended, so profiling never overlaps a timed region, and
returns what it cost for run.json's ``timing.profiling`` (the report's budget line).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.protocol import ProfileTask, Task
from harness.results import RAW_DIR, load_results

if TYPE_CHECKING:
    import pandas as pd

    from harness.plan import Plan
    from harness.protocol import SetupDone

__all__ = ["PROFILE_FILE", "breakdown_pass", "profile_targets"]

PROFILE_FILE = "profile.jsonl"
_PHASES = ("step", "forward")


def _crossover_sizes(
    frame: pd.DataFrame, run: dict[str, Any], capabilities: Any
) -> dict[str, set[float]]:
    """Layer -> the sizes on each side of every crossover of its verdicts."""
    from harness.report.decide import decide_layers

    out: dict[str, set[float]] = {}
    for d in decide_layers(frame, run, capabilities):
        sizes = out.setdefault(d.layer, set())
        verdicts = [d.settings, d.inference.settings if d.inference is not None else ()]
        for settings in verdicts:
            for s in settings:
                for c in s.crossovers:
                    sizes.update((float(c.lower), float(c.upper)))
    return out


def profile_targets(
    plan: Plan,
    mode: str,
    phases: Sequence[str],
    crossovers: dict[str, set[float]] | None = None,
    setups: Mapping[str, SetupDone] | None = None,
) -> list[ProfileTask]:
    """The variants to profile, in plan order (``mode``: all, verdict or none).

    ``setups`` (variant name -> its setup, ``State.setup``): a variant is profiled
    only in the phases its setup passed, and not at all where none did (or it has no
    setup); None profiles every phase of every chosen variant."""
    if mode == "none":
        return []
    wanted = tuple(p for p in _PHASES if p in phases)
    if not wanted:
        return []
    sizes: dict[str, list[float]] = {}
    for group in plan.groups:
        info = plan.info[group.layer]
        value = group.point_dict.get(info.size_axis)
        if isinstance(value, int | float):
            sizes.setdefault(group.layer, []).append(float(value))
    tasks: list[ProfileTask] = []
    for group in plan.groups:
        info = plan.info[group.layer]
        value = group.point_dict.get(info.size_axis)
        if mode == "verdict":
            known = sizes.get(group.layer) or []
            chosen = {min(known), max(known)} if known else set()
            chosen |= (crossovers or {}).get(group.layer, set())
            if not isinstance(value, int | float) or float(value) not in chosen:
                continue
        for variant in plan.variants_of(group):
            if mode == "verdict" and (
                info.forms.get(variant.impl) == "compile"
                or info.roles.get(variant.impl) == "compiled"
            ):
                continue
            phases = wanted
            if setups is not None:
                setup = setups.get(variant.name)
                passed = setup.phases if setup is not None else {}
                phases = tuple(p for p in wanted if p in passed and passed[p].status == "ok")
            if phases:
                tasks.append(ProfileTask(variant, phases))
    return tasks


def breakdown_pass(runner: Any) -> dict[str, Any]:
    """Profile what the verdicts turn on, after timing; what it cost (run.json).

    ``runner`` is the ``harness.runner.Runner`` whose timing passes have ended: its
    config, plan, collector, outputs and supervisor are used as they are."""
    config = runner.config
    if config.breakdown == "none":
        return {}
    t0 = time.monotonic()
    crossovers: dict[str, set[float]] = {}
    if config.breakdown == "verdict":
        runner._write_outputs()  # the decisions are read from the tables written so far
        results = load_results(runner.out)
        crossovers = _crossover_sizes(results.frame, results.run, results.capabilities)
    # what set up fine: a failed setup was never timed, and has nothing to profile
    setups = runner.collector.poll().setup
    tasks = profile_targets(runner.plan, config.breakdown, config.phases, crossovers, setups)
    raw = runner.out / RAW_DIR / PROFILE_FILE
    for allocator in config.allocators:
        mine = [t for t in tasks if t.variant.allocator == allocator]

        def remaining(mine: list[ProfileTask] = mine) -> list[Task]:
            done = runner.collector.poll().breakdowns
            return [t for t in mine if t.variant.name not in done]

        todo = remaining()
        if todo:
            runner.progress.begin("profiling", len(todo))
        attempt = stalls = 0
        while todo and stalls <= 3:
            # each worker that dies takes one task down with it (recorded as failed)
            attempt += 1
            before = set(todo)
            runner.supervisor.run_worker("profile", todo, raw, allocator, -1, attempt)
            todo = remaining()
            stalls = stalls + 1 if set(todo) >= before else 0
    return {
        "mode": config.breakdown,
        "variants": len(tasks),
        "seconds": round(time.monotonic() - t0, 2),
    }
