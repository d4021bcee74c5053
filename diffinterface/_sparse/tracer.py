"""The index-set tracer: f runs on arrays whose elements carry the input indices they depend on.

An :class:`IndexSetArray` stands for an array of f's computation. Each element carries the
set of inputs it depends on (its *gradient set*, a row of a boolean sparse matrix with one
column per input) and, when Hessians are wanted, the set of input pairs through which it
depends nonlinearly (a row with one column per pair ``(i, j)``, ``i ≤ j``, encoded
``i * n + j``). Operations combine the rows: a linear operation takes unions, a product
adds the pairs of its factors' sets, a nonlinear function adds all pairs of its argument's
set. Values are never computed, so the pattern is global: valid at every x (the Python
counterpart of SparseConnectivityTracer.jl's global tracer).

Structural operations (indexing, reshaping, concatenation, broadcasting, ...) are applied
to an array of element positions with NumPy itself, then rows are gathered, so they follow
NumPy's semantics exactly. f reaches all of this through ``di.array_namespace(x)``, whose
namespace, and the detection entry points, are in ``diffinterface._sparse.tracing``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from diffinterface._errors import UnsupportedError

__all__ = ["IndexSetArray", "register_namespace"]

#: what the namespace module (``diffinterface._sparse.tracing``) registers, for the
#: arrays' ``__array_namespace__`` and NumPy ufuncs
_REGISTERED: dict[str, Any] = {}


def register_namespace(namespace: Any, ufunc_names: dict[str, str]) -> None:
    """Register the tracer's array namespace and the NumPy ufuncs' names in it."""
    _REGISTERED["namespace"] = namespace
    _REGISTERED["ufunc names"] = ufunc_names


_UNSUPPORTED = (
    "The sparsity tracer does not implement {what}. Write f with the operations listed in "
    "docs/sparse.md, or detect the pattern another way: "
    "di.AutoSparse(backend, sparsity_detector=di.DenseSparsityDetector(backend)) computes "
    "one dense Jacobian (or Hessian) and keeps its nonzeros, and "
    "di.KnownSparsityDetector(pattern) takes the pattern from you."
)


def unsupported(what: str) -> UnsupportedError:
    return UnsupportedError(_UNSUPPORTED.format(what=what))


class Space:
    """What every tracer of one detection shares: input count and whether pairs are tracked."""

    def __init__(self, n: int, second_order: bool, dtype: Any) -> None:
        self.n, self.second_order, self.dtype = n, second_order, dtype

    def empty(self, size: int) -> tuple[Any, Any]:
        g = sp.csr_array((size, self.n), dtype=bool)
        h = sp.csr_array((size, self.n * self.n), dtype=bool) if self.second_order else None
        return g, h


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


class IndexSetArray:
    """An array of f's computation whose elements carry input-index sets (see module doc).

    It supports Python's arithmetic operators, indexing, ``.shape``/``.ndim``/``.size``,
    ``.T``, ``.reshape``, ``.sum`` and the functions of :data:`NAMESPACE`. Anything that
    needs a value (``bool(a)``, ``float(a)``, ``np.asarray(a)``) raises UnsupportedError.
    """

    __array_priority__ = 1000

    def __init__(self, space: Space, shape: tuple[int, ...], g: Any, h: Any) -> None:
        self.space, self.shape, self.g, self.h = space, tuple(shape), g, h

    # -- array attributes ---------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def dtype(self) -> Any:
        return self.space.dtype

    @property
    def T(self) -> IndexSetArray:
        return permute_dims(self, tuple(reversed(range(self.ndim))))

    @property
    def mT(self) -> IndexSetArray:
        return matrix_transpose(self)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"IndexSetArray(shape={self.shape}, nnz={self.g.nnz})"

    def __array_namespace__(self, api_version: str | None = None) -> Any:
        return _REGISTERED["namespace"]

    # -- things that need values --------------------------------------------------------
    def __bool__(self) -> bool:
        raise unsupported(
            "control flow on the values of x (an `if`, `while`, `and`/`or` or bool() on an "
            "array that depends on x): the global pattern cannot follow one branch. Use "
            "xp.where(condition, a, b), which the tracer follows as both branches"
        )

    def __float__(self) -> float:
        raise unsupported("float() of an array that depends on x")

    def __int__(self) -> int:
        raise unsupported("int() of an array that depends on x")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise unsupported(
            "converting an array that depends on x to NumPy (np.asarray, writing it into a "
            "NumPy array, or a NumPy function other than a ufunc)"
        )

    def __setitem__(self, key: Any, value: Any) -> None:
        raise unsupported("writing into arrays (item assignment)")

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        name = _REGISTERED["ufunc names"].get(ufunc.__name__, ufunc.__name__)
        func = getattr(_REGISTERED["namespace"], name, None)
        func = func if method == "__call__" and not kwargs else None
        if func is None:
            raise unsupported(f"the NumPy ufunc np.{ufunc.__name__}.{method}")
        return func(*inputs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise unsupported(f"the array method or attribute .{name}")

    # -- operators ----------------------------------------------------------------------
    def __add__(self, o: Any) -> IndexSetArray:
        return add(self, o)

    def __radd__(self, o: Any) -> IndexSetArray:
        return add(o, self)

    def __sub__(self, o: Any) -> IndexSetArray:
        return subtract(self, o)

    def __rsub__(self, o: Any) -> IndexSetArray:
        return subtract(o, self)

    def __mul__(self, o: Any) -> IndexSetArray:
        return multiply(self, o)

    def __rmul__(self, o: Any) -> IndexSetArray:
        return multiply(o, self)

    def __truediv__(self, o: Any) -> IndexSetArray:
        return divide(self, o)

    def __rtruediv__(self, o: Any) -> IndexSetArray:
        return divide(o, self)

    def __pow__(self, o: Any) -> IndexSetArray:
        return pow(self, o)

    def __rpow__(self, o: Any) -> IndexSetArray:
        return pow(o, self)

    def __matmul__(self, o: Any) -> IndexSetArray:
        return matmul(self, o)

    def __rmatmul__(self, o: Any) -> IndexSetArray:
        return matmul(o, self)

    def __neg__(self) -> IndexSetArray:
        return self

    def __pos__(self) -> IndexSetArray:
        return self

    def __abs__(self) -> IndexSetArray:
        return abs(self)

    def __lt__(self, o: Any) -> IndexSetArray:
        return condition(self, o)

    def __le__(self, o: Any) -> IndexSetArray:
        return condition(self, o)

    def __gt__(self, o: Any) -> IndexSetArray:
        return condition(self, o)

    def __ge__(self, o: Any) -> IndexSetArray:
        return condition(self, o)

    def __eq__(self, o: Any) -> IndexSetArray:  # type: ignore[override]
        return condition(self, o)

    def __ne__(self, o: Any) -> IndexSetArray:  # type: ignore[override]
        return condition(self, o)

    __hash__ = None  # type: ignore[assignment]

    def __and__(self, o: Any) -> IndexSetArray:
        return condition(self, o)

    __rand__ = __or__ = __ror__ = __and__

    def __invert__(self) -> IndexSetArray:
        return condition(self, self)

    def __getitem__(self, key: Any) -> IndexSetArray:
        if any(isinstance(k, IndexSetArray) for k in (key if isinstance(key, tuple) else (key,))):
            raise unsupported("indexing with an array that depends on x")
        return structural(lambda p: p[key], self)

    # -- methods ------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> IndexSetArray:
        return reshape(self, shape[0] if len(shape) == 1 else shape)

    def sum(self, axis: Any = None, keepdims: bool = False) -> IndexSetArray:
        return sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> IndexSetArray:
        return sum(self, axis=axis, keepdims=keepdims)

    def transpose(self, *axes: Any) -> IndexSetArray:
        if not axes:
            return self.T
        return permute_dims(self, axes[0] if len(axes) == 1 else axes)

    def astype(self, dtype: Any, copy: bool = True) -> IndexSetArray:
        return self

    def flatten(self) -> IndexSetArray:
        return reshape(self, (-1,))

    ravel = flatten


# -- lifting and combining -------------------------------------------------------------


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
    """Apply ``op`` (a NumPy function of arrays) to element positions, then gather rows."""
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


def _reduce(a: Any, axis: Any, keepdims: bool, nonlinear: bool) -> IndexSetArray:
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
    g = weights @ t.g
    h = None if t.h is None else weights @ t.h
    return IndexSetArray(space, shape, g, h)


# -- the namespace: elementwise functions -----------------------------------------------


def add(a: Any, b: Any) -> IndexSetArray:
    return binary(a, b, "linear")


subtract = add


def multiply(a: Any, b: Any) -> IndexSetArray:
    return binary(a, b, "product")


def divide(a: Any, b: Any) -> IndexSetArray:
    if not isinstance(b, IndexSetArray):
        return binary(a, b, "linear")
    return binary(a, b, "quotient")


def pow(a: Any, b: Any) -> IndexSetArray:
    if isinstance(b, IndexSetArray):
        return binary(a, b, "nonlinear")
    if np.all(np.asarray(b) == 0):
        return unary(binary(a, b, "linear"), "zero")
    if np.all(np.asarray(b) == 1):
        return binary(a, b, "linear")
    return unary(binary(a, b, "linear"), "nonlinear")


def nonlinear_binary(a: Any, b: Any) -> IndexSetArray:
    return binary(a, b, "nonlinear")


def abs(a: Any) -> Any:
    if not isinstance(a, IndexSetArray):
        return np.abs(a)
    return unary(a, "linear")  # piecewise linear: second derivative zero almost everywhere


# -- reductions, linear algebra --------------------------------------------------------


def sum(a: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> IndexSetArray:
    if not isinstance(a, IndexSetArray):
        return np.sum(a, axis=axis, keepdims=keepdims)
    return _reduce(a, axis, keepdims, nonlinear=False)


def prod(a: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> IndexSetArray:
    return _reduce(a, axis, keepdims, nonlinear=True)


def max(a: Any, axis: Any = None, keepdims: bool = False) -> IndexSetArray:
    return _reduce(a, axis, keepdims, nonlinear=False)


def matmul(a: Any, b: Any) -> IndexSetArray:
    """``a @ b`` for 1-D and 2-D operands. With a constant operand, its zero entries are
    structural: an output element depends only on the inputs met through nonzeros."""
    space = _space_of((a, b))
    if isinstance(a, IndexSetArray) and isinstance(b, IndexSetArray):
        if a.ndim > 2 or b.ndim > 2:
            raise unsupported("batched matmul of two traced arrays (more than 2 axes)")
        left = a if a.ndim == 2 else reshape(a, (1, -1))
        right = b if b.ndim == 2 else reshape(b, (-1, 1))
        out = sum(left[:, :, None] * right[None, :, :], axis=1)
        shape = np.matmul(np.empty(a.shape), np.empty(b.shape)).shape
        return reshape(out, shape)
    const, traced, traced_right = (a, b, True) if isinstance(b, IndexSetArray) else (b, a, False)
    if hasattr(const, "detach"):
        const = const.detach().cpu().numpy()
    const = np.asarray(const)
    if const.ndim not in (1, 2) or traced.ndim not in (1, 2):
        raise unsupported("matmul with operands of more than 2 axes")
    if traced_right:
        shape = np.matmul(const, np.empty(traced.shape)).shape
        nz = sp.csr_array(const.reshape(-1, const.shape[-1]) != 0)
    else:
        shape = np.matmul(np.empty(traced.shape), const).shape
        nz = sp.csr_array(const.reshape(const.shape[0], -1) != 0)
    if traced_right:  # out[i, c] = Σ_k A[i, k] T[k, c]
        cols = 1 if traced.ndim == 1 else traced.shape[1]
        weights = sp.kron(nz, sp.eye_array(cols, dtype=bool), format="csr")
    else:  # out[i, c] = Σ_k T[i, k] B[k, c]
        rows = 1 if traced.ndim == 1 else traced.shape[0]
        weights = sp.kron(sp.eye_array(rows, dtype=bool), nz.T, format="csr")
    return linear_map(space, weights.astype(bool), traced, shape)


def vecdot(a: Any, b: Any, axis: int = -1) -> IndexSetArray:
    return sum(multiply(a, b), axis=axis)


# -- structure -------------------------------------------------------------------------


def reshape(a: Any, shape: Any, copy: Any = None) -> IndexSetArray:
    return structural(lambda p: np.reshape(p, shape), a)


def permute_dims(a: Any, axes: Any) -> IndexSetArray:
    return structural(lambda p: np.transpose(p, axes), a)


def matrix_transpose(a: Any) -> IndexSetArray:
    return structural(lambda p: np.swapaxes(p, -1, -2), a)


def concat(arrays: Sequence[Any], axis: int | None = 0) -> IndexSetArray:
    return structural(lambda *ps: np.concatenate(ps, axis=axis), *arrays)


def stack(arrays: Sequence[Any], axis: int = 0) -> IndexSetArray:
    return structural(lambda *ps: np.stack(ps, axis=axis), *arrays)
