"""Second-order finite-difference operators with error estimates: second derivatives,
Hessians and Hessian-vector products from second differences along directions (see
``_finite_difference_operators`` for the arguments and the first-order operators).

Evaluations per step (central; n = x.size, k tangents, + f(x)): second_derivative 2,
hessian n(n+1), hvp 2k(n+1) + 2n. With ``with_gradient`` (hessian, hvp) or ``with_first``
(second_derivative), the first derivatives come from the same points where the scheme
extrapolates central differences, else from a first-difference call of their own
(``Estimate.first``, by ``first_scheme`` where given; its evaluations counted in the
result's).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from diffinterface.backends._finite_difference_operators import (
    as_array,
    finish,
    jacobian,
    split_options,
    unit_tangents,
)
from diffinterface.backends._finite_difference_points import Directions, Evaluate
from diffinterface.backends._finite_difference_sampling import Estimate, differentiate_along
from diffinterface.backends._finite_difference_schemes import Scheme

__all__ = ["hessian", "hvp", "second_derivative"]


def second_derivative(
    evaluate: Evaluate,
    x: np.ndarray,
    scheme: Scheme,
    fx: Any = None,
    chunk_size: int | None = None,
    with_first: bool = False,
    first_scheme: Scheme | None = None,
    **options: Any,
) -> Estimate:
    """d²f/dx² for a scalar (0-d) x, shaped like y; with ``with_first``, df/dx too."""
    arrays, out, error_out, errors, engine = split_options(options)
    c = scheme.step_scale(x.reshape(-1))
    share = with_first and _shares_points(scheme)
    est = differentiate_along(
        evaluate,
        x,
        Directions.coordinates(c),
        scheme,
        2,
        as_array(fx),
        chunk_size=chunk_size,
        first=share,
        **engine,
    )
    y_shape = est.value.shape[1:]

    def arrange(a: np.ndarray, into: np.ndarray) -> None:
        np.divide(a[0], c[0] ** 2, out=into)

    result = finish(est, x, y_shape, arrange, out, error_out, errors)
    if with_first:
        first = (evaluate, first_scheme or scheme, chunk_size, arrays)
        divide = lambda a, into: np.divide(a[0], c[0], out=into)  # noqa: E731
        return _with_first(result, est, divide, y_shape, x, *first)
    return result


def hessian(
    evaluate: Evaluate,
    x: np.ndarray,
    scheme: Scheme,
    fx: Any = None,
    chunk_size: int | None = None,
    with_gradient: bool = False,
    first_scheme: Scheme | None = None,
    **options: Any,
) -> Estimate:
    """∇²f for a scalar f, shaped ``x.shape + x.shape``, symmetric; with ``with_gradient``,
    ∇f too.

    Second differences along c_i·e_i and along c_i·e_i + c_j·e_j (i < j) give
    S_i = c_i²·H_ii and S_ij = S_i + S_j + 2·c_i·c_j·H_ij: n(n+1) points per step plus
    f(x), half the 2n² of the four-point cross formula. The errors add likewise."""
    arrays, out, error_out, errors, engine = split_options(options)
    n = x.size
    c = scheme.step_scale(x.reshape(-1))
    iu, ju, row_of, column_of = _pairs(n)

    def rows(a: int, b: int) -> Any:  # sparse (row, column, value) of rows a..b-1, by row
        lo, hi = a + max(a - n, 0), b + max(b - n, 0)  # row r's entries start at r + (r-n)⁺
        columns = column_of[lo:hi]
        return row_of[lo:hi] - a, columns, c[columns]

    share = with_gradient and _shares_points(scheme)
    directions = Directions(n + len(iu), rows, sparse=True)
    est = differentiate_along(
        evaluate,
        x,
        directions,
        scheme,
        2,
        as_array(fx),
        chunk_size=chunk_size,
        first=share,
        **engine,
    )
    cc = 2 * c[iu] * c[ju]

    def combine(sign: float) -> Any:
        def arrange(s: np.ndarray, into: np.ndarray) -> None:
            s, h = s.reshape(-1), into.reshape(n, n)
            h[...] = 0
            h[np.arange(n), np.arange(n)] = s[:n] / c**2
            off = (s[n:] + sign * (s[iu] + s[ju])) / cc
            h[iu, ju] = off
            h[ju, iu] = off

        return arrange

    result = finish(est, x, x.shape + x.shape, combine(-1.0), out, error_out, errors, combine(1.0))
    if with_gradient:
        first = (evaluate, first_scheme or scheme, chunk_size, arrays)
        return _with_first(result, est, _gradient_rows(c, x.shape), x.shape, x, *first)
    return result


def hvp(
    evaluate: Evaluate,
    x: np.ndarray,
    tangents: np.ndarray,
    scheme: Scheme,
    fx: Any = None,
    chunk_size: int | None = None,
    with_gradient: bool = False,
    first_scheme: Scheme | None = None,
    **options: Any,
) -> Estimate:
    """H·t for each tangent on the leading axis: ``(k,) + x.shape``, by second differences
    along c_i·e_i, along u and along c_i·e_i + u (u = t / max|t|); with
    ``with_gradient``, ∇f too."""
    arrays, out, error_out, errors, engine = split_options(options)
    n = x.size
    c = scheme.step_scale(x.reshape(-1))
    u, size, _ = unit_tangents(x, tangents, scheme)
    k = len(size)

    def rows(a: int, b: int) -> np.ndarray:  # c_i·e_i, then per tangent c_i·e_i + u and u
        r = np.arange(a, b)
        block, i = np.divmod(r - n, n + 1)
        v = np.zeros((b - a, n))
        coordinate = np.where(r < n, r, np.where(i < n, i, -1))
        hit = coordinate >= 0
        v[np.flatnonzero(hit), coordinate[hit]] = c[coordinate[hit]]
        v[r >= n] += u[block[r >= n]]
        return v

    share = with_gradient and _shares_points(scheme)
    directions = Directions(n + k * (n + 1), rows)
    est = differentiate_along(
        evaluate,
        x,
        directions,
        scheme,
        2,
        as_array(fx),
        chunk_size=chunk_size,
        first=share,
        **engine,
    )

    def combine(sign: float) -> Any:
        def arrange(s: np.ndarray, into: np.ndarray) -> None:
            s = s.reshape(-1)
            blocks = s[n:].reshape(k, n + 1)
            hu = (blocks[:, :n] + sign * (s[:n] + blocks[:, n:])) / (2 * c)
            into.reshape(k, n)[...] = hu * size[:, None]

        return arrange

    result = finish(est, x, (k, *x.shape), combine(-1.0), out, error_out, errors, combine(1.0))
    if with_gradient:
        first = (evaluate, first_scheme or scheme, chunk_size, arrays)
        return _with_first(result, est, _gradient_rows(c, x.shape), x.shape, x, *first)
    return result


# -- helpers ----------------------------------------------------------------------------


def _shares_points(scheme: Scheme) -> bool:
    """First derivatives from a second difference's points: where the scheme extrapolates
    central differences (a fixed step for second differences is too large for them)."""
    return scheme.num_steps > 1 and scheme.method in ("central", "complex")


def _with_first(
    result: Estimate,
    est: Estimate,
    arrange: Any,
    shape: Any,
    x: np.ndarray,
    evaluate: Evaluate,
    scheme: Scheme,
    chunk_size: int | None,
    arrays: Any,
) -> Estimate:
    """``result`` with the first derivative: taken from the second difference's points
    where the engine took it there, else by a first-difference call of its own (whose
    evaluations are counted in the result)."""
    if est.first is not None:
        result.first = finish(est.first, x, tuple(shape), arrange, None, None, False)
    else:
        result.first = jacobian(
            evaluate, x, scheme, est.fx, chunk_size, arrays=arrays.part("first"), errors=False
        )
    if result.first.evaluations:
        result.evaluations += result.first.evaluations
        result.calls += result.first.calls
    return result


def _gradient_rows(c: np.ndarray, shape: tuple[int, ...]) -> Any:
    def arrange(a: np.ndarray, into: np.ndarray) -> None:
        n = c.size
        np.divide(a.reshape(-1)[:n], c, out=into.reshape(n))

    return arrange


@lru_cache(maxsize=4)  # index arrays of the last few sizes
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pairs i < j of n inputs, and the entries of the Hessian's directions (e_i, then
    e_i + e_j for each pair) by row: their rows and columns."""
    iu, ju = np.triu_indices(n, 1)
    pairs = np.arange(n, n + len(iu))
    rows = np.concatenate([np.arange(n), np.repeat(pairs, 2)])
    return iu, ju, rows, np.concatenate([np.arange(n), np.stack([iu, ju], axis=1).reshape(-1)])
