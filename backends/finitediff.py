"""Finite differences on NumPy: central, forward or complex step.

Steps are relative, ``h_i = rel · max(1, |x_i|)``, with the usual optimal ``rel`` for the
method and dtype: eps^(1/3) central, eps^(1/2) forward, eps for the complex step (exact to
rounding). Second order is a central difference of a first-order difference, both with
eps^(1/4) (error ≈ eps^(1/2)); with ``method="complex"`` the inner derivative is a complex
step and the outer difference uses eps^(1/3). Work arrays are allocated per kernel on a
thread's first call and reused by its later calls, so a preparation may be shared between
threads. f is called once or twice per column (f need not vectorise), so mutation is fine.
Where f(x) is not finite, its derivatives are NaN: a difference across a pole or a NaN must
not look finite.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from diffinterface._adapter import Adapter, Fn, Kernel
from diffinterface._prep import Problem

__all__ = ["FiniteDiffAdapter"]

_FIRST_ORDER_EXPONENT = {"central": 1 / 3, "forward": 1 / 2, "complex": 1.0}


class FiniteDiffAdapter(Adapter):
    """Adapter for :class:`~diffinterface.AutoFiniteDiff`."""

    native_kind: ClassVar[str] = "numpy"
    accepted_kinds: ClassVar[frozenset[str]] = frozenset({"numpy"})
    supports_mutation: ClassVar[bool] = True
    plain_values: ClassVar[bool] = True
    writes_out: ClassVar[frozenset[str]] = frozenset({"jacobian", "gradient"})

    def stack(self, arrays: list[Any]) -> Any:
        return np.stack(arrays)

    def eye(self, n: int, like: Any) -> Any:
        return np.eye(n, dtype=like.dtype)

    def ones(self, template: Any, like: Any) -> Any:
        return np.ones(np.shape(template), dtype=template.dtype)

    def to_native(self, a: Any) -> Any:
        if hasattr(a, "detach"):  # a torch tensor
            return a.detach().cpu().numpy()
        return np.array(a)

    # -- step sizes -------------------------------------------------------------------
    def _rel(self, dtype: Any, method: str, second_order: bool = False) -> float:
        if self.config.rel_step is not None:  # type: ignore[union-attr]
            return float(self.config.rel_step)  # type: ignore[union-attr]
        eps = float(np.finfo(dtype).eps)
        return eps**0.25 if second_order else eps ** _FIRST_ORDER_EXPONENT[method]

    @property
    def _method(self) -> str:
        return str(self.config.method)  # type: ignore[union-attr]

    # -- primitives -------------------------------------------------------------------
    def pushforward(self, fn: Fn, mutates: bool) -> Kernel:
        method = self._method

        def push(x: Any, t: Any, *consts: Any) -> Any:
            y = np.array(fn(x, *consts))
            ty = _directional(fn, x, t, consts, y, method, self._rel(x.dtype, method))
            return y, _nan_where_not_finite(y, ty)

        return push

    def pullback(self, fn: Fn, mutates: bool) -> Kernel:
        return self.pullback_batch(fn, mutates, batched=False)

    def pullback_batch(self, fn: Fn, mutates: bool, batched: bool = True) -> Kernel:
        """uᵀJ needs the whole Jacobian: one column per input, then a contraction."""
        jac = self._jacobian(fn, self._method)

        def pull(x: Any, u: Any, *consts: Any) -> Any:
            y, j = jac(x, *consts)
            k = u.shape[0] if batched else 1  # not -1: y or x may be empty
            tx = (u.reshape(k, y.size) @ j.reshape(y.size, x.size)).reshape(
                ((k,) if batched else ()) + x.shape
            )
            return y, tx

        return pull

    # -- faster operators -------------------------------------------------------------
    def native_jacobian(self, fn: Fn, p: Problem) -> Kernel:
        return self._jacobian(fn, self._method)

    def native_gradient(self, fn: Fn, p: Problem) -> Kernel:
        jac = self._jacobian(fn, self._method)

        def gradient(x: Any, *consts: Any, out: Any = None) -> Any:
            y, j = jac(x, *consts, out=out)
            return y, j if j is out else j.reshape(x.shape)

        return gradient

    def native_hvp(self, fn: Fn, p: Problem) -> Kernel:
        return self._hvp(fn, p, with_gradient=True)

    def plain_hvp(self, fn: Fn, p: Problem) -> Kernel:
        """H·t alone: without the gradient at x that gradient_and_hvp also returns, a third
        of the evaluations of f."""
        return self._hvp(fn, p, with_gradient=False)

    def _hvp(self, fn: Fn, p: Problem, with_gradient: bool) -> Kernel:
        grad, inner, outer_rel = self._second_order_parts(fn)
        batched = p.batch is not None

        def hvp(x: Any, t: Any, *consts: Any) -> Any:
            if with_gradient:
                y, g = grad(x, *consts)
            else:
                y = fn(x, *consts)
            rel = outer_rel(x.dtype)
            ts = t if batched else (t,)
            # x gives the result's shape and dtype (those of the gradient)
            hv = [_directional(inner, x, ti, consts, x, "central", rel) for ti in ts]
            hv_all = _nan_where_not_finite(y, np.stack(hv) if batched else hv[0])
            return (g.reshape(x.shape), hv_all) if with_gradient else hv_all

        return hvp

    def native_hessian(self, fn: Fn, p: Problem) -> Kernel:
        grad, inner, outer_rel = self._second_order_parts(fn)
        hess = _jacobian_kernel(inner, lambda dt: "central", outer_rel)

        def hessian(x: Any, *consts: Any) -> Any:
            y, g = grad(x, *consts)
            h = hess(x, *consts)[1].reshape(x.size, x.size)
            h = _nan_where_not_finite(y, ((h + h.T) / 2).reshape(x.shape + x.shape))
            return y, g.reshape(x.shape), h

        return hessian

    def native_second_derivative(self, fn: Fn, p: Problem) -> Kernel:
        first, inner, outer_rel = self._second_order_parts(fn)
        second = _jacobian_kernel(inner, lambda dt: "central", outer_rel)

        def kernel(x: Any, *consts: Any) -> Any:
            y, d = first(x, *consts)
            return y, d, _nan_where_not_finite(y, second(x, *consts)[1])

        return kernel

    # -- building blocks --------------------------------------------------------------
    def _jacobian(self, fn: Fn, method: str) -> Kernel:
        return _jacobian_kernel(fn, lambda dt: method, lambda dt: self._rel(dt, method))

    def _second_order_parts(self, fn: Fn) -> tuple[Kernel, Fn, Callable[[Any], float]]:
        """(accurate first derivative, inner first derivative, outer relative step)."""
        method = self._method
        inner_method = "complex" if method == "complex" else "central"
        inner_jac = _jacobian_kernel(
            fn,
            lambda dt: inner_method,
            lambda dt: self._rel(dt, inner_method, second_order=inner_method != "complex"),
        )

        def inner(x: Any, *consts: Any) -> Any:
            return inner_jac(x, *consts)[1]

        def outer_rel(dt: Any) -> float:
            return self._rel(dt, "central", second_order=method != "complex")

        return self._jacobian(fn, method), inner, outer_rel


def _directional(
    fn: Fn, x: Any, t: Any, consts: tuple[Any, ...], y: Any, method: str, rel: float
) -> Any:
    """J·t by one difference along t (y = fn(x) given, for the forward method).

    The step is taken along the unit direction t / max|t| and the result scaled back, so a
    tiny (even subnormal) t does not make the step overflow.
    """
    scale = float(np.max(np.abs(t))) if t.size else 0.0
    if scale == 0.0:
        return np.zeros(np.shape(y), dtype=y.dtype)
    u = t / scale
    h = rel * max(1.0, float(np.max(np.abs(x))) if x.size else 1.0)
    if method == "complex":
        du = np.imag(fn(x + 1j * h * u, *consts)) / h
    elif method == "central":
        du = (fn(x + h * u, *consts) - fn(x - h * u, *consts)) / (2 * h)
    else:
        du = (fn(x + h * u, *consts) - y) / h
    return (np.asarray(du) * scale).astype(y.dtype, copy=False)


def _nan_where_not_finite(y: Any, d: Any, in_place: bool = False) -> Any:
    """``d`` (shaped ``y.shape + ...``, or any shape for a scalar y) with NaN wherever y is
    NaN or infinite: differences taken across a pole or a NaN are meaningless. With
    ``in_place``, d (an array of ours) is marked itself."""
    finite = np.isfinite(y)
    if finite.all():
        return d
    if not in_place:
        d = np.array(d)
    d[~finite] = np.nan  # a boolean mask of y's shape selects d's leading axes
    return d


def _jacobian_kernel(
    fn: Fn, method_for: Callable[[Any], str], rel_for: Callable[[Any], float]
) -> Kernel:
    """``(x, *consts) -> (y, J)``, J of shape y.shape + x.shape, one coordinate at a time.

    Work arrays (x plus and minus a step, and J's buffer for ``out=``) are allocated on a
    thread's first call and then reused for its calls (per thread: threads sharing them
    would perturb each other's points). Given ``out=`` of J's shape and dtype, J is
    computed in the thread's buffer and then copied into ``out``, which is returned: f may
    read ``out`` (as a constant or through a closure) while the columns are computed.
    """
    local = threading.local()

    def kernel(x: Any, *consts: Any, out: Any = None) -> Any:
        method, rel = method_for(x.dtype), rel_for(x.dtype)
        flat = x.reshape(-1)
        y = np.array(fn(x, *consts))
        n = flat.size
        dt = np.result_type(x.dtype, np.complex64) if method == "complex" else x.dtype
        xp, xm = _buffers(local, ("steps", n, dt), lambda: (np.empty(n, dt), np.empty(n, dt)))
        xp[...] = flat
        xm[...] = flat
        h = rel * np.maximum(1.0, np.abs(flat))
        shape = (math.prod(y.shape), n)
        into_out = out is not None and out.shape == y.shape + x.shape and out.dtype == y.dtype
        if into_out:  # the thread's own J, reused, then copied into out
            jac = _buffers(local, ("jac", shape, y.dtype), lambda: np.empty(shape, y.dtype))
        else:  # a new J: the result must not be overwritten by the next call
            jac = np.empty(shape, dtype=y.dtype)
        at_p, at_m = xp.reshape(x.shape), xm.reshape(x.shape)
        for i in range(n):
            hi = h[i]
            if method == "complex":
                xp[i] = flat[i] + 1j * hi
                column = np.imag(fn(at_p, *consts)) / hi
            elif method == "central":
                xp[i] = flat[i] + hi
                xm[i] = flat[i] - hi
                column = (fn(at_p, *consts) - fn(at_m, *consts)) / (2 * hi)
                xm[i] = flat[i]
            else:
                xp[i] = flat[i] + hi
                column = (fn(at_p, *consts) - y) / hi
            jac[:, i] = np.reshape(column, -1)
            xp[i] = flat[i]
        d = _nan_where_not_finite(y, jac.reshape(y.shape + x.shape), in_place=True)
        if into_out:
            np.copyto(out, d)
            return y, out
        return y, d

    return kernel


def _buffers(local: threading.local, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    """The calling thread's work arrays of one kernel for ``key`` (what, shape, dtype),
    made by ``make`` on first use. (Under SecondOrder a kernel may also see complex x.)"""
    made: dict[tuple[Any, ...], Any] = local.__dict__.setdefault("buffers", {})
    if key not in made:
        made[key] = make()
    return made[key]
