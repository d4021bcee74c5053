"""Step 3 of preparation: choose, build and compile the kernels of one operator.

The kernel is the adapter's own where it declares one (see ``diffinterface._adapter``),
else the operator's generic one built from pushforwards and pullback
(``diffinterface._derived``). Around it, :func:`_layout` puts x's structure and the
batch of tangents into the one array and stacks the operators compute with, and cuts
x-shaped results back into x's leaves; where the backend compiles, that layout is part
of the compiled code, and the compiled code of the operator alone drops the value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from diffinterface._adapter import Adapter, Kernel, Problem
from diffinterface._arguments import Arguments, NativeProblem
from diffinterface._arrays import kind
from diffinterface._aux import with_aux
from diffinterface._derived import OperatorSpec
from diffinterface._errors import DiffInterfaceError
from diffinterface._namespace import array_namespace
from diffinterface._tangents import Tangents
from diffinterface._trees import Structure

__all__ = ["Kernels", "Variant", "array_kernel", "build_kernels", "last_output"]

#: which kernels a preparation makes: both, or the one an unprepared call needs
Variant = Literal["both", "last", "all"]


@dataclass(frozen=True)
class Kernels:
    """The kernels of one preparation (None where not made for this variant)."""

    all: Kernel | None  # every output of the value variant, as a tuple
    last: Kernel | None  # the operator's own result alone
    writes_out: Kernel | None  # ``all`` taking ``out=`` for the last output
    run_first: bool  # compiled, pure, checking: a prepared call starts them before its checks
    passed: frozenset[str]  # outputs handed to the caller as they are (sparse matrices)
    blocks: Callable[[Any], Any] | None  # compiled cut of a Jacobian or Hessian into blocks
    #: (all, last) with an estimate of the last output's error after the outputs, where the
    #: adapter's kernel gives one (see ``diffinterface._adapter.kernel``)
    errors: tuple[Kernel | None, Kernel | None] = (None, None)
    #: ``errors[1]`` taking ``out=`` and ``error_out=`` (NumPy arrays) and writing into them
    writes_error: Kernel | None = None
    #: the array kind of the results where it is not the backend's (see _host_join)
    results_kind: str | None = None


def build_kernels(
    args: Arguments, problem: NativeProblem, tangents: Tangents | None, variant: Variant
) -> Kernels:
    """Build (and compile) the kernels of a preparation.

    Raises:
        the exception f raises while the backend traces it, with a note.
    """
    spec, adapter, structure = args.spec, problem.adapter, args.structure
    batch = None if tangents is None else tangents.batch
    own = adapter.declared(spec.name, True) if not structure.is_array and args.y is None else None
    array_own = None if own is not None else adapter.declared(spec.name, False)
    declared = own or array_own

    consts = problem.consts
    first_const = 1 if tangents is None else 2  # a kernel's arguments: x, [t,] *consts

    def kernel(last_only: bool, with_error: bool = False) -> Kernel:
        gives_last = last_only and declared is not None and declared.last_only
        if own is not None:
            p = Problem(
                problem.x, problem.y, batch, args.mutates, structure, gives_last, with_error, consts
            )
            raw = getattr(adapter, own.method)(problem.fn, p)
        else:
            raw = array_kernel(args, problem, batch, gives_last, with_error)
        outputs = spec.outputs[-1:] if gives_last else spec.outputs
        batched_from = len(outputs) - 1
        if with_error:  # the error estimate is laid out like the last output
            outputs = (*outputs, outputs[-1])
        single = gives_last and not with_error
        laid_out = _layout(
            raw,
            spec,
            outputs,
            structure,
            batch,
            own is not None,
            single,
            batched_from,
            problem.y_structure,
        )
        if with_error and last_only and not gives_last:
            laid_out = _last_two(laid_out)
        elif last_only and not gives_last:
            laid_out = last_output(laid_out)
        return (
            laid_out
            if problem.aux is None
            else with_aux(laid_out, problem.aux, problem.aux_layout, problem.adapter, first_const)
        )

    t_example = () if tangents is None else (tangents.native(adapter),)
    example = (problem.x, *t_example, *problem.consts)
    wants_last = variant != "all" and args.y is None
    wants_all = variant != "last" or args.y is not None
    uncompiled = None
    try:
        if adapter.compiles:
            uncompiled = kernel(wants_last)  # also the template of the blocks' cut
            last = adapter.compile(uncompiled, example) if wants_last else None
            everything = adapter.compile(kernel(False), example) if wants_all else None
        else:  # one kernel for both variants, unless the adapter's gives the last alone
            own_last = _own_last(declared)
            everything = (
                adapter.compile(kernel(False), example) if wants_all or not own_last else None
            )
            last = adapter.compile(kernel(True), example) if wants_last and own_last else None
            if wants_last and last is None:  # the last output of the kernel of all
                last = (
                    last_output(everything)  # type: ignore[arg-type]
                    if problem.aux is None
                    else adapter.compile(kernel(True), example)
                )
    except DiffInterfaceError:
        raise
    except Exception as e:  # JAX traces f here
        e.add_note(f"(raised while diffinterface compiled {spec.name} with {args.config!r})")
        raise
    writes = None
    if (
        array_own is not None
        and array_own.writes_out
        and structure.is_array
        and args.y is None
        and problem.aux is None
    ):
        writes = everything
    errors: tuple[Kernel | None, Kernel | None] = (None, None)
    if declared is not None and declared.errors:
        last_error = None if args.y is not None else adapter.compile(kernel(True, True), example)
        errors = (adapter.compile(kernel(False, True), example), last_error)
    return Kernels(
        all=everything,
        last=last,
        writes_out=writes,
        run_first=adapter.compiles and adapter.checks_arguments and args.y is None,
        passed=adapter.raw_outputs if spec.name in ("jacobian", "hessian") else frozenset(),
        blocks=None
        if problem.aux is not None
        else _compiled_blocks(
            args, adapter, structure, uncompiled, example, problem.y_structure is not None
        ),
        errors=errors,
        writes_error=errors[1] if writes is not None else None,
    )


def array_kernel(
    args: Arguments,
    problem: NativeProblem,
    batch: int | None,
    last_only: bool,
    with_error: bool = False,
) -> Kernel:
    """The kernel of the one array the operators see (x's leaves joined): the adapter's
    own where it declares one, else the operator's generic one (``diffinterface._derived``).
    """
    adapter = problem.adapter
    declared = adapter.declared(args.spec.name, False)
    p = Problem(
        problem.x_array,
        problem.y,
        batch,
        args.mutates,
        None,
        last_only,
        with_error,
        problem.consts,
        _source(args, adapter),
    )
    if declared is not None:
        return getattr(adapter, declared.method)(problem.fn_of_array, p)
    return args.spec.build(adapter, problem.fn_of_array, p)


def _source(args: Arguments, adapter: Adapter) -> tuple[Any, ...]:
    """The caller's (f, x, contexts, y) with x as the one array the operators see (f of
    one point: see :meth:`Adapter.point_function`)."""
    structure, f = args.structure, adapter.point_function(args.f)
    if structure.is_array:
        return (f, args.leaves[0], args.contexts, args.y)
    unravel = lambda v: structure.build(structure.cut(v))  # noqa: E731
    xp = array_namespace(*args.leaves)
    x = structure.join(args.leaves, xp)
    if structure.args:  # f takes several arguments
        if args.y is not None:
            return (lambda y, v, *a: f(y, *unravel(v), *a), x, args.contexts, args.y)
        return (lambda v, *a: f(*unravel(v), *a), x, args.contexts, args.y)
    if args.y is not None:
        return (lambda y, v, *a: f(y, unravel(v), *a), x, args.contexts, args.y)
    return (lambda v, *a: f(unravel(v), *a), x, args.contexts, args.y)


def _own_last(declared: Any) -> bool:
    return declared is not None and declared.last_only


def _last_two(kernel: Kernel) -> Kernel:
    def last_two(*args: Any, **kwargs: Any) -> Any:
        return kernel(*args, **kwargs)[-2:]

    return last_two


def last_output(kernel: Kernel) -> Kernel:
    """``kernel`` giving its last output alone."""

    def last(*args: Any, **kwargs: Any) -> Any:
        return kernel(*args, **kwargs)[-1]

    return last


def _layout(
    raw: Kernel,
    spec: OperatorSpec,
    outputs: tuple[str, ...],
    structure: Structure,
    batch: int | None,
    takes_structure: bool,
    single: bool,
    batched_from: int,
    y_structure: Structure | None = None,
) -> Kernel:
    """``raw`` (a kernel of the one array and stacked tangents) on x and tangents in the
    caller's layout (native leaves), with x-shaped results as x's leaves.

    ``takes_structure``: ``raw`` takes x and tangents in their structure itself.
    ``single``: ``raw`` returns the last output alone. ``batched_from``: the position of
    the first output stacked over a batch of tangents (the operator's own result).
    """
    join_x = not structure.is_array and not takes_structure
    join_y = y_structure is not None and spec.tangents == "y"  # structured cotangents
    shaped_t = spec.tangents
    stack_t = shaped_t is not None and (batch is not None or (join_x and shaped_t == "x") or join_y)
    if takes_structure:
        stack_t = False
    cut = [
        (i, 1 if batch is not None and i >= batched_from and spec.tangents is not None else 0)
        for i, o in enumerate(outputs)
        if o == "x" and join_x
    ]
    if not join_x and not stack_t and not cut:
        return raw
    leaves_of, join = structure.leaves, structure.join

    def joined_tangent(t: Any, xp: Any) -> Any:
        if shaped_t == "x" and join_x:
            return join(leaves_of(t), xp)  # type: ignore[arg-type]
        if join_y:
            return y_structure.join(y_structure.leaves(t), xp)  # type: ignore[union-attr,arg-type]
        return t

    def laid_out(x: Any, *rest: Any) -> Any:
        if join_x:
            leaves = leaves_of(x)
            xp = array_namespace(*leaves)  # type: ignore[misc]
            x = join(leaves, xp)  # type: ignore[arg-type]
        if stack_t:
            t, rest = rest[0], rest[1:]
            xp = array_namespace(x)
            if batch is None:
                t = joined_tangent(t, xp)
            else:
                t = xp.stack([joined_tangent(ti, xp) for ti in t])
            rest = (t, *rest)
        results = raw(x, *rest)
        if not cut:
            return results
        if single:
            return structure.cut(results, cut[0][1])
        results = list(results)
        for i, lead in cut:
            results[i] = structure.cut(results[i], lead)
        return tuple(results)

    return laid_out


def _compiled_blocks(
    args: Arguments,
    adapter: Adapter,
    structure: Structure,
    kernel: Kernel | None,
    example: Any,
    problem_y_structured: bool = False,
) -> Callable[[Any], Any] | None:
    """The cut of a Jacobian or Hessian of a structured x into blocks, compiled by a
    backend that compiles when the results stay its own arrays (slicing them one op at a
    time would cost more than the kernel); None elsewhere."""
    shaped = next((o for o in args.spec.outputs if o in ("yx", "xx")), None)
    if (
        shaped is None
        or kernel is None
        or structure.is_array
        or problem_y_structured
        or not adapter.compiles
        or args.x_kind != adapter.native_kind
        or shaped in adapter.raw_outputs
        or any(kind(args.x_kind).traced_by(a) for a in args.leaves)  # traced into the caller's
    ):
        return None
    result = adapter.output_template(kernel, example[0], example[1:])
    matrix = result if not isinstance(result, tuple) else result[-1]
    lead = len(matrix.shape) - (1 if shaped == "yx" else 2)
    return adapter.compile(lambda m: structure.block_leaves(m, shaped, lead), (matrix,))
