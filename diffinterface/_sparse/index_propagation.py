"""How index sets pass through an operation: the rules every traced operation is built from.

An operation's result rows follow from its operands' rows (see ``diffinterface._sparse.tracer``
for what the rows are) by one of a few rules: structural operations gather rows
(:func:`structural`); elementwise ones combine broadcast rows, adding pairs when the
operation is nonlinear (:func:`binary`, :func:`unary`); reductions and linear maps take
unions of rows through a boolean matrix (:func:`reduce`, :func:`linear_map`). Constants
enter as arrays that depend on nothing (:func:`lift`). The named array functions built on
these rules are in ``diffinterface._sparse.index_operations``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from diffinterface._sparse.tracer import IndexSetArray, Space

__all__ = ["binary", "condition", "lift", "linear_map", "reduce", "structural", "unary"]


def _pairs(ga: Any, gb: Any, n: int) -> Any:
    """Row r: every pair (i, j) with i in row r of ga and j in row r of gb, as i≤j ids."""
    ga, gb = sp.csr_array(ga), sp.csr_array(gb)
    rows = ga.shape[0]
    ca, cb = np.diff(ga.indptr), np.diff(gb.indptr)
    counts = ca * cb
    total = int(counts.sum())
    if total == 0:
        return sp.csr_array((rows, n * n), dtype=bool)
    row = np.repeat(np.arange(rows), counts)
    k = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    i = ga.indices[ga.indptr[row] + k // cb[row]].astype(np.int64)
    j = gb.indices[gb.indptr[row] + k % cb[row]].astype(np.int64)
    ids = np.minimum(i, j) * n + np.maximum(i, j)
    data = np.ones(total, dtype=bool)
    return sp.csr_array(sp.coo_array((data, (row, ids)), shape=(rows, n * n)))


def _gather(m: Any, rows: np.ndarray) -> Any:
    if m is None:
        return None
    if rows.size == m.shape[0] and np.array_equal(rows, np.arange(m.shape[0])):
        return m
    return m[rows]


def _space_of(arrays: Sequence[Any]) -> Space:
    for a in arrays:
        if isinstance(a, IndexSetArray):
            return a.space
    raise AssertionError("no traced array among the arguments")


def lift(a: Any, space: Space) -> IndexSetArray:
    """A traced array as it is; a constant as a traced array that depends on nothing."""
    if isinstance(a, IndexSetArray):
        return a
    if hasattr(a, "detach"):  # a torch tensor handed to f as a Constant
        a = a.detach().cpu().numpy()
    shape = np.shape(a)
    g, h = space.empty(math.prod(shape))
    return IndexSetArray(space, shape, g, h)


def structural(op: Callable[..., np.ndarray], *arrays: Any) -> IndexSetArray:
    """Apply ``op`` (a NumPy function of arrays) to element positions, then gather rows.

    Structural operations (indexing, reshaping, concatenation, broadcasting, ...) so follow
    NumPy's semantics exactly."""
    space = _space_of(arrays)
    traced = [lift(a, space) for a in arrays]
    positions, start = [], 0
    for t in traced:
        positions.append(np.arange(start, start + t.size).reshape(t.shape))
        start += t.size
    picked = np.asarray(op(*positions))
    rows = picked.reshape(-1)
    g = traced[0].g if len(traced) == 1 else sp.vstack([t.g for t in traced], format="csr")
    h = None
    if space.second_order:
        h = traced[0].h if len(traced) == 1 else sp.vstack([t.h for t in traced], format="csr")
    return IndexSetArray(space, picked.shape, _gather(g, rows), _gather(h, rows))


def _broadcast_rows(shape: tuple[int, ...], out: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.arange(math.prod(shape)).reshape(shape), out).reshape(-1)


def binary(a: Any, b: Any, kind: str) -> IndexSetArray:
    """Combine two operands elementwise with broadcasting.

    ``kind``: "linear" (sum of the sets' dependencies, no new pairs: +, −, max, where),
    "product" (pairs across the factors), "quotient" (a/b: pairs across, and within b),
    "nonlinear" (every pair of the union).
    """
    space = _space_of((a, b))
    ta, tb = lift(a, space), lift(b, space)
    shape = tuple(np.broadcast_shapes(ta.shape, tb.shape))
    ra, rb = _broadcast_rows(ta.shape, shape), _broadcast_rows(tb.shape, shape)
    ga, gb = _gather(ta.g, ra), _gather(tb.g, rb)
    g = ga + gb
    h = None
    if space.second_order:
        h = _gather(ta.h, ra) + _gather(tb.h, rb)
        if kind == "product":
            h = h + _pairs(ga, gb, space.n)
        elif kind == "quotient":
            h = h + _pairs(ga, gb, space.n) + _pairs(gb, gb, space.n)
        elif kind == "nonlinear":
            h = h + _pairs(g, g, space.n)
    return IndexSetArray(space, shape, g, h)


def unary(a: Any, kind: str) -> IndexSetArray:
    """``kind``: "linear" (sets kept), "zero" (derivative 0 almost everywhere: sets
    dropped), "nonlinear" (pairs of the set added)."""
    if kind == "linear":
        return a
    space = a.space
    if kind == "zero":
        g, h = space.empty(a.size)
        return IndexSetArray(space, a.shape, g, h)
    h = None if a.h is None else a.h + _pairs(a.g, a.g, space.n)
    return IndexSetArray(space, a.shape, a.g, h)


def condition(a: Any, b: Any) -> IndexSetArray:
    """A comparison: its derivative is zero, and its value is unknown to a global tracer."""
    return unary(binary(a, b, "linear"), "zero")


def reduce(a: Any, axis: Any, keepdims: bool, nonlinear: bool) -> IndexSetArray:
    """Sum-like reduction: each output element takes the union of its inputs' sets."""
    space = a.space
    kept = np.sum(np.empty(a.shape, dtype=np.int8), axis=axis, keepdims=True).shape
    out_shape = np.sum(np.empty(a.shape, dtype=np.int8), axis=axis, keepdims=keepdims).shape
    size = math.prod(kept)
    target = _broadcast_rows(kept, a.shape)
    agg = sp.csr_array(
        (np.ones(a.size, dtype=bool), (target, np.arange(a.size))), shape=(size, a.size)
    )
    g = agg @ a.g
    h = None if a.h is None else agg @ a.h
    if nonlinear and h is not None:
        h = h + _pairs(g, g, space.n)
    return IndexSetArray(space, out_shape, g, h)


def linear_map(space: Space, weights: Any, t: IndexSetArray, shape: tuple[int, ...]) -> Any:
    """Row r of the result: the union of t's rows where row r of ``weights`` is nonzero."""
    g = weights @ t.g
    h = None if t.h is None else weights @ t.h
    return IndexSetArray(space, shape, g, h)
