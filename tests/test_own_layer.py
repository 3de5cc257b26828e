"""A user's layer, from a file outside the package, goes through the whole pipeline:
the README's example is valid code, is measured, compared and judged like the
built-in layers; a wrong NumPy backward is told to be fixed first."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from harness.cli import main
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


@pytest.fixture(scope="module")
def own_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The README's layer and the wrong-gradient example, run from the command line
    in-process (its workers are processes all the same; that ``python -m harness``
    itself runs is shown by tests/harness/test_run.py): the results folder and the
    report's sections of tanh and bad_tanh."""
    tmp = tmp_path_factory.mktemp("own")
    out = tmp / "own"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(
            [
                "run",
                "--layers-from", str(readme_example(tmp)),
                "--layers-from", str(ROOT / "examples" / "bad_gradient.py"),
                "--layers", "tanh,bad_tanh",
                # every form of the native candidate; the baseline's own compile form
                # (numpy-compile) is tested end to end in tests/test_layer_kinds.py
                "--impls", "numpy,torch,torchscript,compile,onnxruntime",
                # one size: every pass and form as on a grid, at half the cost; verdicts
                # over sizes are tested on the seed layers (tests/harness/test_run.py)
                "--grid", "n=100000",
                "--threads", "1",
                "--profile", "quick",
                "--budget", "1",  # the first pass only: an undecided verdict must say why
                "--out", str(out),
            ]
        )  # fmt: skip
    assert code == 0, err.getvalue()
    report = (out / "report.md").read_text()
    sections = re.split(r"^## ", report, flags=re.M)
    tanh = next(s for s in sections if s.startswith("tanh"))
    bad = next(s for s in sections if s.startswith("bad_tanh"))
    return out, tanh, bad


@pytest.mark.slow
def test_a_wrong_numpy_backward_is_told_to_be_fixed_first(own_run: tuple[Path, str, str]) -> None:
    _, tanh, bad = own_run
    assert "**Training verdict: fix the gradient first.**" in bad
    assert "fix the gradient first" not in tanh.split("\n\n")[1]


@pytest.mark.slow
def test_own_layer_gets_both_verdicts_or_says_why_not(own_run: tuple[Path, str, str]) -> None:
    _, tanh, _ = own_run
    # a verdict on speed; the quick profile (2 processes) may honestly leave a modest
    # effect undecided on a busy machine, and then it must say why and what to run
    # two verdicts: training, decided on the whole step, and inference, on the forward
    for use in ("Training", "Inference"):
        verdict = re.search(
            rf"\*\*{use} verdict: (compile as is|port|keep|undecided at n=[0-9, ]+)", tanh
        )
        assert verdict, tanh[:500]
        if verdict.group(1).startswith("undecided"):
            # too few processes (2: one degree of freedom) or, with more, too noisy
            why = ("too noisy on this machine", "too few processes")
            assert any(w in tanh for w in why) and "--profile" in tanh


@pytest.mark.slow
def test_every_implementation_that_trains_has_a_timed_step(
    own_run: tuple[Path, str, str],
) -> None:
    out, _, _ = own_run
    frame = pd.read_csv(out / "results.csv")
    steps = frame[(frame["layer"] == "tanh") & (frame["phase"] == "step")]
    # every implementation that trains has a timed step; ONNX Runtime's is unsupported
    assert set(steps[steps["status"] == "ok"]["impl"]) >= {"numpy", "torch", "compile"}
    assert set(steps[steps["status"] == "unsupported"]["impl"]) == {"onnxruntime"}
    assert steps[steps["impl"] == "compile"]["speedup"].notna().all()
    # the training step is timed whole: its time is its own, not forward + backward
    assert (steps["median_s"].dropna() > 0).all()


@pytest.mark.slow
def test_every_form_is_in_the_report_with_the_plot(own_run: tuple[Path, str, str]) -> None:
    out, tanh, _ = own_run
    for impl in ("torchscript", "compile", "onnxruntime"):
        assert f"| {impl} |" in tanh
    assert (out / "plots" / "tanh-time.png").is_file()


@pytest.mark.slow
def test_own_layers_compare_like_any_run(
    own_run: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _, _ = own_run
    assert main(["compare", str(out), str(out)]) == 0, capsys.readouterr().err
    assert "tanh" in capsys.readouterr().out
