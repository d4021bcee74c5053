"""derivative: dy/dx of a function of a scalar, as one pushforward of the tangent 1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._adapter import Adapter, Fn, Kernel
from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Context
from diffinterface._operators._results import finish
from diffinterface._prep import OperatorSpec, Prep, Problem, execute, prepare

__all__ = ["derivative", "prepare_derivative", "value_and_derivative"]


def prepare_derivative(
    f: Callable[..., Any], backend: BackendLike, x: Any, *contexts: Context, y: Any = None
) -> Prep:
    """Prepare :func:`derivative` and :func:`value_and_derivative` for these arguments."""
    return prepare(DERIVATIVE, f, backend, x, None, contexts, y)


def derivative(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    y: Any = None,
) -> Any:
    """dy/dx of ``f(x, *contexts)`` for a scalar x (a Python number or 0-d array).

    The result has the shape of f(x). With ``y=``, f is a mutating ``f(y, x, *contexts)``
    and y receives f(x).

    Raises:
        InvalidArgumentError: x is not a scalar (use pushforward or jacobian).
        PreparationMismatchError: ``prep`` was made for other arguments.
    """
    _, d = execute(DERIVATIVE, f, backend, x, None, contexts, prep, y, plain=True)
    return finish(d, None, out)


def value_and_derivative(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    y: Any = None,
) -> tuple[Any, Any]:
    """``(f(x), dy/dx)``; arguments as in :func:`derivative`."""
    value, d = execute(DERIVATIVE, f, backend, x, None, contexts, prep, y)
    return value, finish(d, None, out)


def build_derivative(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    """Generic kernel ``(x, *consts) -> (y, dy/dx)``: a pushforward of the tangent 1."""
    push = adapter.pushforward(fn, p.mutates)
    one = adapter.ones(p.x, p.x)

    def kernel(x: Any, *consts: Any) -> Any:
        return push(x, one, *consts)

    return kernel


DERIVATIVE = OperatorSpec("derivative", build_derivative, scalar_x=True, outputs=("y", "y"))
