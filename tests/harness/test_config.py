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
