"""Finite-difference numerics: stencils, step sequences and Richardson extrapolation with
an error estimate per entry. Pure NumPy, independent of f and of how f is called.

A :class:`Scheme` names a difference method, the order after extrapolation, and the steps
``h_k = initial_step · scale(x) / step_ratio**k``. :func:`lagrange_weights` turns the stencil
nodes actually taken into difference weights; an :class:`Extrapolation` adds the difference
quotients of one step after another to a Richardson table, estimates each entry's error
(its difference to the previous step's entry at the same order, plus the rounding error of
f carried through the table) and keeps, per output entry, the extrapolant of least
estimated error. ``_finite_difference_sampling`` evaluates f at the stencils;
``_finite_difference_operators`` builds the operators.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from diffinterface._errors import InvalidArgumentError

__all__ = [
    "EXPANSION",
    "NODES",
    "Extrapolation",
    "Method",
    "Scheme",
    "lagrange_weights",
    "machine_eps",
    "real_dtype",
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
    len(t) - 1, for nodes t (each an array: one node position per step and direction):
    two nodes for a first derivative, three for a second one or for a first derivative
    from a second difference's nodes."""
    if len(t) == 2:
        return [-1 / (t[1] - t[0]), 1 / (t[1] - t[0])]
    a, b, c = t
    if derivative == 1:  # the interpolating parabola's slope at 0
        return [
            -(b + c) / ((a - b) * (a - c)),
            -(a + c) / ((b - a) * (b - c)),
            -(a + b) / ((c - a) * (c - b)),
        ]
    return [2 / ((a - b) * (a - c)), 2 / ((b - a) * (b - c)), 2 / ((c - a) * (c - b))]


class Extrapolation:
    """A Richardson table built one step at a time, in work arrays, for a block of
    entries: after each step (:meth:`add`), per entry the extrapolant of least estimated
    error so far (:attr:`value`, :attr:`error`, :attr:`step`).

    Level m eliminates the h^(p + (m-1)q) term: T[k,m] = T[k,m-1] + (T[k,m-1] -
    T[k-1,m-1]) / (r_m - 1), r_m = step_ratio^(p + (m-1)q). Entry (k, m) is estimated to err
    by |T[k,m] - T[k-1,m]| (an overestimate of its truncation error: the previous entry's)
    plus its rounding noise carried through the table. Only the previous row is kept. One
    step alone has no estimate (NaN). NaN entries (f not finite there) are never chosen.
    """

    def __init__(self, arrays: Any, name: str, shape: tuple[int, ...], dtype: Any, scheme: Scheme):
        p, q = EXPANSION[scheme.method]
        self.levels = scheme.levels
        self.ratios = [scheme.step_ratio ** (p + (m - 1) * q) for m in range(self.levels + 1)]
        rows = (self.levels + 1, *shape)
        self.rows = [arrays.take(f"{name}.T{i}", rows, dtype) for i in (0, 1)]
        self.noise = [arrays.take(f"{name}.N{i}", rows, np.float64) for i in (0, 1)]
        self.value = arrays.take(f"{name}.value", shape, dtype)
        self.error = arrays.take(f"{name}.error", shape, np.float64)
        self.step = arrays.take(f"{name}.step", shape, np.int64)
        self._diff = arrays.take(f"{name}.diff", shape, dtype)
        self._err = arrays.take(f"{name}.err", shape, np.float64)
        self._better = arrays.take(f"{name}.better", shape, np.bool_)
        self.value.fill(np.nan)
        self.error.fill(np.inf)
        self.step.fill(-1)
        self.count = 0

    def add(self, d: np.ndarray, noise: np.ndarray) -> None:
        """The next (smaller) step's difference quotients and their rounding noise."""
        k = self.count
        cur, prev = self.rows[k % 2], self.rows[(k + 1) % 2]
        cur_n, prev_n = self.noise[k % 2], self.noise[(k + 1) % 2]
        cur[0], cur_n[0] = d, noise
        if k == 0:
            self.value[...] = d  # one step alone: the difference, no estimate
            self.error.fill(np.nan)
        err, diff, better = self._err, self._diff, self._better
        with np.errstate(invalid="ignore", over="ignore"):
            for m in range(1, min(self.levels, k) + 1):
                r = self.ratios[m]
                np.subtract(cur[m - 1], prev[m - 1], out=cur[m])
                cur[m] *= 1 / (r - 1)
                cur[m] += cur[m - 1]
                np.multiply(cur_n[m - 1], r / (r - 1), out=cur_n[m])
                np.multiply(prev_n[m - 1], 1 / (r - 1), out=err)
                cur_n[m] += err
            if k == 1:
                self.error.fill(np.inf)
            for m in range(min(self.levels, k - 1) + 1 if k else 0):
                np.subtract(cur[m], prev[m], out=diff)
                np.abs(diff, out=err)
                err += cur_n[m]
                np.less(err, self.error, out=better)  # NaN: never better
                np.copyto(self.value, cur[m], where=better)
                np.copyto(self.error, err, where=better)
                np.copyto(self.step, k, where=better)
        self.count = k + 1

    def finish(self) -> None:
        """Entries that never had a finite estimate: NaN error (and value, past one step)."""
        if self.count > 1:
            unknown = np.isinf(self.error, out=self._better)
            self.error[unknown] = np.nan
            self.value[unknown] = np.nan


def machine_eps(a: np.ndarray) -> float:
    return float(np.finfo(real_dtype(a.dtype)).eps) if a.dtype.kind in "fc" else 2.0**-52


def real_dtype(dtype: Any) -> Any:
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        return np.finfo(dtype).dtype
    return dtype if dtype.kind == "f" else np.dtype(np.float64)
