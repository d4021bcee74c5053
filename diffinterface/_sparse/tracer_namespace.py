"""The sparsity tracer's array namespace: what ``di.array_namespace`` returns for index-set
arrays.

:data:`NAMESPACE` holds the operations of ``diffinterface._sparse.index_operations`` under
their array-API names (and NumPy's spellings), NumPy's own functions for constant
arguments, and a clear UnsupportedError for anything else. Importing this module registers
it with ``diffinterface._sparse.tracer``, for the arrays' ``__array_namespace__`` and the
NumPy ufuncs called on them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from diffinterface._sparse.index_operations import (
    abs,
    add,
    concat,
    cumsum,
    diff,
    divide,
    matmul,
    matrix_transpose,
    max,
    multiply,
    nonlinear_binary,
    permute_dims,
    pow,
    prod,
    reshape,
    stack,
    subtract,
    sum,
    vecdot,
    where,
)
from diffinterface._sparse.index_propagation import condition, structural, unary
from diffinterface._sparse.tracer import IndexSetArray, register_namespace, unsupported

__all__ = ["NAMESPACE"]


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
