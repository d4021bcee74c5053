"""Contexts: extra arguments of f that are passed along but not differentiated.

``f(x, *contexts)`` receives, in order, the value of each :class:`Constant` (arrays
converted to the backend's array type) and, for each :class:`Cache`, a scratch buffer of
the backend's array type with the cache's shape that f may overwrite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import call
from typing import Any

from diffinterface._arrays import kind_of, matcher, signature
from diffinterface._errors import InvalidArgumentError

__all__ = [
    "Cache",
    "Constant",
    "Context",
    "check_contexts",
    "context_signature",
    "contexts_check",
    "is_static",
]


@dataclass(frozen=True, slots=True, eq=False)
class Constant:
    """An argument of f that is not differentiated (data, hyper-parameters, ...).

    An array value is converted to the backend's array type at each call and may change
    between prepared calls. A hashable value that is not an array (a number, a string) is
    static: fixed at preparation, so another value needs another preparation. Anything
    else (a list, a dict of arrays) is passed to f as it is.
    """

    value: Any


@dataclass(frozen=True, slots=True, eq=False)
class Cache:
    """Scratch space for f: f receives a buffer shaped like ``value`` that it may overwrite.

    The buffer has the backend's array type and the working dtype of x (so that it can
    hold tracked values); it is allocated once at preparation where the backend allows.
    """

    value: Any


Context = Constant | Cache


def check_contexts(contexts: tuple[Any, ...]) -> None:
    """Raise if an extra argument is not wrapped in Constant or Cache, or a Cache holds no array.

    Raises:
        InvalidArgumentError: naming the position and the fix.
    """
    for i, c in enumerate(contexts):
        if not isinstance(c, Constant | Cache):
            raise InvalidArgumentError(
                f"Context #{i} is a {type(c).__name__}; extra arguments of f must be wrapped "
                f"in di.Constant(...) (not differentiated) or di.Cache(...) (scratch buffer), "
                f"e.g. di.gradient(f, backend, x, di.Constant(data))."
            )
        if isinstance(c, Cache) and (
            isinstance(c.value, bool) or not (isinstance(c.value, int | float) or kind_of(c.value))
        ):
            raise InvalidArgumentError(
                f"Context #{i} is di.Cache({type(c.value).__name__}); a Cache needs an array "
                "whose shape the scratch buffer takes, e.g. di.Cache(np.zeros(n))."
            )


def is_static(value: Any) -> bool:
    """Whether a context value is static: hashable and not an array (a number, a string).

    Static Constants are fixed at preparation (as JAX static arguments are): they may set
    shapes, and a prepared call with another value raises PreparationMismatchError.
    """
    if kind_of(value) is not None:
        return False
    try:
        hash(value)
    except TypeError:
        return False
    return True


def context_signature(contexts: tuple[Any, ...]) -> tuple[Any, ...]:
    """What a preparation remembers of the contexts: kinds, array signatures, static values.

    Raises:
        InvalidArgumentError: a context is not wrapped in di.Constant or di.Cache.
    """
    try:
        return tuple(
            (type(c).__name__, ("value", c.value) if is_static(c.value) else signature(c.value))
            for c in contexts
        )
    except AttributeError:  # no .value: say which argument is not wrapped
        check_contexts(contexts)
        raise


def contexts_check(prepared: tuple[Any, ...]) -> Callable[[tuple[Any, ...]], bool]:
    """``check(contexts)``: whether ``context_signature(contexts) == prepared``, asked of
    each context with its kind's matcher (making the signatures costs ≈ 1 µs more per
    context). False for an argument that is not a context (which the general path reports).
    Written out for one and two contexts: a ``map`` over them costs ≈ 0.3 µs more."""
    checks = tuple(_context_check(name, sig) for name, sig in prepared)
    count = len(checks)
    if count == 1:
        (c0,) = checks
        return lambda contexts: len(contexts) == 1 and c0(contexts[0])
    if count == 2:
        c0, c1 = checks
        return lambda contexts: len(contexts) == 2 and c0(contexts[0]) and c1(contexts[1])
    return lambda contexts: len(contexts) == count and all(map(call, checks, contexts))


def _context_check(name: str, sig: Any) -> Callable[[Any], bool]:
    context_type: Any = {"Constant": Constant, "Cache": Cache}[name]
    if sig[0] == "value":  # static (a kind's signature starts with the kind's name)
        value = sig[1]
        return lambda c: (
            type(c) is context_type
            and (c.value is value or (is_static(c.value) and c.value == value))
        )
    matches = matcher(sig)  # no static value matches an array's signature
    return lambda c: type(c) is context_type and matches(c.value)
