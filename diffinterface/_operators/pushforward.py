"""pushforward: Jacobian-vector products J·t, for one tangent or a batch of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Context
from diffinterface._derived import PUSHFORWARD
from diffinterface._operators._call import value_variant
from diffinterface._preparation import Prep, prepare, run

__all__ = ["prepare_pushforward", "pushforward", "value_and_pushforward"]


def prepare_pushforward(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    tx: Any,
    *contexts: Context,
    y: Any = None,
    has_aux: bool = False,
) -> Prep:
    """Prepare :func:`pushforward` and :func:`value_and_pushforward` for these arguments."""
    return prepare(PUSHFORWARD, f, backend, x, tx, contexts, y, has_aux=has_aux)


def pushforward(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    tx: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    y: Any = None,
    error: Any = False,
    has_aux: bool = False,
) -> Any:
    """The Jacobian-vector product ``J(x)·tx`` of ``f(x, *contexts)`` (shape of f(x)).

    Args:
        f: ``f(x, *contexts) -> y``, or with ``y=`` a mutating ``f(y, x, *contexts)``.
        backend: a backend object or name.
        x: the point: an array, a number, or a dict / list / tuple of arrays.
        tx: a tangent shaped like x, or a tuple of them (then a tuple of results).
        prep: a preparation from :func:`prepare_pushforward`.
        out: array (tuple of arrays for a batch) to write the result into.
        y: output buffer of a mutating f; it receives f(x).

    Returns:
        J·tx in x's array type, or a tuple of them for a tuple of tangents.

    With ``error=True`` (or an array to write it into), returns ``(result, error)``: an
    estimate of the result's error, shaped like it (finite differences with adaptive steps
    give one: see docs/operators.md; other backends raise UnsupportedError).

    Raises:
        InvalidArgumentError: tangents or out of the wrong shape or dtype.
        PreparationMismatchError: ``prep`` was made for other arguments.
        UnsupportedError: ``y=`` with a backend that cannot differentiate mutation.
    """
    return run(
        PUSHFORWARD, f, backend, x, tx, contexts, prep, True, out, y, error=error, has_aux=has_aux
    )


def value_and_pushforward(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    tx: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    y: Any = None,
    error: Any = False,
    has_aux: bool = False,
) -> tuple[Any, Any] | tuple[Any, ...]:
    """``(f(x), J(x)·tx)``; arguments as in :func:`pushforward`. With ``error=True``, the
    estimate of the last result's error comes last."""
    results = run(
        PUSHFORWARD, f, backend, x, tx, contexts, prep, False, y=y, error=error, has_aux=has_aux
    )
    return value_variant(results, out, error, 1, has_aux)
