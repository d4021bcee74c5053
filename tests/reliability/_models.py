"""Random model functions for the property tests, and a high-accuracy reference.

A model is a short program of array operations (``OPS``), written once with
``di.array_namespace`` so that it runs under every backend. Some operations mix entries
(a sum broadcast back, a sum over the first axis) and one weights entries by their
position in C order, so a backend that confuses layouts (Fortran order, strided views)
gets a wrong number, not a lucky right one. All operations keep values moderate on
inputs in [-1.5, 1.5].

The reference derivatives are Richardson-extrapolated central differences on float64
NumPy (error ≈ 1e-9 for first derivatives, ≈ 1e-7 for second), independent of the
library's own finite-difference backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import diffinterface as di


def _positions(v: Any, xp: Any) -> Any:
    """1, 1.1, 1.2, ... laid out in v's shape in C order, in v's array type and dtype."""
    n = math.prod(v.shape)
    return xp.reshape(1.0 + 0.1 * xp.arange(n, dtype=v.dtype), v.shape)


def _sum_over_first_axis(v: Any, xp: Any) -> Any:
    return v + 0.2 * xp.sum(v, axis=0) if v.ndim else v


OPS: dict[str, Callable[[Any, Any], Any]] = {
    "sin": lambda v, xp: xp.sin(v),
    "tanh": lambda v, xp: xp.tanh(v),
    "exp_tanh": lambda v, xp: xp.exp(xp.tanh(v)),
    "half_square": lambda v, xp: 0.5 * v * v,
    "log1p_square": lambda v, xp: xp.log1p(v * v),
    "hypot_one": lambda v, xp: xp.sqrt(1.0 + v * v),
    "affine": lambda v, xp: 0.7 * v - 0.3,
    "v_cos_v": lambda v, xp: v * xp.cos(v),
    "plus_total": lambda v, xp: v + 0.1 * xp.sum(v),
    "plus_first_axis_sum": _sum_over_first_axis,
    "by_position": lambda v, xp: v * _positions(v, xp),
}


@dataclass(frozen=True)
class Model:
    """``ops`` applied in order; the output is that array (``vector``), optionally
    flattened, or a position-weighted sum of it (``scalar``)."""

    ops: tuple[str, ...]
    flatten: bool = False
    out_shape: tuple[int, ...] = ()  # derivative models: the shape f(x) takes

    def body(self, v: Any) -> Any:
        xp = di.array_namespace(v)
        for name in self.ops:
            v = OPS[name](v, xp)
        return v

    def vector(self, x: Any) -> Any:
        v = self.body(x)
        return di.array_namespace(v).reshape(v, (-1,)) if self.flatten else v

    def scalar(self, x: Any) -> Any:
        v = self.body(x)
        xp = di.array_namespace(v)
        return xp.sum(v * _positions(v, xp))

    def of_scalar(self, x: Any) -> Any:
        """A function of a scalar x with an array output of shape ``out_shape``."""
        xp = di.array_namespace(x)
        n = math.prod(self.out_shape)
        spread = xp.reshape(1.0 + 0.25 * xp.arange(n, dtype=x.dtype), self.out_shape)
        return self.body(x * spread)

    def __repr__(self) -> str:
        return f"Model({'∘'.join(reversed(self.ops)) or 'identity'}, flatten={self.flatten})"


# --------------------------------------------------------------------------------------
# reference derivatives


def _richardson(g: Callable[[float], np.ndarray], h: float = 0.05) -> np.ndarray:
    """d/ds g(s) at s = 0 by central differences at h, h/2, h/4, extrapolated twice."""
    d = [(g(h / k) - g(-h / k)) / (2 * h / k) for k in (1, 2, 4)]
    r1, r2 = (4 * d[1] - d[0]) / 3, (4 * d[2] - d[1]) / 3
    return (16 * r2 - r1) / 15


def reference_jacobian(f: Callable[[np.ndarray], Any], x: np.ndarray) -> np.ndarray:
    """J of f at x, shape ``f(x).shape + x.shape``, on float64 NumPy."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(f(x))
    cols = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = 1.0
        e = e.reshape(x.shape)
        cols.append(_richardson(lambda s, e=e: np.asarray(f(x + s * e), dtype=np.float64)))
    if not cols:
        return np.zeros(y.shape + x.shape)
    return np.moveaxis(np.stack(cols), 0, -1).reshape(y.shape + x.shape)


def reference_second(f: Callable[[np.ndarray], Any], x: np.ndarray) -> np.ndarray:
    """Second derivatives as the reference Jacobian of the reference Jacobian: the Hessian
    of a scalar f, or d²f/dx² (shape of f(x)) for a scalar x."""
    return reference_jacobian(lambda v: reference_jacobian(f, v), x)
