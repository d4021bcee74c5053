"""Steps 1 and 2 of preparation: the caller's arguments checked and taken apart, and the
problem in the backend's arrays, with f evaluated (or traced) once; and :class:`Call`, what
a preparation keeps of them to recognise a later call (with :func:`same_function` and
:func:`same_backend`)."""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from diffinterface._adapter import Adapter, adapter_for
from diffinterface._arrays import identity, kind, kind_of
from diffinterface._aux import AuxLayout, output_and_aux
from diffinterface._backend_types import Backend, BackendLike, resolve_backend
from diffinterface._contexts import Cache, check_contexts, is_static
from diffinterface._conversions import check_dtype, converter
from diffinterface._derived import OperatorSpec
from diffinterface._errors import DiffInterfaceError, InvalidArgumentError, UnsupportedError
from diffinterface._functions import (
    OutputStructure,
    checked_output,
    joined_output,
    native_function,
    numbers_as_arrays,
    on_structure,
)
from diffinterface._namespace import array_namespace
from diffinterface._tangents import Tangents
from diffinterface._trees import Structure

__all__ = [
    "Arguments",
    "Call",
    "NativeProblem",
    "arguments",
    "native_problem",
    "same_backend",
    "same_function",
]

_MIXED = (
    "f combines a NumPy array with the arrays it receives under {config!r} ({error}); that "
    "library cannot compute with NumPy arrays. Pass the array as a context, "
    "di.Constant(array), which the backend converts for f, or convert it inside f with "
    "xp = di.array_namespace(x); xp.asarray(array)."
)


#: the operators whose f may return a dict / list / tuple of arrays
_STRUCTURED_OUTPUTS = frozenset({"pushforward", "pullback", "derivative", "jacobian"})


@dataclass(frozen=True)
class Arguments:
    """The caller's arguments, checked and normalised (arrays of their own kind)."""

    spec: OperatorSpec
    f: Callable[..., Any]
    config: Backend
    structure: Structure
    leaves: list[Any]
    x_kind: str
    contexts: tuple[Any, ...]
    y: Any
    mutates: bool  # f writes into arrays (y= or Cache): the backend must allow it
    has_aux: bool = False  # f returns (output, aux): aux is passed through


@dataclass(frozen=True)
class NativeProblem:
    """The problem in the backend's arrays: fn of the one array the operators see."""

    adapter: Adapter
    fn: Callable[..., Any]  # fn(x in its structure, *consts)
    fn_of_array: Callable[..., Any]  # fn(the one array, *consts)
    x: Any  # x's structure of native arrays
    x_array: Any  # the one array
    consts: tuple[Any, ...]
    const_in: tuple[Callable[[Any], Any] | None, ...]
    x_in: Callable[[Any], Any]  # one leaf to native
    y: Any  # the output template
    #: with has_aux: aux's arrays, aux(x in its structure, *consts), and its layout
    aux: Callable[..., Any] | None = None
    aux_layout: AuxLayout | None = None
    #: f's output structure, where f returns a dict / list / tuple of arrays (joined)
    y_structure: Structure | None = None


def arguments(
    spec: OperatorSpec,
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    contexts: tuple[Any, ...],
    y: Any,
    has_aux: bool = False,
) -> Arguments:
    """Step 1: check the arguments and take x apart into its structure and leaves."""
    if not callable(f):
        raise InvalidArgumentError(f"f must be callable, got {type(f).__name__}.")
    config = resolve_backend(backend)
    structure, leaves = Structure.of(x)
    if spec.scalar_x and not structure.is_array:
        raise InvalidArgumentError(
            f"{spec.name} needs a scalar x; got a {type(x).__name__}. Use gradient, "
            "pushforward or jacobian for structured inputs."
        )
    if spec.scalar_x and tuple(leaves[0].shape) != ():
        raise InvalidArgumentError(
            f"{spec.name} needs a scalar (0-d) x; got shape {tuple(leaves[0].shape)}. Use "
            "pushforward or jacobian for array inputs."
        )
    check_contexts(contexts)
    if y is not None and kind_of(y) is None:
        raise InvalidArgumentError(
            f"y= must be an array that f(y, x) writes its output into; got {type(y).__name__}."
        )
    if has_aux and y is not None:
        raise InvalidArgumentError(
            "has_aux=True needs f to return (output, aux); a mutating f(y, x) writes its "
            "output into y instead. Return the output, or call without has_aux."
        )
    kinds = [kind_of(a) for a in leaves]  # a traced kind where boxes mix with their values
    x_kind = next((k for k in kinds if k is not None and kind(k).values_of), kinds[0])
    assert x_kind is not None
    mutates = y is not None or any(isinstance(c, Cache) for c in contexts)
    return Arguments(spec, f, config, structure, leaves, x_kind, contexts, y, mutates, has_aux)


def native_problem(args: Arguments) -> NativeProblem:
    """Step 2: the problem in the backend's arrays, and f evaluated (or traced) once.

    Raises:
        UnsupportedError: the backend cannot differentiate mutation.
        InvalidArgumentError: f returned no array, a Python number, another library's
            array, a non-floating array, or (for gradient, hvp, hessian) a non-scalar.
    """
    adapter = adapter_for(args.config).for_operator(args.spec.name)
    if args.y is not None and not adapter.supports_mutation:
        raise UnsupportedError(
            f"{type(args.config).__name__} cannot differentiate a mutating function f(y, x): "
            f"{adapter.mutation_refusal}. {adapter.mutation_hint}, or rewrite f to return its "
            "output."
        )
    if args.mutates and not adapter.supports_mutation:
        raise UnsupportedError(
            f"{args.config!r} cannot give f a writable di.Cache buffer: "
            f"{adapter.mutation_refusal}. {adapter.mutation_hint}, or pass the scratch space "
            "as di.Constant and write f without in-place updates."
        )
    check_dtype(args.leaves[0], args.x_kind, adapter.native_kind, "x", args.config)
    x_in = identity if args.x_kind in adapter.accepted_kinds else _to(adapter, args.x_kind)
    native = [x_in(a) for a in args.leaves]
    const_in = tuple(_const_converter(adapter, c) for c in args.contexts)
    consts = tuple(conv(c.value) for conv, c in zip(const_in, args.contexts, strict=True) if conv)
    fn = native_function(args.f, args.contexts, args.y, args.structure)
    aux = aux_layout = None
    if args.has_aux:
        fn, aux, aux_layout = output_and_aux(fn)
    output = OutputStructure(None if args.spec.name in _STRUCTURED_OUTPUTS else args.spec.name)
    fn_of_array = joined_output(on_structure(fn, args.structure), output)
    if adapter.plain_values:
        fn_of_array = numbers_as_arrays(fn_of_array)
    x_array = args.structure.join(native, array_namespace(*native))
    y = _output_template(args, adapter, fn_of_array, x_array, consts)
    x = args.structure.build(native)
    return NativeProblem(
        adapter,
        fn,
        fn_of_array,
        x,
        x_array,
        consts,
        const_in,
        x_in,
        y,
        aux,
        aux_layout,
        output.structure,
    )


def _output_template(
    args: Arguments, adapter: Adapter, fn: Callable[..., Any], x: Any, consts: tuple[Any, ...]
) -> Any:
    try:
        out = adapter.output_template(checked_output(fn, args.config, args.y), x, consts)
    except DiffInterfaceError:
        raise
    except TypeError as e:
        if adapter.native_kind != "numpy" and "numpy.ndarray" in str(e):
            raise InvalidArgumentError(_MIXED.format(config=args.config, error=e)) from e
        e.add_note(
            f"(raised inside f while diffinterface prepared {args.spec.name} with {args.config!r})"
        )
        raise
    except Exception as e:
        e.add_note(
            f"(raised inside f while diffinterface prepared {args.spec.name} with {args.config!r})"
        )
        raise
    if isinstance(out, np.generic | int | float):
        out = np.asarray(out)
    name = kind_of(out)
    if not (kind(name).is_real_floating(out) if name else np.issubdtype(out.dtype, np.floating)):
        raise InvalidArgumentError(
            f"f returned an array of dtype {out.dtype}; differentiation needs a real floating "
            "output (float32 or float64): compute it in one of those (an integer or bool "
            "output is piecewise constant and has no useful derivative; bfloat16 is not "
            "supported)."
        )
    if args.spec.scalar_y and tuple(out.shape) != ():
        raise InvalidArgumentError(
            f"{args.spec.name} needs f to return a scalar (0-d) array; f returned shape "
            f"{tuple(out.shape)}. Use jacobian for array outputs, or reduce the output "
            "(e.g. xp.sum)."
        )
    return out


def _to(adapter: Adapter, src: str) -> Callable[[Any], Any]:
    return converter(src, adapter.native_kind)


def _const_converter(adapter: Adapter, c: Any) -> Callable[[Any], Any] | None:
    """How a context's value is passed to the kernel; None when ``fn`` supplies it itself
    (a Cache buffer, or a static Constant folded in at preparation)."""
    if isinstance(c, Cache) or is_static(c.value):
        return None
    name = kind_of(c.value)
    if name is None or name in adapter.accepted_kinds:
        return identity  # unhashable non-arrays (nested data) are handed to f as they are
    return _to(adapter, name)


@dataclass(frozen=True)
class Call:
    """What one preparation was made for, as the guard and the mismatch report see it."""

    spec: OperatorSpec
    f: Callable[..., Any]
    backend: Any  # the Backend object
    structure: Structure
    x: tuple[Any, ...]  # signatures of x's leaves
    x_types: tuple[type, ...]  # the types of x's leaves
    tangents: Tangents | None
    contexts: tuple[Any, ...]  # context_signature
    y: Any  # the signature of y= (mutating f), else None
    has_aux: bool = False  # f returns (output, aux)


def same_function(prepared: Any, called: Any) -> bool:
    """Whether ``called`` is the f a preparation was made for. A bound method counts as the
    same when it binds the same function to the same object: ``obj.f`` is a new object at
    every attribute access."""
    return prepared is called or (isinstance(prepared, types.MethodType) and prepared == called)


def same_backend(called: Any, prepared: Any) -> bool:
    """Whether ``called`` (an object or a name) is the prepared backend; names resolve to
    one cached object, so identity decides without comparing fields."""
    if called is prepared:
        return True
    try:
        config = resolve_backend(called)
    except DiffInterfaceError:
        return False
    return config is prepared or config == prepared
