"""second_derivative: d²y/dx² of a function of a scalar, as a pushforward of the derivative."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Context
from diffinterface._derived import SECOND_DERIVATIVE
from diffinterface._operators._call import value_variant
from diffinterface._preparation import Prep, prepare, run

__all__ = [
    "prepare_second_derivative",
    "second_derivative",
    "value_derivative_and_second_derivative",
]


def prepare_second_derivative(
    f: Callable[..., Any], backend: BackendLike, x: Any, *contexts: Context, has_aux: bool = False
) -> Prep:
    """Prepare :func:`second_derivative` and its value variant for these arguments."""
    return prepare(SECOND_DERIVATIVE, f, backend, x, None, contexts, None, has_aux=has_aux)


def second_derivative(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    error: Any = False,
    has_aux: bool = False,
) -> Any:
    """d²y/dx² of ``f(x, *contexts)`` for a scalar x; shaped like f(x).

    With ``error=True`` (or an array to write it into), returns ``(result, error)``: an
    estimate of the result's error, shaped like it (finite differences with adaptive steps
    give one: see docs/operators.md; other backends raise UnsupportedError).

    Raises:
        InvalidArgumentError: x is not a scalar.
        PreparationMismatchError: ``prep`` was made for other arguments.
    """
    return run(
        SECOND_DERIVATIVE,
        f,
        backend,
        x,
        None,
        contexts,
        prep,
        True,
        out,
        error=error,
        has_aux=has_aux,
    )


def value_derivative_and_second_derivative(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: tuple[Any, Any] | None = None,
    error: Any = False,
    has_aux: bool = False,
) -> tuple[Any, Any, Any] | tuple[Any, ...]:
    """``(f(x), dy/dx, d²y/dx²)``; ``out=`` is a pair of arrays for the two derivatives. With
    ``error=True``, the estimate of the last result's error comes last."""
    results = run(
        SECOND_DERIVATIVE, f, backend, x, None, contexts, prep, False, error=error, has_aux=has_aux
    )
    return value_variant(results, out, error, 2, has_aux)
