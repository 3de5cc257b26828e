"""Verdicts for kinds of layers the seed layers do not cover, through real runs (small
grids, quick profile): a forward-only NumPy layer, a NumPy layer that torch.compile
translates whole, a layer where compile breaks, and one-off costs that do not pay off."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import harness
from harness.report.decide import COMPILE_AS_IS, INFERENCE, PORT, decide_layers
from harness.results import load_results

ROOT = Path(__file__).resolve().parent
KINDS = str(ROOT / "fixtures" / "kinds_layers.py")

pytestmark = pytest.mark.slow


def _decisions(folder: Path) -> dict[str, object]:
    results = load_results(folder)
    return {d.layer: d for d in decide_layers(results.frame, results.run, results.capabilities)}


def test_forward_only_and_compiled_numpy_layers(tmp_path: Path) -> None:
    out = tmp_path / "kinds"
    frame = harness.run(
        layers="softmax_rows,cumsum",
        layers_from=KINDS,
        profile="quick",
        threads=1,
        breakdown="none",  # tested on its own (tests/harness/test_breakdown_pass.py)
        out=out,
    )
    decisions = _decisions(out)

    # a forward-only baseline: no gradcheck, no backward comparison, decided on forward
    soft = frame[frame["layer"] == "softmax_rows"]
    base_back = soft[(soft["impl"] == "numpy") & (soft["phase"] == "backward")]
    assert (base_back["status"] == "unsupported").all()
    assert soft["gradcheck"].isna().all()
    d = decisions["softmax_rows"]
    assert d.kind == PORT, d  # type: ignore[attr-defined]
    (s,) = d.settings  # type: ignore[attr-defined]
    # no training step to decide: the inference verdict is its only one
    assert s.metric == INFERENCE and s.forward_only and d.use == "inference"  # type: ignore[attr-defined]
    report = (out / "report.md").read_text()
    assert "Inference verdict only: numpy is declared without a backward" in report
    assert "— (forward only: no backward to train)" in report
    # a plain NumPy function of arrays compiles through torch.compiler.wrap_numpy
    wrapped = soft[(soft["impl"] == "numpy-compile") & (soft["phase"] == "forward")]
    assert set(wrapped["status"]) == {"ok"} and wrapped["within_tol"].all()
    assert wrapped["speedup"].notna().all()

    # the NumPy cumsum compiles as declared with no graph break, right gradients
    cum = frame[frame["layer"] == "cumsum"]
    compiled = cum[cum["impl"] == "numpy-compile"]
    assert set(compiled["role"]) == {"compiled"} and set(compiled["status"]) == {"ok"}
    assert compiled["within_tol"].all()
    assert compiled["oneoff_s"].notna().all() and compiled["speedup"].notna().all()
    caps = pd.read_csv(out / "capabilities.csv")
    check = caps[
        (caps["layer"] == "cumsum") & (caps["impl"] == "numpy") & (caps["check"] == "compile")
    ]
    assert check["status"].tolist() == ["ok"] and check["graph_breaks"].tolist() == [0]
    dc = decisions["cumsum"]
    assert dc.compile_check is not None and dc.compile_check["graph_breaks"] == 0  # type: ignore[attr-defined]
    if dc.kind == COMPILE_AS_IS:  # type: ignore[attr-defined]
        assert "rather than rewrite it" in report
    # one-off costs against the time they save per training step (timed whole), per size
    med = cum.set_index(["impl", "n", "phase"])["median_s"]
    forms = cum[cum["oneoff_s"].notna() & (cum["phase"] == "forward")]
    assert len(forms) >= 4  # numpy-compile and torch's compile form, at both sizes
    for _, r in forms.iterrows():
        impl, n = r["impl"], r["n"]
        base, cand = med[("numpy", n, "step")], med[(impl, n, "step")]
        if cand < base:
            assert r["break_even_calls"] == pytest.approx(r["oneoff_s"] / (base - cand))
        else:  # never pays off
            assert pd.isna(r["break_even_calls"])
    slow = [(i, s, c) for i, s, c in dc.break_even]  # type: ignore[attr-defined]
    assert all(c > 1000 for _, _, c in slow)
    for impl, _, calls in slow:
        assert f"{impl}'s one-off cost needs {calls:,.0f} calls to pay off" in report


def test_a_layer_whose_compile_breaks_says_why(tmp_path: Path) -> None:
    out = tmp_path / "conv"
    frame = harness.run(
        layers="conv2d",
        impls="scipy,torch,scipy-compile",
        grid=["n=16", "k=3"],
        profile="quick",
        threads=1,
        breakdown="none",
        out=out,
    )
    compiled = frame[frame["impl"] == "scipy-compile"]
    assert set(compiled["role"]) == {"compiled"}
    # compile cannot take the SciPy layer whole (fullgraph=True): no port, so it is not timed
    assert set(compiled["status"]) == {"unsupported"}
    assert (
        compiled["error"].str.contains("fullgraph=True) cannot take scipy whole", regex=False).all()
    )
    d = _decisions(out)["conv2d"]
    breaks = d.compile_check["graph_breaks"]  # type: ignore[attr-defined]
    assert breaks >= 1
    report = (out / "report.md").read_text()
    assert f"torch.compile of scipy as declared breaks the graph {breaks} time(s)" in report
    assert d.kind != COMPILE_AS_IS  # type: ignore[attr-defined]
