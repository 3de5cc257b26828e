"""Who may write a results folder, and that nothing outlives its runner.

- ``FolderLock``: an exclusive ``flock`` on ``DIR/.lock``, taken by the runner before
  it writes anything and inherited by every worker it starts (``pass_fds``): the lock
  is held until the last of them exits, so a ``--resume`` of a folder that a runner or
  an orphaned worker still writes is refused instead of racing it.
- ``die_with_parent``: the workers' ``preexec_fn``; on Linux ``prctl(PR_SET_PDEATHSIG,
  SIGKILL)`` makes the kernel kill a worker when its runner dies, even by SIGKILL.
- ``clean_stale``: what a killed writer leaves behind: ``DIR/.*.tmp`` (an atomic
  write cut short) and the run's compile cache.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import sys
from pathlib import Path

from harness.errors import ConfigError

__all__ = ["INDUCTOR_CACHE", "LOCK_FILE", "FolderLock", "clean_stale", "die_with_parent"]

LOCK_FILE = ".lock"
#: torch inductor's cache (and the ONNX exports) of one ``--no-cache`` run, inside its
#: results folder (removed at the end and by a resume): a killed run then leaves nothing
#: in the system's temporary folder. A run with the cache keeps them in the cache across
#: runs instead (``harness.cache``: one folder per torch, Python and CPU capability,
#: bounded by its eviction), which this cleanup leaves alone.
INDUCTOR_CACHE = ".inductor-cache"
_PR_SET_PDEATHSIG = 1


class FolderLock:
    """An exclusive lock on a results folder (``acquire``); ``fd`` is passed to workers."""

    def __init__(self, folder: Path, fd: int) -> None:
        self.folder = folder
        self.fd = fd

    @classmethod
    def acquire(cls, folder: str | os.PathLike[str]) -> FolderLock:
        """Lock ``folder``; ``ConfigError`` (one line) when another runner, or a worker
        of one, holds it."""
        folder = Path(folder)
        path = folder / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise ConfigError(f"{folder}: cannot lock it ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = f" (pid {int(os.pread(fd, 32, 0).decode().strip())})"
            os.close(fd)
            raise ConfigError(
                f"{folder} is being written by another harness run or its workers{holder}; "
                "wait for it to end or stop it, then resume"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(folder, fd)

    def release(self) -> None:
        """Give the lock up (workers still running keep it until they exit)."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def die_with_parent() -> None:
    """``preexec_fn`` of a worker: the kernel sends it SIGKILL when its parent dies.

    Linux only (elsewhere a no-op); if the parent died before this ran, exit now."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def clean_stale(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove what a killed writer left in ``folder``: hidden ``*.tmp`` files of cut
    atomic writes (the folder's and plots/') and the inductor cache. Call it holding
    the lock. Returns what was removed."""
    folder = Path(folder)
    removed: list[Path] = []
    for pattern in (".*.tmp", "plots/.*.tmp"):
        for path in folder.glob(pattern):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    cache = folder / INDUCTOR_CACHE
    if cache.exists():
        shutil.rmtree(cache, ignore_errors=True)
        removed.append(cache)
    return removed
