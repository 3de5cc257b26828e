"""Benchmark NumPy/SciPy autograd layers against native torch and decide whether to port.

The public API::

    harness.run(...)            measure a grid, return the results frame
    harness.load(DIR)           read a results folder's frame back
    harness.Layer, Axis, baseline, native   declare a layer of your own

``import harness`` is light: it loads neither torch nor pandas. Each name below is
imported from its module on first use (PEP 562): the declaration API from
``harness.layer`` (which imports torch), ``run`` from ``harness.runner``, ``load``,
``load_results`` and ``Results`` from ``harness.results`` (pandas, no torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, HarnessError, InputError, LayerDefinitionError, ResultsError

if TYPE_CHECKING:
    from harness.layer import (
        FORMS,
        Axis,
        AxisValue,
        Implementation,
        Layer,
        Point,
        baseline,
        native,
    )
    from harness.results import Results, load, load_results
    from harness.runner import run

__all__ = [
    "FORMS",
    "Axis",
    "AxisValue",
    "ConfigError",
    "HarnessError",
    "Implementation",
    "InputError",
    "Layer",
    "LayerDefinitionError",
    "Point",
    "Results",
    "ResultsError",
    "baseline",
    "load",
    "load_results",
    "native",
    "run",
]

#: Public name -> the module that defines it, imported on first access.
_LAZY: dict[str, str] = {
    "FORMS": "harness.layer",
    "Axis": "harness.layer",
    "AxisValue": "harness.layer",
    "Implementation": "harness.layer",
    "Layer": "harness.layer",
    "Point": "harness.layer",
    "baseline": "harness.layer",
    "native": "harness.layer",
    "Results": "harness.results",
    "load": "harness.results",
    "load_results": "harness.results",
    "run": "harness.runner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
