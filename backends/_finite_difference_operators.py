"""Finite-difference operators with error estimates, built on one engine.

Each function takes ``evaluate(points) -> values`` (see ``_finite_difference_sampling``:
``looped(f)`` or ``batched(f)``), x as a NumPy array and a :class:`Scheme`, and
returns an :class:`Estimate` whose ``value`` and ``error`` have the operator's shape and x's
(real) dtype, with the number of f evaluations and calls. ``fx = f(x)``, when the caller
has it, saves one evaluation for one-sided and second differences; ``chunk_size`` bounds
the points per call of ``evaluate`` (default: 512 KiB of them).

Evaluations per step (central; n = x.size, k tangents, +1 for f(x) where marked *):
jacobian / gradient 2n, pushforward 2k, second_derivative 2 (*), hessian n(n+1) (*),
hvp 2k(n+1) + 2n (*). One-sided: n, k (*) first order; complex step: n, k.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from diffinterface.backends._finite_difference_sampling import (
    Directions,
    Estimate,
    Evaluate,
    differentiate_along,
)
from diffinterface.backends._finite_difference_schemes import Scheme, real_dtype

__all__ = [
    "derivative",
    "gradient",
    "hessian",
    "hvp",
    "jacobian",
    "pushforward",
    "second_derivative",
]


def jacobian(
    evaluate: Evaluate, x: np.ndarray, scheme: Scheme, fx: Any = None, chunk_size: int | None = None
) -> Estimate:
    """∂f/∂x, shaped ``y.shape + x.shape``: one coordinate direction per input."""
    c = scheme.step_scale(x.reshape(-1))
    est = differentiate_along(
        evaluate, x, Directions.coordinates(c), scheme, 1, _arr(fx), chunk_size=chunk_size
    )
    y_shape = est.value.shape[1:]

    def arrange(a: np.ndarray) -> np.ndarray:  # (n,) + y.shape -> y.shape + x.shape
        return np.moveaxis(a.reshape(x.size, math.prod(y_shape)), 0, 1).reshape(y_shape + x.shape)

    return _finish(est, x, lambda a: arrange(a) / c.reshape(x.shape))


def gradient(
    evaluate: Evaluate, x: np.ndarray, scheme: Scheme, fx: Any = None, chunk_size: int | None = None
) -> Estimate:
    """∇f for a scalar f, shaped like x."""
    return jacobian(evaluate, x, scheme, fx, chunk_size)


def derivative(
    evaluate: Evaluate, x: np.ndarray, scheme: Scheme, fx: Any = None, chunk_size: int | None = None
) -> Estimate:
    """df/dx for a scalar (0-d) x, shaped like y."""
    return jacobian(evaluate, x, scheme, fx, chunk_size)


def pushforward(
    evaluate: Evaluate,
    x: np.ndarray,
    tangents: np.ndarray,
    scheme: Scheme,
    fx: Any = None,
    chunk_size: int | None = None,
) -> Estimate:
    """J·t for each tangent t on the leading axis of ``tangents``: ``(k,) + y.shape``.

    Each tangent is scaled to max|t| = 1 and the steps by x's largest entry; a zero tangent
    gives zeros (error 0) without evaluating f."""
    u, size, s = _unit_tangents(x, tangents, scheme)
    live = np.flatnonzero(size)
    est = differentiate_along(
        evaluate, x, Directions.dense(u[live]), scheme, 1, _arr(fx), s, chunk_size
    )
    return _scatter(est, x, live, len(size), size)


def second_derivative(
    evaluate: Evaluate, x: np.ndarray, scheme: Scheme, fx: Any = None, chunk_size: int | None = None
) -> Estimate:
    """d²f/dx² for a scalar (0-d) x, shaped like y."""
    c = scheme.step_scale(x.reshape(-1))
    est = differentiate_along(
        evaluate, x, Directions.coordinates(c), scheme, 2, _arr(fx), chunk_size=chunk_size
    )
    return _finish(est, x, lambda a: a[0] / c[0] ** 2)


def hessian(
    evaluate: Evaluate, x: np.ndarray, scheme: Scheme, fx: Any = None, chunk_size: int | None = None
) -> Estimate:
    """∇²f for a scalar f, shaped ``x.shape + x.shape``, symmetric.

    Second differences along c_i·e_i and along c_i·e_i + c_j·e_j (i < j) give
    S_i = c_i²·H_ii and S_ij = S_i + S_j + 2·c_i·c_j·H_ij: n(n+1) points per step plus
    f(x), half the 2n² of the four-point cross formula. The errors add likewise."""
    n = x.size
    c = scheme.step_scale(x.reshape(-1))
    iu, ju = np.triu_indices(n, 1)

    first = np.concatenate([np.arange(n), iu])  # row i: c_i·e_i; row n + k: the k-th pair

    def rows(a: int, b: int) -> Any:  # sparse (row, column, value) of rows a..b-1
        lo, hi = max(a - n, 0), max(b - n, 0)
        columns = np.concatenate([first[a:b], ju[lo:hi]])
        return (
            np.concatenate([np.arange(b - a), np.arange(lo + n - a, hi + n - a)]),
            columns,
            c[columns],
        )

    est = differentiate_along(
        evaluate, x, Directions(n + len(iu), rows), scheme, 2, _arr(fx), chunk_size=chunk_size
    )

    def combine(s: np.ndarray, absolute: bool) -> np.ndarray:
        s = s.reshape(-1)
        h = np.diag(s[:n] / c**2)
        sign = 1.0 if absolute else -1.0
        off = (s[n:] + sign * (s[iu] + s[ju])) / (2 * c[iu] * c[ju])
        h[iu, ju] = off
        h[ju, iu] = off
        return h.reshape(x.shape + x.shape)

    return _finish(est, x, lambda a: combine(a, False), lambda a: combine(a, True))


def hvp(
    evaluate: Evaluate,
    x: np.ndarray,
    tangents: np.ndarray,
    scheme: Scheme,
    fx: Any = None,
    chunk_size: int | None = None,
) -> Estimate:
    """H·t for each tangent on the leading axis: ``(k,) + x.shape``, by second differences
    along c_i·e_i, along u and along c_i·e_i + u (u = t / max|t|)."""
    n = x.size
    c = scheme.step_scale(x.reshape(-1))
    u, size, _ = _unit_tangents(x, tangents, scheme)
    k = len(size)
    e = np.diag(c)
    v = np.concatenate([e, *[np.concatenate([e + ui, ui[None]]) for ui in u]]) if k else e
    est = differentiate_along(
        evaluate, x, Directions.dense(v), scheme, 2, _arr(fx), chunk_size=chunk_size
    )

    def combine(s: np.ndarray, absolute: bool) -> np.ndarray:
        s = s.reshape(-1)
        sign = 1.0 if absolute else -1.0
        blocks = s[n:].reshape(k, n + 1)
        hu = (blocks[:, :n] + sign * (s[:n] + blocks[:, n:])) / (2 * c)
        return (hu * size[:, None]).reshape((k, *x.shape))

    return _finish(est, x, lambda a: combine(a, False), lambda a: combine(a, True))


def _unit_tangents(
    x: np.ndarray, tangents: np.ndarray, scheme: Scheme
) -> tuple[np.ndarray, np.ndarray, float]:
    """Tangents as rows scaled to max|t| = 1, their sizes max|t|, and the step scale of x's
    largest entry."""
    t = np.asarray(tangents, dtype=np.float64).reshape(len(tangents), -1)
    size = np.max(np.abs(t), axis=1) if t.size else np.zeros(len(t))
    u = t / np.where(size > 0, size, 1.0)[:, None]
    s = float(scheme.step_scale(np.max(np.abs(x), initial=0.0, keepdims=True))[0])
    return u, size, s


def _scatter(est: Estimate, x: np.ndarray, live: np.ndarray, k: int, scale: np.ndarray) -> Estimate:
    """Results for all k tangents from those computed for the nonzero ones (zeros else)."""
    y_shape = est.value.shape[1:]
    full = np.zeros((k, *y_shape), dtype=est.value.dtype)
    err = np.zeros((k, *y_shape))
    factor = scale[live].reshape((-1,) + (1,) * len(y_shape))
    full[live], err[live] = est.value * factor, est.error * factor
    return _finish(Estimate(full, err, est.evaluations, est.calls), x, lambda a: a)


def _finish(
    est: Estimate,
    x: np.ndarray,
    arrange: Callable[[np.ndarray], np.ndarray],
    arrange_error: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Estimate:
    dtype = real_dtype(x.dtype)  # complex x (one difference nested in a complex step): complex
    value = np.asarray(arrange(est.value), dtype=x.dtype if x.dtype.kind == "c" else dtype)
    error = np.asarray((arrange_error or arrange)(est.error), dtype=dtype)
    return Estimate(value, np.abs(error), est.evaluations, est.calls)


def _arr(fx: Any) -> np.ndarray | None:
    return None if fx is None else np.asarray(fx)
