"""derivative: dy/dx of a function of a scalar, as one pushforward of the tangent 1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Context
from diffinterface._derived import DERIVATIVE
from diffinterface._operators._call import value_variant
from diffinterface._preparation import Prep, prepare, run

__all__ = ["derivative", "prepare_derivative", "value_and_derivative"]


def prepare_derivative(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    y: Any = None,
    has_aux: bool = False,
) -> Prep:
    """Prepare :func:`derivative` and :func:`value_and_derivative` for these arguments."""
    return prepare(DERIVATIVE, f, backend, x, None, contexts, y, has_aux=has_aux)


def derivative(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    y: Any = None,
    error: Any = False,
    has_aux: bool = False,
) -> Any:
    """dy/dx of ``f(x, *contexts)`` for a scalar x (a Python number or 0-d array).

    The result has the shape of f(x). With ``y=``, f is a mutating ``f(y, x, *contexts)``
    and y receives f(x).

    With ``error=True`` (or an array to write it into), returns ``(result, error)``: an
    estimate of the result's error, shaped like it (finite differences with adaptive steps
    give one: see docs/operators.md; other backends raise UnsupportedError).

    Raises:
        InvalidArgumentError: x is not a scalar (use pushforward or jacobian).
        PreparationMismatchError: ``prep`` was made for other arguments.
    """
    return run(
        DERIVATIVE, f, backend, x, None, contexts, prep, True, out, y, error=error, has_aux=has_aux
    )


def value_and_derivative(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    y: Any = None,
    error: Any = False,
    has_aux: bool = False,
) -> tuple[Any, Any] | tuple[Any, ...]:
    """``(f(x), dy/dx)``; arguments as in :func:`derivative`. With ``error=True``, the estimate
    of the last result's error comes last."""
    results = run(
        DERIVATIVE, f, backend, x, None, contexts, prep, False, y=y, error=error, has_aux=has_aux
    )
    return value_variant(results, out, error, 1, has_aux)
