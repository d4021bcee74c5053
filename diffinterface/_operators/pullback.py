"""pullback: vector-Jacobian products uᵀ·J, for one cotangent or a batch of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Context
from diffinterface._derived import PULLBACK
from diffinterface._operators._call import value_variant
from diffinterface._preparation import Prep, prepare, run

__all__ = ["prepare_pullback", "pullback", "value_and_pullback"]


def prepare_pullback(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    ty: Any,
    *contexts: Context,
    y: Any = None,
    has_aux: bool = False,
) -> Prep:
    """Prepare :func:`pullback` and :func:`value_and_pullback` for these arguments."""
    return prepare(PULLBACK, f, backend, x, ty, contexts, y, has_aux=has_aux)


def pullback(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    ty: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    y: Any = None,
    error: Any = False,
    has_aux: bool = False,
) -> Any:
    """The vector-Jacobian product ``tyᵀ·J(x)`` of ``f(x, *contexts)`` (shaped like x).

    Args:
        f: ``f(x, *contexts) -> y``, or with ``y=`` a mutating ``f(y, x, *contexts)``.
        backend: a backend object or name.
        x: the point: an array, a number, or a dict / list / tuple of arrays.
        ty: a cotangent shaped like f(x), or a tuple of them (then a tuple of results).
        prep: a preparation from :func:`prepare_pullback`.
        out: array (tuple of arrays for a batch) to write the result into.
        y: output buffer of a mutating f; it receives f(x).

    Returns:
        tyᵀ·J shaped like x (in x's structure), or a tuple of them for a tuple of
        cotangents.

    With ``error=True`` (or an array to write it into), returns ``(result, error)``: an
    estimate of the result's error, shaped like it (finite differences with adaptive steps
    give one: see docs/operators.md; other backends raise UnsupportedError).

    Raises:
        InvalidArgumentError: cotangents or out of the wrong shape or dtype.
        PreparationMismatchError: ``prep`` was made for other arguments.
        UnsupportedError: ``y=`` with a backend that cannot differentiate mutation.
    """
    return run(
        PULLBACK, f, backend, x, ty, contexts, prep, True, out, y, error=error, has_aux=has_aux
    )


def value_and_pullback(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    ty: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    y: Any = None,
    error: Any = False,
    has_aux: bool = False,
) -> tuple[Any, Any] | tuple[Any, ...]:
    """``(f(x), tyᵀ·J(x))``; arguments as in :func:`pullback`. With ``error=True``, the
    estimate of the last result's error comes last."""
    results = run(
        PULLBACK, f, backend, x, ty, contexts, prep, False, y=y, error=error, has_aux=has_aux
    )
    return value_variant(results, out, error, 1, has_aux)
