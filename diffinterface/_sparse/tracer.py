"""The index-set tracer: f runs on arrays whose elements carry the input indices they depend on.

An :class:`IndexSetArray` stands for an array of f's computation. Each element carries the
set of inputs it depends on (its *gradient set*, a row of a boolean sparse matrix with one
column per input) and, when Hessians are wanted, the set of input pairs through which it
depends nonlinearly (a row with one column per pair ``(i, j)``, ``i ≤ j``, encoded
``i * n + j``). Operations combine the rows: a linear operation takes unions, a product
adds the pairs of its factors' sets, a nonlinear function adds all pairs of its argument's
set. Values are never computed, so the pattern is global: valid at every x (the Python
counterpart of SparseConnectivityTracer.jl's global tracer).

This module holds the array. The operations live above it and register themselves here:
``diffinterface._sparse.index_operations`` the ones behind the array's operators and
methods, ``diffinterface._sparse.tracer_namespace`` the namespace f reaches through
``di.array_namespace(x)``. The detection entry points are in ``diffinterface._sparse.tracing``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from diffinterface._errors import UnsupportedError

__all__ = ["IndexSetArray", "Space", "register_namespace", "register_operations", "unsupported"]

#: the operations behind the arrays' operators and methods, by name, as
#: ``diffinterface._sparse.index_operations`` registers them
_OPERATIONS: dict[str, Callable[..., IndexSetArray]] = {}

#: what the namespace module (``diffinterface._sparse.tracer_namespace``) registers, for
#: the arrays' ``__array_namespace__`` and NumPy ufuncs
_REGISTERED: dict[str, Any] = {}


def register_operations(operations: dict[str, Callable[..., IndexSetArray]]) -> None:
    """Register the operations the arrays' operators and methods call, by name."""
    _OPERATIONS.update(operations)


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


class IndexSetArray:
    """An array of f's computation whose elements carry input-index sets (see module doc).

    It supports Python's arithmetic operators, indexing, ``.shape``/``.ndim``/``.size``,
    ``.T``, ``.reshape``, ``.sum`` and the functions of the tracer's namespace. Anything
    that needs a value (``bool(a)``, ``float(a)``, ``np.asarray(a)``) raises
    UnsupportedError.
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
        return _OPERATIONS["permute_dims"](self, tuple(reversed(range(self.ndim))))

    @property
    def mT(self) -> IndexSetArray:
        return _OPERATIONS["matrix_transpose"](self)

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
        return _OPERATIONS["add"](self, o)

    def __radd__(self, o: Any) -> IndexSetArray:
        return _OPERATIONS["add"](o, self)

    def __sub__(self, o: Any) -> IndexSetArray:
        return _OPERATIONS["subtract"](self, o)

    def __rsub__(self, o: Any) -> IndexSetArray:
        return _OPERATIONS["subtract"](o, self)

    def __mul__(self, o: Any) -> IndexSetArray:
        return _OPERATIONS["multiply"](self, o)

    def __rmul__(self, o: Any) -> IndexSetArray:
        return _OPERATIONS["multiply"](o, self)

    def __truediv__(self, o: Any) -> IndexSetArray:
        return _OPERATIONS["divide"](self, o)

    def __rtruediv__(self, o: Any) -> IndexSetArray:
        return _OPERATIONS["divide"](o, self)

    def __pow__(self, o: Any) -> IndexSetArray:
        return _OPERATIONS["pow"](self, o)

    def __rpow__(self, o: Any) -> IndexSetArray:
        return _OPERATIONS["pow"](o, self)

    def __matmul__(self, o: Any) -> IndexSetArray:
        return _OPERATIONS["matmul"](self, o)

    def __rmatmul__(self, o: Any) -> IndexSetArray:
        return _OPERATIONS["matmul"](o, self)

    def __neg__(self) -> IndexSetArray:
        return self

    def __pos__(self) -> IndexSetArray:
        return self

    def __abs__(self) -> IndexSetArray:
        return _OPERATIONS["abs"](self)

    def __lt__(self, o: Any) -> IndexSetArray:
        return _OPERATIONS["condition"](self, o)

    def __le__(self, o: Any) -> IndexSetArray:
        return _OPERATIONS["condition"](self, o)

    def __gt__(self, o: Any) -> IndexSetArray:
        return _OPERATIONS["condition"](self, o)

    def __ge__(self, o: Any) -> IndexSetArray:
        return _OPERATIONS["condition"](self, o)

    def __eq__(self, o: Any) -> IndexSetArray:  # type: ignore[override]
        return _OPERATIONS["condition"](self, o)

    def __ne__(self, o: Any) -> IndexSetArray:  # type: ignore[override]
        return _OPERATIONS["condition"](self, o)

    __hash__ = None  # type: ignore[assignment]

    def __and__(self, o: Any) -> IndexSetArray:
        return _OPERATIONS["condition"](self, o)

    __rand__ = __or__ = __ror__ = __and__

    def __invert__(self) -> IndexSetArray:
        return _OPERATIONS["condition"](self, self)

    def __getitem__(self, key: Any) -> IndexSetArray:
        return _OPERATIONS["getitem"](self, key)

    # -- methods ------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> IndexSetArray:
        return _OPERATIONS["reshape"](self, shape[0] if len(shape) == 1 else shape)

    def sum(self, axis: Any = None, keepdims: bool = False) -> IndexSetArray:
        return _OPERATIONS["sum"](self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> IndexSetArray:
        return _OPERATIONS["sum"](self, axis=axis, keepdims=keepdims)

    def transpose(self, *axes: Any) -> IndexSetArray:
        if not axes:
            return self.T
        return _OPERATIONS["permute_dims"](self, axes[0] if len(axes) == 1 else axes)

    def astype(self, dtype: Any, copy: bool = True) -> IndexSetArray:
        return self

    def flatten(self) -> IndexSetArray:
        return _OPERATIONS["reshape"](self, (-1,))

    ravel = flatten
