"""The eight operators as CasADi expressions of a traced f: what the CasADi backend
evaluates, numerically (a Function of NumPy buffers) or inside another trace.

:func:`operator_outputs` differentiates the expression ``y`` of f with respect to the
symbol ``x`` (both row-major columns, see ``diffinterface.backends._casadi_tracing``) and
returns the kernel's outputs in the order of ``diffinterface._derived`` as
:class:`Output`\\ s: an expression laid out so that a buffer writes it as a C-contiguous
NumPy array of the output's shape (a matrix M of NumPy shape (a, b) is given as Mᵀ, which
CasADi stores column-major), or, for the sparse Jacobian and Hessian, a sparse expression
whose nonzeros a buffer writes in CSR order. :func:`symbolic` computes the same outputs on
symbolic arrays, for a derivative taken inside another trace (SecondOrder, AutoSparse's
compressed products).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np

from diffinterface.backends._casadi_array import CasadiArray, asarray, check_dims, flat, from_flat

__all__ = ["TANGENTS", "Output", "operator_outputs", "symbolic", "tangent_matrix"]

#: operators that take tangents: shaped like x ("x") or like f(x) ("y")
TANGENTS = {"pushforward": "x", "hvp": "x", "pullback": "y"}


@dataclass(frozen=True)
class Output:
    """One kernel output: its expression, the result's NumPy shape, whether it is the value
    f(x) (of f's own dtype), and its layout: ``"dense"`` (the buffer writes every entry),
    ``"scatter"`` (a matrix Mᵀ whose nonzeros the buffer writes, scattered into a dense
    result: a densified n×n Hessian would be n² instructions, and n² lines of generated C)
    or ``"csr"`` (the same nonzeros as a scipy.sparse CSR matrix)."""

    expr: Any
    shape: tuple[int, ...]
    value: bool = False
    layout: str = "dense"


def operator_outputs(
    operator: str,
    x: Any,
    y: Any,
    shapes: tuple[tuple[int, ...], tuple[int, ...]],
    tangent: Any = None,
    batch: int | None = None,
    sparse: bool = False,
) -> list[Output]:
    """The outputs of ``operator``'s kernel for f's expression ``y`` of the symbol ``x``.

    Args:
        operator: one of the eight operators.
        x: x's symbol, a column of x.size elements.
        y: f(x), a dense column of f(x).size elements.
        shapes: (x's shape, f(x)'s shape).
        tangent: for pushforward, pullback and hvp: the tangents as the columns of a
            matrix (x.size or f(x).size rows, one column per tangent).
        batch: the number of tangents of a batch, None for one tangent.
        sparse: jacobian and hessian as sparse matrices (CSR nonzeros).
    """
    x_shape, y_shape = shapes
    lead = () if batch is None else (batch,)
    value = Output(y, y_shape, value=True)
    if operator == "pushforward":
        return [value, Output(_jtimes(y, x, tangent, False), lead + y_shape)]
    if operator == "pullback":
        return [value, Output(_jtimes(y, x, tangent, True), lead + x_shape)]
    if operator == "derivative":
        return [value, Output(ca.densify(ca.jacobian(y, x)), y_shape)]
    if operator == "second_derivative":
        d = ca.jacobian(y, x)
        second = ca.densify(ca.jacobian(d, x))
        return [value, Output(ca.densify(d), y_shape), Output(second, y_shape)]
    if operator == "gradient":
        return [value, Output(ca.densify(ca.gradient(y, x)), x_shape)]
    if operator == "hvp":
        g = ca.gradient(y, x)
        return [
            Output(ca.densify(g), x_shape),
            Output(_jtimes(g, x, tangent, False), lead + x_shape),
        ]
    if operator == "jacobian":
        shape = (y.numel(), x.numel()) if sparse else y_shape + x_shape
        return [value, _matrix(ca.jacobian(y, x).T, shape, sparse)]
    assert operator == "hessian", operator
    h, g = ca.hessian(y, x)
    shape = (x.numel(), x.numel()) if sparse else x_shape + x_shape
    return [value, Output(ca.densify(g), x_shape), _matrix(h.T, shape, sparse)]


def _matrix(transposed: Any, shape: tuple[int, ...], sparse: bool) -> Output:
    """A Jacobian or Hessian given as Mᵀ: its nonzeros as CSR, or as a dense result, written
    whole by the Function where M is mostly nonzero, else scattered (the zeros of a
    densified sparse matrix would each be an instruction)."""
    if sparse:
        return Output(transposed, shape, layout="csr")
    if 2 * transposed.nnz() > transposed.numel():
        return Output(ca.densify(transposed), shape)
    return Output(transposed, shape, layout="scatter")


def _jtimes(y: Any, x: Any, tangents: Any, reverse: bool) -> Any:
    """J·T (or Jᵀ·T) for the tangents as columns; no columns for no tangents."""
    rows = x.numel() if reverse else y.numel()
    if tangents.shape[1] == 0 or rows == 0 or tangents.shape[0] == 0:
        return type(y).zeros(rows, tangents.shape[1])
    return ca.densify(ca.jtimes(y, x, tangents, reverse))


def tangent_matrix(t: Any, size: int, batch: int | None, kind: Any) -> Any:
    """Tangents (a NumPy array or a CasadiArray: one shaped like x or f(x), or a stack of
    them) as the columns of a CasADi matrix."""
    k = 1 if batch is None else batch
    if isinstance(t, CasadiArray):
        if batch is None or t.ndim == 1:  # one tangent, or a batch of scalars
            return ca.reshape(flat(t.expr), size, k)
        return kind(t.expr.T if t.shape == (k, size) else ca.reshape(flat(t.expr), size, k))
    return ca.DM(np.reshape(np.asarray(t, dtype=np.float64), (k, size)).T)


def symbolic(
    operator: str,
    fn: Callable[..., Any],
    x: Any,
    tangent: Any,
    consts: tuple[Any, ...],
    batch: int | None,
) -> tuple[CasadiArray, ...]:
    """``operator``'s kernel outputs for symbolic x (inside another trace), as CasadiArrays.

    f is traced again at a fresh symbol of x's shape, differentiated there, and the symbol
    is replaced by x's expression.

    Raises:
        UnsupportedError: an output would have more than 2 dimensions.
    """
    x = asarray(x)  # a constant x (NumPy) with symbolic tangents or Constants
    given = (x, tangent, *consts)
    kind = ca.MX if any(isinstance(getattr(a, "expr", None), ca.MX) for a in given) else ca.SX
    symbol = kind.sym("x", x.size)
    out = asarray(fn(CasadiArray(from_flat(symbol, x.shape), x.shape, x.dtype), *consts))
    y = ca.densify(kind(flat(out.expr)))
    t = None
    if operator in TANGENTS:
        size = x.size if TANGENTS[operator] == "x" else y.numel()
        t = tangent_matrix(tangent, size, batch, kind)
    outputs = operator_outputs(operator, symbol, y, (x.shape, out.shape), t, batch)
    exprs = ca.substitute([o.expr for o in outputs], [symbol], [kind(flat(x.expr))])
    dtype = np.result_type(x.dtype, out.dtype)
    arrays = []
    for o, e in zip(outputs, exprs, strict=True):
        check_dims(o.shape, f"the {operator} of a traced function")
        column = ca.densify(ca.vec(e)) if math.prod(o.shape) else kind(0, 1)
        arrays.append(
            CasadiArray(from_flat(column, o.shape), o.shape, out.dtype if o.value else dtype)
        )
    return tuple(arrays)
