"""Number and text formatting on the ground floor: durations, speedups, sizes, errors,
Markdown cells, tables and footnotes, shared by the report, the comparison and the
capability matrix (``harness.capabilities``). Pure: standard library only."""

from __future__ import annotations

import math

__all__ = [
    "Footnotes",
    "cell",
    "fmt_pct",
    "fmt_rel_err",
    "fmt_seconds",
    "fmt_size",
    "fmt_speedup",
    "md_table",
]

_TIME_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))


def fmt_seconds(seconds: float) -> str:
    """``0.00123`` -> ``1.23 ms``: three significant digits in the largest fitting unit."""
    if not math.isfinite(seconds):
        return str(seconds)
    for scale, unit in _TIME_UNITS:
        if abs(seconds) >= scale:
            return f"{_sig3(seconds / scale)} {unit}"
    return f"{_sig3(seconds / 1e-9)} ns"


def _sig3(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def fmt_speedup(ratio: float) -> str:
    """``0.041`` -> ``×0.041``; ``0.3`` -> ``×0.30``; ``3.1`` -> ``×3.10``; ``12.34`` -> ``×12.3``; ``123.4`` -> ``×123``."""
    if not math.isfinite(ratio):
        return f"×{ratio}"
    if abs(ratio) < 0.1:
        return f"×{ratio:.2g}"
    if abs(ratio) < 10:
        return f"×{ratio:.2f}"
    return f"×{_sig3(ratio)}"


def fmt_pct(pct: float) -> str:
    """A percentage with no more precision than it deserves: ``4%``, ``0.4%``."""
    if abs(pct) < 1:
        return f"{pct:.1f}%"
    return f"{pct:.0f}%"


def fmt_size(size: float) -> str:
    """A grid size: ``64`` rather than ``64.0``; an interpolated one to 3 digits."""
    if float(size).is_integer():
        return str(int(size))
    return f"{size:.3g}" if size < 1000 else f"{size:.0f}"


def fmt_rel_err(err: float) -> str:
    """A relative error: ``3.1e-07``, ``0.98``, ``0``."""
    if err == 0:
        return "0"
    if abs(err) >= 0.01:
        return f"{err:.2g}"
    return f"{err:.1e}"


def cell(text: object) -> str:
    """Text safe inside a Markdown table cell (no pipes, no line breaks)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def md_table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    """A GitHub Markdown table; ``align`` holds ``'l'`` or ``'r'`` per column."""
    align = align or ["l"] + ["r"] * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


class Footnotes:
    """Numbered Markdown footnotes (``[^1]``), one per distinct text, in order of first use."""

    def __init__(self, prefix: str = "") -> None:
        self._prefix = prefix
        self._texts: dict[str, str] = {}

    def ref(self, text: str) -> str:
        """The reference (``[^3]``) for ``text``, adding it if new."""
        text = " ".join(str(text).split()) or "no message recorded"
        if text not in self._texts:
            self._texts[text] = f"{self._prefix}{len(self._texts) + 1}"
        return f"[^{self._texts[text]}]"

    def __bool__(self) -> bool:
        return bool(self._texts)

    def render(self) -> str:
        """The footnote definitions, one a line."""
        return "\n".join(f"[^{label}]: {text}" for text, label in self._texts.items())
