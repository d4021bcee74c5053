"""Points and f's values for finite differences: the work arrays, the directions, how f
is called (:func:`looped`: one call per point; :func:`batched`: a vectorised f, one call per
batch) and :class:`Sampler`, which evaluates f at x + s·h·v for the nodes s, steps h and
directions v of one round of ``_finite_difference_sampling``, f(x) itself in the first call
where asked.

Work arrays live in a :class:`WorkArrays` per kernel and thread, made on a thread's first
call and reused: concurrent calls share nothing, and a call allocates nothing the size of
its result. The batch of points handed to f is a work buffer, reused for the next batch: f
must not keep it or write into it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from diffinterface._errors import InvalidArgumentError

__all__ = ["MEMORY_BUDGET", "Directions", "Evaluate", "Sampler", "WorkArrays", "batched", "looped"]

Evaluate = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]
"""``evaluate(points, out)``: f at each point of ``points`` (shaped ``(b,) + x.shape``)
written into the rows of ``out`` (``(b, y.size)``) and returned; ``out=None``: a new array."""
#: elements of points per call by default (512 KiB of float64: f's temporaries stay in cache)
MEMORY_BUDGET = 2**16


class WorkArrays:
    """The work arrays of one kernel for the calling thread: each made on the thread's first
    use of its name (grown when a call needs more) and reused by its later calls.
    :meth:`part` gives arrays of their own to one part of the kernel (a second engine call
    whose results must not overwrite the first's)."""

    def __init__(self, local: threading.local | None = None, prefix: str = "") -> None:
        self._local = local or threading.local()
        self._prefix = prefix

    def part(self, name: str) -> WorkArrays:
        return WorkArrays(self._local, f"{self._prefix}{name}/")

    def memo(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """What ``make()`` returns, made once per thread for ``key`` (index arrays that
        depend on shapes only)."""
        made: dict[Any, Any] = self._local.__dict__.setdefault("memo", {})
        key = (self._prefix, *key)
        if key not in made:
            made[key] = make()
        return made[key]

    def take(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        try:
            made: dict[Any, np.ndarray] = self._local.arrays
        except AttributeError:
            made = self._local.arrays = {}
        key = (self._prefix, name, dtype)
        size = math.prod(shape)
        buffer = made.get(key)
        if buffer is None or buffer.size < size:
            buffer = made[key] = np.empty(max(size, 1), dtype)
        return buffer[:size].reshape(shape)


@dataclass(frozen=True)
class Directions:
    """The directions v to differentiate along, made a block of rows at a time.

    ``rows(a, b)`` returns rows a..b-1 dense, shaped (b - a, x.size), or with ``sparse`` as
    ``(row, column, value)`` arrays, sorted by row (cheaper points: a copy of x and a
    scatter). With
    ``coordinate`` (c_i per input), v_i = c_i·e_i and the steps actually taken,
    ``(x_i + h·c_i) - x_i``, are known exactly and used in place of the nominal ones.
    """

    count: int
    rows: Callable[[int, int], Any] = field(compare=False)
    coordinate: np.ndarray | None = field(default=None, compare=False)
    sparse: bool = False  # rows come as (row, column, value)

    @classmethod
    def dense(cls, v: np.ndarray) -> Directions:
        return cls(v.shape[0], lambda a, b: v[a:b])

    @classmethod
    def coordinates(cls, scale: np.ndarray) -> Directions:
        def rows(a: int, b: int) -> Any:
            return np.arange(b - a), np.arange(a, b), scale[a:b]

        return cls(scale.size, rows, coordinate=scale, sparse=True)


def looped(f: Callable[..., Any], *consts: Any) -> Evaluate:
    """``evaluate`` for an f of one point, ``f(point, *consts)``: one call per point."""

    def evaluate(points: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        if out is None:
            return np.stack([np.asarray(f(points[i, ...], *consts)) for i in range(len(points))])
        for i in range(len(points)):
            value = f(points[i, ...], *consts)
            out[i].reshape(np.shape(value))[...] = value
        return out

    return evaluate


def batched(f: Callable[..., Any], *consts: Any) -> Evaluate:
    """``evaluate`` for a vectorised f (a batch of points on a leading axis, outputs on the
    leading axis of its result): one call per batch (``chunk_size`` bounds the batch).

    Raises:
        InvalidArgumentError: f did not return one output per point.
    """

    def evaluate(points: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        values = np.asarray(f(points, *consts))
        if values.shape[:1] != points.shape[:1] or (out is not None and values.size != out.size):
            want = (
                f"{len(points)} outputs" if out is None else f"shape {(len(points), out.shape[1])}"
            )
            raise InvalidArgumentError(
                f"With vectorized=True f receives a batch of points on a leading axis (here "
                f"shape {points.shape}) and must return one output per point, stacked on "
                f"the leading axis ({want} here, or that many outputs of f's shape); it "
                f"returned shape {values.shape}. Vectorise f (e.g. index x[..., i] rather "
                "than x[i], reduce over axis=-1), or use vectorized=False."
            )
        if out is None:
            return values
        out.reshape(values.shape)[...] = values
        return out

    return evaluate


class Sampler:
    """f at x + s·h·v for the moving nodes s, the steps h of a round and the active
    directions v, into work arrays: ``f_at`` shaped (directions, nodes, steps, y entries)
    and the node positions ``t`` actually taken (directions, nodes, steps)."""

    def __init__(
        self,
        evaluate: Evaluate,
        x: np.ndarray,
        directions: Directions,
        nodes: tuple[float, ...],
        complex_step: bool,
        arrays: WorkArrays,
        y_like: Any,
    ) -> None:
        self.evaluate, self.x, self.flat, self.directions = evaluate, x, x.reshape(-1), directions
        self.moving = np.array([s for s in nodes if s != 0.0])
        self.complex_step, self.arrays = complex_step, arrays
        complex_values = complex_step or x.dtype.kind == "c"
        self.value_dtype = np.complex128 if complex_values else np.float64
        # points in x's dtype (int x: floating point; a complex step: complex)
        self.point_dtype = np.result_type(x.dtype, np.complex64 if complex_step else np.float32)
        self.y_shape: tuple[int, ...] = () if y_like is None else tuple(np.shape(y_like))
        self.m: int = -1 if y_like is None else math.prod(self.y_shape)
        self.points = self.calls = 0

    def sample(
        self, active: np.ndarray | None, hs: np.ndarray, with_x: bool, chunk: int, fx: Any
    ) -> tuple[np.ndarray, np.ndarray, Any]:
        """One round: (f_at, t, f(x)); f(x) evaluated first in the first call with
        ``with_x``."""
        d = self.directions
        count = d.count if active is None else len(active)
        per = len(self.moving) * len(hs)
        offsets = self.moving[:, None] * hs[None, :]  # (nodes, steps), in units of v
        block = max(1, min(count, chunk // max(per, 1)))
        n = self.flat.size
        points = self.arrays.take("points", (1 + block * per, n), self.point_dtype)
        t = self.arrays.take("t", (count, *offsets.shape), float)
        t[...] = hs if self.complex_step else offsets
        self.points = self.calls = 0
        f_at: np.ndarray | None = None
        if self.m >= 0:
            f_at = self.arrays.take("f_at", (1 + count * per, self.m), self.value_dtype)
        if count == 0 and with_x:  # no direction: f(x) alone, for its value and shape
            points[0] = self.flat
            f_at = self._evaluate(points[:1], f_at, 0, count, per)
        step = 1j if self.complex_step else 1.0
        ids_all = np.arange(count) if active is None else active
        if d.sparse:  # copies of x, each perturbed where its direction is nonzero
            at, moved, base, bounds = self._scatter(ids_all, offsets * step, block, per, t)
            points[1:] = self.flat
            scattered = points[1:].reshape(-1)
        for k, a in enumerate(range(0, count, block)):
            b = min(block, count - a)
            if d.sparse:
                chunk_at = at[bounds[k] : bounds[k + 1]]
                scattered[chunk_at] = moved[bounds[k] : bounds[k + 1]]
            else:
                region = points[1 : 1 + b * per].reshape(b, *offsets.shape, n)
                v = _rows(d, ids_all[a : a + b])
                for i, j in np.ndindex(*offsets.shape):
                    np.multiply(v, step * offsets[i, j], out=region[:, i, j])
                    region[:, i, j] += self.flat
            first_call = with_x and a == 0
            if first_call:
                points[0] = self.flat
            lo = 0 if first_call else 1 + a * per
            batch = points[0 if first_call else 1 : 1 + b * per]
            f_at = self._evaluate(batch, f_at, lo, count, per)
            if d.sparse:  # back to x
                scattered[chunk_at] = base[bounds[k] : bounds[k + 1]]
        assert f_at is not None
        if with_x:
            fx = f_at[0]
        return f_at[1 : 1 + count * per].reshape(count, *offsets.shape, self.m), t, fx

    def _scatter(
        self, ids: np.ndarray, offsets: np.ndarray, block: int, per: int, t: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        """The perturbations of a round's sparse directions, by chunk of ``block``
        directions: (flat index into a chunk's points, perturbed value, x's value, where
        each chunk's entries start); for coordinate directions, the steps actually taken
        into t. The indices of a round over all directions depend on shapes only: made once."""
        everything = len(ids) == self.directions.count and (not len(ids) or ids[0] == 0)
        if everything:
            key = ("scatter", len(ids), block, per)
            r, col, at, bounds = self.arrays.memo(key, lambda: self._indices(ids, block, per))
        else:
            r, col, at, bounds = self._indices(ids, block, per)
        val = _rows(self.directions, ids)[2]
        base = self.flat[col][:, None]
        moved = self.arrays.take("moved", at.shape, self.point_dtype)
        np.multiply(val[:, None], offsets.reshape(-1), out=moved, casting="unsafe")
        moved += base
        coordinate = self.directions.coordinate
        if coordinate is not None and not self.complex_step:  # the steps taken, exactly
            taken = (moved - base).real / coordinate[col][:, None]
            t[r] = taken.reshape(len(r), *t.shape[1:])
        return at, moved, np.broadcast_to(base, moved.shape), bounds

    def _indices(self, ids: np.ndarray, block: int, per: int) -> tuple[np.ndarray, ...]:
        r, col, _ = _rows(self.directions, ids)  # by row
        n = self.flat.size
        at = ((r % block)[:, None] * per + np.arange(per)) * n + col[:, None]
        bounds = np.searchsorted(r // block, np.arange(-(-len(ids) // block) + 1))
        return r, col, at, bounds

    def _evaluate(
        self, batch: np.ndarray, f_at: np.ndarray | None, lo: int, count: int, per: int
    ) -> np.ndarray:
        """f at ``batch`` into rows lo.. of f_at (made at the first call if f's output size
        was unknown)."""
        points = batch.reshape((len(batch), *self.x.shape))
        self.points += len(points)
        self.calls += 1
        if f_at is None:  # learn f's output shape from its first values
            values = self.evaluate(points, None)
            self.y_shape = tuple(values.shape[1:])
            self.m = math.prod(self.y_shape)
            f_at = self.arrays.take("f_at", (1 + count * per, self.m), self.value_dtype)
            f_at[lo : lo + len(points)] = values.reshape(len(points), self.m)
            return f_at
        self.evaluate(points, f_at[lo : lo + len(points)])
        return f_at


def _rows(directions: Directions, ids: np.ndarray) -> Any:
    if not len(ids):
        return directions.rows(0, 0)
    if ids[-1] - ids[0] + 1 == len(ids):  # contiguous, the usual case
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
