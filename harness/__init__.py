"""Benchmark NumPy/SciPy autograd layers against native torch and decide whether to port.

The public API::

    harness.run(...)            measure a grid, return the results frame
    harness.load(DIR)           read a results folder's frame back
    harness.Layer, Axis, baseline, native   declare a layer of your own
"""

from harness.errors import ConfigError, HarnessError, InputError, LayerDefinitionError, ResultsError
from harness.layer import FORMS, Axis, AxisValue, Implementation, Layer, Point, baseline, native
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
