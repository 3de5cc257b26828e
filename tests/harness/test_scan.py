"""``python -m harness scan``: aggregation of profile events (pure, on a synthetic
profile), the layer file it writes, verdicts weighed by share, the command's handling
of bad input, and one end-to-end scan of ``examples/scan/`` (slow)."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.cli import main
from harness.report.scan_share import savings, scan_section, share_lines
from harness.scan import (
    FunctionScan,
    FunctionSource,
    RawEvent,
    Scan,
    Totals,
    aggregate,
    function_sentence,
    public_name,
    scan_from_json,
    scan_markdown,
    scan_to_json,
    script_is_guarded,
)
from harness.scan_layers import infer_grid, layer_file

ROOT = Path(__file__).resolve().parents[2]


# -- a synthetic profile ---------------------------------------------------------------


def _ev(
    name: str, start: int, end: int, thread: int = 1, shapes: Any = (), dtypes: Any = ()
) -> RawEvent:
    return RawEvent(name, thread, start, end, tuple(tuple(s) for s in shapes), tuple(dtypes))


# Times in ns. Thread 1: a native op, three ConvFn forwards at two shapes, an FftFn
# forward with another custom Function nested in it, ConvFn's backward node inside the
# engine's wrapper. Thread 2: one native op at the same time.
EVENTS = [
    _ev("aten::conv2d", 0, 100),
    _ev("aten::convolution", 10, 90),
    _ev("ConvFn", 100, 400, shapes=[(8, 8), (3, 3)], dtypes=["float", "float"]),
    _ev("aten::detach", 110, 120),
    _ev("ConvFn", 400, 600, shapes=[(16, 16), (3, 3)], dtypes=["float", "float"]),
    _ev("ConvFn", 600, 700, shapes=[(8, 8), (3, 3)], dtypes=["float", "float"]),
    _ev("FftFn", 700, 800, shapes=[(8, 8)], dtypes=["double"]),
    _ev("InnerFn", 710, 760, shapes=[(8, 8)], dtypes=["double"]),
    _ev("autograd::engine::evaluate_function: ConvFnBackward", 800, 1000),
    _ev("ConvFnBackward", 810, 990, shapes=[(8, 8)], dtypes=["float"]),
    _ev("aten::to", 820, 840),
    _ev("aten::add", 0, 50, thread=2),
]
SOURCES = {
    name: FunctionSource(name, "user.mod", "/x/user/mod.py", 3, ("x", "w"))
    for name in ("ConvFn", "FftFn", "InnerFn", "NeverRan")
}


def test_aggregate_counts_times_shapes_and_shares() -> None:
    functions, totals = aggregate(EVENTS, SOURCES, wall_s=1200e-9)
    by = {f.name: f for f in functions}
    assert set(by) == {"ConvFn", "FftFn", "InnerFn"}  # NeverRan has no event
    conv = by["ConvFn"]
    assert (conv.calls, conv.backward_calls) == (3, 1)
    assert conv.forward_total_s == pytest.approx(600e-9)
    assert conv.forward_self_s == pytest.approx(590e-9)  # the detach is a torch op
    assert conv.backward_total_s == pytest.approx(180e-9)  # the node, not the wrapper
    assert conv.backward_self_s == pytest.approx(160e-9)
    assert conv.seconds == pytest.approx(780e-9)
    assert conv.share == pytest.approx(780 / 1200)
    assert conv.shapes == ((((8, 8), (3, 3)), 2), (((16, 16), (3, 3)), 1))
    assert conv.dtypes == ((("float32", "float32"), 3),)
    assert by["FftFn"].dtypes == ((("float64",), 1),)
    # a Function inside another counts in the outer one only
    assert by["InnerFn"].nested and by["InnerFn"].seconds == 0 and by["InnerFn"].calls == 1
    assert by["FftFn"].seconds == pytest.approx(100e-9) and not by["FftFn"].nested
    assert [f.name for f in functions] == ["ConvFn", "FftFn", "InnerFn"]  # by share
    # busy (top-level) time: 1000 on thread 1, 50 on thread 2
    assert totals.functions_s == pytest.approx(880e-9)
    assert totals.native_s == pytest.approx(170e-9)  # conv2d, the wrapper's rest, add
    assert totals.other_s == pytest.approx(150e-9)
    parts = sum(f.share for f in functions) + (totals.native_s + totals.other_s) / totals.profiled_s
    assert parts == pytest.approx(1.0)


def test_shares_stay_within_one_when_threads_overlap() -> None:
    functions, totals = aggregate(EVENTS, SOURCES, wall_s=500e-9)  # busy 1050 > wall
    assert totals.profiled_s == pytest.approx(1050e-9)
    assert sum(f.share for f in functions) <= 1.0
    assert sum(f.share for f in functions) + totals.native_s / totals.profiled_s == pytest.approx(1)


def test_an_event_that_outlives_its_neighbour_is_not_its_child() -> None:
    events = [_ev("A", 0, 100, shapes=[(2,)], dtypes=["float"]), _ev("aten::x", 50, 150)]
    (a,), totals = aggregate(events, {"A": FunctionSource("A", "m", "f")}, wall_s=150e-9)
    assert a.forward_self_s == pytest.approx(100e-9)
    assert totals.native_s == pytest.approx(100e-9)


def test_public_names_drop_private_modules() -> None:
    import numpy as np

    assert public_name("scipy.signal._signaltools", "correlate2d") == "scipy.signal.correlate2d"
    code = np.fft.rfft2.__wrapped__.__code__ if hasattr(np.fft.rfft2, "__wrapped__") else None
    assert public_name(np.fft.rfft2.__module__, "rfft2", code) == "numpy.fft.rfft2"


def test_guard_detection() -> None:
    assert script_is_guarded('import x\nif __name__ == "__main__":\n    main()\n')
    assert not script_is_guarded("import x\nmain()\n")


# -- formatting ------------------------------------------------------------------------


def _scan(functions: tuple[FunctionScan, ...], **kw: Any) -> Scan:
    return Scan(
        script="/x/train.py",
        argv=("--iters", "3"),
        status="ok",
        totals=Totals(1.0, 1.0, sum(f.seconds for f in functions), 0.3, 0.1),
        functions=functions,
        date="2026-11-29T10:00:00",
        **kw,
    )


def _function(**kw: Any) -> FunctionScan:
    base: dict[str, Any] = dict(
        name="ScipyConv2dFunction",
        module="user.mod",
        file="/x/user/mod.py",
        line=10,
        args=("input", "filter", "bias"),
        calls=30,
        backward_calls=30,
        forward_total_s=0.2,
        forward_self_s=0.18,
        backward_total_s=0.21,
        backward_self_s=0.2,
        seconds=0.41,
        share=0.41,
        shapes=((((64, 64), (3, 3), (1, 1)), 30),),
        dtypes=((("float32", "float32", "float32"), 30),),
        numpy_forward=("torch.Tensor.numpy", "scipy.signal.correlate2d"),
        numpy_backward=("scipy.signal.convolve2d",),
    )
    base.update(kw)
    return FunctionScan(**base)


def test_function_sentence_is_the_issue_s_wording() -> None:
    assert function_sentence(_function()) == (
        "ScipyConv2dFunction: 41% of the profiled time, 30 calls, input [64, 64], [3, 3], "
        "[1, 1] float32, calls scipy.signal.correlate2d, scipy.signal.convolve2d"
    )


def test_json_round_trip_and_markdown() -> None:
    scan = _scan((_function(), _function(name="Other", share=0.05, seconds=0.05)))
    data = json.loads(json.dumps(scan_to_json(scan)))
    assert data["functions"][0]["shapes"] == [[[[64, 64], [3, 3], [1, 1]], 30]]
    back = scan_from_json(data)
    assert back.functions == scan.functions and back.totals == scan.totals
    text = scan_markdown(scan)
    assert text.index("ScipyConv2dFunction: 41%") < text.index("Other: 5.0%")
    assert "| native torch ops | 0.300 | 30% |" in text
    assert "the scan saw shapes and dtypes only, so it draws values at random" in text


# -- the layer file --------------------------------------------------------------------


def test_grid_from_shapes() -> None:
    one_way = infer_grid([(((30, 30), (3, 3)), 4), (((46, 46), (3, 3)), 4)])
    assert (one_way.axis, one_way.values) == ("n", (30, 46))
    assert one_way.positions == ((0, 0), (0, 1))
    fixed = infer_grid([(((8, 1, 28, 28),), 5)])
    assert (fixed.axis, fixed.values, fixed.positions) == ("n", (28,), ((0, 2), (0, 3)))
    two_ways = infer_grid([(((4, 30),), 3), (((8, 46),), 2)])
    assert two_ways.axis == "shape" and two_ways.values == (0, 1)
    assert two_ways.shapes == (((4, 30),), ((8, 46),))


USER_MODULE = """
import numpy as np
import torch


class NumpyScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return torch.from_numpy(np.multiply(x.detach().numpy(), w.detach().numpy()))

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g * w, (g * x).sum(0, keepdim=True)
"""


def test_the_layer_file_loads_and_builds_inputs_at_the_shapes_seen(tmp_path: Path) -> None:
    import torch

    from harness import Layer

    (tmp_path / "userpkg").mkdir()
    (tmp_path / "userpkg" / "__init__.py").write_text("")
    mod = tmp_path / "userpkg" / "ops.py"
    mod.write_text(USER_MODULE)
    f = _function(
        name="NumpyScale",
        module="userpkg.ops",
        file=str(mod),
        args=("x", "w"),
        shapes=((((5, 7), (1, 7)), 6), (((9, 7), (1, 7)), 2)),
        dtypes=((("float32", "float32"), 8),),
        numpy_forward=("numpy.multiply",),
        numpy_backward=(),
    )
    text = layer_file(_scan((f,)), str(tmp_path))
    assert "FILL IN" in text and "NumpyScale_native = None" in text
    # the drawn inputs say they are random, for a layer that needs structured ones
    assert "CHECK: the scan recorded shapes and dtypes, not values" in text
    namespace: dict[str, Any] = {}
    exec(compile(text, str(tmp_path / "layers.py"), "exec"), namespace)
    (layer,) = namespace["LAYERS"]
    assert isinstance(layer, Layer) and layer.name == "NumpyScale"
    assert layer.axes[0].name == "n" and layer.axes[0].default == (5, 9)
    assert dict(layer.inputs) == {"x": 2, "w": 2}
    assert [i.name for i in layer.all_implementations()] == ["numpy", "numpy-compile"]
    x, w = layer.make_inputs({"n": 9}, torch.Generator().manual_seed(0))
    assert (tuple(x.shape), tuple(w.shape)) == ((9, 7), (1, 7))
    out = layer.reference(x, w)  # the baseline itself, in float64
    assert out.dtype == torch.float64 and torch.allclose(out, x * w)


def test_native_proposals_are_comments_never_declared() -> None:
    f = _function(module="__main__", file="/x/train.py")
    text = layer_file(_scan((f,)))
    proposal = next(line for line in text.splitlines() if "scipy.signal.correlate2d ->" in line)
    assert proposal.lstrip().startswith("#") and "F.conv2d" in proposal
    assert "_load_file('/x/train.py', 'ScipyConv2dFunction')" in text
    assert "convolve2d ->" not in text  # backward's calls: autograd derives the native's


# -- verdicts weighed by share -----------------------------------------------------------


def _decision(layer: str, speedups: dict[float, float], kind: str = "port") -> Any:
    points = [
        SimpleNamespace(
            size=s, speedup=k, low=k * 0.9, high=k * 1.1, side="native" if k > 1 else "baseline"
        )
        for s, k in speedups.items()
    ]
    setting = SimpleNamespace(points=points, native="torch", compiled=None)
    return SimpleNamespace(layer=layer, kind=kind, settings=[setting])


def test_savings_follow_amdahl_and_order_the_lines() -> None:
    scan = scan_to_json(
        _scan(
            (
                _function(),  # 41%, at n=64
                _function(name="Small", share=0.2, shapes=((((8, 8),), 3),)),
                _function(name="Slower", share=0.3, shapes=((((8, 8),), 3),)),
            )
        )
    )
    decisions = [
        _decision("Small", {8: 10.0}),
        _decision("ScipyConv2dFunction", {8: 2.0, 64: 5.1, 512: 0.5}),
        _decision("Slower", {8: 0.5}, kind="keep"),
        _decision("NotScanned", {8: 3.0}),
    ]
    undecided = _decision("Noisy", {8: 3.0})
    undecided.settings[0].points[0].side = "noisy"
    decisions.append(undecided)
    scan["functions"].append({**scan["functions"][0], "name": "Noisy", "share": 0.5})
    rows = savings(scan, decisions)
    assert [r.layer for r in rows] == ["ScipyConv2dFunction", "Small", "Slower", "Noisy"]
    assert rows[0].speedup == 5.1  # at the shape the script uses
    assert rows[0].saving == pytest.approx(0.41 * (1 - 1 / 5.1))
    assert rows[2].saving == pytest.approx(-0.3)
    lines = share_lines(scan, decisions)
    text = "\n".join(lines)
    assert (
        "**ScipyConv2dFunction** is 41% of your step; porting it at [64, 64], [3, 3], [1, 1] "
        "(×5.10, torch) saves about 33% of the step" in text
    )
    assert "would cost about 30% more of the step" in text
    assert "NotScanned" not in text
    assert (
        "**Noisy** is 50% of your step; at [64, 64], [3, 3], [1, 1] the speedup of porting is undecided"
        in text
    )
    assert "Porting every layer that gains saves about 51% of the step." in text  # 33% + 18%


def test_scan_section_needs_a_scan_in_the_folder(tmp_path: Path) -> None:
    decisions = [_decision("ScipyConv2dFunction", {64: 2.0})]
    assert scan_section(tmp_path, decisions) == []
    (tmp_path / "scan.json").write_text(json.dumps(scan_to_json(_scan((_function(),)))))
    assert scan_section(tmp_path, decisions)[0] == "## Share of your step"


# -- the command: bad input, failures, no Function, --steps ---------------------------------

SCRIPT_WITH_FUNCTION = """
import sys
import numpy as np
import torch


class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.from_numpy(np.square(np.clip(x.detach().numpy(), -1e3, 1e3)))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.from_numpy(np.dot(np.diag(2 * x.numpy()[0]), g.numpy().T).T)


def main():
    w = torch.nn.Parameter(torch.ones(4))
    opt = torch.optim.SGD([w], lr=0.1) if "--no-opt" not in sys.argv else None
    for _ in range(int(sys.argv[1])):
        loss = Square.apply(w * torch.ones(3, 4)).sum()
        loss.backward()
        if opt is not None:
            opt.step()
    RAISE


if __name__ == "__main__":
    main()
"""


def _script(tmp_path: Path, text: str, name: str = "train.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_missing_script_is_one_line_and_exit_2(tmp_path: Path, capsys: Any) -> None:
    assert main(["scan", "--out", str(tmp_path / "o"), str(tmp_path / "nope.py")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "nope.py" in err[0]
    assert not (tmp_path / "o").exists()


def test_an_existing_out_folder_is_refused(tmp_path: Path, capsys: Any) -> None:
    script = _script(tmp_path, "print('hi')\n")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "x").write_text("")
    assert main(["scan", "--out", str(tmp_path / "o"), str(script)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err


def test_a_script_that_raises_shows_its_own_traceback(tmp_path: Path, capsys: Any) -> None:
    script = _script(tmp_path, SCRIPT_WITH_FUNCTION.replace("RAISE", "raise ValueError('boom')"))
    out = tmp_path / "o"
    assert main(["scan", "--out", str(out), str(script), "2"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert f'File "{script}"' in lines[1]  # the script's frames, not the harness's
    assert "harness" not in err.split("ValueError: boom")[0]
    assert lines[-1].startswith("error: ") and "failed (ValueError: boom)" in lines[-1]
    data = json.loads((out / "scan.json").read_text())
    assert data["status"] == "failed" and data["error"] == "ValueError: boom"
    assert [f["name"] for f in data["functions"]] == ["Square"]  # what ran before
    assert "The script failed" in (out / "scan.md").read_text()
    assert not (out / "layers.py").exists()


def test_a_script_without_custom_function_says_so(tmp_path: Path, capsys: Any) -> None:
    script = _script(tmp_path, "import torch\nprint((torch.ones(3) * 2).sum().item())\n")
    out = tmp_path / "o"
    assert main(["scan", "--out", str(out), str(script)]) == 0
    stdout = capsys.readouterr().out
    assert "6.0" in stdout  # the script ran
    assert "no custom torch.autograd.Function ran" in stdout
    assert json.loads((out / "scan.json").read_text())["functions"] == []
    assert not (out / "layers.py").exists()


@pytest.mark.parametrize(("extra", "signal"), [([], "optimizer.step"), (["--no-opt"], "backward")])
def test_steps_cut_the_loop(tmp_path: Path, capsys: Any, extra: list[str], signal: str) -> None:
    script = _script(tmp_path, SCRIPT_WITH_FUNCTION.replace("RAISE", "raise SystemExit(3)"))
    out = tmp_path / "o"
    assert main(["scan", "--out", str(out), "--steps", "3", str(script), "50", *extra]) == 0
    data = json.loads((out / "scan.json").read_text())
    assert (data["status"], data["steps_counted"], data["step_signal"]) == ("stopped", 3, signal)
    (square,) = data["functions"]
    assert (square["calls"], square["backward_calls"]) == (3, 3)
    assert square["shapes"] == [[[[3, 4]], 3]] and square["dtypes"] == [[["float32"], 3]]
    # np.square is a ufunc: call tracing does not see ufuncs, only the conversions
    assert square["numpy_forward"] == ["torch.Tensor.numpy", "numpy.clip", "torch.from_numpy"]
    assert {"numpy.diag", "numpy.dot"} <= set(square["numpy_backward"])
    assert square["line"] == 7 and square["module"] == "__main__"
    assert 0 < square["share"] <= 1
    total = (
        sum(f["share"] for f in data["functions"])
        + (data["native_s"] + data["other_s"]) / data["profiled_s"]
    )
    assert total == pytest.approx(1.0, abs=1e-6)
    assert "Square: " in capsys.readouterr().out
    # the script is guarded, its Function defined in it: the layer file loads it by path
    namespace: dict[str, Any] = {}
    exec(compile((out / "layers.py").read_text(), str(out / "layers.py"), "exec"), namespace)
    (layer,) = namespace["LAYERS"]
    assert layer.name == "Square" and layer.axes[0].default == (4,)


# -- end to end ------------------------------------------------------------------------


@pytest.mark.slow
def test_scan_of_the_example_then_a_quick_run(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "scan"
    script = ROOT / "examples" / "scan" / "train.py"
    assert main(["scan", "--out", str(out), str(script), "--iters", "4", "--batch", "2"]) == 0
    data = json.loads((out / "scan.json").read_text())
    by = {f["name"]: f for f in data["functions"]}
    assert set(by) == {"ScipyConv2dFunction", "BadFFTFunction"}
    conv, fft = by["ScipyConv2dFunction"], by["BadFFTFunction"]
    assert conv["calls"] == fft["calls"] == 8 and conv["backward_calls"] == 8
    assert sorted(map(tuple, (tuple(map(tuple, s)) for s, _ in conv["shapes"]))) == [
        ((30, 30), (3, 3), (1, 1)),
        ((46, 46), (3, 3), (1, 1)),
    ]
    assert sorted(tuple(s[0]) for s, _ in fft["shapes"]) == [(28, 28), (44, 44)]
    assert "scipy.signal.correlate2d" in conv["numpy_forward"]
    assert "numpy.fft.rfft2" in fft["numpy_forward"]
    shares = sum(f["share"] for f in data["functions"])
    assert 0 < shares <= 1 and math.isclose(
        shares + (data["native_s"] + data["other_s"]) / data["profiled_s"], 1, abs_tol=1e-6
    )
    capsys.readouterr()
    layers = str(out / "layers.py")
    assert main(["layers", "--layers-from", layers]) == 0
    listed = capsys.readouterr().out
    assert "ScipyConv2dFunction" in listed and "impl scipy-compile" in listed
    run = tmp_path / "run"
    code = main(
        [
            "run", "--layers-from", layers, "--layers", "BadFFTFunction", "--grid", "n=28",
            "--profile", "quick", "--budget", "3", "--no-memory", "--quiet",
            "--breakdown", "none", "--out", str(run), "--scan", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    report = (run / "report.md").read_text()
    assert "BadFFTFunction" in report and "verdict" in report.lower()
    assert (run / "scan.json").is_file()


def test_run_refuses_a_missing_scan_before_measuring(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "run"
    code = main(["run", "--layers", "fft", "--out", str(out), "--scan", str(tmp_path / "none")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no scan.json" in err[0]
    assert not out.exists()


def test_an_unguarded_script_is_flagged_in_both_files() -> None:
    scan = _scan((_function(module="__main__", file="/x/train.py"),), guarded=False)
    assert "has no `if __name__" in scan_markdown(scan)
    assert "# WARNING: the script defines Functions" in layer_file(scan)
    guarded = _scan((_function(module="__main__", file="/x/train.py"),))
    assert "WARNING" not in layer_file(guarded)


def test_every_field_of_scan_json_is_documented() -> None:
    from harness.scan import FUNCTION_FIELDS, SCAN_FIELDS

    data = scan_to_json(_scan((_function(),)))
    assert list(data) == list(SCAN_FIELDS)
    assert list(data["functions"][0]) == list(FUNCTION_FIELDS)


def test_a_scan_with_no_function_says_where_numpy_in_plain_functions_hides() -> None:
    """2026-12-03: a SciPy KD-tree inside a plain loss function was 37% of a step,
    filed under "other", and the scan said "nothing to port" alone."""
    from dataclasses import replace

    from harness.scan import Totals

    hidden = replace(_scan(()), totals=Totals(1.0, 1.0, 0.0, 0.35, 0.65))
    text = scan_markdown(hidden)
    assert "nothing to port" in text
    assert "65% of the profiled time is outside every torch op" in text, text
    assert "Declare such a function as a layer of its own" in text
    quiet = replace(_scan(()), totals=Totals(1.0, 1.0, 0.0, 0.9, 0.1))
    assert "outside every torch op" not in scan_markdown(quiet)
