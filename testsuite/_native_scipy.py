"""Hand-written finite-difference counterparts: SciPy's own finite differences
(``scipy.optimize._numdiff.approx_derivative``, the routine behind ``scipy.optimize``'s
numerical Jacobians), nested (an outer central difference of an inner first difference)
for Hessians and HVPs, on x's entries as one vector.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import optree


def scipy_candidates(
    method: str, operator: str, f: Callable[..., Any], args: list[Any]
) -> list[tuple[str, Callable[[], Any]]]:
    """(method, call) pairs computing ``operator`` of ``f(x, [t,] *consts)`` at ``args``.

    Args:
        method: the AutoFiniteDiff method ("central", "forward" or "complex").
        operator: "gradient", "jacobian", "hessian" or "hvp".
        f: f of x (an array, or a dict / list / tuple of arrays) and the array Constants.
        args: x, the tangent for "hvp", then the Constants' values (NumPy arrays).

    Returns:
        One (label, call) pair: scipy's finite differences, nested for second order.
    """
    from scipy.optimize._numdiff import approx_derivative  # scipy's own FD Jacobian

    x, rest = args[0], args[1:]
    flat, unflatten = _flattener(x)
    eps = float(np.finfo(flat.dtype).eps)
    scheme = {"central": "3-point", "forward": "2-point", "complex": "cs"}[method]

    def f_flat(v: Any, *c: Any) -> Any:
        return np.asarray(f(unflatten(v), *c)).reshape(-1)

    if operator in ("gradient", "jacobian"):

        def first() -> Any:
            d = approx_derivative(f_flat, flat, method=scheme, args=tuple(rest))
            if operator == "gradient":
                return unflatten(d.reshape(-1))
            return d.reshape((-1, *flat.shape))

        return [(f"scipy approx_derivative({scheme})", first)]
    # second order: an outer central difference of an inner first difference
    inner_scheme, inner_rel = ("cs", None) if scheme == "cs" else ("3-point", eps**0.25)
    outer_rel = eps ** (1 / 3) if scheme == "cs" else eps**0.25
    consts = tuple(rest[1:] if operator == "hvp" else rest)

    def grad(v: Any) -> Any:
        return approx_derivative(f_flat, v, method=inner_scheme, rel_step=inner_rel, args=consts)

    label = f"scipy approx_derivative({inner_scheme}) inside a central difference"
    if operator == "hessian":

        def hessian() -> Any:
            h = approx_derivative(grad, flat, method="3-point", rel_step=outer_rel)
            return ((h + h.T) / 2).reshape(x.shape + x.shape)

        return [(label, hessian)]
    t = rest[0].reshape(-1)

    def hvp() -> Any:
        s = outer_rel * max(1.0, float(np.max(np.abs(flat)))) / float(np.max(np.abs(t)))
        return ((grad(flat + s * t) - grad(flat - s * t)) / (2 * s)).reshape(x.shape)

    return [(label, hvp)]


def _flattener(x: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """x's entries as one vector, and the inverse map (leaves in x's structure)."""
    leaves, tree = optree.tree_flatten(x)
    shapes = [np.shape(v) for v in leaves]
    sizes = [math.prod(s) for s in shapes]
    flat = np.concatenate([np.reshape(v, -1) for v in leaves])

    def unflatten(v: np.ndarray) -> Any:
        parts = np.split(v, np.cumsum(sizes)[:-1])
        leaves = [p.reshape(s) for p, s in zip(parts, shapes, strict=True)]
        return optree.tree_unflatten(tree, leaves)

    if tree.num_leaves == 1 and not isinstance(x, dict | list | tuple):
        return flat, lambda v: v.reshape(shapes[0])
    return flat, unflatten
