"""Names read from files (layers, settings, implementations) made safe as file names.

A results folder travels: a ``results.csv`` from a colleague or a CI artifact may say
anything in its ``layer`` column, ``../../evil`` included. Such names are data, never
paths: ``safe_name`` turns any name into one path component that stays inside the
folder it is joined to, and ``child`` joins it and checks that it does.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from harness.errors import ResultsError

__all__ = ["child", "safe_name"]

#: What a file name may keep as it is; anything else (a separator, a NUL, a space) is
#: replaced. Names declared in code already match this (``harness.layer``'s rule).
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+=,-]")
_MAX = 80


def safe_name(name: str) -> str:
    """``name`` as one file-name component: unchanged when it is already safe, else its
    unsafe characters replaced by ``_``, leading dots dropped, and a short hash of the
    original added so that two different names never collide."""
    text = str(name)
    clean = _UNSAFE.sub("_", text).lstrip(".")
    if clean == text and text and len(text) <= _MAX:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{clean[:_MAX] or 'unnamed'}-{digest}"


def child(folder: str | Path, name: str, suffix: str = "") -> Path:
    """``folder / (safe_name(name) + suffix)``, checked to lie directly in ``folder``."""
    base = Path(folder)
    path = base / f"{safe_name(name)}{suffix}"
    # not path.resolve(): a symlink at path is replaced by the atomic writes, not followed
    if path.parent != base or path.name in ("", ".", ".."):
        raise ResultsError(f"{name!r} cannot be used as a file name in {base}")
    return path
