"""Array-API names over TensorFlow: the ``xp`` that f gets for tf.Tensor and tf.Variable.

array-api-compat does not cover TensorFlow, and ``tf.experimental.numpy`` follows NumPy's
spellings rather than the array API's and changes TensorFlow process-wide once its NumPy
behaviour is enabled, so this is a thin hand-written map onto ``tf`` (plus a few
``tf.experimental.numpy`` functions, called as plain functions: flip, roll, eye, tril,
triu, moveaxis, matmul, dot, which need no switch). It works on eager
tensors, on variables, inside GradientTape / ForwardAccumulator and on the symbolic
tensors of ``tf.function`` and ``tf.vectorized_map``: ``di.array_namespace`` returns
:data:`NAMESPACE` for all of them (``diffinterface.backends._tensorflow_arrays``).

Dtypes follow the array API: functions of several arrays promote them (float32 with float64
gives float64, which TensorFlow's own ops refuse), Python scalars take the dtype of the
arrays beside them, and a function with nothing to follow uses NumPy's defaults, float64 and
int64 (never TensorFlow's float32), so ``xp.asarray(1.0)`` cannot pull float64 work down to
float32. Indexing and slicing are TensorFlow's own; tensors are immutable (an assignment
into one is explained by ``diffinterface.backends._tensorflow_arrays.mutation_error``).
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from types import SimpleNamespace
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow.experimental.numpy as tnp  # its functions only; no global switch

__all__ = ["NAMESPACE"]

_Array = tf.Tensor | tf.Variable
Axis = int | Sequence[int] | None


# --------------------------------------------------------------------------------------
# dtypes and conversion

_KINDS = {
    "bool": lambda d: d.is_bool,
    "signed integer": lambda d: d.is_integer and not d.is_unsigned,
    "unsigned integer": lambda d: d.is_integer and d.is_unsigned,
    "integral": lambda d: d.is_integer,
    "real floating": lambda d: d.is_floating,
    "complex floating": lambda d: d.is_complex,
    "numeric": lambda d: d.is_integer or d.is_floating or d.is_complex,
}


def _dtype(a: Any) -> Any:
    """The NumPy dtype of an array argument, or the Python scalar itself (a weak type)."""
    if isinstance(a, _Array):
        return a.dtype.as_numpy_dtype
    if isinstance(a, np.ndarray | np.generic):
        return a.dtype
    if isinstance(a, type | np.dtype):
        return np.dtype(a)
    if isinstance(a, bool | int | float | complex):
        return a
    return np.asarray(a).dtype  # nested sequences


def result_type(*arrays_and_dtypes: Any) -> tf.DType:
    """The promoted dtype (NumPy 2 rules: Python scalars are weak)."""
    items = [a.as_numpy_dtype if isinstance(a, tf.DType) else _dtype(a) for a in arrays_and_dtypes]
    return tf.as_dtype(np.result_type(*items))


def _promote(*args: Any) -> list[tf.Tensor]:
    dtype = result_type(*args)
    return [asarray(a, dtype=dtype) for a in args]


def asarray(obj: Any, /, *, dtype: Any = None, device: str | None = None, copy: Any = None) -> Any:
    """``obj`` as a tensor; a tensor keeps its dtype, Python floats default to float64."""
    if isinstance(obj, list | tuple) and builtins.any(isinstance(o, _Array) for o in obj):
        stacked = tf.stack(_promote(*obj))  # a sequence of tensors (possibly symbolic)
        return stacked if dtype is None else tf.cast(stacked, dtype)
    if dtype is None and not isinstance(obj, _Array):
        dtype = result_type(obj)
    with _on(device):
        if isinstance(obj, _Array) and (dtype is None or obj.dtype == tf.as_dtype(dtype)):
            return tf.identity(obj) if copy or isinstance(obj, tf.Variable) else obj
        if isinstance(obj, _Array):
            return tf.cast(obj, dtype)
        return tf.convert_to_tensor(obj, dtype=dtype)


def _on(device: str | None) -> AbstractContextManager[Any]:
    return tf.device(device) if device else nullcontext()


def isdtype(dtype: Any, kind: str | Any | tuple[Any, ...]) -> bool:
    if isinstance(kind, tuple):
        return builtins.any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, str):
        return bool(_KINDS[kind](tf.as_dtype(dtype)))
    return tf.as_dtype(dtype) == tf.as_dtype(kind)


# --------------------------------------------------------------------------------------
# functions with some logic of their own; the one-liners are in the tables below


def where(condition: Any, x1: Any, x2: Any, /) -> Any:
    return tf.where(asarray(condition, dtype=tf.bool), *_promote(x1, x2))


def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:
    x = asarray(x)
    lo = x.dtype.min if min is None else asarray(min, dtype=x.dtype)
    hi = x.dtype.max if max is None else asarray(max, dtype=x.dtype)
    return tf.clip_by_value(x, lo, hi)


def _axis(axis: Axis) -> Any:
    return list(axis) if isinstance(axis, tuple | list) else axis


def _reduction(op: Callable[..., Any], dtype_: Any = None) -> Callable[..., Any]:
    def f(x: Any, /, *, axis: Axis = None, keepdims: bool = False, dtype: Any = None) -> Any:
        x = asarray(x, dtype=dtype or dtype_)
        return op(x, axis=_axis(axis), keepdims=keepdims)

    return f


def _variance(
    x: Any, /, *, axis: Axis = None, correction: float = 0.0, keepdims: bool = False
) -> Any:
    x = asarray(x)
    var = tf.math.reduce_variance(x, axis=_axis(axis), keepdims=keepdims)
    if not correction:
        return var
    n = tf.cast(tf.size(x) // tf.maximum(tf.size(var), 1), x.dtype)
    return var * n / (n - correction)


def _arg(op: Callable[..., Any]) -> Callable[..., Any]:
    def f(x: Any, /, *, axis: int | None = None, keepdims: bool = False) -> Any:
        x = asarray(x)
        out = op(x if axis is not None else tf.reshape(x, [-1]), axis=axis or 0)
        if keepdims:
            out = tf.reshape(out, [1] * x.shape.rank) if axis is None else tf.expand_dims(out, axis)
        return out

    return f


def cumulative_sum(x: Any, /, *, axis: int | None = None, include_initial: bool = False) -> Any:
    x, axis = asarray(x), axis or 0
    out = tf.cumsum(x, axis=axis)
    if include_initial:
        out = tf.concat([tf.zeros_like(tf.gather(x, [0], axis=axis)), out], axis=axis)
    return out


def vector_norm(x: Any, /, *, axis: Axis = None, keepdims: bool = False, ord: float = 2) -> Any:
    a, axis = tf.abs(asarray(x)), _axis(axis)
    if ord == math.inf:
        return tf.reduce_max(a, axis=axis, keepdims=keepdims)
    if ord == 2:
        return tf.sqrt(tf.reduce_sum(a * a, axis=axis, keepdims=keepdims))
    return tf.reduce_sum(a**ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)


def _placed(device: str | None, make: Callable[..., Any], *args: Any) -> Any:
    with _on(device):
        return make(*args)


def arange(start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None,
           device: str | None = None) -> Any:  # fmt: skip
    start, stop = (0, start) if stop is None else (start, stop)
    with _on(device):
        return tf.range(start, stop, step, dtype=dtype or result_type(start, stop, step))


def linspace(start: Any, stop: Any, /, num: int, *, dtype: Any = None,
             device: str | None = None, endpoint: bool = True) -> Any:  # fmt: skip
    a, b = _promote(start, stop)
    if dtype is not None or not a.dtype.is_floating:
        a, b = tf.cast(a, dtype or tf.float64), tf.cast(b, dtype or tf.float64)
    with _on(device):
        return tf.linspace(a, b, num) if endpoint else tf.linspace(a, b, num + 1)[:-1]


def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    tensors = _promote(*arrays)
    if axis is None:
        return tf.concat([tf.reshape(a, [-1]) for a in tensors], axis=0)
    return tf.concat(tensors, axis=axis)


def _unary(op: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda x, /: op(x if isinstance(x, _Array) else asarray(x))


def _binary(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    return lambda x1, x2, /: op(*_promote(x1, x2))


def _log(base: float) -> Callable[[Any], Any]:
    return lambda x: tf.math.log(x) / tf.constant(math.log(base), x.dtype)


def _order(descending: bool) -> str:
    return "DESCENDING" if descending else "ASCENDING"


_ELEMENTWISE_1 = {
    "abs": tf.abs, "exp": tf.exp, "expm1": tf.math.expm1, "log": tf.math.log,
    "log1p": tf.math.log1p, "log2": _log(2.0), "log10": _log(10.0), "sqrt": tf.sqrt,
    "square": tf.square, "sin": tf.sin, "cos": tf.cos, "tan": tf.tan, "asin": tf.asin,
    "acos": tf.acos, "atan": tf.atan, "sinh": tf.sinh, "cosh": tf.cosh, "tanh": tf.tanh,
    "asinh": tf.asinh, "acosh": tf.acosh, "atanh": tf.atanh, "sign": tf.sign,
    "floor": tf.floor, "ceil": tf.math.ceil, "round": tf.round, "negative": tf.negative,
    "trunc": lambda x: tf.sign(x) * tf.floor(tf.abs(x)), "positive": tf.identity,
    "isnan": tf.math.is_nan, "isinf": tf.math.is_inf, "isfinite": tf.math.is_finite,
    "logical_not": tf.logical_not, "conj": tf.math.conj, "real": tf.math.real,
    "imag": tf.math.imag,
}  # fmt: skip
_ELEMENTWISE_2 = {
    "add": tf.add, "subtract": tf.subtract, "multiply": tf.multiply, "divide": tf.divide,
    "pow": tf.pow, "maximum": tf.maximum, "minimum": tf.minimum, "atan2": tf.atan2,
    "hypot": lambda a, b: tf.sqrt(a * a + b * b), "floor_divide": tf.math.floordiv,
    "remainder": tf.math.floormod, "equal": tf.equal, "not_equal": tf.not_equal,
    "logaddexp": lambda a, b: tf.maximum(a, b) + tf.math.log1p(tf.exp(-tf.abs(a - b))),
    "less": tf.less, "less_equal": tf.less_equal, "greater": tf.greater,
    "greater_equal": tf.greater_equal, "logical_and": tf.logical_and,
    "logical_or": tf.logical_or, "logical_xor": tf.math.logical_xor,
}  # fmt: skip
_FILLS = {"zeros": tf.zeros, "ones": tf.ones, "empty": tf.zeros}
_conj_times = _binary(lambda a, b: tf.math.conj(a) * b)
_OTHERS = {
    "asarray": asarray, "astype": lambda x, dtype, /, *, copy=True: tf.cast(asarray(x), dtype),
    "isdtype": isdtype, "result_type": result_type, "where": where, "clip": clip,
    "finfo": lambda t: np.finfo(tf.as_dtype(getattr(t, "dtype", t)).as_numpy_dtype),
    "iinfo": lambda t: np.iinfo(tf.as_dtype(getattr(t, "dtype", t)).as_numpy_dtype),
    "sum": _reduction(tf.reduce_sum), "prod": _reduction(tf.reduce_prod),
    "mean": _reduction(tf.reduce_mean), "max": _reduction(tf.reduce_max),
    "min": _reduction(tf.reduce_min), "any": _reduction(tf.reduce_any, tf.bool),
    "all": _reduction(tf.reduce_all, tf.bool), "var": _variance,
    "std": lambda x, /, **kw: tf.sqrt(_variance(x, **kw)),
    "argmax": _arg(tf.argmax), "argmin": _arg(tf.argmin), "cumulative_sum": cumulative_sum,
    "matmul": lambda x1, x2, /: tnp.matmul(*_promote(x1, x2)),
    "dot": lambda x1, x2, /: tnp.dot(*_promote(x1, x2)),  # NumPy's; not in the array API
    "vecdot": lambda x1, x2, /, *, axis=-1: tf.reduce_sum(_conj_times(x1, x2), axis=axis),
    "tensordot": lambda x1, x2, /, *, axes=2: tf.tensordot(*_promote(x1, x2), axes=axes),
    "einsum": lambda subscripts, /, *operands: tf.einsum(subscripts, *_promote(*operands)),
    "outer": lambda x1, x2, /: tf.tensordot(*_promote(x1, x2), axes=0),
    **{name: lambda shape, *, dtype=None, device=None, fill=fill: _placed(
        device, fill, shape, dtype or tf.float64) for name, fill in _FILLS.items()},
    **{f"{name}_like": lambda x, /, *, dtype=None, device=None, fill=fill: _placed(
        device, fill, tf.shape(x), dtype or x.dtype) for name, fill in _FILLS.items()},
    "full": lambda shape, fill_value, *, dtype=None, device=None: _placed(
        device, tf.fill, shape, asarray(fill_value, dtype=dtype)),
    "full_like": lambda x, /, fill_value, *, dtype=None, device=None: _placed(
        device, tf.fill, tf.shape(x), asarray(fill_value, dtype=dtype or x.dtype)),
    "eye": lambda n_rows, n_cols=None, /, *, k=0, dtype=None, device=None: _placed(
        device, tnp.eye, n_rows, n_cols, k, dtype or tf.float64),
    "arange": arange, "linspace": linspace,
    "tril": lambda x, /, *, k=0: tnp.tril(x, k), "triu": lambda x, /, *, k=0: tnp.triu(x, k),
    "meshgrid": lambda *arrays, indexing="xy": tf.meshgrid(*_promote(*arrays), indexing=indexing),
    "reshape": lambda x, /, shape, *, copy=None: tf.reshape(x, shape),
    "stack": lambda arrays, /, *, axis=0: tf.stack(_promote(*arrays), axis=axis),
    "concat": concat, "unstack": lambda x, /, *, axis=0: tuple(tf.unstack(x, axis=axis)),
    "expand_dims": lambda x, /, *, axis=0: tf.expand_dims(x, axis),
    "squeeze": lambda x, /, axis: tf.squeeze(x, axis=_axis(axis)),
    "permute_dims": lambda x, /, axes: tf.transpose(x, axes),
    "matrix_transpose": lambda x, /: tf.linalg.matrix_transpose(x),
    "moveaxis": lambda x, source, destination, /: tnp.moveaxis(x, source, destination),
    "broadcast_to": lambda x, /, shape: tf.broadcast_to(x, shape),
    "flip": lambda x, /, *, axis=None: tnp.flip(x, axis),
    "roll": lambda x, /, shift, *, axis=None: tnp.roll(x, shift, axis),
    "tile": lambda x, repetitions, /: tf.tile(x, repetitions),
    "repeat": lambda x, repeats, /, *, axis=None: tf.repeat(x, repeats, axis=axis),
    "take": lambda x, indices, /, *, axis=None: tf.gather(
        tf.reshape(x, [-1]) if axis is None else x, indices, axis=axis or 0),
    "sort": lambda x, /, *, axis=-1, descending=False, stable=True: tf.sort(
        x, axis, _order(descending)),
    "argsort": lambda x, /, *, axis=-1, descending=False, stable=True: tf.argsort(
        x, axis, _order(descending), stable),
    "float32": tf.float32, "float64": tf.float64, "int32": tf.int32, "int64": tf.int64,
    "bool": tf.bool, "complex64": tf.complex64, "complex128": tf.complex128,
    "e": math.e, "pi": math.pi, "inf": math.inf, "nan": math.nan, "newaxis": None,
}  # fmt: skip
_LINALG = {
    name: _OTHERS[name] for name in ("matmul", "tensordot", "outer", "matrix_transpose", "vecdot")
} | {
    "vector_norm": vector_norm, "inv": tf.linalg.inv,
    "det": tf.linalg.det, "cholesky": lambda x, /, *, upper=False: tf.linalg.adjoint(
        tf.linalg.cholesky(x)) if upper else tf.linalg.cholesky(x),
    "solve": lambda a, b, /: tf.linalg.solve(a, b) if b.shape.rank > 1
    else tf.linalg.solve(a, b[:, None])[:, 0],
    "diagonal": lambda x, /, *, offset=0: tf.linalg.diag_part(x, k=offset),
    "trace": lambda x, /, *, offset=0: tf.reduce_sum(tf.linalg.diag_part(x, k=offset), -1),
}  # fmt: skip

NAMESPACE = SimpleNamespace(
    **{name: _unary(op) for name, op in _ELEMENTWISE_1.items()},
    **{name: _binary(op) for name, op in _ELEMENTWISE_2.items()},
    **_OTHERS,
    linalg=SimpleNamespace(**_LINALG),
)
"""The namespace ``di.array_namespace`` returns for TensorFlow arrays."""
