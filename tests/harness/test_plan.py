"""Planning and the resume checks: pure, no workers started."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config import RunConfig
from harness.environment import fingerprint
from harness.errors import ConfigError, ResultsError
from harness.plan import make_plan
from harness.registry import Registry
from harness.results import SCHEMA_VERSION, versioned
from harness.runner import resume_config
from harness.shard import Shard


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.default()


def test_groups_hold_every_implementation_of_a_point(registry: Registry) -> None:
    plan = make_plan(
        registry,
        RunConfig(layers=("conv2d",), grid={"n": ("8", "16"), "k": ("3", "7")}, threads=(1,)),
    )
    # k=7 fits n=8 and n=16: 4 points, one group each
    assert [g.name for g in plan.groups] == [
        "conv2d/n=8,k=3/float32/t1/cpu/glibc",
        "conv2d/n=8,k=7/float32/t1/cpu/glibc",
        "conv2d/n=16,k=3/float32/t1/cpu/glibc",
        "conv2d/n=16,k=7/float32/t1/cpu/glibc",
    ]
    assert plan.impls["conv2d"][:2] == ("scipy", "torch")
    assert len(plan.variants) == 4 * len(plan.impls["conv2d"])
    info = plan.info["conv2d"]
    assert info.size_axis == "n" and info.baselines == ("scipy",)
    assert "onnxruntime" not in info.backward and "torch" in info.backward
    # the seed's reference is its native's own function: said in run.json
    assert info.reference_is == "torch" and info.to_json()["reference_is"] == "torch"


def test_settings_multiply_groups(registry: Registry) -> None:
    plan = make_plan(
        registry,
        RunConfig(
            layers=("fft",), grid={"n": ("8",)}, dtypes=("float32", "float64"), threads=(1, 2)
        ),
    )
    assert len(plan.groups) == 4
    assert {g.setting for g in plan.groups} == {
        "float32/t1/cpu/glibc",
        "float32/t2/cpu/glibc",
        "float64/t1/cpu/glibc",
        "float64/t2/cpu/glibc",
    }


def test_shards_partition_the_groups(registry: Registry) -> None:
    config = RunConfig(
        layers=("conv2d",), grid={"n": ("8", "16", "32", "64", "128"), "k": ("3", "7")}
    )
    whole = {g.name for g in make_plan(registry, config).groups}
    parts = [
        {
            g.name
            for g in make_plan(
                registry, RunConfig(**{**config.to_json(), "shard": Shard(i, 3)})
            ).groups
        }
        for i in range(3)
    ]
    assert set().union(*parts) == whole
    assert sum(len(p) for p in parts) == len(whole)
    assert all(parts)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (RunConfig(layers=("nope",)), "unknown layer 'nope'"),
        (RunConfig(impls=("cuda_fft",)), "unknown implementation 'cuda_fft'"),
        (RunConfig(grid={"q": ("1",)}), "not an axis"),
        (RunConfig(layers=("conv2d",), grid={"n": ("4",), "k": ("7",)}), "no valid point"),
    ],
)
def test_bad_plans_are_refused(registry: Registry, config: RunConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_plan(registry, config)


def _folder(
    tmp_path: Path, config: RunConfig, env: dict[str, object], schema: int = SCHEMA_VERSION
) -> Path:
    folder = tmp_path / "run"
    folder.mkdir(parents=True)
    data = versioned({"config": config.to_json(), "fingerprint": fingerprint(env)})
    data["schema"] = schema
    (folder / "run.json").write_text(json.dumps(data))
    return folder


ENV = {"cpu": "X", "cpu_capability": "AVX2", "cores": 2, "versions": {"torch": "2.13.0"}}


def test_resume_keeps_the_stored_settings(tmp_path: Path) -> None:
    stored = RunConfig(layers=("fft",), profile="quick", grid={"n": ("8",)})
    folder = _folder(tmp_path, stored, ENV)
    assert resume_config(folder, {}, ENV) == stored
    assert resume_config(folder, {"profile": "quick"}, ENV) == stored  # the same is fine


def test_resume_refuses_conflicting_options_by_name(tmp_path: Path) -> None:
    folder = _folder(tmp_path, RunConfig(profile="quick"), ENV)
    with pytest.raises(ConfigError, match=r"--profile \(rigorous here, quick there\)"):
        resume_config(folder, {"profile": "rigorous"}, ENV)
    with pytest.raises(ConfigError, match="--grid"):
        resume_config(folder, {"grid": {"n": ("16",)}}, ENV)


def test_resume_refuses_another_machine_and_other_formats(tmp_path: Path) -> None:
    folder = _folder(tmp_path, RunConfig(), ENV)
    with pytest.raises(ConfigError, match="another machine"):
        resume_config(folder, {}, {**ENV, "cpu_capability": "AVX512"})
    (folder / "run.json").write_text("{not json")
    with pytest.raises(ResultsError, match="damaged"):
        resume_config(folder, {}, ENV)
    newer = _folder(tmp_path / "newer", RunConfig(), ENV, schema=SCHEMA_VERSION + 1)
    with pytest.raises(ResultsError, match="newer harness"):
        resume_config(newer, {}, ENV)
    older = _folder(tmp_path / "older", RunConfig(), ENV, schema=SCHEMA_VERSION - 1)
    with pytest.raises(ConfigError, match="older harness"):
        resume_config(older, {}, ENV)
    with pytest.raises(ConfigError, match="no such folder"):
        resume_config(tmp_path / "missing", {}, ENV)


@pytest.mark.parametrize("count", [11, 10**12])
def test_shard_count_above_the_groups_is_refused_in_one_line(
    registry: Registry, count: int
) -> None:
    # 10 groups; a count of 10**12 used to build a list of 10**12 parts (MemoryError)
    config = RunConfig(
        layers=("conv2d",),
        grid={"n": ("8", "16", "32", "64", "128"), "k": ("3", "7")},
        shard=Shard(0, count),
    )
    with pytest.raises(ConfigError, match=r"has only 10 groups") as err:
        make_plan(registry, config)
    assert "\n" not in str(err.value)


def test_shard_count_from_slurm_above_the_groups_is_refused(registry: Registry) -> None:
    from harness.shard import parse_shard

    shard = parse_shard("auto", {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": str(10**12)})
    config = RunConfig(layers=("fft",), grid={"n": ("8", "16")}, shard=shard)
    with pytest.raises(ConfigError, match=r"at most 2 parts"):
        make_plan(registry, config)
