"""Scenario collections: the default set (every operator, shape class, mutation, contexts,
dtypes) and the seed set (the classic AD benchmark problems), with analytic references."""

from __future__ import annotations

from typing import Any

import numpy as np

import diffinterface as di
from diffinterface.testsuite._scenario import Scenario

__all__ = ["default_scenarios"]


# -- default functions, each complex-step safe and written once for every backend -------


def bump(t: Any) -> Any:
    """scalar → scalar: t² sin t."""
    return t * t * di.array_namespace(t).sin(t)


def curve(t: Any) -> Any:
    """scalar → vector: (sin t, t³)."""
    xp = di.array_namespace(t)
    return xp.stack([xp.sin(t), t * t * t])


def curve_mutating(y: Any, t: Any) -> None:
    """The mutating form of :func:`curve`."""
    y[0] = di.array_namespace(t).sin(t)
    y[1] = t * t * t


def sheet(t: Any) -> Any:
    """scalar → 2×2 matrix: ((sin t, cos t), (t², t³))."""
    xp = di.array_namespace(t)
    return xp.reshape(xp.stack([xp.sin(t), xp.cos(t), t * t, t * t * t]), (2, 2))


def energy(x: Any) -> Any:
    """array → scalar: Σx² · Σsin x (dense Hessian)."""
    xp = di.array_namespace(x)
    return xp.sum(x * x) * xp.sum(xp.sin(x))


def energy_with_cache(x: Any, tmp: Any) -> Any:
    """:func:`energy` storing x² in a scratch buffer first."""
    xp = di.array_namespace(x)
    tmp[...] = x * x
    return xp.sum(tmp) * xp.sum(xp.sin(x))


def wave(x: Any) -> Any:
    """array → array of x's shape: sin x · Σx²."""
    xp = di.array_namespace(x)
    return xp.sin(x) * xp.sum(x * x)


def wave_mutating(y: Any, x: Any) -> None:
    """The mutating form of :func:`wave` for vectors, entry by entry."""
    xp = di.array_namespace(x)
    total = xp.sum(x * x)
    for i in range(y.shape[0]):
        y[i] = xp.sin(x[i]) * total


def scaled_wave(x: Any, c: Any) -> Any:
    """:func:`wave` times a Constant c (scalar or array)."""
    return wave(x) * c


def outer_sin(x: Any) -> Any:
    """vector → matrix: x ⊗ sin x."""
    xp = di.array_namespace(x)
    return x[:, None] * xp.sin(x)[None, :]


# -- analytic derivatives ---------------------------------------------------------------


def bump_derivatives(t: float) -> tuple[Any, ...]:
    s, c = np.sin(t), np.cos(t)
    return t * t * s, 2 * t * s + t * t * c, 2 * s + 4 * t * c - t * t * s


def curve_derivatives(t: float) -> tuple[Any, ...]:
    return (
        np.array([np.sin(t), t**3]),
        np.array([np.cos(t), 3 * t**2]),
        np.array([-np.sin(t), 6 * t]),
    )


def sheet_derivatives(t: float) -> tuple[Any, ...]:
    y = np.array([[np.sin(t), np.cos(t)], [t * t, t**3]])
    d = np.array([[np.cos(t), -np.sin(t)], [2 * t, 3 * t * t]])
    return y, d


def energy_derivatives(x: np.ndarray) -> tuple[Any, Any, Any]:
    flat = x.reshape(-1)
    q, s = np.sum(flat**2), np.sum(np.sin(flat))
    g = 2 * flat * s + q * np.cos(flat)
    h = (
        2 * s * np.eye(flat.size)
        + 2 * np.outer(flat, np.cos(flat))
        + 2 * np.outer(np.cos(flat), flat)
        - q * np.diag(np.sin(flat))
    )
    return q * s, g.reshape(x.shape), h.reshape(x.shape + x.shape)


def wave_derivatives(x: np.ndarray) -> tuple[Any, Any]:
    flat = x.reshape(-1)
    jac = np.diag(np.cos(flat) * np.sum(flat**2)) + np.outer(np.sin(flat), 2 * flat)
    return np.sin(x) * np.sum(x * x), jac.reshape(x.shape + x.shape)


def outer_sin_derivatives(x: np.ndarray) -> tuple[Any, Any]:
    n = x.size
    jac = np.zeros((n, n, n))
    for i in range(n):
        for j in range(n):
            jac[i, j, i] += np.sin(x[j])
            jac[i, j, j] += x[i] * np.cos(x[j])
    return np.outer(x, np.sin(x)), jac


def _apply(jac: np.ndarray, shape: tuple[int, ...], t: np.ndarray, transpose: bool) -> Any:
    m = jac.reshape(int(np.prod(shape)), -1)
    if transpose:
        return (t.reshape(-1) @ m).reshape(jac.shape[len(shape) :])
    return (m @ t.reshape(-1)).reshape(shape)


def _cast(values: Any, dtype: Any) -> Any:
    if isinstance(values, tuple):
        return tuple(_cast(v, dtype) for v in values)
    return np.asarray(values, dtype=dtype)


# -- collections -------------------------------------------------------------------------


def default_scenarios(
    n: int = 3, dtypes: tuple[Any, ...] = (np.float64, np.float32), t: float = 0.8
) -> list[Scenario]:
    """Every operator and variant on small problems with analytic references.

    Covers scalar, vector and matrix inputs and outputs, single and batched tangents,
    out-of-place and mutating f, Constant and Cache contexts, for each dtype.

    Args:
        n: vector length (matrices are 2 × n).
        dtypes: floating dtypes of x.
        t: the point for functions of a scalar.
    """
    out: list[Scenario] = []
    for dtype in dtypes:
        out += _scalar_input(np.asarray(t, dtype=dtype))
        if dtype == np.float64:  # a Python number is a 0-d float64 array
            out.append(
                Scenario(
                    "derivative",
                    bump,
                    t,
                    reference=bump_derivatives(t)[:2],
                    name="derivative bump number",
                )
            )
        vec = np.linspace(-0.7, 0.9, n).astype(dtype)
        mat = np.linspace(-0.6, 0.8, 2 * n).reshape(2, n).astype(dtype)
        for x in (vec, mat):
            out += _array_input(x)
        out += _vector_only(vec)
    return out


def _scalar_input(t: np.ndarray) -> list[Scenario]:
    dt, tv = t.dtype, float(t)
    b, c, s = bump_derivatives(tv), curve_derivatives(tv), sheet_derivatives(tv)
    return [
        Scenario("derivative", bump, t, reference=_cast(b[:2], dt)),
        Scenario("derivative", curve, t, reference=_cast(c[:2], dt)),
        Scenario("derivative", sheet, t, reference=_cast(s, dt)),
        Scenario("derivative", curve_mutating, t, y=np.zeros(2, dt), reference=_cast(c[:2], dt)),
        Scenario("second_derivative", bump, t, reference=_cast(b, dt)),
        Scenario("second_derivative", curve, t, reference=_cast(c, dt)),
    ]


def _array_input(x: np.ndarray) -> list[Scenario]:
    dt = x.dtype
    y, g, h = energy_derivatives(x.astype(np.float64))
    wy, jac = wave_derivatives(x.astype(np.float64))
    t1 = np.ones_like(x)
    t2 = np.linspace(1.0, -1.0, x.size).reshape(x.shape).astype(dt)
    push = [_apply(jac, x.shape, t, False) for t in (t1, t2)]
    pull = [_apply(jac, x.shape, t, True) for t in (t1, t2)]
    hvps = [_apply(h, x.shape, t, False) for t in (t1, t2)]
    return [
        Scenario("pushforward", wave, x, t1, reference=_cast((wy, push[0]), dt)),
        Scenario("pushforward", wave, x, (t1, t2), reference=_cast((wy, tuple(push)), dt)),
        Scenario("pullback", wave, x, t1, reference=_cast((wy, pull[0]), dt)),
        Scenario("pullback", wave, x, (t1, t2), reference=_cast((wy, tuple(pull)), dt)),
        Scenario("jacobian", wave, x, reference=_cast((wy, jac), dt)),
        Scenario("gradient", energy, x, reference=_cast((y, g), dt)),
        Scenario("hvp", energy, x, t2, reference=_cast((g, hvps[1]), dt)),
        Scenario("hvp", energy, x, (t1, t2), reference=_cast((g, tuple(hvps)), dt)),
        Scenario("hessian", energy, x, reference=_cast((y, g, h), dt)),
        Scenario(
            "gradient", energy_with_cache, x, contexts=(di.Cache(x),), reference=_cast((y, g), dt)
        ),
    ]


def _vector_only(x: np.ndarray) -> list[Scenario]:
    dt = x.dtype
    wy, jac = wave_derivatives(x.astype(np.float64))
    oy, ojac = outer_sin_derivatives(x.astype(np.float64))
    t = np.cos(x)
    c = np.linspace(1.0, 2.0, x.size).astype(dt)
    scaled = (wy * c, jac * c[:, None])
    return [
        Scenario("jacobian", outer_sin, x, reference=_cast((oy, ojac), dt)),
        Scenario("jacobian", wave_mutating, x, y=np.zeros_like(x), reference=_cast((wy, jac), dt)),
        Scenario(
            "pushforward",
            wave_mutating,
            x,
            t,
            y=np.zeros_like(x),
            reference=_cast((wy, jac @ t), dt),
        ),
        Scenario(
            "pullback", wave_mutating, x, t, y=np.zeros_like(x), reference=_cast((wy, t @ jac), dt)
        ),
        Scenario(
            "jacobian",
            scaled_wave,
            x,
            contexts=(di.Constant(2.0),),
            reference=_cast((2 * wy, 2 * jac), dt),
        ),
        Scenario(
            "jacobian", scaled_wave, x, contexts=(di.Constant(c),), reference=_cast(scaled, dt)
        ),
    ]
