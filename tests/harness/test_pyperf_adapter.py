"""The private pyperf uses in ``harness.pyperf_adapter``, checked against pyperf's public
API: a pyperf release that changes them fails here, and says which."""

from __future__ import annotations

import io
import json

import pyperf
import pytest

from harness.pyperf_adapter import benchmark_json, json_version, load_suite, pyperf_suite


def _bench(name: str, processes: int = 3) -> pyperf.Benchmark:
    runs = [
        pyperf.Run(
            [1e-4 * (1 + p + i / 10) for i in range(4)],
            warmups=[(10, 2e-4)],
            metadata={"name": name, "loops": 10, "harness_process": p, "harness_pid": 100 + p},
            collect_metadata=False,
        )
        for p in range(processes)
    ]
    return pyperf.Benchmark(runs)


def _public_json(bench: pyperf.Benchmark) -> str:
    """What ``benchmark_json`` must give, through the public API: a dump of a one-benchmark
    suite, with the metadata the suite hoisted moved back into the benchmark."""
    buffer = io.StringIO()
    bench.dump(buffer)
    suite = json.loads(buffer.getvalue())
    (entry,) = suite["benchmarks"]
    metadata = {**suite.get("metadata", {}), **entry.get("metadata", {})}
    if metadata:
        entry["metadata"] = metadata
    return json.dumps(entry, sort_keys=True, separators=(",", ":"))


def _same(a: pyperf.Benchmark, b: pyperf.Benchmark) -> bool:
    return [(r.values, r.warmups, r.get_metadata()) for r in a.get_runs()] == [
        (r.values, r.warmups, r.get_metadata()) for r in b.get_runs()
    ]


def test_benchmark_json_is_what_pyperfs_public_dump_gives() -> None:
    bench = _bench("layer/torch/n=8/forward")
    text = benchmark_json(bench)
    assert text == _public_json(bench), "pyperf's Benchmark._as_json({}) changed"
    assert json.loads(text)["metadata"]["name"] == "layer/torch/n=8/forward"  # not hoisted


def test_a_streamed_suite_loads_with_pyperfs_public_loader() -> None:
    benches = [_bench(f"case-{i}") for i in range(3)]
    text = (
        '{"benchmarks":['
        + ",".join(benchmark_json(b) for b in benches)
        + f'],"version":"{json_version()}"}}'
    )
    loaded = pyperf.BenchmarkSuite.loads(text).get_benchmarks()
    assert [b.get_name() for b in loaded] == ["case-0", "case-1", "case-2"]
    assert all(_same(a, b) for a, b in zip(loaded, benches, strict=True))
    assert _same(load_suite(text).get_benchmarks()[1], benches[1])


def test_the_linear_suite_behaves_as_pyperfs_own() -> None:
    benches = [_bench(f"case-{i}", processes=2) for i in range(4)]
    ours, theirs = pyperf_suite(benches), pyperf.BenchmarkSuite(benches)
    assert isinstance(ours, pyperf.BenchmarkSuite)
    assert ours.get_benchmarks() == theirs.get_benchmarks() == benches
    assert len(ours) == 4 and ours.get_benchmark("case-2") is benches[2]
    assert ours.get_metadata() == theirs.get_metadata()
    dumps = []
    for suite in (ours, theirs):
        buffer = io.StringIO()
        suite.dump(buffer)
        dumps.append(buffer.getvalue())
    assert dumps[0] == dumps[1]
    assert [b.get_name() for b in load_suite(dumps[1])] == [f"case-{i}" for i in range(4)]
    with pytest.raises(ValueError, match="already a benchmark called 'case-0'"):
        pyperf_suite([*benches, _bench("case-0")])
    with pytest.raises(ValueError, match="not supported"):
        load_suite('{"benchmarks": [], "version": "0.0"}')
