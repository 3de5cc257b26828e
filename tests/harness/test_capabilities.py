"""The capability matrix: what each declared implementation survives, on real layers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import harness.capabilities as capabilities
from harness import Axis, ConfigError, Layer, Point, baseline, native
from harness.capabilities import (
    CHECK_LABELS,
    CHECKS,
    capability_frame,
    capability_matrix,
    format_capabilities,
)
from harness.frame import CAPABILITY_COLUMNS, build_table
from harness_layers import CONV2D, FFT

#: Every check but the two that call torch.compile (those tests are marked slow).
FAST_CHECKS = [c for c in CHECKS if not c.startswith("compile")]
COMPILE_CHECKS = ["compile_fullgraph", "compile"]

Rows = dict[tuple[str, str], dict[str, Any]]


def _by_cell(rows: list[dict[str, Any]]) -> Rows:
    return {(row["impl"], row["check"]): row for row in rows}


@pytest.fixture(scope="module")
def fft_rows() -> list[dict[str, Any]]:
    return capability_matrix(FFT, checks=FAST_CHECKS)


@pytest.fixture(scope="module")
def conv_rows() -> list[dict[str, Any]]:
    return capability_matrix(CONV2D, checks=FAST_CHECKS)


@pytest.fixture(scope="module")
def compile_cells() -> dict[str, Rows]:
    return {
        layer.name: _by_cell(capability_matrix(layer, checks=COMPILE_CHECKS))
        for layer in (FFT, CONV2D)
    }


# -- tiny layers of our own, for behaviours the built-in ones do not show ---------------


def _square_inputs(point: Point, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    n = int(point["n"])
    return (torch.randn(n, n, generator=gen, dtype=torch.float64),)


def numpy_abs(x: torch.Tensor) -> torch.Tensor:
    """NumPy called directly, with no autograd.Function around it."""
    return torch.from_numpy(np.abs(x.detach().numpy()))


def torch_abs(x: torch.Tensor) -> torch.Tensor:
    return x.abs()


def broken(x: torch.Tensor) -> torch.Tensor:
    raise ValueError("this layer is broken\nsecond line")


class Scale(torch.nn.Module):
    """A native candidate declared as a module: its weight comes from the inputs."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n, n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight + 1.0


def _scale_inputs(point: Point, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    n = int(point["n"])
    return (
        torch.randn(n, n, generator=gen, dtype=torch.float64),
        torch.randn(n, n, generator=gen, dtype=torch.float64),
    )


ABS = Layer(
    name="abs",
    description="elementwise |x|",
    axes=(Axis("n", (4,)),),
    inputs={"x": 2},
    make_inputs=_square_inputs,
    reference=torch_abs,
    implementations=(baseline("numpy", numpy_abs), native("torch", torch_abs)),
)

BROKEN = Layer(
    name="broken",
    description="raises",
    axes=(Axis("n", (4,)),),
    inputs={"x": 2},
    make_inputs=_square_inputs,
    reference=torch_abs,
    implementations=(baseline("broken", broken),),
)

SCALE = Layer(
    name="scale",
    description="x * w + 1 with a learnable w",
    axes=(Axis("n", (4,)),),
    inputs={"x": 2, "weight": 2},
    make_inputs=_scale_inputs,
    reference=lambda x, w: x * w + 1.0,
    implementations=(
        baseline("numpy", lambda x, w: torch.from_numpy(x.numpy() * w.numpy() + 1.0)),
        native("module", module=lambda p: Scale(int(p["n"]))),
    ),
)


# -- rows -------------------------------------------------------------------------------


@pytest.mark.slow  # fft_rows/conv_rows export to ONNX through dynamo: seconds each
def test_rows_have_exactly_the_documented_columns(fft_rows: list[dict[str, Any]]) -> None:
    assert all(list(row) == list(CAPABILITY_COLUMNS) for row in fft_rows)
    assert [(r["impl"], r["check"]) for r in fft_rows] == [
        (impl.name, check) for impl in FFT.implementations for check in FAST_CHECKS
    ]
    roles = {r["impl"]: r["role"] for r in fft_rows}
    assert roles == {"numpy": "baseline", "torch": "native"}
    assert {r["status"] for r in fft_rows} <= {"ok", "unsupported", "wrong"}
    assert all(r["graph_breaks"] is None for r in fft_rows)  # compile check only


@pytest.mark.slow  # fft_rows/conv_rows export to ONNX through dynamo: seconds each
@pytest.mark.parametrize("layer", [FFT, CONV2D], ids=lambda layer: layer.name)
def test_native_torch_is_portable(
    layer: Layer, fft_rows: list[dict[str, Any]], conv_rows: list[dict[str, Any]]
) -> None:
    cells = _by_cell(fft_rows if layer is FFT else conv_rows)
    for check in ("script_save", "trace", "onnx_dynamo"):
        row = cells["torch", check]
        assert (row["status"], row["reason"]) == ("ok", None), check


@pytest.mark.slow  # fft_rows/conv_rows export to ONNX through dynamo: seconds each
def test_torch_fft_has_no_legacy_onnx_export(fft_rows: list[dict[str, Any]]) -> None:
    row = _by_cell(fft_rows)["torch", "onnx_legacy"]
    assert row["status"] == "unsupported"
    assert row["reason"].startswith("UnsupportedOperatorError: ")
    assert "fft_rfft2" in row["reason"]


@pytest.mark.slow  # fft_rows/conv_rows export to ONNX through dynamo: seconds each
def test_torch_conv2d_exports_with_both_onnx_exporters(conv_rows: list[dict[str, Any]]) -> None:
    cells = _by_cell(conv_rows)
    assert cells["torch", "onnx_legacy"]["status"] == "ok"
    assert cells["torch", "onnx_dynamo"]["status"] == "ok"


@pytest.mark.slow  # fft_rows/conv_rows export to ONNX through dynamo: seconds each
@pytest.mark.parametrize(
    ("layer", "impl"), [(FFT, "numpy"), (CONV2D, "scipy")], ids=["fft", "conv2d"]
)
def test_seed_baselines_neither_script_nor_export(
    layer: Layer, impl: str, fft_rows: list[dict[str, Any]], conv_rows: list[dict[str, Any]]
) -> None:
    cells = _by_cell(fft_rows if layer is FFT else conv_rows)
    for check in ("script_save", "onnx_dynamo"):
        row = cells[impl, check]
        assert row["status"] == "unsupported", check
        # "ExceptionType: first line", short and on one line
        name, _, message = row["reason"].partition(": ")
        assert name and message and name[0].isupper(), row["reason"]
        assert "\n" not in row["reason"] and len(row["reason"]) <= 200
    assert ".numpy()" in cells[impl, "onnx_dynamo"]["reason"]


@pytest.mark.slow  # fft_rows/conv_rows export to ONNX through dynamo: seconds each
@pytest.mark.parametrize(
    ("layer", "impl"), [(FFT, "numpy"), (CONV2D, "scipy")], ids=["fft", "conv2d"]
)
def test_legacy_onnx_of_a_seed_baseline_is_a_constant(
    layer: Layer, impl: str, fft_rows: list[dict[str, Any]], conv_rows: list[dict[str, Any]]
) -> None:
    row = _by_cell(fft_rows if layer is FFT else conv_rows)[impl, "onnx_legacy"]
    assert row["status"] == "wrong"
    assert "second input differs from eager (max rel err" in row["reason"]
    assert "no inputs" in row["reason"]


@pytest.mark.slow  # fft_rows/conv_rows export to ONNX through dynamo: seconds each
@pytest.mark.parametrize(
    ("layer", "impl", "function"),
    [(FFT, "numpy", "BadFFTFunction"), (CONV2D, "scipy", "ScipyConv2dFunction")],
    ids=["fft", "conv2d"],
)
def test_trace_of_a_seed_baseline_runs_through_a_python_op(
    layer: Layer,
    impl: str,
    function: str,
    fft_rows: list[dict[str, Any]],
    conv_rows: list[dict[str, Any]],
) -> None:
    # torch.jit.trace records an autograd.Function as a prim::PythonOp that calls the
    # NumPy code again on every input: right answers, but not a saveable trace.
    row = _by_cell(fft_rows if layer is FFT else conv_rows)[impl, "trace"]
    assert row["status"] == "ok"
    assert function in row["reason"] and "cannot be saved" in row["reason"]


def test_numpy_outside_an_autograd_function_is_baked_into_traces() -> None:
    cells = _by_cell(capability_matrix(ABS, checks=["trace", "onnx_legacy"]))
    for check in ("trace", "onnx_legacy"):
        row = cells["numpy", check]
        assert row["status"] == "wrong", check
        assert row["reason"].startswith("output on a second input differs from eager")
        assert cells["torch", check]["status"] == "ok"


def test_a_module_implementation_gets_its_parameters_from_the_inputs() -> None:
    # B's weight differs from A's: a check that kept A's weight would be 'wrong'.
    cells = _by_cell(capability_matrix(SCALE, checks=FAST_CHECKS))
    for check in FAST_CHECKS:
        assert cells["module", check]["status"] == "ok", (check, cells["module", check])
    assert cells["numpy", "trace"]["status"] == "wrong"


class Masked(torch.nn.Module):
    """A module of two tensors, ``forward(x, mask)``, with a weight of its own."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n, n))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x * self.weight * mask


MASKED = Layer(
    name="masked",
    description="x * w * mask with a learnable w, the mask an argument of forward",
    axes=(Axis("n", (4,)),),
    inputs={"x": 2, "mask": 2, "weight": 2},
    make_inputs=lambda p, g: (*_scale_inputs(p, g), torch.rand(4, 4, generator=g).double()),
    reference=lambda x, m, w: x * w * m,
    implementations=(
        baseline("numpy", lambda x, m, w: torch.from_numpy(x.numpy() * w.numpy() * m.numpy())),
        native("module", module=lambda p: Masked(int(p["n"]))),
    ),
)


def test_a_module_of_several_tensors_gets_them_in_every_check() -> None:
    # the second point's mask and weight differ from the first's: a check that kept
    # either would be 'wrong'
    cells = _by_cell(capability_matrix(MASKED, checks=FAST_CHECKS))
    for check in FAST_CHECKS:
        assert cells["module", check]["status"] == "ok", (check, cells["module", check])


def test_a_failing_layer_is_recorded_not_raised() -> None:
    rows = capability_matrix(BROKEN)
    assert [r["check"] for r in rows] == list(CHECKS)
    assert {r["status"] for r in rows} == {"unsupported"}
    assert rows[0]["reason"] == "eager call failed: ValueError: this layer is broken"


def test_one_failing_check_does_not_stop_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(subject: object) -> None:
        raise KeyError("boom")

    monkeypatch.setitem(capabilities._CHECK_FUNCTIONS, "script_save", explode)
    rows = capability_matrix(ABS, ["torch"], checks=["script_save", "trace"])
    assert [(r["check"], r["status"]) for r in rows] == [
        ("script_save", "unsupported"),
        ("trace", "ok"),
    ]
    assert rows[0]["reason"] == "KeyError: 'boom'"


def test_checks_print_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    # the TorchScript-based exporter prints the graph from C++ when it fails
    rows = capability_matrix(FFT, ["torch"], checks=["onnx_legacy"])
    assert rows[0]["status"] == "unsupported"
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_bad_requests_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="not declared"):
        capability_matrix(FFT, ["torchscript"])  # a derived form
    with pytest.raises(ConfigError, match="unknown capability checks"):
        capability_matrix(FFT, checks=["pickle"])
    with pytest.raises(ConfigError):
        capability_matrix(CONV2D, point={"n": 3, "k": 5})
    with pytest.raises(ConfigError, match="no checked layer declares"):
        capability_frame([FFT], ["scipy"])


def test_frame_is_typed_and_keeps_only_the_requested_implementations() -> None:
    frame = capability_frame([ABS, CONV2D], ["torch"], checks=["trace"])
    assert list(frame.columns) == list(CAPABILITY_COLUMNS)
    assert str(frame["graph_breaks"].dtype) == "Int64"
    assert str(frame["status"].dtype) == "string"
    assert list(zip(frame["layer"], frame["impl"], frame["status"], strict=True)) == [
        ("abs", "torch", "ok"),
        ("conv2d", "torch", "ok"),
    ]


# -- torch.compile ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["fft", "conv2d"])
def test_native_torch_compiles_without_graph_breaks(
    layer: str, compile_cells: dict[str, Rows]
) -> None:
    cells = compile_cells[layer]
    assert cells["torch", "compile_fullgraph"]["status"] == "ok"
    assert cells["torch", "compile"]["status"] == "ok"
    assert cells["torch", "compile"]["graph_breaks"] == 0
    assert cells["torch", "compile_fullgraph"]["graph_breaks"] is None


@pytest.mark.slow
def test_seed_baselines_do_not_compile_as_one_graph(compile_cells: dict[str, Rows]) -> None:
    fft, conv = compile_cells["fft"], compile_cells["conv2d"]
    assert fft["numpy", "compile_fullgraph"]["status"] == "unsupported"
    assert conv["scipy", "compile_fullgraph"]["status"] == "unsupported"
    assert "scipy" in conv["scipy", "compile_fullgraph"]["reason"]
    # SciPy is left to Python between graphs; the NumPy FFT fails under fake tensors
    assert conv["scipy", "compile"]["status"] == "ok"
    assert conv["scipy", "compile"]["graph_breaks"] >= 1
    assert fft["numpy", "compile"]["status"] == "unsupported"


# -- the Markdown formatter -------------------------------------------------------------


def _frame(rows: list[tuple[str, str, str, str, str, str | None, int | None]]) -> pd.DataFrame:
    return build_table(
        (dict(zip(CAPABILITY_COLUMNS, row, strict=True)) for row in rows), CAPABILITY_COLUMNS
    )


def test_format_capabilities_cells_and_footnotes() -> None:
    frame = _frame(
        [
            (
                "fft",
                "numpy",
                "baseline",
                "script_save",
                "unsupported",
                "NotSupportedError: no",
                None,
            ),
            ("fft", "numpy", "baseline", "compile", "ok", None, 2),
            ("fft", "numpy", "baseline", "onnx_legacy", "wrong", "a | b", None),
            ("fft", "torch", "native", "script_save", "ok", None, None),
            ("fft", "torch", "native", "compile", "ok", None, 1),
            ("fft", "torch", "native", "onnx_legacy", "ok", "a note", None),
            ("conv2d", "torch", "native", "compile", "ok", None, 0),
        ]
    )
    text = format_capabilities(frame)
    assert text.index("### fft") < text.index("### conv2d")
    header = "| implementation | TorchScript (script and save) | torch.compile | ONNX export (TorchScript-based) |"
    assert header in text
    assert "| numpy (baseline) | ✗ unsupported[^1] | ✓ (2 graph breaks) | ✗ wrong[^2] |" in text
    assert "| torch | ✓ | ✓ (1 graph break) | ✓[^3] |" in text
    # the footnotes follow the last table, once each
    assert text.rstrip().endswith("[^1]: NotSupportedError: no\n[^2]: a | b\n[^3]: a note")
    assert "| torch | ✓ |" in text.split("### conv2d")[1]  # 0 breaks: plain ✓
    assert format_capabilities(frame.iloc[0:0]) == "No capability checks.\n"


def test_format_capabilities_with_the_callers_footnotes() -> None:
    class Notes:
        def __init__(self) -> None:
            self.texts: list[str] = []

        def ref(self, text: str) -> str:
            self.texts.append(text)
            return f"[^r{len(self.texts)}]"

    rows = [
        {"layer": "lay", "impl": "torch", "role": "native", "check": "onnx_dynamo", "status": "ok"},
        {"layer": "lay", "impl": "numpy", "role": "baseline", "check": "trace", "status": "wrong", "reason": "why"},
    ]  # fmt: skip
    notes = Notes()
    text = format_capabilities(rows, notes, headings=False)
    assert notes.texts == ["why"]
    assert text == (
        "| implementation | torch.jit.trace | ONNX export (dynamo) |\n"
        "| --- | --- | --- |\n"
        "| numpy (baseline) | ✗ wrong[^r1] | — |\n"
        "| torch | — | ✓ |\n"
    )


@pytest.mark.slow  # fft_rows/conv_rows export to ONNX through dynamo: seconds each
def test_format_capabilities_of_real_rows(
    fft_rows: list[dict[str, Any]], conv_rows: list[dict[str, Any]]
) -> None:
    text = format_capabilities(build_table(fft_rows + conv_rows, CAPABILITY_COLUMNS))
    header = "| implementation | " + " | ".join(CHECK_LABELS[c] for c in FAST_CHECKS) + " |"
    assert text.count(header) == 2
    fft, conv = text.split("### conv2d")
    assert (
        "| numpy (baseline) | ✗ unsupported[^1] | ✓ runs, not saved[^2] | ✗ unsupported[^3] | ✗ wrong[^4] |"
        in fft
    )
    assert "| torch | ✓ | ✓ | ✓ | ✗ unsupported[^5] |" in fft
    assert "[^5]: UnsupportedOperatorError: " in conv  # footnotes come after the last table
    assert "| scipy (baseline) | ✗ unsupported[^" in conv
    assert "| torch | ✓ | ✓ | ✓ | ✓ |" in conv


@pytest.mark.slow  # two torch.compile calls
def test_compile_fullgraph_takes_the_backward_too() -> None:
    """A NumPy Function whose forward compiles whole but whose backward does not
    (``ndarray.dtype``) is not taken whole: the training form would fail to build
    (2026-11-30: the matrix said ✓ beside a form that was not built)."""
    from pathlib import Path

    from harness.registry import load_layers_from

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    (lookup,) = load_layers_from(str(fixtures / "index_layers.py"))
    cells = _by_cell(capability_matrix(lookup, checks=["compile_fullgraph"]))
    numpy = cells[("numpy", "compile_fullgraph")]
    assert numpy["status"] == "unsupported"
    assert numpy["reason"].startswith("in the backward: Unsupported")
    assert "ndarray.dtype" in numpy["reason"]
    assert cells[("torch", "compile_fullgraph")]["status"] == "ok"


class _NumpyDropout(torch.autograd.Function):
    """Dropout with its mask from NumPy's global generator (a random layer)."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[no-untyped-def]
        mask = torch.from_numpy((np.random.rand(*x.shape) > 0.5).astype(np.float32) * 2)
        ctx.mask = mask
        return x * mask

    @staticmethod
    def backward(ctx, g):  # type: ignore[no-untyped-def]
        return g * ctx.mask


def _dropout_layer(function: type[torch.autograd.Function]) -> Layer:
    return Layer(
        name="dropout",
        description="",
        axes=(Axis("n", (64,)),),
        inputs={"x": 1},
        make_inputs=lambda p, g: (torch.randn(int(p["n"]), generator=g, dtype=torch.float64),),
        reference=lambda x: x,
        implementations=(baseline("numpy", function), native("torch", lambda x: x)),
    )


def test_a_random_layer_is_judged_with_its_generators_seeded() -> None:
    """Each check's calls and the eager reference's start from the same seed: the trace
    of a NumPy dropout reproduces eager's draw, and is not 'wrong'."""
    layer = _dropout_layer(_NumpyDropout)
    (row,) = capability_matrix(layer, ["numpy"], checks=["trace"])
    assert row["status"] == "ok", row["reason"]


class _NumpyDropoutOfItsDtype(torch.autograd.Function):
    """As a user wrote it: the mask cast to ``x.numpy().dtype``, which Dynamo cannot
    trace, so that it captures no graph at all."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[no-untyped-def]
        mask = (np.random.rand(*x.shape) > 0.1).astype(x.numpy().dtype) / 0.9
        ctx.mask = mask
        return torch.from_numpy(x.detach().numpy() * mask)

    @staticmethod
    def backward(ctx, g):  # type: ignore[no-untyped-def]
        return torch.from_numpy(g.numpy() * ctx.mask)


@pytest.mark.slow  # torch._dynamo.explain and torch.compile
def test_a_function_dynamo_captures_nothing_of_counts_no_graph_breaks() -> None:
    """Dynamo captures no graph of this dropout: explain then counts -1 breaks
    (graphs - 1), which the report printed as "breaks the graph -1 time(s)"."""
    layer = _dropout_layer(_NumpyDropoutOfItsDtype)
    (row,) = capability_matrix(layer, ["numpy"], checks=["compile"])
    assert row["graph_breaks"] is None or row["graph_breaks"] >= 0
    assert "Dynamo captured no graph" in row["reason"]


def test_a_function_of_arrays_is_told_why_torchscript_cannot_take_it() -> None:
    """2026-11-30: POT's sinkhorn, declared arrays=True, read "NotSupportedError: ... at
    layer.py:180: def call(*tensors: torch.Tensor)": the harness's wrapper, not its code."""
    import numpy as np
    import torch

    from harness import Axis, Layer, baseline
    from harness.capabilities import capability_matrix

    def np_exp(x: np.ndarray) -> np.ndarray:
        return np.exp(x)

    layer = Layer(
        name="exp_arrays",
        description="exp of an array",
        axes=(Axis("n", (8,), "elements"),),
        inputs={"x": 1},
        make_inputs=lambda p, g: (torch.randn(int(p["n"]), generator=g, dtype=torch.float64),),
        reference=torch.exp,
        implementations=(baseline("numpy", np_exp, arrays=True, backward=False),),
    )
    (row,) = capability_matrix(layer, checks=["script_save"])
    assert row["status"] == "unsupported"
    assert row["reason"] == (
        "TorchScript cannot script it: a function of NumPy arrays (arrays=True) runs NumPy, "
        "and TorchScript compiles torch code only"
    )


def test_a_layer_random_by_its_own_generator_is_not_called_wrong() -> None:
    """2026-11-30: propack's SVD, random by a generator of its own, read "torch.compile
    ... output differs from eager (max rel err 2)": eager differs from itself."""
    import numpy as np
    import torch

    from harness import Axis, Layer, baseline
    from harness.capabilities import capability_matrix

    def noisy(x: torch.Tensor) -> torch.Tensor:
        draw = np.random.default_rng().random(tuple(x.shape))  # unseeded: its own
        return x + torch.from_numpy(draw).to(x.dtype)

    def steady(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    def layer(fn: object) -> Layer:
        return Layer(
            name="noise",
            description="x plus noise",
            axes=(Axis("n", (8,), "elements"),),
            inputs={"x": 1},
            make_inputs=lambda p, g: (torch.randn(int(p["n"]), generator=g, dtype=torch.float64),),
            reference=lambda x: x,
            implementations=(baseline("numpy", fn, backward=False),),  # type: ignore[arg-type]
        )

    (row,) = capability_matrix(layer(noisy), checks=["trace"])
    assert row["status"] == "ok"
    assert row["reason"].startswith("it runs; its output is not held against eager")
    (row,) = capability_matrix(layer(steady), checks=["trace"])
    assert row["status"] == "ok" and not row["reason"]


def test_a_fake_tensor_failure_says_what_failed_not_its_arguments() -> None:
    explanation = (
        "Dynamo failed to run FX node with fake tensors: call_function <Wrapped function "
        "<original empty_like>>(*(FakeTensor(..., size=(3, 4)),), **{'shape': (3, 2, 3)}): "
        "got RuntimeError(\"shape '[3, 2, 3]' is invalid for input of size 12\")"
    )
    assert capabilities._fake_call(explanation) == (
        "empty_like failed on fake tensors: "
        "RuntimeError(\"shape '[3, 2, 3]' is invalid for input of size 12\")"
    )
    assert capabilities._fake_call("something else") == "something else"


def test_a_graph_break_says_where_in_the_traced_code_it_happened() -> None:
    import traceback

    exc = RuntimeError("Unsupported ndarray attribute access")
    exc.real_stack = traceback.StackSummary.from_list(  # type: ignore[attr-defined]
        [
            ("/venv/lib/python3.11/site-packages/torch/_dynamo/external_utils.py", 69, "inner", ""),
            ("/home/me/expm_layers.py", 19, "forward", ""),
            ("/venv/lib/python3.11/site-packages/scipy/linalg/_matfuncs.py", 323, "expm", ""),
        ]
    )
    text = capabilities._describe(exc)
    assert text.endswith("at scipy/linalg/_matfuncs.py:323 (expm), from expm_layers.py:19"), text
    # the harness's own frames (a module's binding) are not the user's line
    import harness.layer

    exc.real_stack = traceback.StackSummary.from_list(  # type: ignore[attr-defined]
        [
            (harness.layer.__file__, 339, "call", ""),
            ("/home/me/hausdorff.py", 52, "forward", ""),
            ("/venv/lib/python3.11/site-packages/scipy/ndimage/_filters.py", 1254, "f", ""),
        ]
    )
    assert capabilities._describe(exc).endswith("(f), from hausdorff.py:52")
    assert capabilities._describe(RuntimeError("no stack")) == "RuntimeError: no stack"


def test_a_form_is_not_called_wrong_for_randomness_one_repeat_missed() -> None:
    """2026-12-02: ARPACK's eigenvector sign (its own generator) agreed in 5 calls of 6;
    the one repeat the matrix makes agreed, and compile and trace read "wrong"."""
    import torch

    calls = []

    def sometimes(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return -x if len(calls) == 2 else x  # its second call since the repeat

    x = torch.ones(3)
    subject = capabilities._Subject(sometimes, None, ("x",), (x,), (x,), x, x)
    outcome = capabilities._verdict(subject, lambda inputs: -inputs[0])
    assert outcome.status == "ok", outcome
    assert outcome.reason is not None and outcome.reason.startswith("it runs; its output")
    steady = capabilities._Subject(lambda t: t, None, ("x",), (x,), (x,), x, x)
    assert capabilities._verdict(steady, lambda inputs: -inputs[0]).status == "wrong"
