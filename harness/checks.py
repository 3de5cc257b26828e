"""What a worker checks of a prepared variant, apart from timing it.

- ``SetupChecks``: the setup pass's checks of each phase: output and gradients against
  the float64 reference (kept for the last point only), what the output returns, peak
  memory, the loop count of one timed value, minor page faults per call.
- ``cache_entry``: what the cache of checks (``harness.cache``) keeps of a variant's
  setup: the checks, never the calibration or anything else measured at run time.
- ``profile_phase``: one profiled call of a phase (``harness.profile_call``), after
  timing: where its time goes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import torch

from harness.case import Variant
from harness.contention import PoolWatch, probe
from harness.deviation import (
    RANDOM_LOOKS,
    compare_outputs,
    compare_tensors,
    gradients,
    integer_output,
    judged_dtype,
    on_pattern,
    output_mismatch,
    precision_mismatch,
    run_gradcheck,
    seeded,
    upstream_gradient,
    within_tolerance,
)
from harness.errors import describe
from harness.forms import quiet
from harness.layer import Layer
from harness.measure import calibrate_loops, set_threads
from harness.outputs import Outputs, as_tuple, differentiable, is_outputs, several, shape_of
from harness.prepared import Prepared
from harness.protocol import (
    FORWARD_ONLY_LAYER,
    UPSTREAM_GRADIENT,
    PhaseBreakdown,
    PhaseSetup,
    no_backward_reason,
    written_what,
)

if TYPE_CHECKING:
    from harness.profile_call import Costs

__all__ = [
    "CACHED_FIELDS",
    "SetupChecks",
    "cache_entry",
    "no_backward",
    "pools_meet",
    "profile_phase",
]

#: What the cache keeps of a checked phase: what depends only on code, versions and the
#: point, and the loop calibration as a plan (the scheduler budgets with ``estimate_s``;
#: the timing worker checks ``loops`` in its warm-up round). Page faults depend on the
#: process's history and are measured afresh; every timed value is.
CACHED_FIELDS = (
    "status",
    "error",
    "deviations",
    "peak_bytes",
    "peak_sources",
    "returns",
    "writes",
    "random",
    "loops",
    "estimate_s",
)


#: The reference's gradients, or what its backward raised.
RefGradients = tuple[torch.Tensor, ...] | Exception


class SetupChecks:
    """The setup checks of each phase of a prepared variant (``check``)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._refs: dict[tuple[str, tuple[Any, ...]], tuple[Outputs, RefGradients]] = {}

    def check(self, phase: str, p: Prepared, min_time: float, memory: bool) -> PhaseSetup:
        """Check ``phase`` of ``p``; calibrate its loops to ``min_time`` per timed value;
        measure its peak memory if ``memory``."""
        steps = {"forward": self._forward, "backward": self._backward, "step": self._step}
        return steps[phase](p, min_time, memory)

    def reference(self, layer: Layer, variant: Variant) -> tuple[Outputs, RefGradients]:
        """float64 reference output (or outputs) and gradients (setup only; cached per
        point). The gradients are the exception their backward raised where it did:
        the outputs are compared all the same (2026-12-01: torch's complex SVD refuses
        a loss that depends on its singular vectors' phases, and every forward of the
        layer failed with the reference's backward error)."""
        key = (layer.name, variant.point)
        if key not in self._refs:
            # Variants of one point come one after another in the plan: keeping the
            # last point's reference only bounds memory on large grids.
            self._refs.clear()
            inputs = layer.make(variant.point_dict, torch.float64, "cpu", self.seed)
            mask = layer.grad_mask(inputs)
            leaves = [t.clone().requires_grad_(m) for t, m in zip(inputs, mask, strict=True)]
            out = layer.reference_for(variant.point_dict)(*leaves)
            grads: RefGradients
            try:
                grad_out = upstream_gradient(out, self.seed + 1)
                found = gradients(out, [t for t in leaves if t.requires_grad], grad_out)
                grads = tuple(g.detach() for g in found)
            except Exception as exc:
                grads = exc
            detached = tuple(t.detach() for t in as_tuple(out))
            self._refs[key] = (detached if several(out) else detached[0], grads)
        return self._refs[key]

    def _forward(self, p: Prepared, min_time: float, memory: bool) -> PhaseSetup:
        before = snapshot(p.inputs)
        out = p.forward()
        as_tuple(out)  # TypeError: neither a tensor nor a tuple of tensors
        writes = written_inputs(tuple(p.layer.inputs), p.inputs, before)
        random = differs(p.forward(), out, p.variant.dtype)
        ref_out, _ = self.reference(p.layer, p.variant)
        # one per output, held to the layer's own dtype where it narrows the run's
        devs = compare_outputs(out, ref_out, judged_dtype(out, p.variant.dtype))
        if random is None and not all(d.within_tol for d in devs):
            # outputs off the reference: a repeat that agreed by chance is no proof of a
            # function (2026-12-02: ARPACK's eigenvector sign agreed in 5 calls of 6, and
            # its outputs read wrong at n=64 and 256 in one run, random in another)
            random = next(
                (
                    d
                    for _ in range(RANDOM_LOOKS)
                    if (d := differs(p.forward(), out, p.variant.dtype))
                ),
                None,
            )
        returns = (
            output_mismatch(out, p.inputs, shape_of(ref_out))
            or integer_output(out, ref_out)
            or precision_mismatch(out, ref_out)
        )
        del out

        peak = _peak(p, p.forward, memory)
        time_func = p.forward_time_func()
        loops, per_call = _calibrated(time_func, min_time)
        alternating = probe(p.forward, per_call) if pools_meet(p.impl.role, p.variant) else None
        return PhaseSetup(
            "ok",
            loops=loops,
            estimate_s=per_call,
            deviations=tuple(asdict(dev) for dev in devs),
            returns=returns,
            minor_faults=faults_per_call(time_func, loops),
            writes=writes,
            random=random,
            alternating_torch_s=alternating.torch_s if alternating else None,
            alternating_numpy_s=alternating.numpy_s if alternating else None,
            **peak,
        )

    def _step(self, p: Prepared, min_time: float, memory: bool) -> PhaseSetup:
        missing = no_backward(p)
        if missing is not None:
            return missing
        time_func = p.step_time_func()
        peak = _peak(p, p.step_call, memory)
        loops, per_call = _calibrated(time_func, min_time)
        faults = faults_per_call(time_func, loops)
        return PhaseSetup("ok", loops=loops, estimate_s=per_call, minor_faults=faults, **peak)

    def _backward(self, p: Prepared, min_time: float, memory: bool) -> PhaseSetup:
        missing = no_backward(p)
        if missing is not None:
            return missing
        _, ref_grads = self.reference(p.layer, p.variant)
        out, wrt = p.graph()
        upstream = as_tuple(p.grad_output())
        held = [*p.graph_inputs(), *upstream]
        before = snapshot(held)
        grads = gradients(out, wrt, p.grad_output())
        names = [f"grad_{n}" for n, m in zip(p.layer.inputs, p.grad_mask, strict=True) if m]
        judged = judged_dtype(out, p.variant.dtype)  # autograd casts the gradients back
        # the reference's backward raised: no gradient to compare with (its gradcheck,
        # run apart, says why)
        devs = (
            tuple(
                # a sparse input's gradients, on its entries only (deviation.on_pattern)
                asdict(compare_tensors(name, on_pattern(g, x), on_pattern(r, x), judged))
                for name, g, r, x in zip(names, grads, ref_grads, wrt, strict=True)
            )
            if isinstance(ref_grads, tuple)
            else ()
        )
        del grads
        # after the deviations: a gradient may share memory with what is put back
        upstream_names = (UPSTREAM_GRADIENT,) * len(upstream)
        writes = written_inputs((*p.layer.inputs, *upstream_names), held, before)
        outs, grad_out = differentiable(out, p.grad_output())

        def call() -> Any:
            return torch.autograd.grad(outs, wrt, grad_out, retain_graph=True, allow_unused=True)

        peak = _peak(p, call, memory)
        time_func = p.backward_time_func()
        loops, per_call = _calibrated(time_func, min_time)
        return PhaseSetup(
            "ok",
            loops=loops,
            estimate_s=per_call,
            deviations=devs,
            minor_faults=faults_per_call(time_func, loops),
            writes=writes,
            **peak,
        )


def _calibrated(time_func: Callable[[int], float], min_time: float) -> tuple[int, float]:
    """``calibrate_loops`` once the process's other threads rest: the calls just before
    (the reference's, in torch) leave a pool spinning, and a calibration beside it
    reads the call slow (SciPy's expm at n=128 as 2 ms for 0.6 ms, 2026-12-01), which
    sets too few loops for the values timed later."""
    PoolWatch().rest()
    return calibrate_loops(time_func, min_time)


def pools_meet(role: str, variant: Variant) -> bool:
    """Whether a variant's forward is probed alternating with torch's ops
    (``harness.contention``): where NumPy's/SciPy's threads may meet torch's, a
    baseline's, at more than one thread, on the CPU (the setup, and a setup from the
    cache, whose probe is measured afresh)."""
    return role == "baseline" and variant.threads > 1 and variant.device == "cpu"


def _no_grad(fn: Callable[..., Any], inputs: Sequence[torch.Tensor]) -> Any:
    with torch.no_grad():
        return fn(*inputs)


def snapshot(inputs: Sequence[torch.Tensor]) -> list[torch.Tensor | None]:
    """Copies of ``inputs`` to hold a call's against (``written_inputs``); None for a
    sparse one, not compared."""
    return [t.detach().clone() if t.layout == torch.strided else None for t in inputs]


def written_inputs(
    names: Sequence[str], inputs: Sequence[torch.Tensor], before: Sequence[torch.Tensor | None]
) -> tuple[str, ...]:
    """The names of ``inputs`` that differ from their copies ``before`` a call (None:
    not compared, a sparse input), each put back as it was: a layer that writes into
    its input through ``tensor.numpy()`` changes the caller's tensor behind autograd's
    back, and gradcheck then read it as a wrong gradient (2026-11-30). A name given to
    several tensors (the upstream gradient of each of several outputs) is named once."""
    written = []
    for name, tensor, old in zip(names, inputs, before, strict=True):
        if old is None or torch.equal(tensor, old):
            continue
        if tensor.is_floating_point() and torch.allclose(tensor, old, 0, 0, equal_nan=True):
            continue  # NaN where NaN was: unchanged
        written.append(name)
        with torch.no_grad():
            # through .data: a graph recorded on ``tensor`` keeps its version counter,
            # as the NumPy write that bypassed it did
            tensor.data.copy_(old)
    return tuple(dict.fromkeys(written))


def backward_writes(
    fn: Callable[..., Any],
    inputs: Sequence[torch.Tensor],
    mask: Sequence[bool],
    names: Sequence[str],
) -> tuple[str, ...]:
    """What one backward of ``fn`` at ``inputs`` writes into, put back after: the
    ``names`` of the inputs the graph was recorded on, and ``UPSTREAM_GRADIENT``.

    A NumPy backward that writes into ``grad.numpy()`` changes the gradient autograd
    handed it, which autograd may hand to other branches too (an addition's backward
    passes one tensor to both operands), and one that writes into a saved input
    changes the caller's activation; both bypass autograd's version counter."""
    leaves = [t.detach().clone().requires_grad_(m) for t, m in zip(inputs, mask, strict=True)]
    with torch.enable_grad():
        out = fn(*leaves)
    if not is_outputs(out) or not any(t.requires_grad for t in as_tuple(out)):
        return ()
    upstream = as_tuple(upstream_gradient(out, 1))
    held = [*leaves, *upstream]
    before = snapshot(held)
    wrt = [t for t, m in zip(leaves, mask, strict=True) if m]
    # the gradients drawn in each output's dtype: the tensors handed over are these
    outs, grads = differentiable(out, upstream if several(out) else upstream[0])
    torch.autograd.grad(outs, wrt, grads, allow_unused=True)
    return written_inputs((*names, *(UPSTREAM_GRADIENT,) * len(upstream)), held, before)


def differs(again: Any, first: Any, dtype: str) -> float | None:
    """The largest relative difference of a second call's output ``again`` from the
    first's, where it differs past ``dtype``'s tolerance (a random layer: dropout,
    noise drawn from NumPy's global generator); None where the two agree."""
    if several(again) and several(first) and len(as_tuple(again)) == len(as_tuple(first)):
        found = [
            differs(a, f, dtype) for a, f in zip(as_tuple(again), as_tuple(first), strict=True)
        ]
        return max((d for d in found if d is not None), default=None)
    if not isinstance(again, torch.Tensor) or not isinstance(first, torch.Tensor):
        return None
    if again.shape != first.shape:
        return None
    if again.layout != torch.strided or first.layout != torch.strided:
        return None
    if within_tolerance(again, first, dtype):
        return None
    return compare_tensors("output", again, first, dtype).max_rel_err


def no_backward(p: Prepared) -> PhaseSetup | None:
    """Why ``p`` has no backward (an ``unsupported`` phase), or None."""
    if not p.impl.backward:
        return PhaseSetup("unsupported", error=no_backward_reason(p.impl.form, False))
    if not any(p.grad_mask):
        return PhaseSetup("unsupported", error="the layer declares no differentiable input")
    if not p.layer.trains:
        return PhaseSetup("unsupported", error=FORWARD_ONLY_LAYER)
    return None


def _peak(p: Prepared, call: Callable[[], Any], memory: bool) -> dict[str, Any]:
    if not memory:
        return {}
    try:
        from harness.memory import measure_peak

        peak = measure_peak(call, device=p.variant.device, onnxruntime=p.impl.form == "onnxruntime")
    except Exception as exc:  # memory is a diagnostic: never fail the phase for it
        return {"peak_sources": f"not measured: {describe(exc, 200)}"}
    return {"peak_bytes": peak.peak_bytes, "peak_sources": peak.describe_sources()}


def faults_per_call(time_func: Callable[[int], float], loops: int) -> float:
    """Minor page faults per call over one timed value's calls (resource.getrusage):
    the allocator's work made visible (results.csv ``minor_faults``)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    time_func(loops)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / max(1, loops)


def cache_entry(
    phases: dict[str, PhaseSetup],
    built: bool,
    oneoff_s: float | None = None,
    oneoff_what: str | None = None,
) -> dict[str, Any] | None:
    """What the cache keeps of a variant's setup: its checks, not its calibration; None
    when a phase failed (an error may not recur: it is retried next run). ``probed``:
    whether its forward was probed alternating with torch's ops (a call that runs
    threads of its own, ``harness.contention``); the probe's figures are timings, not
    kept, and measured afresh on a hit where this says so."""
    if any(info.status == "error" for info in phases.values()):
        return None
    checked = {
        ph: {k: v for k, v in asdict(info).items() if k in CACHED_FIELDS}
        for ph, info in phases.items()
    }
    forward = phases.get("forward")
    return {
        "built": built,
        "phases": checked,
        "oneoff_s": oneoff_s,
        "oneoff_what": oneoff_what,
        "probed": forward is not None and forward.alternating_torch_s is not None,
    }


def profile_phase(p: Prepared, phase: str, costs: Costs) -> PhaseBreakdown:
    """One profiled call of ``phase`` of ``p`` (``costs``: the profiler's calibration)."""
    from harness.profile_call import profile_call

    missing = no_backward(p) if phase == "step" else None
    if missing is not None:
        return PhaseBreakdown("unsupported", error=missing.error)
    try:
        set_threads(p.variant.threads)
        if phase == "step":
            p.grad_output()
            p.drop_graph()  # the step builds its own graphs, as timed
        call = p.step_call if phase == "step" else p.forward
        with quiet():
            # a compiled form guards on the globals it traced: ufuncs stay as they are
            found = profile_call(call, p.variant.device, costs, ufuncs=p.impl.form != "compile")
    except Exception as exc:
        return PhaseBreakdown("error", error=describe(exc))
    b = found.breakdown
    return PhaseBreakdown(
        "ok",
        parts=tuple(asdict(part) for part in b.parts),
        profiled_s=b.profiled_s,
        raw_s=b.raw_s,
        plain_s=b.plain_s,
        minor_faults=found.minor_faults,
    )


#: Jacobian entries (outputs × differentiable inputs) past which gradcheck is not run:
#: it perturbs each input entry twice and holds the numerical and analytical Jacobians.
#: NAFNet's LayerNorm2d at its smallest point (16,384 × 16,448, 2.7e8 entries, 2 GiB
#: each in float64) ran past the 60 s limit and read as a wrong gradient (2026-11-30).
#: The seed layers' small points are under 1e4.
MAX_JACOBIAN = 20_000_000


def gradcheck_with_reference(
    layer: Layer, fn: Callable[..., Any], point: Mapping[str, Any], seed: int
) -> tuple[bool | None, str, str, bool | None, str]:
    """``checked_gradient`` of a baseline's ``fn`` at ``point``, then of the layer's
    reference on fresh inputs: ``(ok, why, returns, reference_ok, reference_why)``. The
    reference is the standard gradients are held against: one that fails gradcheck
    judges none."""
    names = tuple(layer.inputs)
    inputs = layer.make(point, torch.float64, "cpu", seed)
    mask = layer.grad_mask(inputs)
    reference = layer.reference_for(point)
    ok, why, returns = checked_gradient(fn, inputs, mask, names, reference)
    fresh = layer.make(point, torch.float64, "cpu", seed)
    ref_ok, ref_why, _ = checked_gradient(reference, fresh, mask, names)
    return ok, why, returns, ref_ok, ref_why


def checked_gradient(
    fn: Callable[..., Any],
    inputs: Sequence[torch.Tensor],
    mask: Sequence[bool],
    names: Sequence[str] = (),
    reference: Callable[..., Any] | None = None,
) -> tuple[bool | None, str, str]:
    """``torch.autograd.gradcheck`` of ``fn`` at float64 ``inputs``, or why it is not run:
    ``(ok, why, returns)``. ``returns`` names a dtype, device or shape the layer returns
    that its input does not have (``deviation.output_mismatch``), "" if none; then
    ``ok`` is None: gradcheck's finite differences need float64 end to end, and on a
    layer that rounds to float32 (``torch.Tensor(ndarray)``) they would fail whatever
    its formula. ``ok`` is None too where the Jacobian would exceed ``MAX_JACOBIAN``
    entries, where its forward raises (the setup pass reports that failure), and where
    the layer writes into one of its inputs (``names``) or is random whatever the
    global generators' seeds: gradcheck's finite differences cannot judge either. A
    layer random by NumPy's, Python's or torch's global generator is gradchecked with
    them reseeded before each call (its randomness then fixed). An error in its
    backward is ``(False, its description, returns)``."""
    returns = ""
    names = list(names) or [f"#{i}" for i in range(len(inputs))]
    before = snapshot(inputs)
    try:
        with torch.no_grad():
            out = fn(*inputs)
    except Exception as exc:
        # a forward that does not run says nothing of the gradient: the setup rows
        # carry the failure (2026-11-30: np.float_, gone in NumPy 2, read as a wrong
        # gradient and "fix the gradient first")
        return None, f"not run: its forward raises {describe(exc)}", returns
    try:
        writes = written_inputs(names, inputs, before)
        if writes:
            return (
                None,
                f"not run: it writes into {written_what(writes)}, and "
                "gradcheck's finite differences need inputs that stay as they are",
                returns,
            )
        if is_outputs(out) and differs(_no_grad(fn, inputs), out, "float64"):
            fn = seeded(fn)
            if differs(_no_grad(fn, inputs), _no_grad(fn, inputs), "float64"):
                return (
                    None,
                    "not run: two calls on the same input differ even with NumPy's, "
                    "Python's and torch's global generators reseeded (a generator of its "
                    "own?), and gradcheck's finite differences need one function",
                    returns,
                )
        back = backward_writes(fn, inputs, mask, names)
        if back:
            return (
                None,
                f"not run: its backward writes into {written_what(back)}, and gradcheck's "
                "finite differences need inputs and upstream gradients that stay as they are",
                returns,
            )
        returns = output_mismatch(out, inputs) or _imprecise(out, inputs, reference) or ""
        if returns:
            return (
                None,
                f"not run: it returns {returns}, and gradcheck needs float64 outputs; its "
                "gradients are judged against the float64 reference in the dtype measured "
                "instead",
                returns,
            )
        wide = sum(t.numel() for t, m in zip(inputs, mask, strict=True) if m)
        # tensors: output_mismatch named anything else above
        tall = sum(t.numel() for t in as_tuple(out))
        if wide * tall > MAX_JACOBIAN:
            return (
                None,
                f"not run: at its smallest point gradcheck would build a {tall:,} × {wide:,} "
                "Jacobian (every input entry perturbed, against every output entry); its "
                "gradients are judged against the float64 reference instead (a smaller "
                "first size on the layer's axes gets it gradchecked)",
                returns,
            )
        ok, why = _gradcheck_apart_from_forward(fn, inputs, mask)
    except Exception as exc:
        return False, describe(exc), returns
    return ok, why, returns


def _gradcheck_apart_from_forward(
    fn: Callable[..., Any], inputs: Sequence[torch.Tensor], mask: Sequence[bool]
) -> tuple[bool | None, str]:
    """``run_gradcheck``, with a forward that raises at one of its perturbed inputs
    said apart (None): the forward, not the gradient (2026-11-30: a propack SVD that
    did not converge there read "fails gradcheck (LinAlgError ...)")."""
    raised: list[BaseException] = []
    ok, why = run_gradcheck(_noting_raises(fn, raised), inputs, mask)
    if not ok and raised:
        return None, (
            f"not run to the end: its forward raises at an input gradcheck perturbs "
            f"by 1e-6 ({describe(raised[0])}), so gradcheck cannot judge its gradient"
        )
    return ok, why


def _imprecise(
    out: Any, inputs: Sequence[torch.Tensor], reference: Callable[..., Any] | None
) -> str | None:
    """``deviation.precision_mismatch`` of ``out`` against ``reference`` at copies of
    ``inputs`` (None without a reference, or where the reference does not run)."""
    if reference is None:
        return None
    try:
        with torch.no_grad():
            ref = reference(*(t.detach().clone() for t in inputs))
    except Exception:
        return None
    return precision_mismatch(out, ref) if is_outputs(ref) else None


def _noting_raises(fn: Callable[..., Any], raised: list[BaseException]) -> Callable[..., Any]:
    """``fn``, noting in ``raised`` what its calls raise (what gradcheck's calls of the
    forward raise, apart from what its backward does)."""

    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            raised.append(exc)
            raise

    return call
