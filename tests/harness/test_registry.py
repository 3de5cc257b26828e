from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import harness_layers as layers
from harness import Axis, Layer, baseline, native
from harness.errors import ConfigError, LayerDefinitionError
from harness.registry import Registry, load_layers_from, load_registry, validate_layer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_builtin_layers_are_registered_with_their_origin() -> None:
    reg = Registry.default(entry_points_too=False)
    assert reg.names()[:2] == ["fft", "conv2d"]
    assert reg.get("fft") is layers.FFT
    assert reg.origin("conv2d") == "built-in (layers)"
    with pytest.raises(ConfigError, match=r"unknown layer 'fourier' \(known: fft, conv2d\)"):
        reg.get("fourier")


def test_layers_from_a_file_and_a_module() -> None:
    found = load_layers_from(str(FIXTURES / "user_layers.py"))
    assert [layer.name for layer in found] == ["square"]
    assert [layer.name for layer in load_layers_from("harness_layers")] == ["fft", "conv2d"]
    with pytest.raises(ConfigError, match="no such module or file"):
        load_layers_from("no_such_package.layers")


def test_what_a_layers_module_warns_as_it_loads_is_kept(tmp_path: Path) -> None:
    source = (FIXTURES / "user_layers.py").read_text()
    warning = (
        "import warnings\n"
        "warnings.warn('Numba could not be imported. Code will run much more slowly.')\n"
    )
    path = tmp_path / "warning_layers.py"
    path.write_text(source.replace("from __future__ import annotations\n", "") + warning)
    registry, said = load_registry([str(path)])
    assert "square" in registry.names()
    assert said == (
        f"warning_layers.py:{len(path.read_text().splitlines())}: UserWarning: Numba could not be imported. Code will run much "
        "more slowly.",
    )
    # the built-in layers alone: nothing said
    assert load_registry()[1] == ()


def test_duplicate_names_are_refused_naming_both_origins() -> None:
    with pytest.raises(
        LayerDefinitionError, match=r"layer 'fft' from .*duplicate_layers.py duplicates .*built-in"
    ):
        Registry.default([str(FIXTURES / "duplicate_layers.py")], entry_points_too=False)


def test_entry_points_are_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    user = load_layers_from(str(FIXTURES / "user_layers.py"))
    fake = SimpleNamespace(name="mine", value="my_pkg.layers:LAYERS", load=lambda: user)

    def entry_points(group: str) -> list[Any]:
        assert group == "harness.layers"
        return [fake]

    monkeypatch.setattr("harness.registry.entry_points", entry_points)
    reg = Registry.default()
    assert reg.get("square") is user[0]
    assert reg.origin("square") == "entry point mine (my_pkg.layers:LAYERS)"


def test_validate_layer_checks_output_shapes_and_notes_failures() -> None:
    assert validate_layer(layers.FFT) == []
    bad = load_layers_from(str(FIXTURES / "bad_shape_layers.py"))[0]
    with pytest.raises(LayerDefinitionError, match=r"'torch' returns shape \(3,\)"):
        validate_layer(bad)

    def boom(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("kaput")

    flaky = Layer(
        name="flaky",
        description="",
        axes=(Axis("n", (4,)),),
        inputs={"x": 1},
        make_inputs=lambda p, g: (torch.randn(4, generator=g),),
        reference=torch.relu,
        implementations=(baseline("numpy", torch.relu), native("torch", boom, forms=())),
    )
    notes = validate_layer(flaky)
    assert (
        len(notes) == 1 and "implementation 'torch' failed at n=4: RuntimeError: kaput" in notes[0]
    )


def test_a_layer_of_several_outputs_validates_and_a_count_that_differs_is_said() -> None:
    def sincos(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.sin(x), torch.cos(x)

    def joined(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([o.flatten() for o in sincos(x)])

    def layer(reference: Any, native_fn: Any) -> Layer:
        return Layer(
            name="sincos",
            description="",
            axes=(Axis("n", (4,)),),
            inputs={"x": 1},
            make_inputs=lambda p, g: (torch.randn(4, generator=g),),
            reference=reference,
            implementations=(baseline("numpy", sincos), native("torch", native_fn, forms=())),
        )

    assert validate_layer(layer(sincos, sincos)) == []  # harness.outputs
    with pytest.raises(LayerDefinitionError, match="'torch' returns 1 tensor at n=4, but the ref"):
        validate_layer(layer(sincos, joined))
    with pytest.raises(LayerDefinitionError, match="'numpy' returns 2 tensors at n=4, but the ref"):
        validate_layer(layer(joined, joined))
