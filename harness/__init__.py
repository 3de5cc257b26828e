"""Benchmark NumPy/SciPy autograd layers against native torch and decide whether to port.

The public API::

    harness.run(...)            measure a grid, return the results frame
    harness.load(DIR)           read a results folder's frame back
    harness.Layer, Axis, baseline, native   declare a layer of your own

``import harness`` is light: it loads neither torch nor pandas. Each name below is
imported from its module on first use (PEP 562): the declaration API from
``harness.layer`` (which imports torch), ``run`` from ``harness.runner``, ``load``,
``load_results`` and ``Results`` from ``harness.results`` (pandas, no torch).

The layering, stated here once. Each floor imports only from its own floor and the
floors below it, and no import closes a cycle; this counts every import statement,
those inside functions included (``tests/harness/test_imports.py`` reads the table
below and checks it). Layer packages, the built-in one included, sit above the house:
they import ``harness``, and the registry imports them by name when asked
(``harness.registry.builtin_layers``, entry points, ``--layers-from``).

.. floors (top first; a module may be named by a pattern)

    edge       harness harness.__main__ harness.cli
    runner     harness.runner harness.breakdown_pass
    report     harness.report harness.report.*
    measuring  harness.plan harness.collect harness.rebuild harness.worker harness.scan*
               harness.schedule harness.supervisor harness.prepared harness.checks
               harness.declarations harness.own_process
    layers     harness.layer harness.registry harness.forms harness.capabilities
               harness.toolchain
    records    harness.case harness.config harness.shard harness.environment
               harness.deviation harness.protocol harness.results harness.merge
               harness.lifetime harness.cache
    ground     harness.errors harness.text harness.points harness.dtypes harness.frame
               harness.stats harness.measure harness.memory harness.progress harness.names
               harness.pyperf_adapter harness.breakdown harness.profile_call harness.atomic
               harness.contention harness.outputs harness.ufuncs

- *ground*: standard library, NumPy, pandas, pyperf; no knowledge of runs
  (``text`` formats numbers and Markdown, ``frame`` declares the columns, ``atomic``
  writes files whole or not at all, ``names`` makes names read from files safe as file
  names, ``pyperf_adapter`` holds every use of pyperf's private names, ``contention``
  probes a call alternating with torch's ops, ``outputs`` says how a layer of several
  outputs is compared and differentiated, ``ufuncs`` makes ufunc calls visible to the
  profile hook).
- *records*: what a run is and writes: cases, settings, shards, the machine, the
  worker protocol, the results folder and who may write it (``lifetime``), the
  cache of checks across runs (``cache``).
- *layers*: the declaration API (torch), the registry, compiled forms, capabilities,
  the toolchains' first-use costs paid once (``toolchain``).
- *measuring*: planning, the worker process, folding raw events into tables,
  rebuilding a folder from them; ``scan``, which profiles a user's training script.
- *report*: reads results folders (no torch); a damaged folder is rebuilt through
  ``harness.rebuild``, imported only then.
- *runner*: drives the workers and writes the report; *edge*: the command line, and
  the package root, whose public names load their modules lazily.
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
