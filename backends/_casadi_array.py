"""CasadiArray: a CasADi matrix with a NumPy shape, the array f receives when CasADi traces it.

A :class:`CasadiArray` holds a CasADi SX, MX or DM matrix and a NumPy-like shape of 0, 1 or
2 dimensions, stored the way CasADi reads it: 0-d as 1×1, ``(n,)`` as an n×1 column,
``(m, n)`` as an m×n matrix. Elementwise operations are CasADi's own (it broadcasts 1×1
itself). Structural operations (indexing, reshaping, broadcasting, joining) are worked out
by NumPy on the array of the elements' row-major positions, then done as one CasADi
indexing, so they follow NumPy's semantics and row-major order exactly, whatever CasADi's
column-major storage. Constants (NumPy arrays, Python numbers) become DM. What needs the
value of an array that depends on x (``if``, ``float()``, writing into it) is refused with
the way out. The named functions (``xp.sum``, ``xp.exp``, ...) are in
``diffinterface.backends._casadi_namespace``, which registers itself here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import casadi as ca
import numpy as np

from diffinterface.backends._casadi_messages import (
    DATA_DEPENDENT,
    IMMUTABLE,
    NO_SUCH_OP,
    TOO_MANY_DIMS,
    NotInNamespaceError,
    refuse,
)

__all__ = ["CasadiArray", "asarray", "elementwise", "matmul", "take"]

_METHODS = {"sum", "mean", "prod", "max", "min", "var", "std", "all", "any", "astype", "squeeze"}


class CasadiArray:
    """A 0-, 1- or 2-d array whose elements are a CasADi matrix (see the module docstring)."""

    __array_priority__ = 1000
    namespace: Any = None  # set by diffinterface.backends._casadi_namespace

    def __init__(self, expr: Any, shape: tuple[int, ...], dtype: Any = np.float64) -> None:
        self.expr, self.shape, self.dtype = expr, tuple(shape), np.dtype(dtype)
        assert expr.shape == _matrix_shape(self.shape), (expr.shape, self.shape)  # invariant

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def T(self) -> CasadiArray:
        return take(self, positions(self).T, ".T")

    @property
    def mT(self) -> CasadiArray:
        return take(self, np.swapaxes(positions(self), -1, -2), ".mT")

    def __repr__(self) -> str:
        return f"CasadiArray(shape={self.shape}, {type(self.expr).__name__}: {self.expr})"

    def __array_namespace__(self, api_version: str | None = None) -> Any:
        return self.namespace

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))

    # -- what needs a value ---------------------------------------------------------------
    def value(self, what: str) -> np.ndarray:
        """The NumPy value, if the array does not depend on x; otherwise refuse ``what``."""
        expr = self.expr
        if not isinstance(expr, ca.DM):
            if ca.symvar(expr):
                raise refuse(DATA_DEPENDENT, what=what)
            expr = ca.evalf(expr)
        return flat(expr).full().reshape(self.shape).astype(self.dtype)

    def __bool__(self) -> bool:
        return bool(self.value("Python control flow on an array (`if`, `while`, `and`, bool())"))

    def __float__(self) -> float:
        return float(self.value("float() of an array"))

    def __int__(self) -> int:
        return int(self.value("int() of an array"))

    def __index__(self) -> int:
        return int(self.value("using an array as an index or a size"))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        what = "converting an array to NumPy (np.asarray, or a NumPy function other than a ufunc)"
        return self.value(what).astype(dtype or self.dtype)

    def __setitem__(self, key: Any, value: Any) -> None:
        raise refuse(IMMUTABLE, what="item assignment a[...] = v")

    # -- NumPy interplay and methods ------------------------------------------------------
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if "out" in kwargs:
            raise refuse(IMMUTABLE, what=f"np.{ufunc.__name__} with out=, or an in-place operator")
        name = _UFUNC_NAMES.get(ufunc.__name__, ufunc.__name__)
        if method != "__call__" or kwargs or not hasattr(self.namespace, name):
            raise refuse(NO_SUCH_OP, what=f"NumPy ufunc np.{ufunc.__name__}.{method}")
        return getattr(self.namespace, name)(*inputs)

    def __getattr__(self, name: str) -> Any:
        if name in _METHODS:  # NumPy's np.sum(a) and friends call a.sum(out=None, dtype=None)
            function = getattr(self.namespace, name)
            return lambda *args, out=None, dtype=None, **kwargs: function(self, *args, **kwargs)
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotInNamespaceError(NO_SUCH_OP.format(what=f"array attribute .{name}"))

    def reshape(self, *shape: Any, order: str = "C") -> CasadiArray:
        shape = shape[0] if len(shape) == 1 else shape
        return take(self, np.reshape(positions(self), shape, order=order), "reshape")  # type: ignore[call-overload]

    def flatten(self) -> CasadiArray:
        return self.reshape(-1)

    ravel = flatten

    def __getitem__(self, key: Any) -> CasadiArray:
        keys = key if isinstance(key, tuple) else (key,)
        keys = tuple(
            k.value("indexing by an array") if isinstance(k, CasadiArray) else k for k in keys
        )
        return take(self, positions(self)[keys], "this indexing")

    # -- operators ------------------------------------------------------------------------
    def __add__(self, o: Any) -> CasadiArray:
        return elementwise(ca.plus, self, o, floating=False)

    def __radd__(self, o: Any) -> CasadiArray:
        return elementwise(ca.plus, o, self, floating=False)

    def __sub__(self, o: Any) -> CasadiArray:
        return elementwise(ca.minus, self, o, floating=False)

    def __rsub__(self, o: Any) -> CasadiArray:
        return elementwise(ca.minus, o, self, floating=False)

    def __mul__(self, o: Any) -> CasadiArray:
        return elementwise(ca.times, self, o, floating=False)

    def __rmul__(self, o: Any) -> CasadiArray:
        return elementwise(ca.times, o, self, floating=False)

    def __truediv__(self, o: Any) -> CasadiArray:
        return elementwise(ca.rdivide, self, o)

    def __rtruediv__(self, o: Any) -> CasadiArray:
        return elementwise(ca.rdivide, o, self)

    def __pow__(self, o: Any) -> CasadiArray:
        return elementwise(ca.power, self, o, floating=False)

    def __rpow__(self, o: Any) -> CasadiArray:
        return elementwise(ca.power, o, self, floating=False)

    def __matmul__(self, o: Any) -> CasadiArray:
        return matmul(self, o)

    def __rmatmul__(self, o: Any) -> CasadiArray:
        return matmul(o, self)

    def __neg__(self) -> CasadiArray:
        return elementwise(lambda e: -e, self, floating=False)

    def __pos__(self) -> CasadiArray:
        return self

    def __abs__(self) -> CasadiArray:
        return elementwise(ca.fabs, self, floating=False)

    def __lt__(self, o: Any) -> CasadiArray:
        return elementwise(ca.lt, self, o, dtype=bool)

    def __le__(self, o: Any) -> CasadiArray:
        return elementwise(ca.le, self, o, dtype=bool)

    def __gt__(self, o: Any) -> CasadiArray:
        return elementwise(ca.gt, self, o, dtype=bool)

    def __ge__(self, o: Any) -> CasadiArray:
        return elementwise(ca.ge, self, o, dtype=bool)

    def __eq__(self, o: Any) -> CasadiArray:  # type: ignore[override]
        return elementwise(ca.eq, self, o, dtype=bool)

    def __ne__(self, o: Any) -> CasadiArray:  # type: ignore[override]
        return elementwise(ca.ne, self, o, dtype=bool)

    __hash__ = None  # type: ignore[assignment]

    def __and__(self, o: Any) -> CasadiArray:
        return elementwise(ca.logic_and, self, o, dtype=bool)

    def __or__(self, o: Any) -> CasadiArray:
        return elementwise(ca.logic_or, self, o, dtype=bool)

    def __invert__(self) -> CasadiArray:
        return elementwise(ca.logic_not, self, dtype=bool)


_UFUNC_NAMES = {
    "true_divide": "divide", "power": "pow", "absolute": "abs", "fmax": "maximum",
    "fmin": "minimum", "mod": "remainder", "arcsin": "asin", "arccos": "acos", "arctan": "atan",
    "arctan2": "atan2", "arcsinh": "asinh", "arccosh": "acosh", "arctanh": "atanh",
}  # fmt: skip


def asarray(a: Any, dtype: Any = None, copy: Any = None, device: Any = None) -> CasadiArray:
    """A CasadiArray as it is; a number or an array of ≤ 2 dimensions as a DM constant."""
    if isinstance(a, CasadiArray):
        return a if dtype is None else CasadiArray(a.expr, a.shape, dtype)
    if isinstance(a, list | tuple) and any(isinstance(v, CasadiArray | list | tuple) for v in a):
        return CasadiArray.namespace.stack([asarray(v) for v in a])  # NumPy's asarray of arrays
    if isinstance(a, ca.SX | ca.MX | ca.DM):
        raise TypeError(
            f"a raw CasADi {type(a).__name__} has no NumPy shape; wrap it in CasadiArray"
        )
    value = np.asarray(a, dtype=dtype)
    if value.dtype.kind not in "biuf":
        what = f"arrays of dtype {value.dtype} (use xp.stack to join arrays)"
        raise refuse(NO_SUCH_OP, what=what)
    check_dims(value.shape, "a constant")
    dm = ca.DM(value.astype(np.float64).reshape(_matrix_shape(value.shape)))
    return CasadiArray(dm, value.shape, value.dtype)


def check_dims(shape: tuple[int, ...], what: str) -> None:
    if len(shape) > 2:
        raise refuse(TOO_MANY_DIMS, what=what, shape=tuple(shape))


def _matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """CasADi's matrix shape for a NumPy shape: 1×1, n×1, or m×n."""
    return (1, 1) if not shape else (shape[0], 1) if len(shape) == 1 else (shape[0], shape[1])


def from_flat(column: Any, shape: tuple[int, ...]) -> Any:
    """CasADi's matrix for ``shape`` from the column of its elements in row-major order."""
    if len(shape) < 2:
        return column
    return ca.reshape(column, shape[1], shape[0]).T


def flat(expr: Any) -> Any:
    """The elements of CasADi's matrix for an array, as one column in row-major order."""
    return ca.vec(expr.T) if expr.shape[1] > 1 else expr


def positions(a: CasadiArray) -> np.ndarray:
    """The row-major position of each element of ``a``, as a NumPy array of a's shape."""
    return np.arange(a.size).reshape(a.shape)


def take(a: CasadiArray, where: np.ndarray, what: str) -> CasadiArray:
    """The elements of ``a`` at these row-major positions, shaped like ``where``."""
    where = np.asarray(where)
    check_dims(where.shape, what)
    if where.shape == a.shape and np.array_equal(where.ravel(), np.arange(a.size)):
        return a
    if where.size == 0:
        return CasadiArray(ca.DM.zeros(*_matrix_shape(where.shape)), where.shape, a.dtype)
    if a.ndim == 2:  # row-major position p of an m×n array is CasADi's (column-major) i + j*m
        where = where // a.shape[1] + where % a.shape[1] * a.shape[0]
    index = where.reshape(_matrix_shape(where.shape)).astype(np.int64)
    expr = a.expr[index]
    if expr.shape != index.shape:  # a vector indexed by a vector keeps its own orientation
        expr = ca.reshape(expr, *index.shape)
    return CasadiArray(expr, where.shape, a.dtype)


def _broadcast(a: CasadiArray, shape: tuple[int, ...]) -> Any:
    if a.shape == shape or a.ndim == 0:  # CasADi broadcasts 1×1 itself
        return a.expr
    return take(a, np.broadcast_to(positions(a), shape), "broadcasting").expr


def elementwise(
    fn: Callable[..., Any], *args: Any, dtype: Any = None, floating: bool = True
) -> CasadiArray:
    """``fn`` of CasADi matrices applied to the arguments broadcast together (NumPy's rule).

    The dtype is NumPy's for the arguments (a Python number does not widen it), a float
    when ``floating`` and the arguments are integers, or ``dtype`` when given.
    """
    arrays = [asarray(a) for a in args]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    check_dims(shape, "broadcasting")
    if dtype is None:
        weak = [
            a if isinstance(a, int | float) else b.dtype for a, b in zip(args, arrays, strict=True)
        ]
        dtype = np.result_type(*weak)
        dtype = np.float64 if floating and dtype.kind in "biu" else dtype
    return CasadiArray(fn(*(_broadcast(a, shape) for a in arrays)), shape, dtype)


def matmul(a: Any, b: Any, /) -> CasadiArray:
    """NumPy's matmul for 1- and 2-d arrays, as one CasADi mtimes.

    A constant operand's zeros are made structural, so that the Jacobian of ``A @ x`` has
    exactly A's sparsity pattern, for MX as for SX.
    """
    a, b = asarray(a), asarray(b)
    if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[0]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align")
    left, right = (ca.sparsify(e) if isinstance(e, ca.DM) else e for e in (a.expr, b.expr))
    product = ca.mtimes(left.T if a.ndim == 1 else left, right)
    shape = a.shape[:-1] + b.shape[1:]
    dtype = np.result_type(a.dtype, b.dtype)
    return CasadiArray(product.T if a.ndim == 1 and b.ndim == 2 else product, shape, dtype)
