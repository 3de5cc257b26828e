"""Grid points as text: ``{"n": 64, "k": 3}`` <-> ``"n=64,k=3"``.

The one home of the point string used in case names, records, messages and reports.
Imports nothing heavy (no torch, no pandas), so every module may use it::

    format_point({"n": 64, "k": 3})   -> "n=64,k=3"
    parse_point("n=64,k=3")           -> {"n": 64, "k": 3}
    parse_point("")                   -> {}

``parse_point`` inverts ``format_point`` for the values axes hold: each value comes
back as an ``int`` if it reads as one, else a ``float`` if it reads as one, else the
string as written.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["AxisValue", "Point", "format_point", "parse_point", "parse_value"]

#: One value on a grid axis.
AxisValue = int | float | str
#: A grid point: axis name -> value, in axis order.
Point = Mapping[str, AxisValue]


def format_point(point: Mapping[str, object]) -> str:
    """``{"n": 64, "k": 3}`` -> ``"n=64,k=3"``, in the mapping's order."""
    return ",".join(f"{name}={value}" for name, value in point.items())


def parse_value(text: str) -> AxisValue:
    """``"64"`` -> ``64``, ``"0.5"`` -> ``0.5``, anything else -> the text itself."""
    for kind in (int, float):
        try:
            return kind(text)  # type: ignore[no-any-return]
        except ValueError:
            pass
    return text


def parse_point(text: str) -> dict[str, AxisValue]:
    """``"n=64,k=3"`` -> ``{"n": 64, "k": 3}`` (the inverse of ``format_point``).

    An empty string is the empty point; an item with no ``=`` or no name is a
    ``ValueError`` naming the text.
    """
    out: dict[str, AxisValue] = {}
    if not text.strip():
        return out
    for item in text.split(","):
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"not a grid point: {text!r} (expected 'axis=value,...')")
        out[name] = parse_value(raw.strip())
    return out
