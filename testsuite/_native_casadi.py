"""Hand-written CasADi counterparts: the operator's own ``casadi.Function``, called the
fastest way.

A CasADi user writes f's expression with CasADi symbols and builds one Function of the
derivative: ``casadi.gradient``, ``casadi.jacobian``, ``casadi.hessian`` or ``jtimes`` of the
gradient (forward over reverse) for an HVP. Here f's expression is the same graph a user
would write by hand (f traced once by the backend's tracer, at a flat x), and the Function
is called two ways: through a buffer with its input and output arrays allocated once (no
CasADi matrix per call: the fastest way there is) and as ``F(x).full()`` (the usual way,
20-60 µs of conversions). Array Constants are parameters of the Function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["casadi_candidates"]


def casadi_candidates(
    backend: Any, operator: str, f: Callable[..., Any], args: list[Any]
) -> list[tuple[str, Callable[[], Any]]]:
    """(method, call) pairs computing ``operator`` of ``f(x, [t,] *consts)`` at ``args``.

    Args:
        backend: the AutoCasADi configuration (its ``symbols``).
        operator: "gradient", "jacobian", "hessian" or "hvp".
        f: f of x (an array, or a dict / list / tuple of arrays) and the array Constants.
        args: x, the tangent for an HVP, then the array Constants (NumPy).
    """
    import casadi as ca

    from diffinterface.backends._casadi_tracing import trace

    x, rest = args[0], list(args[1:])
    t = rest.pop(0) if operator == "hvp" else None
    flat, unflatten = _flat(x)
    traced = trace(
        lambda v, *c: f(unflatten(v), *c), flat.shape, flat.dtype, rest, symbols=backend.symbols
    )
    xs, y = traced.x, traced.y
    inputs = [xs]
    if operator == "gradient":
        expr = ca.gradient(y, xs)
    elif operator == "jacobian":
        expr = ca.jacobian(y, xs).T  # Jᵀ column-major: J row-major
    elif operator == "hessian":
        expr = ca.hessian(y, xs)[0]
    else:
        ts = type(xs).sym("t", xs.numel())
        inputs.append(ts)
        expr = ca.jtimes(ca.gradient(y, xs), xs, ts)
    inputs += [symbol for _, symbol in traced.parameters]
    function = ca.Function(operator, inputs, [ca.densify(expr)])
    values = [flat.astype(np.float64)]
    if t is not None:
        values.append(np.ascontiguousarray(t, dtype=np.float64).reshape(-1))
    values += [
        np.ascontiguousarray(rest[i], dtype=np.float64).reshape(-1) for i, _ in traced.parameters
    ]
    shape = _result_shape(operator, x, traced.y_shape)
    out = np.empty(math.prod(shape))
    buffer, evaluate = function.buffer()
    for i, v in enumerate(values):
        buffer.set_arg(i, v.data)
    buffer.set_res(0, out.data)
    shaped = out.reshape(shape)

    keep = (function, buffer, values, out)  # the buffer holds raw pointers into these

    def buffered() -> Any:
        assert keep
        evaluate()
        return _unflat_result(operator, shaped, unflatten)

    def called() -> Any:
        r = function(*values).full()  # Jᵀ for a Jacobian
        return _unflat_result(
            operator, r.T if operator == "jacobian" else r.reshape(shape), unflatten
        )

    return [
        ("casadi.Function via buffer (inputs and output allocated once)", buffered),
        ("casadi.Function F(x).full()", called),
    ]


def _result_shape(operator: str, x: Any, y_shape: tuple[int, ...]) -> tuple[int, ...]:
    n = sum(math.prod(np.shape(v)) for v in _leaves(x))
    if operator in ("gradient", "hvp"):
        return (n,)
    if operator == "hessian":
        return (n, n)
    return (math.prod(y_shape), n)


def _unflat_result(operator: str, r: np.ndarray, unflatten: Callable[[Any], Any]) -> Any:
    if operator in ("gradient", "hvp"):
        return unflatten(r)
    return r


def _leaves(x: Any) -> list[Any]:
    if isinstance(x, dict):
        return list(x.values())
    return list(x) if isinstance(x, list | tuple) else [x]


def _flat(x: Any) -> tuple[np.ndarray, Callable[[Any], Any]]:
    """x's entries as one vector, and the inverse map (slices, so that it also cuts a
    CasADi array)."""
    leaves = [np.asarray(v) for v in _leaves(x)]
    if not isinstance(x, dict | list | tuple):
        shape = leaves[0].shape
        return leaves[0].reshape(-1), lambda v: v.reshape(shape)
    bounds = np.cumsum([0] + [v.size for v in leaves])
    shapes = [v.shape for v in leaves]

    def unflatten(v: Any) -> Any:
        parts = [v[a:b].reshape(s) for a, b, s in zip(bounds[:-1], bounds[1:], shapes, strict=True)]
        if isinstance(x, dict):
            return dict(zip(x, parts, strict=True))
        return type(x)(parts)

    return np.concatenate([v.reshape(-1) for v in leaves]), unflatten
