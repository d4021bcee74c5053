"""Preparation: everything that can be done once for an operator, in named steps.

:func:`prepare_parts` checks and normalises the arguments and makes the problem in the
backend's arrays, f evaluated or traced once (``diffinterface._arguments``), chooses and
builds the kernels (``diffinterface._kernels``), composes them with the conversions and
the finishing of their results and makes the guard (both ``diffinterface._compose``).
``diffinterface._preparation.prepare`` makes the :class:`Prep` object of its parts.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, NamedTuple

import numpy as np

from diffinterface._arguments import Call, arguments, native_problem
from diffinterface._arrays import kind_of, signature
from diffinterface._backend_types import BackendLike
from diffinterface._compose import call_check, compose, guard_for, types_check
from diffinterface._contexts import context_signature
from diffinterface._derived import OperatorSpec
from diffinterface._host_join import host_joined_kernels, joins_on_host
from diffinterface._kernels import Variant, build_kernels
from diffinterface._mismatch import explainer
from diffinterface._tangents import tangents_of
from diffinterface._trees import Structure

__all__ = ["Parts", "Variant", "prepare_parts"]


class Parts(NamedTuple):
    """What a preparation is made of (see ``diffinterface._preparation.Prep``)."""

    call: Call  # what it was made for
    guard: Callable[..., bool]  # guard(spec, f, backend, x, t, contexts)
    runs: dict[str, Callable[..., Any] | None]  # composed kernels by variant (see compose)
    normalise: Callable[[Any, Any], tuple[Any, Any]]  # (x, t) of the general path
    explain: Callable[..., str | None]  # the report of a mismatch
    #: a run-first preparation's checks before and after its kernel; None: check first
    run_first: tuple[Callable[[Any, Any], bool], Callable[..., bool]] | None


def prepare_parts(
    spec: OperatorSpec,
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    tangents: Any,
    contexts: tuple[Any, ...],
    y: Any = None,
    variant: Variant = "both",
    has_aux: bool = False,
) -> Parts:
    """Validate, convert, build, compose and compile: the work behind ``prepare_<operator>``.

    ``variant`` limits the kernels to the one an unprepared call needs (``"last"``: the
    operator's own result; ``"all"``: the value variant's outputs). ``has_aux``: f returns
    ``(output, aux)``; calls give their results paired with aux.

    Raises:
        InvalidArgumentError: bad x, tangents, contexts or output of f.
        UnsupportedError: the backend cannot do this (e.g. differentiate mutation).
        ImportError: the backend's framework is not installed.
    """
    args = arguments(spec, f, backend, x, contexts, y, has_aux)
    problem = native_problem(args)
    like = (
        (args.structure, args.leaves)
        if spec.tangents != "y"
        else _output_like(problem.y, problem.y_structure)
    )
    tangents_plan = None if spec.tangents is None else tangents_of(spec, tangents, *like)
    kernels = (
        host_joined_kernels(args, problem, variant)
        if joins_on_host(args, problem, tangents_plan)
        else build_kernels(args, problem, tangents_plan, variant)
    )
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
        has_aux=has_aux,
    )

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

    run_first = (types_check(call), call_check(call)) if kernels.run_first else None
    return Parts(call, guard_for(call), runs, normalise, explainer(call), run_first)


def _output_like(y: Any, structure: Structure | None) -> tuple[Structure, list[Any]]:
    """f's output (a template, its leaves joined where f returns a structure) as what
    y-shaped cotangents must look like: its structure and a template of each leaf."""
    if structure is None:
        return Structure(y), [y]
    return structure, [SimpleNamespace(shape=s, dtype=y.dtype) for s in structure.shapes]
