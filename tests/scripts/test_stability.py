"""scripts/stability.py's pure parts: when two runs' verdicts and crossings agree. No
run is started."""

from __future__ import annotations

import stability  # scripts/ is on sys.path (conftest.py)

from harness.report.decide import KEEP_ABOVE, PORT_BETWEEN, Crossover, SettingDecision


def _setting(
    kind: str, first: Crossover | None, closing: Crossover | None = None
) -> SettingDecision:
    return SettingDecision("k=7", "float32", kind, first, "scipy", "torch", "step", closing=closing)


def test_a_middle_stretch_agrees_only_where_both_crossings_overlap() -> None:
    low, high = Crossover(48, 32, 64, "native"), Crossover(765, 512, 1024, "baseline")
    a = _setting(PORT_BETWEEN, low, high)
    assert stability.crossovers_agree(a, _setting(PORT_BETWEEN, low, high)) is True
    moved = Crossover(180, 128, 256, "baseline")  # the stretch ends elsewhere
    assert stability.crossovers_agree(a, _setting(PORT_BETWEEN, low, moved)) is False
    # kinds differ: the verdicts disagree, whatever the crossings
    assert not stability.verdicts_agree(a, _setting(KEEP_ABOVE, high))
    assert stability.crossovers_agree(_setting(KEEP_ABOVE, None), a) is None
