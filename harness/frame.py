"""The results frame: its columns, documented in one place, and how it is built.

One row per (layer, implementation, grid point, dtype, threads, device, phase).
The frame is built once from a list of row dicts and checked against ``COLUMNS``;
nothing is ever ``eval``-ed back from text. pyperf's JSON (``pyperf.json``) stays the
archive of raw timing values; ``DEVIATION_COLUMNS`` describes the per-tensor detail
(output and each gradient) kept beside it in ``deviations.csv``; ``BREAKDOWN_COLUMNS``
where the time of one profiled call goes (``breakdown.csv``, ``harness.breakdown``).

Besides the columns below, the frame has one column per grid axis (``n``, ``k``, ...),
named after the axis, empty where a layer has no such axis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

__all__ = [
    "BREAKDOWN_COLUMNS",
    "CAPABILITY_COLUMNS",
    "COLUMNS",
    "DEVIATION_COLUMNS",
    "build_frame",
    "build_table",
]

#: name -> (pandas dtype, meaning)
COLUMNS: dict[str, tuple[str, str]] = {
    # identity
    "case": (
        "string",
        "unique case name: layer/impl/point/dtype/tTHREADS/device/phase; the pyperf benchmark name",
    ),
    "layer": ("string", "layer name"),
    "impl": (
        "string",
        "implementation name (numpy, scipy, torch, torchscript, compile, onnxruntime, ...)",
    ),
    "role": (
        "string",
        "'baseline' (the NumPy/SciPy implementation), 'native' (a torch candidate and its "
        "forms) or 'compiled' (the baseline itself under torch.compile, as declared)",
    ),
    "form": ("string", "'eager', or the derived form: 'torchscript', 'compile', 'onnxruntime'"),
    "source": ("string", "the declared implementation this row's form derives from"),
    "point": ("string", "grid point as 'axis=value,...'"),
    "size": ("Float64", "value of the layer's size axis (what reports plot against)"),
    "dtype": ("string", "input dtype (float32, float64, ...)"),
    "threads": ("Int64", "intra-op threads for torch and for NumPy/SciPy pools (threadpoolctl)"),
    "device": ("string", "'cpu' or 'cuda'"),
    "allocator": (
        "string",
        "memory allocator of the worker processes: glibc (defaults), glibc-fixed, jemalloc, tcmalloc",
    ),
    "allocator_measured": (
        "string",
        "the allocator the worker processes that timed this row really ran with "
        "(harness.environment.allocator_in_use: glibc, glibc-fixed, jemalloc, tcmalloc, or "
        "'glibc (MALLOC_...=...)' for other malloc settings), several joined by '; ' when "
        "processes differed; empty where nothing was timed. Not `allocator`: the row "
        "measured another allocator than the one asked for, and the report says so "
        "(added in schema 3)",
    ),
    "group": (
        "string",
        "the group: every implementation of one point and setting, timed together in paired rounds",
    ),
    "phase": (
        "string",
        "'step': one training-loop iteration, a forward that records the graph then "
        "autograd.grad of every gradient without retain_graph (the graph is freed), timed "
        "whole: training verdicts are decided on it; 'forward': inference, natives and their "
        "forms under torch.inference_mode, baselines under no_grad: inference verdicts are "
        "decided on it; 'backward': autograd.grad on a graph built once and retained, to show "
        "where a step's time goes (harness.measure)",
    ),
    # outcome
    "status": (
        "string",
        "'ok', 'error' (it failed: see error) or 'unsupported' (not applicable, e.g. backward of an ONNX Runtime session)",
    ),
    "error": (
        "string",
        "exception type and first line of the message, or why the point was not measured; "
        "on a candidate's step row that was timed, 'no step timed for <baseline>: <why>' "
        "when the baseline has no step rounds (so no training speedup)",
    ),
    # timing: seconds per call, over all rounds of all processes (pyperf)
    "median_s": ("Float64", "median seconds per call"),
    "mean_s": ("Float64", "mean seconds per call"),
    "stdev_s": ("Float64", "standard deviation of seconds per call"),
    "min_s": ("Float64", "fastest value, seconds per call"),
    "max_s": ("Float64", "slowest value, seconds per call"),
    "n_values": ("Int64", "number of timed values: one per round (warm-up rounds excluded)"),
    "n_processes": ("Int64", "number of worker processes that contributed rounds"),
    "loops": (
        "Int64",
        "calls per value (calibrated so that one value lasts at least the profile's "
        "min_time; rounded mean over processes where a timing worker recalibrated it)",
    ),
    # paired speedup against the baseline (candidate rows; empty on the baseline's own)
    "versus": ("string", "the baseline the speedup is measured against"),
    "speedup": (
        "Float64",
        "baseline time / this time, per round (paired: both timed in the same round of the "
        "same process), the interquartile mean of its logs over all rounds (each process "
        "weighing as one, harness.stats); above 1: this implementation is faster",
    ),
    "speedup_low": (
        "Float64",
        "lower end of the speedup's 95% interval (rounds nested in processes: harness.stats)",
    ),
    "speedup_high": ("Float64", "upper end of the speedup's 95% interval"),
    "decision": (
        "string",
        "'faster' (interval above 1.05), 'slower' (below 1/1.05) or 'undecided', against the ±5% band",
    ),
    "step_speedup": (
        "Float64",
        "speedup of a training step: the 'step' row's speedup, repeated on the variant's "
        "other rows; empty where either side has no step rounds (its step failed or was "
        "not timed: the candidate's step row's error says which), never estimated from "
        "forward and backward. In folders of schema 2, before the step was timed whole, "
        "it is such an ESTIMATE: forward (no grad) + backward (retained graph) summed per "
        "round, on the forward and backward rows; the report labels verdicts decided on "
        "it 'estimated'",
    ),
    "step_speedup_low": ("Float64", "lower end of the training step speedup's 95% interval"),
    "step_speedup_high": ("Float64", "upper end of the training step speedup's 95% interval"),
    "step_decision": ("string", "'faster', 'slower' or 'undecided' for the training step"),
    "break_even_calls": (
        "Float64",
        "calls after which the one-off cost has paid off against the baseline: oneoff_s / "
        "(baseline time - this time), per forward on 'forward' rows (the inference "
        "verdict's), per call of a training step (the 'step' phase) on the others where "
        "both sides train, else per forward (a forward-only form or baseline); empty "
        "where this is not faster, has no one-off "
        "cost, or a step that should have run failed or was not timed (never estimated "
        "from forward + backward)",
    ),
    # peak memory of one call, measured in the setup pass (harness.memory)
    "peak_bytes": (
        "Int64",
        "peak bytes allocated during one call above what was live before it, summed over "
        "the counted allocators (an upper bound when they peak at different moments)",
    ),
    "peak_sources": ("string", "what peak_bytes counted and what it could not"),
    "minor_faults": (
        "Float64",
        "minor page faults per call (resource.getrusage around each timed value's calls, "
        "in the timing rounds: the median over processes of each one's median; the setup "
        "pass's where the case was not timed): memory the allocator gets from the kernel "
        "afresh, call after call; the allocator's effect made visible (added in schema 3)",
    ),
    # deviation against the float64 reference
    "max_abs_err": (
        "Float64",
        "max |impl - ref| over the phase's tensors (output, or every gradient)",
    ),
    "max_rel_err": (
        "Float64",
        "max |impl - ref| / |ref| over entries with |ref| > 1e-3 * max|ref|, over the phase's "
        "tensors; where a tensor is out of tolerance only at entries whose |ref| is below that, "
        "also their |impl - ref| / max|ref|",
    ),
    "worst_tensor": (
        "string",
        "the tensor with the largest relative error ('output', or 'output[1]' of a layer "
        "of several outputs, 'grad_x', ...)",
    ),
    "tensors_out_of_tol": (
        "string",
        "the tensors outside tolerance, comma-separated ('grad_a, grad_b'); empty when "
        "every one is within",
    ),
    "rtol": ("Float64", "relative tolerance for this dtype"),
    "within_tol": (
        "boolean",
        "every entry satisfies |impl - ref| <= rtol * |ref| + atol * max|ref|, atol = rtol / 10",
    ),
    "gradcheck": (
        "boolean",
        "torch.autograd.gradcheck in float64 at the layer's small point (baseline "
        "implementations, backward rows); empty where it could not run as such (a layer "
        "that returns float32 for float64 input: gradcheck_error says so)",
    ),
    "gradcheck_error": ("string", "why gradcheck failed, or why it was not run"),
    "reference_gradcheck": (
        "boolean",
        "baselines' backward rows: gradcheck of the layer's reference at the same point; "
        "false: the reference's gradients are not the derivative of its output over every "
        "input entry (it reads only part of its input, as torch.linalg.eigh reads one "
        "triangle), so they judge no gradient; empty where it could not run",
    ),
    "reference_gradcheck_error": ("string", "why the reference's gradcheck failed or did not run"),
    "returns": (
        "string",
        "forward rows: how the output differs from what the inputs ask for (dtype, device, "
        "shape), e.g. 'float32 for float64 input (likely torch.Tensor(array) ...)'; a "
        "baseline's backward row: the same for the float64 inputs of its gradcheck; empty "
        "when it matches",
    ),
    "writes_inputs": (
        "string",
        "forward rows: the inputs the call wrote into (comma-separated names), e.g. "
        "through tensor.numpy(): the caller's tensors change behind autograd's back; "
        "backward rows: the inputs the graph was recorded on and 'grad_output' (the "
        "upstream gradient it was handed) that the backward wrote into; empty when none",
    ),
    "random_output": (
        "Float64",
        "forward rows: the largest relative difference between two calls on the same "
        "inputs where it exceeds the dtype's tolerance (a random layer: its deviations "
        "from the reference are not judged); empty when the calls agree",
    ),
    "alternating_torch_s": (
        "Float64",
        "a baseline's forward rows at more than one thread: seconds one call adds to a "
        "loop alternating it with a small torch parallel op (torch.add of 2^18 elements), "
        "the op's slowdown after it included, as inside a model; empty for calls over "
        "50 ms and elsewhere (harness/contention.py)",
    ),
    "alternating_numpy_s": (
        "Float64",
        "the same, alternating with that op's work done by NumPy (no OpenMP pool); "
        "alternating_torch_s / alternating_numpy_s over 1: its thread pool and torch's "
        "spin-wait for each other's cores",
    ),
    # one-off costs, never part of steady-state timing
    "oneoff_s": (
        "Float64",
        "one-off cost in seconds: TorchScript scripting, torch.compile's first call (cold cache), ONNX export plus session creation",
    ),
    "oneoff_what": ("string", "what oneoff_s measured"),
}

#: Per-tensor deviation detail (deviations.csv).
DEVIATION_COLUMNS: dict[str, tuple[str, str]] = {
    "case": COLUMNS["case"],
    "layer": COLUMNS["layer"],
    "impl": COLUMNS["impl"],
    "point": COLUMNS["point"],
    "size": COLUMNS["size"],
    "dtype": COLUMNS["dtype"],
    "phase": COLUMNS["phase"],
    "tensor": (
        "string",
        "'output' (a layer of several outputs: 'output[0]', 'output[1]', ...) or "
        "'grad_<input name>'",
    ),
    "max_abs_err": ("Float64", "max |impl - ref|"),
    "max_rel_err": ("Float64", "max relative error, as in the main frame"),
    "within_tol": ("boolean", "within the dtype's tolerance"),
}

#: The capability matrix (capabilities.csv), one row per (layer, implementation, check).
CAPABILITY_COLUMNS: dict[str, tuple[str, str]] = {
    "layer": COLUMNS["layer"],
    "impl": ("string", "declared implementation"),
    "role": COLUMNS["role"],
    "check": ("string", "script_save, trace, compile_fullgraph, compile, onnx_dynamo, onnx_legacy"),
    "status": (
        "string",
        "'ok', 'unsupported' (it raised) or 'wrong' (it ran but gave wrong results on a second input)",
    ),
    "reason": ("string", "exception type and first line, or what was wrong"),
    "graph_breaks": ("Int64", "torch.compile graph breaks (compile check only)"),
}


#: Where the time of one profiled call goes (breakdown.csv): one row per (case, part).
#: Profiled after timing, never inside a timed region (harness.profile_call), at the
#: sizes a verdict turns on; like results.csv it has one column per grid axis besides.
BREAKDOWN_COLUMNS: dict[str, tuple[str, str]] = {
    "case": COLUMNS["case"],
    "layer": COLUMNS["layer"],
    "impl": COLUMNS["impl"],
    "role": COLUMNS["role"],
    "point": COLUMNS["point"],
    "size": COLUMNS["size"],
    "dtype": COLUMNS["dtype"],
    "threads": COLUMNS["threads"],
    "device": COLUMNS["device"],
    "allocator": COLUMNS["allocator"],
    "phase": ("string", "'step' or 'forward', as in results.csv (harness.measure)"),
    "part": (
        "string",
        "where the time went: a NumPy/SciPy function (scipy.signal.correlate2d), a bridge "
        "call (torch.Tensor.numpy), an aten op or device kernel (aten::convolution_backward), "
        "'autograd Function dispatch', 'autograd engine', 'Python between calls', or an "
        "autograd Function's own code (SoftDTW.forward)",
    ),
    "kind": (
        "string",
        "numpy (a NumPy/SciPy function, inclusive), bridge (tensor to ndarray and back, "
        "copies, dtype casts), python (autograd Function dispatch, ctx, the Python between "
        "calls), code (the body of the layer's autograd Function's forward or backward "
        "outside every call the tools see: NumPy operators such as a * b or a[idx], Python "
        "loops, or compiled code such as numba), "
        "kernel (an aten op's self time, or a device kernel), other (the autograd "
        "engine on native nodes, CUDA runtime calls, the rest)",
    ),
    "seconds": (
        "Float64",
        "seconds of the one profiled call spent in this part, the tools' estimated overhead "
        "removed (harness.breakdown)",
    ),
    "share": ("Float64", "seconds / profiled_s: the shares of one case sum to 1"),
    "calls": ("Int64", "times the part ran in the profiled call (0: time between calls)"),
    "tool": (
        "string",
        "what measured it: sys.setprofile (numpy, bridge), torch.profiler (aten ops, "
        "record functions), torch.profiler (CUDA) (device kernels), torch.profiler (rest "
        "of the call) (the call's time outside every event)",
    ),
    "profiled_s": (
        "Float64",
        "the case's profiled call, overhead removed: the sum of its parts' seconds",
    ),
    "raw_s": ("Float64", "the profiled call's wall time under the tools"),
    "plain_s": (
        "Float64",
        "the same call's wall time without the tools, in the same pass (median of a few "
        "calls); compare it and results.csv's median_s with profiled_s (the report states "
        "both gaps)",
    ),
    "minor_faults": ("Float64", "minor page faults per plain call in the profiling pass"),
}


def build_table(
    rows: Iterable[Mapping[str, Any]],
    columns: Mapping[str, tuple[str, str]],
    extra: Sequence[str] = (),
) -> pd.DataFrame:
    """Build a frame with exactly ``columns`` (then ``extra``), typed as documented.

    A row with a key that is neither a column nor in ``extra`` is a bug, not data:
    it raises ``KeyError`` rather than being silently dropped.
    """
    rows = list(rows)
    allowed = set(columns) | set(extra)
    for row in rows:
        unknown = set(row) - allowed
        if unknown:
            raise KeyError(f"undocumented columns {sorted(unknown)}")
    frame = pd.DataFrame.from_records(rows, columns=[*columns, *extra])
    for name, (dtype, _) in columns.items():
        frame[name] = frame[name].astype(pd.api.types.pandas_dtype(dtype))
    for name in extra:
        frame[name] = frame[name].astype("object")
    return frame


def build_frame(rows: Iterable[Mapping[str, Any]], axes: Sequence[str] = ()) -> pd.DataFrame:
    """The results frame from row dicts; ``axes`` names the grid-axis columns."""
    return build_table(rows, COLUMNS, extra=axes)
