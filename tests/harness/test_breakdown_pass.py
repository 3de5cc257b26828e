"""The profiling pass (harness.breakdown_pass): which variants it profiles, on a crafted
plan and decision (no worker), and one quick end-to-end run (slow) writing
breakdown.csv and the report's section."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

import harness
from harness import breakdown_pass as bp
from harness.config import RunConfig
from harness.plan import make_plan
from harness.registry import Registry
from harness.report.decide import (
    Crossover,
    GradientFindings,
    LayerDecision,
    SettingDecision,
    Verdict,
)

FIXTURE = str(Path(__file__).resolve().parents[1] / "fixtures" / "breakdown_layers.py")
GRID = {"n": ("8", "16", "32", "64", "128", "256", "512", "1024"), "k": ("3",)}


@pytest.fixture(scope="module")
def plan() -> Any:
    return make_plan(Registry.default(), RunConfig(layers=("conv2d",), grid=GRID, threads=(1,)))


def _set_up(plan: Any) -> Any:
    """The state of a run whose every variant set up fine (what the pass profiles)."""
    from harness.collect import State
    from harness.protocol import PhaseSetup, SetupDone

    state = State()
    ok = PhaseSetup("ok", loops=10, estimate_s=1e-3)
    for variant in plan.variants:
        state.add(SetupDone(variant, dict.fromkeys(plan.config.phases, ok)))
    return state


def _targets(tasks: list[Any]) -> set[tuple[str, float, tuple[str, ...]]]:
    return {(t.variant.impl, float(t.variant.point_dict["n"]), t.phases) for t in tasks}


def test_verdict_mode_profiles_the_ends_and_both_sides_of_each_crossover(plan: Any) -> None:
    tasks = bp.profile_targets(
        plan, "verdict", ("forward", "backward", "step"), {"conv2d": {128.0, 256.0}}
    )
    sizes = {n for _, n, _ in _targets(tasks)}
    assert sizes == {8.0, 128.0, 256.0, 1024.0}
    impls = {i for i, _, _ in _targets(tasks)}
    assert "scipy" in impls and "torch" in impls
    roles, forms = plan.info["conv2d"].roles, plan.info["conv2d"].forms
    skipped = {
        i for i in plan.impls["conv2d"] if forms.get(i) == "compile" or roles.get(i) == "compiled"
    }
    assert skipped and not (impls & skipped)  # torch.compile forms cost seconds each to build
    assert {p for _, _, p in _targets(tasks)} == {("step", "forward")}
    # plan order, one task per variant
    assert len(tasks) == len({t.variant.name for t in tasks})


def test_all_none_and_inference_only(plan: Any) -> None:
    every = bp.profile_targets(plan, "all", ("forward", "backward", "step"))
    assert len(every) == len(plan.variants)
    assert bp.profile_targets(plan, "none", ("forward", "step")) == []
    forward = bp.profile_targets(plan, "verdict", ("forward",))
    assert {t.phases for t in forward} == {("forward",)}
    assert {float(t.variant.point_dict["n"]) for t in forward} == {8.0, 1024.0}


def test_crossover_sizes_come_from_both_verdicts(monkeypatch: pytest.MonkeyPatch) -> None:
    def setting(lower: float, upper: float, use: str) -> SettingDecision:
        c = Crossover(size=(lower + upper) / 2, lower=lower, upper=upper, faster_above="baseline")
        return SettingDecision(
            "", "", "keep above", c, "scipy", "torch", "step", crossovers=(c,), use=use
        )

    decision = LayerDecision(
        layer="conv2d",
        kind="keep above",
        threshold=None,
        size_axis="n",
        settings=(setting(128, 256, "training"),),
        gradient=GradientFindings(fix=False),
        inference=Verdict("inference", "keep above", None, (setting(512, 1024, "inference"),)),
    )
    import harness.report.decide as decide

    monkeypatch.setattr(decide, "decide_layers", lambda *a, **k: [decision])
    assert bp._crossover_sizes(pd.DataFrame(), {}, None) == {
        "conv2d": {128.0, 256.0, 512.0, 1024.0}
    }


def test_breakdown_none_runs_nothing() -> None:
    runner = SimpleNamespace(config=SimpleNamespace(breakdown="none"))
    assert bp.breakdown_pass(runner) == {}


def test_a_worker_that_dies_takes_one_variant_down_and_the_rest_are_profiled(
    plan: Any, tmp_path: Path
) -> None:
    """What a run meets with layers that crash or hang (harness.supervisor writes a
    Crash for the task its dead or killed worker was on, the collector folds it in):
    a new worker profiles the rest, the dead variant's phases are errors; and the pass
    gives up on workers that finish nothing. The supervisor here is a stand-in."""
    from harness.protocol import BreakdownDone, Crash, PhaseBreakdown
    from harness.results import RAW_DIR

    config = replace(plan.config, breakdown="all")
    tasks = bp.profile_targets(plan, "all", config.phases)
    names = [t.variant.name for t in tasks]
    dies = {names[0]: "worker crashed (exit code 7)", names[3]: "timed out after 10s"}
    state = _set_up(plan)
    calls: list[tuple[list[str], int]] = []
    finish = True

    def run_worker(
        mode: str, todo: list[Any], raw: Path, allocator: str, process: int, attempt: int
    ) -> None:
        assert (mode, raw, allocator, process) == (
            "profile",
            tmp_path / RAW_DIR / bp.PROFILE_FILE,
            "glibc",
            -1,
        )
        calls.append(([t.variant.name for t in todo], attempt))
        for task in todo if finish else ():
            if task.variant.name in dies:
                state.add(Crash(task, dies[task.variant.name]))
                return  # the worker is gone
            ok = PhaseBreakdown("ok", parts=({"part": "x", "kind": "other"},))
            state.add(BreakdownDone(task.variant, dict.fromkeys(task.phases, ok)))

    begun: list[tuple[str, int]] = []
    runner = _fake_runner(
        config, plan, tmp_path, lambda: state, run_worker, lambda label, n: begun.append((label, n))
    )
    cost = bp.breakdown_pass(runner)
    assert cost["mode"] == "all" and cost["variants"] == len(tasks) and cost["seconds"] >= 0
    assert begun == [("profiling", len(tasks))]
    assert calls == [(names, 1), (names[1:], 2), (names[4:], 3)]
    assert set(state.breakdowns) == set(names)
    for name, error in dies.items():
        phases = state.breakdowns[name].phases
        assert {(p.status, p.error) for p in phases.values()} == {("error", error)}
    assert {
        p.status for n in names if n not in dies for p in state.breakdowns[n].phases.values()
    } == {"ok"}

    # workers that finish nothing: given up after four of them in a row
    state, calls, finish = _set_up(plan), [], False
    bp.breakdown_pass(runner)
    assert calls == [(names, attempt) for attempt in (1, 2, 3, 4)]
    assert not state.breakdowns


def _fake_runner(
    config: Any,
    plan: Any,
    out: Path,
    poll: Callable[[], Any],
    run_worker: Callable[..., None],
    begin: Callable[[str, int], None] = lambda label, n: None,
) -> SimpleNamespace:
    """What ``breakdown_pass`` reads of a runner: ``poll`` gives the collected state
    (read at each call: a test may swap it), ``run_worker`` stands for the workers."""
    return SimpleNamespace(
        config=config,
        plan=plan,
        out=out,
        collector=SimpleNamespace(poll=poll),
        supervisor=SimpleNamespace(run_worker=run_worker),
        progress=SimpleNamespace(begin=begin),
    )


def test_variants_whose_setup_failed_are_not_profiled(plan: Any, tmp_path: Path) -> None:
    """A variant whose setup raised (error) or whose form is unsupported at its point
    was never timed: the pass profiles nothing of it (no worker time, no error rows); a
    variant whose step failed but whose forward set up is profiled in its forward."""
    from harness.protocol import PhaseSetup, SetupDone

    config = replace(plan.config, breakdown="all")
    variants = list(plan.variants)
    ok = PhaseSetup("ok", loops=10, estimate_s=1e-3)
    raised = PhaseSetup("error", error="ValueError: boom")
    unsupported = PhaseSetup("unsupported", error="no ONNX export at this point")
    state = _set_up(plan)
    failed, skipped, forward_only = variants[0], variants[1], variants[2]
    state.add(SetupDone(failed, dict.fromkeys(config.phases, raised)))
    state.add(SetupDone(skipped, dict.fromkeys(config.phases, unsupported)))
    state.add(SetupDone(forward_only, {"forward": ok, "backward": raised, "step": raised}))
    profiled: dict[str, tuple[str, ...]] = {}

    def run_worker(
        mode: str, todo: list[Any], raw: Path, allocator: str, process: int, attempt: int
    ) -> None:
        from harness.protocol import BreakdownDone, PhaseBreakdown

        done = PhaseBreakdown("ok", parts=({"part": "x", "kind": "other"},))
        for task in todo:
            profiled[task.variant.name] = task.phases
            state.add(BreakdownDone(task.variant, dict.fromkeys(task.phases, done)))

    runner = _fake_runner(config, plan, tmp_path, lambda: state, run_worker)
    cost = bp.breakdown_pass(runner)
    assert failed.name not in profiled and skipped.name not in profiled
    assert profiled[forward_only.name] == ("forward",)
    rest = [v.name for v in variants[3:]]
    assert {profiled[name] for name in rest} == {("step", "forward")}
    assert set(profiled) == {forward_only.name, *rest} and cost["variants"] == len(profiled)


@pytest.mark.slow
def test_a_quick_run_writes_breakdown_csv_and_the_report_section(tmp_path: Path) -> None:
    out = tmp_path / "bd"
    harness.run(
        layers="copycast",
        layers_from=[FIXTURE],
        grid=["n=8,256"],
        profile="quick",
        budget_s=3,
        capabilities=False,
        cache=False,
        out=out,
    )
    results = harness.load_results(out)
    bd = results.breakdown
    assert bd is not None and len(bd)
    assert set(bd["kind"]) <= {"numpy", "bridge", "python", "code", "kernel", "other"}
    # the Function's forward body is a part of its own (its calls keep theirs)
    assert "CopyCastCumsum.forward" in set(bd[bd["kind"] == "code"]["part"])
    for _, case in bd.groupby("case"):
        assert math.isclose(case["share"].sum(), 1.0, rel_tol=1e-6)
    assert set(bd["phase"]) == {"step", "forward"} and set(bd["impl"]) == {"numpy", "torch"}
    # the deliberate copy and cast show as bridge parts of the baseline
    base = bd[(bd["impl"] == "numpy") & (bd["kind"] == "bridge")]
    assert {"numpy.ascontiguousarray", "numpy.ndarray.astype"} <= set(base["part"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert "breakdown.csv" in json.dumps(manifest)
    timing = json.loads((out / "run.json").read_text())["timing"]
    assert timing["profiling"]["mode"] == "verdict" and timing["profiling"]["variants"] == 4
    report = (out / "report.md").read_text()
    assert "### Where the time goes (copycast)" in report
    assert (
        "plots/copycast-breakdown.png" in report
        and (out / "plots" / "copycast-breakdown.png").exists()
    )
    assert "Profiling where the time goes (`--breakdown verdict`" in report
    assert "Reconciliation:" in report
