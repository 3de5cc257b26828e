"""How a layer is declared: its grid axes, inputs, reference and implementations.

This is the public declaration API. The built-in layers in the top-level ``layers``
package use nothing else, so they are the reference example::

    from harness import Axis, Layer, baseline, native

    LAYER = Layer(
        name="conv2d",
        description="2-D cross-correlation with a learnable filter and scalar bias",
        axes=(Axis("n", (8, 64, 512), "image side"), Axis("k", (3, 15), "filter side")),
        constraint=lambda p: None if p["k"] <= p["n"] else "k must be <= n",
        inputs={"x": 2, "filter": 2, "bias": 2},
        make_inputs=lambda p, g: (torch.randn(p["n"], p["n"], generator=g), ...),
        reference=torch_conv2d,
        implementations=(baseline("scipy", ScipyConv2dFunction), native("torch", torch_conv2d)),
    )

A *baseline* is the NumPy/SciPy implementation the user has today; a *native*
candidate is a torch implementation they could port to. Every native candidate gets
TorchScript, ``torch.compile`` and ONNX Runtime forms for free (``forms=()`` opts out).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import product
from typing import Any, Literal, cast

import torch

from harness.dtypes import cast_input, differentiable_dtype
from harness.errors import ConfigError, InputError, LayerDefinitionError, describe
from harness.outputs import tensors_of
from harness.points import AxisValue, Point, format_point

__all__ = [
    "FORMS",
    "Axis",
    "AxisValue",
    "Implementation",
    "Layer",
    "Point",
    "baseline",
    "bind_module",
    "call_order_hint",
    "native",
    "parameter_order",
    "with_arguments",
]

Role = Literal["baseline", "native", "compiled"]
#: A plain callable on the layer's tensors, or an ``autograd.Function`` subclass.
ImplFn = Callable[..., torch.Tensor] | type[torch.autograd.Function]

#: Forms derived from a native candidate, in the order they are listed.
FORMS: tuple[str, ...] = ("torchscript", "compile", "onnxruntime")
#: Forms that can run backward (ONNX Runtime sessions are forward only).
_BACKWARD_FORMS = frozenset({"eager", "torchscript", "compile"})

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _check_name(what: str, name: object, owner: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise LayerDefinitionError(
            f"{owner}: {what} name {name!r} is not valid "
            "(use letters, digits, '_', '.', '-', starting with a letter or '_')"
        )


@dataclass(frozen=True)
class Axis:
    """One grid axis of a layer, such as the image side ``n``.

    ``default`` is the list of values ``python -m harness run`` sweeps when the user
    gives no ``--grid`` for this axis. Numeric values must be ``>= minimum`` (sizes are
    positive by default); ``choices`` restricts the values to a fixed set.
    """

    name: str
    default: tuple[AxisValue, ...]
    description: str = ""
    type: type = int
    minimum: float | None = 1
    choices: tuple[AxisValue, ...] | None = None

    def parse(self, text: str, layer: str = "") -> AxisValue:
        """Turn one value from the command line into this axis's type."""
        try:
            if self.type is int:
                return int(text)
            return self.type(text)  # type: ignore[no-any-return]
        except ValueError:
            where = f"layer {layer!r}: " if layer else ""
            raise ConfigError(
                f"{where}axis {self.name!r} value {text!r} is not a valid {self.type.__name__}"
            ) from None

    def validate(self, value: object, layer: str = "") -> AxisValue:
        """Return ``value`` if it is allowed on this axis, else raise ``ConfigError``."""
        where = f"layer {layer!r}: " if layer else ""
        if isinstance(value, bool) or not isinstance(value, self.type):
            raise ConfigError(
                f"{where}axis {self.name!r} value {value!r} is not a {self.type.__name__}"
            )
        if self.choices is not None and value not in self.choices:
            raise ConfigError(
                f"{where}axis {self.name!r} value {value!r} is not one of {list(self.choices)}"
            )
        if (
            self.minimum is not None
            and isinstance(value, int | float)
            and not (math.isfinite(value) and value >= self.minimum)
        ):
            raise ConfigError(
                f"{where}axis {self.name!r} value {value!r} must be >= {self.minimum:g}"
            )
        return value  # type: ignore[return-value]


@dataclass(frozen=True)
class Implementation:
    """One way to compute a layer.

    ``fn`` takes the layer's input tensors positionally and returns one tensor. It may
    be a plain callable, or an ``autograd.Function`` subclass (its ``apply`` is used).
    For an ``nn.Module`` give ``module=``: a factory called with the grid point that
    returns the module; the layer's inputs after the first are bound to the module's
    parameters of the same name, so the harness controls their values.

    ``form`` is ``"eager"`` for what the user declares; the harness derives
    ``"torchscript"``, ``"compile"`` and ``"onnxruntime"`` forms from native candidates,
    with ``source`` naming the declared implementation they come from.
    """

    name: str
    role: Role
    fn: ImplFn | None = None
    module: Callable[[Point], torch.nn.Module] | None = None
    backward: bool = True
    forms: tuple[str, ...] = FORMS
    description: str = ""
    form: str = "eager"
    source: str = ""
    arrays: bool = False
    """``fn`` is a NumPy function of arrays returning an array (forward only)."""
    bound_inputs: tuple[str, ...] = ()
    """A module's: the layer's input names after the first, which its parameters are
    bound to (``bind_module``); set by ``Layer``."""
    arguments: Callable[[Point], Sequence[Any]] | None = None
    """``fn``'s: the layer's arguments after the tensors, per point (``Layer.arguments``);
    set by ``Layer``."""

    @property
    def origin(self) -> str:
        """Name of the declared implementation this one is (or is derived from)."""
        return self.source or self.name

    def callable_for(self, point: Point) -> Callable[..., torch.Tensor]:
        """The eager callable for one grid point (modules are built here)."""
        if self.module is not None:
            mod = self.module(point)
            return bind_module(mod, self.bound_inputs)
        fn = self.fn
        if isinstance(fn, type) and issubclass(fn, torch.autograd.Function):
            return with_arguments(fn.apply, self.arguments, point)
        assert fn is not None  # checked in Layer.__post_init__
        if self.arrays:
            if self.form == "compile":
                return self.compilable(point)
            return _on_arrays(with_arguments(fn, self.arguments, point))
        return with_arguments(cast(Callable[..., torch.Tensor], fn), self.arguments, point)

    def compilable(self, point: Point) -> Callable[..., torch.Tensor]:
        """What ``torch.compile`` is given: for a function of arrays,
        ``torch.compiler.wrap_numpy(fn)``, so that Dynamo traces its NumPy calls as
        torch ops (tensors in, tensors out); otherwise the eager callable."""
        if self.arrays and self.fn is not None:
            fn = with_arguments(self.fn, self.arguments, point)
            return cast(Callable[..., torch.Tensor], torch.compiler.wrap_numpy(fn))
        return self.callable_for(point)


def with_arguments(
    fn: Callable[..., Any], arguments: Callable[[Point], Sequence[Any]] | None, point: Point
) -> Callable[..., Any]:
    """``fn`` with the layer's arguments at ``point`` after the tensors it is called
    with (``Layer.arguments``); ``fn`` itself where there are none."""
    if arguments is None:
        return fn
    extra = tuple(arguments(point))

    def call(*tensors: Any) -> Any:
        return fn(*tensors, *extra)

    call.__name__ = getattr(fn, "__name__", "call")
    call.__qualname__ = getattr(fn, "__qualname__", call.__name__)
    return call


def _on_arrays(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A NumPy function of arrays called on tensors: arrays in, a tensor out (no
    autograd); a tuple of arrays out, a tuple of tensors (a layer of several outputs)."""

    def call(*tensors: torch.Tensor) -> Any:
        return tensors_of(fn(*(t.detach().cpu().numpy() for t in tensors)), tensors[0].device)

    call.__name__ = getattr(fn, "__name__", "numpy_function")
    call.__qualname__ = getattr(fn, "__qualname__", call.__name__)
    return call


def call_order_hint(fn: object, inputs: Sequence[str], arguments: int) -> str | None:
    """Why a callable's parameters may not take what the harness passes, in order: the
    layer's ``inputs`` first, then its ``arguments`` (how many at the point). Said where
    ``fn``'s positional parameters (an ``autograd.Function``'s ``forward`` after
    ``ctx``) name every input but at other positions (2026-12-02: graphnet's
    ``LogCMK.forward(ctx, m, kappa)``, declared as is, was called ``apply(kappa, 2)``
    and failed at every size on ``'int' object has no attribute 'dtype'``); None
    otherwise, and for anything whose signature cannot be read."""
    target: Any = fn
    label = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "it")
    function = isinstance(fn, type) and issubclass(fn, torch.autograd.Function)
    if function:
        target = cast(Any, fn).forward
        label = f"{label}.forward"
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    positional = [
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    # forward(ctx, ...), unless the Function sets its context up apart (setup_context)
    own_setup = function and "setup_context" in vars(fn)
    if function and not own_setup and positional:
        positional = positional[1:]
    if not inputs or not set(inputs) <= set(positional):
        return None
    if [positional.index(name) for name in inputs] == list(range(len(inputs))):
        return None
    passed = [*inputs, *(["<argument>"] * arguments)]
    return (
        f"{label} takes ({', '.join(positional)}), but the harness passes "
        f"({', '.join(passed)}): the layer's inputs first, then its arguments; declare a "
        "function that calls it in its own order"
    )


def parameter_order(names: Sequence[str], inputs: Sequence[str]) -> list[int]:
    """For each of a module's parameters (``names``, in ``named_parameters`` order), the
    index of the layer input bound to it among ``inputs`` (the inputs after the first).

    By name where the names match: the full dotted name (``conv.weight``) or, where
    those are unique, the attribute (``weight``); in order where no name matches (or
    ``inputs`` is empty). Before 2026-11-30 it was always in order, and a module whose
    inputs were declared ``a_coeff, b_coeff`` for parameters ``b_coeff, a_coeff`` had
    them swapped, read as a wrong baseline. ``InputError`` if some names match and
    others do not, or the counts differ."""
    if len(inputs) != len(names) and inputs:
        raise InputError(f"module has parameters {list(names)} but the layer binds {list(inputs)}")
    attrs = [n.rpartition(".")[2] for n in names]
    for keys in (list(names), attrs):
        if len(set(keys)) == len(keys) and set(keys) == set(inputs):
            return [list(inputs).index(k) for k in keys]
    if set(inputs) & (set(names) | set(attrs)):
        raise InputError(
            f"module parameters {list(names)} and the layer's inputs after the first "
            f"{list(inputs)} share some names but not all: name them alike (bound by name) "
            "or all differently (bound in order)"
        )
    return list(range(len(names)))


def forward_inputs(mod: torch.nn.Module, inputs: Sequence[str]) -> tuple[str, ...]:
    """Those of ``inputs`` (a layer's inputs after the first) that ``mod``'s forward
    takes as arguments: named as one of its parameters after the first (which takes
    the layer's first input), and not as one of the module's own parameters (which
    binds it to that parameter, as before). A module of several tensors
    (``forward(self, query, key)``, ``forward(self, x, mask)``) is called with them
    by name; its parameters still take the rest."""
    import inspect

    try:
        signature = inspect.signature(mod.forward)
    except (TypeError, ValueError):  # a builtin or scripted forward: none by name
        return ()
    takes = {
        p.name
        for p in list(signature.parameters.values())[1:]
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    own = {n for n, _ in mod.named_parameters()}
    own |= {n.rpartition(".")[2] for n in own}
    return tuple(n for n in inputs if n in takes and n not in own)


def bind_module(mod: torch.nn.Module, inputs: Sequence[str] = ()) -> Callable[..., torch.Tensor]:
    """``call(x, *rest)``: ``mod(x, **arguments)`` with its parameters replaced.

    The one binding of a module to a layer's inputs: ``rest`` are the layer's inputs
    after the first (named ``inputs``). Those the module's forward takes by name are
    passed to it (``forward_inputs``); the others are its parameters, bound by name
    where the names match and in ``named_parameters`` order where none do
    (``parameter_order``), so the harness controls their values and autograd reaches
    them. ``InputError`` if the count differs.

    An eager call costs what the user's ``module(x)`` costs: the tensors are put in the
    parameters' places (every place a tied parameter has) when they are not already
    there, and stay there, as a user's module keeps its parameters between calls. A
    call with the same tensors as the last one is ``mod(x)`` plus a check of identity
    (about 1 us).
    ``torch.func.functional_call`` did the binding per call until 2026-11-30: 22-34 us
    a call on this VM (AVX512), more than the seed's SciPy layer takes at n=8, which
    the harness then counted against the baseline and the user's loop never pays.

    Under ``torch.compile`` and ``torch.export`` (and for tensor subclasses such as
    fake tensors) the binding is ``functional_call``, which they trace; under
    ``torch.jit.trace`` (which ``functional_call`` refuses) the parameters are swapped
    in for the call only, so that the tracer records them as graph inputs.
    """
    named = list(mod.named_parameters())
    names = [name for name, _ in named]
    passed = forward_inputs(mod, inputs)
    # where each of ``rest`` goes: a forward argument (its name), or a parameter (None)
    slots: list[str | None] = [n if n in passed else None for n in inputs]
    bound = [n for n in inputs if n not in passed]
    if inputs and len(bound) != len(names):
        hint = (
            f"; forward takes {list(passed)} by name"
            if passed
            else "; an input named as an argument of forward is passed to it"
        )
        raise InputError(
            f"module {type(mod).__name__} has parameters {names} but the layer binds {bound}{hint}"
        )
    order = parameter_order(names, bound) if len(bound) == len(names) else None
    index = {id(param): i for i, (_, param) in enumerate(named)}
    places: list[list[tuple[torch.nn.Module, str]]] = [[] for _ in named]
    for name, param in mod.named_parameters(remove_duplicate=False):
        owner_name, _, attr = name.rpartition(".")
        places[index[id(param)]].append((mod.get_submodule(owner_name), attr))

    def _functional(
        x: torch.Tensor, params: Sequence[torch.Tensor], kwargs: dict[str, Any]
    ) -> torch.Tensor:
        values = dict(zip(names, params, strict=True))
        return torch.func.functional_call(mod, values, (x,), kwargs)  # type: ignore[no-any-return]

    def call(x: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        kwargs: dict[str, Any] = {}
        if passed:
            if len(rest) != len(slots):
                raise InputError(
                    f"module {type(mod).__name__} takes {list(inputs)} after its input "
                    f"but got {len(rest)} tensors"
                )
            kwargs = {n: t for n, t in zip(slots, rest, strict=True) if n is not None}
            rest = tuple(t for n, t in zip(slots, rest, strict=True) if n is None)
        params = rest
        if len(params) != len(names):
            raise InputError(
                f"module {type(mod).__name__} has parameters {names} but got {len(params)} "
                "parameter tensors"
            )
        if order is not None:
            params = tuple(params[i] for i in order)
        if torch.jit.is_tracing():
            with _parameters_swapped(places, params):
                return mod(x, **kwargs)  # type: ignore[no-any-return]
        if torch.compiler.is_compiling():
            return _functional(x, params, kwargs)
        for where, value in zip(places, params, strict=True):
            owner, attr = where[0]
            if owner._parameters[attr] is not value:  # the module's places say what is bound
                if not _plain(value):
                    return _functional(x, params, kwargs)
                for owner, attr in where:
                    owner._parameters[attr] = value  # type: ignore[assignment]
        return mod(x, **kwargs)  # type: ignore[no-any-return]

    call.__name__ = type(mod).__name__
    call.__qualname__ = type(mod).__qualname__
    return call


def _plain(t: torch.Tensor) -> bool:
    """A real tensor (or parameter), not a subclass that a tracer hands in."""
    return type(t) is torch.Tensor or type(t) is torch.nn.Parameter


@contextmanager
def _parameters_swapped(
    places: Sequence[Sequence[tuple[torch.nn.Module, str]]], values: Sequence[torch.Tensor]
) -> Iterator[None]:
    """Put ``values`` in ``places`` (each parameter's owners and names) for the body."""
    saved: list[tuple[torch.nn.Module, str, Any]] = []
    try:
        for where, value in zip(places, values, strict=True):
            for owner, attr in where:
                saved.append((owner, attr, owner._parameters[attr]))
                owner._parameters[attr] = value  # type: ignore[assignment]
        yield
    finally:
        for owner, attr, original in reversed(saved):
            owner._parameters[attr] = original


def baseline(
    name: str,
    fn: ImplFn | None = None,
    *,
    module: Callable[[Point], torch.nn.Module] | None = None,
    backward: bool = True,
    compile: bool = True,
    arrays: bool = False,
    description: str = "",
) -> Implementation:
    """Declare the NumPy/SciPy implementation the user has today.

    ``arrays=True`` declares a plain NumPy function of arrays (``fn(*arrays) ->
    array``): the harness converts the layer's tensors to arrays and back, and it has
    no backward. Its compile form is ``torch.compile(torch.compiler.wrap_numpy(fn))``.

    Unless ``compile=False``, the harness also measures ``<name>-compile``:
    ``torch.compile`` of this code exactly as declared (an ``autograd.Function`` with
    its own backward, or a function of tensors). Since torch 2.1 Dynamo translates
    NumPy calls into torch ops, so some NumPy layers compile with no graph break: the
    cheapest port of all. Where Dynamo cannot trace the code, the report says why.
    """
    if arrays and module is not None:
        raise LayerDefinitionError(
            f"baseline {name!r}: arrays=True takes a NumPy function (fn=), not a module"
        )
    return Implementation(
        name=name,
        role="baseline",
        fn=fn,
        module=module,
        backward=backward and not arrays,  # NumPy arrays carry no autograd graph
        forms=("compile",) if compile else (),
        description=description,
        arrays=arrays,
    )


def native(
    name: str,
    fn: ImplFn | None = None,
    *,
    module: Callable[[Point], torch.nn.Module] | None = None,
    backward: bool = True,
    forms: Sequence[str] = FORMS,
    description: str = "",
) -> Implementation:
    """Declare a native torch candidate; its ``forms`` are derived automatically."""
    return Implementation(
        name=name,
        role="native",
        fn=fn,
        module=module,
        backward=backward,
        forms=tuple(forms),
        description=description,
    )


def form_name(source: str, form: str) -> str:
    """Name of a derived form: ``torchscript`` for the candidate named ``torch``,
    ``<source>-<form>`` (``einsum-compile``) for any other candidate."""
    return form if source == "torch" else f"{source}-{form}"


InputFactory = Callable[[Point, torch.Generator], Sequence[torch.Tensor]]


@dataclass(frozen=True, eq=False)
class Layer:
    """A layer to benchmark: its grid, inputs, float64 reference and implementations.

    ``inputs`` maps each input tensor's name to its number of dimensions, in the order
    implementations take them. ``make_inputs(point, generator)`` returns those tensors
    for one grid point, drawn from ``generator`` so that every process sees the same
    values; the harness casts floating (and complex) ones to each dtype, and moves
    every one to each device. Integer and bool inputs (indices, masks) keep their
    dtype. ``reference`` is called in float64 on the CPU and is the ground truth for
    outputs and gradients. ``constraint(point)`` returns a message when a combination
    of axis values is invalid (``k > n``), else ``None``. Gradients are taken with
    respect to ``grad_inputs`` (default: every floating or complex input).
    """

    name: str
    description: str
    axes: tuple[Axis, ...]
    inputs: Mapping[str, int]
    make_inputs: InputFactory
    reference: Callable[..., torch.Tensor]
    implementations: tuple[Implementation, ...]
    constraint: Callable[[Point], str | None] | None = None
    size_axis: str | None = None
    grad_inputs: tuple[str, ...] | None = None
    gradcheck_point: Mapping[str, AxisValue] | None = None
    arguments: Callable[[Point], Sequence[Any]] | None = None
    """Arguments after the tensors, per grid point (a rank, a regularisation): every
    ``fn`` implementation and the reference are called ``fn(*tensors, *arguments(point))``.
    A module gets the point itself (``module=``)."""

    def __post_init__(self) -> None:
        _check_name("layer", self.name, "layer")
        owner = f"layer {self.name!r}"
        if not isinstance(self.description, str):
            raise LayerDefinitionError(f"{owner}: description must be a string")
        object.__setattr__(self, "axes", tuple(self.axes))
        object.__setattr__(self, "inputs", dict(self.inputs))
        bound = tuple(self.inputs)[1:]
        object.__setattr__(
            self,
            "implementations",
            tuple(
                (
                    replace(i, bound_inputs=bound)
                    if i.module is not None
                    else replace(i, arguments=self.arguments)
                )
                if isinstance(i, Implementation)
                else i
                for i in self.implementations
            ),
        )
        if not self.axes:
            raise LayerDefinitionError(f"{owner}: declares no grid axes")
        seen: set[str] = set()
        for axis in self.axes:
            if not isinstance(axis, Axis):
                raise LayerDefinitionError(f"{owner}: axes must be Axis objects, got {axis!r}")
            _check_name("axis", axis.name, owner)
            if axis.name in seen:
                raise LayerDefinitionError(f"{owner}: axis {axis.name!r} is declared twice")
            seen.add(axis.name)
            if not axis.default:
                raise LayerDefinitionError(f"{owner}: axis {axis.name!r} has no default values")
            for value in axis.default:
                try:
                    axis.validate(value, self.name)
                except ConfigError as exc:
                    raise LayerDefinitionError(f"invalid default: {exc}") from None
        if not self.inputs:
            raise LayerDefinitionError(f"{owner}: declares no inputs")
        for iname, ndim in self.inputs.items():
            _check_name("input", iname, owner)
            if not isinstance(ndim, int) or isinstance(ndim, bool) or ndim < 0:
                raise LayerDefinitionError(
                    f"{owner}: input {iname!r} must map to its number of dimensions, got {ndim!r}"
                )
        if not callable(self.make_inputs):
            raise LayerDefinitionError(f"{owner}: has no input factory (make_inputs)")
        if self.reference is None or not callable(self.reference):
            raise LayerDefinitionError(f"{owner}: has no float64 reference (reference=...)")
        if self.size_axis is not None and self.size_axis not in seen:
            raise LayerDefinitionError(
                f"{owner}: size_axis {self.size_axis!r} is not one of its axes {sorted(seen)}"
            )
        if self.grad_inputs is not None:
            unknown = [g for g in self.grad_inputs if g not in self.inputs]
            if unknown:
                raise LayerDefinitionError(f"{owner}: grad_inputs {unknown} are not inputs")
        self._check_implementations(owner)

    def _check_implementations(self, owner: str) -> None:
        if not self.implementations:
            raise LayerDefinitionError(f"{owner}: declares no implementations")
        names: set[str] = set()
        for impl in self.implementations:
            if not isinstance(impl, Implementation):
                raise LayerDefinitionError(
                    f"{owner}: implementations must be declared with baseline() or native(), "
                    f"got {impl!r}"
                )
            _check_name("implementation", impl.name, owner)
            if impl.role not in ("baseline", "native", "compiled"):
                raise LayerDefinitionError(
                    f"{owner}: implementation {impl.name!r} has role {impl.role!r}, "
                    "expected 'baseline' or 'native'"
                )
            if (impl.fn is None) == (impl.module is None):
                raise LayerDefinitionError(
                    f"{owner}: implementation {impl.name!r} needs exactly one of fn= or module="
                )
            target = impl.fn if impl.fn is not None else impl.module
            if not callable(target):
                raise LayerDefinitionError(
                    f"{owner}: implementation {impl.name!r} is not callable: {target!r}"
                )
            bad = [f for f in impl.forms if f not in FORMS]
            if impl.role == "baseline":
                bad += [f for f in impl.forms if f != "compile" and f not in bad]
            if bad:
                raise LayerDefinitionError(
                    f"{owner}: implementation {impl.name!r} asks for unknown forms {bad}; "
                    f"known: {list(FORMS)}"
                )
            for name in [impl.name, *(form_name(impl.name, f) for f in impl.forms)]:
                if name in names:
                    raise LayerDefinitionError(
                        f"{owner}: implementation name {name!r} is used twice"
                    )
                names.add(name)
        if not any(i.role == "baseline" for i in self.implementations):
            raise LayerDefinitionError(
                f"{owner}: declares no baseline (the NumPy/SciPy implementation to compare "
                "against; declare it with baseline(...))"
            )

    # -- implementations ------------------------------------------------------------

    def all_implementations(self) -> tuple[Implementation, ...]:
        """Declared implementations followed by their derived forms: TorchScript,
        ``torch.compile`` and ONNX Runtime of native candidates, ``torch.compile`` of
        baselines as declared (``<baseline>-compile``)."""
        out = list(self.implementations)
        for impl in self.implementations:
            for form in impl.forms:
                out.append(
                    replace(
                        impl,
                        name=form_name(impl.name, form),
                        # the baseline's own code under torch.compile: a candidate
                        role="compiled" if impl.role == "baseline" else impl.role,
                        form=form,
                        source=impl.name,
                        forms=(),
                        backward=impl.backward and form in _BACKWARD_FORMS,
                    )
                )
        return tuple(out)

    def implementation(self, name: str) -> Implementation:
        """Look an implementation (declared or derived) up by name."""
        for impl in self.all_implementations():
            if impl.name == name:
                return impl
        known = ", ".join(i.name for i in self.all_implementations())
        raise ConfigError(f"layer {self.name!r} has no implementation {name!r} (known: {known})")

    @property
    def baseline(self) -> Implementation:
        """The first declared baseline implementation."""
        return next(i for i in self.implementations if i.role == "baseline")

    @property
    def trains(self) -> bool:
        """Whether a training step has a baseline to be compared with: some baseline
        declares a backward. A forward-only layer's natives are not set up or timed
        for ``backward`` and ``step``: no verdict would read those figures."""
        return any(i.backward for i in self.implementations if i.role == "baseline")

    # -- grid -----------------------------------------------------------------------

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    @property
    def size_axis_name(self) -> str:
        """The axis reports plot against (the declared one, else the first)."""
        return self.size_axis or self.axes[0].name

    def axis(self, name: str) -> Axis:
        for axis in self.axes:
            if axis.name == name:
                return axis
        raise ConfigError(
            f"layer {self.name!r} has no axis {name!r} (axes: {', '.join(self.axis_names)})"
        )

    def check_point(self, point: Mapping[str, object]) -> dict[str, AxisValue]:
        """Validate one grid point, returning it in axis order; ``ConfigError`` if bad."""
        missing = [a for a in self.axis_names if a not in point]
        extra = [k for k in point if k not in self.axis_names]
        if missing or extra:
            raise ConfigError(
                f"layer {self.name!r}: point {dict(point)} "
                + (f"lacks axes {missing}" if missing else f"has unknown axes {extra}")
            )
        clean = {a.name: a.validate(point[a.name], self.name) for a in self.axes}
        if self.constraint is not None:
            problem = self.constraint(clean)
            if problem:
                raise ConfigError(f"layer {self.name!r}: point {format_point(clean)}: {problem}")
        return clean

    def points(
        self, overrides: Mapping[str, Sequence[AxisValue]] | None = None
    ) -> tuple[list[dict[str, AxisValue]], list[str]]:
        """The cartesian product of the axis values, split into valid points and the
        reasons combinations were dropped. Each value is validated on its own first."""
        overrides = overrides or {}
        values = []
        for axis in self.axes:
            chosen = overrides.get(axis.name, axis.default)
            values.append([axis.validate(v, self.name) for v in chosen])
        valid: list[dict[str, AxisValue]] = []
        dropped: list[str] = []
        for combo in product(*values):
            point = dict(zip(self.axis_names, combo, strict=True))
            problem = self.constraint(point) if self.constraint else None
            if problem:
                dropped.append(f"{format_point(point)}: {problem}")
            else:
                valid.append(point)
        return valid, dropped

    def reference_for(self, point: Point) -> Callable[..., torch.Tensor]:
        """The reference at ``point``: called with the tensors, then ``arguments``."""
        return with_arguments(self.reference, self.arguments, point)

    def smallest_point(self, fixed: Mapping[str, AxisValue] | None = None) -> dict[str, AxisValue]:
        """The first valid point of the default grid in sorted order: used for quick
        checks (capabilities, gradcheck) when no ``gradcheck_point`` is declared.

        ``fixed``: values of axes other than the size that the run measures, which
        replace the default grid's (2026-12-03: a run of a Bessel layer at ``--grid v=1``
        had its gradient checked at v=0, a code path it never measured); the size stays
        the default grid's smallest, where a check is cheapest. A combination the
        layer's constraint refuses falls back to the default grid's point."""
        if self.gradcheck_point is not None:
            return self.check_point(self.gradcheck_point)
        valid, _ = self.points({a.name: sorted(a.default) for a in self.axes})  # type: ignore[type-var]
        if not valid:
            raise LayerDefinitionError(f"layer {self.name!r}: its default grid has no valid point")
        if fixed:
            with contextlib.suppress(ConfigError):
                return self.check_point({**valid[0], **fixed})
        return valid[0]

    # -- inputs ---------------------------------------------------------------------

    @property
    def differentiable(self) -> tuple[str, ...]:
        """The inputs declared differentiable (``grad_mask`` leaves out those that are
        not floating when made)."""
        return self.grad_inputs if self.grad_inputs is not None else tuple(self.inputs)

    def grad_mask(self, inputs: Sequence[torch.Tensor]) -> tuple[bool, ...]:
        """Per input: whether gradients are taken with respect to it, that is, it is
        declared differentiable and is floating or complex (an index never is)."""
        declared = set(self.differentiable)
        return tuple(
            name in declared and differentiable_dtype(t)
            for name, t in zip(self.inputs, inputs, strict=True)
        )

    def make(
        self,
        point: Point,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> tuple[torch.Tensor, ...]:
        """Seeded inputs for ``point`` in ``dtype`` on ``device`` (validated)."""
        gen = torch.Generator().manual_seed(seed)
        try:
            made = self.make_inputs(point, gen)
        except Exception as exc:  # a user's factory: report, naming the layer
            raise LayerDefinitionError(
                f"layer {self.name!r}: make_inputs failed at {format_point(point)}: {describe(exc)}"
            ) from exc
        if isinstance(made, torch.Tensor):
            made = (made,)
        if not isinstance(made, Sequence) or not all(isinstance(t, torch.Tensor) for t in made):
            raise LayerDefinitionError(
                f"layer {self.name!r}: make_inputs must return a tuple of tensors, "
                f"got {type(made).__name__}"
            )
        try:
            self.check_inputs(*made)
        except InputError as exc:
            raise LayerDefinitionError(f"make_inputs returned bad inputs: {exc}") from None
        for name, tensor in zip(self.inputs, made, strict=True):
            named = self.grad_inputs is not None and name in self.grad_inputs
            if named and not differentiable_dtype(tensor):
                raise LayerDefinitionError(
                    f"layer {self.name!r}: grad_inputs names {name!r}, but make_inputs "
                    f"returns it as {str(tensor.dtype).removeprefix('torch.')}, which "
                    "has no gradient: leave it out of grad_inputs"
                )
        return tuple(cast_input(t, dtype, device) for t in made)

    def check_inputs(self, *tensors: torch.Tensor) -> None:
        """Raise ``InputError`` unless ``tensors`` match the declared inputs."""
        names = list(self.inputs)
        if len(tensors) != len(names):
            raise InputError(
                f"layer {self.name!r} takes {len(names)} inputs ({', '.join(names)}), "
                f"got {len(tensors)}"
            )
        for name, tensor in zip(names, tensors, strict=True):
            want = self.inputs[name]
            if not isinstance(tensor, torch.Tensor):
                raise InputError(
                    f"layer {self.name!r}: input {name!r} must be a tensor, "
                    f"got {type(tensor).__name__}"
                )
            if tensor.dim() != want:
                raise InputError(
                    f"layer {self.name!r}: input {name!r} must be {want}-D, got "
                    f"{tensor.dim()}-D with shape {tuple(tensor.shape)}"
                )

    def __call__(
        self, impl: str, *tensors: torch.Tensor, point: Point | None = None
    ) -> torch.Tensor:
        """Run one eager implementation on user tensors, after checking them."""
        self.check_inputs(*tensors)
        chosen = self.implementation(impl)
        if chosen.form != "eager":
            raise ConfigError(
                f"layer {self.name!r}: {impl!r} is a derived form; call {chosen.origin!r} instead"
            )
        return chosen.callable_for(point or {})(*tensors)
