"""The layer registry: where layers come from, and checking them before measuring.

Layers come from three places, in this order:

1. the built-in layers (the seed tutorial's two): the repository's ``layers/`` folder,
   installed as ``harness_layers`` so that no ``layers`` folder of the user's shadows it;
2. installed packages that declare an entry point in the ``harness.layers`` group,
   naming a ``Layer`` or a list of them (``my_pkg.layers:LAYERS``);
3. ``--layers-from``: a module path (``my_package.my_layers``) or a ``.py`` file,
   whose ``LAYERS`` list (or ``LAYER``, or every top-level ``Layer``) is taken.

A name registered twice is an error naming both origins.
"""

from __future__ import annotations

import importlib
import importlib.util
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from harness.errors import ConfigError, LayerDefinitionError, describe
from harness.layer import Layer, call_order_hint
from harness.outputs import as_tuple, is_outputs, shape_of
from harness.points import format_point

__all__ = [
    "BUILTIN_LAYERS",
    "ENTRY_POINT_GROUP",
    "Registry",
    "builtin_layers",
    "load_layers_from",
    "load_registry",
    "validate_layer",
]

ENTRY_POINT_GROUP = "harness.layers"
#: The built-in layers, ``module:attribute``: the value of the ``builtin`` entry point
#: in pyproject.toml (tests/harness/test_imports.py keeps the two in step).
BUILTIN_LAYERS = "harness_layers:LAYERS"


@dataclass(frozen=True)
class Entry:
    layer: Layer
    origin: str


class Registry:
    """Layers by name, each with where it came from."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def register(self, layer: Layer, origin: str) -> None:
        if not isinstance(layer, Layer):
            raise LayerDefinitionError(
                f"{origin}: expected a harness.Layer, got {type(layer).__name__}"
            )
        if layer.name in self._entries:
            first = self._entries[layer.name]
            if first.layer is layer:
                return  # the same object reached through two routes
            raise LayerDefinitionError(
                f"layer {layer.name!r} from {origin} duplicates the name of the layer from {first.origin}"
            )
        self._entries[layer.name] = Entry(layer, origin)

    def get(self, name: str) -> Layer:
        try:
            return self._entries[name].layer
        except KeyError:
            raise ConfigError(
                f"unknown layer {name!r} (known: {', '.join(self.names()) or 'none'})"
            ) from None

    def origin(self, name: str) -> str:
        return self._entries[name].origin

    def names(self) -> list[str]:
        return list(self._entries)

    def __iter__(self) -> Iterator[Layer]:
        return (e.layer for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def default(cls, layers_from: Sequence[str] = (), entry_points_too: bool = True) -> Registry:
        """Built-in layers, then entry points, then ``layers_from`` sources."""
        reg = cls()
        for layer in builtin_layers():
            reg.register(layer, "built-in (layers)")
        if entry_points_too:
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                try:
                    obj = ep.load()
                except Exception as exc:
                    raise LayerDefinitionError(
                        f"entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP}) failed to load: "
                        f"{describe(exc)}"
                    ) from None
                for layer in _as_layers(obj, f"entry point {ep.value}"):
                    reg.register(layer, f"entry point {ep.name} ({ep.value})")
        for source in layers_from:
            for layer in load_layers_from(source):
                reg.register(layer, source)
        return reg


def load_registry(layers_from: Sequence[str] = ()) -> tuple[Registry, tuple[str, ...]]:
    """``Registry.default(layers_from)``, silenced, and the warnings the layers' own
    code raised while it loaded (``file:line: Category: message``, each once): a user
    module that warns on import says something the timings depend on (2026-12-01:
    fast-soft-sort's "Numba could not be imported. Code will run much more slowly",
    lost in the worker's silence, where its pure-Python loops were most of the time)."""
    import warnings

    from harness.forms import quiet
    from harness.profile_call import user_file

    with quiet(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = Registry.default(layers_from)
    said: dict[str, None] = {}
    for w in caught:
        path = user_file(str(w.filename))
        if path is not None:
            said[f"{path.name}:{w.lineno}: {w.category.__name__}: {w.message}"] = None
    return registry, tuple(said)


def builtin_layers() -> list[Layer]:
    """The built-in layers, imported by name (``BUILTIN_LAYERS``) when asked for. That
    package is a client of ``harness`` like any layer package (it imports the public
    API), so no harness module imports it with an import statement: this function is
    the one place that names it."""
    module, _, attr = BUILTIN_LAYERS.partition(":")
    return _as_layers(getattr(importlib.import_module(module), attr), f"built-in {module}")


def _as_layers(obj: Any, origin: str) -> list[Layer]:
    if isinstance(obj, Layer):
        return [obj]
    if isinstance(obj, Iterable) and not isinstance(obj, str | bytes):
        items = list(obj)
        bad = [x for x in items if not isinstance(x, Layer)]
        if bad:
            raise LayerDefinitionError(
                f"{origin}: holds {type(bad[0]).__name__}, not harness.Layer"
            )
        return items
    raise LayerDefinitionError(f"{origin}: expected a harness.Layer or a list of them")


def _import_source(source: str) -> ModuleType:
    path = Path(source)
    if source.endswith(".py") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"--layers-from {source}: no such file")
        name = f"_harness_user_layers_{abs(hash(str(path.resolve())))}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"--layers-from {source}: cannot import this file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            if isinstance(exc, LayerDefinitionError):
                raise LayerDefinitionError(f"{source}: {exc}") from None
            raise LayerDefinitionError(
                f"--layers-from {source}: importing it failed: {describe(exc)}"
            ) from None
        return module
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as exc:
        if exc.name and source.startswith(exc.name):
            raise ConfigError(f"--layers-from {source}: no such module or file") from None
        raise LayerDefinitionError(
            f"--layers-from {source}: importing it failed: {describe(exc)}"
        ) from None
    except LayerDefinitionError as exc:
        raise LayerDefinitionError(f"{source}: {exc}") from None
    except Exception as exc:
        raise LayerDefinitionError(
            f"--layers-from {source}: importing it failed: {describe(exc)}"
        ) from None


def _what_returned(out: object) -> str:
    """What a call returned that is neither a tensor nor a tuple of tensors."""
    if isinstance(out, tuple | list):
        kinds = sorted({type(t).__name__ for t in out if not isinstance(t, torch.Tensor)})
        if not out:
            return f"an empty {type(out).__name__}"
        return f"a {type(out).__name__} holding {', '.join(kinds)}"
    return type(out).__name__


def _shapes(out: object) -> str:
    """Each output's shape, as the messages write it."""
    shape = shape_of(out)
    return str(shape) if isinstance(shape, tuple) else ", ".join(map(str, shape))


def load_layers_from(source: str) -> list[Layer]:
    """The layers a module path or ``.py`` file declares: its ``LAYERS`` list, else its
    ``LAYER``, else every top-level ``Layer`` object."""
    module = _import_source(source)
    if hasattr(module, "LAYERS"):
        found = _as_layers(module.LAYERS, f"{source}: LAYERS")
    elif hasattr(module, "LAYER"):
        found = _as_layers(module.LAYER, f"{source}: LAYER")
    else:
        found = [v for v in vars(module).values() if isinstance(v, Layer)]
    if not found:
        raise LayerDefinitionError(
            f"--layers-from {source}: declares no layer (define LAYERS = [...])"
        )
    return found


@contextmanager
def _time_limit(seconds: float, what: str) -> Iterator[None]:
    """Raise ``TimeoutError`` if the body runs longer than ``seconds`` (main thread, Unix)."""
    if not hasattr(signal, "SIGALRM") or seconds <= 0:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"{what} took longer than {seconds:g}s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def validate_layer(
    layer: Layer, impls: Sequence[str] | None = None, timeout_s: float = 30.0
) -> list[str]:
    """Run the layer once at its smallest point, in float64, to check its declaration.

    Raises ``LayerDefinitionError`` for a broken declaration: an input factory that
    returns the wrong type or shape, a reference that fails or returns no tensor, an
    implementation whose output shape differs from the reference's. An implementation
    that *raises* is not a declaration error; it is returned as a note and measured as
    a failed point, so one bad implementation does not stop the run.
    """
    point = layer.smallest_point()
    where = format_point(point)
    inputs = layer.make(point, torch.float64, "cpu", seed=0)
    extra: Sequence[Any] = ()
    if layer.arguments is not None:
        try:
            extra = layer.arguments(point)
        except Exception as exc:
            raise LayerDefinitionError(
                f"layer {layer.name!r}: arguments failed at {where}: {describe(exc)}"
            ) from None
        if not isinstance(extra, tuple | list):
            raise LayerDefinitionError(
                f"layer {layer.name!r}: arguments must return a tuple, got "
                f"{type(extra).__name__} at {where}"
            )
    try:
        with torch.no_grad(), _time_limit(timeout_s, "reference"):
            ref = layer.reference_for(point)(*inputs)
    except Exception as exc:
        raise LayerDefinitionError(
            f"layer {layer.name!r}: reference failed at {where}: {describe(exc)}"
        ) from None
    if not is_outputs(ref):
        raise LayerDefinitionError(
            f"layer {layer.name!r}: reference must return a tensor or a tuple of tensors, "
            f"got {_what_returned(ref)}"
        )
    notes: list[str] = []
    for impl in layer.implementations:
        if impls is not None and impl.name not in impls:
            continue
        try:
            fn: Callable[..., Any] = impl.callable_for(point)
            with torch.no_grad(), _time_limit(timeout_s, f"implementation {impl.name!r}"):
                out = fn(*[t.clone() for t in inputs])
        except Exception as exc:
            hint = call_order_hint(impl.fn, list(layer.inputs), len(extra)) if impl.fn else None
            notes.append(
                f"layer {layer.name!r}: implementation {impl.name!r} failed at {where}: "
                f"{describe(exc)}" + (f" ({hint})" if hint else "")
            )
            continue
        if not is_outputs(out):
            raise LayerDefinitionError(
                f"layer {layer.name!r}: implementation {impl.name!r} must return a tensor "
                f"or a tuple of tensors, as the reference does, got {_what_returned(out)}"
            )
        if len(as_tuple(out)) != len(as_tuple(ref)):
            count = len(as_tuple(out))
            raise LayerDefinitionError(
                f"layer {layer.name!r}: implementation {impl.name!r} returns {count} "
                f"tensor{'s' if count > 1 else ''} at {where}, but the reference returns "
                f"{len(as_tuple(ref))}"
            )
        if shape_of(out) != shape_of(ref):
            raise LayerDefinitionError(
                f"layer {layer.name!r}: implementation {impl.name!r} returns shape "
                f"{_shapes(out)} at {where}, but the reference returns {_shapes(ref)}"
            )
    return notes
