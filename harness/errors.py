"""The harness's exceptions, one hierarchy.

::

    HarnessError                 base class; the CLI prints "error: <message>" and exits 2
    ├── ConfigError              bad user input: unknown layer or implementation,
    │                            malformed grid, unreadable config, unwritable output
    ├── LayerDefinitionError     an invalid layer declaration (names the layer and the problem)
    ├── InputError               a tensor that does not fit a layer (wrong rank, wrong dtype)
    └── ResultsError             a folder that is not a results folder, a corrupt or
                                 incompatible one

Messages are complete sentences built before raising, so that one line on stderr is
enough for the user to act on.

Exceptions the harness *records* rather than raises (a layer that fails, a check that
is unsupported) are described in one format, ``describe(exc)``: ``Type: first line``.
"""

from __future__ import annotations

import re

__all__ = [
    "ConfigError",
    "HarnessError",
    "InputError",
    "LayerDefinitionError",
    "ResultsError",
    "describe",
    "first_line",
    "root_cause",
    "truncate",
]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class HarnessError(Exception):
    """Base class of every error the harness raises on purpose."""


class ConfigError(HarnessError, ValueError):
    """The user asked for something the harness cannot do (bad grid, unknown name, ...)."""


class LayerDefinitionError(HarnessError, ValueError):
    """A layer declaration is incomplete or inconsistent."""


class InputError(HarnessError, ValueError):
    """A tensor given to a layer does not match its declared inputs."""


class ResultsError(HarnessError):
    """A results folder is missing, corrupt, or incompatible with the request."""


# -- describing an exception in one line ------------------------------------------------


def first_line(exc: BaseException) -> str:
    """The first non-blank line of ``str(exc)``, stripped of ANSI colour codes and
    surrounding whitespace (``""`` for an exception with no message)."""
    text = _ANSI.sub("", str(exc))
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def truncate(text: str, limit: int | None) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``…`` when cut."""
    if limit is None or len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "…"


def describe(exc: BaseException, limit: int | None = 500) -> str:
    """``Type: first line`` of an exception (just ``Type`` when it has no message),
    at most ``limit`` characters (``None``: no limit)."""
    text = first_line(exc)
    name = type(exc).__name__
    return truncate(f"{name}: {text}" if text else name, limit)


def root_cause(exc: BaseException) -> BaseException:
    """The innermost ``__cause__`` of ``exc`` that has a message (``exc`` itself if
    none): wrappers such as ``TorchExportError`` say little in their first line."""
    root, seen = exc, {id(exc)}
    while root.__cause__ is not None and id(root.__cause__) not in seen:
        if not first_line(root.__cause__):
            break
        root = root.__cause__
        seen.add(id(root))
    return root
