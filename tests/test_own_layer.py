"""A user's layer, from a file outside the package, goes through the whole pipeline:
the README's example is valid code, is measured, compared and judged like the
built-in layers; a wrong NumPy backward is told to be fixed first."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.registry import load_layers_from, validate_layer

ROOT = Path(__file__).resolve().parent.parent


def readme_example(tmp_path: Path) -> Path:
    text = (ROOT / "README.md").read_text()
    match = re.search(
        r"<!-- readme-example: start -->\n```python\n(.*?)```\n<!-- readme-example: end -->",
        text,
        re.S,
    )
    assert match, "README lost its example layer"
    path = tmp_path / "my_layers.py"
    path.write_text(match.group(1))
    return path


def test_readme_example_is_a_valid_layer(tmp_path: Path) -> None:
    (layer,) = load_layers_from(str(readme_example(tmp_path)))
    assert layer.name == "tanh"
    assert validate_layer(layer) == []
    point = {"n": 16}
    (x,) = layer.make(point, torch.float64)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(layer.baseline.callable_for(point), [x])


@pytest.mark.slow
def test_own_layers_are_measured_compared_and_judged(tmp_path: Path) -> None:
    out = tmp_path / "own"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--layers-from",
            str(readme_example(tmp_path)),
            "--layers-from",
            "examples/bad_gradient.py",
            "--layers",
            "tanh,bad_tanh",
            "--grid",
            "n=1000,100000",
            "--profile",
            "quick",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    report = (out / "report.md").read_text()
    sections = re.split(r"^## ", report, flags=re.M)
    tanh = next(s for s in sections if s.startswith("tanh"))
    bad = next(s for s in sections if s.startswith("bad_tanh"))
    assert "**Training verdict: fix the gradient first.**" in bad
    assert "fix the gradient first" not in tanh.split("\n\n")[1]
    # a verdict on speed; the quick profile (2 processes) may honestly leave a modest
    # effect undecided on a busy machine, and then it must say why and what to run
    # two verdicts: training, decided on the whole step, and inference, on the forward
    for use in ("Training", "Inference"):
        verdict = re.search(
            rf"\*\*{use} verdict: (compile as is|port|keep|undecided at n=[0-9, ]+)", tanh
        )
        assert verdict, tanh[:500]
        if verdict.group(1).startswith("undecided"):
            assert "too noisy on this machine" in tanh and "--profile" in tanh
    import pandas as pd

    frame = pd.read_csv(out / "results.csv")
    steps = frame[(frame["layer"] == "tanh") & (frame["phase"] == "step")]
    # every implementation that trains has a timed step; ONNX Runtime's is unsupported
    assert set(steps[steps["status"] == "ok"]["impl"]) >= {"numpy", "torch", "compile"}
    assert set(steps[steps["status"] == "unsupported"]["impl"]) == {"onnxruntime"}
    assert steps[steps["impl"] == "compile"]["speedup"].notna().all()
    # the training step is timed whole: its time is its own, not forward + backward
    assert (steps["median_s"].dropna() > 0).all()
    for impl in ("torchscript", "compile", "onnxruntime"):
        assert f"| {impl} |" in tanh
    assert (out / "plots" / "tanh-time.png").is_file()
    # and it compares like any run
    cmp = subprocess.run(
        [sys.executable, "-m", "harness", "compare", str(out), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert cmp.returncode == 0, cmp.stderr
    assert "tanh" in cmp.stdout
