"""gradient: ∇f of a scalar function, as one pullback of the cotangent 1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._adapter import Adapter, Fn, Kernel
from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Context
from diffinterface._operators._results import finish
from diffinterface._prep import OperatorSpec, Prep, Problem, execute, prepare

__all__ = ["gradient", "prepare_gradient", "value_and_gradient"]


def prepare_gradient(
    f: Callable[..., Any], backend: BackendLike, x: Any, *contexts: Context
) -> Prep:
    """Prepare :func:`gradient` and :func:`value_and_gradient` for these arguments."""
    return prepare(GRADIENT, f, backend, x, None, contexts)


def gradient(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
) -> Any:
    """The gradient of a scalar-valued ``f(x, *contexts)``, shaped like x.

    Raises:
        InvalidArgumentError: f(x) is not a scalar (use jacobian).
        PreparationMismatchError: ``prep`` was made for other arguments.
    """
    _, g = execute(GRADIENT, f, backend, x, None, contexts, prep, plain=True, out=out)
    return finish(g, None, out)


def value_and_gradient(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
) -> tuple[Any, Any]:
    """``(f(x), ∇f(x))``; arguments as in :func:`gradient`."""
    value, g = execute(GRADIENT, f, backend, x, None, contexts, prep)
    return value, finish(g, None, out)


def build_gradient(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    """Generic kernel ``(x, *consts) -> (y, ∇f)``: a pullback of the cotangent 1."""
    pull = adapter.pullback(fn, p.mutates)
    one = adapter.ones(p.y, p.x)

    def kernel(x: Any, *consts: Any) -> Any:
        return pull(x, one, *consts)

    return kernel


GRADIENT = OperatorSpec("gradient", build_gradient, scalar_y=True, outputs=("y", "x"))
