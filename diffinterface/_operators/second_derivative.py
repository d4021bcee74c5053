"""second_derivative: d²y/dx² of a function of a scalar, as a pushforward of the derivative."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._adapter import Adapter, Fn, Kernel
from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Context
from diffinterface._operators._results import finish
from diffinterface._operators.derivative import build_derivative
from diffinterface._prep import OperatorSpec, Prep, Problem, execute, prepare

__all__ = [
    "prepare_second_derivative",
    "second_derivative",
    "value_derivative_and_second_derivative",
]


def prepare_second_derivative(
    f: Callable[..., Any], backend: BackendLike, x: Any, *contexts: Context
) -> Prep:
    """Prepare :func:`second_derivative` and its value variant for these arguments."""
    return prepare(SECOND_DERIVATIVE, f, backend, x, None, contexts)


def second_derivative(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
) -> Any:
    """d²y/dx² of ``f(x, *contexts)`` for a scalar x; shaped like f(x).

    Raises:
        InvalidArgumentError: x is not a scalar.
        PreparationMismatchError: ``prep`` was made for other arguments.
    """
    _, _, d2 = execute(SECOND_DERIVATIVE, f, backend, x, None, contexts, prep, plain=True)
    return finish(d2, None, out)


def value_derivative_and_second_derivative(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: tuple[Any, Any] | None = None,
) -> tuple[Any, Any, Any]:
    """``(f(x), dy/dx, d²y/dx²)``; ``out=`` is a pair of arrays for the two derivatives."""
    value, d1, d2 = execute(SECOND_DERIVATIVE, f, backend, x, None, contexts, prep)
    out1, out2 = (None, None) if out is None else out
    return value, finish(d1, None, out1), finish(d2, None, out2)


def build_second_derivative(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    """Generic kernel ``(x, *consts) -> (y, y', y'')``: pushforward of the derivative."""
    first = build_derivative(adapter, fn, p)

    def derivative_only(x: Any, *consts: Any) -> Any:
        return first(x, *consts)[1]

    outer = adapter.pushforward(derivative_only, p.mutates)
    one = adapter.ones(p.x, p.x)

    def kernel(x: Any, *consts: Any) -> Any:
        d1, d2 = outer(x, one, *consts)
        return fn(x, *consts), d1, d2

    return kernel


SECOND_DERIVATIVE = OperatorSpec(
    "second_derivative", build_second_derivative, scalar_x=True, outputs=("y", "y", "y")
)
