"""NumPy and SciPy ufunc calls made visible to the profiling pass's hook.

A ufunc (``np.exp``, ``np.tanh``, ``scipy.special.ive``, ``scipy.special.gammainc``)
is neither a Python function nor a builtin function: ``sys.setprofile`` sees no event
when one is called, so an elementwise layer's whole NumPy/SciPy work read as "the
layer's own code" (2026-12-01: a public ``gammainc`` layer, 90% of its step in
``TorchGammainc.forward`` and no SciPy call named). While a call is profiled,
``visible_ufuncs`` puts a thin callable in place of every ufunc the layer can reach by
name (the ``numpy`` and ``scipy.special`` namespaces, and the globals of the user's own
modules); the hook sees its ``__call__`` (``VISIBLE_CALL``) and names the ufunc. The
stand-in passes every other attribute through (``np.add.reduce``, ``np.maximum.at``),
and everything is put back when the call returns. Timed calls never run under it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from types import CodeType, ModuleType
from typing import Any

import numpy as np

__all__ = ["VISIBLE_CALL", "Visible", "ufunc_label", "ufunc_modules", "visible_ufuncs"]

#: The namespaces users call ufuncs through, each named as users import it.
_LIBRARIES = ("numpy", "scipy.special")


class Visible:
    """A ufunc under a name the profile hook reads (``label``)."""

    __slots__ = ("label", "ufunc")

    def __init__(self, ufunc: np.ufunc, label: str) -> None:
        self.ufunc = ufunc
        self.label = label

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.ufunc(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ufunc, name)

    def __repr__(self) -> str:
        return f"<visible {self.ufunc!r}>"


#: The code the hook sees run for every stand-in's call.
VISIBLE_CALL: CodeType = Visible.__call__.__code__


def ufunc_label(ufunc: np.ufunc) -> str:
    """``scipy.special.gammainc``, ``numpy.exp``: the library namespace that holds it,
    else the ufunc's own name."""
    name = ufunc.__name__
    for library in _LIBRARIES:
        module = sys.modules.get(library)
        found = getattr(module, name, None) if module is not None else None
        if found is ufunc or (isinstance(found, Visible) and found.ufunc is ufunc):
            return f"{library}.{name}"
    return f"ufunc {name}"


def ufunc_modules(user: Iterable[ModuleType] = ()) -> list[ModuleType]:
    """The library namespaces already imported, then ``user`` (the user's modules,
    which may hold ufuncs imported by name: ``from scipy.special import ive``)."""
    out = [m for name in _LIBRARIES if (m := sys.modules.get(name)) is not None]
    return [*out, *(m for m in user if m not in out)]


@contextlib.contextmanager
def visible_ufuncs(modules: Iterable[ModuleType]) -> Iterator[int]:
    """Within the block, every ufunc attribute of ``modules`` is a ``Visible``; yields
    how many were replaced, and puts each back on the way out."""
    labels: dict[int, str] = {}
    replaced: list[tuple[ModuleType, str, np.ufunc]] = []
    try:
        for module in modules:
            for name, value in list(vars(module).items()):
                if isinstance(value, np.ufunc):
                    label = labels.setdefault(id(value), ufunc_label(value))
                    setattr(module, name, Visible(value, label))
                    replaced.append((module, name, value))
        yield len(replaced)
    finally:
        for module, name, value in reversed(replaced):
            setattr(module, name, value)
