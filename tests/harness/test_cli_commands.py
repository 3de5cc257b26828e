"""The command line in-process (``harness.cli.main``): argument errors are one line and
exit code 2 before anything is measured; ``layers`` and ``capabilities`` print what the
registry and the capability matrix say. No worker process: where the user's layer code
must run (its declaration validated in a worker), the test is in test_run.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.cli import main
from harness.frame import CAPABILITY_COLUMNS, build_table

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
USER_LAYERS = str(FIXTURES / "user_layers.py")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layers", "nope"], "unknown layer 'nope'"),
        (["--impls", "cuda_fft"], "unknown implementation 'cuda_fft'"),
        (["--grid", "n=8..x"], "must look like"),
        (["--grid", "n"], "expected AXIS=VALUES"),
        (["--layers", "conv2d", "--grid", "n=8", "--grid", "k=15"], "k must be <= n"),
        (["--grid", "n=0"], "must be >= 1"),
        (["--grid", "n=-8"], "must be >= 1"),
        (["--config", "/nonexistent/grid.toml"], "no such file"),
        (["--dtype", "float7"], "unknown dtype"),
        (["--threads", "two"], "expected integers"),
        (["--profile", "slowest"], "unknown profile 'slowest'"),
        (["--allocator", "mimalloc"], "unknown allocator 'mimalloc'"),
        (["--shard", "3/2"], "--shard"),
        (["--budget", "-1"], "positive number of seconds"),
        (["--layers-from", "/nonexistent/layers.py"], "no such file"),
        (
            ["--layers-from", str(FIXTURES / "no_baseline_layers.py")],
            "layer 'lonely': declares no baseline",
        ),
        (["--layers-from", str(FIXTURES / "duplicate_layers.py")], "layer 'fft' from"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", *args]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]
    assert out == ""
    assert list(tmp_path.iterdir()) == []  # nothing was created or measured


def test_layers_command_lists_where_layers_come_from(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers", "--layers-from", USER_LAYERS]) == 0
    out = capsys.readouterr().out
    assert "fft  (built-in (layers))" in out
    assert f"square  ({USER_LAYERS})" in out
    assert "impl onnxruntime: onnxruntime form of torch, forward only" in out
    assert main(["layers", "--layers", "fft"]) == 0
    assert capsys.readouterr().out.startswith("fft  (built-in (layers))\n")


_MODULE_LAYER = """
import numpy as np
import torch

from harness import Axis, Layer, baseline, native


class Double(torch.nn.Module):
    def forward(self, x):
        return x * 2


LAYERS = [
    Layer(
        name="double",
        description="x times 2, forward only",
        axes=(Axis("n", (4,)),),
        inputs={"x": 1},
        make_inputs=lambda p, g: (torch.randn(int(p["n"]), generator=g),),
        reference=lambda x: x * 2,
        implementations=(
            baseline("numpy", lambda a: a * 2, arrays=True),
            native("torch", module=lambda p: Double()),
        ),
    )
]
"""


def test_layers_command_says_what_a_run_will_not_build_or_differentiate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "double.py"
    path.write_text(_MODULE_LAYER)
    assert main(["layers", "--layers-from", str(path), "--layers", "double"]) == 0
    out = capsys.readouterr().out
    assert "impl torch: native, forward only" in out  # no baseline has a backward
    assert "impl torchscript: torchscript form of torch, forward only, not built" in out


def test_capabilities_command_prints_the_matrix_of_the_selection(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's part: which layers and implementations it asks for, and how it prints
    the answer (the matrix itself is tested on real layers in test_capabilities.py)."""
    import harness.capabilities as capabilities

    asked: list[tuple[list[str], Any]] = []
    cell = {"check": "trace", "reason": None, "graph_breaks": None}
    rows = [
        {**cell, "layer": "fft", "impl": "numpy", "role": "baseline", "status": "wrong"},
        {**cell, "layer": "fft", "impl": "torch", "role": "native", "status": "ok"},
    ]

    def capability_frame(layers: Any, impls: Any = None) -> pd.DataFrame:
        asked.append(([layer.name for layer in layers], impls))
        return build_table(
            [{c: r.get(c) for c in CAPABILITY_COLUMNS} for r in rows], CAPABILITY_COLUMNS
        )

    monkeypatch.setattr(capabilities, "capability_frame", capability_frame)
    assert main(["capabilities", "--layers", "fft", "--impls", "numpy,torch"]) == 0
    assert asked == [(["fft"], ("numpy", "torch"))]
    assert capsys.readouterr().out == (
        "### fft\n\n"
        "| implementation | torch.jit.trace |\n"
        "| --- | --- |\n"
        "| numpy (baseline) | ✗ wrong |\n"
        "| torch | ✓ |\n\n"
    )
    assert main(["capabilities", "--layers", "fft", "--format", "csv"]) == 0
    assert asked[-1] == (["fft"], None)
    assert capsys.readouterr().out.splitlines()[0] == ",".join(CAPABILITY_COLUMNS)
    assert main(["capabilities", "--layers", "fft", "--impls", "compile"]) == 2
    assert "unknown implementation 'compile'" in capsys.readouterr().err
