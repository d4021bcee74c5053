"""The adapter behind :class:`~diffinterface.SecondOrder`: outer differentiation of an inner
derivative function.

The inner adapter builds the gradient (or derivative) function of f on its own arrays; the
outer adapter differentiates that function: a pushforward for a forward-mode or
finite-difference outer backend, a pullback otherwise (H·t = (tᵀH)ᵀ, H is symmetric). In
one framework the inner function is handed to the outer adapter as it is, so the two
compose natively (jax.jvp of jax.grad, ...). Across frameworks it is wrapped in
``DifferentiateWith(…, inner)``, which carries it into the outer framework. Kernels work on
the outer backend's arrays.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from diffinterface._adapter import Adapter, Fn, Kernel, Problem, adapter_for, kernel
from diffinterface._arrays import dtype_name
from diffinterface._backend_types import SecondOrder
from diffinterface._conversions import converter
from diffinterface._derived import derivative_function, gradient_function
from diffinterface._differentiate_with import DifferentiateWith
from diffinterface._errors import UnsupportedError
from diffinterface._trees import reshaped

__all__ = ["SecondOrderAdapter"]

_FIRST_ORDER = (
    "{config!r} is for second-order operators (second_derivative, hvp, hessian and their "
    "variants). For first-order operators pass one of its backends: {outer!r} or {inner!r}."
)


class SecondOrderAdapter(Adapter):
    """Second-order kernels of ``SecondOrder(outer, inner)`` on the outer backend's arrays."""

    supports_mutation = False

    def __init__(self, config: SecondOrder) -> None:
        super().__init__(config)
        self.outer, self.inner = adapter_for(config.outer), adapter_for(config.inner)
        outer = self.outer
        self.native_kind = outer.native_kind  # type: ignore[misc]
        self.accepted_kinds = outer.accepted_kinds  # type: ignore[misc]
        self._same_framework = config.outer.name == config.inner.name
        # across frameworks f runs on the host at every call, outside the compiled code
        self.compiles = outer.compiles and self._same_framework  # type: ignore[misc]
        self.checks_arguments = outer.checks_arguments  # type: ignore[misc]
        self.mutation_hint = outer.mutation_hint  # type: ignore[misc]
        limits = [a.max_ndim for a in (outer, self.inner) if a.max_ndim is not None]
        self.max_ndim = min(limits, default=None)  # type: ignore[misc]
        self._forward = getattr(config.outer, "mode", "forward") == "forward"

    # -- arrays: the outer backend's ----------------------------------------------------
    def stack(self, arrays: list[Any]) -> Any:
        return self.outer.stack(arrays)

    def eye(self, n: int, like: Any) -> Any:
        return self.outer.eye(n, like)

    def ones(self, template: Any, like: Any) -> Any:
        return self.outer.ones(template, like)

    def compile(self, kernel: Kernel, example_args: tuple[Any, ...]) -> Kernel:
        return self.outer.compile(kernel, example_args)

    def output_template(self, fn: Fn, x: Any, consts: tuple[Any, ...]) -> Any:
        return self.outer.output_template(self._carried(fn), x, consts)

    # -- first-order primitives: not what SecondOrder is for ----------------------------
    def pushforward(self, fn: Fn, mutates: bool) -> Kernel:
        raise self._first_order()

    def pullback(self, fn: Fn, mutates: bool) -> Kernel:
        raise self._first_order()

    def pushforward_batch(self, fn: Fn, mutates: bool) -> Kernel:
        raise self._first_order()

    def pullback_batch(self, fn: Fn, mutates: bool) -> Kernel:
        raise self._first_order()

    def _first_order(self) -> UnsupportedError:
        c = self.config
        assert isinstance(c, SecondOrder)
        return UnsupportedError(_FIRST_ORDER.format(config=c, outer=c.outer, inner=c.inner))

    # -- second-order kernels -------------------------------------------------------------
    @kernel("hvp")
    def hvp(self, fn: Fn, p: Problem) -> Kernel:
        grad = self._carried(gradient_function(self.inner, fn, self._inner_problem(p)))
        if p.batch is None:
            single = self.outer.pushforward if self._forward else self.outer.pullback
            return single(grad, False)
        batch = self.outer.pushforward_batch if self._forward else self.outer.pullback_batch
        return batch(grad, False)

    @kernel("hessian")
    def hessian(self, fn: Fn, p: Problem) -> Kernel:
        grad = self._carried(gradient_function(self.inner, fn, self._inner_problem(p)))
        batch = self.outer.pushforward_batch if self._forward else self.outer.pullback_batch
        columns = batch(grad, False)
        value = self._carried(fn)
        x_shape = tuple(p.x.shape)
        n = math.prod(x_shape)

        def hessian(x: Any, *consts: Any) -> Any:
            basis = reshaped(self.outer.eye(n, p.x), (n, *x_shape))
            g, cols = columns(x, basis, *consts)
            return value(x, *consts), g, reshaped(cols, x_shape + x_shape)

        return hessian

    @kernel("second_derivative")
    def second_derivative(self, fn: Fn, p: Problem) -> Kernel:
        derivative_only = derivative_function(self.inner, fn, self._inner_problem(p))
        push = self.outer.pushforward(self._carried(derivative_only), False)
        value = self._carried(fn)
        one = self.outer.ones(p.x, p.x)

        def second_derivative(x: Any, *consts: Any) -> Any:
            d1, d2 = push(x, one, *consts)
            return value(x, *consts), d1, d2

        return second_derivative

    # -- building blocks ------------------------------------------------------------------
    def _inner_problem(self, p: Problem) -> Problem:
        """The problem on the inner backend's arrays (x and a template of f's output)."""
        to_inner = converter("numpy", self.inner.native_kind)
        x = to_inner(np.zeros(tuple(p.x.shape), _numpy_dtype(p.x)))
        y = to_inner(np.zeros(tuple(p.y.shape), _numpy_dtype(p.y)))
        return Problem(x=x, y=y, batch=None, mutates=False)

    def _carried(self, fn: Fn) -> Fn:
        """An inner-framework function made callable (and differentiable) on outer arrays."""
        if self._same_framework:
            return fn
        c = self.config
        assert isinstance(c, SecondOrder)
        return DifferentiateWith(fn, c.inner)


def _numpy_dtype(a: Any) -> np.dtype[Any]:
    return np.dtype(dtype_name(a))
