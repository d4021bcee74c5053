"""Derivatives along directions from f's values at finite-difference stencils: one engine
for every operator.

:func:`differentiate_along` estimates ``d^d/ds^d f(x + s·v)`` at s = 0 (d = 1 or 2) for each
direction v of a :class:`~diffinterface.backends._finite_difference_points.Directions`,
with an error estimate, and counts the evaluations of f. The points are evaluated by a
``Sampler`` (``_finite_difference_points``), in rounds of steps; the difference quotients
of each step go into a Richardson table (``_finite_difference_schemes.Extrapolation``).
Results are views of the kernel's work arrays, valid until its next call on the thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from diffinterface.backends._finite_difference_points import (
    MEMORY_BUDGET,
    Directions,
    Evaluate,
    Sampler,
    WorkArrays,
)
from diffinterface.backends._finite_difference_schemes import (
    NODES,
    Extrapolation,
    Scheme,
    lagrange_weights,
    machine_eps,
    real_dtype,
)

__all__ = ["Estimate", "differentiate_along"]


@dataclass
class Estimate:
    """Derivatives with an estimate of their absolute error (NaN for one fixed step), and
    what they cost. Shaped ``(directions,) + y.shape`` by :func:`differentiate_along` (views
    of its work arrays), like the operator's result by the operators."""

    value: np.ndarray
    error: np.ndarray | None  # None where not asked for
    evaluations: int  # points at which f was evaluated
    calls: int  # calls of evaluate
    fx: np.ndarray | None = None  # f(x), where evaluated or given
    first: Estimate | None = None  # the first derivative from the same points


def differentiate_along(
    evaluate: Evaluate,
    x: np.ndarray,
    directions: Directions,
    scheme: Scheme,
    derivative: int = 1,
    fx: np.ndarray | None = None,
    step_scale: float = 1.0,
    chunk_size: int | None = None,
    *,
    value: bool = False,
    first: bool = False,
    y_like: Any = None,
    arrays: WorkArrays | None = None,
) -> Estimate:
    """``d^d/ds^d f(x + s·v)`` at s = 0 for each direction v; steps ``h_k · step_scale``
    (coordinate directions carry their own scale).

    Steps are evaluated in rounds, each round one call of ``evaluate`` per ``chunk_size``
    points (by default as many as fit in 512 KiB): first enough steps for one error estimate
    at the full order, then one step per round for the directions not yet converged.
    ``fx = f(x)`` is used where the stencil needs it (one-sided and second differences);
    missing, it is evaluated in the first call (also with ``value``). With ``first`` (a
    central second difference), the first derivative from the same points comes too
    (``Estimate.first``). ``y_like``: something with f's output shape and dtype, when
    known (else learnt from the first call). Where f(x) is not finite the result is NaN.
    """
    arrays = arrays or WorkArrays()
    method = "central" if derivative == 2 and scheme.method == "complex" else scheme.method
    nodes = (1.0,) if method == "complex" else NODES[(method, derivative)]
    if first and nodes != NODES[("central", 2)]:
        raise ValueError("first derivatives come from central second differences only")
    with_x = fx is None and (0.0 in nodes or value or directions.count == 0)
    y_like = fx if fx is not None else y_like
    eps = machine_eps(x) if y_like is None else max(machine_eps(x), machine_eps(np.asarray(y_like)))
    rtol = (
        scheme.rtol if scheme.rtol is not None else float(np.finfo(real_dtype(x.dtype)).eps) ** 0.5
    )
    early_stop = scheme.num_steps > 1 and (rtol > 0 or scheme.atol > 0)
    count = min(scheme.levels + 2, scheme.num_steps) if early_stop else scheme.num_steps
    h_all = scheme.steps(scheme.num_steps, derivative, x.dtype) * step_scale
    sampler = Sampler(evaluate, x, directions, nodes, method == "complex", arrays, y_like)
    chunk = chunk_size or max(1, MEMORY_BUDGET // max(1, x.size))
    q_dtype = np.complex128 if x.dtype.kind == "c" else np.float64
    tables: list[tuple[int, Extrapolation]] = []
    active: np.ndarray | None = None
    evaluations = calls = done = 0
    while True:
        f_at, t, fx = sampler.sample(active, h_all[done:count], with_x and not done, chunk, fx)
        evaluations, calls = evaluations + sampler.points, calls + sampler.calls
        shape = (directions.count, sampler.m)
        if not tables:
            tables = [(derivative, Extrapolation(arrays, "d", shape, q_dtype, scheme))]
            if first:
                tables.append((1, Extrapolation(arrays, "d1", shape, q_dtype, scheme)))
        for order, table in tables:
            q, noise = _quotients(f_at, t, nodes, order, fx, eps, arrays, q_dtype)
            for j in range(count - done):
                row, row_noise = q[:, j], noise[:, j]
                if active is not None:  # the rows of the directions evaluated, NaN elsewhere
                    full = arrays.take("row", shape, q_dtype)
                    full_noise = arrays.take("row noise", shape, float)
                    full.fill(np.nan)
                    full[active], full_noise[active] = row, row_noise
                    row, row_noise = full, full_noise
                table.add(row, row_noise)
        done = count
        if not early_stop or count >= scheme.num_steps:
            break
        active = np.flatnonzero(~_converged(tables, arrays, rtol, scheme.atol, shape))
        if len(active) == 0:
            break
        count += 1
    y_shape = sampler.y_shape
    results = []
    for _, table in tables:
        table.finish()
        if fx is not None and not np.isfinite(fx).all():
            table.value[:, ~np.isfinite(fx).reshape(-1)] = np.nan
        shape = (directions.count, *y_shape)
        results.append((table.value.reshape(shape), table.error.reshape(shape)))
    est = Estimate(*results[0], evaluations, calls, None if fx is None else fx.reshape(y_shape))
    if first:
        est.first = Estimate(*results[1], 0, 0)
    return est


def _converged(
    tables: list[tuple[int, Extrapolation]],
    arrays: WorkArrays,
    rtol: float,
    atol: float,
    shape: tuple[int, int],
) -> np.ndarray:
    """Per direction: every entry's estimate within ``atol + rtol·|value|``, or no better
    since two steps (rounding dominates)."""
    done = np.ones(shape[0], dtype=bool)
    bound, ok = arrays.take("bound", shape, float), arrays.take("ok", shape, bool)
    stalled = arrays.take("stalled", shape, bool)
    for _, table in tables:
        np.abs(table.value, out=bound)
        bound *= rtol
        bound += atol
        np.greater_equal(table.step, 0, out=stalled)
        np.less_equal(table.step, table.count - 3, out=ok)
        stalled &= ok
        np.less_equal(table.error, bound, out=ok)
        ok |= stalled
        done &= ok.all(axis=1)
    return done


def _quotients(
    f_at: np.ndarray,
    t: np.ndarray,
    nodes: tuple[float, ...],
    derivative: int,
    fx: np.ndarray | None,
    eps: float,
    arrays: WorkArrays,
    dtype: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Difference quotients of a round (directions × steps × y entries), in work arrays,
    and their rounding noise eps·Σ|w_i f_i|."""
    a, _, steps, m = f_at.shape
    shape = (a, steps, m)
    q, noise = arrays.take(f"q{derivative}", shape, dtype), arrays.take("noise", shape, float)
    if nodes == (1.0,):  # complex step: Im f(x + ih v) / h
        np.divide(f_at[:, 0].imag, t[:, 0, :, None], out=q)
        np.abs(q, out=noise)
        noise *= eps
        return q, noise
    term, size = arrays.take("term", shape, dtype), arrays.take("size", shape, float)
    positions, values, moving = [], [], 0
    for s in nodes:
        if s == 0.0:
            assert fx is not None  # evaluated in the first call for such stencils
            positions.append(np.zeros((a, steps)))
            values.append(np.reshape(fx, (1, 1, m)))
        else:
            positions.append(t[:, moving])
            values.append(f_at[:, moving])
            moving += 1
    with np.errstate(divide="ignore", invalid="ignore"):  # a step lost in x's rounding: NaN
        weights = lagrange_weights(positions, derivative)
    for i, (w, v) in enumerate(zip(weights, values, strict=True)):
        np.multiply(v, w[:, :, None], out=q if i == 0 else term)
        if i == 0:
            np.abs(q, out=noise)
        else:
            q += term
            np.abs(term, out=size)
            noise += size
    noise *= eps
    return q, noise
