"""Step 4 of preparation: each kernel composed with the conversions of its arguments and
the finishing of its results, into ``run(x, t, contexts)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._arguments import Arguments, NativeProblem
from diffinterface._arrays import identity, kind, kind_of
from diffinterface._conversions import converter
from diffinterface._kernels import Kernels
from diffinterface._preparation import Run
from diffinterface._results import copying, finisher
from diffinterface._tangents import Tangents
from diffinterface._trees import Structure

__all__ = ["compose"]

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
    aliasing = _shares_memory(problem.y, (problem.x_array, *problem.consts))
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

    aux_out = _aux_converter(args.x_kind, device, problem.aux_layout)

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


def _aux_converter(x_kind: str, device: Any, layout: Any) -> Callable[[Any], Any]:
    """f's aux from the arrays the kernel returned: as x's array type, on x's device, no
    longer traced or attached to a graph, and put back together with its other leaves."""

    def leaf(a: Any) -> Any:
        name = kind_of(a)
        if name is None:  # a compiled kernel's number: a 0-d array of its library
            return a
        return converter(name, x_kind, device)(kind(name).plain_value(a))

    return lambda arrays: layout.rebuild(tuple(map(leaf, arrays)))


def _shares_memory(y: Any, arrays: tuple[Any, ...]) -> bool:
    """Whether f's output (an evaluated template) may share memory with its inputs: its
    value, tangents and cotangents would then be views of the caller's arrays."""
    name = kind_of(y)
    return name is not None and any(kind(name).shares_memory(y, a) for a in arrays)
