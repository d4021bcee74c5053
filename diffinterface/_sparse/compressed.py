"""Compressed sparse Jacobians and Hessians: detect, colour, one batched product, decompress.

At preparation the pattern is detected and coloured, and a kernel computing one product per
colour (as ONE batched pushforward, pullback or HVP call of the dense backend, compiled like
any other kernel) is built, together with the index map from the compressed products to the
nonzeros of the pattern. A call runs the compiled products and gathers the nonzeros into a
``scipy.sparse.csr_array`` (float data in x's dtype, on the CPU).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from diffinterface._adapter import Adapter, Fn, Kernel, Problem
from diffinterface._arrays import dtype_name
from diffinterface._conversions import converter
from diffinterface._derived import HVP, uses_forward_mode
from diffinterface._errors import DiffInterfaceError, InvalidArgumentError
from diffinterface._sparse.backend import AutoSparse
from diffinterface._sparse.colorings import column_coloring, row_coloring, star_coloring

__all__ = ["sparse_hessian", "sparse_jacobian"]


def _checked(pattern: Any, shape: tuple[int, int], what: str) -> Any:
    p = sp.csr_array(pattern, dtype=bool, copy=True)
    if p.shape != shape:
        raise InvalidArgumentError(
            f"The sparsity detector gave a {what} pattern of shape {p.shape}; expected {shape}."
        )
    p.sum_duplicates()
    p.eliminate_zeros()
    p.sort_indices()
    return p


def _seeds(adapter: Adapter, colors: np.ndarray, shape: tuple[int, ...], like: Any) -> Any:
    """One seed per colour, stacked: seed c is 1 where the colour is c (native array)."""
    k = int(colors.max()) + 1 if colors.size else 0
    dtype = np.dtype(dtype_name(like))
    seeds = (colors[None, :] == np.arange(k)[:, None]).astype(dtype).reshape((k, *shape))
    device = getattr(like, "device", None)
    return converter("numpy", adapter.native_kind, device)(seeds)


def sparse_jacobian(config: AutoSparse, adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    """``(x, *consts) -> (y, J)`` with J a scipy.sparse CSR array: the pattern detected and
    coloured here, one batched product per call (compiled by the dense backend).

    Raises:
        InvalidArgumentError: the detected or given pattern has the wrong shape.
        UnsupportedError: the detector cannot follow f.
    """
    f, x, contexts, y = p.source
    x_shape, y_shape = tuple(p.x.shape), tuple(p.y.shape)
    n, m = math.prod(x_shape), math.prod(y_shape)
    detected = config.sparsity_detector.jacobian_sparsity(f, x, contexts, y, m)
    pattern = _checked(detected, (m, n), "Jacobian")
    order = config.coloring.order
    rows = np.repeat(np.arange(m), np.diff(pattern.indptr))
    cols = pattern.indices
    if uses_forward_mode(adapter):
        colors = column_coloring(pattern, order)
        seeds = _seeds(adapter, colors, x_shape, p.x)
        product = adapter.pushforward_batch(fn, p.mutates)
        gather = colors[cols] * m + rows  # J[i, j] = (J seed_c(j))[i]
    else:
        colors = row_coloring(pattern, order)
        seeds = _seeds(adapter, colors, y_shape, p.y)
        product = adapter.pullback_batch(fn, p.mutates)
        gather = colors[rows] * n + cols  # J[i, j] = (seed_c(i)ᵀ J)[j]

    def compressed(xv: Any, *cs: Any) -> Any:
        return product(xv, seeds, *cs)

    compiled = adapter.compile(compressed, (p.x, *p.consts))
    to_numpy = converter(adapter.native_kind, "numpy")
    indptr, indices = pattern.indptr, pattern.indices

    def kernel(xv: Any, *cs: Any) -> Any:
        value, products = compiled(xv, *cs)
        data = np.asarray(to_numpy(products)).reshape(-1)[gather]
        return value, sp.csr_array((data, indices.copy(), indptr.copy()), shape=(m, n))

    return kernel


def sparse_hessian(config: AutoSparse, adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    """``(x, *consts) -> (y, ∇f, H)`` with H a scipy.sparse CSR array, from one batch of
    HVPs along the seeds of a star colouring (see :func:`sparse_jacobian`)."""
    f, x, contexts, _ = p.source
    x_shape = tuple(p.x.shape)
    n = math.prod(x_shape)
    detected = config.sparsity_detector.hessian_sparsity(f, x, contexts)
    pattern = _checked(detected, (n, n), "Hessian")
    colors = star_coloring(pattern, config.coloring.order)
    k = int(colors.max()) + 1 if colors.size else 0
    seeds = _seeds(adapter, colors, x_shape, p.x)
    batched = Problem(x=p.x, y=p.y, batch=k, mutates=p.mutates, consts=p.consts)
    own = adapter.declared("hvp", False)
    hvp = (
        getattr(adapter, own.method)(fn, batched)
        if own is not None
        else HVP.build(adapter, fn, batched)
    )
    gather = _star_gather(pattern, colors, k)

    def compressed(xv: Any, *cs: Any) -> Any:
        g, products = hvp(xv, seeds, *cs)
        return adapter.evaluate(fn, xv, cs), g, products

    compiled = adapter.compile(compressed, (p.x, *p.consts))
    to_numpy = converter(adapter.native_kind, "numpy")
    indptr, indices = pattern.indptr, pattern.indices

    def kernel(xv: Any, *cs: Any) -> Any:
        value, g, products = compiled(xv, *cs)
        data = np.asarray(to_numpy(products)).reshape(-1)[gather]
        return value, g, sp.csr_array((data, indices.copy(), indptr.copy()), shape=(n, n))

    return kernel


def _star_gather(pattern: Any, colors: np.ndarray, k: int) -> np.ndarray:
    """Where each nonzero H[i, j] is read in the products B (B[c, i] = Σ_{colour(j)=c} H[i, j]):
    at B[colour(j), i] when j is the only neighbour of i with its colour, else at
    B[colour(i), j] (a star colouring guarantees one of the two)."""
    n = pattern.shape[0]
    rows = np.repeat(np.arange(n), np.diff(pattern.indptr))
    cols = pattern.indices
    count = np.zeros((n, max(k, 1)), dtype=np.int64)
    np.add.at(count, (rows, colors[cols]), 1)
    direct = count[rows, colors[cols]] == 1
    mirrored = count[cols, colors[rows]] == 1
    if not np.all(direct | mirrored):
        raise DiffInterfaceError(
            "internal error: the Hessian colouring is not a star colouring; please report it."
        )
    return np.where(direct, colors[cols] * n + rows, colors[rows] * n + cols)
