"""Evaluating f at finite-difference stencils: one engine for every operator.

:func:`differentiate_along` estimates ``d^d/ds^d f(x + s·v)`` at s = 0 (d = 1 or 2) for each
direction v of a :class:`Directions`, with an error estimate, and counts the evaluations of
f. f is reached through ``evaluate(points) -> values`` on a batch of points (leading axis),
so one f call per point (:func:`looped`) and a vectorised f (:func:`batched`) share the
code. Everything is local to a call: concurrent calls share nothing. The batch of points
handed to f is a work buffer, reused for the next batch: f must not keep or modify it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from diffinterface.backends._finite_difference_schemes import (
    NODES,
    Scheme,
    lagrange_weights,
    machine_eps,
    real_dtype,
    richardson,
)

__all__ = ["Directions", "Estimate", "Evaluate", "batched", "differentiate_along", "looped"]

Evaluate = Callable[[np.ndarray], Any]
"""``evaluate(points) -> values``: points shaped ``(b,) + x.shape``, values ``(b,) + y.shape``."""
_MEMORY_BUDGET = 2**16  # elements of points per call (512 KiB of float64: f works in cache)


@dataclass(frozen=True)
class Directions:
    """The directions v to differentiate along, made a block of rows at a time.

    ``rows(a, b)`` returns rows a..b-1 dense, shaped (b - a, x.size), or sparse as
    ``(row, column, value)`` arrays (cheaper points: a copy of x and a scatter). With
    ``coordinate`` (c_i per input), v_i = c_i·e_i and the steps actually taken,
    ``(x_i + h·c_i) - x_i``, are known exactly and used in place of the nominal ones.
    """

    count: int
    rows: Callable[[int, int], Any] = field(compare=False)
    coordinate: np.ndarray | None = field(default=None, compare=False)

    @classmethod
    def dense(cls, v: np.ndarray) -> Directions:
        return cls(v.shape[0], lambda a, b: v[a:b])

    @classmethod
    def coordinates(cls, scale: np.ndarray) -> Directions:
        def rows(a: int, b: int) -> Any:
            return np.arange(b - a), np.arange(a, b), scale[a:b]

        return cls(scale.size, rows, coordinate=scale)


@dataclass
class Estimate:
    """Derivatives with an estimate of their absolute error (NaN for one fixed step), and
    what they cost. Shaped ``(directions,) + y.shape`` by :func:`differentiate_along`, like
    the operator's result by the operators."""

    value: np.ndarray
    error: np.ndarray
    evaluations: int  # points at which f was evaluated
    calls: int  # calls of evaluate


def looped(f: Callable[[np.ndarray], Any]) -> Evaluate:
    """``evaluate`` for an f of one point: one call per point."""

    def evaluate(points: np.ndarray) -> np.ndarray:
        return np.stack([np.asarray(f(p)) for p in points])

    return evaluate


def batched(f: Callable[[np.ndarray], Any]) -> Evaluate:
    """``evaluate`` for a vectorised f (a batch of points on a leading axis): one call per
    batch (``differentiate_along``'s ``chunk_size`` bounds the batch)."""

    def evaluate(points: np.ndarray) -> np.ndarray:
        return np.asarray(f(points))

    return evaluate


def differentiate_along(
    evaluate: Evaluate,
    x: np.ndarray,
    directions: Directions,
    scheme: Scheme,
    derivative: int = 1,
    fx: np.ndarray | None = None,
    step_scale: float = 1.0,
    chunk_size: int | None = None,
) -> Estimate:
    """``d^d/ds^d f(x + s·v)`` at s = 0 for each direction v; steps ``h_k · step_scale``
    (coordinate directions carry their own scale).

    Steps are evaluated in rounds, each round one call of ``evaluate`` per ``chunk_size``
    points (by default as many as fit in 512 KiB): first enough steps for one error estimate
    at the full order, then one step per round for the directions not yet converged.
    ``fx = f(x)`` is used where the stencil needs it (one-sided and second differences) and
    evaluated (one more evaluation) when missing. Where f(x) is not finite the result is NaN.
    """
    method = "central" if derivative == 2 and scheme.method == "complex" else scheme.method
    nodes = (1.0,) if method == "complex" else NODES[(method, derivative)]
    evaluations = calls = 0
    if fx is None and (0.0 in nodes or directions.count == 0):  # needed, or for y's shape
        fx = np.asarray(evaluate(x[None]))[0]
        evaluations, calls = 1, 1
    eps = float(np.finfo(real_dtype(x.dtype)).eps)
    rtol = scheme.rtol if scheme.rtol is not None else eps**0.5
    early_stop = scheme.num_steps > 1 and (rtol > 0 or scheme.atol > 0)
    count = min(scheme.levels + 2, scheme.num_steps) if early_stop else scheme.num_steps
    h_all = scheme.steps(scheme.num_steps, derivative, x.dtype) * step_scale
    chunk = chunk_size or max(1, _MEMORY_BUDGET // max(1, x.size))
    d = np.empty((scheme.num_steps, directions.count, 0))  # allocated at the first values
    noise = d
    y_shape = np.shape(fx) if fx is not None else ()
    active, done_steps = np.arange(directions.count), 0
    while True:
        if len(active):
            sampled = _sample(
                evaluate, x, directions, active, h_all[done_steps:count], nodes, method, chunk
            )
            q, n = sampled.quotients(derivative, fx)
            if d.shape[2] == 0:  # f's output size and type, known now (complex for complex x)
                y_shape = sampled.y_shape
                size = (scheme.num_steps, directions.count, math.prod(y_shape))
                d = np.full(size, np.nan, dtype=np.result_type(q.dtype, np.float64))
                noise = np.full(size, np.inf)
            d[done_steps:count, active], noise[done_steps:count, active] = q, n
            evaluations, calls = evaluations + sampled.points, calls + sampled.calls
        done_steps = count
        if directions.count == 0:  # nothing evaluated but f(x): empty results of y's size
            d = noise = np.empty((count, 0, math.prod(y_shape)))
        value, error, best_k = richardson(d[:count], noise[:count], scheme)
        if not early_stop or count >= scheme.num_steps:
            break
        # converged, or no better since two steps (rounding dominates); NaN: no usable step yet
        stalled = (best_k >= 0) & (best_k <= count - 3)
        done = (error <= scheme.atol + rtol * np.abs(value)) | stalled
        active = np.flatnonzero(~done.all(axis=1))
        if len(active) == 0:
            break
        count += 1
    shape = (directions.count, *y_shape)
    if fx is not None and not np.isfinite(fx).all():
        value = np.where(np.isfinite(fx).reshape(-1), value, np.nan)
    return Estimate(value.reshape(shape), error.reshape(shape), evaluations, calls)


@dataclass
class _Values:
    """f at the points of one round: ``f_at`` shaped (nodes, steps, directions, y entries),
    with the node positions ``t`` (nodes, steps, directions) actually taken."""

    f_at: np.ndarray
    t: np.ndarray
    nodes: tuple[float, ...]
    y_shape: tuple[int, ...]
    points: int
    calls: int
    complex_step: bool

    def quotients(self, derivative: int, fx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Difference quotients (steps, directions, y entries) and their rounding noise."""
        eps = machine_eps(self.f_at)
        if self.complex_step:
            q = np.imag(self.f_at[0]) / self.t[0][..., None]
            return q, eps * np.abs(q)
        f_at, t = list(self.f_at), list(self.t)
        if 0.0 in self.nodes:  # the caller evaluated f(x) for such stencils
            assert fx is not None
            at = self.nodes.index(0.0)
            t.insert(at, np.zeros_like(t[0]))
            f_at.insert(at, np.broadcast_to(np.reshape(fx, -1), f_at[0].shape))
        w = lagrange_weights(t, derivative)
        q = sum(wi[..., None] * fi for wi, fi in zip(w, f_at, strict=True))
        n = sum(np.abs(wi[..., None] * fi) for wi, fi in zip(w, f_at, strict=True))
        return np.asarray(q), eps * np.asarray(n)


def _sample(
    evaluate: Evaluate,
    x: np.ndarray,
    directions: Directions,
    active: np.ndarray,
    hs: np.ndarray,
    nodes: tuple[float, ...],
    method: str,
    chunk: int,
) -> _Values:
    """f at x + s·h·v for the moving nodes s, steps h and active directions v, ``chunk``
    points (at least one direction's) per call of ``evaluate``."""
    flat = x.reshape(-1)
    moving = np.array([s for s in nodes if s != 0.0])
    complex_step = method == "complex"
    dtype = np.result_type(x.dtype, np.complex64 if complex_step else np.float32)  # int x: float
    offsets = (1j if complex_step else 1.0) * moving[:, None] * hs[None, :]  # (nodes, steps)
    block = max(1, min(len(active), chunk // offsets.size))
    buffer = np.empty((*offsets.shape, block, flat.size), dtype=dtype)  # reused per block
    if complex_step:  # x + i·h·v: the step is h
        t = np.broadcast_to(hs[None, :, None], (1, len(hs), len(active)))
    else:  # the nominal steps; for coordinates, the steps taken below
        t = np.broadcast_to(offsets[..., None], (*offsets.shape, len(active))).copy()
    f_at: np.ndarray | None = None
    y_shape: tuple[int, ...] = ()
    filled, calls = False, 0  # filled: buffer holds x (sparse rows perturb it, then restore)
    for a in range(0, len(active), block):
        ids = active[a : a + block]
        v = _rows(directions, ids)
        points = buffer[:, :, : len(ids)]
        if isinstance(v, tuple):  # sparse: copies of x, perturbed where v is nonzero
            if not filled:
                buffer[...] = flat
                filled = True
            at = (np.arange(offsets.size)[:, None] * block + v[0]) * flat.size + v[1]
            buffer.reshape(-1)[at.ravel()] += np.outer(offsets.reshape(-1), v[2]).ravel()
        else:
            np.add(flat, offsets[..., None, None] * v, out=points, casting="unsafe")
        values = np.asarray(evaluate(points.reshape((-1, *x.shape))))  # a copy if sliced
        calls += 1
        if f_at is None:
            y_shape = values.shape[1:]
            f_at = np.empty((*offsets.shape, len(active), math.prod(y_shape)), values.dtype)
        f_at[:, :, a : a + len(ids)] = values.reshape((*offsets.shape, len(ids), -1))
        if directions.coordinate is not None and not complex_step:  # the steps taken, exactly
            taken = np.real(points[:, :, np.arange(len(ids)), ids] - flat[ids])
            t[:, :, a : a + len(ids)] = taken / directions.coordinate[ids]
        if isinstance(v, tuple):  # back to x
            buffer.reshape(-1)[at.ravel()] = np.tile(flat[v[1]], offsets.size)
    assert f_at is not None  # active is not empty
    size = offsets.size * len(active)
    return _Values(f_at, t, nodes, y_shape, size, calls, complex_step)


def _rows(directions: Directions, ids: np.ndarray) -> Any:
    if len(ids) and ids[-1] - ids[0] + 1 == len(ids):  # contiguous, the usual case
        return directions.rows(int(ids[0]), int(ids[-1]) + 1)
    parts = [directions.rows(int(i), int(i) + 1) for i in ids]
    if isinstance(parts[0], tuple):
        return tuple(
            np.concatenate([p[0] + j for j, p in enumerate(parts)])
            if k == 0
            else np.concatenate([p[k] for p in parts])
            for k in range(3)
        )
    return np.concatenate(parts)
