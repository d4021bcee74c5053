"""The detection entry points: run f once on index-set arrays and read off its pattern.

:func:`trace_jacobian` and :func:`trace_hessian` give f index-set arrays
(``diffinterface._sparse.tracer``) and return its global pattern. Importing this module
registers the arrays' kind with ``diffinterface._arrays`` (:class:`TracerArrays`), so that
``di.array_namespace(x)`` inside f gives the tracer's :data:`NAMESPACE`
(``diffinterface._sparse.tracer_namespace``, which in turn registers the operations).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from diffinterface._arrays import ArrayKind, register_kind
from diffinterface._errors import UnsupportedError
from diffinterface._sparse.index_propagation import lift
from diffinterface._sparse.tracer import IndexSetArray, Space, unsupported
from diffinterface._sparse.tracer_namespace import NAMESPACE

__all__ = ["NAMESPACE", "trace_hessian", "trace_jacobian"]


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
