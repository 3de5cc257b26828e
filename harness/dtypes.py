"""The input dtypes the harness measures, and each one's tolerance.

The one home of the dtype list: the config validates against ``DTYPES``, the worker
casts with ``torch_dtype`` (and a layer's inputs with ``cast_input``), and the
deviation check reads ``RTOL``. Importing this
module does not import torch; ``torch_dtype`` does, when first called.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = [
    "BITS",
    "DTYPES",
    "RTOL",
    "cast_input",
    "differentiable_dtype",
    "dtype_name",
    "narrowed_to",
    "returned_for",
    "tolerance_text",
    "torch_dtype",
]

#: Dtype names, narrowest first.
DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")

#: Relative tolerance per dtype (see ``harness.deviation`` for how it is applied).
#: float64 is strict on purpose: a float64 layer that silently computes a gradient in
#: float32 is a defect worth seeing.
RTOL: dict[str, float] = {
    "float16": 1e-2,
    "bfloat16": 5e-2,
    "float32": 1e-4,
    "float64": 1e-9,
}


#: Bits per element of each dtype: which of two is wider.
BITS: dict[str, int] = {"float16": 16, "bfloat16": 16, "float32": 32, "float64": 64}

#: ``harness.deviation.output_mismatch``'s finding, of one output of several or of the
#: only one: "output[1]: float32 for float64 input (...)".
_RETURNS = re.compile(r"^(?:output\[\d+\]: )?(\w+) for (\w+) input")


def returned_for(returns: str | None) -> tuple[str, str] | None:
    """(the dtype a layer returns, the input dtype it returns it for) from its
    ``returns`` finding (``harness.deviation.output_mismatch``), else None."""
    m = _RETURNS.match(returns or "")
    return (m.group(1), m.group(2)) if m else None


def narrowed_to(returns: str | None, dtype: str) -> str | None:
    """The narrower dtype a layer returns for ``dtype`` input, from its ``returns``
    finding (``float32 for float64 input (...)``, ``harness.deviation.output_mismatch``),
    else None: its results are held to that dtype's tolerance
    (``harness.deviation.judged_dtype``)."""
    found = returned_for(returns)
    if found is None or found[1] != dtype or found[0] not in RTOL or dtype not in RTOL:
        return None
    return found[0] if RTOL[found[0]] > RTOL[dtype] else None


def torch_dtype(name: str) -> torch.dtype:
    """``"float32"`` -> ``torch.float32``; ``ValueError`` for a name not in ``DTYPES``."""
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r} (known: {', '.join(DTYPES)})")
    import torch

    dtype = getattr(torch, name)
    assert isinstance(dtype, torch.dtype)
    return dtype


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``; a complex dtype by its real part's name
    (``complex64`` -> ``"float32"``); ``ValueError`` for a dtype not in ``DTYPES``."""
    if dtype.is_complex:
        dtype = dtype.to_real()
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise ValueError(f"no tolerance for dtype {name!r} (known: {', '.join(DTYPES)})")
    return name


def tolerance_text(dtype: str) -> str:
    """The one tolerance rule for ``dtype`` in words: ``|a − r| ≤ 1e-4·|r| +
    1e-05·max|r|`` (``harness.deviation.within_tolerance``). Every sentence that says
    *within tolerance* states it, so that a report never shows two tolerances."""
    rtol = RTOL.get(dtype)
    if rtol is None:
        return "the dtype's tolerance"
    return f"|a − r| ≤ {rtol:g}·|r| + {rtol / 10:g}·max|r|"


def differentiable_dtype(t: torch.Tensor) -> bool:
    """Whether ``t``'s dtype can carry a gradient (floating or complex)."""
    return t.is_floating_point() or t.is_complex()


def cast_input(
    t: torch.Tensor, dtype: torch.dtype, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """An input as the harness passes it at ``dtype`` (a floating dtype), detached and
    on ``device``: floating tensors in ``dtype``, complex ones in the complex dtype of
    its precision, integer and bool ones (indices, masks) in their own. Casting an
    index to float makes every implementation fail on it (2026-11-30: an embedding
    lookup's ``idx`` reached ``F.embedding`` as float64)."""
    import torch

    # bfloat16 has no complex dtype of its own: complex64
    complex_of = {
        torch.float16: torch.complex32,
        torch.float32: torch.complex64,
        torch.float64: torch.complex128,
    }
    t = t.detach()
    if t.is_complex():
        return t.to(device=device, dtype=complex_of.get(dtype, torch.complex64))
    if t.is_floating_point():
        return t.to(device=device, dtype=dtype)
    return t.to(device=device)
