from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import PROFILES, RunConfig, load_config, parse_grid, parse_grid_values
from harness.errors import ConfigError


def test_grid_lists_and_ranges() -> None:
    assert parse_grid_values("n", "8,16,32") == ("8", "16", "32")
    assert parse_grid_values("n", "8..1024*2") == tuple(str(2**i) for i in range(3, 11))
    assert parse_grid_values("n", "8..40+16") == ("8", "24", "40")
    assert parse_grid_values("n", "4,8..16*2,8") == ("4", "8", "16")  # repeats dropped, order kept
    assert parse_grid(["n=8,16", "k=3"]) == {"n": ("8", "16"), "k": ("3",)}
    assert parse_grid({"n": [8, 16], "k": "3..5+2"}) == {"n": ("8", "16"), "k": ("3", "5")}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["n"], "expected AXIS=VALUES"),
        (["=8"], "expected AXIS=VALUES"),
        (["n=8,,16"], "comma-separated"),
        (["n=8..x*2"], "must look like"),
        (["n=16..8*2"], "empty"),
        (["n=8..64*1"], "never reaches"),
        (["n=0..64*2"], "start above 0"),
        (["n=8", "n=16"], "given twice"),
    ],
)
def test_malformed_grids_are_refused(items: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_grid(items)


def test_run_config_validation() -> None:
    with pytest.raises(ConfigError, match="unknown dtype"):
        RunConfig(dtypes=("float8",))
    with pytest.raises(ConfigError, match="threads"):
        RunConfig(threads=(0,))
    with pytest.raises(ConfigError, match="unknown device"):
        RunConfig(devices=("tpu",))
    with pytest.raises(ConfigError, match="unknown profile"):
        RunConfig(profile="slow")
    with pytest.raises(ConfigError, match="unknown allocator"):
        RunConfig(allocators=("hoard",))
    config = RunConfig(layers=("fft",), grid={"n": ("8",)}, threads=(1, 2))
    assert RunConfig.from_json(config.to_json()) == config
    assert set(PROFILES) == {"quick", "default", "rigorous"}


def test_toml_config(tmp_path: Path) -> None:
    path = tmp_path / "grid.toml"
    path.write_text(
        'layers = ["conv2d"]\nimpls = "scipy,torch"\ndtype = ["float32", "float64"]\n'
        'threads = [1, 2]\nprofile = "quick"\nout = "somewhere"\n[grid]\nn = "8..32*2"\nk = [3]\n'
    )
    settings = load_config(path)
    out = settings.pop("out")
    config = RunConfig(**settings)
    assert out == "somewhere"
    assert config.layers == ("conv2d",) and config.impls == ("scipy", "torch")
    assert config.grid == {"n": ("8", "16", "32"), "k": ("3",)}
    assert config.dtypes == ("float32", "float64") and config.threads == (1, 2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("layers = [", "not valid TOML"),
        ("colour = 1", "unknown keys"),
        ("grid = 3", "grid must be a table"),
    ],
)
def test_bad_toml_config(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml")


# -- one declaration: CLI options, TOML keys, run.json and harness.run come from it --


def test_every_setting_is_a_cli_option_a_toml_key_and_a_run_parameter() -> None:
    import argparse
    import dataclasses
    import inspect

    import harness
    from harness.config import add_run_options, run_signature

    parser = argparse.ArgumentParser()
    add_run_options(parser)
    dests = {a.dest for a in parser._actions}
    fields = [f.name for f in dataclasses.fields(RunConfig)]
    assert set(fields) <= dests
    params = inspect.signature(harness.run).parameters
    assert set(fields) <= set(params)
    assert all(params[f].kind is inspect.Parameter.KEYWORD_ONLY for f in fields)
    assert run_signature([]).parameters.keys() == set(fields)


def test_cli_namespace_and_toml_give_the_same_config(tmp_path: Path) -> None:
    from harness.cli import build_parser
    from harness.config import settings_from_namespace

    ns = build_parser().parse_args(
        [
            "run",
            "--layers",
            "conv2d",
            "--grid",
            "n=8..32*2",
            "--grid",
            "k=3",
            "--dtype",
            "float32,float64",
            "--threads",
            "1,2",
            "--allocator",
            "glibc,glibc-fixed",
            "--profile",
            "quick",
            "--budget",
            "30",
            "--min-time",
            "0.01",
            "--no-capabilities",
        ]
    )
    from_cli = RunConfig(**settings_from_namespace(ns))
    path = tmp_path / "grid.toml"
    path.write_text(
        'layers = "conv2d"\ndtype = ["float32", "float64"]\nthreads = [1, 2]\n'
        'allocator = ["glibc", "glibc-fixed"]\nprofile = "quick"\nbudget_s = 30\n'
        'min_time_s = 0.01\ncapabilities = false\n[grid]\nn = "8..32*2"\nk = [3]\n'
    )
    from_toml = RunConfig(**load_config(path))
    assert from_cli == from_toml
    assert RunConfig.from_json(from_cli.to_json()) == from_cli
    assert from_cli.profile_spec.budget_s == 30
    assert from_cli.profile_spec.min_time == 0.01
    assert RunConfig(profile="quick").profile_spec.min_time == PROFILES["quick"].min_time
    # options left out are None in the namespace: "given" can be told from "default"
    assert settings_from_namespace(build_parser().parse_args(["run"])) == {}


def test_differences_name_the_option() -> None:
    a = RunConfig(profile="quick", grid={"n": ("8",)})
    b = RunConfig(profile="default", grid={"n": ("8",)})
    assert a.differences(b, ["profile", "grid"]) == ["--profile (quick here, default there)"]


def test_profiles_are_time_budgets() -> None:
    for name, prof in PROFILES.items():
        assert prof.budget_s > 0 and prof.processes >= 2, name
        assert prof.min_rounds <= prof.max_rounds
    assert PROFILES["quick"].budget_s < PROFILES["default"].budget_s < PROFILES["rigorous"].budget_s


def test_plan_json_leaves_the_shard_out() -> None:
    from harness.shard import Shard

    a = RunConfig(shard=Shard(0, 2)).plan_json()
    b = RunConfig(shard=Shard(1, 2)).plan_json()
    assert a == b and "shard" not in a


# -- declared once: TOML merging, shared options, the allocator list ---------------------


def test_merge_settings_given_wins_and_repeatable_ones_add(tmp_path: Path) -> None:
    from harness.config import merge_settings

    path = tmp_path / "run.toml"
    path.write_text(
        'profile = "quick"\nlayers_from = ["a.py"]\nout = "from-file"\n[grid]\nn = [8, 16]\nk = [3]\n'
    )
    settings, out = merge_settings(
        path, {"profile": "rigorous", "grid": ["k=7"], "layers_from": "b.py,c.py"}
    )
    assert settings["profile"] == "rigorous"
    assert settings["grid"] == {"n": ("8", "16"), "k": ("7",)}
    assert settings["layers_from"] == ("a.py", "b.py", "c.py")
    assert out == "from-file" and "out" not in settings
    assert merge_settings(path, {}, out=tmp_path / "given")[1] == tmp_path / "given"
    assert merge_settings(None, {"seed": 3}) == ({"seed": 3}, None)
    # a resumed run keeps its own folder: the file may only name that one
    with pytest.raises(ConfigError, match="sets out = 'from-file'"):
        merge_settings(path, {}, resume=tmp_path / "other")
    assert merge_settings(path, {}, resume=Path("from-file"))[1] == "from-file"


def test_cmd_run_and_harness_run_merge_through_merge_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both entry points hand the merged settings to the runner: stop them there."""
    import harness
    import harness.runner
    from harness.cli import main

    seen: list[tuple[dict[str, object], object]] = []

    def from_settings(settings: dict[str, object], out: object = None, **_: object) -> None:
        seen.append((dict(settings), out))
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.runner.Runner, "from_settings", staticmethod(from_settings))
    path = tmp_path / "run.toml"
    path.write_text('seed = 5\nout = "o"\n[grid]\nn = [8]\n')
    assert main(["run", "--config", str(path), "--grid", "k=3", "--seed", "6"]) == 130
    with pytest.raises(KeyboardInterrupt):
        harness.run(config=path, grid={"k": [3]}, seed=6)
    assert seen[0] == seen[1] == ({"seed": 6, "grid": {"n": ("8",), "k": ("3",)}}, "o")


def test_shared_options_are_declared_by_the_settings_schema() -> None:
    import argparse

    from harness.cli import build_parser
    from harness.config import _FIELDS

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("run", "layers", "capabilities"):
        options = {a.dest: a for a in commands.choices[command]._actions}
        for name in ("layers", "layers_from"):
            meta = _FIELDS[name].metadata
            assert options[name].help == meta["help"], (command, name)
            assert options[name].option_strings == [meta["flag"]], (command, name)


def test_one_allocator_list() -> None:
    from harness import environment

    assert RunConfig().allocators == (environment.DEFAULT_ALLOCATOR,)
    assert RunConfig(allocators="tcmalloc,glibc").allocators == ("tcmalloc", "glibc")
    with pytest.raises(ConfigError) as error:
        RunConfig(allocators="mimalloc")
    assert str(error.value) == (
        f"unknown allocator 'mimalloc' (known: {', '.join(environment.ALLOCATORS)})"
    )


def test_threads_default_to_what_a_fresh_process_gets() -> None:
    import torch

    from harness.config import RunConfig

    # not 1: a training process gets torch's default, and so does a run
    assert RunConfig().threads == (torch.get_num_threads(),)
    assert RunConfig(threads="1").threads == (1,)


def test_use_chooses_the_verdicts_and_the_phases() -> None:
    from harness.config import RunConfig
    from harness.errors import ConfigError

    assert RunConfig().use == ("training", "inference")
    assert RunConfig().phases == ("forward", "backward", "step")
    assert RunConfig(use="inference").phases == ("forward",)
    assert RunConfig(use="training").phases == ("forward", "backward", "step")
    with pytest.raises(ConfigError, match="unknown use 'serving'"):
        RunConfig(use="serving")
