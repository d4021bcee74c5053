"""hessian: the full Hessian, shape ``x.shape + x.shape``, as one batch of HVPs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Context
from diffinterface._derived import HESSIAN
from diffinterface._operators._call import value_variant
from diffinterface._preparation import Prep, prepare, run

__all__ = ["hessian", "prepare_hessian", "value_gradient_and_hessian"]


def prepare_hessian(
    f: Callable[..., Any], backend: BackendLike, x: Any, *contexts: Context, has_aux: bool = False
) -> Prep:
    """Prepare :func:`hessian` and :func:`value_gradient_and_hessian` for these arguments."""
    return prepare(HESSIAN, f, backend, x, None, contexts, None, has_aux=has_aux)


def hessian(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    flat: bool = False,
    error: Any = False,
    has_aux: bool = False,
) -> Any:
    """The Hessian of a scalar ``f(x, *contexts)``, of shape ``x.shape + x.shape``.

    For x a dict / list / tuple of arrays, the Hessian is x's structure of x's structures
    of blocks ``leaf_i.shape + leaf_j.shape``; ``flat=True`` gives one (x.size, x.size)
    matrix instead.

    With ``error=True`` (or an array to write it into), returns ``(result, error)``: an
    estimate of the result's error, shaped like it (finite differences with adaptive steps
    give one: see docs/operators.md; other backends raise UnsupportedError).

    Raises:
        InvalidArgumentError: f(x) is not a scalar.
        PreparationMismatchError: ``prep`` was made for other arguments.
    """
    return run(
        HESSIAN,
        f,
        backend,
        x,
        None,
        contexts,
        prep,
        True,
        out,
        flat=flat,
        error=error,
        has_aux=has_aux,
    )


def value_gradient_and_hessian(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: tuple[Any, Any] | None = None,
    flat: bool = False,
    error: Any = False,
    has_aux: bool = False,
) -> tuple[Any, Any, Any] | tuple[Any, ...]:
    """``(f(x), ∇f(x), H(x))``; ``out=`` is a pair (gradient array, Hessian array). With
    ``error=True``, the estimate of the last result's error comes last."""
    results = run(
        HESSIAN, f, backend, x, None, contexts, prep, False, flat=flat, error=error, has_aux=has_aux
    )
    return value_variant(results, out, error, 2, has_aux)
