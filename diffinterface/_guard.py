"""The acceptance guard of a preparation: was it made for this call?

``guard(spec, f, backend, x, t, contexts)`` compares the operator, f and the backend (by
identity first), and the signatures of x's leaves, of the tangents' leaves and of the
contexts with those the preparation was made for. Everything it reads is bound when it
is made: it runs on every prepared call. ``y=`` and the explanation of a difference are
the general path's (``diffinterface._mismatch``).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from operator import call
from typing import TYPE_CHECKING, Any

from diffinterface._arrays import matcher
from diffinterface._backend_types import resolve_backend
from diffinterface._contexts import context_signature
from diffinterface._errors import DiffInterfaceError
from diffinterface._trees import Args, Structure

if TYPE_CHECKING:
    from diffinterface._preparation import Call

__all__ = [
    "call_check",
    "guard_for",
    "leaves_check",
    "same_backend",
    "same_function",
    "tangents_check",
    "types_check",
]


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


def leaves_check(structure: Structure, signatures: tuple[Any, ...]) -> Callable[[Any], bool]:
    """``check(tree)``: whether tree has the structure and these leaf signatures."""
    matches = tuple(map(matcher, signatures))
    if structure.is_array:
        return matches[0]
    leaves_of = structure.leaves
    if structure.args and structure.arguments_are_arrays:  # the Args are the leaves
        count = len(matches)
        return lambda tree: (
            type(tree) is Args and len(tree) == count and all(map(call, matches, tree))
        )
    if structure.args:  # several arguments: a plain tuple would mean one argument

        def check_arguments(tree: Any) -> bool:
            leaves = leaves_of(tree) if type(tree) is Args else None
            return leaves is not None and all(map(call, matches, leaves))

        return check_arguments

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

    return guard


def call_check(call: Call) -> Callable[..., bool]:
    """``check(spec, f, backend, contexts)``: the guard without the arrays, which a compiled
    kernel that ran first has checked itself (with :func:`types_check` before it)."""
    spec, f, backend, prepared_contexts = call.spec, call.f, call.backend, call.contexts
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
            and (context_signature(contexts) if contexts else ()) == prepared_contexts
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


def types_check(call: Call) -> Callable[[Any, Any], bool]:
    """``check(x, t)``: whether the leaves of x and of the tangents have the prepared types,
    before a compiled kernel (which compares shapes and dtypes) runs."""
    x_types, leaves_of = call.x_types, call.structure.leaves
    if call.structure.args:  # several arguments: a plain tuple would mean one argument
        of_tuple = leaves_of
        leaves_of = lambda x: of_tuple(x) if type(x) is Args else None  # noqa: E731
    tangents = call.tangents
    if tangents is None:
        if call.structure.is_array:
            (only,) = x_types
            return lambda x, t: type(x) is only and t is None
        if call.structure.args and call.structure.arguments_are_arrays:
            return lambda x, t: type(x) is Args and tuple(map(type, x)) == x_types and t is None
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
