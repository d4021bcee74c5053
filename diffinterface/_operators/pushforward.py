"""pushforward: Jacobian-vector products J·t, for one tangent or a batch of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._adapter import Adapter, Fn, Kernel
from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Context
from diffinterface._operators._results import batch_of, finish
from diffinterface._prep import OperatorSpec, Prep, Problem, execute, prepare

__all__ = ["prepare_pushforward", "pushforward", "value_and_pushforward"]


def prepare_pushforward(
    f: Callable[..., Any], backend: BackendLike, x: Any, tx: Any, *contexts: Context, y: Any = None
) -> Prep:
    """Prepare :func:`pushforward` and :func:`value_and_pushforward` for these arguments."""
    return prepare(PUSHFORWARD, f, backend, x, tx, contexts, y)


def pushforward(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    tx: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    y: Any = None,
) -> Any:
    """The Jacobian-vector product ``J(x)·tx`` of ``f(x, *contexts)`` (shape of f(x)).

    Args:
        f: ``f(x, *contexts) -> y``, or with ``y=`` a mutating ``f(y, x, *contexts)``.
        backend: a backend object or name.
        x: the point.
        tx: a tangent shaped like x, or a tuple of them (then a tuple of results).
        prep: a preparation from :func:`prepare_pushforward`.
        out: array (tuple of arrays for a batch) to write the result into.
        y: output buffer of a mutating f; it receives f(x).

    Raises:
        InvalidArgumentError: tangents or out of the wrong shape or dtype.
        PreparationMismatchError: ``prep`` was made for other arguments.
        UnsupportedError: ``y=`` with a backend that cannot differentiate mutation.
    """
    _, ty = execute(PUSHFORWARD, f, backend, x, tx, contexts, prep, y, plain=True)
    return finish(ty, batch_of(tx, x), out)


def value_and_pushforward(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    tx: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    y: Any = None,
) -> tuple[Any, Any]:
    """``(f(x), J(x)·tx)``; arguments as in :func:`pushforward`."""
    value, ty = execute(PUSHFORWARD, f, backend, x, tx, contexts, prep, y)
    return value, finish(ty, batch_of(tx, x), out)


def _build(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    if p.batch is None:
        return adapter.pushforward(fn, p.mutates)
    return adapter.pushforward_batch(fn, p.mutates)


PUSHFORWARD = OperatorSpec("pushforward", _build, tangents="x", outputs=("y", "y"))
