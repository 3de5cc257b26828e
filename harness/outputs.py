"""A layer's outputs: one tensor, or a tuple of them.

Many real layers return several tensors: an SVD its ``U, S, V``, a filter its output
and its final state, a solver its solution and a residual. Each implementation and the
reference return the same number of tensors, in the same order and shapes. Every
output is compared with the reference's on its own (``output[0]``, ``output[1]``, ...:
each with the tolerance scaled by its own magnitude, so that singular values near 400
cannot hide a ``U`` 11% off, as a joined tensor did on 2026-11-30), and every
floating output gets a seeded upstream gradient: a training step differentiates them
all, as a loss that uses each would. A single tensor keeps the name ``output`` and
exactly the behaviour it always had.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = [
    "Outputs",
    "as_tuple",
    "differentiable",
    "graded",
    "is_outputs",
    "output_names",
    "several",
    "shape_of",
    "tensors_of",
]

#: What an implementation returns: a tensor, or a tuple (or list) of tensors.
Outputs = torch.Tensor | tuple[torch.Tensor, ...]


def is_outputs(out: object) -> bool:
    """A tensor, or a non-empty tuple or list of tensors."""
    if isinstance(out, torch.Tensor):
        return True
    return (
        isinstance(out, tuple | list)
        and len(out) > 0
        and all(isinstance(t, torch.Tensor) for t in out)
    )


def several(out: object) -> bool:
    """Whether ``out`` is a tuple (or list) of tensors rather than one tensor."""
    return not isinstance(out, torch.Tensor) and is_outputs(out)


def as_tuple(out: object) -> tuple[torch.Tensor, ...]:
    """``out`` as a tuple of tensors; ``TypeError`` naming what it is otherwise."""
    if isinstance(out, torch.Tensor):
        return (out,)
    if is_outputs(out):
        return tuple(out)  # type: ignore[arg-type]
    raise TypeError(f"returned {type(out).__name__}, not a tensor or a tuple of tensors")


def output_names(count: int) -> list[str]:
    """``output`` for one output, ``output[0]``, ``output[1]``, ... for several."""
    return ["output"] if count == 1 else [f"output[{i}]" for i in range(count)]


def differentiable(
    outputs: Any, grad_outputs: Any
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """The outputs a backward differentiates, with their upstream gradients, cast to
    each output's dtype: for several outputs, those that have a graph (an integer
    output, such as an argmax's indices, or one that does not depend on a
    differentiable input, has none, and ``torch.autograd.grad`` refuses it); one
    output is passed as it is, so that a missing graph fails as it always did."""
    outs, grads = as_tuple(outputs), as_tuple(grad_outputs)
    if len(outs) != len(grads):
        raise ValueError(f"{len(outs)} outputs, but {len(grads)} upstream gradients")
    chosen = graded(outputs)
    return tuple(outs[i] for i in chosen), tuple(grads[i].to(outs[i].dtype) for i in chosen)


def graded(outputs: Any) -> tuple[int, ...]:
    """The indices of the outputs a backward differentiates (``differentiable``)."""
    outs = as_tuple(outputs)
    if len(outs) == 1:
        return (0,)
    return tuple(i for i, o in enumerate(outs) if o.requires_grad)


def tensors_of(arrays: Any, device: torch.device | str) -> Outputs:
    """NumPy's result as the layer's output on ``device``: an array as a tensor, a
    tuple (or list) of arrays as a tuple of tensors (a layer of several outputs). A
    0-d array or NumPy scalar (a loss) stays 0-d."""
    if isinstance(arrays, tuple | list):
        return tuple(_tensor_of(a, device) for a in arrays)
    return _tensor_of(arrays, device)


def _tensor_of(array: Any, device: torch.device | str) -> torch.Tensor:
    # Not np.ascontiguousarray: it returns at least one dimension, so a scalar loss
    # came back of shape (1,) and failed the shape check against the reference's ()
    # (ONNX Runtime's output of a public Hausdorff loss, 2026-12-02).
    a = np.asarray(array)
    if not a.flags.c_contiguous:
        a = np.array(a, order="C")  # from_numpy refuses negative strides
    return torch.from_numpy(a).to(device)


def shape_of(out: object) -> Any:
    """The shape of one output (a tuple), or a list of each output's shape."""
    if isinstance(out, torch.Tensor):
        return tuple(out.shape)
    return [tuple(t.shape) for t in as_tuple(out)]
