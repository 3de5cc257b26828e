"""Progress on the terminal: a bar with the current point and an ETA on a TTY, a plain
line every tenth of the way otherwise, nothing when disabled (``--quiet``)."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Counts tasks of the current stage; ``step(name)`` is called as each starts."""

    def __init__(
        self,
        enabled: bool = True,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.clock = clock
        self.label = ""
        self.total = 0
        self.started = 0
        self.t0 = clock()
        self._last_decile = -1
        self._drawn = False

    def begin(self, label: str, total: int) -> None:
        self.label, self.total, self.started, self.t0 = label, total, 0, self.clock()
        self._last_decile = -1
        if self.enabled and not self.tty:
            print(f"{label}: {total} tasks", file=self.stream, flush=True)

    def eta(self) -> float | None:
        done = self.started - 1
        if done <= 0:
            return None
        elapsed = self.clock() - self.t0
        return elapsed / done * (self.total - done)

    def line(self, current: str, width: int = 100) -> str:
        frac = min(1.0, max(0, self.started - 1) / self.total) if self.total else 1.0
        bar = "#" * int(frac * 20)
        eta = self.eta()
        head = f"{self.label} [{bar:<20}] {self.started}/{self.total} ETA {format_duration(eta) if eta is not None else '?'} "
        room = max(10, width - len(head))
        return head + (current if len(current) <= room else "..." + current[-(room - 3) :])

    def step(self, current: str) -> None:
        self.started += 1
        if not self.enabled:
            return
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r\x1b[K" + self.line(current, width))
            self.stream.flush()
            self._drawn = True
        else:
            decile = int(10 * (self.started - 1) / max(1, self.total))
            if decile != self._last_decile:
                self._last_decile = decile
                eta = self.eta()
                print(
                    f"{self.label}: {self.started - 1}/{self.total} done"
                    + (f", ETA {format_duration(eta)}" if eta is not None else ""),
                    file=self.stream,
                    flush=True,
                )

    def message(self, text: str) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self._drawn = False
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
