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

from diffinterface._adapter import Adapter, Fn, Kernel, Problem, kernel

__all__ = ["FiniteDiffAdapter"]

_FIRST_ORDER_EXPONENT = {"central": 1 / 3, "forward": 1 / 2, "complex": 1.0}


class FiniteDiffAdapter(Adapter):
    """Adapter for :class:`~diffinterface.AutoFiniteDiff`."""

    native_kind: ClassVar[str] = "numpy"
    accepted_kinds: ClassVar[frozenset[str]] = frozenset({"numpy"})
    supports_mutation: ClassVar[bool] = True
    plain_values: ClassVar[bool] = True

    def stack(self, arrays: list[Any]) -> Any:
        return np.stack(arrays)

    def eye(self, n: int, like: Any) -> Any:
        return np.eye(n, dtype=like.dtype)

    def ones(self, template: Any, like: Any) -> Any:
        return np.ones(np.shape(template), dtype=template.dtype)

    # -- step sizes -------------------------------------------------------------------
    def _rel(self, dtype: Any, method: str, second_order: bool = False) -> float:
        if self.config.rel_step is not None:  # type: ignore[attr-defined]
            return float(self.config.rel_step)  # type: ignore[attr-defined]
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
        method = self._method

        def push(x: Any, t: Any, *consts: Any) -> Any:
            y = np.array(fn(x, *consts))
            rel = self._rel(x.dtype, method)
            ty = [
                _nan_where_not_finite(y, _directional(fn, x, ti, consts, y, method, rel))
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
    @kernel("jacobian", writes_out=True)
    def jacobian(self, fn: Fn, p: Problem) -> Kernel:
        return self._jacobian(fn, self._method)

    @kernel("gradient", writes_out=True)
    def gradient(self, fn: Fn, p: Problem) -> Kernel:
        jac = self._jacobian(fn, self._method)

        def gradient(x: Any, *consts: Any, out: Any = None) -> Any:
            y, j = jac(x, *consts, out=out)
            return y, j if j is out else j.reshape(x.shape)

        return gradient

    @kernel("hvp", last_only=True)
    def hvp(self, fn: Fn, p: Problem) -> Kernel:
        """``(∇f, H·t)``, or H·t alone (``p.last_only``): without the gradient at x, a third
        of the evaluations of f."""
        return self._hvp(fn, p, with_gradient=not p.last_only)

    def _hvp(self, fn: Fn, p: Problem, with_gradient: bool) -> Kernel:
        """H·t as a central difference of inner gradients along t (4n evaluations of f for
        central inner gradients, 2n for complex-step ones), plus f(x)."""
        method = self._method
        grad = self._jacobian(fn, method)
        inner_method = "complex" if method == "complex" else "central"
        inner_jac = _jacobian_kernel(
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
            hv = [_directional(inner, x, ti, consts, x, "central", rel) for ti in ts]
            hv_all = _nan_where_not_finite(y, np.stack(hv) if batched else hv[0])
            return (g.reshape(x.shape), hv_all) if with_gradient else hv_all

        return hvp

    @kernel("hessian", last_only=True)
    def hessian(self, fn: Fn, p: Problem) -> Kernel:
        """``(y, ∇f, H)``, or H alone (``p.last_only``): without the gradient."""
        return self._hessian(fn, with_gradient=not p.last_only)

    def _hessian(self, fn: Fn, with_gradient: bool) -> Kernel:
        """f(x), the gradient by the backend's method and H by second differences (see
        :func:`_second_differences`)."""
        method = self._method
        grad = self._jacobian(fn, method)

        def hessian(x: Any, *consts: Any) -> Any:
            if with_gradient:
                y, g = grad(x, *consts)
            else:
                y = np.array(fn(x, *consts))
            rels = (self._rel(x.dtype, "complex"), self._rel(x.dtype, "central"))
            if method != "complex":
                rels = (self._rel(x.dtype, "central", second_order=True),) * 2
            h = _second_differences(fn, x, consts, y, method == "complex", *rels)
            h = _nan_where_not_finite(y, h.reshape(x.shape + x.shape), in_place=True)
            return (y, g.reshape(x.shape), h) if with_gradient else h

        return hessian

    @kernel("second_derivative")
    def second_derivative(self, fn: Fn, p: Problem) -> Kernel:
        """y, y' (by the backend's method) and y'' by a second difference: 5 evaluations of
        f for the central method, 4 for the forward and complex ones."""
        method = self._method
        first = self._jacobian(fn, method)

        def kernel(x: Any, *consts: Any) -> Any:
            y, d = first(x, *consts)
            complex_step = method == "complex"
            rels = (self._rel(x.dtype, "complex"), self._rel(x.dtype, "central"))
            if not complex_step:
                rels = (self._rel(x.dtype, "central", second_order=True),) * 2
            dd = _second_differences(fn, x, consts, y, complex_step, *rels)
            return y, d, _nan_where_not_finite(y, dd.reshape(y.shape), in_place=True)

        return kernel

    # -- building blocks --------------------------------------------------------------
    def _jacobian(self, fn: Fn, method: str) -> Kernel:
        return _jacobian_kernel(fn, lambda dt: method, lambda dt: self._rel(dt, method))


def _second_differences(
    fn: Fn, x: Any, consts: tuple[Any, ...], y: Any, complex_step: bool, rel: float, rel2: float
) -> Any:
    """The second derivatives ∂²f/∂x_i∂x_j of f at x (y = f(x) given), shaped
    ``y.shape + (x.size, x.size)``.

    Central differences with steps h_i = rel·max(1, |x_i|) (error O(h²)): the diagonal from
    f(x ± h_i e_i) and y, each pair i < j from the four points f(x ± h_i e_i ± h_j e_j), so
    2n² evaluations of f. With ``complex_step``: central differences (steps k_j from
    ``rel2``) of complex-step derivatives (steps h_i, exact to rounding),
    Im[f(x + i·h_i e_i + k_j e_j) − f(x + i·h_i e_i − k_j e_j)] / (2 h_i k_j), made
    symmetric: 2n² evaluations too.
    """
    flat = x.reshape(-1)
    n = flat.size
    scale = np.maximum(1.0, np.abs(flat))
    h, k = rel * scale, rel2 * scale
    point = np.array(flat, dtype=np.result_type(x.dtype, np.complex64) if complex_step else x.dtype)
    at = point.reshape(x.shape)

    def f_at(*steps: tuple[int, Any]) -> Any:
        for i, step in steps:
            point[i] += step
        value = np.array(fn(at, *consts))  # a copy: f may return (a view of) its input
        point[...] = flat
        return value

    out = np.empty((n, n, *y.shape), dtype=y.dtype)
    for i in range(n):
        if complex_step:
            for j in range(n):
                plus = f_at((i, 1j * h[i]), (j, k[j]))
                minus = f_at((i, 1j * h[i]), (j, -k[j]))
                out[i, j] = np.imag(plus - minus) / (2 * h[i] * k[j])
            continue
        out[i, i] = (f_at((i, h[i])) - 2 * y + f_at((i, -h[i]))) / (h[i] * h[i])
        for j in range(i + 1, n):
            corners = (
                f_at((i, h[i]), (j, h[j]))
                - f_at((i, h[i]), (j, -h[j]))
                - f_at((i, -h[i]), (j, h[j]))
                + f_at((i, -h[i]), (j, -h[j]))
            )
            out[i, j] = out[j, i] = corners / (4 * h[i] * h[j])
    if complex_step:
        out = (out + np.swapaxes(out, 0, 1)) / 2
    return np.moveaxis(out, (0, 1), (-2, -1))


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
    fn: Fn, method_for: Callable[[Any], str], rel_for: Callable[[Any], float], value: bool = True
) -> Kernel:
    """``(x, *consts) -> (y, J)``, J of shape y.shape + x.shape, one coordinate at a time.

    Work arrays (x plus and minus a step, and J's buffer for ``out=``) are allocated on a
    thread's first call and then reused for its calls (per thread: threads sharing them
    would perturb each other's points). Given ``out=`` of J's shape and dtype, J is
    computed in the thread's buffer and then copied into ``out``, which is returned: f may
    read ``out`` (as a constant or through a closure) while the columns are computed.
    Without ``value`` (central and complex steps only), f(x) is not evaluated: y is then
    None and J is not marked where f(x) is not finite (the differences carry NaN there).
    """
    local = threading.local()

    def kernel(x: Any, *consts: Any, out: Any = None) -> Any:
        method, rel = method_for(x.dtype), rel_for(x.dtype)
        flat = x.reshape(-1)
        n = flat.size
        y = np.array(fn(x, *consts)) if value or n == 0 or method == "forward" else None
        dt = np.result_type(x.dtype, np.complex64) if method == "complex" else x.dtype
        xp, xm = _buffers(local, ("steps", n, dt), lambda: (np.empty(n, dt), np.empty(n, dt)))
        xp[...] = flat
        xm[...] = flat
        h = rel * np.maximum(1.0, np.abs(flat))
        at_p, at_m = xp.reshape(x.shape), xm.reshape(x.shape)

        def column(i: int) -> Any:
            hi = h[i]
            if method == "complex":
                xp[i] = flat[i] + 1j * hi
                d = np.imag(fn(at_p, *consts)) / hi
            elif method == "central":
                xp[i] = flat[i] + hi
                xm[i] = flat[i] - hi
                d = (fn(at_p, *consts) - fn(at_m, *consts)) / (2 * hi)
                xm[i] = flat[i]
            else:
                xp[i] = flat[i] + hi
                d = (fn(at_p, *consts) - y) / hi
            xp[i] = flat[i]
            return np.asarray(d)

        first = column(0) if y is None else None
        like: Any = y if first is None else first  # f(x), or the first column
        y_shape, y_dtype = like.shape, like.dtype
        shape = (math.prod(y_shape), n)
        into_out = out is not None and out.shape == y_shape + x.shape and out.dtype == y_dtype
        if into_out:  # the thread's own J, reused, then copied into out
            jac = _buffers(local, ("jac", shape, y_dtype), lambda: np.empty(shape, y_dtype))
        else:  # a new J: the result must not be overwritten by the next call
            jac = np.empty(shape, dtype=y_dtype)
        for i in range(n):
            jac[:, i] = np.reshape(first if i == 0 and first is not None else column(i), -1)
        d = jac.reshape(y_shape + x.shape)
        if y is not None:
            d = _nan_where_not_finite(y, d, in_place=True)
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
