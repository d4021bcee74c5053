"""What a preparation runs on every call, put together once at preparation (step 4).

* The **guard**, ``guard(spec, f, backend, x, t, contexts) -> bool``: whether the
  preparation was made for this call. It compares the operator, f and the backend (by
  identity first), and the signatures of x's leaves, of the tangents' leaves and of the
  contexts with the ``Call`` that the preparation was made for (``_arguments``). ``y=``
  and the explanation of a difference are the general path's (``_mismatch``).
* Each **composed kernel**, ``run(x, t, contexts)``: the backend's kernel with the
  conversions of its arguments and the finishing of its results.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import call
from typing import Any

from diffinterface._arguments import Arguments, Call, NativeProblem, same_backend, same_function
from diffinterface._arrays import identity, kind, matcher
from diffinterface._contexts import contexts_check
from diffinterface._conversions import converter
from diffinterface._kernels import Kernels
from diffinterface._results import aux_converter, copying, finisher, shares_memory
from diffinterface._tangents import Tangents
from diffinterface._trees import Args, Structure

__all__ = [
    "Run",
    "call_check",
    "compose",
    "guard_for",
    "leaves_check",
    "tangents_check",
    "types_check",
]

#: ``run(x, t, contexts)``: a composed kernel, from the caller's arguments to results
Run = Callable[[Any, Any, tuple[Any, ...]], Any]


def leaves_check(structure: Structure, signatures: tuple[Any, ...]) -> Callable[[Any], bool]:
    """``check(tree)``: whether tree has the structure and these leaf signatures."""
    matches = tuple(map(matcher, signatures))
    if structure.is_array:
        return matches[0]
    if structure.args and structure.arguments_are_arrays:  # the Args are the leaves
        return _each_argument(matches)
    leaves_of = _leaves_of(structure)

    def check(tree: Any) -> bool:
        leaves = leaves_of(tree)
        return leaves is not None and all(map(call, matches, leaves))

    return check


def guard_for(call: Call) -> Callable[..., bool]:
    """The guard of a preparation made for ``call`` (see the module's docstring)."""
    same_call, x_ok, t_ok = (
        call_check(call),
        leaves_check(call.structure, call.x),
        tangents_check(call),
    )

    def guard(s: Any, g: Any, b: Any, x: Any, t: Any, contexts: tuple[Any, ...]) -> bool:
        return x_ok(x) and t_ok(t) and same_call(s, g, b, contexts)

    def guard_without_tangents(
        s: Any, g: Any, b: Any, x: Any, t: Any, contexts: tuple[Any, ...]
    ) -> bool:  # one call fewer for the operators that take none
        return x_ok(x) and t is None and same_call(s, g, b, contexts)

    return guard_without_tangents if call.tangents is None else guard


def call_check(call: Call) -> Callable[..., bool]:
    """``check(spec, f, backend, contexts)``: the guard without the arrays, which a compiled
    kernel that ran first has checked itself (with :func:`types_check` before it)."""
    spec, f, backend = call.spec, call.f, call.backend
    same_contexts, none_prepared = contexts_check(call.contexts), not call.contexts
    names: set[str] = set()  # the backend's names met so far (a name always resolves alike)

    def named(b: Any) -> bool:
        if not same_backend(b, backend):
            return False
        if type(b) is str:
            names.add(b)
        return True

    def same_call(s: Any, g: Any, b: Any, contexts: tuple[Any, ...]) -> bool:
        return (
            s is spec
            and (g is f or same_function(f, g))
            and (b is backend or (type(b) is str and b in names) or named(b))
            and (same_contexts(contexts) if contexts else none_prepared)
        )

    return same_call


def tangents_check(call: Call) -> Callable[[Any], bool]:
    tangents = call.tangents
    if tangents is None:
        return lambda t: t is None
    layout, signatures = tangents.signature
    checks = [leaves_check(tangents.like, sig) for sig in signatures]
    if layout == "one":
        return checks[0]
    count = len(checks)
    return lambda t: (
        type(t) is tuple and len(t) == count and all(check(ti) for check, ti in zip(checks, t))  # noqa: B905
    )


def _leaves_of(structure: Structure) -> Callable[[Any], Any]:
    """``structure.leaves``, refusing a plain tuple where x is :class:`Args` (a tuple would
    mean one argument)."""
    if not structure.args:
        return structure.leaves
    of_tuple = structure.leaves
    return lambda x: of_tuple(x) if type(x) is Args else None


def _each_argument(checks: tuple[Callable[[Any], bool], ...]) -> Callable[[Any], bool]:
    """``check(x)``: whether x is an :class:`Args` of as many arrays as ``checks``, each
    passing its check. Written out for two and three arguments: a ``map`` over x costs
    ≈ 0.4 µs more (with two arguments), a tenth of a prepared call's whole overhead."""
    count = len(checks)
    if count == 2:
        c0, c1 = checks
        return lambda x: type(x) is Args and len(x) == 2 and c0(x[0]) and c1(x[1])
    if count == 3:
        c0, c1, c2 = checks
        return lambda x: type(x) is Args and len(x) == 3 and c0(x[0]) and c1(x[1]) and c2(x[2])
    return lambda x: type(x) is Args and len(x) == count and all(map(call, checks, x))


def _args_of_types(types: tuple[type, ...]) -> Callable[[Any, Any], bool]:
    """``check(x, t)``: whether x is an :class:`Args` of arrays of these types and t None,
    written out for two and three arguments as :func:`_each_argument` is (with a call per
    argument, the check took twice as long)."""
    if len(types) == 2:
        t0, t1 = types
        return lambda x, t: (
            t is None and type(x) is Args and len(x) == 2 and type(x[0]) is t0 and type(x[1]) is t1
        )
    if len(types) == 3:
        t0, t1, t2 = types
        return lambda x, t: (
            t is None
            and type(x) is Args
            and len(x) == 3
            and type(x[0]) is t0
            and type(x[1]) is t1
            and type(x[2]) is t2
        )
    return lambda x, t: t is None and type(x) is Args and tuple(map(type, x)) == types


def types_check(call: Call) -> Callable[[Any, Any], bool]:
    """``check(x, t)``: whether the leaves of x and of the tangents have the prepared types,
    before a compiled kernel (which compares shapes and dtypes) runs."""
    x_types, leaves_of = call.x_types, _leaves_of(call.structure)
    tangents = call.tangents
    if tangents is None:
        if call.structure.is_array:
            (only,) = x_types
            return lambda x, t: type(x) is only and t is None
        if call.structure.args and call.structure.arguments_are_arrays:
            return _args_of_types(x_types)
        return lambda x, t: tuple(map(type, leaves_of(x) or ())) == x_types and t is None
    like_leaves, t_types, one = tangents.like.leaves, tangents.types, tangents.batch is None

    def check(x: Any, t: Any) -> bool:
        if tuple(map(type, leaves_of(x) or ())) != x_types:
            return False
        if one:
            return tuple(map(type, like_leaves(t) or ())) == t_types
        return (
            type(t) is tuple
            and tuple(type(a) for ti in t for a in like_leaves(ti) or ()) == t_types
        )

    return check


#: operators whose result AD or differences compute afresh: never a view of x or tangents
_FRESH_RESULTS = frozenset({"gradient", "jacobian", "hessian"})


def compose(
    args: Arguments, problem: NativeProblem, tangents: Tangents | None, kernels: Kernels
) -> dict[str, Any]:
    """Step 4: each kernel with the conversions of its arguments and the finishing of its
    results, as ``run(x, t, contexts)``; by variant ("all", "last", their "_flat" forms,
    their "_error" forms with an error estimate of the last output after the outputs,
    "out", the last output written into a NumPy ``out=``, and "out_error", the last output
    and its error estimate written into NumPy ``out=`` and ``error_out=``)."""
    spec, adapter, structure = args.spec, problem.adapter, args.structure
    x_in = _x_converter(structure, problem.x_in)
    t_in = None if tangents is None else tangents.converter(adapter) or identity
    values = [(i, conv) for i, conv in enumerate(problem.const_in) if conv is not None]
    device = kind(args.x_kind).device(args.leaves[0])
    to_x = converter(kernels.results_kind or adapter.native_kind, args.x_kind, device)
    aliasing = shares_memory(problem.y, (problem.x_array, *problem.consts))
    batch = None if tangents is None else tangents.batch
    y_shape = tuple(problem.y.shape)

    def finish(
        outputs: tuple[str, ...], last: bool, flat: bool, error: bool = False
    ) -> Callable[[Any], Any]:
        converts = [
            copying(to_x) if aliasing and not (last and spec.name in _FRESH_RESULTS) else to_x
            for _ in outputs
        ]
        batched_from = len(outputs) - (2 if error else 1)
        done = finisher(
            outputs,
            structure,
            batch,
            converts,
            flat,
            kernels.passed,
            kernels.blocks,
            y_shape,
            batched_from,
            problem.y_structure,
        )
        if problem.aux is None:
            return done
        return lambda results: (done(results[0]), aux_out(results[1]))

    aux_out = aux_converter(args.x_kind, device, problem.aux_layout)

    runs: dict[str, Any] = {"out": None, "out_error": None}
    for variant, kernel in (("all", kernels.all), ("last", kernels.last)):
        outputs = spec.outputs if variant == "all" else spec.outputs[-1:]
        for suffix, flat in (("", False), ("_flat", True)):
            if kernel is None or (flat and not {"yx", "xx"} & set(outputs)):
                runs[variant + suffix] = None
                continue
            done = finish(outputs, variant == "last", flat)
            runs[variant + suffix] = _composed(kernel, x_in, t_in, values, done)
    for variant, kernel in (("all", kernels.errors[0]), ("last", kernels.errors[1])):
        outputs = spec.outputs if variant == "all" else spec.outputs[-1:]
        outputs = (*outputs, outputs[-1])
        done = finish(outputs, variant == "last", False, error=True)
        runs[variant + "_error"] = (
            None if kernel is None else _composed(kernel, x_in, t_in, values, done)
        )
    if kernels.writes_out is not None and structure.is_array and args.x_kind == "numpy":
        writes = kernels.writes_out

        def run_out(x: Any, t: Any, contexts: tuple[Any, ...], out: Any) -> Any:
            consts = [conv(contexts[i].value) for i, conv in values]
            return writes(x, *consts, out=out)[-1]

        runs["out"] = run_out
        writes_error = kernels.writes_error

        def run_out_error(x: Any, t: Any, contexts: tuple[Any, ...], out: Any, err: Any) -> Any:
            consts = [conv(contexts[i].value) for i, conv in values]
            return writes_error(x, *consts, out=out, error_out=err)  # type: ignore[misc]

        runs["out_error"] = None if writes_error is None else run_out_error
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
    unconverted = x_in is identity and all(conv is identity for _, conv in values)
    slots = [i for i, _ in values]
    if unconverted and t_in is None:
        if not slots:
            return (
                (lambda x, t, c: kernel(x))
                if finish is identity
                else lambda x, t, c: finish(kernel(x))
            )
        return lambda x, t, c: finish(kernel(x, *[c[i].value for i in slots]))
    if unconverted and t_in is identity:
        if not slots:
            return lambda x, t, c: finish(kernel(x, t))
        return lambda x, t, c: finish(kernel(x, t, *[c[i].value for i in slots]))
    if not slots and t_in is None:  # x converted (the arguments of di.Args as a tuple)
        return lambda x, t, c: finish(kernel(x_in(x)))

    def run(x: Any, t: Any, contexts: tuple[Any, ...]) -> Any:
        consts = [conv(contexts[i].value) for i, conv in values]
        if t_in is None:
            return finish(kernel(x_in(x), *consts))
        return finish(kernel(x_in(x), t_in(t), *consts))

    return run


def _x_converter(structure: Structure, leaf_in: Callable[[Any], Any]) -> Callable[[Any], Any]:
    if structure.args and leaf_in is identity:
        return tuple  # the kernels take several arguments as a plain tuple (JAX's pytree)
    if leaf_in is identity or structure.is_array:
        return leaf_in
    leaves_of, build = structure.leaves, structure.build
    return lambda x: build([leaf_in(a) for a in leaves_of(x)])  # type: ignore[union-attr]
