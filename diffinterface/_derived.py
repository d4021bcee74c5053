"""The operators, and how each derives from the two primitives, pushforward and pullback.

Each :class:`OperatorSpec` names an operator, its argument rules, the outputs of its
kernel (value variant) and its generic kernel builder. A builder asks the adapter for
batched or single pushforwards and pullbacks and returns a kernel of native arrays; an
adapter that declares its own kernel for an operator (``diffinterface._adapter.kernel``)
replaces the builder. Kernel outputs, in order (the last one is the operator's own result):

======================  ====================  ==========================================
operator                tangents              outputs
======================  ====================  ==========================================
pushforward             shaped like x         f(x), J·t (stacked for a batch)
pullback                shaped like f(x)      f(x), uᵀJ (stacked for a batch)
derivative                                    f(x), dy/dx
gradient                                      f(x), ∇f
jacobian                                      f(x), J (``y.shape + x.shape``)
second_derivative                             f(x), dy/dx, d²y/dx²
hvp                     shaped like x         ∇f, H·t (stacked for a batch)
hessian                                       f(x), ∇f, H (``x.shape + x.shape``)
======================  ====================  ==========================================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from diffinterface._adapter import Adapter, Fn, Kernel, Problem

__all__ = [
    "DERIVATIVE",
    "GRADIENT",
    "HESSIAN",
    "HVP",
    "JACOBIAN",
    "PULLBACK",
    "PUSHFORWARD",
    "SECOND_DERIVATIVE",
    "OperatorSpec",
    "derivative_function",
    "gradient_function",
    "uses_forward_mode",
]

Builder = Callable[[Adapter, Fn, Problem], Kernel]


@dataclass(frozen=True)
class OperatorSpec:
    """An operator: its name, argument rules, kernel outputs and generic kernel builder.

    ``outputs`` says what each kernel output is shaped like: ``"y"`` (f's output), ``"x"``,
    ``"yx"`` (a Jacobian) or ``"xx"`` (a Hessian).
    """

    name: str
    build: Builder
    outputs: tuple[str, ...]
    tangents: Literal["x", "y"] | None = None
    scalar_x: bool = False  # derivative, second_derivative
    scalar_y: bool = False  # gradient, hvp, hessian


def _pushforward(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    if p.batch is None:
        return adapter.pushforward(fn, p.mutates)
    return adapter.pushforward_batch(fn, p.mutates)


def _pullback(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    if p.batch is None:
        return adapter.pullback(fn, p.mutates)
    return adapter.pullback_batch(fn, p.mutates)


def _derivative(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    """``(x, *consts) -> (y, dy/dx)``: a pushforward of the tangent 1."""
    push = adapter.pushforward(fn, p.mutates)
    one = adapter.ones(p.x, p.x)

    def derivative(x: Any, *consts: Any) -> Any:
        return push(x, one, *consts)

    return derivative


def _gradient(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    """``(x, *consts) -> (y, ∇f)``: a pullback of the cotangent 1."""
    pull = adapter.pullback(fn, p.mutates)
    one = adapter.ones(p.y, p.x)

    def gradient(x: Any, *consts: Any) -> Any:
        return pull(x, one, *consts)

    return gradient


def uses_forward_mode(adapter: Adapter, sizes: tuple[int, int] | None = None) -> bool:
    """Whether the adapter builds Jacobians column by column (pushforwards): its ``mode``
    says so, and a backend without one (autograd, finite differences) uses pushforwards
    when x has fewer entries than f(x) (``sizes``: (x's, f(x)'s)), or when none are given."""
    mode = getattr(adapter.config, "mode", None)
    if mode is None:
        return sizes is None or sizes[0] < sizes[1]
    return bool(mode == "forward")


def _jacobian(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    """``(x, *consts) -> (y, J)`` from one batched pushforward or pullback."""
    x_shape, y_shape = tuple(p.x.shape), tuple(p.y.shape)
    n, m = math.prod(x_shape), math.prod(y_shape)
    if uses_forward_mode(adapter, (n, m)):
        push = adapter.pushforward_batch(fn, p.mutates)

        def forward(x: Any, *consts: Any) -> Any:
            basis = adapter.eye(n, p.x).reshape((n, *x_shape))
            y, cols = push(x, basis, *consts)
            return y, cols.reshape((n, m)).T.reshape(y_shape + x_shape)

        return forward
    pull = adapter.pullback_batch(fn, p.mutates)

    def reverse(x: Any, *consts: Any) -> Any:
        basis = adapter.eye(m, p.y).reshape((m, *y_shape))
        y, rows = pull(x, basis, *consts)
        return y, rows.reshape(y_shape + x_shape)

    return reverse


def derivative_function(adapter: Adapter, fn: Fn, p: Problem) -> Fn:
    """``(x, *consts) -> dy/dx``, built by the adapter so that it can be differentiated."""
    first = _derivative(adapter, fn, p)

    def derivative_only(x: Any, *consts: Any) -> Any:
        return first(x, *consts)[1]

    return derivative_only


def gradient_function(adapter: Adapter, fn: Fn, p: Problem) -> Fn:
    """``(x, *consts) -> ∇f(x)``, built by the adapter so that it can be differentiated."""
    grad = _gradient(adapter, fn, p)

    def gradient_only(x: Any, *consts: Any) -> Any:
        return grad(x, *consts)[1]

    return gradient_only


def _second_derivative(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    """``(x, *consts) -> (y, y', y'')``: a pushforward of the derivative."""
    outer = adapter.pushforward(derivative_function(adapter, fn, p), p.mutates)
    one = adapter.ones(p.x, p.x)

    def second_derivative(x: Any, *consts: Any) -> Any:
        d1, d2 = outer(x, one, *consts)
        return fn(x, *consts), d1, d2

    return second_derivative


def _hvp(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    """``(x, t, *consts) -> (∇f, H t)``: a pushforward of the gradient (forward over
    reverse)."""
    return _pushforward(adapter, gradient_function(adapter, fn, p), p)


def _hessian(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    """``(x, *consts) -> (y, ∇f, H)``: one batched pushforward of the gradient."""
    x_shape = tuple(p.x.shape)
    n = math.prod(x_shape)
    push = adapter.pushforward_batch(gradient_function(adapter, fn, p), p.mutates)

    def hessian(x: Any, *consts: Any) -> Any:
        basis = adapter.eye(n, p.x).reshape((n, *x_shape))
        g, cols = push(x, basis, *consts)
        return fn(x, *consts), g, cols.reshape(x_shape + x_shape)

    return hessian


PUSHFORWARD = OperatorSpec("pushforward", _pushforward, ("y", "y"), tangents="x")
PULLBACK = OperatorSpec("pullback", _pullback, ("y", "x"), tangents="y")
DERIVATIVE = OperatorSpec("derivative", _derivative, ("y", "y"), scalar_x=True)
GRADIENT = OperatorSpec("gradient", _gradient, ("y", "x"), scalar_y=True)
JACOBIAN = OperatorSpec("jacobian", _jacobian, ("y", "yx"))
SECOND_DERIVATIVE = OperatorSpec(
    "second_derivative", _second_derivative, ("y", "y", "y"), scalar_x=True
)
HVP = OperatorSpec("hvp", _hvp, ("x", "x"), tangents="x", scalar_y=True)
HESSIAN = OperatorSpec("hessian", _hessian, ("y", "x", "xx"), scalar_y=True)
