"""Splitting a plan into parts: --shard parsing, group costs, the partition, plan ids."""

from __future__ import annotations

import random

import pytest

from harness.errors import ConfigError
from harness.shard import Shard, assign, group_cost, parse_shard, plan_id, select

# ------------------------------------------------------------------------ Shard


def test_shard_str_and_json() -> None:
    shard = Shard(3, 8)
    assert str(shard) == "3/8"
    assert shard.to_json("abc") == {"index": 3, "count": 8, "plan": "abc"}


@pytest.mark.parametrize(("index", "count"), [(2, 2), (-1, 2), (0, 0), (True, 2)])
def test_shard_refuses_bad_values(index: int, count: int) -> None:
    with pytest.raises(ConfigError):
        Shard(index, count)


# ------------------------------------------------------------------ parse_shard


@pytest.mark.parametrize(
    ("text", "expected"), [("0/8", Shard(0, 8)), ("7/8", Shard(7, 8)), (" 1 / 2 ", Shard(1, 2))]
)
def test_explicit(text: str, expected: Shard) -> None:
    assert parse_shard(text, environ={}) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3/2", "--shard 3/2: index must be below the count"),
        ("2/2", "--shard 2/2: index must be below the count"),
        ("-1/2", "--shard -1/2: the index must be 0 or more"),
        ("0/0", "--shard 0/0: the count must be at least 1"),
        ("1", "--shard 1: expected K/N"),
        ("a/b", "--shard a/b: expected K/N"),
        ("1/2/3", "--shard 1/2/3: expected K/N"),
        ("", "--shard : expected K/N"),
        ("auto/x", "--shard auto/x: expected auto/N"),
        ("auto/0", "--shard auto/0: the count must be at least 1"),
    ],
)
def test_explicit_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_shard(text, environ={})
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_slurm_id_and_count() -> None:
    env = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "8"}
    assert parse_shard("auto", environ=env) == Shard(5, 8)


def test_slurm_id_min_max() -> None:
    # sbatch --array=10-17: IDs 10..17 are parts 0..7
    env = {
        "SLURM_ARRAY_TASK_ID": "12",
        "SLURM_ARRAY_TASK_MIN": "10",
        "SLURM_ARRAY_TASK_MAX": "17",
    }
    assert parse_shard("auto", environ=env) == Shard(2, 8)
    env["SLURM_ARRAY_TASK_COUNT"] = "8"  # real SLURM sets all of them
    env["SLURM_ARRAY_TASK_STEP"] = "1"
    assert parse_shard("auto", environ=env) == Shard(2, 8)


def test_slurm_step_array() -> None:
    # sbatch --array=0-15:4: IDs 0, 4, 8, 12 are parts 0..3
    env = {
        "SLURM_ARRAY_TASK_ID": "8",
        "SLURM_ARRAY_TASK_MIN": "0",
        "SLURM_ARRAY_TASK_MAX": "12",
        "SLURM_ARRAY_TASK_STEP": "4",
        "SLURM_ARRAY_TASK_COUNT": "4",
    }
    assert parse_shard("auto", environ=env) == Shard(2, 4)
    assert parse_shard("auto/4", environ=env) == Shard(2, 4)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {},
            "--shard auto: no SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX in the environment; "
            "give --shard K/N",
        ),
        ({"JOB_COMPLETION_INDEX": "2"}, "--shard auto: JOB_COMPLETION_INDEX is set"),
        ({"SLURM_ARRAY_TASK_ID": "3"}, "--shard auto: SLURM_ARRAY_TASK_ID is set but neither"),
        (
            {"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "4"},
            "--shard auto: SLURM_ARRAY_TASK_ID='x' is not an integer",
        ),
        (
            {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4"},
            "--shard auto: SLURM_ARRAY_TASK_ID=4 is not below SLURM_ARRAY_TASK_COUNT=4",
        ),
        (
            {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_MAX": "2"},
            "--shard auto: SLURM_ARRAY_TASK_MAX=2 is below SLURM_ARRAY_TASK_MIN=5",
        ),
        (
            {"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "7"},
            "--shard auto: SLURM_ARRAY_TASK_ID=9 is not in the array 0-7",
        ),
        (
            # --array=0,3,7: a list, IDs do not number the parts
            {
                "SLURM_ARRAY_TASK_ID": "3",
                "SLURM_ARRAY_TASK_MIN": "0",
                "SLURM_ARRAY_TASK_MAX": "7",
                "SLURM_ARRAY_TASK_COUNT": "3",
            },
            "--shard auto: the SLURM array is not one evenly spaced range",
        ),
        (
            {
                "SLURM_ARRAY_TASK_ID": "4",
                "SLURM_ARRAY_TASK_COUNT": "4",
                "SLURM_ARRAY_TASK_STEP": "4",
            },
            "--shard auto: a stepped SLURM array",
        ),
        (
            {
                "SLURM_ARRAY_TASK_ID": "2",
                "SLURM_ARRAY_TASK_MIN": "0",
                "SLURM_ARRAY_TASK_MAX": "12",
                "SLURM_ARRAY_TASK_STEP": "4",
            },
            "--shard auto: SLURM_ARRAY_TASK_ID=2 is not in the array 0-12:4",
        ),
        (
            {
                "SLURM_ARRAY_TASK_ID": "0",
                "SLURM_ARRAY_TASK_COUNT": "2",
                "SLURM_ARRAY_TASK_STEP": "0",
            },
            "--shard auto: SLURM_ARRAY_TASK_STEP=0 must be positive",
        ),
    ],
)
def test_auto_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_shard("auto", environ=env)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_kubernetes_indexed_job() -> None:
    assert parse_shard("auto/8", environ={"JOB_COMPLETION_INDEX": "0"}) == Shard(0, 8)
    assert parse_shard("auto/8", environ={"JOB_COMPLETION_INDEX": "7"}) == Shard(7, 8)


def test_auto_n_accepts_a_matching_slurm_array() -> None:
    env = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert parse_shard("auto/4", environ=env) == Shard(3, 4)


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        (
            "auto/8",
            {"JOB_COMPLETION_INDEX": "8"},
            "--shard auto/8: JOB_COMPLETION_INDEX=8 is not below 8",
        ),
        (
            "auto/8",
            {"JOB_COMPLETION_INDEX": "-1"},
            "--shard auto/8: JOB_COMPLETION_INDEX=-1 is not below 8",
        ),
        (
            "auto/8",
            {"JOB_COMPLETION_INDEX": "two"},
            "--shard auto/8: JOB_COMPLETION_INDEX='two' is not an integer",
        ),
        (
            "auto/8",
            {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4"},
            "--shard auto/8: the SLURM array has 4 tasks, not 8",
        ),
        ("auto/8", {}, "--shard auto/8: no JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID"),
    ],
)
def test_auto_n_errors(text: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_shard(text, environ=env)
    assert str(err.value).startswith(message)


def test_default_environ_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    assert parse_shard("auto/2") == Shard(1, 2)


# ------------------------------------------------------------------- group_cost


def test_group_cost() -> None:
    assert group_cost({"n": 64, "k": 3}, 4) == 4 * 64 * 3
    assert group_cost({"n": 64}, 4) < group_cost({"n": 128}, 4)
    assert group_cost({"n": 64}, 2) < group_cost({"n": 64}, 4)
    # strings and booleans count as 1; values below 1 as 1; never zero
    assert group_cost({"mode": "same", "flag": True}, 3) == 3
    assert group_cost({"n": 0}, 0) == 1
    assert group_cost({}, 1) == 1
    assert group_cost({"p": 0.5}, 2) == 2
    assert group_cost({"n": float("nan")}, 2) == 2


# ----------------------------------------------------------------------- assign


def _groups(seed: int, count: int) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        n = rng.choice([8, 16, 32, 64, 128, 256, 512, 1024])
        k = rng.choice([3, 7])
        out.append((f"layer{i % 3}/n={n},k={k}/g{i}", group_cost({"n": n, "k": k}, 8)))
    return out


@pytest.mark.parametrize(("seed", "groups", "count"), [(0, 100, 8), (1, 37, 4), (2, 12, 5)])
def test_assign_balanced(seed: int, groups: int, count: int) -> None:
    items = _groups(seed, groups)
    parts = assign(items, count)
    assert set(parts) == {name for name, _ in items}
    assert set(parts.values()) <= set(range(count))
    loads = [0.0] * count
    for name, cost in items:
        loads[parts[name]] += cost
    mean = sum(loads) / count
    largest = max(cost for _, cost in items)
    assert max(loads) <= mean + largest
    assert abs(sum(loads) - sum(c for _, c in items)) < 1e-6 * sum(loads)


def test_assign_equal_costs_split_evenly() -> None:
    items = [(f"g{i:02d}", 1.0) for i in range(16)]
    parts = assign(items, 4)
    sizes = [list(parts.values()).count(i) for i in range(4)]
    assert sizes == [4, 4, 4, 4]


def test_assign_deterministic_under_shuffle() -> None:
    items = _groups(3, 60)
    # ties on purpose: equal costs are broken by name
    items += [(f"tie{i}", 1000.0) for i in range(10)]
    expected = assign(items, 6)
    for seed in range(10):
        shuffled = list(items)
        random.Random(seed).shuffle(shuffled)
        assert assign(shuffled, 6) == expected


def test_assign_more_parts_than_groups() -> None:
    parts = assign([("a", 1.0), ("b", 2.0)], 4)
    assert parts == {"b": 0, "a": 1}
    assert assign([], 3) == {}


def test_assign_errors() -> None:
    with pytest.raises(ConfigError):
        assign([("a", 1.0)], 0)
    with pytest.raises(ValueError, match="listed twice"):
        assign([("a", 1.0), ("a", 2.0)], 2)
    with pytest.raises(ValueError, match="positive"):
        assign([("a", 0.0)], 2)


def test_select_covers_every_group_once() -> None:
    items = _groups(4, 40)
    chosen = [select(items, Shard(i, 3)) for i in range(3)]
    assert set().union(*chosen) == {name for name, _ in items}
    assert sum(len(c) for c in chosen) == len(items)


# ---------------------------------------------------------------------- plan_id

CONFIG = {
    "layers": ["fft", "conv2d"],
    "impls": None,
    "grid": {"n": ["8", "16", "32"], "k": ["3"]},
    "dtypes": ["float32"],
    "threads": [1],
    "devices": ["cpu"],
    "profile": "quick",
    "layers_from": [],
    "seed": 0,
    "capabilities": True,
    "timeout_s": None,
}


def test_plan_id_stable() -> None:
    pid = plan_id(CONFIG)
    assert len(pid) == 16
    assert all(c in "0123456789abcdef" for c in pid)
    assert plan_id(dict(CONFIG)) == pid
    assert plan_id(dict(reversed(list(CONFIG.items())))) == pid  # key order
    as_tuples = {
        **CONFIG,
        "layers": ("fft", "conv2d"),
        "grid": {"k": ("3",), "n": ("8", "16", "32")},
    }
    assert plan_id(as_tuples) == pid
    # a known value: the id must not change between versions or machines
    assert pid == plan_id(
        {
            "capabilities": True,
            "devices": ["cpu"],
            "dtypes": ["float32"],
            "grid": {"k": ["3"], "n": ["8", "16", "32"]},
            "impls": None,
            "layers": ["fft", "conv2d"],
            "layers_from": [],
            "profile": "quick",
            "seed": 0,
            "threads": [1],
            "timeout_s": None,
        }
    )


def test_plan_id_ignores_shard_out_and_presentation() -> None:
    pid = plan_id(CONFIG)
    extra = {
        **CONFIG,
        "shard": {"index": 1, "count": 4},
        "out": "results/part-1",
        "quiet": True,
        "report": False,
    }
    assert plan_id(extra) == pid


@pytest.mark.parametrize(
    "change",
    [
        {"grid": {"n": ["8", "16", "64"], "k": ["3"]}},
        {"grid": {"n": ["8", "16", "32"]}},
        {"layers": ["fft"]},
        {"dtypes": ["float64"]},
        {"threads": [1, 2]},
        {"profile": "default"},
        {"seed": 1},
        {"impls": ["numpy", "torch"]},
    ],
)
def test_plan_id_sensitive(change: dict[str, object]) -> None:
    assert plan_id({**CONFIG, **change}) != plan_id(CONFIG)
