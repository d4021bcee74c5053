"""Sparse scenarios: Jacobians and Hessians with known sparsity, analytic dense references.

Each is an ordinary ``jacobian`` or ``hessian`` :class:`Scenario` (reference shape
``f(x).shape + x.shape``), so dense backends run them as they are and ``di.AutoSparse``
backends are checked against the same reference (their ``scipy.sparse`` result is compared
as a dense matrix of the flattened shape).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import diffinterface as di
from diffinterface.testsuite._scenario import Scenario

__all__ = ["laplacian_2d", "sparse_scenarios"]


# -- functions, each written once for every backend and the sparsity tracer -----------


def tridiagonal(x: Any) -> Any:
    """y_i = sin(x_i) · (x_{i-1} + x_{i+1}) + x_i³ (zero beyond the ends): tridiagonal J."""
    xp = di.array_namespace(x)
    left = xp.concat([x[:1] * 0.0, x[:-1]])
    right = xp.concat([x[1:], x[-1:] * 0.0])
    return xp.sin(x) * (left + right) + x * x * x


def arrowhead(x: Any) -> Any:
    """y_0 = Σ x², y_i = x_0 · sin(x_i): dense first row and column plus the diagonal."""
    xp = di.array_namespace(x)
    return xp.concat([xp.reshape(xp.sum(x * x), (1,)), x[:1] * xp.sin(x[1:])])


def blocks(x: Any) -> Any:
    """x of shape (k, b); Y[r, :] = tanh(X[r, :]) · Σ X[r, :]: block-diagonal J."""
    xp = di.array_namespace(x)
    return xp.tanh(x) * xp.sum(x, axis=1, keepdims=True)


def reaction_diffusion(u: Any, lap: Any) -> Any:
    """L u + u³ with L a Constant (the discretised 2-D Laplacian): J = L + diag(3u²)."""
    xp = di.array_namespace(u)
    return xp.matmul(lap, u) + u * u * u


def rosenbrock(x: Any) -> Any:
    """The chained Rosenbrock function Σ 100 (x_{i+1} − x_i²)² + (1 − x_i)²: tridiagonal H."""
    xp = di.array_namespace(x)
    return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def arrow_energy(x: Any) -> Any:
    """x_0 · Σ sin x: arrowhead Hessian."""
    xp = di.array_namespace(x)
    return x[0] * xp.sum(xp.sin(x))


def dirichlet_energy(u: Any, lap: Any) -> Any:
    """½ uᵀ L u + Σ u⁴ / 4: Hessian L + diag(3u²)."""
    xp = di.array_namespace(u)
    return 0.5 * xp.sum(u * xp.matmul(lap, u)) + 0.25 * xp.sum(u * u * u * u)


# -- references ------------------------------------------------------------------------


def laplacian_2d(grid: int) -> np.ndarray:
    """The 5-point Laplacian (negative definite, Dirichlet) on a grid × grid mesh, dense."""
    eye = np.eye(grid)
    second = -2 * eye + np.eye(grid, k=1) + np.eye(grid, k=-1)
    return np.kron(second, eye) + np.kron(eye, second)


def _tridiagonal_ref(x: np.ndarray) -> tuple[Any, Any]:
    left, right = np.r_[0.0, x[:-1]], np.r_[x[1:], 0.0]
    jac = np.diag(np.cos(x) * (left + right) + 3 * x**2)
    jac += np.diag(np.sin(x[1:]), -1) + np.diag(np.sin(x[:-1]), 1)
    return np.sin(x) * (left + right) + x**3, jac


def _arrowhead_ref(x: np.ndarray) -> tuple[Any, Any]:
    n = x.size
    jac = np.zeros((n, n))
    jac[0] = 2 * x
    jac[1:, 0] = np.sin(x[1:])
    jac[np.arange(1, n), np.arange(1, n)] = x[0] * np.cos(x[1:])
    return np.r_[np.sum(x * x), x[0] * np.sin(x[1:])], jac


def _blocks_ref(x: np.ndarray) -> tuple[Any, Any]:
    k, b = x.shape
    s = x.sum(axis=1, keepdims=True)
    jac = np.zeros((k, b, k, b))
    for r in range(k):
        jac[r, :, r, :] = np.tanh(x[r])[:, None] * np.ones(b)[None, :]
        jac[r, :, r, :] += np.diag(s[r, 0] / np.cosh(x[r]) ** 2)
    return np.tanh(x) * s, jac


def _rosenbrock_ref(x: np.ndarray) -> tuple[Any, Any, Any]:
    n = x.size
    a, b = x[:-1], x[1:]
    y = np.sum(100 * (b - a**2) ** 2 + (1 - a) ** 2)
    g = np.zeros(n)
    g[:-1] += -400 * a * (b - a**2) - 2 * (1 - a)
    g[1:] += 200 * (b - a**2)
    h = np.zeros((n, n))
    h[np.arange(n - 1), np.arange(n - 1)] += 1200 * a**2 - 400 * b + 2
    h[np.arange(1, n), np.arange(1, n)] += 200
    h[np.arange(n - 1), np.arange(1, n)] = -400 * a
    h[np.arange(1, n), np.arange(n - 1)] = -400 * a
    return y, g, h


def _arrow_energy_ref(x: np.ndarray) -> tuple[Any, Any, Any]:
    s = np.sum(np.sin(x))
    g = x[0] * np.cos(x)
    g[0] += s
    h = np.diag(-x[0] * np.sin(x))
    h[0, 1:] = h[1:, 0] = np.cos(x[1:])
    h[0, 0] = 2 * np.cos(x[0]) - x[0] * np.sin(x[0])
    return x[0] * s, g, h


def _cast(values: tuple[Any, ...], dtype: Any) -> tuple[Any, ...]:
    return tuple(np.asarray(v, dtype=dtype) for v in values)


# -- the collection ----------------------------------------------------------------------


def sparse_scenarios(
    n: int = 10, grid: int = 4, block: int = 3, dtypes: tuple[Any, ...] = (np.float64,)
) -> list[Scenario]:
    """Sparse Jacobians (tridiagonal, arrowhead, block-diagonal on a matrix x, 2-D
    reaction-diffusion) and Hessians (chained Rosenbrock, arrowhead, 2-D Dirichlet energy).

    Args:
        n: vector length of the banded and arrowhead problems.
        grid: the 2-D problems live on a grid × grid mesh (x has grid² entries).
        block: block size of the block-diagonal problem (x has shape (n // block, block)).
        dtypes: floating dtypes of x.
    """
    out: list[Scenario] = []
    lap = laplacian_2d(grid)
    for dt in dtypes:
        x = np.linspace(-0.8, 0.9, n)
        xb = np.linspace(-0.5, 0.7, (n // block) * block).reshape(-1, block)
        u = np.linspace(-0.6, 0.8, grid * grid)
        c = di.Constant(lap.astype(dt))
        rd = (lap @ u + u**3, lap + np.diag(3 * u**2))
        en = (0.5 * u @ lap @ u + np.sum(u**4) / 4, lap @ u + u**3, lap + np.diag(3 * u**2))
        out += [
            Scenario(
                "jacobian", tridiagonal, x.astype(dt), reference=_cast(_tridiagonal_ref(x), dt)
            ),
            Scenario("jacobian", arrowhead, x.astype(dt), reference=_cast(_arrowhead_ref(x), dt)),
            Scenario("jacobian", blocks, xb.astype(dt), reference=_cast(_blocks_ref(xb), dt)),
            Scenario(
                "jacobian", reaction_diffusion, u.astype(dt), contexts=(c,), reference=_cast(rd, dt)
            ),
            Scenario("hessian", rosenbrock, x.astype(dt), reference=_cast(_rosenbrock_ref(x), dt)),
            Scenario(
                "hessian", arrow_energy, x.astype(dt), reference=_cast(_arrow_energy_ref(x), dt)
            ),
            Scenario(
                "hessian", dirichlet_energy, u.astype(dt), contexts=(c,), reference=_cast(en, dt)
            ),
        ]
    return out
