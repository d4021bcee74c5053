"""gradient: ∇f of a scalar function, as one pullback of the cotangent 1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Context
from diffinterface._derived import GRADIENT
from diffinterface._operators._call import value_variant
from diffinterface._preparation import Prep, prepare, run

__all__ = ["gradient", "prepare_gradient", "value_and_gradient"]


def prepare_gradient(
    f: Callable[..., Any], backend: BackendLike, x: Any, *contexts: Context, has_aux: bool = False
) -> Prep:
    """Prepare :func:`gradient` and :func:`value_and_gradient` for these arguments.

    Returns:
        The preparation (compiled kernels, buffers, and what they were made for) to pass
        as ``prep=``.
    """
    return prepare(GRADIENT, f, backend, x, None, contexts, None, has_aux=has_aux)


def gradient(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    error: Any = False,
    has_aux: bool = False,
) -> Any:
    """The gradient of a scalar-valued ``f(x, *contexts)``, shaped like x (in x's structure
    for a dict / list / tuple of arrays).

    With ``error=True`` (or an array to write it into), returns ``(result, error)``: an
    estimate of the result's error, shaped like it (finite differences with adaptive steps
    give one: see docs/operators.md; other backends raise UnsupportedError).

    Raises:
        InvalidArgumentError: f(x) is not a scalar (use jacobian).
        PreparationMismatchError: ``prep`` was made for other arguments.
    """
    return run(
        GRADIENT, f, backend, x, None, contexts, prep, True, out, error=error, has_aux=has_aux
    )


def value_and_gradient(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    error: Any = False,
    has_aux: bool = False,
) -> tuple[Any, Any] | tuple[Any, ...]:
    """``(f(x), ∇f(x))``; arguments as in :func:`gradient`. With ``error=True``, the estimate
    of the last result's error comes last."""
    results = run(
        GRADIENT, f, backend, x, None, contexts, prep, False, error=error, has_aux=has_aux
    )
    return value_variant(results, out, error, 1, has_aux)
