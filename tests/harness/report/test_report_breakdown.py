"""The report's "Where the time goes" (harness.report.breakdown) on crafted rows: no
torch, no worker, no results folder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest

from harness.report.breakdown import breakdown_figure, pairs, profiled_cases, section_lines
from harness.report.decide import GradientFindings, LayerDecision, SettingDecision, Verdict

PARTS: dict[tuple[str, str, int], list[tuple[str, str, float]]] = {
    ("numpy", "step", 8): [
        ("numpy.fft.rfft2", "numpy", 0.30),
        ("Python between calls", "python", 0.25),
        ("torch.Tensor.new", "bridge", 0.21),
        ("autograd Function dispatch", "python", 0.10),
        ("torch.Tensor.numpy", "bridge", 0.08),
        ("numpy.ndarray.astype", "bridge", 0.06),
    ],
    ("torch", "step", 8): [
        ("Python between calls", "python", 0.55),
        ("aten::_fft_r2c", "kernel", 0.45),
    ],
    ("numpy", "step", 1024): [
        ("numpy.fft.rfft2", "numpy", 0.955),
        ("torch.Tensor.new", "bridge", 0.045),
    ],
    ("torch", "step", 1024): [
        ("aten::convolution_backward", "kernel", 0.83),
        ("aten::mkldnn_convolution", "kernel", 0.156),
        ("autograd engine", "other", 0.014),
    ],
    ("numpy", "forward", 8): [
        ("numpy.fft.rfft2", "numpy", 0.7),
        ("Python between calls", "python", 0.3),
    ],
    ("torch", "forward", 8): [("aten::_fft_r2c", "kernel", 1.0)],
}
FAULTS = {("torch", "step", 1024): 512.0, ("numpy", "step", 1024): 10.0}


def _case(impl: str, phase: str, n: int) -> str:
    return f"fft/{impl}/n={n}/float32/t2/cpu/glibc/{phase}"


def _common(impl: str, phase: str, n: int) -> dict[str, Any]:
    return {
        "case": _case(impl, phase, n),
        "layer": "fft",
        "impl": impl,
        "role": "baseline" if impl == "numpy" else "native",
        "point": f"n={n}",
        "size": float(n),
        "dtype": "float32",
        "threads": 2,
        "device": "cpu",
        "allocator": "glibc",
        "phase": phase,
    }


def _breakdown_rows(
    cases: Mapping[tuple[str, str, int], list[tuple[str, str, float]]] = PARTS,
) -> list[dict[str, Any]]:
    """breakdown.csv's rows of ``cases``: (impl, phase, n) -> its parts."""
    rows = []
    for (impl, phase, n), parts in cases.items():
        profiled = 1e-5 * n
        for part, kind, share in parts:
            rows.append(
                {
                    **_common(impl, phase, n),
                    "part": part,
                    "kind": kind,
                    "seconds": share * profiled,
                    "share": share,
                    "calls": 1,
                    "tool": "torch.profiler",
                    "profiled_s": profiled,
                    "raw_s": 1.5 * profiled,
                    "plain_s": 0.8 * profiled,
                    "minor_faults": FAULTS.get((impl, phase, n), 0.0),
                }
            )
    return rows


def _layer_rows() -> list[dict[str, Any]]:
    rows = []
    for impl in ("numpy", "torch", "torchscript"):
        for phase in ("step", "forward"):
            for n in (8, 1024):
                rows.append({**_common(impl, phase, n), "status": "ok", "median_s": 1e-5 * n})
    return rows


def _decision(inference_native: str = "torchscript") -> LayerDecision:
    def setting(native: str, use: str) -> SettingDecision:
        return SettingDecision(
            label="",
            context="float32, 2 threads, cpu",
            kind="keep",
            threshold=None,
            baseline="numpy",
            native=native,
            metric="step" if use == "training" else "forward",
            use=use,
        )

    return LayerDecision(
        layer="fft",
        kind="keep",
        threshold=None,
        size_axis="n",
        settings=(setting("torch", "training"),),
        gradient=GradientFindings(fix=False),
        inference=Verdict("inference", "port", None, (setting(inference_native, "inference"),)),
    )


def _text(rows: Sequence[Mapping[str, Any]] | None = None, **kw: Any) -> str:
    """The section's text for breakdown ``rows`` (default: ``PARTS``'s)."""
    found = _breakdown_rows() if rows is None else rows
    return "\n".join(section_lines(found, _layer_rows(), _decision(), **kw))


def test_fewer_faults_than_one_a_call_are_not_printed_as_zero_nor_divided_by() -> None:
    """2026-12-02: "3,224 minor page faults per call against 0 for torch's (×9673)",
    where torch took 0.33 a call."""
    rows = [
        {**r, "minor_faults": 1 / 3} if r.get("minor_faults") == 10.0 else r
        for r in _breakdown_rows()
    ]
    text = _text(rows)
    assert "takes 512 minor page faults per call against 0.33 for numpy's:" in text, text
    assert "(×" not in text.split("minor page faults per call against 0.33")[1][:20]


def test_a_loop_of_calls_too_short_to_time_is_said_to_be_understated() -> None:
    """2026-12-02: a public cross-correlation's 2,044 np.dot calls a forward (60% of it,
    measured apart) each cost less than the tools' estimate, counted as 0, and the
    report read "99% in the layer's own code"."""
    rows = _breakdown_rows()
    dot = {**rows[0], "part": "numpy.dot", "kind": "numpy", "seconds": 0.0, "share": 0.0}
    text = _text([*rows, {**dot, "calls": 2044}])
    assert "makes calls too short for the tools to time, each under their estimated cost " in text
    assert "per call: numpy.dot (2,044 calls). They count as 0 here" in text
    assert "too short for the tools" not in _text([*rows, {**dot, "calls": 3}])


def test_the_section_explains_the_verdict_with_named_parts() -> None:
    text = _text(plot="plots/fft-breakdown.png")
    assert text.startswith("### Where the time goes (fft)")
    # bridge and Python overhead of the baseline at the smallest size, its parts named
    assert (
        "At n=8, 70% of numpy's training step is bridge and Python overhead "
        "(Python between calls 25%, torch.Tensor.new 21%, autograd Function dispatch 10%, …): "
        "porting to torch gains what removing them would — try that cheaper fix first."
    ) in text
    # the candidate's dominant kernel at the largest size
    assert "At n=1024 torch's training step spends 83% in aten::convolution_backward" in text
    # NumPy's own share at the largest size
    assert "At n=1024 numpy's training step spends 96% in numpy.fft.rfft2 (numpy)." in text
    # page faults that differ a lot
    assert "takes 512 minor page faults per call against 10 for numpy's (×51)" in text
    # the plot, the table of top parts with shares, every gap stated
    assert "![fft: where the time of one call goes" in text and "(plots/fft-breakdown.png)" in text
    assert "| phase | impl | n | top parts (share) | by kind |" in text
    assert "aten::convolution_backward 83%, aten::mkldnn_convolution 16%" in text
    assert "Reconciliation:" in text and "+25%" in text  # profiled = 1.25 × plain
    # the inference verdict's best candidate was not profiled: a stand-in, said so
    assert "torchscript, the best candidate, was not profiled" in text
    assert "shown: torch" in text


def test_a_cast_in_the_bridge_is_a_cheaper_fix_before_a_port() -> None:
    rows = _breakdown_rows()
    for row in rows:  # make the cast the baseline's largest part at n=8
        if row["impl"] == "numpy" and row["phase"] == "step" and row["size"] == 8.0:
            row["share"] = {"numpy.ndarray.astype": 0.5, "numpy.fft.rfft2": 0.1}.get(
                row["part"], row["share"] / 2
            )
    text = _text(rows)
    assert "Cheaper fix to try before a port: at n=8 the bridge is" in text
    assert "the dtype cast (numpy.ndarray.astype) could go by keeping the input's dtype" in text
    assert "where it only converts the input's dtype and back" in text  # 2026-12-03: bool masks


def test_a_baseline_whose_time_is_its_own_code_is_not_told_a_port_removes_overhead() -> None:
    """A numba layer (the public soft-DTW, 2026-11-30): the Function's bodies hold the
    time at the largest size, which no tool sees into. Before the ``code`` kind this read
    as 90% "bridge and Python overhead: porting gains what removing them would"."""
    numba = [
        ("SoftDTW.forward", "code", 0.62),
        ("SoftDTW.backward", "code", 0.25),
        ("Python between calls", "python", 0.09),
        ("autograd Function dispatch", "python", 0.01),
        ("aten::mul", "kernel", 0.03),
    ]
    rows = _breakdown_rows({**PARTS, ("numpy", "step", 1024): numba})
    text = _text(rows)
    assert (
        "At n=1024, 87% of numpy's training step runs in the layer's own code "
        "(SoftDTW.forward 62%, SoftDTW.backward 25%), outside every NumPy/SciPy, bridge "
        "and torch call the profilers see"
    ) in text
    # it keeps its share at the largest size: work, not the Python of a few statements
    assert "That is the baseline's work, not overhead: a port to torch pays off only" in text
    assert "At n=1024, 10% of numpy's" not in text and "n=1024 numpy's training step is" not in text
    assert "*code* (the layer's own code" in text


def test_a_garbage_collection_in_the_layer_is_the_first_thing_to_fix() -> None:
    """2026-12-01: a public sparse solver ran ``gc.collect()`` in its forward and its
    backward, 62% of its step at every size, read as "the layer's own code ... the
    baseline's work, not overhead"."""
    collecting = [
        ("gc.collect", "python", 0.62),
        ("SparseSolver.forward", "code", 0.20),
        ("numpy.fft.rfft2", "numpy", 0.18),
    ]
    rows = _breakdown_rows({**PARTS, ("numpy", "step", 1024): collecting})
    text = _text(rows)
    assert (
        "At n=1024, `gc.collect()` alone takes 62% of numpy's training step: a full garbage "
        "collection every call, whose cost grows with every Python object the process "
        "holds"
    ) in text
    assert "Take it out of the layer's forward and backward before weighing a port" in text
    # a runtime call under a tenth of the call is left to the overhead sentence
    rows = _breakdown_rows(
        {**PARTS, ("numpy", "step", 1024): [*collecting[1:], ("gc.collect", "python", 0.05)]}
    )
    assert "alone takes" not in _text(rows)


def test_a_short_function_body_is_named_with_the_overhead() -> None:
    """At n=8 the Function's body is 30% of the forward, and at the largest size it
    holds none of it: Python statements, overhead a port removes (the seed's
    ScipyConv2dFunction.forward, k=3: 62% at n=8, 2.0% at n=1024, 2026-11-30)."""
    statements = [
        ("numpy.fft.rfft2", "numpy", 0.45),
        ("BadFFTFunction.forward", "code", 0.30),
        ("Python between calls", "python", 0.25),
    ]
    rows = _breakdown_rows({**PARTS, ("numpy", "forward", 8): statements})
    text = _text(rows)
    assert (
        "At n=8, 55% of numpy's forward is bridge and Python overhead "
        "(BadFFTFunction.forward's own Python 30%, Python between calls 25%)"
    ) in text
    assert "runs in the layer's own code" not in text


def test_pairs_follow_the_verdicts() -> None:
    cases = profiled_cases(_breakdown_rows(), _layer_rows(), "n")
    assert {c.timed_s for c in cases} >= {8e-5, 1024e-5}
    found = pairs(cases, _layer_rows(), _decision("torch"))
    assert [(p.use, p.phase, p.baseline, p.candidate, p.stand_in) for p in found] == [
        ("training", "step", "numpy", "torch", None),
        ("inference", "forward", "numpy", "torch", None),
    ]
    assert [s for s, _, _ in found[0].sizes] == [8.0, 1024.0]
    assert [s for s, _, _ in found[1].sizes] == [8.0]


def test_a_verdict_without_a_candidate_is_headed_by_the_baseline_alone() -> None:
    # 2026-12-01: no candidate's step ran (a complex SVD), and the bullet read
    # "Training (scipy vs None)"
    d = _decision()
    training = replace(d.settings[0], native=None)
    rows = [r for r in _layer_rows() if r["impl"] == "numpy"]
    profiled = [r for r in _breakdown_rows() if r["impl"] == "numpy"]
    text = "\n".join(
        section_lines(profiled, rows, replace(d, settings=(training,), inference=None))
    )
    assert "- **Training (numpy):** At n=8" in text and "vs None" not in text


def test_nothing_profiled_gives_no_section() -> None:
    assert section_lines([], _layer_rows(), _decision()) == []


def test_the_figure_stacks_kinds_per_case() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    fig = breakdown_figure(_breakdown_rows(), _layer_rows(), _decision("torch"))
    assert fig is not None
    try:
        axes = fig.get_axes()
        assert len(axes) == 2  # training and inference
        heights: Mapping[float, float] = {}
        for patch in axes[0].patches:
            x = round(patch.get_x() + patch.get_width() / 2)  # type: ignore[attr-defined]
            heights = {**heights, x: heights.get(x, 0.0) + patch.get_height()}  # type: ignore[attr-defined]
        assert len(heights) == 4 and all(h == pytest.approx(100) for h in heights.values())
    finally:
        plt.close(fig)


def test_a_single_call_far_from_the_loop_is_not_blamed_on_the_tools() -> None:
    """2026-11-30: a profile taken under a foreign load, served from the cache to a
    quiet run: profiled 31.8 ms, plain 32 ms, timed 406 µs, read as tracing overhead."""
    from harness.report.breakdown import Profiled, reconcile_lines

    def case(profiled: float, plain: float, timed: float) -> Profiled:
        return Profiled(
            "scipy", "baseline", "forward", 256.0, (), (), profiled, None, plain, None, timed
        )

    (text,) = reconcile_lines([case(31.8e-3, 32e-3, 406e-6)])
    assert "profiled 31.8 ms, plain 32 ms, timed 406 µs" in text
    assert "not in the table above" not in text
    # a case the table leaves out is said to be (2026-12-01: dynoNet's "torch's forward")
    table = {((), "numpy", "forward", 256.0): "", ((), "compile", "forward", 256.0): ""}
    (text,) = reconcile_lines([case(31.8e-3, 32e-3, 406e-6)], shown=table)
    assert "scipy's forward at size 256 (profiled, but not in the table above) (" in text
    assert "so the tools are not the cause" in text and "tracing costs more" not in text
    # the range is the table's rows': a row left out widens it no more, and is named
    # only where its gap is the largest (2026-12-02: "−99% to +7714%" beside ±40% rows)
    # (rows, not implementations: scipy's row at another size is not in the table)
    shown = Profiled("torch", "native", "forward", 256.0, (), (), 1.1e-3, None, 1e-3, None, 1e-3)
    other = Profiled("torch", "native", "forward", 64.0, (), (), 13e-6, None, 10e-6, None, 10e-6)
    table = {((), "torch", "forward", 256.0): "v=1"}
    (text,) = reconcile_lines([shown, other, case(90e-6, 20e-6, 20e-6)], shown=table)
    assert "lie +10% to +10% from the same calls" in text, text
    assert "scipy's forward at size 256 (profiled, but not in the table above) (+350%" in text
    (text,) = reconcile_lines([shown, case(1.05e-3, 1e-3, 1e-3)], shown=table)
    assert "scipy" not in text and "+5%" not in text, text
    # the largest gap in a table of several settings names its setting
    assert "torch's forward at size 256 (v=1) (+10%" in text, text
    # where the tools do cost: profiled far from the plain call too
    (text,) = reconcile_lines([case(90e-6, 20e-6, 20e-6)])
    assert "Python-level tracing costs more than its estimate" in text
    assert "without the tools, slower than both" not in text
    # a plain call slower than both others is the outlier, said so (2026-12-02: torch's
    # step ran 16 ms plain beside 486 µs profiled and 211 µs timed)
    (text,) = reconcile_lines([case(486e-6, 16e-3, 211e-6)])
    assert (
        "scipy's forward at size 256 ran 16 ms without the tools, slower than both its "
        "profiled and its timed call"
    ) in text, text


def test_time_between_the_calls_seen_that_keeps_its_share_is_work_not_overhead() -> None:
    """2026-12-03: scipy.spatial.cKDTree's build and query (methods of a compiled class,
    which the Python hook does not see) were 84% of a Chamfer distance's forward
    measured apart, and read "88% ... is bridge and Python overhead"."""
    from harness.report.breakdown import Pair, Profiled, explain_pair

    def kdtree(size: float, between: float) -> Profiled:
        parts = (
            ("Python between calls", "python", between * 1e-3, between, None),
            ("numpy.asarray", "bridge", (1 - between) * 1e-3, 1 - between, 2),
        )
        return Profiled("kdtree", "baseline", "forward", size, (), parts, 1e-3, None, None, None)

    pair = Pair("", "inference", "forward", "kdtree", None, ((256.0, kdtree(256.0, 0.85), None),
                (4096.0, kdtree(4096.0, 0.88), None)))  # fmt: skip
    text = " ".join(explain_pair(pair, "n"))
    assert "At n=4096, 88% of kdtree's forward runs between the calls the tools see" in text, text
    assert "not overhead" in text and "bridge and Python overhead" not in text, text
    # where its share falls as the data grow, it is Python overhead, as before
    pair = Pair("", "inference", "forward", "kdtree", None, ((256.0, kdtree(256.0, 0.85), None),
                (4096.0, kdtree(4096.0, 0.55), None)))  # fmt: skip
    assert "bridge and Python overhead" in " ".join(explain_pair(pair, "n"))


def test_page_faults_are_the_timed_processes_where_the_case_was_timed() -> None:
    # the profiling worker imports the compile toolchain, whose imports raise glibc's
    # mmap threshold: its eager calls reuse heap that a user's loop maps afresh (conv2d's
    # 1-thread step at n=512: 7 faults a call against 8,128, 2026-12-03); the timed
    # processes start with a fresh process's heap (harness.own_process.Zygote)
    timed_case = _case("torch", "step", 1024)
    layer_rows = [
        {**r, "minor_faults": 8128.0} if r["case"] == timed_case else r for r in _layer_rows()
    ]
    found = profiled_cases(_breakdown_rows(), layer_rows, "n")
    by_case = {(c.impl, c.phase, c.size): c for c in found}
    assert by_case[("torch", "step", 1024.0)].faults == 8128.0  # not the profile's 512
    # no timed figure for a case: the profiling pass's own count stays
    assert by_case[("numpy", "step", 1024.0)].faults == FAULTS[("numpy", "step", 1024)]
