"""The one place that knows pyperf beyond its public API.

pyperf.json is written and read as pyperf's own format, and on a big grid pyperf's
public routes are too slow, so two private names are used, here only:

- ``benchmark_json`` encodes one benchmark with ``Benchmark._as_json({})``, pyperf's own
  encoder with no metadata hoisted to a suite. The public route (``Benchmark.dump``,
  then moving the suite's metadata back into the benchmark) gives the same text at
  5.7 times the cost (283 µs against 49 µs a benchmark), paid for every benchmark of
  every group the runner rebuilds.
- ``pyperf_suite`` and ``load_suite`` build a ``BenchmarkSuite`` whose
  ``add_benchmark`` checks names with a set and appends to ``_benchmarks``: pyperf's
  own compares each name with every earlier one, quadratic in the grid (53 s to load
  the pyperf.json of a 3,000-size run, 6.5 s to build 4,000 cases).

``json_version`` is read from a public dump, not copied. Importing this module does
not import pyperf. ``tests/harness/test_pyperf_adapter.py`` checks each private use
against the public API, so that a pyperf release that changes them fails there,
loudly, and nowhere else.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Sequence
from typing import Any

__all__ = ["benchmark_json", "json_version", "load_suite", "pyperf_suite"]


def benchmark_json(bench: Any) -> str:
    """One pyperf benchmark as it appears in a suite's ``"benchmarks"`` list, with all of
    its metadata (none is hoisted to the suite): streamed suites are written from these."""
    data = bench._as_json({})  # private: see the module docstring
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


@functools.cache
def json_version() -> str:
    """The format version pyperf writes into a suite's JSON (``"1.0"``), from a dump."""
    import pyperf

    buffer = io.StringIO()
    run = pyperf.Run([1.0], metadata={"name": "version", "loops": 1}, collect_metadata=False)
    pyperf.Benchmark([run]).dump(buffer)
    return str(json.loads(buffer.getvalue())["version"])


@functools.cache
def _suite_class() -> Any:
    import pyperf

    class _Suite(pyperf.BenchmarkSuite):  # type: ignore[misc]
        """pyperf's ``BenchmarkSuite`` whose duplicate-name check uses a set."""

        def __init__(self, benchmarks: Any, filename: Any = None) -> None:
            self._names: set[str] = set()
            super().__init__(benchmarks, filename)

        def add_benchmark(self, benchmark: Any) -> None:
            name = benchmark.get_name()
            if name:
                if name in self._names:
                    raise ValueError(f"the suite has already a benchmark called {name!r}")
                self._names.add(name)
            self._benchmarks.append(benchmark)  # private: what pyperf's add_benchmark does

    return _Suite


def pyperf_suite(benchmarks: Sequence[Any]) -> Any:
    """A pyperf ``BenchmarkSuite`` of ``benchmarks`` (names must be unique), built in
    linear time."""
    return _suite_class()(list(benchmarks))


def load_suite(text: str) -> Any:
    """A pyperf.json's text as a ``BenchmarkSuite``, loaded in linear time; pyperf's
    own exceptions (``ValueError``, ``KeyError``, ...) for text it cannot read."""
    return _suite_class().load(io.StringIO(text))
