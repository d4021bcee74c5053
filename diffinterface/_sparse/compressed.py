"""Compressed sparse Jacobians and Hessians: detect, colour, one batched product, decompress.

At preparation the pattern is detected and coloured, and a kernel computing one product per
colour (as ONE batched pushforward, pullback or HVP call of the dense backend, compiled like
any other kernel) is built, together with the index map from the compressed products to the
nonzeros of the pattern. A call runs the compiled products and gathers the nonzeros into a
``scipy.sparse.csr_array`` (float data in x's dtype, on the CPU).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from diffinterface._adapter import Adapter, Fn, Kernel
from diffinterface._arrays import converter
from diffinterface._errors import DiffInterfaceError, InvalidArgumentError
from diffinterface._operators.hvp import build_hvp
from diffinterface._operators.jacobian import uses_forward_mode
from diffinterface._prep import Problem
from diffinterface._sparse.backend import AutoSparse
from diffinterface._sparse.colorings import column_coloring, row_coloring, star_coloring

__all__ = ["build_sparse", "is_sparse", "write_sparse_out"]


def is_sparse(a: Any) -> bool:
    """Whether ``a`` is a scipy.sparse matrix or array (without importing scipy)."""
    return type(a).__module__.startswith("scipy.sparse")


def build_sparse(
    operator: str,
    config: AutoSparse,
    adapter: Adapter,
    fn: Fn,
    p: Problem,
    consts: tuple[Any, ...],
    call: tuple[Callable[..., Any], Any, tuple[Any, ...], Any],
) -> Kernel:
    """The compiled kernel of a sparse ``jacobian`` or ``hessian``.

    Args:
        operator: ``"jacobian"`` or ``"hessian"``.
        config: the AutoSparse backend.
        adapter: the dense backend's adapter.
        fn, p, consts: the native function, problem and Constant values (as in ``prepare``).
        call: the user's ``(f, x, contexts, y)``, which the sparsity detector sees.

    Raises:
        InvalidArgumentError: the detected or given pattern has the wrong shape.
        UnsupportedError: the detector cannot follow f.
    """
    if operator == "jacobian":
        return _jacobian(config, adapter, fn, p, consts, call)
    return _hessian(config, adapter, fn, p, consts, call)


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
    dtype = np.dtype(str(like.dtype).removeprefix("torch."))
    seeds = (colors[None, :] == np.arange(k)[:, None]).astype(dtype).reshape((k, *shape))
    native = adapter.to_native(seeds)
    device = getattr(like, "device", None)
    if hasattr(native, "to") and device is not None:
        native = native.to(device)
    return native


def _jacobian(
    config: AutoSparse,
    adapter: Adapter,
    fn: Fn,
    p: Problem,
    consts: tuple[Any, ...],
    call: tuple[Callable[..., Any], Any, tuple[Any, ...], Any],
) -> Kernel:
    f, x, contexts, y = call
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

    compiled = adapter.compile(compressed, (p.x, *consts))
    to_numpy = converter(adapter.native_kind, "numpy")
    indptr, indices = pattern.indptr, pattern.indices

    def kernel(xv: Any, *cs: Any) -> Any:
        value, products = compiled(xv, *cs)
        data = np.asarray(to_numpy(products)).reshape(-1)[gather]
        return value, sp.csr_array((data, indices.copy(), indptr.copy()), shape=(m, n))

    return kernel


def _hessian(
    config: AutoSparse,
    adapter: Adapter,
    fn: Fn,
    p: Problem,
    consts: tuple[Any, ...],
    call: tuple[Callable[..., Any], Any, tuple[Any, ...], Any],
) -> Kernel:
    f, x, contexts, _ = call
    x_shape = tuple(p.x.shape)
    n = math.prod(x_shape)
    detected = config.sparsity_detector.hessian_sparsity(f, x, contexts)
    pattern = _checked(detected, (n, n), "Hessian")
    colors = star_coloring(pattern, config.coloring.order)
    k = int(colors.max()) + 1 if colors.size else 0
    seeds = _seeds(adapter, colors, x_shape, p.x)
    batched = Problem(x=p.x, y=p.y, batch=k, mutates=p.mutates)
    native = getattr(adapter, "native_hvp", None)
    hvp = native(fn, batched) if native is not None else build_hvp(adapter, fn, batched)
    gather = _star_gather(pattern, colors, k)

    def compressed(xv: Any, *cs: Any) -> Any:
        g, products = hvp(xv, seeds, *cs)
        return fn(xv, *cs), g, products

    compiled = adapter.compile(compressed, (p.x, *consts))
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


def write_sparse_out(result: Any, out: Any) -> Any:
    """Copy a sparse result's values into ``out`` (a CSR array with the same pattern).

    Raises:
        InvalidArgumentError: ``out`` is not a scipy.sparse CSR matrix or array with the
            same shape and pattern (indptr and indices) as the result.
    """
    same = (
        sp.issparse(out)
        and out.format == "csr"
        and out.shape == result.shape
        and np.array_equal(out.indptr, result.indptr)
        and np.array_equal(out.indices, result.indices)
        and out.dtype == result.dtype
    )
    if not same:
        raise InvalidArgumentError(
            f"out= for a sparse result must be a scipy.sparse CSR array with the result's "
            f"shape {result.shape}, dtype {result.dtype} and pattern, e.g. the result of an "
            f"earlier call with the same preparation (its .data is overwritten); got "
            f"{type(out).__name__}."
        )
    out.data[...] = result.data
    return out
