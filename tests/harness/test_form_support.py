"""Forms that cannot be built are ``unsupported`` with a cause naming the defect, never
failed points; a form is timed only where it is what it claims to be (TorchScript saved
and loaded back, ``<baseline>-compile`` taken whole); checks that disagree say which
one rules. No worker processes: the worker's setup runs in this process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from harness.capabilities import (
    NO_GRAPH,
    _Outcome,
    _reconcile,
    compile_not_timed,
    format_capabilities,
    native_compile_not_timed,
)
from harness.case import PHASES
from harness.collect import Builder, State
from harness.config import RunConfig
from harness.errors import FormUnsupported, describe, one_line
from harness.forms import build, dynamo_cause, onnx_cause, script_cause, script_saved
from harness.plan import make_plan
from harness.protocol import EventLog, Job, SetupDone
from harness.registry import Registry
from harness.worker import Worker

FIXTURE = str(Path(__file__).parents[1] / "fixtures" / "bessel_layers.py")


def _layer(name: str) -> Any:
    return Registry.default((FIXTURE,)).get(name)


def _build(layer_name: str, impl: str) -> Any:
    layer = _layer(layer_name)
    point = layer.smallest_point()
    inputs = layer.make(point, torch.float32, "cpu", 0)
    return build(layer, layer.implementation(impl), point, inputs, "float32", 1, "cpu", [True])


# -- causes in one line ------------------------------------------------------------------


def _exporter_error(op: str = "prims.bessel_i1e", values: str = "real") -> Exception:
    """The chain torch 2.13's dynamo exporter raises for torch.special.i1e (abridged)."""
    dispatch = RuntimeError(
        f"No ONNX function found for <OpOverload(op='{op}', overload='default')>. "
        f"Failure message: No decompositions registered for the {values}-valued input"
    )
    node = RuntimeError("Error when translating node %bessel_i1e : [num_users=1] = ...")
    node.__cause__ = dispatch
    top = RuntimeError(
        "Failed to convert the exported program to an ONNX model. \x1b[96mThis is step "
        "3/3\x1b[0m of exporting the model to ONNX. Next steps:\n- If there is a missing "
        "ONNX function, implement it and register it to the registry."
    )
    top.__cause__ = node
    return top


def test_the_onnx_cause_names_the_op_the_exporter_lacks() -> None:
    assert onnx_cause(_exporter_error()) == "no ONNX function for prims.bessel_i1e"
    # 2026-12-01: an einsum of rfft outputs (dynoNet's FFT filter); a real einsum exports
    assert onnx_cause(_exporter_error("aten.einsum", "complex")) == (
        "no ONNX function for aten.einsum on complex tensors (ONNX has no complex types)"
    )
    plain = RuntimeError("Failed to export the model with torch.export. Next steps:\n- x")
    plain.__cause__ = ValueError("Could not guard on data-dependent expression Eq(u0, 1)")
    assert onnx_cause(plain) == (
        "ONNX export failed: Could not guard on data-dependent expression Eq(u0, 1)"
    )


_COLUMN_ZERO = """
import torch


class F(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
# a comment at column 0, as a public interp1d Function has them
        return x * 2


class M(torch.nn.Module):
    def forward(self, x):
        return F.apply(x)
"""


def test_a_source_torchscript_cannot_parse_is_named_with_its_place(tmp_path: Path) -> None:
    import importlib.util

    path = tmp_path / "column_zero.py"
    path.write_text(_COLUMN_ZERO)
    spec = importlib.util.spec_from_file_location("column_zero", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SyntaxError) as caught:
        torch.jit.script(module.M())
    cause = script_cause(caught.value, "script")
    assert cause.startswith(
        "TorchScript cannot script it: Python rejects the source of F.forward (column_zero.py:6)"
    ), cause
    assert "a line at column 0 inside the def" in cause


def test_a_cut_line_ends_a_sentence_never_a_dangling_announcement() -> None:
    # the footnote seen cut mid-sentence: "... This is step 3/3 ... Next steps:"
    text = describe(_exporter_error())
    assert text.endswith("of exporting the model to ONNX.") and "Next steps" not in text
    long = "The first sentence says what went wrong, in words. " + "word " * 80
    assert one_line(long, 100) == "The first sentence says what went wrong, in words."
    clause = "a cause that goes on, and on with a clause, " + "x" * 200
    assert one_line(clause, 60) == "a cause that goes on, and on with a clause…"
    assert "\n" not in one_line("line one\nline two") and one_line("") == ""
    # gradcheck's first line ends in a comma announcing the Jacobians: no dangling comma
    assert one_line("Jacobian mismatch for output 0 with respect to input 0,\nnumerical:") == (
        "Jacobian mismatch for output 0 with respect to input 0"
    )
    # an abbreviation's period ends no sentence (Dynamo's cause in the example report
    # was cut to "... either a Python builtin (e.g.")
    dynamo = (
        "Attempted to call function marked as skipped (Dynamo does not know how to trace "
        "the builtin `_convolve2d.` This function is either a Python builtin (e.g. "
        + "an extension, "
        * 20
    )
    cut = one_line(dynamo, 240)
    assert not cut.rstrip(")").endswith(("(e.g.", "e.g")) and cut.endswith("…))"), cut
    assert len(cut) <= 240 and cut.count("(") == cut.count(")")
    # a cut inside parentheses closes them (TorchScript's attribute error, 2026-12-02)
    attribute = (
        "Module 'M' has no attribute 'kernel3D' (This attribute exists on the Python "
        "module, but we failed to convert Python type: 'numpy.ndarray' to a TorchScript "
        "type. Its type was inferred; try adding a type annotation for the attribute.)"
    )
    cut = one_line(attribute, 170)
    assert cut.endswith("to a TorchScript type.)") and len(cut) <= 170, cut
    assert one_line("It failed, i.e. badly. " + "word " * 60, 60) == "It failed, i.e. badly."
    # a first line that only announces the next one is completed by it (TorchScript)
    schema = "\n\nFunction.apply(Tensor cls, ...) -> Tensor 0:\nExpected a Tensor for 'cls'.\n:\n"
    assert (
        one_line(schema)
        == "Function.apply(Tensor cls, ...) -> Tensor 0: Expected a Tensor for 'cls'."
    )
    # a first line that announces a source frame ends with where, and the marked line
    varargs = (
        "Compiled functions can't take variable number of arguments or use keyword-only "
        'arguments with defaults:\n  File "/x/torch/autograd/function.py", line 610\n'
        "    @classmethod\n    def apply(cls, *args, **kwargs):\n"
        "                           ~~~~~~~ <--- HERE\n        def bind(func):\n"
    )
    assert one_line(varargs) == (
        "Compiled functions can't take variable number of arguments or use keyword-only "
        "arguments with defaults at function.py:610: def apply(cls, *args, **kwargs):"
    )


def test_script_and_dynamo_causes_name_the_python_call_and_the_line() -> None:
    saved = RuntimeError(
        "\nCould not export Python function call '_Double'. Remove calls to Python "
        "functions before export.\n  File ..."
    )
    assert script_cause(saved, "save") == (
        "TorchScript cannot save it: it calls back into Python (_Double)"
    )
    graph_break = RuntimeError(
        "Data-dependent branching\n  Explanation: Detected data-dependent branching\n\n"
        'from user code:\n   File "/x/ive.py", line 19, in forward\n    if np.isclose(v, 0):\n'
    )
    assert (
        dynamo_cause(graph_break) == "Data-dependent branching at ive.py:19: if np.isclose(v, 0):"
    )


def test_a_builtin_declared_as_it_is_is_told_to_be_wrapped_for_torchscript() -> None:
    """``native("torch", torch.relu)``: torch.jit.script takes functions with source."""
    with pytest.raises(FormUnsupported) as raised:
        script_saved(torch.relu)
    assert str(raised.value) == (
        "TorchScript cannot script the built-in torch.relu declared as it is: declare a def "
        "that calls it (def f(x): return torch.relu(x))"
    )


# -- the worker records unsupported forms; no failed points --------------------------------


def _setup_rows(tmp_path: Path, impls: tuple[str, ...]) -> tuple[list[SetupDone], Any, Any]:
    """Set up every variant of ``i0e_small`` at n=8 in this process; the rows built from
    the events, and what the runner would list as failed."""
    config = RunConfig(
        layers=("i0e_small",), impls=impls, layers_from=(FIXTURE,), grid={"n": ("8",)}
    )
    plan = make_plan(Registry.default((FIXTURE,)), config)
    raw = tmp_path / "setup.jsonl"
    worker = Worker(Job("setup", (), str(raw), min_time=1e-4, layers_from=(FIXTURE,), memory=False))
    for variant in plan.variants:
        worker.setup(variant)
    worker.log.close()
    events = [e for e in EventLog.read(raw) if isinstance(e, SetupDone)]
    state = State()
    for event in events:
        state.add(event)
    written = Builder(plan).write(state, tmp_path / "out")
    import pandas as pd

    frame = pd.read_csv(tmp_path / "out" / "results.csv")
    return events, frame, written


def test_a_form_that_cannot_be_built_is_unsupported_in_every_phase_and_never_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.worker

    real_build = harness.worker.build

    def export_fails(layer: Any, impl: Any, *args: Any) -> Any:
        if impl.form == "onnxruntime":  # what the exporter says for torch.special.i0e
            raise FormUnsupported("no ONNX function for prims.bessel_i0e")
        return real_build(layer, impl, *args)

    monkeypatch.setattr(harness.worker, "build", export_fails)
    events, frame, written = _setup_rows(tmp_path, ("scipy", "onnxruntime"))
    ort = next(e for e in events if e.variant.impl == "onnxruntime")
    assert set(ort.phases) == {p for p in PHASES if p in Job("setup", (), "").phases}
    assert {ps.status for ps in ort.phases.values()} == {"unsupported"}
    assert {ps.error for ps in ort.phases.values()} == {"no ONNX function for prims.bessel_i0e"}
    rows = frame[frame["impl"] == "onnxruntime"]
    assert len(rows) and set(rows["status"]) == {"unsupported"}
    assert rows["error"].str.contains("prims.bessel_i0e").all()
    assert not [line for line in written.failed if "/onnxruntime/" in line]


def test_a_torchscript_form_that_cannot_be_saved_is_not_timed(tmp_path: Path) -> None:
    with pytest.raises(FormUnsupported, match=r"calls back into Python \(_Double\)"):
        _build("i0e_small", "pycall-torchscript")
    _, frame, written = _setup_rows(tmp_path, ("scipy", "pycall-torchscript"))
    rows = frame[frame["impl"] == "pycall-torchscript"]
    assert len(rows) and set(rows["status"]) == {"unsupported"}
    assert rows["error"].str.startswith("TorchScript cannot save it").all()
    assert not [line for line in written.failed if "/pycall-torchscript/" in line]


def test_the_torchscript_form_timed_is_the_module_loaded_back() -> None:
    built = _build("ive", "torchscript")
    # torch.jit.load gives a RecursiveScriptModule; torch.jit.script of a function
    # gives a ScriptFunction, which is not what a deployment runs
    assert isinstance(built.fn, torch.jit.RecursiveScriptModule)
    assert "save and load" in built.oneoff_what
    z = torch.rand(16) + 0.1
    torch.testing.assert_close(built.fn(z), torch.special.i1e(z))


# -- <baseline>-compile only where fullgraph takes it whole --------------------------------


def _caps(**status: tuple[str, Any]) -> list[dict[str, Any]]:
    return [
        {"layer": "ive", "impl": "scipy", "role": "baseline", "check": check,
         "status": st, "reason": reason, "graph_breaks": breaks}
        for check, (st, reason, breaks) in status.items()
    ]  # fmt: skip


def test_baseline_compile_is_timed_only_where_fullgraph_compiles_it() -> None:
    # the contradiction seen: compile ok with 0 graph breaks, fullgraph unsupported
    rows = _caps(
        compile=("ok", None, 0),
        compile_fullgraph=("unsupported", "Unsupported: ndarray.dtype", None),
    )
    why = compile_not_timed(rows, "scipy")
    assert why is not None and "fullgraph=True" in why and "ndarray.dtype" in why
    assert "fullgraph rules" in why
    whole = _caps(compile=("ok", None, 0), compile_fullgraph=("ok", None, None))
    assert compile_not_timed(whole, "scipy") is None
    wrong = _caps(compile=("ok", None, 0), compile_fullgraph=("wrong", "output differs", None))
    assert "disagrees with eager" in (compile_not_timed(wrong, "scipy") or "")
    # folders without the fullgraph check: the compile row decides, as before
    assert "breaks the graph" in (compile_not_timed(_caps(compile=("ok", None, 2)), "scipy") or "")
    assert compile_not_timed(_caps(compile=("ok", None, 0)), "scipy") is None
    # code that fails as declared: nothing was compiled, and the cause says so
    broken = _caps(
        compile_fullgraph=("unsupported", "eager call failed: AttributeError: np.int", None)
    )
    assert compile_not_timed(broken, "scipy") == (
        "not timed: scipy itself fails (eager call failed: AttributeError: np.int)"
    )


def test_a_trace_that_calls_back_into_python_reads_runs_not_saved() -> None:
    why = "the trace calls back into Python (IveFunction): it runs here but cannot be saved"
    text = format_capabilities(_caps(trace=("ok", why, None), compile=("ok", None, 0)))
    assert "✓ runs, not saved[^1]" in text and "| ✓ |" in text, text


def test_checks_that_disagree_say_that_fullgraph_rules() -> None:
    fails = _Outcome("unsupported", "Unsupported: ndarray.dtype")
    out = _reconcile({"compile": _Outcome("ok", None, 0), "compile_fullgraph": fails})
    assert out["compile"].status == "ok" and out["compile"].graph_breaks == 0
    assert "fullgraph rules" in (out["compile"].reason or "")
    assert "does not take it whole" in (out["compile"].reason or "")
    whole = _reconcile({"compile": _Outcome("ok", None, 2), "compile_fullgraph": _Outcome("ok")})
    assert "takes it whole" in (whole["compile"].reason or "")
    agree = {"compile": _Outcome("ok", None, 2), "compile_fullgraph": fails}
    assert _reconcile(agree) == agree
    # the matrix renders the ruling, also for rows stored before reconciling
    rows = _caps(
        compile=("ok", None, 0),
        compile_fullgraph=("unsupported", "Unsupported: ndarray.dtype", None),
    )
    text = format_capabilities(rows)
    assert "✓ ran, not whole" in text and "fullgraph rules" in text
    assert "| ✓ |" not in text.replace("✓ ran, not whole", "")


# -- the real exporters and compiler (slow) -------------------------------------------


@pytest.mark.slow
def test_onnx_export_of_i0e_is_unsupported_naming_the_op_and_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(FormUnsupported) as first:
        _build("i0e_small", "onnxruntime")
    assert first.value.cause == (
        "no ONNX function for prims.bessel_i0e; nor does the TorchScript-based exporter take it"
    )
    # the failure is cached: the next point does not export again to learn it
    metas = list((tmp_path / "cache").rglob("meta.json"))
    assert len(metas) == 1 and "prims.bessel_i0e" in metas[0].read_text()
    with pytest.raises(FormUnsupported, match="prims.bessel_i0e"):
        _build("i0e_small", "onnxruntime")


@pytest.mark.slow
def test_baseline_compile_that_fullgraph_cannot_take_is_unsupported() -> None:
    with pytest.raises(FormUnsupported) as caught:
        _build("ive", "scipy-compile")
    cause = caught.value.cause
    assert cause.startswith("torch.compile(fullgraph=True) cannot take scipy whole: ")
    assert "bessel_layers.py:" in cause and "\n" not in cause


def test_a_natives_compile_form_is_not_timed_where_dynamo_captured_no_graph() -> None:
    # 2026-12-03: a dense solve after to_dense read "compile ×2.84", all of it eager
    def caps(reason: str | None, breaks: int | None) -> list[dict[str, Any]]:
        return [{"layer": "s", "impl": "torch", "role": "native", "check": "compile",
                 "status": "ok", "reason": reason, "graph_breaks": breaks}]  # fmt: skip

    why = native_compile_not_timed(caps(f"{NO_GRAPH}: all of it runs as Python", None), "torch")
    assert why is not None and why.startswith(f"not timed: {NO_GRAPH} of torch"), why
    assert "eager torch's under another name" in why
    # compiled in pieces, or whole: what torch.compile gives its user, timed
    assert native_compile_not_timed(caps(None, 3), "torch") is None
    assert native_compile_not_timed(caps(None, 0), "torch") is None
    assert native_compile_not_timed([], "torch") is None  # no matrix row: timed


def test_a_dynamo_cause_of_a_few_hundred_characters_is_stored_whole() -> None:
    # 2026-12-03: stored at 200 characters, a footnote ended "... `isMaskedArray` in file…"
    from harness.capabilities import _reason

    cause = (
        "Unsupported: Attempted to call function marked as skipped (Dynamo developers have "
        "intentionally marked that the function `isMaskedArray` in file "
        "`/venv/lib/python3.11/site-packages/numpy/ma/core.py` should not be traced, so "
        "the call runs as Python)"
    )
    assert len(cause) > 200 and _reason(cause) == cause
