"""The array functions f calls on index-set arrays: arithmetic, reductions, linear algebra,
structure.

Each is one of the rules of ``diffinterface._sparse.index_propagation`` applied to its
operands (a product adds pairs, a sum does not, ...). The array's operators and methods
(``a + b``, ``a[k]``, ``a.sum()``) call them through the table this module registers with
``diffinterface._sparse.tracer``; ``diffinterface._sparse.tracer_namespace`` gives them
their array-API names for ``di.array_namespace(x)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from diffinterface._sparse.index_propagation import (
    binary,
    condition,
    lift,
    linear_map,
    reduce,
    structural,
    unary,
)
from diffinterface._sparse.tracer import IndexSetArray, register_operations, unsupported

# -- elementwise functions -------------------------------------------------------------


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


def where(condition: Any, a: Any, b: Any) -> IndexSetArray:
    """Both branches: the result may depend on either (the condition has zero derivative)."""
    shape = condition.shape if isinstance(condition, IndexSetArray) else np.shape(condition)
    if not isinstance(a, IndexSetArray) and not isinstance(b, IndexSetArray):
        a = lift(a, condition.space)
    return binary(binary(a, b, "linear"), np.zeros(shape), "linear")


# -- reductions, linear algebra --------------------------------------------------------


def sum(a: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> IndexSetArray:
    if not isinstance(a, IndexSetArray):
        return np.sum(a, axis=axis, keepdims=keepdims)
    return reduce(a, axis, keepdims, nonlinear=False)


def prod(a: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> IndexSetArray:
    return reduce(a, axis, keepdims, nonlinear=True)


def max(a: Any, axis: Any = None, keepdims: bool = False) -> IndexSetArray:
    return reduce(a, axis, keepdims, nonlinear=False)


def cumsum(a: Any, axis: int | None = None, dtype: Any = None) -> IndexSetArray:
    """Running sums: element k along ``axis`` depends on elements 0..k (NumPy flattens
    when ``axis`` is None)."""
    if axis is None:
        a, axis = reshape(a, (-1,)), 0
    positions = np.moveaxis(np.arange(a.size).reshape(a.shape), axis, -1)
    length = positions.shape[-1]
    later, earlier = np.tril_indices(length)
    rows = positions[..., later].reshape(-1)
    cols = positions[..., earlier].reshape(-1)
    weights = sp.csr_array((np.ones(rows.size, dtype=bool), (rows, cols)), shape=(a.size, a.size))
    return linear_map(a.space, weights, a, a.shape)


def diff(a: Any, n: int = 1, axis: int = -1) -> IndexSetArray:
    """Differences of neighbours along ``axis``, ``n`` times."""
    for _ in range(n):
        length = a.shape[axis]
        ahead = structural(lambda p, k=length: np.take(p, np.arange(1, k), axis=axis), a)
        behind = structural(lambda p, k=length: np.take(p, np.arange(k - 1), axis=axis), a)
        a = subtract(ahead, behind)
    return a


def matmul(a: Any, b: Any) -> IndexSetArray:
    """``a @ b`` for 1-D and 2-D operands. With a constant operand, its zero entries are
    structural: an output element depends only on the inputs met through nonzeros."""
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
    return linear_map(traced.space, weights.astype(bool), traced, shape)


def vecdot(a: Any, b: Any, axis: int = -1) -> IndexSetArray:
    return sum(multiply(a, b), axis=axis)


# -- structure -------------------------------------------------------------------------


def getitem(a: IndexSetArray, key: Any) -> IndexSetArray:
    """``a[key]``, for a key that does not depend on x."""
    if any(isinstance(k, IndexSetArray) for k in (key if isinstance(key, tuple) else (key,))):
        raise unsupported("indexing with an array that depends on x")
    return structural(lambda p: p[key], a)


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


register_operations(
    {
        "add": add,
        "subtract": subtract,
        "multiply": multiply,
        "divide": divide,
        "pow": pow,
        "matmul": matmul,
        "abs": abs,
        "condition": condition,
        "getitem": getitem,
        "sum": sum,
        "reshape": reshape,
        "permute_dims": permute_dims,
        "matrix_transpose": matrix_transpose,
    }
)
