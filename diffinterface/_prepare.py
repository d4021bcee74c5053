"""Preparation: everything that can be done once for an operator, in named steps.

:func:`prepare` checks and normalises the arguments (:func:`arguments`), folds contexts
and ``y=`` into a function of native arrays and traces or evaluates it once
(:func:`native_problem`), chooses and builds the kernels (``diffinterface._kernels``),
composes them with the conversions and the finishing of their results
(:func:`compose`) and makes the guard (``diffinterface._guard``). The result is a
:class:`~diffinterface._preparation.Prep`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from diffinterface._adapter import Adapter, adapter_for
from diffinterface._arrays import check_dtype, converter, identity, kind, kind_of, signature
from diffinterface._backend_types import Backend, BackendLike, resolve_backend
from diffinterface._contexts import Cache, check_contexts, context_signature, is_static
from diffinterface._derived import OperatorSpec
from diffinterface._errors import DiffInterfaceError, InvalidArgumentError, UnsupportedError
from diffinterface._functions import (
    checked_output,
    native_function,
    numbers_as_arrays,
    on_structure,
)
from diffinterface._guard import guard_for, types_check
from diffinterface._kernels import Kernels, build_kernels
from diffinterface._mismatch import explainer
from diffinterface._namespace import array_namespace
from diffinterface._preparation import Call, Prep, Run
from diffinterface._results import copying, finisher
from diffinterface._tangents import Tangents, tangents_of
from diffinterface._trees import Structure

__all__ = ["Variant", "prepare"]

#: which kernels a preparation makes: both, or the one an unprepared call needs
Variant = Literal["both", "last", "all"]

#: operators whose result AD or differences compute afresh: never a view of x or tangents
_FRESH_RESULTS = frozenset({"gradient", "jacobian", "hessian"})


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


@dataclass(frozen=True)
class NativeProblem:
    """The problem in the backend's arrays: fn of the one array the operators see."""

    adapter: Adapter
    fn: Callable[..., Any]  # fn(x in its structure, *consts)
    fn_flat: Callable[..., Any]  # fn(the one array, *consts)
    x: Any  # x's structure of native arrays
    x_flat: Any  # the one array
    consts: tuple[Any, ...]
    const_in: tuple[Callable[[Any], Any] | None, ...]
    x_in: Callable[[Any], Any]  # one leaf to native
    y: Any  # the output template


def prepare(
    spec: OperatorSpec,
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    tangents: Any,
    contexts: tuple[Any, ...],
    y: Any = None,
    variant: Variant = "both",
) -> Prep:
    """Validate, convert, build, compose and compile: the work behind ``prepare_<operator>``.

    ``variant`` limits the kernels to the one an unprepared call needs (``"last"``: the
    plain operator's result; ``"all"``: the value variant's outputs).

    Raises:
        InvalidArgumentError: bad x, tangents, contexts or output of f.
        UnsupportedError: the backend cannot do this (e.g. differentiate mutation).
        ImportError: the backend's framework is not installed.
    """
    args = arguments(spec, f, backend, x, contexts, y)
    problem = native_problem(args)
    like = (args.structure, args.leaves) if spec.tangents != "y" else _output_like(problem.y)
    tangents_plan = None if spec.tangents is None else tangents_of(spec, tangents, *like)
    kernels = build_kernels(args, problem, tangents_plan, variant)
    runs = compose(args, problem, tangents_plan, kernels)
    call = Call(
        spec=spec,
        f=f,
        backend=args.config,
        structure=args.structure,
        x=tuple(signature(a) for a in args.leaves),
        x_types=tuple(type(a) for a in args.leaves),
        tangents=tangents_plan,
        contexts=context_signature(contexts),
        y=None if y is None else signature(y),
    )
    guard = guard_for(call)

    def normalise(x: Any, t: Any) -> tuple[Any, Any]:
        if (
            type(x) is not np.ndarray
            and kind_of(x) is None
            and not isinstance(x, dict | list | tuple)
        ):
            x = Structure.of(x)[1][0]  # a number becomes an array (or the error says why)
        if tangents_plan is not None:
            t = tangents_plan.normalise(t)
        return x, t

    return Prep(
        call=call,
        guard=guard,
        run_all=runs["all"],
        run_last=runs["last"],
        run_flat=(runs["all_flat"], runs["last_flat"]),
        run_out=runs["out"],
        normalise=normalise,
        explain=explainer(call),
        types=types_check(call) if kernels.run_first else None,
        unwrap=problem.adapter.original_error,
    )


def arguments(
    spec: OperatorSpec,
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    contexts: tuple[Any, ...],
    y: Any,
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
    x_kind = kind_of(leaves[0])
    assert x_kind is not None
    mutates = y is not None or any(isinstance(c, Cache) for c in contexts)
    return Arguments(spec, f, config, structure, leaves, x_kind, contexts, y, mutates)


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
            f"its arrays are immutable. {adapter.mutation_hint}, or rewrite f to return its "
            "output."
        )
    if args.mutates and not adapter.supports_mutation:
        raise UnsupportedError(
            f"{args.config!r} cannot give f a writable di.Cache buffer: its arrays are "
            f"immutable. {adapter.mutation_hint}, or pass the scratch space as di.Constant "
            "and write f without in-place updates."
        )
    check_dtype(args.leaves[0], args.x_kind, adapter.native_kind, "x", args.config)
    x_in = identity if args.x_kind in adapter.accepted_kinds else _to(adapter, args.x_kind)
    native = [x_in(a) for a in args.leaves]
    const_in = tuple(_const_converter(adapter, c) for c in args.contexts)
    consts = tuple(conv(c.value) for conv, c in zip(const_in, args.contexts, strict=True) if conv)
    fn = native_function(args.f, args.contexts, args.y, args.structure)
    fn_flat = on_structure(fn, args.structure)
    if adapter.plain_values:
        fn_flat = numbers_as_arrays(fn_flat)
    x_flat = args.structure.join(native, array_namespace(*native))
    y = _output_template(args, adapter, fn_flat, x_flat, consts)
    return NativeProblem(
        adapter, fn, fn_flat, args.structure.build(native), x_flat, consts, const_in, x_in, y
    )


def _output_template(
    args: Arguments, adapter: Adapter, fn: Callable[..., Any], x: Any, consts: tuple[Any, ...]
) -> Any:
    try:
        out = adapter.output_template(checked_output(fn, args.config, args.y), x, consts)
    except DiffInterfaceError:
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


def _output_like(y: Any) -> tuple[Structure, list[Any]]:
    """f's output (a template) as what y-shaped cotangents must look like."""
    return Structure(y), [y]


def compose(
    args: Arguments, problem: NativeProblem, tangents: Tangents | None, kernels: Kernels
) -> dict[str, Any]:
    """Step 4: each kernel with the conversions of its arguments and the finishing of its
    results, as ``run(x, t, contexts)``; by variant ("all", "last", their "_flat" forms,
    and "out", the last output written into a NumPy ``out=``)."""
    spec, adapter, structure = args.spec, problem.adapter, args.structure
    x_in = _x_converter(structure, problem.x_in)
    t_in = None if tangents is None else tangents.converter(adapter) or identity
    values = [(i, conv) for i, conv in enumerate(problem.const_in) if conv is not None]
    device = kind(args.x_kind).device(args.leaves[0])
    to_x = converter(adapter.native_kind, args.x_kind, device)
    aliasing = _shares_memory(problem.y, (problem.x_flat, *problem.consts))
    batch = None if tangents is None else tangents.batch
    y_shape = tuple(problem.y.shape)

    def finish(outputs: tuple[str, ...], last: bool, flat: bool) -> Callable[[Any], Any]:
        converts = [
            copying(to_x) if aliasing and not (last and spec.name in _FRESH_RESULTS) else to_x
            for _ in outputs
        ]
        return finisher(
            outputs, structure, batch, converts, flat, kernels.passed, kernels.blocks, y_shape
        )

    runs: dict[str, Any] = {"out": None}
    for variant, kernel in (("all", kernels.all), ("last", kernels.last)):
        outputs = spec.outputs if variant == "all" else spec.outputs[-1:]
        for suffix, flat in (("", False), ("_flat", True)):
            if kernel is None or (flat and not {"yx", "xx"} & set(outputs)):
                runs[variant + suffix] = None
                continue
            done = finish(outputs, variant == "last", flat)
            runs[variant + suffix] = _composed(kernel, x_in, t_in, values, done)
    if kernels.writes_out is not None and structure.is_array and args.x_kind == "numpy":
        writes = kernels.writes_out

        def run_out(x: Any, t: Any, contexts: tuple[Any, ...], out: Any) -> Any:
            consts = [conv(contexts[i].value) for i, conv in values]
            return writes(x, *consts, out=out)[-1]

        runs["out"] = run_out
    return runs


def _composed(
    kernel: Callable[..., Any],
    x_in: Callable[[Any], Any],
    t_in: Callable[[Any], Any] | None,
    values: list[tuple[int, Callable[[Any], Any]]],
    finish: Callable[[Any], Any],
) -> Run:
    """``run(x, t, contexts)``, in as few Python calls as the conversions allow (``t_in``
    None: the operator takes no tangents)."""
    plain = x_in is identity and all(conv is identity for _, conv in values)
    slots = [i for i, _ in values]
    if plain and t_in is None:
        if not slots:
            return (
                (lambda x, t, c: kernel(x))
                if finish is identity
                else lambda x, t, c: finish(kernel(x))
            )
        return lambda x, t, c: finish(kernel(x, *[c[i].value for i in slots]))
    if plain and t_in is identity:
        if not slots:
            return lambda x, t, c: finish(kernel(x, t))
        return lambda x, t, c: finish(kernel(x, t, *[c[i].value for i in slots]))

    def run(x: Any, t: Any, contexts: tuple[Any, ...]) -> Any:
        consts = [conv(contexts[i].value) for i, conv in values]
        if t_in is None:
            return finish(kernel(x_in(x), *consts))
        return finish(kernel(x_in(x), t_in(t), *consts))

    return run


def _x_converter(structure: Structure, leaf_in: Callable[[Any], Any]) -> Callable[[Any], Any]:
    if leaf_in is identity or structure.is_array:
        return leaf_in
    leaves_of, build = structure.leaves, structure.build
    return lambda x: build([leaf_in(a) for a in leaves_of(x)])  # type: ignore[union-attr]


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


def _shares_memory(y: Any, arrays: tuple[Any, ...]) -> bool:
    """Whether f's output (an evaluated template) may share memory with its inputs: its
    value, tangents and cotangents would then be views of the caller's arrays."""
    name = kind_of(y)
    return name is not None and any(kind(name).shares_memory(y, a) for a in arrays)
