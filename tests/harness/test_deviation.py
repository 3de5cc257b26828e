from __future__ import annotations

import math

import pytest
import torch

from harness import deviation, dtypes
from harness.deviation import (
    RTOL,
    compare_tensors,
    eager_mismatch,
    run_gradcheck,
    within_tolerance,
)
from harness.dtypes import DTYPES, dtype_name, torch_dtype
from harness_layers.native import torch_fft
from harness_layers.seed import BadFFTFunction, ScipyConv2dFunction


def test_identical_tensors_have_no_deviation() -> None:
    x = torch.randn(5, 5, dtype=torch.float64)
    dev = compare_tensors("output", x, x, "float32")
    assert (dev.max_abs_err, dev.max_rel_err, dev.within_tol) == (0.0, 0.0, True)


def test_relative_error_ignores_entries_near_zero() -> None:
    ref = torch.tensor([1.0, 1e-9], dtype=torch.float64)
    actual = torch.tensor([1.0 + 1e-5, 2e-9], dtype=torch.float64)
    dev = compare_tensors("output", actual, ref, "float32")
    assert math.isclose(dev.max_rel_err, 1e-5, rel_tol=1e-6)  # the 1e-9 entry is below 1e-3 * max
    assert dev.within_tol


def test_float32_rounding_passes_float32_but_fails_float64_tolerance() -> None:
    ref = torch.randn(100, dtype=torch.float64)
    rounded = ref.to(torch.float32)
    assert compare_tensors("g", rounded, ref, "float32").within_tol
    assert not compare_tensors("g", rounded, ref, "float64").within_tol
    assert RTOL["float64"] < RTOL["float32"] < RTOL["float16"]


def test_non_finite_output_is_never_within_tolerance() -> None:
    ref = torch.ones(3, dtype=torch.float64)
    bad = torch.tensor([1.0, float("nan"), 1.0])
    assert not compare_tensors("output", bad, ref, "float32").within_tol


def test_gradcheck_passes_for_scipy_conv_and_fails_for_bad_fft() -> None:
    gen = torch.Generator().manual_seed(0)
    conv_inputs = [
        torch.randn(12, 12, generator=gen),
        torch.randn(3, 3, generator=gen),
        torch.randn(1, 1, generator=gen),
    ]
    ok, why = run_gradcheck(ScipyConv2dFunction.apply, conv_inputs, [True, True, True])
    assert ok, why
    ok, why = run_gradcheck(BadFFTFunction.apply, [torch.randn(8, 8, generator=gen)], [True])
    assert not ok and "Jacobian mismatch" in why


def test_bad_fft_gradient_relative_error_is_near_one() -> None:
    x = torch.randn(16, 16, dtype=torch.float64, requires_grad=True)
    y = BadFFTFunction.apply(x)
    g = torch.randn_like(y)
    (bad,) = torch.autograd.grad(y, x, g)
    x2 = x.detach().clone().requires_grad_(True)
    (good,) = torch.autograd.grad(torch_fft(x2), x2, g)
    dev = compare_tensors("grad_x", bad, good, "float32")
    assert not dev.within_tol and dev.max_rel_err > 0.5


# -- the one tolerance rule and the one dtype list --------------------------------------


def test_dtypes_have_one_home() -> None:
    assert DTYPES == ("float16", "bfloat16", "float32", "float64")
    assert deviation.RTOL is dtypes.RTOL and set(RTOL) == set(DTYPES)
    assert [torch_dtype(name) for name in DTYPES] == [
        torch.float16,
        torch.bfloat16,
        torch.float32,
        torch.float64,
    ]
    assert [dtype_name(torch_dtype(name)) for name in DTYPES] == list(DTYPES)
    assert dtype_name(torch.complex64) == "float32"
    with pytest.raises(ValueError, match="unknown dtype 'int8'"):
        torch_dtype("int8")
    with pytest.raises(ValueError, match="no tolerance"):
        dtype_name(torch.int64)


def test_within_tolerance_is_the_rule_compare_tensors_applies() -> None:
    ref = torch.tensor([1.0, -2.0, 1e-9], dtype=torch.float64)
    rtol = RTOL["float32"]
    # |a - r| <= rtol * |r| + rtol / 10 * max|r|
    edge = ref + torch.tensor([rtol * 1.0 + rtol / 10 * 2.0, 0.0, 0.0], dtype=torch.float64)
    past = ref + torch.tensor([0.0, 0.0, rtol / 10 * 2.0 * 1.01], dtype=torch.float64)
    for actual, expected in ((ref, True), (edge * (1 - 1e-12), True), (past, False)):
        assert within_tolerance(actual, ref, "float32") is expected
        assert compare_tensors("t", actual, ref, "float32").within_tol is expected
    noisy = torch.randn(100, dtype=torch.float64)
    assert within_tolerance(noisy.to(torch.float32), noisy, "float32")
    assert not within_tolerance(noisy.to(torch.float32), noisy, "float64")


def test_within_tolerance_on_special_values() -> None:
    nan, inf = float("nan"), float("inf")
    ref = torch.tensor([1.0, nan, inf])
    assert within_tolerance(ref.clone(), ref, "float32")  # the same non-finite values
    assert not within_tolerance(torch.tensor([1.0, 0.0, inf]), ref, "float32")
    assert not within_tolerance(torch.tensor([1.0, nan, -inf]), ref, "float32")
    assert within_tolerance(torch.empty(0), torch.empty(0), "float16")
    z = torch.tensor([1 + 1j, 2 - 1j], dtype=torch.complex64)
    assert within_tolerance(z, z.to(torch.complex128), "float32")
    assert not within_tolerance(z.conj().resolve_conj(), z, "float32")
    with pytest.raises(ValueError, match="shape"):
        within_tolerance(torch.zeros(2), torch.zeros(3), "float32")


def test_gradcheck_failure_is_described_in_one_line() -> None:
    def broken(x: torch.Tensor) -> torch.Tensor:
        raise ValueError("no gradient today\nmore detail")

    ok, why = run_gradcheck(broken, [torch.randn(3)], [True])
    assert (ok, why) == (False, "ValueError: no gradient today")


def test_nan_from_the_inputs_is_told_apart_from_nan_made_by_the_layer() -> None:
    import math

    import torch

    from harness.deviation import compare_tensors

    ref = torch.tensor([1.0, float("nan"), 3.0], dtype=torch.float64)
    # NaN only where the reference has it: the inputs held NaN
    same = compare_tensors("output", ref.float(), ref, "float32")
    assert math.isinf(same.max_abs_err) and math.isnan(same.max_rel_err)
    # NaN where the reference is finite: the layer made it
    made = compare_tensors(
        "output", torch.tensor([float("nan"), 2.0, 3.0]), ref.nan_to_num(), "float32"
    )
    assert math.isinf(made.max_rel_err) and not made.within_tol


def test_output_mismatch_names_a_dtype_change_and_its_likely_cause() -> None:
    import numpy as np

    from harness.deviation import output_mismatch

    x = torch.randn(3, dtype=torch.float64)
    bridged = torch.Tensor(np.exp(x.numpy()))  # the defect: torch.Tensor makes float32
    found = output_mismatch(bridged, (x,))
    assert found is not None and found.startswith("float32 for float64 input")
    assert "torch.Tensor(array)" in found
    assert output_mismatch(torch.from_numpy(np.exp(x.numpy())), (x,)) is None
    # the other way round, from_numpy is what kept it: the cause named is the float64 work
    x32 = x.float()
    widened = torch.from_numpy(np.asarray(np.exp(x32.numpy()), dtype=np.float64))
    found = output_mismatch(widened, (x32,))
    assert found is not None and found.startswith("float64 for float32 input (likely NumPy/SciPy")
    assert "torch.Tensor(array)" not in found and "`.to(x.dtype)`" in found
    assert "shape (3,) where the reference has (4,)" in str(output_mismatch(x, (x,), (4,)))


def test_an_integer_output_of_a_floating_reference_is_named() -> None:
    from harness.deviation import integer_output

    ref = torch.tensor([0.5, 1.5, 2.5], dtype=torch.float64)
    found = integer_output(ref.to(torch.int32), ref)
    assert found is not None and found.startswith("int32 where the reference returns float64")
    assert "np.zeros_like" in found
    assert integer_output(ref.float(), ref) is None  # a dtype, not integers: elsewhere
    indices = torch.tensor([2, 0, 1])
    assert integer_output(indices, indices) is None  # integer both: an argmax
    several = integer_output((ref, ref.to(torch.int64)), (ref, ref))
    assert several is not None and several.startswith("output[1]: int64 where")


def test_precision_mismatch_names_float32_rounding_in_a_float64_output() -> None:
    from harness.deviation import precision_mismatch

    x = torch.rand(64, dtype=torch.float64) + 0.5
    ref = torch.exp(x)
    inside32 = torch.exp(x.float()).double()  # torch.Tensor(Lx) and back, in effect
    found = precision_mismatch(inside32, ref)
    assert found is not None and found.startswith("float64 with float32's rounding")
    assert "100% of its values are float32 numbers exactly: computed in float32" in found
    assert precision_mismatch(ref.clone(), ref) is None  # float64 throughout
    assert precision_mismatch(ref * 1.01, ref) is None  # wrong, not imprecise
    assert precision_mismatch(inside32.float(), ref) is None  # a float32 output: dtype's


def test_precision_mismatch_tells_a_solvers_tolerance_from_float32_work() -> None:
    # 2026-12-01: PROPACK's truncated SVD returned a U 1.7e-8 off in float64, and was
    # told it had computed in float32 through torch.Tensor(array)
    from harness.deviation import precision_mismatch

    x = torch.rand(64, dtype=torch.float64) + 0.5
    ref = torch.exp(x)
    tolerance = ref * (1 + 2e-8 * torch.randn(64, dtype=torch.float64))  # float64 values
    found = precision_mismatch(tolerance, ref)
    assert found is not None and found.startswith("float64 short of float64's accuracy")
    assert "its values are not float32 numbers: likely an iterative method's tolerance" in found
    assert "torch.Tensor(array)" not in found


class _SparseMatVec(torch.autograd.Function):
    """y = A @ x through SciPy, A a sparse COO matrix: its gradient for A is sparse, on
    A's entries only (as torch's own sparse ops give it); ``scale`` spoils it."""

    scale = 1.0

    @staticmethod
    def forward(ctx, A, x):  # type: ignore[no-untyped-def]
        from scipy.sparse import coo_matrix

        A = A.coalesce()
        ctx.save_for_backward(A, x)
        i = A.indices().numpy()
        m = coo_matrix((A.values().detach().numpy(), (i[0], i[1])), shape=tuple(A.shape))
        return torch.from_numpy(m @ x.detach().numpy())

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        A, x = ctx.saved_tensors
        row, col = A.indices()
        grad_a = torch.sparse_coo_tensor(
            A.indices(), grad[row] * x[col], A.shape, check_invariants=True
        )
        return grad_a * _SparseMatVec.scale, torch.sparse.mm(A.t(), grad[:, None])[:, 0]


def _sparse_system() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    i = torch.arange(6)
    idx = torch.stack([torch.cat([i, i[1:]]), torch.cat([i, i[:-1]])])
    vals = torch.randn(11, generator=gen, dtype=torch.float64)
    x = torch.randn(6, generator=gen, dtype=torch.float64)
    return torch.sparse_coo_tensor(idx, vals, (6, 6), check_invariants=True).coalesce(), x


def test_a_sparse_gradient_is_compared_entry_by_entry_with_the_dense_reference() -> None:
    A, x = _sparse_system()
    A.requires_grad_()
    (grad_a,) = torch.autograd.grad(_SparseMatVec.apply(A, x).sum(), (A,))
    assert grad_a.layout == torch.sparse_coo
    (ref,) = torch.autograd.grad((A.to_dense() @ x).sum(), (A,))
    dev = compare_tensors("grad_A", grad_a, ref.to_dense(), "float64")
    assert dev.within_tol and dev.max_abs_err < 1e-12
    assert not compare_tensors("grad_A", grad_a * 2, ref.to_dense(), "float64").within_tol


def test_gradcheck_of_a_sparse_input_checks_its_entries_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # unmasked, gradcheck perturbs A's zeros too and fails this right backward (a public
    # SciPy spsolve Function read as "fix the gradient first", 2026-11-30)
    A, x = _sparse_system()
    assert run_gradcheck(_SparseMatVec.apply, [A, x], [True, True]) == (True, "")
    monkeypatch.setattr(_SparseMatVec, "scale", 2.0)
    ok, why = run_gradcheck(_SparseMatVec.apply, [A, x], [True, True])
    assert not ok and "Jacobian mismatch" in why


class _DenseGradMatVec(torch.autograd.Function):
    """y = A @ x for a sparse A, whose backward gives A's gradient dense, every entry of
    the matrix A stands for (torch-fem's spsolve does, 2026-12-03); ``scale`` spoils it."""

    scale = 1.0

    @staticmethod
    def forward(ctx, A, x):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(A, x)
        return torch.from_numpy(A.detach().to_dense().numpy() @ x.detach().numpy())

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        A, x = ctx.saved_tensors
        dense_a = A.detach().to_dense()
        return torch.outer(grad, x) * _DenseGradMatVec.scale, dense_a.t() @ grad


def test_a_dense_gradient_of_a_sparse_input_is_right_on_its_entries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness.deviation import on_pattern

    A, x = _sparse_system()
    # gradcheck: right in the dense convention, though masked gradcheck fails it
    assert run_gradcheck(_DenseGradMatVec.apply, [A, x], [True, True]) == (True, "")
    # compared on A's entries: agrees with to_dense's masked gradient; entry by entry it
    # does not (the off-pattern entries the masked reference leaves at 0)
    leaf = A.clone().requires_grad_()
    (grad_a,) = torch.autograd.grad(_DenseGradMatVec.apply(leaf, x).sum(), (leaf,))
    (ref,) = torch.autograd.grad((leaf.to_dense() @ x).sum(), (leaf,))
    assert not compare_tensors("grad_A", grad_a, ref, "float64").within_tol
    dev = compare_tensors("grad_A", on_pattern(grad_a, A), on_pattern(ref, A), "float64")
    assert dev.within_tol and dev.max_abs_err < 1e-12
    assert on_pattern(grad_a, x) is grad_a  # a strided input's gradient, as it is
    # wrong in both conventions: fails
    monkeypatch.setattr(_DenseGradMatVec, "scale", 2.0)
    ok, why = run_gradcheck(_DenseGradMatVec.apply, [A, x], [True, True])
    assert not ok and "Jacobian mismatch" in why


def test_a_complex_output_is_compared_with_its_imaginary_part() -> None:
    # 2026-12-01: a complex SVD's outputs were cast to float64 to compare, which drops
    # the imaginary part (with a warning)
    from harness.deviation import compare_tensors

    ref = torch.tensor([1 + 1j, 2 + 2j], dtype=torch.complex128)
    off = torch.tensor([1 + 1j, 2 + 3j], dtype=torch.complex64)
    dev = compare_tensors("output", off, ref, "float32")
    assert not dev.within_tol and dev.max_abs_err == pytest.approx(1.0)
    assert compare_tensors("output", ref.to(torch.complex64), ref, "float32").within_tol


def test_a_converted_form_is_held_to_eager_with_nan_where_eager_has_nan() -> None:
    """2026-11-30: a float32 Sinkhorn that never converged gave NaN in eager and in its
    ONNX form alike, and the matrix said "differs from eager (max rel err nan)"."""
    nan, inf = float("nan"), float("inf")
    ref = torch.tensor([1.0, nan, 3.0, inf])
    assert eager_mismatch(ref.clone(), ref) is None
    assert eager_mismatch(torch.tensor([1.0, nan, 3.5, inf]), ref) == (
        "differs from eager (max rel err 0.17)"
    )
    assert eager_mismatch(torch.tensor([nan, nan, 3.0, inf]), ref) == (
        "gives NaN at 1 entry where eager does not"
    )
    assert eager_mismatch(torch.tensor([1.0, 2.0, 3.0, inf]), ref) == (
        "gives numbers at 1 entry where eager gives NaN"
    )


def test_an_error_where_the_reference_is_zero_shows_in_the_relative_error() -> None:
    # 2026-12-03: "max relative error 1.9e-05 ✗" where 0.29 stood against a reference 0
    ref = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64)
    off = torch.tensor([1.0, 2.0, 0.58], dtype=torch.float64)
    dev = compare_tensors("grad_A", off, ref, "float32")
    assert not dev.within_tol and dev.max_rel_err == pytest.approx(0.29)
    # within tolerance there: the ratio over the reference's non-zero entries alone
    near = torch.tensor([1.0, 2.0 * (1 + 1e-6), 1e-9], dtype=torch.float64)
    dev = compare_tensors("grad_A", near, ref, "float32")
    assert dev.within_tol and dev.max_rel_err == pytest.approx(1e-6)
