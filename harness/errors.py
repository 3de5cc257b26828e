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
"""

from __future__ import annotations

__all__ = ["ConfigError", "HarnessError", "InputError", "LayerDefinitionError", "ResultsError"]


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
