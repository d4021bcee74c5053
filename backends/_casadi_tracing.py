"""Trace f once with CasADi symbols: the expression graph the CasADi backend differentiates.

:func:`trace` calls ``f(x, *contexts)`` with x a :class:`CasadiArray` of x's shape whose
elements are CasADi symbols, and returns a :class:`Traced`: the symbol of x and the
expression of f(x), both as one column of elements in row-major (NumPy C) order. In that
order ``casadi.jacobian(traced.y, traced.x)`` is the (y.size, x.size) matrix whose reshape
to ``y.shape + x.shape`` is diffinterface's Jacobian, and a C-contiguous NumPy array's
memory is the column itself (``Function.buffer()`` reads and writes it without a copy).

Floating-point array contexts (and Python floats) become symbolic parameters of the same
kind, so one Function serves every value of them; every other context (ints, integer
index arrays, callables, ...) is passed to f as it is and baked into the graph: a prepared
call must check that it has not changed (:attr:`Traced.static`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import casadi as ca
import numpy as np

from diffinterface._arrays import ArrayKind, register_kind
from diffinterface._errors import UnsupportedError
from diffinterface.backends._casadi_array import CasadiArray, asarray, check_dims, flat, from_flat
from diffinterface.backends._casadi_messages import NO_VALUES, OTHERS, refuse
from diffinterface.backends._casadi_namespace import NAMESPACE

__all__ = ["CasadiArrays", "Traced", "flat_input", "trace"]

_FLOAT64 = np.dtype(np.float64)


class CasadiArrays(ArrayKind):
    """CasadiArray, the symbolic arrays f receives while CasADi traces it, as an array kind:
    ``di.array_namespace`` gives their namespace; they have no values to convert."""

    name = "casadi"
    library = "CasADi"
    float_dtypes = frozenset({"float32", "float64"})

    def is_array(self, a: Any) -> bool:
        return isinstance(a, CasadiArray)

    def describe_array(self, a: Any) -> str:
        return "a CasADi symbolic array"

    def to_numpy(self, a: Any) -> np.ndarray:
        what = "another library (a nested di call, di.DifferentiateWith, np.asarray)"
        if isinstance(a.expr, ca.DM) or not ca.symvar(a.expr):
            return a.value(what)
        raise refuse(NO_VALUES, what=what, others=OTHERS)

    def traced_by(self, a: Any) -> str | None:
        return "CasADi"

    def namespace(self, arrays: tuple[Any, ...]) -> Any:
        return NAMESPACE


register_kind(CasadiArrays(), ("diffinterface.backends._casadi_array",))

_SYMBOLS: dict[str, Any] = {"SX": ca.SX, "MX": ca.MX}


@dataclasses.dataclass(frozen=True)
class Traced:
    """f traced with CasADi symbols (see the module docstring).

    Attributes:
        x: x's symbol, an x.size × 1 SX or MX column, x's elements in row-major order.
        y: f(x)'s expression, a dense y.size × 1 column of the same kind, row-major order.
        x_shape: x's shape (0, 1 or 2 dimensions).
        y_shape: f(x)'s shape.
        dtype: x's dtype; CasADi computes in float64, so results must be cast back to it.
        y_dtype: f(x)'s dtype.
        parameters: ``(index, symbol)`` per context that became a symbolic parameter: the
            context at ``index`` of ``contexts``, as a row-major column symbol.
        static: ``(index, value)`` per context passed to f as it was (baked into y).
    """

    x: Any
    y: Any
    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    dtype: np.dtype
    parameters: tuple[tuple[int, Any], ...] = ()
    static: tuple[tuple[int, Any], ...] = ()
    y_dtype: np.dtype = _FLOAT64

    def function(self, name: str = "f", options: dict[str, Any] | None = None) -> Any:
        """``casadi.Function(name, [x, *parameters], [y])``, inputs named x, p0, p1, ..."""
        inputs = [self.x, *(symbol for _, symbol in self.parameters)]
        names = ["x", *(f"p{i}" for i, _ in self.parameters)]
        return ca.Function(name, inputs, [self.y], names, ["y"], options or {})

    def inputs(self, x: Any, contexts: Sequence[Any] = ()) -> list[np.ndarray]:
        """The Function's inputs for these x and contexts: float64 row-major columns."""
        return [flat_input(x), *(flat_input(contexts[i]) for i, _ in self.parameters)]


def flat_input(a: Any) -> np.ndarray:
    """a's elements as a C-contiguous float64 vector (a view when a already is one)."""
    return np.ascontiguousarray(a, dtype=np.float64).reshape(-1)


def trace(
    f: Callable[..., Any],
    shape: tuple[int, ...],
    dtype: Any = np.float64,
    contexts: Sequence[Any] = (),
    *,
    symbols: str = "SX",
) -> Traced:
    """Call ``f(x, *contexts)`` once with CasADi symbols for x and return its expression graph.

    Args:
        f: the model, written with ``xp = di.array_namespace(x)`` (or operators, indexing
            and NumPy ufuncs on x); it returns one array of at most 2 dimensions.
        shape: x's shape, of at most 2 dimensions.
        dtype: x's real floating dtype (CasADi computes in float64 whatever it is).
        contexts: the extra arguments of f. Floating-point arrays and Python floats become
            symbolic parameters; anything else is passed as it is (see :attr:`Traced.static`).
        symbols: "SX" (scalar graph: the fastest evaluation of scalar code, exact sparsity,
            flat generated C) or "MX" (matrix graph: vector operations stay whole, cheaper
            to trace and evaluate for large vectorized models).

    Raises:
        UnsupportedError: f does something a trace cannot follow (control flow on values,
            more than 2 dimensions, writing into arrays, a name the namespace lacks); the
            message names it and the way out.

    Example:
        >>> import casadi, numpy as np, diffinterface as di
        >>> def f(x):
        ...     xp = di.array_namespace(x)
        ...     return xp.sum(xp.exp(x) * xp.sin(x))
        >>> traced = trace(f, (3,))
        >>> grad = casadi.Function("grad", [traced.x], [casadi.gradient(traced.y, traced.x)])
        >>> grad(np.zeros(3))  # a DM; Function.buffer() writes into a NumPy array instead
        DM([1, 1, 1])
    """
    kind = _SYMBOLS.get(symbols)
    if kind is None:
        raise ValueError(f"symbols={symbols!r}: expected 'SX' or 'MX'")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise UnsupportedError(f"CasADi differentiates real floating-point x, not {dtype}")
    check_dims(tuple(shape), "x")
    x = kind.sym("x", int(np.prod(shape)))
    arguments: list[Any] = []
    parameters, static = [], []
    for i, context in enumerate(contexts):
        if _is_parameter(context):
            value = np.asarray(context)
            check_dims(value.shape, f"context {i} (a constant array)")
            symbol = kind.sym(f"p{i}", value.size)
            parameters.append((i, symbol))
            arguments.append(CasadiArray(from_flat(symbol, value.shape), value.shape, value.dtype))
        else:
            static.append((i, context))
            arguments.append(context)
    out = f(CasadiArray(from_flat(x, tuple(shape)), tuple(shape), dtype), *arguments)
    if isinstance(out, tuple | list | dict):
        raise UnsupportedError(
            f"trace follows an f that returns one array; this f returned a {type(out).__name__}. "
            "Trace each output in its own f, or stack them with xp.stack / xp.concat."
        )
    y = asarray(out)
    column = ca.densify(kind(flat(y.expr)))
    return Traced(
        x, column, tuple(shape), y.shape, dtype, tuple(parameters), tuple(static), y.dtype
    )


def _is_parameter(context: Any) -> bool:
    if isinstance(context, float):
        return True
    return isinstance(context, np.ndarray | np.floating) and np.asarray(context).dtype.kind == "f"
