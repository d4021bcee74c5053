"""Finite-difference operators with error estimates, built on one engine.

Each function takes ``evaluate(points, out)`` (``_finite_difference_points``: ``looped(f)``
or ``batched(f)``), x as a NumPy array and a :class:`Scheme`, and returns an
:class:`Estimate` whose ``value`` and ``error`` have the operator's shape, the value in x's
dtype and the error in its real dtype, with the number of f evaluations and calls.
``fx = f(x)``, when the caller has it, saves one evaluation for one-sided and second
differences; ``value=True`` evaluates it (in the first call) otherwise; ``Estimate.fx`` is
a view, valid until the next call. ``chunk_size`` bounds the points per call of
``evaluate``. ``arrays`` are the kernel's work arrays, ``out`` / ``error_out`` arrays to
write the result and its error into; ``errors=False`` skips the error estimate (None).

Evaluations per step (central; n = x.size, k tangents, +1 for f(x) where needed):
jacobian / gradient 2n, pushforward 2k; one-sided: n, k (+1); complex step: n, k. The
second-order operators are in ``_finite_difference_second_order``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from diffinterface._results import write_out
from diffinterface.backends._finite_difference_points import Directions, Evaluate, WorkArrays
from diffinterface.backends._finite_difference_sampling import Estimate, differentiate_along
from diffinterface.backends._finite_difference_schemes import Scheme, real_dtype

__all__ = [
    "as_array",
    "derivative",
    "finish",
    "gradient",
    "jacobian",
    "pushforward",
    "split_options",
    "unit_tangents",
]


def jacobian(
    evaluate: Evaluate,
    x: np.ndarray,
    scheme: Scheme,
    fx: Any = None,
    chunk_size: int | None = None,
    **options: Any,
) -> Estimate:
    """∂f/∂x, shaped ``y.shape + x.shape``: one coordinate direction per input."""
    _, out, error_out, errors, engine = split_options(options)
    c = scheme.step_scale(x.reshape(-1))
    directions = Directions.coordinates(c)
    est = differentiate_along(
        evaluate, x, directions, scheme, 1, as_array(fx), chunk_size=chunk_size, **engine
    )
    n, y_shape = x.size, est.value.shape[1:]
    m = math.prod(y_shape)

    def arrange(a: np.ndarray, into: np.ndarray) -> None:  # (n,) + y.shape -> y.shape + x.shape
        np.divide(a.reshape(n, m).T, c, out=into.reshape(m, n))

    return finish(est, x, y_shape + x.shape, arrange, out, error_out, errors)


#: ∇f of a scalar f and df/dx at a 0-d x are its Jacobian, shaped like x and like y
gradient = derivative = jacobian


def pushforward(
    evaluate: Evaluate,
    x: np.ndarray,
    tangents: np.ndarray,
    scheme: Scheme,
    fx: Any = None,
    chunk_size: int | None = None,
    **options: Any,
) -> Estimate:
    """J·t for each tangent t on the leading axis of ``tangents``: ``(k,) + y.shape``.

    Each tangent is scaled to max|t| = 1 and the steps by x's largest entry; a zero tangent
    gives zeros (error 0) without evaluating f."""
    _, out, error_out, errors, engine = split_options(options)
    u, size, s = unit_tangents(x, tangents, scheme)
    live = np.flatnonzero(size)
    est = differentiate_along(
        evaluate, x, Directions.dense(u[live]), scheme, 1, as_array(fx), s, chunk_size, **engine
    )
    y_shape = est.value.shape[1:]
    factor = size[live].reshape((-1,) + (1,) * len(y_shape))

    def arrange(a: np.ndarray, into: np.ndarray) -> None:
        into.fill(0)
        into[live] = a * factor

    return finish(est, x, (len(size), *y_shape), arrange, out, error_out, errors)


# -- helpers ----------------------------------------------------------------------------


def split_options(given: dict[str, Any]) -> tuple[WorkArrays, Any, Any, bool, dict[str, Any]]:
    """(arrays, out, error_out, errors, the engine's options) from an operator's keywords:
    ``arrays``, ``out``, ``error_out``, ``errors`` and the engine's ``value`` and ``y_like``."""
    arrays = given.pop("arrays", None) or WorkArrays()
    out, error_out = given.pop("out", None), given.pop("error_out", None)
    errors = given.pop("errors", True)
    return arrays, out, error_out, errors, {**given, "arrays": arrays}


def unit_tangents(
    x: np.ndarray, tangents: np.ndarray, scheme: Scheme
) -> tuple[np.ndarray, np.ndarray, float]:
    """Tangents as rows scaled to max|t| = 1, their sizes max|t|, and the step scale of x's
    largest entry."""
    t = np.asarray(tangents, dtype=np.float64).reshape(len(tangents), -1)
    size = np.max(np.abs(t), axis=1) if t.size else np.zeros(len(t))
    u = t / np.where(size > 0, size, 1.0)[:, None]
    s = float(scheme.step_scale(np.max(np.abs(x), initial=0.0).reshape(1))[0])
    return u, size, s


def finish(
    est: Estimate,
    x: np.ndarray,
    shape: tuple[int, ...],
    arrange: Any,
    out: Any,
    error_out: Any,
    errors: bool,
    arrange_error: Any = None,
) -> Estimate:
    """The estimate arranged in the operator's shape, the value in x's dtype (complex x,
    from a difference nested in a complex step: complex) and the error in x's real dtype,
    written into ``out`` / ``error_out`` where given."""
    dtype = x.dtype if x.dtype.kind == "c" else real_dtype(x.dtype)
    value = _into(out, shape, dtype, lambda into: arrange(est.value, into))
    error = None
    if errors:
        real = real_dtype(x.dtype)
        error = _into(
            error_out, shape, real, lambda into: (arrange_error or arrange)(est.error, into)
        )
        np.abs(error, out=error)
    return Estimate(value, error, est.evaluations, est.calls, est.fx)


def _into(out: Any, shape: tuple[int, ...], dtype: Any, fill: Any) -> np.ndarray:
    """A result array filled by ``fill``: ``out`` itself where it fits (a writable
    C-contiguous NumPy array of the shape and dtype), else a new array (then copied into
    ``out`` where given, which checks it)."""
    fits = (
        type(out) is np.ndarray
        and out.shape == shape
        and out.dtype == dtype
        and out.flags.c_contiguous
        and out.flags.writeable
    )
    target = out if fits else np.empty(shape, dtype)
    fill(target)
    if out is not None and not fits:
        return write_out(out, target)
    return target


def as_array(fx: Any) -> np.ndarray | None:
    return None if fx is None else np.asarray(fx)
