"""The sparsity tracer's array namespace and the detection entry points.

:data:`NAMESPACE` is what ``di.array_namespace`` returns for index-set arrays: the
operations of ``diffinterface._sparse.tracer`` under their array-API names (and NumPy's
spellings), NumPy's own functions for constant arguments, and a clear UnsupportedError for
anything else. :func:`trace_jacobian` and :func:`trace_hessian` run f once on index-set
arrays and return its global pattern.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from diffinterface._arrays import ArrayKind, register_kind
from diffinterface._errors import UnsupportedError
from diffinterface._sparse.tracer import (
    IndexSetArray,
    Space,
    abs,
    add,
    binary,
    concat,
    condition,
    divide,
    lift,
    linear_map,
    matmul,
    matrix_transpose,
    max,
    multiply,
    nonlinear_binary,
    permute_dims,
    pow,
    prod,
    register_namespace,
    reshape,
    stack,
    structural,
    subtract,
    sum,
    unary,
    unsupported,
    vecdot,
)

__all__ = ["NAMESPACE", "trace_hessian", "trace_jacobian"]


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


def where(condition: Any, a: Any, b: Any) -> IndexSetArray:
    """Both branches: the result may depend on either (the condition has zero derivative)."""
    shape = condition.shape if isinstance(condition, IndexSetArray) else np.shape(condition)
    if not isinstance(a, IndexSetArray) and not isinstance(b, IndexSetArray):
        a = lift(a, condition.space)
    return binary(binary(a, b, "linear"), np.zeros(shape), "linear")


def _make_unary(kind: str, numpy_name: str) -> Callable[[Any], Any]:
    def func(a: Any) -> Any:
        if not isinstance(a, IndexSetArray):
            return getattr(np, numpy_name)(a)
        return unary(a, kind)

    return func


_NONLINEAR_UNARY = {
    **{
        name: name
        for name in [
            "exp",
            "expm1",
            "log",
            "log1p",
            "log2",
            "log10",
            "sqrt",
            "square",
            "reciprocal",
            "cbrt",
        ]
    },
    **{
        name: name
        for name in ["sin", "cos", "tan", "sinh", "cosh", "tanh", "arcsin", "arccos", "arctan"]
    },
    **{name: name for name in ["arcsinh", "arccosh", "arctanh"]},
    **{
        f"a{name[3:]}": name
        for name in ["arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh"]
    },
}
_ZERO_UNARY = {
    name: name for name in ["sign", "floor", "ceil", "round", "trunc", "isnan", "isinf", "isfinite"]
}
_LINEAR_UNARY = {name: name for name in ["negative", "positive", "real", "conj"]}


def _structural_function(np_func: Callable[..., Any]) -> Callable[..., IndexSetArray]:
    def func(a: Any, *args: Any, **kwargs: Any) -> IndexSetArray:
        return structural(lambda p: np_func(p, *args, **kwargs), a)

    return func


_STRUCTURAL = [
    "expand_dims",
    "squeeze",
    "flip",
    "roll",
    "broadcast_to",
    "moveaxis",
    "swapaxes",
    "take",
    "tile",
    "repeat",
]


def asarray(a: Any, dtype: Any = None, copy: Any = None, device: Any = None) -> Any:
    return a if isinstance(a, IndexSetArray) else np.asarray(a, dtype=dtype)


def astype(a: Any, dtype: Any, copy: bool = True) -> Any:
    return a if isinstance(a, IndexSetArray) else np.asarray(a).astype(dtype)


def zeros_like(a: Any, dtype: Any = None) -> np.ndarray:
    return np.zeros(np.shape(a) if not isinstance(a, IndexSetArray) else a.shape)


def ones_like(a: Any, dtype: Any = None) -> np.ndarray:
    return np.ones(np.shape(a) if not isinstance(a, IndexSetArray) else a.shape)


_NUMPY_PASSTHROUGH = [
    "zeros",
    "ones",
    "full",
    "empty",
    "arange",
    "linspace",
    "eye",
    "pi",
    "e",
    "inf",
    "nan",
    "newaxis",
    "float32",
    "float64",
    "int32",
    "int64",
    "bool",
]

_UFUNC_NAMES = {"true_divide": "divide", "absolute": "abs", "power": "pow"}


class _Namespace:
    """``di.array_namespace(tracer)``: the operations the tracer follows, by array-API name
    (with NumPy's spellings as aliases); anything else raises UnsupportedError."""

    def __init__(self, funcs: dict[str, Any]) -> None:
        self.__dict__.update(funcs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in _NUMPY_PASSTHROUGH:
            return getattr(np, name)
        raise unsupported(f"xp.{name}")


def _numpy_fallback(func: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``func`` for traced arguments; NumPy's function of the same name for constants."""
    np_func = getattr(np, _NUMPY_NAMES.get(name, name), None)
    if np_func is None:
        return func

    def either(*args: Any, **kwargs: Any) -> Any:
        flat = [a for arg in args for a in (arg if isinstance(arg, list | tuple) else (arg,))]
        if any(isinstance(a, IndexSetArray) for a in flat):
            return func(*args, **kwargs)
        return np_func(*args, **kwargs)

    either.__name__ = name
    return either


_NUMPY_NAMES = {
    "pow": "power",
    "atan2": "arctan2",
    "concat": "concatenate",
    "permute_dims": "transpose",
    "asin": "arcsin",
    "acos": "arccos",
    "atan": "arctan",
    "asinh": "arcsinh",
    "acosh": "arccosh",
    "atanh": "arctanh",
}


def _namespace() -> _Namespace:
    funcs: dict[str, Any] = {
        "add": add,
        "subtract": subtract,
        "multiply": multiply,
        "divide": divide,
        "pow": pow,
        "power": pow,
        "atan2": nonlinear_binary,
        "arctan2": nonlinear_binary,
        "hypot": nonlinear_binary,
        "maximum": add,
        "minimum": add,
        "where": where,
        "abs": abs,
        "absolute": abs,
        "sum": sum,
        "mean": sum,
        "prod": prod,
        "max": max,
        "min": max,
        "amax": max,
        "amin": max,
        "matmul": matmul,
        "dot": matmul,
        "vecdot": vecdot,
        "cumsum": cumsum,
        "cumulative_sum": cumsum,
        "diff": diff,
        "reshape": reshape,
        "permute_dims": permute_dims,
        "transpose": permute_dims,
        "matrix_transpose": matrix_transpose,
        "concat": concat,
        "concatenate": concat,
        "stack": stack,
        "asarray": asarray,
        "astype": astype,
        "zeros_like": zeros_like,
        "ones_like": ones_like,
        "greater": condition,
        "less": condition,
        "greater_equal": condition,
        "less_equal": condition,
    }
    for kind, names in (
        ("nonlinear", _NONLINEAR_UNARY),
        ("zero", _ZERO_UNARY),
        ("linear", _LINEAR_UNARY),
    ):
        funcs.update({name: _make_unary(kind, np_name) for name, np_name in names.items()})
    funcs = {name: _numpy_fallback(func, name) for name, func in funcs.items()}
    funcs.update({name: _structural_function(getattr(np, name)) for name in _STRUCTURAL})
    return _Namespace(funcs)


NAMESPACE = _namespace()
register_namespace(NAMESPACE, _UFUNC_NAMES)


class TracerArrays(ArrayKind):
    """The sparsity tracer's index-set arrays: their namespace is the tracer's."""

    name = "index sets"
    library = "the sparsity tracer"

    def is_array(self, a: Any) -> bool:
        return isinstance(a, IndexSetArray)

    def namespace(self, arrays: tuple[Any, ...]) -> Any:
        return NAMESPACE


register_kind(TracerArrays(), ("diffinterface._sparse.tracer",))


# -- detection -------------------------------------------------------------------------


def _inputs(shape: tuple[int, ...], dtype: Any, second_order: bool) -> IndexSetArray:
    n = math.prod(shape)
    space = Space(n, second_order, dtype)
    g = sp.eye_array(n, dtype=bool, format="csr")
    h = sp.csr_array((n, n * n), dtype=bool) if second_order else None
    return IndexSetArray(space, shape, g, h)


def _run(f: Callable[..., Any], x: IndexSetArray, args: tuple[Any, ...]) -> IndexSetArray:
    try:
        out = f(x, *args)
    except UnsupportedError:
        raise
    except TypeError as e:
        raise unsupported(f"an operation of f on traced arrays ({e})") from e
    if isinstance(out, IndexSetArray):
        return out
    if hasattr(out, "shape") or isinstance(out, int | float | np.generic):
        return lift(out, x.space)  # f(x) does not depend on x
    raise unsupported(f"an output of type {type(out).__name__} (f must return one array)")


def trace_jacobian(
    f: Callable[..., Any], shape: tuple[int, ...], dtype: Any, args: tuple[Any, ...]
) -> Any:
    """The global Jacobian pattern of ``f(x, *args)``: a boolean CSR array (f(x).size, x.size).

    Raises:
        UnsupportedError: f uses an operation the tracer does not implement.
    """
    out = _run(f, _inputs(shape, dtype, False), args)
    return sp.csr_array(out.g)


def trace_hessian(
    f: Callable[..., Any], shape: tuple[int, ...], dtype: Any, args: tuple[Any, ...]
) -> Any:
    """The global Hessian pattern of a scalar ``f(x, *args)``: a symmetric boolean CSR array.

    Raises:
        UnsupportedError: f uses an operation the tracer does not implement.
    """
    x = _inputs(shape, dtype, True)
    out = _run(f, x, args)
    if out.size != 1:
        raise UnsupportedError(f"a Hessian needs a scalar f(x); f returned shape {out.shape}.")
    n = x.space.n
    ids = sp.csr_array(out.h).indices.astype(np.int64)
    i, j = ids // n, ids % n
    data = np.ones(2 * ids.size, dtype=bool)
    pattern = sp.coo_array((data, (np.r_[i, j], np.r_[j, i])), shape=(n, n))
    return sp.csr_array(pattern)
