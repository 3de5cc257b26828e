"""Atomic writes: a file is replaced whole or not at all, so a reader (another run, a
report, a resume after a crash) sees the old file or the new one, never half of one.

Ground floor (standard library only): the worker, the cache and the results folder
all write through it, and a worker imports nothing heavier for it (pandas came with
``harness.results`` and cost each worker process 0.3 s, 2026-11-30).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "AtomicFile",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
]


def _name_the_file(exc: BaseException, path: Path) -> None:
    """Make an ``OSError`` met while writing ``path`` through a temporary file name
    ``path`` (a write or fsync error names no file, mkstemp's names the temporary): a full
    disk's one line then says which file of the folder it cut."""
    if not isinstance(exc, OSError):
        return
    if exc.filename is None or os.path.basename(str(exc.filename)).startswith(f".{path.name}."):
        exc.filename = str(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half;
    an ``OSError`` (a full disk) names ``path`` and leaves no temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        _name_the_file(exc, path)
        raise
    try:
        # mkstemp makes the file private (0600); results are meant to be shared.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        _name_the_file(exc, path)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as JSON, as given: a file of a results folder passes ``versioned(obj)``."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


class AtomicFile:
    """A file written piece by piece and put in place at once (``commit``): readers see
    the old file or the whole new one, never a part. Counts its bytes and hashes them as
    they go, so nothing has to hold the whole content."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd, self._tmp = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
            )
        except OSError as exc:
            _name_the_file(exc, self.path)
            raise
        # mkstemp makes the file private (0600); results are meant to be shared.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        self._fh = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> None:
        try:
            self._fh.write(data)
        except OSError as exc:  # a full disk: the error names the file, not its temporary
            _name_the_file(exc, self.path)
            raise
        self._hash.update(data)
        self.bytes += len(data)

    def commit(self) -> dict[str, Any]:
        """Put the file in place; its size and sha256, for the manifest."""
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self._tmp, self.path)
        except OSError as exc:
            _name_the_file(exc, self.path)
            raise
        return {"bytes": self.bytes, "sha256": self._hash.hexdigest()}

    def discard(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)
