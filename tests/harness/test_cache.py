"""The cache of checks across runs (``harness.cache``): keys that change with the code,
the versions and the point; damaged entries recomputed with a note; concurrent writers;
the worker's lookups; ``cache info|clear``; a cold and a warm run (slow).

Every test points the cache at a temporary folder (``tests/conftest.py`` also sets
``HARNESS_CACHE_DIR`` for the whole session)."""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from harness import cache
from harness.cache import Checks, Store, cache_root, cache_summary, code_files, code_hash
from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]
KEY = {"layer": "fft", "point": "n=8", "code": "abc"}


# -- the store ----------------------------------------------------------------------------


def test_a_stored_value_is_served_for_its_key_only(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.get("gradcheck", KEY).status == "miss"
    store.put("gradcheck", KEY, [True, "", "n=8", ""])
    found = store.get("gradcheck", KEY)
    assert found.status == "hit" and found.value == [True, "", "n=8", ""]
    for changed in ({**KEY, "point": "n=16"}, {**KEY, "code": "abd"}):
        assert not store.get("gradcheck", changed).hit
    assert not store.get("setup", KEY).hit  # another check


def test_a_damaged_entry_is_removed_and_recomputed_with_a_note(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = store.put("capabilities", KEY, [{"status": "ok"}])
    assert path is not None
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b'"ok"', b'"no"'))  # an edited value: checksum fails
    found = store.get("capabilities", KEY)
    assert found.status == "damaged" and not found.hit
    assert found.note is not None and "checksum does not match" in found.note
    assert not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw[: len(raw) // 2])  # a torn file
    assert "not a readable entry" in (store.get("capabilities", KEY).note or "")
    store.put("capabilities", KEY, [{"status": "ok"}])
    assert store.get("capabilities", KEY).value == [{"status": "ok"}]


def _write_many(root: str, worker: int) -> None:
    store = Store(root)
    for i in range(40):
        store.put("setup", KEY, {"worker": worker, "i": i, "pad": "x" * 20_000})


def test_two_processes_writing_one_key_leave_one_valid_entry(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_write_many, args=(str(tmp_path), w)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = Store(tmp_path)
    found = store.get("setup", KEY)
    assert found.hit and found.value["i"] == 39 and found.value["worker"] in (0, 1)
    entries = [p for p in (tmp_path / "checks").rglob("*") if p.is_file()]
    assert entries == [store.path("setup", KEY)]  # no temporary file left behind


def test_info_clear_and_eviction_of_the_least_recently_used(tmp_path: Path) -> None:
    store = Store(tmp_path, limit_bytes=10**9)
    for n in range(4):
        store.put("setup", {**KEY, "n": n}, {"pad": "x" * 1000})
        os.utime(store.path("setup", {**KEY, "n": n}), (1000 + n, 1000 + n))
    (tmp_path / "onnx" / "fft-torch-1").mkdir(parents=True)
    (tmp_path / "onnx" / "fft-torch-1" / "model.onnx").write_bytes(b"m" * 500)
    info = store.info()
    assert info.entries == {"checks": 4, "onnx": 1} and info.total_bytes > 4000
    assert info.oldest == 1000
    assert store.get("setup", {**KEY, "n": 0}).hit  # a hit makes it the most recent
    store.limit_bytes = info.total_bytes - 1500
    removed = store.evict()
    assert removed == [store.path("setup", {**KEY, "n": n}) for n in (1, 2)]
    assert store.get("setup", {**KEY, "n": 0}).hit
    assert store.clear() == 3 and store.info().total_entries == 0


def test_the_cache_root_is_one_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from harness.forms import onnx_cache_dir

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "h"))
    assert cache_root() == tmp_path / "h" and onnx_cache_dir() == tmp_path / "h" / "onnx"
    assert cache_root(tmp_path / "given") == tmp_path / "given"
    monkeypatch.delenv("HARNESS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "port-harness"


# -- keys -----------------------------------------------------------------------------------


def _modules(tmp_path: Path, backward: str) -> Any:
    """A layer module importing its autograd Function from a second module."""
    pkg = tmp_path / "mylayers"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "seedfn.py").write_text(
        textwrap.dedent(f"""
        import numpy as np
        import torch

        class Twice(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return torch.from_numpy(np.asarray(x.detach().numpy() * 2))

            @staticmethod
            def backward(ctx, g):
                return {backward}
        """)
    )
    (pkg / "decl.py").write_text(
        "from mylayers.seedfn import Twice\n\ndef make(point, gen):\n    return ()\n"
        "def factory(point):\n    return Twice\n"
    )
    for name in ("mylayers.decl", "mylayers.seedfn", "mylayers"):
        sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module("mylayers.decl")


def test_the_code_hash_follows_a_line_of_a_backward_in_an_imported_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    decl = _modules(tmp_path, "g * 2")
    files = code_files([decl.make, decl.factory])
    assert {Path(f).name for f in files} == {"decl.py", "seedfn.py"}  # numpy, torch not
    before = code_hash([decl.make, decl.factory])
    assert code_hash([decl.make, decl.factory]) == before  # unchanged: the same
    decl = _modules(tmp_path, "g * 3")
    assert code_hash([decl.make, decl.factory]) != before


def test_a_builtin_baselines_module_is_in_its_layers_code() -> None:
    from harness.registry import Registry

    registry = Registry.default()
    checks = Checks(Path("/nonexistent"), "AVX512", 0)
    files = code_files(cache._layer_objects(registry.get("conv2d")))
    assert {"conv2d.py", "seed.py", "native.py"} <= {Path(f).name for f in files}
    assert not any("/harness/" in f for f in files)  # the harness is in the environment
    assert checks.code(registry.get("conv2d")) != checks.code(registry.get("fft"))


def test_the_key_changes_with_versions_point_and_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.registry import Registry

    layer = Registry.default().get("fft")
    checks = Checks(Path("/nonexistent"), "AVX512", 0)
    key = checks.key("gradcheck", layer, impl="numpy", point="n=8")
    assert key == checks.key("gradcheck", layer, impl="numpy", point="n=8")
    assert key != checks.key("gradcheck", layer, impl="numpy", point="n=16")
    assert key != Checks(Path("/x"), "AVX512", 1).key("gradcheck", layer, impl="numpy", point="n=8")
    assert key != Checks(Path("/x"), "AVX2", 0).key("gradcheck", layer, impl="numpy", point="n=8")
    monkeypatch.setattr(cache, "_ENV_CACHE", {})
    monkeypatch.setattr(cache, "_version", lambda name: "9.9" if name == "torch" else "1")
    other = Checks(Path("/x"), "AVX512", 0).key("gradcheck", layer, impl="numpy", point="n=8")
    assert other["environment"]["torch"] == "9.9" and other != key


# -- the worker's lookups ---------------------------------------------------------------------


def _worker(tmp_path: Path, cache_dir: Path | None) -> Any:
    from harness.protocol import Job
    from harness.worker import Worker

    raw = tmp_path / f"raw-{time.monotonic_ns()}.jsonl"
    job = Job("setup", (), str(raw), cache_dir=str(cache_dir) if cache_dir else None)
    return Worker(job), raw


def _events(raw: Path) -> list[Any]:
    from harness.protocol import EventLog

    return EventLog.read(raw)


#: Modules the worker imports that compute no check's outcome, and why.
_NOT_CHECKS = {
    "atomic": "writes files",
    "case": "names cases",
    "environment": "describes the machine (its capability is in the key)",
    "frame": "documents columns",
    "lifetime": "watches the parent process",
    "own_process": "runs timed values in child processes",
    "protocol": "the event format (a cached value's fields have its check's version)",
    "text": "formats text",
    "toolchain": "warms compile before a fork",
}


def test_every_module_the_worker_runs_keys_the_cache_or_computes_no_check() -> None:
    """2026-11-30: ``harness.checks`` (gradcheck, the setup checks) was split out of the
    worker and never listed: an edit to it served stale checks from the cache."""
    import ast

    root = Path(cache.__file__).parent
    seen: set[str] = set()
    todo = ["worker"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = root / f"{name}.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harness."):
                todo.append(str(node.module).split(".")[1])
    assert seen - set(cache.CHECK_MODULES) == set(_NOT_CHECKS)
    assert not set(_NOT_CHECKS) & set(cache.CHECK_MODULES)


def test_the_worker_serves_gradcheck_from_the_cache_and_recomputes_a_damaged_entry(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    store_dir = tmp_path / "cache"
    results = []
    for _ in range(2):
        worker, raw = _worker(tmp_path, store_dir)
        worker.gradcheck("fft", "numpy")
        results.append(_events(raw)[-1])
    assert [e.cache for e in results] == ["miss", "hit"]
    assert results[0].ok is False and (results[0].ok, results[0].error) == (
        results[1].ok,
        results[1].error,
    )
    (entry,) = (store_dir / "checks" / "gradcheck").rglob("*.json")
    data = json.loads(entry.read_text())
    data["value"][0] = True  # a wrong gradient made right by hand: never trusted
    entry.write_text(json.dumps(data))
    worker, raw = _worker(tmp_path, store_dir)
    worker.gradcheck("fft", "numpy")
    done = _events(raw)[-1]
    assert done.cache == "damaged" and done.ok is False
    assert "was damaged (its checksum does not match); recomputed" in capfd.readouterr().err
    assert cache_summary(store_dir, [*results, done]) == {
        "enabled": True,
        "dir": str(store_dir),
        "hits": {"gradcheck": {"fft": 1}},
        "misses": {"gradcheck": {"fft": 2}},
        "damaged": 1,
    }


def test_the_worker_serves_setup_from_the_cache_without_building_the_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.worker
    from harness.case import Variant

    variant = Variant.make("fft", "torch", {"n": 8}, "float32", 1)
    found = []
    for _ in range(2):
        worker, raw = _worker(tmp_path, tmp_path / "cache")
        worker.job = type(worker.job)(**{**vars(worker.job), "min_time": 0.0005})
        worker.setup(variant)
        found.append(_events(raw)[-1])
        # the warm worker must not build the form (its compile or export is the cost a
        # warm run saves): building raises from the second worker on
        monkeypatch.setattr(harness.worker, "build", _no_build)
    cold, warm = found
    assert (cold.cache, warm.cache) == ("miss", "hit")
    for phase in ("forward", "backward", "step"):
        assert cold.phases[phase].deviations == warm.phases[phase].deviations
        assert cold.phases[phase].peak_bytes == warm.phases[phase].peak_bytes
        # the calibration is the cold run's plan (the timing worker checks it); page
        # faults depend on the process's history and are not served from the cache
        assert warm.phases[phase].loops == cold.phases[phase].loops
        assert warm.phases[phase].estimate_s == cold.phases[phase].estimate_s
        assert cold.phases[phase].minor_faults is not None
        assert warm.phases[phase].minor_faults is None
    assert warm.oneoff_s == cold.oneoff_s


def test_a_setup_calibrated_for_another_value_length_is_checked_again(tmp_path: Path) -> None:
    from harness.case import Variant

    variant = Variant.make("fft", "torch", {"n": 8}, "float32", 1)
    found = []
    for min_time in (0.0005, 0.002, 0.0005):
        worker, raw = _worker(tmp_path, tmp_path / "cache")
        worker.job = type(worker.job)(**{**vars(worker.job), "min_time": min_time})
        worker.setup(variant)
        found.append(_events(raw)[-1])
    assert [done.cache for done in found] == ["miss", "miss", "hit"]
    # calibrated afresh: each value lasts its own min_time (loops x the estimate per
    # call; 0.0005 s's 24 loops would make 0.5 ms values at 0.002). Not "more loops":
    # under CI's load one slow call made the second estimate 2.2 ms, and 1 loop of it
    # was right (2026-12-02)
    for done, min_time in zip(found, (0.0005, 0.002, 0.0005), strict=True):
        forward = done.phases["forward"]
        assert forward.loops * forward.estimate_s >= 0.99 * min_time, (min_time, forward)


def _no_build(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a setup served from the cache built the form")


def test_a_setup_entry_without_a_calibration_is_checked_in_full(tmp_path: Path) -> None:
    from harness.case import Variant

    variant = Variant.make("fft", "torch", {"n": 8}, "float32", 1)
    worker, raw = _worker(tmp_path, tmp_path / "cache")
    entry = {
        "built": True,
        "phases": {"forward": {"status": "ok", "deviations": []}},  # an entry of version 1
        "oneoff_s": None,
        "oneoff_what": None,
    }
    assert worker._setup_from_cache(variant, entry) is False
    assert worker._setup_from_cache(variant, {"phases": {}}) is False  # no "built"
    assert not raw.exists() or _events(raw) == []


def _profile_worker(tmp_path: Path, tasks: tuple[Any, ...]) -> Any:
    from harness.protocol import Job
    from harness.worker import Worker

    raw = tmp_path / f"raw-{time.monotonic_ns()}.jsonl"
    job = Job("profile", tasks, str(raw), cache_dir=str(tmp_path / "cache"))
    return Worker(job), raw


def test_a_breakdown_is_served_from_the_cache_without_preparing_the_variant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.worker
    from harness.case import Variant
    from harness.protocol import BreakdownDone, ProfileTask

    monkeypatch.setenv("HARNESS_FORK_GROUPS", "0")  # profiled here, not in a child
    task = ProfileTask(Variant.make("fft", "torch", {"n": 8}, "float32", 1), ("forward",))
    worker, raw = _profile_worker(tmp_path, (task,))
    worker.run()
    (cold,) = [e for e in _events(raw) if isinstance(e, BreakdownDone)]
    assert cold.cache == "miss" and cold.phases["forward"].status == "ok"
    assert cold.phases["forward"].parts and cold.seconds > 0
    # a warm worker neither prepares the variant nor profiles it
    monkeypatch.setattr(harness.worker, "build", _no_build)
    monkeypatch.setattr(harness.worker, "profile_phase", _no_build)
    worker, raw = _profile_worker(tmp_path, (task,))
    worker.run()
    (warm,) = [e for e in _events(raw) if isinstance(e, BreakdownDone)]
    assert warm.cache == "hit" and warm.seconds == 0.0
    assert warm.phases == cold.phases
    summary = cache_summary(tmp_path / "cache", [cold, warm])
    assert summary["hits"] == {"breakdown": {"fft": 1}}
    assert summary["misses"] == {"breakdown": {"fft": 1}}
    # another phase set, another key: profiled in full (and build refuses)
    other = ProfileTask(task.variant, ("forward", "step"))
    worker, raw = _profile_worker(tmp_path, (other,))
    worker.run()
    (done,) = [e for e in _events(raw) if isinstance(e, BreakdownDone)]
    assert done.cache == "miss" and done.phases["step"].status == "error"


def test_a_breakdown_that_failed_is_not_cached_but_an_unsupported_form_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.worker
    from harness.case import Variant
    from harness.errors import FormUnsupported
    from harness.protocol import BreakdownDone, ProfileTask

    monkeypatch.setenv("HARNESS_FORK_GROUPS", "0")
    task = ProfileTask(Variant.make("fft", "torch", {"n": 8}, "float32", 1), ("forward",))

    def unsupported(*args: Any, **kwargs: Any) -> Any:
        raise FormUnsupported("no ONNX function for aten::fft_rfft")

    for fails, expected in ((_no_build, ["miss", "miss"]), (unsupported, ["miss", "hit"])):
        monkeypatch.setattr(harness.worker, "build", fails)
        seen = []
        for _ in range(2):
            worker, raw = _profile_worker(tmp_path / fails.__name__, (task,))
            worker.run()
            (done,) = [e for e in _events(raw) if isinstance(e, BreakdownDone)]
            seen.append(done)
        assert [d.cache for d in seen] == expected, fails.__name__
        assert seen[1].phases == seen[0].phases


def test_no_cache_dir_computes_everything_and_stores_nothing(tmp_path: Path) -> None:
    worker, raw = _worker(tmp_path, None)
    worker.gradcheck("fft", "numpy")
    assert _events(raw)[-1].cache == ""
    assert worker.checks is None


# -- settings and the command line -------------------------------------------------------------


def test_no_cache_and_cache_dir_are_settings_outside_the_plan() -> None:
    from harness.cli import build_parser
    from harness.config import RunConfig, settings_from_namespace

    args = build_parser().parse_args(["run", "--no-cache", "--cache-dir", "/tmp/c"])
    settings = settings_from_namespace(args)
    assert settings == {"cache": False, "cache_dir": "/tmp/c"}
    config = RunConfig(**settings)
    assert "cache" not in config.plan_json() and "cache_dir" not in config.plan_json()
    assert RunConfig().cache is True and RunConfig().cache_dir is None


def test_cache_info_and_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Store(tmp_path).put("gradcheck", KEY, [True, "", "n=8", ""])
    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"cache: {tmp_path}" in out and "checks: 1" in out and "oldest: 20" in out
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert Store(tmp_path).info().total_entries == 0
    assert main(["cache", "nope"]) == 2


def test_the_report_says_what_came_from_the_cache() -> None:
    from harness.report.explain import cache_sentence

    record = {
        "enabled": True,
        "dir": "/c",
        "hits": {"gradcheck": {"fft": 1}, "setup": {"fft": 10, "conv2d": 4}},
        "misses": {"setup": {"conv2d": 2}},
        "damaged": 1,
    }
    text = cache_sentence(record)
    assert text is not None
    assert "gradcheck of fft (1)" in text
    assert (
        "deviation, peak memory, one-off cost and loop calibration of conv2d (4), fft (10)" in text
    )
    assert "2 computed, 1 of them because their cache entry was damaged" in text
    assert "checked the cached loop calibration in its warm-up round" in text
    cold = cache_sentence({**record, "hits": {}})
    assert cold is not None and "loop calibration" not in cold
    assert "off" in (cache_sentence({"enabled": False}) or "")
    assert cache_sentence({}) is None


# -- a cold and a warm run -------------------------------------------------------------------------


@pytest.mark.slow
def test_a_warm_run_reports_its_cached_checks_and_reaches_the_same_verdicts(
    tmp_path: Path,
) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from stability import _verdict_pairs, decisions, verdicts_agree
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    common = ["--layers", "fft", "--grid", "n=8,64", "--impls", "numpy,torch"]
    common += ["--profile", "quick", "--budget", "3", "--no-memory", "--quiet"]
    # nothing profiled is cached: the profiling pass is tested in test_breakdown_pass.py
    common += ["--breakdown", "none", "--cache-dir", str(tmp_path / "cache")]
    for name in ("cold", "warm"):
        assert main(["run", *common, "--out", str(tmp_path / name)]) == 0
    cold = json.loads((tmp_path / "cold" / "run.json").read_text())["cache"]
    warm = json.loads((tmp_path / "warm" / "run.json").read_text())["cache"]
    assert cold["hits"] == {} and cold["misses"]["gradcheck"] == {"fft": 1}
    assert warm["misses"] == {}
    assert warm["hits"]["gradcheck"] == {"fft": 1} and warm["hits"]["setup"]["fft"] >= 2
    report = (tmp_path / "warm" / "report.md").read_text()
    assert "From the cache of checks" in report and "gradcheck of fft (1)" in report
    pairs = [
        pair
        for a, b in zip(decisions(tmp_path / "cold"), decisions(tmp_path / "warm"), strict=True)
        for pair in _verdict_pairs(a, b)
    ]
    assert pairs and all(verdicts_agree(sa, sb) for _, sa, sb in pairs)


def test_a_layers_declaration_check_is_served_from_the_cache_without_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.declarations
    import harness.runner
    from harness.config import RunConfig
    from harness.protocol import EventLog, Job, Validated

    started: list[tuple[str, ...]] = []

    def fake_worker(job_path: Path, env: Any, timeout: float) -> tuple[int, list[str]]:
        job = Job.read(str(job_path))
        started.append(tuple(t.layer for t in job.tasks))
        log = EventLog(job.raw)
        for task in job.tasks:
            log.write(Validated(task.layer, (f"note on {task.layer}",)))
        log.close()
        return 0, []

    monkeypatch.setattr(harness.declarations, "run_to_end", fake_worker)
    config = RunConfig(layers=("fft", "conv2d"), cache_dir=str(tmp_path / "cache"))
    cold = harness.runner.Runner(config, out=tmp_path / "a", quiet=True)
    assert cold.validate() == ["note on fft", "note on conv2d"]
    warm = harness.runner.Runner(config, out=tmp_path / "b", quiet=True)
    assert warm.validate() == ["note on fft", "note on conv2d"]
    assert started == [("fft", "conv2d")]  # the warm run started no worker
    assert warm.declarations.cache == {"fft": "hit", "conv2d": "hit"}
    # --no-cache: checked again, nothing read
    off = harness.runner.Runner(
        RunConfig(layers=("fft",), cache=False), out=tmp_path / "c", quiet=True
    )
    assert off.validate() == ["note on fft"] and started[-1] == ("fft",)
    assert off.declarations.cache == {}
