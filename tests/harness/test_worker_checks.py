"""The worker's checks of a layer, run in this process (no worker started)."""

from __future__ import annotations

from pathlib import Path

from harness.protocol import EventLog, GradcheckDone, Job
from harness.worker import Worker

FIXTURE = str(Path(__file__).resolve().parents[1] / "fixtures" / "dtype_layers.py")


def test_a_layer_that_returns_float32_is_not_gradchecked_and_says_why(tmp_path: Path) -> None:
    raw = tmp_path / "checks.jsonl"
    worker = Worker(Job("setup", (), str(raw), layers_from=(FIXTURE,), memory=False))
    worker.gradcheck("exp32", "numpy")
    worker.log.close()
    (done,) = [e for e in EventLog.read(raw) if isinstance(e, GradcheckDone)]
    # not a failure: gradcheck could not judge it (float64 finite differences against a
    # float32 output), and the event names the defect and its likely cause
    assert done.ok is None
    assert done.returns.startswith("float32 for float64 input")
    assert "torch.Tensor(array)" in done.returns
    assert done.error.startswith("not run: it returns float32 for float64 input")


def test_a_gradcheck_too_large_to_build_is_not_run_and_says_why() -> None:
    """NAFNet's LayerNorm2d at its smallest point: a 16,384 x 16,448 Jacobian, past 60 s
    and 2 GiB; it is not run, and the gradients are judged on the reference."""
    import torch

    from harness.checks import MAX_JACOBIAN, checked_gradient

    n = int(MAX_JACOBIAN**0.5) + 2
    x = torch.randn(n, dtype=torch.float64)
    ok, why, returns = checked_gradient(torch.tanh, [x], [True])
    assert ok is None and returns == ""
    assert why.startswith(f"not run: at its smallest point gradcheck would build a {n:,} × {n:,}")
    small = torch.randn(8, dtype=torch.float64)
    assert checked_gradient(torch.tanh, [small], [True]) == (True, "", "")


def test_a_layer_with_an_index_input_is_checked_like_any_other(tmp_path: Path) -> None:
    """2026-11-30: the index reached the reference as float64 and the run stopped."""
    from harness.case import Variant
    from harness.protocol import SetupDone

    raw = tmp_path / "checks.jsonl"
    index = str(Path(FIXTURE).with_name("index_layers.py"))
    worker = Worker(Job("setup", (), str(raw), layers_from=(index,), memory=False))
    worker.gradcheck("lookup", "numpy")
    for impl in ("numpy", "torch"):
        worker.setup(Variant.make("lookup", impl, {"n": 8}))
    worker.log.close()
    events = list(EventLog.read(raw))
    (checked,) = [e for e in events if isinstance(e, GradcheckDone)]
    assert checked.ok is True, checked.error
    assert checked.reference_ok is True, checked.reference_error
    setups = [e for e in events if isinstance(e, SetupDone)]
    assert len(setups) == 2
    for done in setups:
        for phase, info in done.phases.items():
            assert info.status == "ok", (done.variant.impl, phase, info.error)
        (dev,) = done.phases["forward"].deviations
        assert dev["within_tol"], dev
        backward = done.phases["backward"].deviations
        assert [d["tensor"] for d in backward] == ["grad_table"], backward
        assert all(d["within_tol"] for d in backward), backward


def test_a_float64_layer_computed_in_float32_inside_is_not_gradchecked() -> None:
    """2026-11-30: a mesh Laplacian through torch.Tensor(Lx) failed gradcheck in float64
    and read "fix the gradient first"; its formula was right."""
    import torch

    from harness.checks import checked_gradient

    class Float32Inside(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def]
            ctx.save_for_backward(x)
            return torch.exp(x.float()).to(x.dtype)

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            (x,) = ctx.saved_tensors
            return g * torch.exp(x.float()).to(x.dtype)

    x = torch.rand(16, dtype=torch.float64) + 0.5
    ok, why, returns = checked_gradient(Float32Inside.apply, [x], [True], ("x",), torch.exp)
    assert ok is None and returns.startswith("float64 with float32's rounding")
    assert why.startswith("not run: it returns float64 with float32's rounding")
    ok, _, _ = checked_gradient(Float32Inside.apply, [x], [True], ("x",))  # no reference
    assert ok is False


def _inplace_relu() -> type:
    """A NumPy ReLU that clamps its input's own memory (the bug), with a right backward."""
    import numpy as np
    import torch

    class InplaceRelu(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def]
            a = x.detach().numpy()
            np.maximum(a, 0, out=a)
            ctx.save_for_backward(x)
            return torch.from_numpy(a.copy())

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            (x,) = ctx.saved_tensors
            return g * (x > 0)

    return InplaceRelu


def _numpy_dropout() -> type:
    """Dropout with its mask drawn from NumPy's global generator, with a right backward."""
    import numpy as np
    import torch

    class Dropout(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def]
            mask = (np.random.rand(*x.shape) > 0.5) * 2.0
            ctx.mask = torch.from_numpy(mask)
            return x * ctx.mask

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            return g * ctx.mask

    return Dropout


def test_a_layer_that_writes_into_its_input_is_found_and_put_back() -> None:
    import torch

    from harness.checks import checked_gradient, written_inputs

    fn = _inplace_relu().apply
    x = torch.randn(16, dtype=torch.float64)
    y = x.clone()
    before = [x.clone(), None]
    fn(x)
    assert not torch.equal(x, before[0])
    assert written_inputs(("x", "s"), [x, y], before) == ("x",)
    assert torch.equal(x, before[0])  # put back for the calls that follow
    assert written_inputs(("x",), [y], [y.clone()]) == ()
    ok, why, _ = checked_gradient(fn, [x], [True], ("x",))
    assert ok is None and why.startswith("not run: it writes into its input 'x'")
    assert torch.equal(x, before[0])


def _backward_writers() -> tuple[type, type]:
    import importlib.util

    path = Path(FIXTURE).with_name("backward_write_layers.py")
    spec = importlib.util.spec_from_file_location("backward_write_layers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.GradWritingTanh, module.InputWritingSquare


def test_a_backward_writing_into_its_upstream_gradient_corrupts_another_branch() -> None:
    """The harm the report names, shown: autograd hands an addition's gradient to both
    operands as one tensor, so a NumPy backward that scales it in place changes the
    other operand's gradient when it runs first (its node recorded last)."""
    import torch

    grad_writer, _ = _backward_writers()
    x = torch.randn(8, dtype=torch.float64, requires_grad=True)
    c = torch.randn(8, dtype=torch.float64, requires_grad=True)
    other = c * 1.0
    (other + grad_writer.apply(x)).backward(torch.ones(8, dtype=torch.float64))
    assert c.grad is not None and not torch.equal(c.grad, torch.ones(8, dtype=torch.float64))
    # its own gradient is right: only the write is wrong
    x.grad = None
    torch.tanh(x).backward(torch.ones(8, dtype=torch.float64))
    expected = x.grad.clone()
    x.grad = None
    grad_writer.apply(x).backward(torch.ones(8, dtype=torch.float64))
    assert torch.allclose(x.grad, expected)


def test_a_backward_that_writes_is_found_put_back_and_not_gradchecked() -> None:
    import torch

    from harness.checks import backward_writes, checked_gradient

    grad_writer, input_writer = _backward_writers()
    x = torch.randn(16, dtype=torch.float64)
    before = x.clone()
    assert backward_writes(grad_writer.apply, [x], [True], ("x",)) == ("grad_output",)
    assert backward_writes(input_writer.apply, [x], [True], ("x",)) == ("x",)
    assert backward_writes(torch.tanh, [x], [True], ("x",)) == ()
    assert torch.equal(x, before)  # the checks ran on copies
    ok, why, _ = checked_gradient(grad_writer.apply, [x], [True], ("x",))
    assert ok is None
    assert why.startswith("not run: its backward writes into the upstream gradient it is handed")
    ok, why, _ = checked_gradient(input_writer.apply, [x], [True], ("x",))
    assert ok is None and why.startswith("not run: its backward writes into its input 'x'")
    assert checked_gradient(torch.tanh, [x], [True], ("x",)) == (True, "", "")


def test_the_setup_of_a_backward_that_writes_names_what_it_wrote(tmp_path: Path) -> None:
    from harness.case import Variant
    from harness.protocol import SetupDone

    raw = tmp_path / "checks.jsonl"
    layers = str(Path(FIXTURE).with_name("backward_write_layers.py"))
    worker = Worker(Job("setup", (), str(raw), layers_from=(layers,), memory=False))
    for layer in ("tanh_gradwrite", "square_inputwrite"):
        for impl in ("numpy", "torch"):
            worker.setup(Variant.make(layer, impl, {"n": 64}))
    worker.log.close()
    found = {
        (e.variant.layer, e.variant.impl): (e.phases["forward"].writes, e.phases["backward"])
        for e in EventLog.read(raw)
        if isinstance(e, SetupDone)
    }
    assert found[("tanh_gradwrite", "numpy")][0] == ()
    assert found[("tanh_gradwrite", "numpy")][1].writes == ("grad_output",)
    assert found[("square_inputwrite", "numpy")][1].writes == ("x",)
    for layer in ("tanh_gradwrite", "square_inputwrite"):
        assert found[(layer, "torch")][1].writes == ()
        back = found[(layer, "numpy")][1]
        # put back before the deviations were judged and the calls were timed
        assert back.status == "ok", back.error
        assert all(d["within_tol"] for d in back.deviations), back.deviations


def test_a_random_layer_is_found_and_gradchecked_with_its_generators_reseeded() -> None:
    import torch

    from harness.checks import checked_gradient, differs

    fn = _numpy_dropout().apply
    x = torch.randn(64, dtype=torch.float64)
    diff = differs(fn(x), fn(x), "float64")
    assert diff is not None and diff > 0.5
    assert differs(torch.tanh(x), torch.tanh(x), "float64") is None
    # gradcheck of a fixed draw passes the right backward; a doubled one still fails
    assert checked_gradient(fn, [x], [True], ("x",)) == (True, "", "")

    class Doubled(_numpy_dropout()):  # type: ignore[misc]
        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            return 2 * g * ctx.mask

    ok, why, _ = checked_gradient(Doubled.apply, [x], [True], ("x",))
    assert ok is False and "Jacobian mismatch" in why


def test_a_forward_that_raises_is_not_gradchecked_but_a_backward_that_raises_fails() -> None:
    """np.float_ (gone in NumPy 2) in a public sqrtm layer's forward read as a wrong
    gradient (2026-11-30); a backward that raises is a broken gradient."""
    import torch

    from harness.checks import checked_gradient

    def broken(x: torch.Tensor) -> torch.Tensor:
        raise AttributeError("`np.float_` was removed in the NumPy 2.0 release.")

    x = torch.randn(4, dtype=torch.float64)
    ok, why, _ = checked_gradient(broken, [x], [True], ("x",))
    assert ok is None and why == (
        "not run: its forward raises AttributeError: `np.float_` was removed in the NumPy "
        "2.0 release."
    )

    class NoBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def]
            return x.clone()

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            raise ValueError("odd width")

    ok, why, _ = checked_gradient(NoBackward.apply, [x], [True], ("x",))
    assert ok is False and "ValueError: odd width" in why

    # a forward that fails at one of gradcheck's perturbed inputs (an iterative solver
    # that does not converge there) is no wrong gradient either (2026-11-30)
    calls = []

    def flaky(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) > 4:
            raise RuntimeError("did not converge within kmax=17 iterations")
        return x * 2

    ok, why, _ = checked_gradient(flaky, [x], [True], ("x",))
    assert ok is None and why == (
        "not run to the end: its forward raises at an input gradcheck perturbs by 1e-6 "
        "(RuntimeError: did not converge within kmax=17 iterations), so gradcheck cannot "
        "judge its gradient"
    )


def test_a_reference_that_reads_part_of_its_input_fails_gradcheck(tmp_path: Path) -> None:
    """A public SciPy sqrtm Function against an eigh reference (2026-11-30): SciPy's
    gradient (a Sylvester equation) passes gradcheck; eigh's is of another function of
    the full matrix, and gradcheck of the reference says so."""
    raw = tmp_path / "checks.jsonl"
    structured = str(Path(FIXTURE).with_name("structured_layers.py"))
    worker = Worker(Job("setup", (), str(raw), layers_from=(structured,), memory=False))
    worker.gradcheck("sqrtm", "scipy")
    worker.log.close()
    (done,) = [e for e in EventLog.read(raw) if isinstance(e, GradcheckDone)]
    assert done.ok is True, done.error
    assert done.reference_ok is False
    assert "Jacobian mismatch" in done.reference_error


_SOMETIMES_LAYER = """
import torch
from harness import Axis, Layer, baseline, native

CALLS = []


def sometimes(x):
    CALLS.append(1)
    # off the reference's sign, but now and then (its own generator, as ARPACK's
    # eigenvector sign): the setup's one repeat agrees, later calls do not
    return x.clone() if len(CALLS) % 3 == 0 else -x


LAYERS = [
    Layer(
        name="sometimes",
        description="x, its sign drawn by a generator of its own",
        axes=(Axis("n", (8,)),),
        inputs={"x": 1},
        make_inputs=lambda p, g: (torch.randn(int(p["n"]), generator=g),),
        reference=lambda x: x,
        implementations=(baseline("numpy", sometimes, backward=False), native("torch", lambda x: x)),
    )
]
"""


def test_outputs_off_the_reference_are_looked_at_again_for_randomness(tmp_path: Path) -> None:
    """2026-12-02: ARPACK's eigenvector sign agreed in 5 calls of 6; the setup's single
    repeat agreed in one run, and the outputs read wrong at n=64 and 256 where the
    layer is random."""
    from harness.case import Variant
    from harness.protocol import SetupDone

    layers = tmp_path / "sometimes_layers.py"
    layers.write_text(_SOMETIMES_LAYER)
    raw = tmp_path / "checks.jsonl"
    worker = Worker(Job("setup", (), str(raw), layers_from=(str(layers),), memory=False))
    worker.setup(Variant.make("sometimes", "numpy", {"n": 8}))
    worker.log.close()
    (done,) = [e for e in EventLog.read(raw) if isinstance(e, SetupDone)]
    assert done.phases["forward"].random is not None, done.phases["forward"]


def test_a_layer_that_narrows_float64_to_float32_is_held_to_float32(tmp_path: Path) -> None:
    """2026-12-03: s-vae's IveFunction in a float64 run, its gradients 3.1e-05 off (right
    to float32's precision), read "fix the gradient first"; its defect is the dtype it
    returns, said apart (``returns``)."""
    from harness.case import Variant
    from harness.protocol import SetupDone

    raw = tmp_path / "checks.jsonl"
    worker = Worker(Job("setup", (), str(raw), layers_from=(FIXTURE,), memory=False))
    worker.setup(Variant.make("exp32", "numpy", {"n": 64}, dtype="float64"))
    worker.log.close()
    (done,) = [e for e in EventLog.read(raw) if isinstance(e, SetupDone)]
    forward, backward = done.phases["forward"], done.phases["backward"]
    assert forward.returns is not None and forward.returns.startswith("float32 for float64")
    (out,) = forward.deviations
    assert out["within_tol"] and 1e-9 < out["max_rel_err"] < 1e-6, out  # float32's, not 0
    (grad,) = backward.deviations
    assert grad["within_tol"] and 1e-9 < grad["max_rel_err"] < 1e-6, grad
