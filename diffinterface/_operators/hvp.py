"""hvp: Hessian-vector products H·t, forward over reverse (a pushforward of the gradient)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Context
from diffinterface._derived import HVP
from diffinterface._operators._call import value_variant
from diffinterface._preparation import Prep, prepare, run

__all__ = ["gradient_and_hvp", "hvp", "prepare_hvp"]


def prepare_hvp(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    tx: Any,
    *contexts: Context,
    has_aux: bool = False,
) -> Prep:
    """Prepare :func:`hvp` and :func:`gradient_and_hvp` for these arguments."""
    return prepare(HVP, f, backend, x, tx, contexts, None, has_aux=has_aux)


def hvp(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    tx: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    error: Any = False,
    has_aux: bool = False,
) -> Any:
    """The Hessian-vector product ``H(x)·tx`` of a scalar ``f(x, *contexts)``.

    ``tx`` is a tangent shaped like x, or a tuple of them (then a tuple of results).

    With ``error=True`` (or an array to write it into), returns ``(result, error)``: an
    estimate of the result's error, shaped like it (finite differences with adaptive steps
    give one: see docs/operators.md; other backends raise UnsupportedError).

    Raises:
        InvalidArgumentError: f(x) is not a scalar, or tangents of the wrong shape/dtype.
        PreparationMismatchError: ``prep`` was made for other arguments.
    """
    return run(HVP, f, backend, x, tx, contexts, prep, True, out, error=error, has_aux=has_aux)


def gradient_and_hvp(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    tx: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: tuple[Any, Any] | None = None,
    error: Any = False,
    has_aux: bool = False,
) -> tuple[Any, Any] | tuple[Any, ...]:
    """``(∇f(x), H(x)·tx)``; ``out=`` is a pair (gradient array, hvp result). With
    ``error=True``, the estimate of the last result's error comes last."""
    results = run(HVP, f, backend, x, tx, contexts, prep, False, error=error, has_aux=has_aux)
    return value_variant(results, out, error, 2, has_aux)
