"""The difference formulas of the finite-difference backend (``backends/finitediff.py``):
directional differences, Jacobians column by column with per-thread work arrays, and
second differences."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from diffinterface._adapter import Fn, Kernel

__all__ = [
    "buffers",
    "directional",
    "jacobian_kernel",
    "nan_where_not_finite",
    "second_differences",
]


def second_differences(
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


def directional(
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


def nan_where_not_finite(y: Any, d: Any, in_place: bool = False) -> Any:
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


def jacobian_kernel(
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
        xp, xm = buffers(local, ("steps", n, dt), lambda: (np.empty(n, dt), np.empty(n, dt)))
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
            jac = buffers(local, ("jac", shape, y_dtype), lambda: np.empty(shape, y_dtype))
        else:  # a new J: the result must not be overwritten by the next call
            jac = np.empty(shape, dtype=y_dtype)
        for i in range(n):
            jac[:, i] = np.reshape(first if i == 0 and first is not None else column(i), -1)
        d = jac.reshape(y_shape + x.shape)
        if y is not None:
            d = nan_where_not_finite(y, d, in_place=True)
        if into_out:
            np.copyto(out, d)
            return y, out
        return y, d

    return kernel


def buffers(local: threading.local, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    """The calling thread's work arrays of one kernel for ``key`` (what, shape, dtype),
    made by ``make`` on first use. (Under SecondOrder a kernel may also see complex x.)"""
    made: dict[tuple[Any, ...], Any] = local.__dict__.setdefault("buffers", {})
    if key not in made:
        made[key] = make()
    return made[key]
