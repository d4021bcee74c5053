"""jacobian: the full Jacobian, shape ``f(x).shape + x.shape``, from one batched primitive
(n pushforwards in forward mode, m pullbacks in reverse mode)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Context
from diffinterface._derived import JACOBIAN
from diffinterface._operators._call import value_variant
from diffinterface._preparation import Prep, prepare, run

__all__ = ["jacobian", "prepare_jacobian", "value_and_jacobian"]


def prepare_jacobian(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    y: Any = None,
    has_aux: bool = False,
) -> Prep:
    """Prepare :func:`jacobian` and :func:`value_and_jacobian` for these arguments."""
    return prepare(JACOBIAN, f, backend, x, None, contexts, y, has_aux=has_aux)


def jacobian(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    y: Any = None,
    flat: bool = False,
    error: Any = False,
    has_aux: bool = False,
) -> Any:
    """The Jacobian of ``f(x, *contexts)``, of shape ``f(x).shape + x.shape``.

    With ``y=``, f is a mutating ``f(y, x, *contexts)`` and y receives f(x). For x a
    dict / list / tuple of arrays, the Jacobian has x's structure with blocks of shape
    ``f(x).shape + leaf.shape``. ``flat=True`` gives one matrix of shape
    ``(f(x).size, x.size)`` instead (x.size: all of x's entries).

    With ``error=True`` (or an array to write it into), returns ``(result, error)``: an
    estimate of the result's error, shaped like it (finite differences with adaptive steps
    give one: see docs/operators.md; other backends raise UnsupportedError).

    Raises:
        PreparationMismatchError: ``prep`` was made for other arguments.
        UnsupportedError: ``y=`` with a backend that cannot differentiate mutation.
    """
    return run(
        JACOBIAN,
        f,
        backend,
        x,
        None,
        contexts,
        prep,
        True,
        out,
        y,
        flat,
        error=error,
        has_aux=has_aux,
    )


def value_and_jacobian(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    y: Any = None,
    flat: bool = False,
    error: Any = False,
    has_aux: bool = False,
) -> tuple[Any, Any] | tuple[Any, ...]:
    """``(f(x), J(x))``; arguments as in :func:`jacobian`. With ``error=True``, the estimate of
    the last result's error comes last."""
    results = run(
        JACOBIAN,
        f,
        backend,
        x,
        None,
        contexts,
        prep,
        False,
        y=y,
        flat=flat,
        error=error,
        has_aux=has_aux,
    )
    return value_variant(results, out, error, 1, has_aux)
