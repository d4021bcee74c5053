"""Finite-difference numerics: stencils, step sequences and Richardson extrapolation with
an error estimate per entry. Pure NumPy, independent of f and of how f is called.

A :class:`Scheme` names a difference method, the order after extrapolation, and the steps
``h_k = initial_step · scale(x) / step_ratio**k``. :func:`lagrange_weights` turns the stencil
nodes actually taken into difference weights; :func:`richardson` extrapolates a table of
difference quotients over the steps, estimates each entry's error (its difference to the
previous step's entry at the same order, plus the rounding error of f carried through the
table) and keeps, per output entry, the extrapolant of least estimated error.
``_finite_difference_sampling`` evaluates f at the stencils; ``_finite_difference_operators``
builds the operators.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from diffinterface._errors import InvalidArgumentError

__all__ = [
    "EXPANSION",
    "NODES",
    "Method",
    "Scheme",
    "lagrange_weights",
    "machine_eps",
    "real_dtype",
    "richardson",
]

Method = Literal["central", "forward", "backward", "complex"]

# Stencil nodes, in units of the step, for each (method, derivative order); 0 is x itself.
NODES: dict[tuple[str, int], tuple[float, ...]] = {
    ("central", 1): (1.0, -1.0),
    ("forward", 1): (0.0, 1.0),
    ("backward", 1): (0.0, -1.0),
    ("central", 2): (1.0, 0.0, -1.0),
    ("forward", 2): (0.0, 1.0, 2.0),
    ("backward", 2): (0.0, -1.0, -2.0),
}
# The truncation error of one difference is c1·h^p + c2·h^(p+q) + ...: (p, q) per method.
EXPANSION = {"central": (2, 2), "complex": (2, 2), "forward": (1, 1), "backward": (1, 1)}


@dataclass(frozen=True)
class Scheme:
    """How derivatives are estimated; frozen and hashable, so a preparation can keep it.

    Attributes:
        method: "central", "forward" / "backward" (one-sided; for points where f exists on
            one side only) or "complex" (complex step: f must accept complex x; exact to
            rounding at small steps). Second derivatives of "complex" use central differences.
        order: accuracy order of the most extrapolated entry, a multiple of the expansion's
            step (2 for central and complex, 1 for one-sided). ``order`` equal to the base
            order (2 central, 1 one-sided) means no extrapolation.
        num_steps: at most this many steps (each costs 2 evaluations per direction central).
        initial_step: the largest step, relative to ``step_scale(x)`` (None: 0.25, or for
            one fixed step the optimum of :meth:`steps`).
        step_ratio: ``h_k = initial_step · scale / step_ratio**k``.
        rtol, atol: stop adding steps once every entry's error estimate is below
            ``atol + rtol·|derivative|`` (``rtol=None``: √eps of x's dtype). ``rtol=0`` and
            ``atol=0`` evaluate all ``num_steps`` at once (one batch for a vectorised f).
        scaling: "log" scales steps by ``max(log(e + |x|), eps^(1/2)·|x|)`` (adaptive
            default); "abs" by ``max(1, |x|)`` (the fixed steps' rule).
    """

    method: Method = "central"
    order: int = 8
    num_steps: int = 8
    initial_step: float | None = None
    step_ratio: float = 3.0
    rtol: float | None = None
    atol: float = 0.0
    scaling: Literal["log", "abs"] = "log"

    def __post_init__(self) -> None:
        if self.method not in EXPANSION:
            raise InvalidArgumentError(
                f"method={self.method!r}: use 'central', 'forward', 'backward' or 'complex'."
            )
        p, q = EXPANSION[self.method]
        if self.order < p or (self.order - p) % q:
            raise InvalidArgumentError(
                f"order={self.order} for method={self.method!r}: use {p}, {p + q}, {p + 2 * q}, ..."
            )
        if self.num_steps < 1 or not self.step_ratio > 1 or not (self.initial_step or 1) > 0:
            raise InvalidArgumentError(
                f"num_steps={self.num_steps}, step_ratio={self.step_ratio}, initial_step="
                f"{self.initial_step}: need num_steps ≥ 1, step_ratio > 1, initial_step > 0."
            )

    @classmethod
    def fixed(cls, method: Method = "central", step: float | None = None) -> Scheme:
        """One step, no extrapolation, no error estimate: the classical difference with
        ``h = step · max(1, |x|)`` (by default the step of :meth:`steps`)."""
        return cls(method, EXPANSION[method][0], 1, step, scaling="abs")

    @property
    def levels(self) -> int:
        """Extrapolation levels: the number of error terms cancelled."""
        p, q = EXPANSION[self.method]
        return (self.order - p) // q

    def steps(self, count: int, derivative: int = 1, dtype: Any = np.float64) -> np.ndarray:
        """The first ``count`` relative steps, largest first. Without ``initial_step``, one
        fixed step balances truncation and rounding: eps^(1/3) for central first
        derivatives, eps^(1/2) one-sided, eps^(1/2) complex (exact to rounding there),
        eps^(1/4) central second derivatives, eps^(1/3) one-sided; and 0.25 adaptive."""
        h0 = self.initial_step
        if h0 is None:
            eps = float(np.finfo(real_dtype(dtype)).eps)
            one_sided = self.method in ("forward", "backward")
            exponent = {1: 1 / 2 if one_sided else 1 / 3, 2: 1 / 3 if one_sided else 1 / 4}
            complex_first = self.method == "complex" and derivative == 1
            h0 = eps**0.5 if complex_first else eps ** exponent[derivative]
            h0 = h0 if self.num_steps == 1 else 0.25
        return h0 / self.step_ratio ** np.arange(count)

    def step_scale(self, x: np.ndarray) -> np.ndarray:
        a = np.abs(x).astype(np.float64)
        if self.scaling == "abs":
            return np.maximum(1.0, a)
        eps = float(np.finfo(real_dtype(x.dtype)).eps)
        return np.maximum(np.log(np.e + a), eps**0.5 * a)


def lagrange_weights(t: list[np.ndarray], derivative: int) -> list[np.ndarray]:
    """Weights w_j with Σ w_j f(s_j) = f^(d)(0) exactly for polynomials of degree
    len(t) - 1, for nodes t (each an array: one node position per step and direction)."""
    if derivative == 1:  # two nodes
        return [-1 / (t[1] - t[0]), 1 / (t[1] - t[0])]
    a, b, c = t
    return [2 / ((a - b) * (a - c)), 2 / ((b - a) * (b - c)), 2 / ((c - a) * (c - b))]


def richardson(
    d: np.ndarray, noise: np.ndarray, scheme: Scheme
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Richardson table over steps (axis 0) for every entry (axis 1..), and per entry
    the extrapolant of least estimated error: (value, error, step index or -1).

    Level m eliminates the h^(p + (m-1)q) term. Entry (k, m) is estimated to err by
    |T[k,m] - T[k-1,m]| (an overestimate of its truncation error: the previous entry's)
    plus its propagated rounding noise. One step alone has no estimate (NaN).
    """
    k_count, shape = d.shape[0], d.shape[1:]
    d, noise = d.reshape(k_count, -1), noise.reshape(k_count, -1)
    if k_count == 1:
        return (
            d[0].reshape(shape),
            np.full(shape, np.nan),
            np.where(np.isnan(d[0]), -1, 0).reshape(shape),
        )
    p, q = EXPANSION[scheme.method]
    table, table_noise = d, noise
    values, errors, steps = [], [], []
    with np.errstate(invalid="ignore"):  # NaN where f was not finite: never chosen
        for m in range(min(scheme.levels, k_count - 2) + 1):
            if m:
                r = scheme.step_ratio ** (p + (m - 1) * q)
                table = table[1:] + (table[1:] - table[:-1]) / (r - 1)
                table_noise = table_noise[1:] * r / (r - 1) + table_noise[:-1] / (r - 1)
            values.append(table[1:])
            errors.append(np.abs(table[1:] - table[:-1]) + table_noise[1:])
            steps.append(np.arange(m + 1, k_count))
    error = np.concatenate(errors)
    error[np.isnan(error)] = np.inf
    i = np.argmin(error, axis=0)  # ties: the lower order, then the larger step
    entries = np.arange(d.shape[1])
    best, best_error = np.concatenate(values)[i, entries], error[i, entries]
    best_k = np.where(np.isinf(best_error), -1, np.concatenate(steps)[i])
    best_error[np.isinf(best_error)] = np.nan
    return best.reshape(shape), best_error.reshape(shape), best_k.reshape(shape)


def machine_eps(a: np.ndarray) -> float:
    return float(np.finfo(real_dtype(a.dtype)).eps) if a.dtype.kind in "fc" else 2.0**-52


def real_dtype(dtype: Any) -> Any:
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        return np.finfo(dtype).dtype
    return dtype if dtype.kind == "f" else np.dtype(np.float64)
