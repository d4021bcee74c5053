"""pullback: vector-Jacobian products uᵀ·J, for one cotangent or a batch of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._adapter import Adapter, Fn, Kernel
from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Context
from diffinterface._operators._results import batch_of, finish
from diffinterface._prep import OperatorSpec, Prep, Problem, execute, prepare

__all__ = ["prepare_pullback", "pullback", "value_and_pullback"]


def prepare_pullback(
    f: Callable[..., Any], backend: BackendLike, x: Any, ty: Any, *contexts: Context, y: Any = None
) -> Prep:
    """Prepare :func:`pullback` and :func:`value_and_pullback` for these arguments."""
    return prepare(PULLBACK, f, backend, x, ty, contexts, y)


def pullback(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    ty: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    y: Any = None,
) -> Any:
    """The vector-Jacobian product ``tyᵀ·J(x)`` of ``f(x, *contexts)`` (shape of x).

    Args:
        f: ``f(x, *contexts) -> y``, or with ``y=`` a mutating ``f(y, x, *contexts)``.
        backend: a backend object or name.
        x: the point.
        ty: a cotangent shaped like f(x), or a tuple of them (then a tuple of results).
        prep: a preparation from :func:`prepare_pullback`.
        out: array (tuple of arrays for a batch) to write the result into.
        y: output buffer of a mutating f; it receives f(x).

    Raises:
        InvalidArgumentError: cotangents or out of the wrong shape or dtype.
        PreparationMismatchError: ``prep`` was made for other arguments.
        UnsupportedError: ``y=`` with a backend that cannot differentiate mutation.
    """
    _, tx = execute(PULLBACK, f, backend, x, ty, contexts, prep, y, plain=True)
    return finish(tx, batch_of(ty), out)


def value_and_pullback(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    ty: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    y: Any = None,
) -> tuple[Any, Any]:
    """``(f(x), tyᵀ·J(x))``; arguments as in :func:`pullback`."""
    value, tx = execute(PULLBACK, f, backend, x, ty, contexts, prep, y)
    return value, finish(tx, batch_of(ty), out)


def _build(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    if p.batch is None:
        return adapter.pullback(fn, p.mutates)
    return adapter.pullback_batch(fn, p.mutates)


PULLBACK = OperatorSpec("pullback", _build, tangents="y", outputs=("y", "x"))
