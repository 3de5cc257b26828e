"""Collecting worker events into state and tables: pure, no workers started."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from harness.case import Group
from harness.collect import Builder, Collector, State, build_outputs, timed_seconds
from harness.config import RunConfig
from harness.plan import LayerInfo, Plan
from harness.protocol import (
    Crash,
    EventLog,
    GradcheckDone,
    GradcheckTask,
    PhaseSetup,
    RoundsDone,
    RoundsTask,
    SetupDone,
    SetupTask,
)

IMPLS = ("numpy", "torch", "onnxruntime")
INFO = LayerInfo(
    name="toy",
    axes=("n",),
    size_axis="n",
    baselines=("numpy",),
    backward=("numpy", "torch"),
    sources={"numpy": "numpy", "torch": "torch", "onnxruntime": "torch"},
    roles={"numpy": "baseline", "torch": "native", "onnxruntime": "native"},
    forms={"numpy": "eager", "torch": "eager", "onnxruntime": "onnxruntime"},
)


def plan(sizes: tuple[int, ...] = (8, 64)) -> Plan:
    groups = tuple(Group("toy", (("n", n),)) for n in sizes)
    return Plan(RunConfig(), ("toy",), groups, {"toy": IMPLS}, (), {"toy": INFO})


def setup_events(p: Plan) -> list[SetupDone]:
    out = []
    for variant in p.variants:
        ok = PhaseSetup(
            "ok",
            loops=10,
            estimate_s=1e-4,
            deviations=(
                {"tensor": "output", "max_abs_err": 1e-7, "max_rel_err": 1e-6, "within_tol": True},
            ),
            peak_bytes=4096,
            peak_sources="numpy+torch-cpu",
        )
        backward = (
            PhaseSetup("unsupported", error="ONNX Runtime sessions run forward only")
            if variant.impl == "onnxruntime"
            else ok
        )
        oneoff = 2.0 if variant.impl == "onnxruntime" else None
        out.append(
            SetupDone(
                variant,
                {"forward": ok, "backward": backward, "step": backward},
                oneoff,
                "export" if oneoff else None,
            )
        )
    return out


def rounds(
    group: Group,
    process: int,
    times: dict[tuple[str, str], float],
    n: int = 10,
    noise: float = 0.02,
    drift: float = 0.0,
    seed: int = 0,
) -> RoundsDone:
    """Synthetic paired rounds: each round's drift factor hits every case alike."""
    rng = random.Random(seed * 100 + process)
    values: dict[str, list[float]] = {}
    for r in range(n):
        factor = 1 + drift * r + (0.5 if r == 3 else 0.0)  # a trend and a burst
        for (impl, phase), t in times.items():
            case = group.variant(impl).case(phase).name  # type: ignore[arg-type]
            values.setdefault(case, []).append(t * factor * (1 + rng.gauss(0, noise)))
    return RoundsDone(
        group,
        process,
        0,
        {k: tuple(v) for k, v in values.items()},
        {k: 10 for k in values},
        {},
        {},
        {"threads": 1},
    )


TIMES = {
    ("numpy", "forward"): 4e-4,
    ("numpy", "backward"): 6e-4,
    # a step timed whole is not its parts summed: (4 + 6) / (1 + 4) would say x2
    ("numpy", "step"): 12e-4,
    ("torch", "forward"): 1e-4,
    ("torch", "backward"): 4e-4,
    ("torch", "step"): 4e-4,
    ("onnxruntime", "forward"): 0.5e-4,
}


def state_with_rounds(p: Plan, processes: int = 3, **kw: float) -> State:
    state = State()
    for event in setup_events(p):
        state.add(event)
    state.add(GradcheckDone("toy", "numpy", True))
    for group in p.groups:
        for process in range(processes):
            state.add(rounds(group, process, TIMES, **kw), process)  # type: ignore[arg-type]
    return state


def test_paired_speedups_and_decisions_land_on_candidate_rows() -> None:
    p = plan()
    out = build_outputs(state_with_rounds(p), p)
    rows = out.frame.set_index("case")
    fwd = rows.loc["toy/torch/n=8/float32/t1/cpu/glibc/forward"]
    assert fwd["speedup"] == pytest.approx(4.0, rel=0.05)
    assert fwd["speedup_low"] < fwd["speedup"] < fwd["speedup_high"]
    assert fwd["decision"] == "faster" and fwd["versus"] == "numpy"
    # a training step: the step rows' 12 / 4 = 3 (not the parts' (4 + 6) / (1 + 4) = 2),
    # the same on every row of the variant
    back = rows.loc["toy/torch/n=8/float32/t1/cpu/glibc/backward"]
    step = rows.loc["toy/torch/n=8/float32/t1/cpu/glibc/step"]
    assert step["speedup"] == pytest.approx(3.0, rel=0.05) == step["step_speedup"]
    assert fwd["step_speedup"] == step["step_speedup"] == back["step_speedup"]
    assert back["speedup"] == pytest.approx(1.5, rel=0.05)
    assert pd.isna(step["error"])
    base = rows.loc["toy/numpy/n=8/float32/t1/cpu/glibc/forward"]
    assert pd.isna(base["speedup"]) and pd.isna(base["decision"])
    assert rows.loc["toy/numpy/n=8/float32/t1/cpu/glibc/backward", "gradcheck"]
    ort = rows.loc["toy/onnxruntime/n=8/float32/t1/cpu/glibc/forward"]
    assert ort["speedup"] == pytest.approx(8.0, rel=0.05)
    # forward only: no step; break-even on forward: 2 s / (400 - 50) us
    assert pd.isna(ort["step_speedup"])
    assert ort["break_even_calls"] == pytest.approx(2.0 / 3.5e-4, rel=0.05)
    assert rows.loc["toy/onnxruntime/n=8/float32/t1/cpu/glibc/backward", "status"] == "unsupported"
    assert (rows["n_processes"].dropna() == 3).all() and (rows["n_values"].dropna() == 30).all()
    assert set(out.frame["peak_sources"].dropna()) == {"numpy+torch-cpu"}
    assert rows.loc["toy/onnxruntime/n=8/float32/t1/cpu/glibc/step", "status"] == "unsupported"
    assert out.suite is not None and len(out.suite.get_benchmarks()) == 2 * 7


def _failing_step(p: Plan, impl: str, where: str) -> State:
    """A state whose ``impl`` has no step rounds: its step failed to set up (``setup``)
    or failed in every timing process (``timing``); every other case timed fine."""
    state = State()
    for event in setup_events(p):
        if where == "setup" and event.variant.impl == impl:
            failed = PhaseSetup("error", error="RuntimeError: trying to backward twice")
            event = replace(event, phases={**event.phases, "step": failed})
        state.add(event)
    state.add(GradcheckDone("toy", "numpy", True))
    times = {k: t for k, t in TIMES.items() if k != (impl, "step")}
    for group in p.groups:
        for process in range(3):
            done = rounds(group, process, times)  # type: ignore[arg-type]
            if where == "timing":
                case = group.variant(impl).case("step").name
                done = replace(done, errors={case: "RuntimeError: trying to backward twice"})
            state.add(done, process)
    return state


@pytest.mark.parametrize("where", ["setup", "timing"])
def test_a_baseline_without_step_rounds_gives_no_training_speedup_and_says_why(
    where: str,
) -> None:
    """Issue 16: a training verdict stands on the step timed whole. Where the baseline
    has no step rounds there is no step speedup and no break-even, never one estimated
    from its forward and backward (which both timed), and the candidate's step row says
    why."""
    p = plan((8,))
    state = _failing_step(p, "numpy", where)
    analysis = Builder(p).group(state, p.groups[0]).comparisons
    assert analysis["torch"].step is None
    assert analysis["torch"].phase["forward"] is not None
    assert analysis["torch"].phase["backward"] is not None
    rows = build_outputs(state, p).frame.set_index("case")
    torch_rows = rows[rows["impl"] == "torch"]
    assert torch_rows["step_speedup"].isna().all()
    assert torch_rows["step_speedup_low"].isna().all() and torch_rows["step_decision"].isna().all()
    step = rows.loc["toy/torch/n=8/float32/t1/cpu/glibc/step"]
    assert step["status"] == "ok" and pd.isna(step["speedup"])
    assert step["error"] == "no step timed for numpy: RuntimeError: trying to backward twice"
    # the baseline's own step row is the error the report words
    base_step = rows.loc["toy/numpy/n=8/float32/t1/cpu/glibc/step"]
    assert base_step["status"] == "error" and "backward twice" in base_step["error"]
    # forward and backward stay, as the explanation of where a step's time goes
    assert rows.loc["toy/torch/n=8/float32/t1/cpu/glibc/forward", "speedup"] == pytest.approx(
        4.0, rel=0.05
    )
    assert rows.loc["toy/torch/n=8/float32/t1/cpu/glibc/backward", "speedup"] == pytest.approx(
        1.5, rel=0.05
    )
    assert pd.isna(rows.loc["toy/torch/n=8/float32/t1/cpu/glibc/forward", "error"])


def test_a_candidate_without_step_rounds_gives_no_training_speedup() -> None:
    p = plan((8,))
    state = _failing_step(p, "torch", "timing")
    rows = build_outputs(state, p).frame.set_index("case")
    assert rows[rows["impl"] == "torch"]["step_speedup"].isna().all()
    step = rows.loc["toy/torch/n=8/float32/t1/cpu/glibc/step"]
    assert step["status"] == "error" and "backward twice" in step["error"]


def test_break_even_is_on_the_step_and_never_a_sum_of_forward_and_backward() -> None:
    from harness.collect import _break_even

    base = {"forward": 4e-4, "backward": 6e-4, "step": 12e-4}
    cand = {"forward": 1e-4, "backward": 4e-4, "step": 4e-4}
    assert _break_even(2.0, base, cand, "step") == pytest.approx(2.0 / 8e-4)
    # a forward-only form (no step by design): on the forward
    assert _break_even(2.0, base, {"forward": 1e-4}, "forward") == pytest.approx(2.0 / 3e-4)
    # a step that failed on either side: none, not (4 + 6) - (1 + 4) per call
    assert _break_even(2.0, {**base, "step": None}, cand, "step") is None
    assert _break_even(2.0, base, {**cand, "step": None}, "step") is None


@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_a_step_that_failed_leaves_no_break_even(impl: str) -> None:
    p = plan((8,))
    state = _failing_step(p, impl, "setup")
    for event in setup_events(p):  # torch pays a one-off cost that forward would repay
        if event.variant.impl == "torch":
            state.setup[event.variant.name] = replace(
                state.full_setup(event.variant.name), oneoff_s=2.0
            )  # type: ignore[arg-type]
    rows = build_outputs(state, p).frame
    torch_rows = rows[rows["impl"] == "torch"].set_index("phase")["break_even_calls"]
    # no training break-even, never one estimated from forward + backward
    assert torch_rows[["step", "backward"]].isna().all()
    # a forward row's is per forward, the inference verdict's (2026-12-02: a forward row
    # carried the training step's figure)
    forward = TIMES[("numpy", "forward")] - TIMES[("torch", "forward")]
    assert torch_rows["forward"] == pytest.approx(2.0 / forward, rel=0.05)


def test_drift_and_bursts_hitting_every_implementation_leave_the_speedup_alone() -> None:
    p = plan((8,))
    calm = build_outputs(state_with_rounds(p), p).frame.set_index("case")
    drifting = build_outputs(state_with_rounds(p, drift=0.3), p).frame.set_index("case")
    case = "toy/torch/n=8/float32/t1/cpu/glibc/forward"
    assert drifting.loc[case, "speedup"] == pytest.approx(calm.loc[case, "speedup"], rel=0.01)
    assert drifting.loc[case, "decision"] == "faster"
    # while the absolute times moved a lot
    assert drifting.loc[case, "max_s"] > 2 * calm.loc[case, "max_s"]


def test_a_crashed_group_becomes_error_rows_and_unfinished_ones_incomplete() -> None:
    p = plan()
    state = State()
    for event in setup_events(p):
        state.add(event)
    state.add(Crash(RoundsTask(p.groups[0], (), 3), "worker crashed (exit code 9)"), 0)
    out = build_outputs(state, p).frame.set_index("case")
    assert out.loc["toy/torch/n=8/float32/t1/cpu/glibc/forward", "status"] == "error"
    assert "exit code 9" in out.loc["toy/torch/n=8/float32/t1/cpu/glibc/forward", "error"]
    assert out.loc["toy/torch/n=64/float32/t1/cpu/glibc/forward", "status"] == "incomplete"
    assert state.timed(p.groups[0].name, 0) and not state.timed(p.groups[0].name, 1)


def test_rows_say_which_allocator_their_processes_really_ran_with() -> None:
    p = plan((8, 64))
    state = State()
    for event in setup_events(p):
        state.add(event)
    ran = {0: "glibc", 1: "glibc (MALLOC_ARENA_MAX=4)"}  # the second group's second process
    for g, group in enumerate(p.groups):
        for process in (0, 1):
            event = rounds(group, process, TIMES)
            measured = ran[process] if g == 1 else "glibc"
            state.add(replace(event, metadata={"allocator": measured}), process)
    rows = build_outputs(state, p).frame.set_index("case")
    assert (rows["allocator"] == "glibc").all()
    measured = rows["allocator_measured"]
    assert measured["toy/torch/n=8/float32/t1/cpu/glibc/forward"] == "glibc"
    assert (
        measured["toy/torch/n=64/float32/t1/cpu/glibc/forward"]
        == "glibc; glibc (MALLOC_ARENA_MAX=4)"
    )
    # nothing timed (ONNX Runtime's backward): nothing measured
    assert pd.isna(measured["toy/onnxruntime/n=8/float32/t1/cpu/glibc/backward"])


def test_minor_faults_come_from_the_timing_rounds_where_a_case_was_timed() -> None:
    p = plan((8,))
    state = State()
    for event in setup_events(p):
        state.add(
            replace(
                event,
                phases={ph: replace(info, minor_faults=99.0) for ph, info in event.phases.items()},
            )
        )
    torch_fwd = "toy/torch/n=8/float32/t1/cpu/glibc/forward"
    numpy_fwd = "toy/numpy/n=8/float32/t1/cpu/glibc/forward"
    for process, faults in enumerate((1.0, 3.0, 8.0)):
        event = rounds(p.groups[0], process, TIMES)
        state.add(replace(event, faults={torch_fwd: faults}), process)
    rows = build_outputs(state, p).frame.set_index("case")
    # the median over processes of what each measured around its timed values
    assert rows.loc[torch_fwd, "minor_faults"] == 3.0
    # no faults in the rounds (an older raw file): the setup pass's figure
    assert rows.loc[numpy_fwd, "minor_faults"] == 99.0


def test_the_state_adds_up_the_seconds_timed_and_waited_for_pools() -> None:
    p = plan((8,))
    state = State()
    case = "toy/torch/n=8/float32/t1/cpu/glibc/forward"
    done = RoundsDone(
        p.groups[0],
        0,
        0,
        {case: (1e-3, 2e-3)},
        {case: 10},
        {case: 5e-3},  # the warm-up value, per call
        {},
        {"threads": 1, "pool_wait_s": 0.25, "prepare_s": 1.5},
    )
    assert timed_seconds(done) == pytest.approx((1e-3 + 2e-3 + 5e-3) * 10)
    state.add(done, 0)
    state.add(replace(done, process=1, metadata={"threads": 1}), 1)  # an older worker's
    assert state.timed_s == pytest.approx(2 * 0.08)
    assert state.pool_wait_s == pytest.approx(0.25)
    assert state.prepare_s == pytest.approx(1.5)  # the older worker's said nothing


def test_a_crashed_setup_task_is_an_error_for_both_phases() -> None:
    p = plan((8,))
    state = State()
    state.add(Crash(SetupTask(p.variants[1]), "timed out after 60s"))
    out = build_outputs(state, p).frame
    rows = out[out["impl"] == "torch"]
    assert set(rows["status"]) == {"error"} and rows["error"].str.contains("timed out").all()
    # an ONNX Runtime form's backward and step are none of its failures: it has none
    state.add(Crash(SetupTask(p.variants[2]), "timed out after 60s"))
    out = build_outputs(state, p).frame
    rows = out[out["impl"] == "onnxruntime"].set_index("phase")
    assert rows.loc["forward", "status"] == "error"
    for phase in ("backward", "step"):
        assert rows.loc[phase, "status"] == "unsupported"
        assert rows.loc[phase, "error"] == "ONNX Runtime sessions run forward only"
    # a native declared without backward beside a baseline that trains: its own reason,
    # not the forward-only layer's
    groups = (Group("toy", (("n", 8),)),)
    info = replace(INFO, backward=("numpy",))
    q = Plan(RunConfig(), ("toy",), groups, {"toy": IMPLS}, (), {"toy": info})
    state = State()
    state.add(Crash(SetupTask(q.variants[1]), "timed out after 60s"))
    out = build_outputs(state, q).frame
    rows = out[out["impl"] == "torch"].set_index("phase")
    assert rows.loc["step", "error"] == "declared without backward"
    # no baseline trains: the layer's reason
    info = replace(INFO, backward=())
    q = Plan(RunConfig(), ("toy",), groups, {"toy": IMPLS}, (), {"toy": info})
    out = build_outputs(state, q).frame
    rows = out[out["impl"] == "torch"].set_index("phase")
    assert rows.loc["step", "error"].startswith("forward-only layer")


def test_a_gradcheck_that_timed_out_is_not_run_rather_than_failed() -> None:
    """Too slow is no wrong gradient: NAFNet's LayerNorm2d read as "fix the gradient
    first" when its gradcheck ran past the limit (2026-11-30)."""
    p = plan((8,))
    state = State()
    for event in setup_events(p):
        state.add(event)
    state.add(Crash.timeout(GradcheckTask("toy", "numpy"), 60, "gradcheck toy/numpy"))
    gc = state.gradchecks["toy", "numpy"]
    assert gc.ok is None
    assert gc.error.startswith("not run: gradcheck did not finish (timed out after 60s")
    out = build_outputs(state, p).frame
    rows = out[(out["impl"] == "numpy") & (out["phase"] == "backward")]
    assert rows["gradcheck"].isna().all()
    assert not rows["gradcheck_error"].str.contains(r"\(at \)").any()
    # a worker that died in gradcheck is still a failure of the layer
    state.add(Crash(GradcheckTask("toy", "numpy"), "worker killed by signal 11"))
    assert state.gradchecks["toy", "numpy"].ok is False


def test_the_builder_recomputes_only_groups_that_changed() -> None:
    p = plan()
    state = state_with_rounds(p)
    builder = Builder(p)
    first = [builder.group(state, g) for g in p.groups]
    state.add(rounds(p.groups[1], 7, TIMES), 7)
    assert builder.group(state, p.groups[0]) is first[0]
    again = builder.group(state, p.groups[1])
    assert again is not first[1] and again.version != first[1].version
    # a gradcheck changes the baseline's backward rows: every group of the layer
    state.add(GradcheckDone("toy", "numpy", False, "mismatch"))
    assert builder.group(state, p.groups[0]) is not first[0]


def test_the_written_folder_reads_the_same_as_the_tables_built_in_memory(
    tmp_path: Path,
) -> None:
    import pyperf

    from harness.results import load_results

    p = plan((8, 64, 512, 4096))
    for scratch in (None, tmp_path / "pieces.tmp"):
        state = state_with_rounds(p, processes=2)
        folder = tmp_path / ("memory" if scratch is None else "scratch")
        builder = Builder(p, scratch=scratch)
        builder.BATCH = 3  # groups rebuilt in batches of different sizes
        builder.write(state, folder)
        # a process dies on one group (a message of several lines, with quotes), another
        # adds rounds to a second: only those are rebuilt, the others copied as stored
        error = 'worker crashed: RuntimeError: "bad"\nsecond line'
        state.add(Crash(RoundsTask(p.groups[2], (), 3), error), 5)
        state.add(rounds(p.groups[0], 2, TIMES), 2)
        assert builder.stale(state) == [p.groups[0], p.groups[2]]
        written = builder.write(state, folder)
        builder.close()
        assert scratch is None or not scratch.exists()  # close removes the scratch file
        whole = build_outputs(state, p)
        text = (folder / "results.csv").read_text()
        assert text == whole.frame.to_csv(index=False)
        assert (folder / "deviations.csv").read_text() == whole.deviations.to_csv(index=False)
        assert written.rows == len(whole.frame)
        assert written.ok == int((whole.frame["status"] == "ok").sum())
        bad = whole.frame[whole.frame["status"].isin(["error", "incomplete"])]
        assert written.failed == [
            f"{c}: {st}: {e}"
            for c, st, e in zip(bad["case"], bad["status"], bad["error"], strict=True)
        ]
        suite = pyperf.BenchmarkSuite.load(str(folder / "pyperf.json"))
        assert suite.get_benchmark_names() == whole.suite.get_benchmark_names()
        for mine, theirs in zip(suite, whole.suite, strict=True):
            assert mine.get_values() == theirs.get_values()
            assert mine.get_metadata() == theirs.get_metadata()
        loaded = load_results(folder)  # the manifest matches every file
        assert len(loaded.frame) == len(whole.frame)


def test_a_collector_keeps_where_heavy_events_lie_and_reads_them_back(tmp_path: Path) -> None:
    p = plan((8,))
    raw = tmp_path / "raw"
    setup = EventLog(raw / "setup.jsonl")
    events = setup_events(p)
    for event in events:
        setup.write(event)
    timing = EventLog(raw / "timing-000.jsonl")
    done = rounds(p.groups[0], 0, TIMES)
    timing.write(done)
    state = Collector(tmp_path).poll()
    timed = state.rounds[p.groups[0].name][0]
    assert timed.event is None and timed.stored is not None and timed.rounds == 10
    assert state.runs(p.groups[0].name)[0].values == done.values
    name = events[0].variant.name
    # planning keeps status, loops and estimates; the deviations are read back
    assert state.setup[name].phases["forward"].deviations == ()
    assert state.setup[name].phases["forward"].loops == 10
    assert state.full_setup(name) == events[0]
    # the tables built from the lean state equal those of a state kept whole
    whole = State()
    for event in events:
        whole.add(event)
    whole.add(done, 0)
    assert build_outputs(state, p).frame.equals(build_outputs(whole, p).frame)


def test_collector_reads_raw_files_incrementally(tmp_path: Path) -> None:
    p = plan((8,))
    raw = tmp_path / "raw"
    setup = EventLog(raw / "setup.jsonl")
    for event in setup_events(p):
        setup.write(event)
    collector = Collector(tmp_path)
    state = collector.poll()
    assert len(state.setup) == 3 and not state.rounds
    timing = EventLog(raw / "timing-004.jsonl")
    timing.write(rounds(p.groups[0], 4, TIMES))
    timing.write(Crash(RoundsTask(p.groups[0], (), 3), "killed"))  # a later attempt
    state = collector.poll()
    assert set(state.rounds[p.groups[0].name]) == {4}
    assert state.crashed[p.groups[0].name] == {4: "killed"}
    assert state.processes() == {4}
    assert collector.poll() is state  # nothing new: same state, nothing re-read


def test_speedups_are_against_the_first_declared_baseline_that_ran() -> None:
    """2026-12-01: a public sqrtm as published (NumPy 1's np.float_) failed everywhere
    beside its mended copy, and every speedup of the layer was left unmeasured."""
    from harness.collect import compared_baseline

    impls = ("published", "mended", "torch")
    info = replace(
        INFO,
        baselines=("published", "mended"),
        sources={i: i for i in impls},
        roles={"published": "baseline", "mended": "baseline", "torch": "native"},
        forms=dict.fromkeys(impls, "eager"),
    )
    p = Plan(RunConfig(), ("toy",), plan().groups, {"toy": impls}, (), {"toy": info})
    state = State()
    assert compared_baseline(info.baselines, state, "toy") == "published"  # nothing ran yet
    failed = PhaseSetup("error", error="AttributeError: np.float_ was removed")
    for variant in p.variants:
        ran = variant.impl != "published"
        phases = {
            ph: PhaseSetup("ok", loops=10, estimate_s=1e-4) if ran else failed
            for ph in ("forward", "backward", "step")
        }
        state.add(SetupDone(variant, phases))
    assert compared_baseline(info.baselines, state, "toy") == "mended"
    assert compared_baseline(info.baselines, state, "other") == "published"
    # both ran: the first declared, as always
    state.add(SetupDone(p.variants[0], {"forward": PhaseSetup("ok", loops=1, estimate_s=1e-4)}))
    assert p.variants[0].impl == "published"
    assert compared_baseline(info.baselines, state, "toy") == "published"


def test_a_layer_that_narrows_the_dtype_is_held_to_its_own_tolerance_in_the_rows() -> None:
    """The rtol column says what each row was held to: float32's 1e-4 for a baseline
    that returns float32 in a float64 run (harness.deviation.judged_dtype)."""
    groups = (Group("toy", (("n", 8),), dtype="float64"),)
    p = Plan(RunConfig(dtypes=("float64",)), ("toy",), groups, {"toy": IMPLS}, (), {"toy": INFO})
    state = State()
    for done in setup_events(p):
        if done.variant.impl == "numpy":
            fwd = replace(done.phases["forward"], returns="float32 for float64 input (likely ...)")
            done = replace(done, phases={**done.phases, "forward": fwd})
        state.add(done)
    out = build_outputs(state, p).frame
    rtol = out[out["phase"] == "forward"].groupby("impl")["rtol"].first()
    assert rtol["numpy"] == pytest.approx(1e-4) and rtol["torch"] == pytest.approx(1e-9), rtol
