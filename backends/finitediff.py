"""Finite differences on NumPy: central, forward or complex step; fixed or adaptive steps;
f called once per point or on a batch of points.

Two ways to compute, chosen once from the configuration:

* **fixed steps, one f call per point** (the default): the lean column-by-column kernels of
  ``_finite_differences``. Steps are relative, ``h_i = rel · max(1, |x_i|)``, with the usual
  optimal ``rel`` for the method and dtype: eps^(1/3) central, eps^(1/2) forward, eps for
  the complex step (exact to rounding). Second derivatives are central differences of
  first-order ones with eps^(1/4) (error ≈ eps^(1/2)); with ``method="complex"`` the inner
  derivative is a complex step and the outer difference uses eps^(1/3). f is called once
  or twice per column (f need not vectorise), so mutation is fine.
* **adaptive steps** (``step="adaptive"``: Richardson extrapolation over a sequence of
  steps, with an error estimate per entry) **or a vectorised f** (``vectorized=True``):
  the sampling engine (``_finite_difference_kernels``) for every operator.

Hessians take the engine's second differences along e_i and e_i + e_j in every
configuration: n(n+1) + 1 evaluations. Work arrays are allocated per kernel on a thread's
first call and reused by its later calls, so a preparation may be shared between threads.
Where f(x) is not finite, its derivatives are NaN: a difference across a pole or a NaN must
not look finite.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import optree

from diffinterface._adapter import Fn, Kernel, KernelDeclaration, NumpyAdapter, Problem, kernel
from diffinterface.backends._finite_difference_kernels import SampledKernels, one_point
from diffinterface.backends._finite_difference_schemes import Scheme
from diffinterface.backends._finite_differences import (
    directional,
    jacobian_kernel,
    nan_where_not_finite,
    second_differences,
)

__all__ = ["FiniteDiffAdapter"]

_FIRST_ORDER_EXPONENT = {"central": 1 / 3, "forward": 1 / 2, "complex": 1.0}
#: the lean kernels of fixed steps with one f call per point, as they are declared; other
#: operators derive from the primitives (the Hessian is the engine's everywhere)
_LEAN: dict[str, bool] = {  # operator: whether its kernel honours Problem.last_only
    "jacobian": False,
    "gradient": False,
    "hvp": True,
    "second_derivative": False,
    "hessian": True,
}


class FiniteDiffAdapter(NumpyAdapter):
    """Adapter for :class:`~diffinterface.AutoFiniteDiff`."""

    native_kind: ClassVar[str] = "numpy"
    accepted_kinds: ClassVar[frozenset[str]] = frozenset({"numpy"})
    supports_mutation: ClassVar[bool] = True
    plain_values: ClassVar[bool] = True

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        adaptive = config.step == "adaptive"
        self._vectorized = config.vectorized
        #: every operator from the sampling engine (else the lean kernels, Hessian apart)
        self._engine = adaptive or config.vectorized
        scheme = (
            Scheme(config.method, config.order or 8, config.num_steps or 8)
            if adaptive
            else Scheme.fixed(config.method, config.step)
        )
        self._sampled = SampledKernels(scheme, config.vectorized, config.chunk_size)
        declared: dict[tuple[str, bool], KernelDeclaration] = {}
        for key, d in self.kernels.items():
            if self._engine:
                declared[key] = d if adaptive else replace(d, errors=False)
            elif d.operator in _LEAN:
                declared[key] = replace(d, last_only=_LEAN[d.operator], errors=False)
        self._declared = declared
        if config.vectorized:  # f's arrays are batches that y= and Cache buffers do not fit
            self.supports_mutation = False  # type: ignore[misc]
            self.mutation_refusal = "with vectorized=True f receives batches of points"  # type: ignore[misc]
            self.mutation_hint = "Use di.AutoFiniteDiff(vectorized=False)"  # type: ignore[misc]

    def declared(self, operator: str, structured: bool) -> KernelDeclaration | None:
        return self._declared.get((operator, structured))

    def point_function(self, f: Any) -> Any:
        """A vectorised f on a batch of one point (each leaf of a structured x batched)."""
        if not self._vectorized:
            return f

        def at_one_point(x: Any, *contexts: Any) -> Any:
            return f(optree.tree_map(lambda leaf: leaf[None], x), *contexts)[0]

        return at_one_point

    def output_template(self, fn: Fn, x: Any, consts: tuple[Any, ...]) -> Any:
        return self.evaluate(fn, x, consts)

    def evaluate(self, fn: Fn, x: Any, consts: tuple[Any, ...]) -> Any:
        """f(x); for a vectorised f, f of a batch of one point."""
        return one_point(fn, x, consts) if self._vectorized else fn(x, *consts)

    # -- step sizes -------------------------------------------------------------------
    def _rel(self, dtype: Any, method: str, second_order: bool = False) -> float:
        if isinstance(self.config.step, float):  # type: ignore[attr-defined]
            return self.config.step  # type: ignore[attr-defined]
        eps = float(np.finfo(dtype).eps)
        return eps**0.25 if second_order else eps ** _FIRST_ORDER_EXPONENT[method]

    @property
    def _method(self) -> str:
        return str(self.config.method)  # type: ignore[attr-defined]

    # -- primitives -------------------------------------------------------------------
    def pushforward(self, fn: Fn, mutates: bool) -> Kernel:
        return self.pushforward_batch(fn, mutates, batched=False)

    def pushforward_batch(self, fn: Fn, mutates: bool, batched: bool = True) -> Kernel:
        """One difference along each tangent, f(x) evaluated once for all of them."""
        if self._engine:  # one vectorised evaluation for all tangents (AutoSparse's colours)
            return self._sampled.pushforward(fn, _primitive(mutates, batched))
        method = self._method

        def push(x: Any, t: Any, *consts: Any) -> Any:
            y = np.array(fn(x, *consts))
            rel = self._rel(x.dtype, method)
            ty = [
                nan_where_not_finite(y, directional(fn, x, ti, consts, y, method, rel))
                for ti in (t if batched else (t,))
            ]
            if not batched:
                return y, ty[0]
            return y, np.stack(ty) if ty else np.zeros((0, *y.shape), dtype=y.dtype)

        return push

    def pullback(self, fn: Fn, mutates: bool) -> Kernel:
        return self.pullback_batch(fn, mutates, batched=False)

    def pullback_batch(self, fn: Fn, mutates: bool, batched: bool = True) -> Kernel:
        """uᵀJ needs the whole Jacobian: one column per input, then a contraction."""
        if self._engine:
            return self._sampled.pullback(fn, _primitive(mutates, batched))
        jac = self._jacobian(fn, self._method)

        def pull(x: Any, u: Any, *consts: Any) -> Any:
            y, j = jac(x, *consts)
            k = u.shape[0] if batched else 1  # not -1: y or x may be empty
            tx = (u.reshape(k, y.size) @ j.reshape(y.size, x.size)).reshape(
                ((k,) if batched else ()) + x.shape
            )
            return y, tx

        return pull

    # -- faster operators (see _LEAN and __init__ for which are declared where) ----------
    @kernel("pushforward", last_only=True, errors=True)
    def pushforward_kernel(self, fn: Fn, p: Problem) -> Kernel:
        return self._sampled.pushforward(fn, p)

    @kernel("pullback", last_only=True, errors=True)
    def pullback_kernel(self, fn: Fn, p: Problem) -> Kernel:
        return self._sampled.pullback(fn, p)

    @kernel("derivative", last_only=True, errors=True)
    def derivative(self, fn: Fn, p: Problem) -> Kernel:
        return self._sampled.jacobian(fn, p)

    @kernel("jacobian", last_only=True, writes_out=True, errors=True)
    def jacobian(self, fn: Fn, p: Problem) -> Kernel:
        return self._sampled.jacobian(fn, p) if self._engine else self._jacobian(fn, self._method)

    @kernel("gradient", last_only=True, writes_out=True, errors=True)
    def gradient(self, fn: Fn, p: Problem) -> Kernel:
        if self._engine:
            return self._sampled.jacobian(fn, p)
        jac = self._jacobian(fn, self._method)

        def gradient(x: Any, *consts: Any, out: Any = None) -> Any:
            y, j = jac(x, *consts, out=out)
            return y, j if j is out else j.reshape(x.shape)

        return gradient

    @kernel("hvp", last_only=True, errors=True)
    def hvp(self, fn: Fn, p: Problem) -> Kernel:
        """``(∇f, H·t)``, or H·t alone (``p.last_only``): without the gradient at x, a third
        of the evaluations of f."""
        if self._engine:
            return self._sampled.hvp(fn, p)
        return self._hvp(fn, p, with_gradient=not p.last_only)

    def _hvp(self, fn: Fn, p: Problem, with_gradient: bool) -> Kernel:
        """H·t as a central difference of inner gradients along t (4n evaluations of f for
        central inner gradients, 2n for complex-step ones), plus f(x)."""
        method = self._method
        grad = self._jacobian(fn, method)
        inner_method = "complex" if method == "complex" else "central"
        inner_jac = jacobian_kernel(
            fn,
            lambda dt: inner_method,
            lambda dt: self._rel(dt, inner_method, second_order=inner_method != "complex"),
            value=False,
        )
        batched = p.batch is not None

        def inner(x: Any, *consts: Any) -> Any:
            return inner_jac(x, *consts)[1]

        def hvp(x: Any, t: Any, *consts: Any) -> Any:
            if with_gradient:
                y, g = grad(x, *consts)
            else:
                y = fn(x, *consts)
            rel = self._rel(x.dtype, "central", second_order=method != "complex")
            ts = t if batched else (t,)
            # x gives the result's shape and dtype (those of the gradient)
            hv = [directional(inner, x, ti, consts, x, "central", rel) for ti in ts]
            hv_all = nan_where_not_finite(y, np.stack(hv) if batched else hv[0])
            return (g.reshape(x.shape), hv_all) if with_gradient else hv_all

        return hvp

    @kernel("hessian", last_only=True, errors=True)
    def hessian(self, fn: Fn, p: Problem) -> Kernel:
        """``(y, ∇f, H)``, or H alone (``p.last_only``): second differences along e_i and
        e_i + e_j (n(n+1) + 1 evaluations), the gradient by the method's first differences
        (or from the same points, extrapolated)."""
        return self._sampled.hessian(fn, p)

    @kernel("second_derivative", last_only=True, errors=True)
    def second_derivative(self, fn: Fn, p: Problem) -> Kernel:
        """y, y' (by the backend's method) and y'' by a second difference: 5 evaluations of
        f for the central method, 4 for the forward and complex ones."""
        if self._engine:
            return self._sampled.second_derivative(fn, p)
        method = self._method
        first = self._jacobian(fn, method)

        def kernel(x: Any, *consts: Any) -> Any:
            y, d = first(x, *consts)
            complex_step = method == "complex"
            rels = (self._rel(x.dtype, "complex"), self._rel(x.dtype, "central"))
            if not complex_step:
                rels = (self._rel(x.dtype, "central", second_order=True),) * 2
            dd = second_differences(fn, x, consts, y, complex_step, *rels)
            return y, d, nan_where_not_finite(y, dd.reshape(y.shape), in_place=True)

        return kernel

    # -- building blocks --------------------------------------------------------------
    def _jacobian(self, fn: Fn, method: str) -> Kernel:
        return jacobian_kernel(fn, lambda dt: method, lambda dt: self._rel(dt, method))


def _primitive(mutates: bool, batched: bool) -> Problem:
    """What a primitive's kernel is built for: f's output is learnt at its first call."""
    return Problem(x=None, y=None, batch=1 if batched else None, mutates=mutates)
