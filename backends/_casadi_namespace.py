"""The array namespace (``xp``) of CasadiArray: array-API names mapped onto CasADi.

:data:`NAMESPACE` is what ``di.array_namespace(x)`` returns while CasADi traces f (through
``CasadiArray.__array_namespace__``), so that an f written once, say
``xp.sum(xp.exp(x) * xp.sin(x))``, builds a CasADi expression. It holds the elementwise
functions, reductions (with ``axis`` and ``keepdims``), ``matmul`` and its relatives, the
structural functions (reshape, stack, concat, take, flip, ...: NumPy's own, applied to
element positions), ``where`` (CasADi's if_else: both branches stay in the graph), creation
functions (which make constants) and NumPy's dtypes. A name it lacks raises an
UnsupportedError (also an AttributeError, for hasattr) that says so and names the
alternatives.
"""

from __future__ import annotations

import itertools
import math
import types
from collections.abc import Callable, Sequence
from typing import Any

import casadi as ca
import numpy as np

from diffinterface.backends._casadi_array import (
    CasadiArray,
    asarray,
    check_dims,
    elementwise,
    flat,
    matmul,
    positions,
    take,
)
from diffinterface.backends._casadi_messages import NO_SUCH_OP, NotInNamespaceError

__all__ = ["NAMESPACE"]


# -- elementwise ----------------------------------------------------------------------------
def _unary(fn: Callable[[Any], Any], floating: bool = True) -> Callable[[Any], CasadiArray]:
    return lambda a, /: elementwise(fn, a, floating=floating)


def _binary(fn: Callable[[Any, Any], Any], **kind: Any) -> Callable[[Any, Any], CasadiArray]:
    return lambda a, b, /: elementwise(fn, a, b, **kind)


_ELEMENTWISE: dict[str, Callable[..., CasadiArray]] = {
    **{name: _unary(getattr(ca, name)) for name in (
        "exp", "expm1", "log", "log1p", "log10", "sqrt", "sin", "cos", "tan", "asin", "acos",
        "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "erf")},
    "log2": _unary(lambda e: ca.log(e) / math.log(2)),
    "abs": _unary(ca.fabs, floating=False), "sign": _unary(ca.sign, floating=False),
    "floor": _unary(ca.floor, floating=False), "ceil": _unary(ca.ceil, floating=False),
    "square": _unary(lambda e: e * e, floating=False),
    "negative": _unary(lambda e: -e, floating=False),
    "positive": _unary(lambda e: e, floating=False),
    "add": _binary(ca.plus, floating=False), "subtract": _binary(ca.minus, floating=False),
    "multiply": _binary(ca.times, floating=False), "divide": _binary(ca.rdivide),
    "pow": _binary(ca.power, floating=False), "atan2": _binary(ca.atan2),
    "hypot": _binary(ca.hypot), "copysign": _binary(ca.copysign),
    "maximum": _binary(ca.fmax, floating=False), "minimum": _binary(ca.fmin, floating=False),
    "remainder": _binary(lambda a, b: a - ca.floor(a / b) * b, floating=False),
    "logaddexp": _binary(lambda a, b: ca.fmax(a, b) + ca.log1p(ca.exp(-ca.fabs(a - b)))),
    **{name: _binary(fn, dtype=bool) for name, fn in (
        ("equal", ca.eq), ("not_equal", ca.ne), ("less", ca.lt), ("less_equal", ca.le),
        ("greater", ca.gt), ("greater_equal", ca.ge), ("logical_and", ca.logic_and),
        ("logical_or", ca.logic_or))},
    "logical_not": lambda a, /: elementwise(ca.logic_not, a, dtype=bool),
}  # fmt: skip


def where(condition: Any, a: Any, b: Any, /) -> CasadiArray:
    """``a`` where ``condition`` holds, else ``b``: CasADi's if_else, both branches in the graph.

    Unlike a product with a 0/1 mask, the branch not taken never reaches the result, nor its
    derivative, even where it is inf or NaN (e.g. ``where(x > 0, log(x), 0)``).
    """
    dtype = np.result_type(asarray(a).dtype, asarray(b).dtype)
    return elementwise(lambda c, p, q: ca.if_else(c, p, q), condition, a, b, dtype=dtype)


def clip(a: Any, /, min: Any = None, max: Any = None) -> CasadiArray:
    lower = -np.inf if min is None else min
    upper = np.inf if max is None else max
    return elementwise(
        lambda e, lo, hi: ca.fmin(ca.fmax(e, lo), hi), a, lower, upper, floating=False
    )


# -- reductions -----------------------------------------------------------------------------
def _axes(a: CasadiArray, axis: Any) -> tuple[int, ...]:
    axes = range(a.ndim) if axis is None else axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted({int(ax) % a.ndim for ax in axes})) if a.ndim else ()


def _kept(a: CasadiArray, axes: tuple[int, ...], keepdims: bool, out: CasadiArray) -> CasadiArray:
    if not keepdims:
        return out
    return reshape(out, tuple(1 if ax in axes else n for ax, n in enumerate(a.shape)))


def sum(a: Any, /, axis: Any = None, *, dtype: Any = None, keepdims: bool = False) -> CasadiArray:
    """CasADi's column sums (axis 0) and row sums (axis 1)."""
    a = asarray(a)
    axes, expr = _axes(a, axis), a.expr
    if 0 in axes:
        expr = ca.sum1(expr)
    if 1 in axes:
        expr = ca.sum2(expr)
    shape = tuple(n for ax, n in enumerate(a.shape) if ax not in axes)
    expr = expr.T if a.ndim == 2 and axes == (0,) else expr  # 1×n row → (n,) column
    out = CasadiArray(expr, shape, dtype or (a.dtype if a.dtype.kind == "f" else np.int64))
    return _kept(a, axes, keepdims, out)


def _reduction(
    name: str,
    fold: Callable[[Any, Any], Any],
    whole: Callable[[Any], Any] | None = None,
    dtype: Any = None,
) -> Callable[..., Any]:
    """A reduction by a balanced tree of ``fold`` over the slices of a along the axes
    (or by ``whole`` of all the elements, where CasADi has one)."""

    def reduce(a: Any, /, axis: Any = None, *, keepdims: bool = False) -> CasadiArray:
        a = asarray(a)
        axes = _axes(a, axis)
        if whole is not None and a.size and len(axes) == a.ndim:
            out = CasadiArray(whole(ca.densify(a.expr)), (), dtype or a.dtype)
            return _kept(a, axes, keepdims, out)
        order = (*axes, *(ax for ax in range(a.ndim) if ax not in axes))
        at = np.transpose(positions(a), order)
        slices = at.reshape(-1, *at.shape[len(axes) :])
        if len(slices) == 0:
            raise ValueError(f"xp.{name} of an empty array (it has no identity)")
        parts = [take(a, s, f"xp.{name}") for s in slices]
        while len(parts) > 1:
            pairs = itertools.zip_longest(parts[::2], parts[1::2])
            parts = [p if q is None else elementwise(fold, p, q, floating=False) for p, q in pairs]
        out = parts[0] if dtype is None else CasadiArray(parts[0].expr, parts[0].shape, dtype)
        return _kept(a, axes, keepdims, out)

    reduce.__name__ = name
    return reduce


def mean(a: Any, /, axis: Any = None, *, keepdims: bool = False) -> CasadiArray:
    a = asarray(a)
    count = math.prod(a.shape[ax] for ax in _axes(a, axis))
    return _ELEMENTWISE["divide"](sum(a, axis, keepdims=keepdims), count)


def var(a: Any, /, axis: Any = None, *, correction: float = 0.0, keepdims: bool = False) -> Any:
    a = asarray(a)
    count = math.prod(a.shape[ax] for ax in _axes(a, axis))
    centred = _ELEMENTWISE["subtract"](a, mean(a, axis, keepdims=True))
    squares = sum(_ELEMENTWISE["square"](centred), axis, keepdims=keepdims)
    return _ELEMENTWISE["divide"](squares, count - correction)


def std(a: Any, /, axis: Any = None, *, correction: float = 0.0, keepdims: bool = False) -> Any:
    return _ELEMENTWISE["sqrt"](var(a, axis, correction=correction, keepdims=keepdims))


def cumulative_sum(a: Any, /, *, axis: int | None = None, **_: Any) -> CasadiArray:
    a = asarray(a)
    if a.ndim == 2 and axis is None:
        raise ValueError("cumulative_sum of a 2-d array needs an axis")
    return CasadiArray(ca.cumsum(a.expr, 0 if axis is None else axis % 2), a.shape, a.dtype)


# -- linear algebra -------------------------------------------------------------------------
def vecdot(a: Any, b: Any, /, *, axis: int = -1) -> CasadiArray:
    return sum(_ELEMENTWISE["multiply"](a, b), axis)


def dot(a: Any, b: Any, /) -> CasadiArray:
    """NumPy's dot for ≤ 2-d arrays: matmul, or a product when one of them is 0-d."""
    a, b = asarray(a), asarray(b)
    return _ELEMENTWISE["multiply"](a, b) if a.ndim == 0 or b.ndim == 0 else matmul(a, b)


def outer(a: Any, b: Any, /) -> CasadiArray:
    a, b = reshape(a, (-1,)), reshape(b, (-1,))
    dtype = np.result_type(a.dtype, b.dtype)
    return CasadiArray(ca.mtimes(a.expr, b.expr.T), (a.size, b.size), dtype)


# -- structure ------------------------------------------------------------------------------
def _structural(name: str, numpy_op: Callable[..., Any]) -> Callable[..., CasadiArray]:
    """``numpy_op`` applied to a's element positions, then those elements taken from ``a``."""

    def op(a: Any, /, *args: Any, **kwargs: Any) -> CasadiArray:
        a = asarray(a)
        return take(a, numpy_op(positions(a), *args, **kwargs), f"xp.{name}")

    op.__name__ = name
    return op


reshape = _structural(
    "reshape", lambda p, shape, *, copy=None, order="C": p.reshape(shape, order=order)
)
_STRUCTURAL = {
    "reshape": reshape,
    "expand_dims": _structural("expand_dims", lambda p, axis=0: np.expand_dims(p, axis)),
    "squeeze": _structural("squeeze", lambda p, axis=None: np.squeeze(p, axis)),
    "permute_dims": _structural("permute_dims", np.transpose),
    "transpose": _structural("transpose", np.transpose),
    "matrix_transpose": _structural("matrix_transpose", lambda p: np.swapaxes(p, -1, -2)),
    "broadcast_to": _structural("broadcast_to", np.broadcast_to),
    "take": _structural("take", lambda p, indices, /, *, axis=None: np.take(p, indices, axis)),
    "flip": _structural("flip", lambda p, /, *, axis=None: np.flip(p, axis)),
    "roll": _structural("roll", lambda p, shift, /, *, axis=None: np.roll(p, shift, axis)),
    "tile": _structural("tile", np.tile),
    "repeat": _structural("repeat", lambda p, r, /, *, axis=None: np.repeat(p, r, axis)),
}  # fmt: skip


def diff(a: Any, /, *, axis: int = -1, n: int = 1) -> CasadiArray:
    """Differences of neighbours along ``axis``, ``n`` times (NumPy's diff)."""
    a = asarray(a)
    for _ in range(n):
        length = a.shape[axis]
        ahead = take(a, np.take(positions(a), np.arange(1, length), axis), "xp.diff")
        behind = take(a, np.take(positions(a), np.arange(length - 1), axis), "xp.diff")
        a = _ELEMENTWISE["subtract"](ahead, behind)
    return a


def _join(name: str, numpy_join: Callable[..., np.ndarray]) -> Callable[..., CasadiArray]:
    """Join arrays by ``numpy_join`` of their positions in one column of all their elements."""

    def join(arrays: Sequence[Any], /, *, axis: int | None = 0) -> CasadiArray:
        arrays = [asarray(a) for a in arrays]
        if axis is None:
            arrays, axis = [reshape(a, (-1,)) for a in arrays], 0
        if name == "stack" and arrays:
            check_dims((len(arrays), *arrays[0].shape), "xp.stack")
        offsets = np.cumsum([0] + [a.size for a in arrays])
        where = numpy_join([positions(a) + o for a, o in zip(arrays, offsets, strict=False)], axis)
        column = ca.vertcat(*(flat(a.expr) for a in arrays))
        dtype = np.result_type(*(a.dtype for a in arrays))
        return take(CasadiArray(column, (int(offsets[-1]),), dtype), where, f"xp.{name}")

    join.__name__ = name
    return join


# -- creation (constants) -------------------------------------------------------------------
def _constant(numpy_create: Callable[..., np.ndarray]) -> Callable[..., CasadiArray]:
    return lambda *args, device=None, **kwargs: asarray(numpy_create(*args, **kwargs))


def _like(fill: float | None) -> Callable[..., CasadiArray]:
    def like(a: Any, /, fill_value: Any = None, *, dtype: Any = None, device: Any = None) -> Any:
        a = asarray(a)
        value = fill if fill is not None else fill_value
        return asarray(np.full(a.shape, value, dtype=dtype or a.dtype))

    return like


def astype(a: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> CasadiArray:
    a, dtype = asarray(a), np.dtype(dtype)
    if dtype.kind == "f":  # CasADi computes in double whatever the label
        return CasadiArray(a.expr, a.shape, dtype)
    return asarray(a.value(f"a cast to {dtype}").astype(dtype))


_CREATION = {
    "asarray": asarray, "full": _constant(np.full), "zeros": _constant(np.zeros),
    "ones": _constant(np.ones), "empty": _constant(np.zeros), "eye": _constant(np.eye),
    "linspace": _constant(np.linspace), "arange": _constant(np.arange),
    "zeros_like": _like(0.0), "ones_like": _like(1.0), "empty_like": _like(0.0),
    "full_like": _like(None),
}  # fmt: skip
_CONSTANTS = {
    name: getattr(np, name)
    for name in ("float32", "float64", "int32", "int64", "bool", "pi", "e", "inf", "nan",
                 "newaxis", "finfo", "iinfo", "isdtype", "result_type")
}  # fmt: skip


def vector_norm(a: Any, /, *, axis: Any = None, keepdims: bool = False, ord: Any = 2) -> Any:
    magnitude = _ELEMENTWISE["abs"](a)
    if ord == 2:
        return _ELEMENTWISE["sqrt"](sum(_ELEMENTWISE["square"](a), axis, keepdims=keepdims))
    if ord == 1:
        return sum(magnitude, axis, keepdims=keepdims)
    if ord == np.inf:
        return NAMESPACE.max(magnitude, axis, keepdims=keepdims)
    raise NotInNamespaceError(NO_SUCH_OP.format(what=f"vector_norm of ord={ord!r}"))


class _Namespace(types.ModuleType):
    """A namespace object: hashable (array-api-compat collects namespaces in a set)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        prefix = "xp.linalg." if self.__name__.endswith("linalg") else "xp."
        raise NotInNamespaceError(NO_SUCH_OP.format(what=f"function {prefix}{name}"))


NAMESPACE = _Namespace("diffinterface.casadi_namespace", __doc__)
_LINALG = _Namespace("diffinterface.casadi_namespace.linalg")
_LINALG.__dict__.update(matmul=matmul, vecdot=vecdot, outer=outer, vector_norm=vector_norm)
NAMESPACE.__dict__.update(
    **_ELEMENTWISE, **_STRUCTURAL, **_CREATION, **_CONSTANTS,
    where=where, clip=clip, sum=sum, mean=mean, var=var, std=std, diff=diff,
    prod=_reduction("prod", ca.times), max=_reduction("max", ca.fmax, ca.mmax),
    min=_reduction("min", ca.fmin, ca.mmin), all=_reduction("all", ca.logic_and, dtype=bool),
    any=_reduction("any", ca.logic_or, dtype=bool), cumulative_sum=cumulative_sum,
    matmul=matmul, vecdot=vecdot, dot=dot, outer=outer, astype=astype,
    concat=_join("concat", np.concatenate), concatenate=_join("concat", np.concatenate),
    stack=_join("stack", np.stack),
    linalg=_LINALG,
)  # fmt: skip
CasadiArray.namespace = NAMESPACE
